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
    b.set_u32(lo_off, v as u32);
    match (hi_off, hi_bytes) {
        (Some(o), 2) => b.set_u16(o, (v >> 32) as u16),
        (Some(o), 4) => b.set_u32(o, (v >> 32) as u32),
        _ => {}
    }
}
