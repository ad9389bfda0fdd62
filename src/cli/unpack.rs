//! `pibake unpack BASE`: decode a compressed base into the cache and print its path.

use std::path::PathBuf;

use crate::cli::{Global, print_json};
use pibake::error::Result;
use pibake_image::base;

/// Decode a base image (.img.xz, .img.zst, .img.gz, .zip) into the cache once
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The downloaded image
    pub image: PathBuf,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let base = base::prepare(&args.image, &global.cache_options())?;
    if global.json {
        return print_json(&base);
    }
    outln!("{}", base.raw.display());
    Ok(())
}
