//! The two checksums ext4 metadata carries.
//!
//! With `metadata_csum`, every metadata block holds a CRC32C. ext4 chains it the way the
//! kernel's `crc32c()` does: no inversion on entry or exit, seeded with the filesystem's
//! seed (or a per-inode seed derived from it). The `crc32c` crate computes the standard,
//! inverted form, so [`crc32c`] undoes both inversions. Without `metadata_csum`, group
//! descriptors may still carry a CRC16 (`gdt_csum`, the older `uninit_bg` feature).

/// The kernel's `crc32c(seed, data)`: CRC32C without the standard pre- and post-inversion.
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// The ANSI CRC16 (polynomial 0x8005, reflected) that `gdt_csum` uses, as `crc16()` in
/// the kernel.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_ansi_check_value() {
        // CRC-16/ARC of "123456789" is 0xBB3D (init 0, reflected 0x8005).
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }

    #[test]
    fn crc32c_is_the_uninverted_form() {
        // Standard CRC32C of "123456789" is 0xE3069283; the raw form with seed !0 is its
        // complement.
        assert_eq!(crc32c(!0, b"123456789"), !0xE3069283);
    }
}
