//! Disk images as files: windows of them, partition tables, compressed bases, and the
//! outputs made from a base plus a node's changes.
//!
//! A node image is never built by copying the base and editing the copy in full. The
//! base is opened read-only and every write goes to an [`region::Overlay`] of 4 KiB pages;
//! outputs are then made from the base plus those pages, chunk by chunk
//! ([`CHUNK`] bytes): a raw image as a reflink or sparse copy with the pages on top
//! ([`chunks`]), `.img.zst` and `.img.xz` by reusing the base's cached frame for every
//! unchanged chunk ([`frames`], [`codec`]), and bmap files from cached per-chunk sums
//! ([`bmap`]). Bases are decoded once into a cache keyed by their sha256 ([`base`],
//! [`sparse`]); partitions are read from MBR or GPT ([`partition`]).
//!
//! Modules depend downwards only: `region` and `codec` on nothing, `chunks` on those,
//! `frames` on `chunks`.

#![warn(missing_docs)]

pub mod base;
pub mod bmap;
pub mod chunks;
pub mod codec;
pub mod digest;
mod error;
pub mod frames;
pub mod grow;
pub mod partition;
pub mod pool;
pub mod region;
pub mod sparse;

pub use digest::Sha256;
pub use error::{Error, IoContext, Result};

/// Bytes per chunk: small enough that a node's few changes touch little, large enough
/// that per-chunk costs (frame headers, index lines) are nothing.
pub const CHUNK: u64 = 4 << 20;
