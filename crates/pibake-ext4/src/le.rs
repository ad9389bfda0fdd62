//! Little-endian fields inside on-disk structures, read and written in place.
//!
//! ext4 structures are kept as the bytes they are on disk, so that fields pibake does not
//! know (and future ones) survive a read-modify-write untouched.

pub trait Le {
    fn u8_at(&self, off: usize) -> u8;
    fn u16_at(&self, off: usize) -> u16;
    fn u32_at(&self, off: usize) -> u32;
    fn set_u8(&mut self, off: usize, v: u8);
    fn set_u16(&mut self, off: usize, v: u16);
    fn set_u32(&mut self, off: usize, v: u32);
}

impl Le for [u8] {
    fn u8_at(&self, off: usize) -> u8 {
        self[off]
    }
    fn u16_at(&self, off: usize) -> u16 {
        u16::from_le_bytes([self[off], self[off + 1]])
    }
    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self[off..off + 4].try_into().expect("4 bytes"))
    }
    fn set_u8(&mut self, off: usize, v: u8) {
        self[off] = v;
    }
    fn set_u16(&mut self, off: usize, v: u16) {
        self[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set_u32(&mut self, off: usize, v: u32) {
        self[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// A 64-bit value split into a low 32-bit field and a high field of `hi_bytes` bytes
/// (absent when `hi_off` is `None`, as in 32-byte group descriptors).
pub fn get_split(b: &[u8], lo_off: usize, hi_off: Option<usize>, hi_bytes: usize) -> u64 {
    let lo = u64::from(b.u32_at(lo_off));
    let hi = match (hi_off, hi_bytes) {
        (Some(o), 2) => u64::from(b.u16_at(o)),
        (Some(o), 4) => u64::from(b.u32_at(o)),
        _ => 0,
    };
    lo | hi << 32
}

pub fn set_split(b: &mut [u8], lo_off: usize, hi_off: Option<usize>, hi_bytes: usize, v: u64) {
    b.set_u32(lo_off, lo32(v));
    match (hi_off, hi_bytes) {
        (Some(o), 2) => b.set_u16(o, lo16(hi32(v))),
        (Some(o), 4) => b.set_u32(o, hi32(v)),
        _ => {}
    }
}

// ext4 stores wide numbers as a low field and a high field (or only the low one, in
// older layouts); cutting a value into them is the format, not an accident, so these
// four are the crate's only truncating casts of numbers.

/// The low 32 bits of `v`.
#[allow(clippy::cast_possible_truncation)] // the low field of a split number
pub fn lo32(v: u64) -> u32 {
    v as u32
}

/// The high 32 bits of `v`.
#[allow(clippy::cast_possible_truncation)] // the high field; the shift leaves 32 bits
pub fn hi32(v: u64) -> u32 {
    (v >> 32) as u32
}

/// The low 16 bits of `v`.
#[allow(clippy::cast_possible_truncation)] // the low field of a split number
pub fn lo16(v: u32) -> u16 {
    v as u16
}

/// The high 16 bits of `v`.
#[allow(clippy::cast_possible_truncation)] // the high field; the shift leaves 16 bits
pub fn hi16(v: u32) -> u16 {
    (v >> 16) as u16
}

/// A length, offset or count inside one block (a record length, a node's entry count or
/// limit) as the 16-bit field that holds it. Blocks are at most 32 KiB (64 KiB blocks
/// are refused at open, and mkfs makes 1 and 4 KiB), so such values always fit.
pub fn in_block16(v: usize) -> u16 {
    u16::try_from(v).expect("a value bounded by the block size (at most 32 KiB) fits 16 bits")
}
