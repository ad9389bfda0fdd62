//! `pibake demo`: the whole flow on a built-in example, no downloaded image needed.

use std::path::PathBuf;

use crate::cli::{Global, inspect::human, print_json};
use crate::demo::synthesize_base;
use crate::error::Result;
use crate::inspect::inspect;

/// Synthesize a Raspberry Pi OS-shaped base image and show what pibake reads from it
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo's images
    #[arg(default_value = "pibake-demo")]
    pub dir: PathBuf,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let base = synthesize_base(&args.dir)?;
    let report = inspect(&base)?;
    if global.json {
        return print_json(&report);
    }
    println!(
        "Synthesized a bookworm-layout base image: {}\n",
        base.display()
    );
    print!("{}", human(&report));
    println!(
        "\nNext: `pibake inspect {}` reads any Raspberry Pi OS image the same way.",
        base.display()
    );
    Ok(())
}
