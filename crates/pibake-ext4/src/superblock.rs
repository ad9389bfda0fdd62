//! The ext4 superblock: geometry, features, and what pibake may do with them.
//!
//! pibake reads everything it needs from here and assumes nothing: block size, group
//! geometry, inode size, descriptor size, hash settings and checksum seed all vary between
//! images. Features are sorted into three bins: understood (read and write), readable only,
//! and refused. A refusal happens at open, before anything is written.

use super::csum::crc32c;
use super::le::{Le, get_split, set_split};
use crate::error::{Block, Error, ErrorKind, Result, Structure};

pub const MAGIC: u16 = 0xEF53;
pub const SB_OFFSET: u64 = 1024;
pub const SB_SIZE: usize = 1024;

// s_feature_compat
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_EXT_ATTR: u32 = 0x8;
pub const COMPAT_RESIZE_INODE: u32 = 0x10;
pub const COMPAT_DIR_INDEX: u32 = 0x20;
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;

// s_feature_incompat
pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const INCOMPAT_RECOVER: u32 = 0x4;
pub const INCOMPAT_EXTENTS: u32 = 0x40;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;

// s_feature_ro_compat
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
pub const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
pub const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x10000;

/// Incompatible features pibake reads and writes.
const INCOMPAT_KNOWN: u32 =
    INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_CSUM_SEED;
/// Read-only-compatible features pibake keeps valid when writing.
const RO_COMPAT_KNOWN: u32 = RO_COMPAT_SPARSE_SUPER
    | RO_COMPAT_LARGE_FILE
    | RO_COMPAT_HUGE_FILE
    | RO_COMPAT_GDT_CSUM
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_METADATA_CSUM;
/// Compatible features whose presence changes where metadata lives or what a writer must
/// maintain, and which pibake does not implement.
const COMPAT_REFUSED: u32 = COMPAT_SPARSE_SUPER2 | 0x100 /* exclude_bitmap */;

/// Names for error messages, as `mke2fs -O` spells them.
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x100, "mmp"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x80, "snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

/// The superblock, kept as its 1024 on-disk bytes.
#[derive(Clone)]
pub struct Superblock {
    pub raw: Vec<u8>,
}

fn names(bits: u32, table: &[(u32, &str)]) -> String {
    (0..32)
        .map(|i| 1u32 << i)
        .filter(|b| bits & b != 0)
        .map(|b| {
            table
                .iter()
                .find(|(v, _)| *v == b)
                .map_or(format!("0x{b:x}"), |(_, n)| n.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Superblock {
    /// Parses and validates the superblock bytes; `origin` names the filesystem in errors.
    pub fn parse(raw: Vec<u8>, origin: &str) -> Result<Superblock> {
        let sb = Superblock { raw };
        if sb.raw.u16_at(0x38) != MAGIC {
            return Err(Error::new(
                origin,
                ErrorKind::NotExt4 {
                    magic: sb.raw.u16_at(0x38),
                },
            ));
        }
        let bad = |what: String| {
            Err(Error::corrupt(
                origin,
                Structure::Superblock,
                format!("superblock: {what}"),
            ))
        };
        if sb.raw.u32_at(0x18) > 6 {
            return bad(format!("block size 2^(10+{})", sb.raw.u32_at(0x18)));
        }
        if sb.raw.u32_at(0x18) > 5 {
            // A 64 KiB block's directory records need the kernel's rec_len encoding for
            // 65536, which this crate does not write.
            return Err(Error::unsupported(origin, "64 KiB blocks"));
        }
        if sb.has_ro(RO_COMPAT_METADATA_CSUM) {
            let want = sb.raw.u32_at(0x3FC);
            let got = crc32c(!0, &sb.raw[..0x3FC]);
            if want != got {
                return bad(format!(
                    "checksum 0x{want:08x}, computed 0x{got:08x} (run e2fsck on the image)"
                ));
            }
        }
        let isize = sb.inode_size();
        if !(128..=sb.block_size()).contains(&isize) || !isize.is_power_of_two() {
            return bad(format!("inode size {isize}"));
        }
        if sb.first_data_block().0 >= sb.blocks_count() {
            return bad(format!(
                "first data block {} of {}",
                sb.first_data_block(),
                sb.blocks_count()
            ));
        }
        if sb.blocks_per_group() == 0
            || sb.inodes_per_group() == 0
            || u64::from(sb.blocks_per_group()) > 8 * sb.block_size() as u64
            || u64::from(sb.inodes_per_group()) > 8 * sb.block_size() as u64
        {
            return bad("group geometry".into());
        }
        if u32::try_from(sb.groups_u64()).is_err() {
            return bad(format!("{} block groups", sb.groups_u64()));
        }
        // The first inode a file may use comes after the reserved ones (11 with the
        // standard layout); e2fsck refuses anything lower, and allocation relies on it.
        if sb.first_ino() < 11 || sb.first_ino() > sb.inodes_count() {
            return bad(format!("first non-reserved inode {}", sb.first_ino()));
        }
        if sb.has_incompat(INCOMPAT_FLEX_BG) && sb.log_groups_per_flex() > 31 {
            return bad(format!(
                "log2 groups per flex group {}",
                sb.log_groups_per_flex()
            ));
        }
        // The kernel's bounds (EXT4_MIN_DESC_SIZE_64BIT, EXT4_MAX_DESC_SIZE): a descriptor
        // never spans blocks, and the smallest block is 1 KiB.
        if sb.has_incompat(INCOMPAT_64BIT)
            && (!(64..=1024).contains(&sb.desc_size()) || !sb.desc_size().is_power_of_two())
        {
            return bad(format!("descriptor size {}", sb.desc_size()));
        }
        let unknown = sb.incompat() & !(INCOMPAT_KNOWN | INCOMPAT_RECOVER);
        if unknown != 0 {
            return Err(Error::unsupported(
                origin,
                format!(
                    "ext4 feature(s) {} are not implemented",
                    names(unknown, INCOMPAT_NAMES)
                ),
            )
            .with_hint("use a stock Raspberry Pi OS image, or remove the feature with tune2fs"));
        }
        Ok(sb)
    }

    /// Refuses, before any write, what would make writing unsafe or incomplete.
    pub fn check_writable(&self, origin: &str) -> Result<()> {
        let refuse = |what: String, hint: &'static str| {
            Err(Error::unsupported(origin, what).with_hint(hint))
        };
        if self.has_incompat(INCOMPAT_RECOVER) {
            return refuse(
                "the journal needs recovery (the filesystem was not unmounted cleanly)".into(),
                "run `e2fsck -fy` on the partition (or mount and unmount it once), then retry",
            );
        }
        if self.has_ro(RO_COMPAT_ORPHAN_PRESENT) || self.raw.u32_at(0xE8) != 0 {
            return refuse(
                "the filesystem has orphan inodes awaiting cleanup".into(),
                "run `e2fsck -fy` on the partition, then retry",
            );
        }
        let state = self.raw.u16_at(0x3A);
        if state & 1 == 0 || state & 2 != 0 {
            return refuse(
                format!(
                    "the filesystem is marked {}",
                    if state & 2 != 0 {
                        "with errors"
                    } else {
                        "not clean"
                    }
                ),
                "run `e2fsck -fy` on the partition, then retry",
            );
        }
        let ro = self.ro_compat() & !RO_COMPAT_KNOWN;
        if ro != 0 {
            return refuse(
                format!(
                    "ext4 feature(s) {} are not implemented for writing",
                    names(ro, RO_COMPAT_NAMES)
                ),
                "use a stock Raspberry Pi OS image, or remove the feature with tune2fs",
            );
        }
        if self.compat() & COMPAT_REFUSED != 0 {
            return refuse(
                format!(
                    "ext4 feature(s) 0x{:x} (sparse_super2 / exclude_bitmap) are not implemented",
                    self.compat() & COMPAT_REFUSED
                ),
                "use a stock Raspberry Pi OS image",
            );
        }
        if !self.has_incompat(INCOMPAT_EXTENTS) || !self.has_incompat(INCOMPAT_FILETYPE) {
            return refuse(
                "ext2/ext3 layouts (no extents or no filetype) are not supported for writing"
                    .into(),
                "pibake writes ext4 as Raspberry Pi OS makes it",
            );
        }
        Ok(())
    }

    pub fn compat(&self) -> u32 {
        self.raw.u32_at(0x5C)
    }
    pub fn incompat(&self) -> u32 {
        self.raw.u32_at(0x60)
    }
    pub fn ro_compat(&self) -> u32 {
        self.raw.u32_at(0x64)
    }
    pub fn has_compat(&self, f: u32) -> bool {
        self.compat() & f != 0
    }
    pub fn has_incompat(&self, f: u32) -> bool {
        self.incompat() & f != 0
    }
    pub fn has_ro(&self, f: u32) -> bool {
        self.ro_compat() & f != 0
    }
    pub fn metadata_csum(&self) -> bool {
        self.has_ro(RO_COMPAT_METADATA_CSUM)
    }
    /// Group descriptors carry a checksum (CRC32C-derived or CRC16).
    pub fn group_csum(&self) -> bool {
        self.metadata_csum() || self.has_ro(RO_COMPAT_GDT_CSUM)
    }

    pub fn block_size(&self) -> usize {
        1024 << self.raw.u32_at(0x18)
    }
    pub fn blocks_count(&self) -> u64 {
        get_split(&self.raw, 0x4, self.is_64bit().then_some(0x150), 4)
    }
    pub fn set_blocks_count(&mut self, v: u64) {
        let hi = self.is_64bit().then_some(0x150);
        set_split(&mut self.raw, 0x4, hi, 4, v);
    }
    /// Blocks reserved for the superuser.
    pub fn r_blocks(&self) -> u64 {
        get_split(&self.raw, 0x8, self.is_64bit().then_some(0x154), 4)
    }
    pub fn set_r_blocks(&mut self, v: u64) {
        let hi = self.is_64bit().then_some(0x154);
        set_split(&mut self.raw, 0x8, hi, 4, v);
    }
    pub fn free_blocks(&self) -> u64 {
        get_split(&self.raw, 0xC, self.is_64bit().then_some(0x158), 4)
    }
    pub fn set_free_blocks(&mut self, v: u64) {
        let hi = self.is_64bit().then_some(0x158);
        set_split(&mut self.raw, 0xC, hi, 4, v);
    }
    pub fn inodes_count(&self) -> u32 {
        self.raw.u32_at(0x0)
    }
    pub fn set_inodes_count(&mut self, v: u32) {
        self.raw.set_u32(0x0, v);
    }
    pub fn free_inodes(&self) -> u32 {
        self.raw.u32_at(0x10)
    }
    pub fn set_free_inodes(&mut self, v: u32) {
        self.raw.set_u32(0x10, v);
    }
    pub fn first_data_block(&self) -> Block {
        Block(u64::from(self.raw.u32_at(0x14)))
    }
    pub fn blocks_per_group(&self) -> u32 {
        self.raw.u32_at(0x20)
    }
    pub fn inodes_per_group(&self) -> u32 {
        self.raw.u32_at(0x28)
    }
    pub fn first_ino(&self) -> u32 {
        if self.raw.u32_at(0x4C) == 0 {
            11
        } else {
            self.raw.u32_at(0x54)
        }
    }
    pub fn inode_size(&self) -> usize {
        if self.raw.u32_at(0x4C) == 0 {
            128
        } else {
            usize::from(self.raw.u16_at(0x58))
        }
    }
    pub fn is_64bit(&self) -> bool {
        self.has_incompat(INCOMPAT_64BIT)
    }
    pub fn desc_size(&self) -> usize {
        if self.is_64bit() {
            usize::from(self.raw.u16_at(0xFE))
        } else {
            32
        }
    }
    fn groups_u64(&self) -> u64 {
        let data = self.blocks_count() - self.first_data_block().0;
        data.div_ceil(u64::from(self.blocks_per_group()))
    }
    /// Block groups; [`Superblock::parse`] refuses a count that does not fit 32 bits.
    pub fn groups(&self) -> u32 {
        u32::try_from(self.groups_u64()).unwrap_or(u32::MAX)
    }
    pub fn uuid(&self) -> &[u8] {
        &self.raw[0x68..0x78]
    }
    pub fn hash_seed(&self) -> [u32; 4] {
        std::array::from_fn(|i| self.raw.u32_at(0xEC + 4 * i))
    }
    pub fn def_hash_version(&self) -> u8 {
        self.raw.u8_at(0xFC)
    }
    /// `s_flags` says whether the legacy hashes treat chars as unsigned.
    pub fn unsigned_hash(&self) -> bool {
        self.raw.u32_at(0x160) & 0x2 != 0
    }
    pub fn reserved_gdt_blocks(&self) -> u64 {
        u64::from(self.raw.u16_at(0xCE))
    }
    pub fn set_reserved_gdt_blocks(&mut self, v: u16) {
        self.raw.set_u16(0xCE, v);
    }
    /// `s_overhead_clusters`: 0 asks the kernel to compute it at mount.
    pub fn set_overhead_clusters(&mut self, v: u32) {
        self.raw.set_u32(0x248, v);
    }
    pub fn log_groups_per_flex(&self) -> u32 {
        u32::from(self.raw.u8_at(0x174))
    }
    pub fn want_extra_isize(&self) -> u16 {
        self.raw.u16_at(0x15E)
    }
    pub fn wtime(&self) -> u32 {
        self.raw.u32_at(0x30)
    }

    /// The seed every metadata checksum starts from.
    pub fn csum_seed(&self) -> u32 {
        if self.has_incompat(INCOMPAT_CSUM_SEED) {
            self.raw.u32_at(0x270)
        } else {
            crc32c(!0, self.uuid())
        }
    }

    /// Whether group `g` holds a backup of the superblock (always group 0).
    pub fn group_has_super(&self, g: u32) -> bool {
        if g <= 1 || !self.has_ro(RO_COMPAT_SPARSE_SUPER) {
            return true;
        }
        [3u32, 5, 7].iter().any(|&p| {
            let mut n = p;
            while n < g {
                n *= p;
            }
            n == g
        })
    }

    /// Blocks of the group-descriptor table.
    pub fn gdt_blocks(&self) -> u64 {
        (u64::from(self.groups()) * self.desc_size() as u64).div_ceil(self.block_size() as u64)
    }

    /// Recomputes the checksum before the superblock is written.
    pub fn finalize(&mut self) {
        if self.metadata_csum() {
            let c = crc32c(!0, &self.raw[..0x3FC]);
            self.raw.set_u32(0x3FC, c);
        }
    }
}
