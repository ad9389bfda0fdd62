//! Image files: regions of them, partition tables, base decoding.

pub mod base;
pub mod bmap;
pub mod chunks;
pub mod frames;
pub mod partition;
pub mod region;
pub mod sparse;
