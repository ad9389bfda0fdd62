//! The command-line interface: one file per subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;

/// Bake ready-to-flash Raspberry Pi OS images for whole clusters.
#[derive(Debug, Parser)]
#[command(name = "pibake", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Where decoded base images are cached [default: $XDG_CACHE_HOME/pibake]
    #[arg(long, global = true, env = "PIBAKE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of the human report
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    let _ = &global;
    match command {}
}
