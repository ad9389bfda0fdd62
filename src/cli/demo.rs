//! `pibake demo`: the whole flow on a built-in example, no downloaded image needed.

use std::path::PathBuf;

use crate::cli::{Global, inspect::human, print_json};
use pibake::bake::{Options, OutputFormat, build};
use pibake::demo::synthesize_base;
use pibake::error::{IoContext, Result};
use pibake::inspect::inspect;
use pibake::inventory::Inventory;

/// Synthesize a Raspberry Pi OS-shaped base image, build the example web cluster from
/// it (a load balancer and four web servers), and inspect one of the images
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo's base, cluster and images
    #[arg(default_value = "pibake-demo")]
    pub dir: PathBuf,
}

const WEB_CLUSTER: &str = include_str!("../../examples/web-cluster/cluster.yaml");

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let base = synthesize_base(&args.dir)?;
    let cluster_dir = args.dir.join("web-cluster");
    std::fs::create_dir_all(&cluster_dir).at(&cluster_dir)?;
    let cluster = cluster_dir.join("cluster.yaml");
    let base_abs = base.canonicalize().at(&base)?;
    // The example's key is a placeholder nobody can log in with: the demo makes its
    // own admin key pair and puts its public half in the cluster instead.
    let admin_key = args.dir.join("admin_key");
    let (_, public) = pibake::bake::hostkeys::key_pair(&admin_key, "ed25519")?;
    let text = super::init::with_admin_key(
        WEB_CLUSTER,
        "Key-only login with the key pair made for the demo (../admin_key).",
        public.trim(),
        Some("../admin_key"),
    )
    .lines()
    .map(|l| match l.starts_with("base:") {
        true => format!("base: {}\n", base_abs.display()),
        false => format!("{l}\n"),
    })
    .collect::<String>();
    std::fs::write(&cluster, text).at(&cluster)?;
    // The synthesized base carries no apt sources or dpkg database to resolve the
    // example's packages against, so its nodes would install them on first boot.
    let mut inv = Inventory::load(&cluster)?;
    inv.packages_online_instead();
    let opts = Options {
        out: args.dir.join("images"),
        state: cluster_dir.join(".pibake").join("state"),
        cache: global.cache_options(),
        time: Some(1_704_067_200),
        jobs: 0,
        bmap: false,
        formats: vec![OutputFormat::Raw],
        sha256: false,
        allow_example_credentials: false,
        progress: global.progress(),
        packages: Default::default(),
    };
    let built = build(&inv, &[], &opts)?;
    let report = inspect(&built[1].image)?;
    if global.json {
        return print_json(
            &serde_json::json!({ "base": base, "cluster": cluster, "images": built, "inspect": report }),
        );
    }
    outln!(
        "Synthesized a bookworm-layout base image: {}",
        base.display()
    );
    outln!("Wrote the example web cluster: {}", cluster.display());
    outln!(
        "Its admin logs in with the key pair made for the demo: {}",
        admin_key.display()
    );
    outln!("Built {} node images:", built.len());
    super::build::list(&built, "  ")?;
    outln!("\n`pibake inspect {}`:\n", built[1].image.display());
    out!("{}", human(&report));
    outln!(
        "\nNext: `pibake plan --online-packages {}` shows every file each node got (the demo's base has no package database, so its nodes install their packages on first boot); `pibake fs ls -l {} /etc` looks inside an image.",
        cluster.display(),
        built[1].image.display()
    );
    Ok(())
}
