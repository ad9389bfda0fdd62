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
use super::group::{BG_INODE_UNINIT, GroupDesc, bit, set_bit};
use super::inode::{ROOT_INO, S_IFDIR, S_IFREG};
use super::le::{Le, hi32, lo16, lo32, set_split};
use super::superblock::*;
use super::{Ext4, Meta, Time};
use crate::device::Device;
use crate::error::{Block, Error, ErrorKind, Ino, Result};

const BG_INODE_ZEROED: u16 = 0x4;
const JOURNAL_INO: Ino = Ino(8);
const INODE_SIZE: u16 = 256;
const INODE_RATIO: u64 = 16384;
const LOG_GROUPS_PER_FLEX: u8 = 4;
const GROUPS_PER_FLEX: u32 = 1 << LOG_GROUPS_PER_FLEX;

fn invalid(what: impl Into<String>) -> Error {
    Error::new("mkfs", ErrorKind::InvalidGeometry(what.into()))
}

/// A size in bytes or blocks of a buffer mkfs builds in memory.
fn in_memory(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| invalid(format!("{n} is too large for memory")))
}

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
    first_data_block: Block,
    blocks: u64,
    groups: u32,
    bpg: u32,
    ipg: u32,
    itable_blocks: u64,
    gdt_blocks: u64,
    desc_size: usize,
}

impl Geometry {
    fn new(region_len: u64, o: &MkfsOptions) -> Result<Geometry> {
        if o.block_size != 1024 && o.block_size != 4096 {
            return Err(invalid(format!(
                "block size {} (use 1024 or 4096)",
                o.block_size
            )));
        }
        let bs = o.block_size;
        let first_data_block = u64::from(bs == 1024);
        let bpg = 8 * bs as u64;
        let mut blocks = region_len / bs as u64;
        let desc_size = if o.bit64 { 64 } else { 32 };
        if !o.bit64 && blocks > u64::from(u32::MAX) {
            return Err(invalid("more than 2^32 blocks need the 64bit feature"));
        }
        let too_small = || {
            invalid(format!(
                "{region_len} bytes is too small for an ext4 filesystem"
            ))
        };
        if blocks <= first_data_block {
            return Err(too_small());
        }
        let inodes_per_block = (bs / usize::from(INODE_SIZE)) as u64;
        let mut groups;
        let mut ipg;
        let mut gdt_blocks;
        loop {
            groups = u32::try_from((blocks - first_data_block).div_ceil(bpg))
                .map_err(|_| invalid("more than 2^32 block groups"))?;
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
        let itable_blocks = ipg * u64::from(INODE_SIZE) / bs as u64;
        // Both at most 8 * 4096: one bitmap block's bits.
        let bpg = u32::try_from(bpg).map_err(|_| invalid("blocks per group"))?;
        let ipg = u32::try_from(ipg).map_err(|_| invalid("inodes per group"))?;
        if ipg.checked_mul(groups).is_none() {
            return Err(invalid("more than 2^32 inodes"));
        }
        let g = Geometry {
            bs,
            first_data_block: Block(first_data_block),
            blocks,
            groups,
            bpg,
            ipg,
            itable_blocks,
            gdt_blocks,
            desc_size,
        };
        if g.blocks < 64 + journal_blocks(g.blocks) + (g.metadata_end(0) - g.first_data_block) {
            return Err(too_small());
        }
        Ok(g)
    }

    fn group_start(&self, g: u32) -> Block {
        self.first_data_block + u64::from(g) * u64::from(self.bpg)
    }

    /// Blocks in group `g` (the last group may be short).
    fn group_len(&self, g: u32) -> u32 {
        let left = self.blocks - self.group_start(g).0;
        u32::try_from(left).map_or(self.bpg, |left| left.min(self.bpg))
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
    fn placement(&self, g: u32, sb: &Superblock) -> (Block, Block, Block) {
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
    fn metadata_end(&self, first: u32) -> Block {
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
            let mut mark = |b: Block| {
                if let Some(i) =
                    b.0.checked_sub(start.0)
                        .and_then(|i| u32::try_from(i).ok())
                        .filter(|&i| i < g.bpg)
                {
                    set_bit(&mut map, i as usize, true);
                }
            };
            start.run(g.super_blocks(grp, &sb)).for_each(&mut mark);
            for other in 0..g.groups {
                let (bb, ib, it) = g.placement(other, &sb);
                mark(bb);
                mark(ib);
                it.run(g.itable_blocks).for_each(&mut mark);
            }
            let len = g.group_len(grp);
            for i in len as usize..bs * 8 {
                set_bit(&mut map, i, true);
            }
            let free: u32 = (0..len).map(|i| u32::from(!bit(&map, i as usize))).sum();
            free_total += u64::from(free);
            let (bb, ib, it) = g.placement(grp, &sb);
            let mut d = GroupDesc {
                raw: vec![0u8; g.desc_size],
            };
            d.set_locations(bb, ib, it);
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
            set_bit(&mut imap0, i, true);
        }
        let mut empty_imap = vec![0u8; bs];
        for map in [&mut imap0, &mut empty_imap] {
            for i in g.ipg as usize..bs * 8 {
                set_bit(map, i, true);
            }
        }
        let seed = sb.csum_seed();
        for (grp, d) in (0u32..).zip(descs.iter_mut()) {
            let imap = if grp == 0 { &imap0 } else { &empty_imap };
            let b = crc32c(seed, &bitmaps[grp as usize][..g.bpg as usize / 8]);
            let i = crc32c(seed, &imap[..g.ipg as usize / 8]);
            d.set_bitmap_csums(b, i);
            let c = d.checksum(grp, true, seed, sb.uuid());
            d.raw.set_u16(0x1E, c);
        }
        let mut gdt = vec![0u8; in_memory(g.gdt_blocks)? * bs];
        for (i, d) in descs.iter().enumerate() {
            gdt[i * g.desc_size..(i + 1) * g.desc_size].copy_from_slice(&d.raw);
        }

        // Write: bitmaps, zeroed inode tables, descriptor tables and superblock copies.
        for grp in 0..g.groups {
            let (bb, ib, it) = g.placement(grp, &sb);
            put(bb.offset(bs), &bitmaps[grp as usize])?;
            put(ib.offset(bs), if grp == 0 { &imap0 } else { &empty_imap })?;
            let zeros = vec![0u8; in_memory(g.itable_blocks)? * bs];
            if grp == 0 {
                put(it.offset(bs), &zeros)?;
            }
            if sb.group_has_super(grp) {
                let start = g.group_start(grp);
                let mut copy = sb.clone();
                // s_block_group_nr is 16 bits; e2fsprogs stores the low bits as well.
                copy.raw.set_u16(0x5A, lo16(grp));
                copy.finalize();
                let at = if grp == 0 {
                    SB_OFFSET
                } else {
                    start.offset(bs)
                };
                put(at, &copy.raw)?;
                put((start + 1).offset(bs), &gdt)?;
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
            let mut inode = self.new_inode(Ino(ino), 0, Time::default());
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
        self.store_data(&mut root, "/", &block)?;
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
        let mut data = vec![0u8; in_memory(blocks)? * bs];
        let be =
            |d: &mut [u8], off: usize, v: u32| d[off..off + 4].copy_from_slice(&v.to_be_bytes());
        be(&mut data, 0x0, 0xC03B_3998); // magic
        be(&mut data, 0x4, 4); // superblock v2
        be(
            &mut data,
            0xC,
            u32::try_from(bs).map_err(|_| invalid("block size"))?,
        );
        be(
            &mut data,
            0x10,
            u32::try_from(blocks).map_err(|_| invalid("journal size"))?,
        );
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
            for b in start.run(len) {
                self.blocks
                    .write(b, chunks.next().expect("one chunk per block").to_vec());
            }
        }
        let tree = self.set_extents(&mut inode, &runs)?;
        inode.set_size(blocks * bs as u64);
        inode.set_blocks_512((blocks + tree) * (bs as u64 / 512));
        self.write_inode(&mut inode)?;
        // The superblock keeps a copy of the journal inode's block map.
        self.sb.raw.set_u32(0xE0, JOURNAL_INO.0);
        for i in 0..15 {
            let v = inode.i_block().u32_at(i * 4);
            self.sb.raw.set_u32(0x10C + i * 4, v);
        }
        self.sb.raw.set_u32(0x10C + 15 * 4, hi32(inode.size()));
        self.sb.raw.set_u32(0x10C + 16 * 4, lo32(inode.size()));
        self.sb.raw.set_u8(0xFD, 1); // EXT3_JNL_BACKUP_BLOCKS
        Ok(())
    }
}

fn superblock(g: &Geometry, o: &MkfsOptions) -> Superblock {
    let mut r = vec![0u8; SB_SIZE];
    let inodes = g.ipg * g.groups;
    r.set_u32(0x0, inodes);
    let hi = |off| o.bit64.then_some(off);
    set_split(&mut r, 0x4, hi(0x150), 4, g.blocks);
    set_split(&mut r, 0x8, hi(0x154), 4, g.blocks / 20); // 5% reserved for root
    r.set_u32(0x14, g.first_data_block.lo());
    let log = (g.bs / 1024).trailing_zeros();
    r.set_u32(0x18, log);
    r.set_u32(0x1C, log);
    r.set_u32(0x20, g.bpg);
    r.set_u32(0x24, g.bpg);
    r.set_u32(0x28, g.ipg);
    r.set_u32(0x30, o.time);
    r.set_u16(0x36, 0xFFFF); // no mount-count checks
    r.set_u16(0x38, MAGIC);
    r.set_u16(0x3A, 1); // clean
    r.set_u16(0x3C, 1); // on errors: continue
    r.set_u32(0x40, o.time);
    r.set_u32(0x4C, 1); // dynamic revision
    r.set_u32(0x54, 11);
    r.set_u16(0x58, INODE_SIZE);
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
    for i in 0..4u32 {
        let v = crc32c(i, &o.uuid);
        r.set_u32(0xEC + 4 * i as usize, v);
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
    r.set_u8(0x174, LOG_GROUPS_PER_FLEX);
    r.set_u8(0x175, 1); // crc32c
    let mut sb = Superblock { raw: r };
    if o.csum_seed {
        let s = crc32c(!0, &o.uuid);
        sb.raw.set_u32(0x270, s);
    }
    sb.finalize();
    sb
}
