//! Image files: regions of them, partition tables, base decoding.

pub mod partition;
pub mod region;
