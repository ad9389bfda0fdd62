//! `pibake build CLUSTER [--out DIR]`: one ready-to-flash image per node.

use std::path::PathBuf;

use crate::cli::{Global, PackageArgs, print_json};
use pibake::bake::{Options, OutputFormat, build};
use pibake::error::Result;

/// Build each node's image: a copy of the base with the node's plan applied
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster file (cluster.yaml)
    pub cluster: PathBuf,
    /// Only these nodes: names, ranges like `node[001-010]`, or `role:NAME` (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Directory for the images, known_hosts and ssh_config [default: CLUSTER_DIR/images,
    /// where `flash CLUSTER` and `status` look]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Nodes built at once [default: one per core]
    #[arg(long, short, default_value_t = 0, hide_default_value = true)]
    pub jobs: usize,
    /// Output format(s): raw .img; .img.zst or .img.xz from the base's frames (repeatable)
    #[arg(long = "format", value_enum, default_values_t = [OutputFormat::Raw])]
    pub formats: Vec<OutputFormat>,
    /// Also write NODE.img.bmap (bmaptool's format, with checksums) beside each image
    #[arg(long)]
    pub bmap: bool,
    /// Also record each file's plain sha256 in manifest.json (reads every file in full;
    /// the image digest sha256_4m is always recorded and costs only the changed chunks)
    #[arg(long)]
    pub sha256: bool,
    /// Build even with credentials everyone knows (the examples' placeholder key, a
    /// hash of "raspberry"): for throw-away test clusters only
    #[arg(long)]
    pub allow_example_credentials: bool,
    /// Where per-node SSH host keys are kept [default: CLUSTER_DIR/.pibake/state]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub packages: PackageArgs,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let inv = args.packages.load(&args.cluster)?;
    let opts = Options {
        out: args.out.clone().unwrap_or_else(|| inv.dir.join("images")),
        state: args
            .state
            .clone()
            .unwrap_or_else(|| inv.dir.join(".pibake").join("state")),
        cache: global.cache_options(),
        time: pibake::values::source_date_epoch(),
        jobs: args.jobs,
        bmap: args.bmap,
        formats: args.formats.clone(),
        sha256: args.sha256,
        allow_example_credentials: args.allow_example_credentials,
        progress: global.progress(),
        packages: args.packages.settings(global)?,
    };
    stop_on_signals();
    let started = std::time::Instant::now();
    let built = build(&inv, &args.nodes, &opts)?;
    if global.json {
        return print_json(&built);
    }
    list(&built, "")?;
    let changed: u64 = built.iter().map(|b| b.bytes_changed).sum();
    outln!(
        "{} node(s) built in {:.1} s, {:.1} MiB of the image changed per node on average",
        built.len(),
        started.elapsed().as_secs_f64(),
        changed as f64 / built.len().max(1) as f64 / f64::from(1 << 20)
    );
    outln!("known_hosts and ssh_config: {}", opts.out.display());
    Ok(())
}

/// One line per built node: its name, first file and disk identifier.
pub fn list(built: &[pibake::bake::Built], indent: &str) -> Result<()> {
    for b in built {
        outln!(
            "{indent}{:<16} {}  (disk id {})",
            b.node,
            b.image.display(),
            b.disk_id
        );
    }
    Ok(())
}

/// Ctrl-C and `kill` stop the build cleanly: nodes in progress drop their temporary files,
/// so no file is ever left under a final name half-written.
fn stop_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        pibake::bake::interrupt();
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}
