//! pibake's own mkfs: a new, empty ext4 filesystem shaped like a Raspberry Pi OS root.
//!
//! The built-in demo and the tests need roots without running e2fsprogs. This lays out
//! the static metadata (superblock and its sparse backups, group descriptors, bitmaps,
//! zeroed inode tables, flex_bg-packed as mke2fs does), then opens the result with the
//! ordinary writer to create the root directory, `lost+found` and the journal, so that
//! allocation and checksums come from one place.
//!
//! Features: those of a Raspberry Pi OS root (`has_journal ext_attr dir_index filetype
//! extent flex_bg sparse_super large_file dir_nlink extra_isize metadata_csum`), optionally
//! `64bit` and `metadata_csum_seed`. Not made: `resize_inode` (reserved descriptor blocks
//! only matter for growing a mounted filesystem past its reserve) and `orphan_file`.

use super::csum::crc32c;
use super::group::{BG_INODE_UNINIT, GroupDesc};
use super::inode::{ROOT_INO, S_IFDIR, S_IFREG};
use super::le::Le;
use super::superblock::*;
use super::{Ext4, Meta, Time};
use crate::device::Device;
use crate::error::{Error, ErrorKind, Result};

const BG_INODE_ZEROED: u16 = 0x4;
const JOURNAL_INO: u32 = 8;
const INODE_SIZE: usize = 256;
const INODE_RATIO: u64 = 16384;
const GROUPS_PER_FLEX: u32 = 16;

/// How to make the filesystem. [`MkfsOptions::new`] gives a Raspberry Pi OS root.
#[derive(Debug, Clone)]
pub struct MkfsOptions {
    /// 4096 (what Raspberry Pi OS uses) or 1024.
    pub block_size: usize,
    /// The volume label (`rootfs` on Raspberry Pi OS), at most 16 bytes.
    pub label: String,
    /// Filesystem UUID; also seeds the directory hash, so one UUID gives one layout.
    pub uuid: [u8; 16],
    /// Creation time, stamped on everything mkfs makes.
    pub time: u32,
    /// The `64bit` feature (wide descriptors), as current mke2fs sets it.
    pub bit64: bool,
    /// The `metadata_csum_seed` feature: checksums seeded from a stored value, not the UUID.
    pub csum_seed: bool,
}

impl MkfsOptions {
    /// 4 KiB blocks, the label `rootfs`, 32-bit descriptors, checksums seeded from the UUID.
    pub fn new(uuid: [u8; 16], time: u32) -> MkfsOptions {
        MkfsOptions {
            block_size: 4096,
            label: "rootfs".into(),
            uuid,
            time,
            bit64: false,
            csum_seed: false,
        }
    }
}

/// Journal size by filesystem size, as mke2fs chooses it (`ext2fs_default_journal_size`).
fn journal_blocks(blocks: u64) -> u64 {
    match blocks {
        b if b < 2048 => 0,
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        _ => 32768,
    }
}

/// Where a group's metadata lives.
struct Geometry {
    bs: usize,
    first_data_block: u64,
    blocks: u64,
    groups: u32,
    bpg: u64,
    ipg: u32,
    itable_blocks: u64,
    gdt_blocks: u64,
    desc_size: usize,
}

impl Geometry {
    fn new(region_len: u64, o: &MkfsOptions) -> Result<Geometry> {
        if o.block_size != 1024 && o.block_size != 4096 {
            return Err(Error::new(
                "mkfs",
                ErrorKind::InvalidGeometry(format!(
                    "block size {} (use 1024 or 4096)",
                    o.block_size
                )),
            ));
        }
        let bs = o.block_size;
        let first_data_block = u64::from(bs == 1024);
        let bpg = 8 * bs as u64;
        let mut blocks = region_len / bs as u64;
        let desc_size = if o.bit64 { 64 } else { 32 };
        if !o.bit64 && blocks > u64::from(u32::MAX) {
            return Err(Error::new(
                "mkfs",
                ErrorKind::InvalidGeometry("more than 2^32 blocks need the 64bit feature".into()),
            ));
        }
        let inodes_per_block = (bs / INODE_SIZE) as u64;
        let mut groups;
        let mut ipg;
        let mut gdt_blocks;
        loop {
            groups = (blocks - first_data_block).div_ceil(bpg) as u32;
            gdt_blocks = (u64::from(groups) * desc_size as u64).div_ceil(bs as u64);
            let inodes = (blocks * bs as u64 / INODE_RATIO).max(16 * u64::from(groups));
            ipg = inodes
                .div_ceil(u64::from(groups))
                .div_ceil(inodes_per_block)
                * inodes_per_block;
            ipg = ipg.clamp(16, bpg);
            // A last group too small for its own metadata is dropped, as mke2fs does.
            let last = (blocks - first_data_block) - u64::from(groups - 1) * bpg;
            if groups > 1 && last < 1 + gdt_blocks + 64 {
                blocks -= last;
                continue;
            }
            break;
        }
        let itable_blocks = ipg * INODE_SIZE as u64 / bs as u64;
        let g = Geometry {
            bs,
            first_data_block,
            blocks,
            groups,
            bpg,
            ipg: ipg as u32,
            itable_blocks,
            gdt_blocks,
            desc_size,
        };
        if g.blocks < 64 + journal_blocks(g.blocks) + g.metadata_end(0) - g.first_data_block {
            return Err(Error::new(
                "mkfs",
                ErrorKind::InvalidGeometry(format!(
                    "{region_len} bytes is too small for an ext4 filesystem"
                )),
            ));
        }
        Ok(g)
    }

    fn group_start(&self, g: u32) -> u64 {
        self.first_data_block + u64::from(g) * self.bpg
    }

    fn group_len(&self, g: u32) -> u64 {
        (self.group_start(g) + self.bpg).min(self.blocks) - self.group_start(g)
    }

    /// Superblock copy plus descriptor table at the start of `g`, if it has them.
    fn super_blocks(&self, g: u32, sb: &Superblock) -> u64 {
        if sb.group_has_super(g) {
            1 + self.gdt_blocks
        } else {
            0
        }
    }

    /// Block, inode bitmap and inode table of group `g`: packed at the start of its flex
    /// group's first group, after that group's superblock copy.
    fn placement(&self, g: u32, sb: &Superblock) -> (u64, u64, u64) {
        let first = g - g % GROUPS_PER_FLEX;
        let n = u64::from(GROUPS_PER_FLEX.min(self.groups - first));
        let base = self.group_start(first) + self.super_blocks(first, sb);
        let i = u64::from(g - first);
        (
            base + i,
            base + n + i,
            base + 2 * n + i * self.itable_blocks,
        )
    }

    /// First block after all of group 0's flex metadata.
    fn metadata_end(&self, first: u32) -> u64 {
        let n = u64::from(GROUPS_PER_FLEX.min(self.groups - first));
        self.group_start(first) + 1 + self.gdt_blocks + n * (2 + self.itable_blocks)
    }
}

impl Ext4 {
    /// Makes a new filesystem over the whole region and returns it open for writing,
    /// with its root directory, `lost+found` and journal already in place and committed.
    pub fn mkfs(mut dev: impl Device + Send + 'static, o: &MkfsOptions) -> Result<Ext4> {
        let g = Geometry::new(dev.len(), o)?;
        let origin = dev.label();
        let mut put = |at: u64, data: &[u8]| {
            dev.write_all_at(at, data)
                .map_err(|e| Error::new(&origin, ErrorKind::Io(e)))
        };
        let sb = superblock(&g, o);
        let bs = g.bs;

        // Descriptors and bitmaps, from the placement of every group's metadata.
        let mut descs = Vec::new();
        let mut bitmaps = Vec::new();
        let mut free_total = 0u64;
        for grp in 0..g.groups {
            let start = g.group_start(grp);
            let mut map = vec![0u8; bs];
            let mut mark = |b: u64| {
                if (start..start + g.bpg).contains(&b) {
                    let i = (b - start) as usize;
                    map[i / 8] |= 1 << (i % 8);
                }
            };
            for b in start..start + g.super_blocks(grp, &sb) {
                mark(b);
            }
            for other in 0..g.groups {
                let (bb, ib, it) = g.placement(other, &sb);
                mark(bb);
                mark(ib);
                for b in it..it + g.itable_blocks {
                    mark(b);
                }
            }
            for i in g.group_len(grp) as usize..bs * 8 {
                map[i / 8] |= 1 << (i % 8);
            }
            let used: u32 = map.iter().map(|b| b.count_ones()).sum::<u32>()
                - (bs * 8 - g.group_len(grp) as usize) as u32;
            let free = g.group_len(grp) as u32 - used;
            free_total += u64::from(free);
            let (bb, ib, it) = g.placement(grp, &sb);
            let mut d = GroupDesc {
                raw: vec![0u8; g.desc_size],
            };
            d.raw.set_u32(0x0, bb as u32);
            d.raw.set_u32(0x4, ib as u32);
            d.raw.set_u32(0x8, it as u32);
            if g.desc_size >= 64 {
                d.raw.set_u32(0x20, (bb >> 32) as u32);
                d.raw.set_u32(0x24, (ib >> 32) as u32);
                d.raw.set_u32(0x28, (it >> 32) as u32);
            }
            d.set_free_blocks(free);
            let reserved = if grp == 0 { sb.first_ino() - 1 } else { 0 };
            d.set_free_inodes(g.ipg - reserved);
            d.set_itable_unused(g.ipg - reserved);
            // Only group 0's table is written as zeros here; the kernel zeroes the rest
            // lazily, and until then they are marked unused.
            d.set_flags(if grp == 0 {
                BG_INODE_ZEROED
            } else {
                BG_INODE_UNINIT
            });
            descs.push(d);
            bitmaps.push(map);
        }
        let mut sb = sb;
        sb.set_free_blocks(free_total);
        sb.set_free_inodes(g.ipg * g.groups - (sb.first_ino() - 1));

        // Group 0's inode bitmap: the reserved inodes are in use.
        let mut imap0 = vec![0u8; bs];
        for i in 0..(sb.first_ino() - 1) as usize {
            imap0[i / 8] |= 1 << (i % 8);
        }
        let mut empty_imap = vec![0u8; bs];
        for map in [&mut imap0, &mut empty_imap] {
            for i in g.ipg as usize..bs * 8 {
                map[i / 8] |= 1 << (i % 8);
            }
        }
        let seed = sb.csum_seed();
        for (grp, d) in descs.iter_mut().enumerate() {
            let imap = if grp == 0 { &imap0 } else { &empty_imap };
            let b = crc32c(seed, &bitmaps[grp][..g.bpg as usize / 8]);
            let i = crc32c(seed, &imap[..g.ipg as usize / 8]);
            d.raw.set_u16(0x18, b as u16);
            d.raw.set_u16(0x1A, i as u16);
            if g.desc_size >= 64 {
                d.raw.set_u16(0x38, (b >> 16) as u16);
                d.raw.set_u16(0x3A, (i >> 16) as u16);
            }
            let c = d.checksum(grp as u32, true, seed, sb.uuid());
            d.raw.set_u16(0x1E, c);
        }
        let mut gdt = vec![0u8; (g.gdt_blocks as usize) * bs];
        for (i, d) in descs.iter().enumerate() {
            gdt[i * g.desc_size..(i + 1) * g.desc_size].copy_from_slice(&d.raw);
        }

        // Write: bitmaps, zeroed inode tables, descriptor tables and superblock copies.
        for grp in 0..g.groups {
            let (bb, ib, it) = g.placement(grp, &sb);
            put(bb * bs as u64, &bitmaps[grp as usize])?;
            put(ib * bs as u64, if grp == 0 { &imap0 } else { &empty_imap })?;
            let zeros = vec![0u8; g.itable_blocks as usize * bs];
            if grp == 0 {
                put(it * bs as u64, &zeros)?;
            }
            if sb.group_has_super(grp) {
                let start = g.group_start(grp);
                let mut copy = sb.clone();
                copy.raw.set_u16(0x5A, grp as u16);
                copy.finalize();
                let at = if grp == 0 {
                    SB_OFFSET
                } else {
                    start * bs as u64
                };
                put(at, &copy.raw)?;
                put((start + 1) * bs as u64, &gdt)?;
            }
        }

        let mut fs = Ext4::open_rw(dev)?;
        fs.set_time(Time::from_secs(i64::from(o.time)));
        fs.make_reserved_inodes()?;
        fs.make_root()?;
        fs.mkdir_p("/lost+found", &Meta::new(0o700, 0, 0))?;
        let jblocks = journal_blocks(g.blocks);
        if jblocks > 0 {
            fs.make_journal(jblocks)?;
        }
        fs.commit()?;
        Ok(fs)
    }

    /// Reserved inodes 1 to 10 (other than the root and the journal) exist, empty, with
    /// valid checksums.
    fn make_reserved_inodes(&mut self) -> Result<()> {
        for ino in 1..self.sb.first_ino() {
            let mut inode = self.new_inode(ino, 0, Time::default());
            inode.raw.set_u32(0x64, 0);
            self.write_inode(&mut inode)?;
        }
        Ok(())
    }

    fn make_root(&mut self) -> Result<()> {
        let mut root = self.new_inode(ROOT_INO, S_IFDIR | 0o755, self.time);
        root.set_links(2);
        let mut block = self.empty_leaf();
        let end = self.leaf_end();
        let dir = super::Kind::Dir.dirent_type();
        super::dir::insert_into_block(&mut block, end, ROOT_INO, b".", dir)?;
        super::dir::insert_into_block(&mut block, end, ROOT_INO, b"..", dir)?;
        self.store_data(&mut root, &block)?;
        let b = self.mapping(&root)?.extents[0].start;
        self.write_leaf(&root, b, block);
        self.write_inode(&mut root)?;
        let d = &mut self.groups[0];
        d.set_used_dirs(d.used_dirs() + 1);
        self.dirty_groups.insert(0);
        Ok(())
    }

    /// The journal: a contiguous file whose first block is a clean jbd2 superblock.
    fn make_journal(&mut self, blocks: u64) -> Result<()> {
        let bs = self.bs;
        let mut data = vec![0u8; blocks as usize * bs];
        let be =
            |d: &mut [u8], off: usize, v: u32| d[off..off + 4].copy_from_slice(&v.to_be_bytes());
        be(&mut data, 0x0, 0xC03B_3998); // magic
        be(&mut data, 0x4, 4); // superblock v2
        be(&mut data, 0xC, bs as u32);
        be(&mut data, 0x10, blocks as u32);
        be(&mut data, 0x14, 1); // first log block
        be(&mut data, 0x18, 1); // first expected sequence
        if self.sb.is_64bit() {
            be(&mut data, 0x28, 0x2); // JBD2_FEATURE_INCOMPAT_64BIT
        }
        data[0x30..0x40].copy_from_slice(self.sb.uuid());
        be(&mut data, 0x40, 1); // one user: this filesystem
        let mut inode = self.new_inode(JOURNAL_INO, S_IFREG | 0o600, self.time);
        inode.set_links(1);
        // In the middle of the filesystem, as mke2fs places it.
        let mid = self.sb.groups() / 2;
        let runs = self.alloc_blocks(mid, blocks)?;
        let mut chunks = data.chunks(bs);
        for &(start, len) in &runs {
            for b in start..start + len {
                self.blocks
                    .write(b, chunks.next().expect("one chunk per block").to_vec());
            }
        }
        let tree = self.set_extents(&mut inode, &runs)?;
        inode.set_size(blocks * bs as u64);
        inode.set_blocks_512((blocks + tree) * (bs as u64 / 512));
        self.write_inode(&mut inode)?;
        // The superblock keeps a copy of the journal inode's block map.
        self.sb.raw.set_u32(0xE0, JOURNAL_INO);
        for i in 0..15 {
            let v = inode.i_block().u32_at(i * 4);
            self.sb.raw.set_u32(0x10C + i * 4, v);
        }
        self.sb
            .raw
            .set_u32(0x10C + 15 * 4, (inode.size() >> 32) as u32);
        self.sb.raw.set_u32(0x10C + 16 * 4, inode.size() as u32);
        self.sb.raw.set_u8(0xFD, 1); // EXT3_JNL_BACKUP_BLOCKS
        Ok(())
    }
}

fn superblock(g: &Geometry, o: &MkfsOptions) -> Superblock {
    let mut r = vec![0u8; SB_SIZE];
    let inodes = g.ipg * g.groups;
    r.set_u32(0x0, inodes);
    r.set_u32(0x4, g.blocks as u32);
    r.set_u32(0x8, (g.blocks / 20) as u32); // 5% reserved for root
    r.set_u32(0x14, g.first_data_block as u32);
    let log = (g.bs / 1024).trailing_zeros();
    r.set_u32(0x18, log);
    r.set_u32(0x1C, log);
    r.set_u32(0x20, g.bpg as u32);
    r.set_u32(0x24, g.bpg as u32);
    r.set_u32(0x28, g.ipg);
    r.set_u32(0x30, o.time);
    r.set_u16(0x36, 0xFFFF); // no mount-count checks
    r.set_u16(0x38, MAGIC);
    r.set_u16(0x3A, 1); // clean
    r.set_u16(0x3C, 1); // on errors: continue
    r.set_u32(0x40, o.time);
    r.set_u32(0x4C, 1); // dynamic revision
    r.set_u32(0x54, 11);
    r.set_u16(0x58, INODE_SIZE as u16);
    let journal = if journal_blocks(g.blocks) > 0 {
        COMPAT_HAS_JOURNAL
    } else {
        0
    };
    r.set_u32(0x5C, journal | COMPAT_EXT_ATTR | COMPAT_DIR_INDEX);
    let mut incompat = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG;
    if o.bit64 {
        incompat |= INCOMPAT_64BIT;
    }
    if o.csum_seed {
        incompat |= INCOMPAT_CSUM_SEED;
    }
    r.set_u32(0x60, incompat);
    r.set_u32(
        0x64,
        RO_COMPAT_SPARSE_SUPER
            | RO_COMPAT_LARGE_FILE
            | RO_COMPAT_DIR_NLINK
            | RO_COMPAT_EXTRA_ISIZE
            | RO_COMPAT_METADATA_CSUM,
    );
    r[0x68..0x78].copy_from_slice(&o.uuid);
    let label = o.label.as_bytes();
    r[0x78..0x78 + label.len().min(16)].copy_from_slice(&label[..label.len().min(16)]);
    // Directory hash seed: derived from the UUID so one UUID gives one layout.
    for i in 0..4 {
        let v = crc32c(i as u32, &o.uuid);
        r.set_u32(0xEC + 4 * i, v);
    }
    r.set_u8(0xFC, 1); // half_md4
    if o.bit64 {
        r.set_u16(0xFE, 64);
    }
    r.set_u32(0x100, 0x000C); // user_xattr, acl
    r.set_u32(0x108, o.time);
    r.set_u16(0x15C, 32);
    r.set_u16(0x15E, 32);
    r.set_u32(0x160, 0x1); // signed directory hash, as mke2fs on x86 and arm64 hosts
    r.set_u8(0x174, GROUPS_PER_FLEX.trailing_zeros() as u8);
    r.set_u8(0x175, 1); // crc32c
    let mut sb = Superblock { raw: r };
    if o.csum_seed {
        let s = crc32c(!0, &o.uuid);
        sb.raw.set_u32(0x270, s);
    }
    sb.finalize();
    sb
}
