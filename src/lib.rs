//! pibake: bake ready-to-flash Raspberry Pi OS images for whole clusters.
//!
//! Everything happens in-process, as writes into image files: no root, no loop mounts,
//! no emulation. The layers, from the bottom: [`image`] (regions of an image file,
//! partition tables, base decoding), [`fs`] (FAT boot partition, ext4 root), and
//! [`bootcfg`] (config.txt and cmdline.txt models).

#![warn(missing_docs)]

pub mod bake;
pub mod basefetch;
pub mod bootcfg;
pub mod demo;
pub mod error;
pub mod exports;
pub mod flash;
pub mod fs;
pub mod inspect;
pub mod inventory;
pub mod kinds;
pub mod packages;
pub mod plan;
pub mod status;
pub mod values;

pub use error::{Error, Result};
