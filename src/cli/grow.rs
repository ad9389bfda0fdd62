//! `pibake grow IMAGE --root-size SIZE`: the root partition and its ext4 made larger, in
//! place, without root, loop devices or resize2fs.

use std::path::PathBuf;

use crate::cli::{Global, print_json};
use pibake::error::{Error, Result};
use pibake::packages::lock::size as size_text;
use pibake::values::ByteSize;
use pibake_image::base::Format;

/// Grow a raw image's root partition and its filesystem, in place (builds grow their
/// own copies when a role needs room: see `root_size:`)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The raw image (.img), changed in place
    pub image: PathBuf,
    /// The root partition's new size, with a binary unit (`4GiB`, `3584MiB`)
    #[arg(long, value_name = "SIZE")]
    pub root_size: ByteSize,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let format = Format::detect(&args.image)?;
    if format != Format::Raw {
        return Err(Error::invalid(format!(
            "{}: a {} file; `pibake grow` changes raw images in place",
            args.image.display(),
            format.name()
        ))
        .with_hint("decode it first: `pibake unpack IMAGE` prints the raw image's path in the cache (copy it before growing)"));
    }
    let size = args.root_size.0.div_ceil(1 << 20) << 20;
    let g = pibake_image::grow::grow_image(&args.image, size)?;
    if global.json {
        return print_json(&g);
    }
    let fs = &g.filesystem;
    outln!(
        "{}: root partition {} {} -> {}, image {} -> {}; ext4 {} -> {} blocks, {} -> {} groups, {} -> {} inodes",
        args.image.display(),
        g.partition.number,
        size_text(g.partition.old_size),
        size_text(g.partition.new_size),
        size_text(g.partition.old_len),
        size_text(g.partition.new_len),
        fs.old_blocks,
        fs.new_blocks,
        fs.old_groups,
        fs.new_groups,
        fs.old_inodes,
        fs.new_inodes
    );
    Ok(())
}
