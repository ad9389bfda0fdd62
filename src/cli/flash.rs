//! `pibake flash` and `pibake verify`: safe, verified writing of SD cards.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use crate::cli::{Global, print_json};
use pibake::bake::{Options, OutputFormat, build};
use pibake::error::{Error, Result};
use pibake::flash::{self, Report, device};
use pibake::values::input_file;
use pibake_image::digest::Sha256;

/// Write images to SD cards: data only, then read back and compared
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image, or a cluster file with --node (the node is built first when its image
    /// is missing)
    #[arg(required_unless_present = "list")]
    pub source: Option<PathBuf>,
    /// Target device or file (repeatable: several cards at once, nodes assigned in order)
    #[arg(long = "device", value_name = "DEV")]
    pub devices: Vec<PathBuf>,
    /// With a cluster file: the node(s) to flash, one per --device
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// With a cluster file: build even with credentials everyone knows (test clusters)
    #[arg(long)]
    pub allow_example_credentials: bool,
    /// With a cluster file: where node images are [default: CLUSTER_DIR/images]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub packages: crate::cli::PackageArgs,
    /// Show candidate devices and exit
    #[arg(long)]
    pub list: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Allow a device that is not removable (never one with mounted filesystems)
    #[arg(long)]
    pub force: bool,
    /// Skip reading back what was written
    #[arg(long)]
    pub no_verify: bool,
    /// Flash log [default: the cluster's .pibake/state/flash.log, or ./pibake-flash.log]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// Compare a card or file with an image over the image's data
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("against").required(true).args(["image", "bmap", "manifest"])))]
pub struct VerifyArgs {
    /// The card (device) or file to check
    pub target: PathBuf,
    /// The image it should hold
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Or: a bmap file, whose checksums the target's data must match
    #[arg(long)]
    pub bmap: Option<PathBuf>,
    /// Or: a build's manifest.json, with --node: the target must hold that node's image
    #[arg(long, requires = "node")]
    pub manifest: Option<PathBuf>,
    /// The node whose image the manifest describes
    #[arg(long)]
    pub node: Option<String>,
    /// With --image: compare only the image's data ranges, not the zeros of its holes
    #[arg(long, requires = "image")]
    pub data_only: bool,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    if args.list {
        let all = device::list();
        if global.json {
            return print_json(&all);
        }
        for d in all {
            outln!(
                "{:<14} {:>8.1} GiB  {:<9} {:<20} {:<16} {}",
                d.path.display(),
                d.size as f64 / (1u64 << 30) as f64,
                if d.removable { "removable" } else { "fixed" },
                d.model.as_deref().unwrap_or("-"),
                d.serial.as_deref().unwrap_or("-"),
                if d.mounted.is_empty() {
                    String::new()
                } else {
                    format!("mounted: {}", d.mounted.join(", "))
                }
            );
        }
        return Ok(());
    }
    let source = args
        .source
        .as_ref()
        .expect("clap requires it without --list");
    if args.devices.is_empty() {
        return Err(Error::invalid("no --device given")
            .with_hint("`pibake flash --list` shows the candidates"));
    }
    let (jobs, log) = jobs(source, args, global)?;
    if jobs.len() != args.devices.len() {
        return Err(Error::invalid(format!(
            "{} image(s) for {} device(s); give one --node per --device",
            jobs.len(),
            args.devices.len()
        )));
    }
    distinct(&args.devices)?;
    let mut targets = Vec::new();
    for ((_, image), dev) in jobs.iter().zip(&args.devices) {
        let len = input_file(image, false)?.len();
        // No target may be any image of this run: each is read while others are written.
        for (_, any) in &jobs {
            device::refuse_same(any, dev)?;
        }
        targets.push(device::check(dev, len, args.force)?);
    }
    confirm(&jobs, &targets, args.yes)?;
    let bars = indicatif::MultiProgress::new();
    if !global.progress() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let results: Vec<Result<Report>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .zip(&targets)
            .map(|((_, image), t)| {
                let bar = bars.add(indicatif::ProgressBar::new(0));
                bar.set_style(indicatif::ProgressStyle::with_template("{msg:>10} {prefix} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").expect("static template"));
                bar.set_prefix(t.path.display().to_string());
                bar.set_message("writing");
                s.spawn(move || flash::flash(image, t, !args.no_verify, &bar))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::invalid("a flash thread stopped")))
            })
            .collect()
    });
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for ((node, _), r) in jobs.iter().zip(results) {
        match r {
            Ok(rep) => {
                flash::log(&log, node.as_deref(), &rep)?;
                done.push(rep);
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    if global.json {
        print_json(&done)?;
    } else {
        for r in &done {
            outln!(
                "{} -> {}: {:.1} MiB of {:.1} MiB written in {:.1} s{}",
                r.image,
                r.target.path.display(),
                r.written as f64 / (1 << 20) as f64,
                r.image_bytes as f64 / (1 << 20) as f64,
                r.seconds,
                if r.verified {
                    ", verified"
                } else {
                    ", not verified"
                }
            );
        }
    }
    if !failed.is_empty() {
        return Err(Error::invalid(format!(
            "{} of {} flash(es) failed:\n  {}",
            failed.len(),
            jobs.len(),
            failed.join("\n  ")
        )));
    }
    Ok(())
}

/// Refuses a target given twice (the same path, or two names of one file or device):
/// two writers on one card would interleave, and each verify would compare the other's
/// data.
fn distinct(devices: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut seen: Vec<((u64, u64), &PathBuf)> = Vec::new();
    for d in devices {
        let Ok(m) = std::fs::metadata(d) else {
            continue;
        };
        // A device node is its device number; a file is its device and inode.
        let id = match m.file_type().is_block_device() {
            true => (u64::MAX, m.rdev()),
            false => (m.dev(), m.ino()),
        };
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
            return Err(Error::invalid(format!(
                "{}: given twice as --device (as {} too)",
                d.display(),
                first.display()
            ))
            .with_hint("give each card once; `pibake flash --list` shows the devices"));
        }
        seen.push((id, d));
    }
    Ok(())
}

/// (node, image) pairs to write, and the log file.
type Jobs = Vec<(Option<String>, PathBuf)>;

fn jobs(source: &Path, args: &Args, global: &Global) -> Result<(Jobs, PathBuf)> {
    let is_cluster = matches!(
        source.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if !is_cluster {
        if !args.nodes.is_empty() {
            return Err(Error::invalid("--node needs a cluster file, not an image"));
        }
        let log = args
            .log
            .clone()
            .unwrap_or_else(|| PathBuf::from("pibake-flash.log"));
        return Ok((
            args.devices
                .iter()
                .map(|_| (None, source.to_path_buf()))
                .collect(),
            log,
        ));
    }
    if args.nodes.is_empty() {
        return Err(Error::invalid(
            "flashing from a cluster file needs --node NAME (one per --device)",
        ));
    }
    let inv = args.packages.load(source)?;
    let out = args.out.clone().unwrap_or_else(|| inv.dir.join("images"));
    let state = inv.dir.join(".pibake").join("state");
    let missing: Vec<String> = args
        .nodes
        .iter()
        .filter(|n| !out.join(format!("{n}.img")).exists())
        .cloned()
        .collect();
    if !missing.is_empty() {
        let opts = Options {
            out: out.clone(),
            state: state.clone(),
            cache: global.cache_options(),
            time: None,
            jobs: 0,
            bmap: false,
            formats: vec![OutputFormat::Raw],
            sha256: false,
            progress: global.progress(),
            allow_example_credentials: args.allow_example_credentials,
            packages: args.packages.settings(global)?,
        };
        build(&inv, &missing, &opts)?;
    }
    let log = args.log.clone().unwrap_or_else(|| state.join("flash.log"));
    Ok((
        args.nodes
            .iter()
            .map(|n| (Some(n.clone()), out.join(format!("{n}.img"))))
            .collect(),
        log,
    ))
}

/// Says what will be overwritten and asks, unless `--yes`.
fn confirm(jobs: &Jobs, targets: &[flash::Target], yes: bool) -> Result<()> {
    eprintln!("About to overwrite:");
    for ((node, image), t) in jobs.iter().zip(targets) {
        eprintln!(
            "  {} ({}, {:.1} GiB{}) with {}{}",
            t.path.display(),
            t.model
                .as_deref()
                .unwrap_or(if t.block { "block device" } else { "file" }),
            t.size as f64 / (1u64 << 30) as f64,
            t.serial
                .as_deref()
                .map(|s| format!(", serial {s}"))
                .unwrap_or_default(),
            image.display(),
            node.as_deref()
                .map(|n| format!(" (node {n})"))
                .unwrap_or_default()
        );
    }
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            Error::invalid("not confirmed: standard input is not a terminal")
                .with_hint("pass --yes to flash without asking"),
        );
    }
    eprint!("Type yes to continue: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("standard input", e))?;
    if line.trim() != "yes" {
        return Err(Error::invalid("not confirmed; nothing was written"));
    }
    Ok(())
}

pub fn run_verify(args: &VerifyArgs, global: &Global) -> Result<()> {
    // A FIFO would block and a character device never end: refused before any read.
    input_file(&args.target, true)?;
    for against in [&args.image, &args.bmap, &args.manifest]
        .into_iter()
        .flatten()
    {
        input_file(against, false)?;
    }
    let (against, bytes) = match (&args.image, &args.bmap, &args.manifest) {
        (Some(image), ..) => (image, flash::verify(image, &args.target, args.data_only)?),
        (_, Some(bmap), _) => (bmap, pibake_image::bmap::verify(&args.target, bmap)?),
        (.., Some(manifest)) => {
            let node = args
                .node
                .as_deref()
                .expect("clap requires --node with --manifest");
            (manifest, verify_manifest(&args.target, manifest, node)?)
        }
        _ => unreachable!("clap requires one of --image, --bmap, --manifest"),
    };
    if global.json {
        return print_json(
            &serde_json::json!({ "target": args.target, "against": against, "bytes_compared": bytes, "ok": true }),
        );
    }
    outln!(
        "{} matches {} ({:.1} MiB of data compared)",
        args.target.display(),
        against.display(),
        bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// Checks that `target` starts with the node's image as a build's manifest records it
/// (the raw image's size and digest, whatever format the build wrote it in).
fn verify_manifest(target: &Path, manifest: &Path, node: &str) -> Result<u64> {
    let text = std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, e))?;
    let m: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "{}: not a pibake manifest: {e}",
            manifest.display()
        ))
    })?;
    let entry = m["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|e| e["node"] == node))
        .ok_or_else(|| Error::invalid(format!("{}: no node `{node}`", manifest.display())))?;
    let image = &entry["image"];
    let (Some(size), Some(want)) = (image["size"].as_u64(), image["sha256_4m"].as_str()) else {
        return Err(Error::invalid(format!(
            "{}: node `{node}` has no image size and sha256_4m digest",
            manifest.display()
        ))
        .with_hint("rebuild the node with this pibake version"));
    };
    let want: Sha256 = want.parse().map_err(|e| {
        Error::invalid(format!(
            "{}: node `{node}`'s sha256_4m `{want}` is malformed: {e}",
            manifest.display()
        ))
        .with_hint("rebuild the node, or restore manifest.json from the build")
    })?;
    match pibake_image::chunks::digest_file(target, size)? {
        Some(got) if got == want => Ok(size),
        Some(got) => Err(Error::corrupt(format!(
            "{}: its first {size} bytes are not node {node}'s image (sha256_4m {got}, the manifest says {want})",
            target.display()
        ))),
        None => Err(Error::corrupt(format!(
            "{}: shorter than node {node}'s image ({size} bytes)",
            target.display()
        ))),
    }
}
