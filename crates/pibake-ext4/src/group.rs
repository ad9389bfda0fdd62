//! Block groups: descriptors, bitmaps, and the allocator.
//!
//! Allocation is deterministic and local: the same base and the same operations give the
//! same blocks and inodes, every time. A new inode goes in its directory's group (or the
//! next one with room); a file's blocks go in the first free run long enough to hold it,
//! searching from its inode's group, and only when no such run exists anywhere is the
//! file split over several runs.
//!
//! Groups that mke2fs left uninitialised (`BLOCK_UNINIT`, `INODE_UNINIT`) have no bitmap
//! on disk; their bitmap is computed the way e2fsprogs does, and written out (with the
//! flag cleared) once pibake allocates there.

use std::collections::BTreeMap;

use super::Ext4;
use super::csum::{crc16, crc32c};
use super::le::{Le, get_split, hi16, lo16, set_split};
use crate::error::{Block, ErrorKind, Ino, Result, Structure};

pub const BG_INODE_UNINIT: u16 = 0x1;
pub const BG_BLOCK_UNINIT: u16 = 0x2;

/// One group descriptor, kept as its on-disk bytes (32 or 64 of them).
#[derive(Clone)]
pub struct GroupDesc {
    pub raw: Vec<u8>,
}

impl GroupDesc {
    fn wide(&self) -> bool {
        self.raw.len() >= 64
    }
    fn hi(&self, off: usize) -> Option<usize> {
        self.wide().then_some(off)
    }
    pub fn block_bitmap(&self) -> Block {
        Block(get_split(&self.raw, 0x0, self.hi(0x20), 4))
    }
    pub fn inode_bitmap(&self) -> Block {
        Block(get_split(&self.raw, 0x4, self.hi(0x24), 4))
    }
    pub fn inode_table(&self) -> Block {
        Block(get_split(&self.raw, 0x8, self.hi(0x28), 4))
    }
    /// Sets where the group's bitmaps and inode table are.
    pub fn set_locations(&mut self, block_bitmap: Block, inode_bitmap: Block, table: Block) {
        let wide = self.wide();
        for (lo, b) in [(0x0, block_bitmap), (0x4, inode_bitmap), (0x8, table)] {
            set_split(&mut self.raw, lo, wide.then_some(lo + 0x20), 4, b.0);
        }
    }
    fn get16(&self, lo: usize, hi: usize) -> u32 {
        let h = if self.wide() {
            u32::from(self.raw.u16_at(hi))
        } else {
            0
        };
        u32::from(self.raw.u16_at(lo)) | h << 16
    }
    fn set16(&mut self, lo: usize, hi: usize, v: u32) {
        self.raw.set_u16(lo, lo16(v));
        if self.wide() {
            self.raw.set_u16(hi, hi16(v));
        }
    }
    pub fn free_blocks(&self) -> u32 {
        self.get16(0xC, 0x2C)
    }
    pub fn set_free_blocks(&mut self, v: u32) {
        self.set16(0xC, 0x2C, v)
    }
    pub fn free_inodes(&self) -> u32 {
        self.get16(0xE, 0x2E)
    }
    pub fn set_free_inodes(&mut self, v: u32) {
        self.set16(0xE, 0x2E, v)
    }
    pub fn used_dirs(&self) -> u32 {
        self.get16(0x10, 0x30)
    }
    pub fn set_used_dirs(&mut self, v: u32) {
        self.set16(0x10, 0x30, v)
    }
    pub fn itable_unused(&self) -> u32 {
        self.get16(0x1C, 0x32)
    }
    pub fn set_itable_unused(&mut self, v: u32) {
        self.set16(0x1C, 0x32, v)
    }
    pub fn flags(&self) -> u16 {
        self.raw.u16_at(0x12)
    }
    pub fn set_flags(&mut self, v: u16) {
        self.raw.set_u16(0x12, v)
    }
    /// Stores the bitmaps' checksums (their low 16 bits only, in a 32-byte descriptor).
    pub fn set_bitmap_csums(&mut self, block: u32, inode: u32) {
        self.set16(0x18, 0x38, block);
        self.set16(0x1A, 0x3A, inode);
    }
    fn bitmap_csums(&self) -> (u32, u32) {
        let (mut b, mut i) = (
            u32::from(self.raw.u16_at(0x18)),
            u32::from(self.raw.u16_at(0x1A)),
        );
        if self.wide() {
            b |= u32::from(self.raw.u16_at(0x38)) << 16;
            i |= u32::from(self.raw.u16_at(0x3A)) << 16;
        }
        (b, i)
    }

    /// The descriptor checksum: CRC32C-derived with `metadata_csum`, else CRC16.
    pub fn checksum(&self, group: u32, metadata_csum: bool, seed: u32, uuid: &[u8]) -> u16 {
        let g = group.to_le_bytes();
        if metadata_csum {
            let mut c = crc32c(seed, &g);
            c = crc32c(c, &self.raw[..0x1E]);
            c = crc32c(c, &[0, 0]);
            c = crc32c(c, &self.raw[0x20..]);
            lo16(c)
        } else {
            let mut c = crc16(!0, uuid);
            c = crc16(c, &g);
            c = crc16(c, &self.raw[..0x1E]);
            crc16(c, &self.raw[0x20..])
        }
    }
}

/// In-memory bitmaps of the groups touched so far; written back at commit.
#[derive(Default)]
pub struct Bitmaps {
    pub blocks: BTreeMap<u32, Vec<u8>>,
    pub inodes: BTreeMap<u32, Vec<u8>>,
}

pub(crate) fn bit(map: &[u8], i: usize) -> bool {
    map[i / 8] & (1 << (i % 8)) != 0
}
pub(crate) fn set_bit(map: &mut [u8], i: usize, on: bool) {
    if on {
        map[i / 8] |= 1 << (i % 8);
    } else {
        map[i / 8] &= !(1 << (i % 8));
    }
}

impl Ext4 {
    /// Reads every group descriptor from the primary table.
    pub(super) fn load_groups(&mut self) -> Result<()> {
        let ds = self.sb.desc_size();
        let bs = self.bs;
        let start = self.sb.first_data_block() + 1;
        let mut groups = Vec::with_capacity(self.sb.groups() as usize);
        for g in 0..self.sb.groups() {
            let off = g as usize * ds;
            let block = self.blocks.read(start + (off / bs) as u64)?;
            let gd = GroupDesc {
                raw: block[off % bs..off % bs + ds].to_vec(),
            };
            if self.sb.group_csum() {
                let want = gd.raw.u16_at(0x1E);
                let got = gd.checksum(g, self.sb.metadata_csum(), self.seed, self.sb.uuid());
                if want != got {
                    return Err(self.corrupt(
                        Structure::GroupDescriptor(g),
                        format!(
                            "group descriptor {g}: checksum 0x{want:04x}, computed 0x{got:04x} (run e2fsck on the image)"
                        ),
                    ));
                }
            }
            groups.push(gd);
        }
        self.groups = groups;
        Ok(())
    }

    /// First block of group `g`.
    pub(super) fn group_start(&self, g: u32) -> Block {
        self.sb.first_data_block() + u64::from(g) * u64::from(self.sb.blocks_per_group())
    }

    /// Blocks in group `g` (the last group may be short).
    pub(super) fn group_len(&self, g: u32) -> u32 {
        let left = self.sb.blocks_count() - self.group_start(g).0;
        u32::try_from(left).map_or(self.sb.blocks_per_group(), |left| {
            left.min(self.sb.blocks_per_group())
        })
    }

    /// The group of block `b` and the block's index in that group's bitmap; a block
    /// outside the filesystem is corrupt metadata.
    fn locate(&self, b: Block) -> Result<(u32, u32)> {
        let bpg = u64::from(self.sb.blocks_per_group());
        let found =
            b.0.checked_sub(self.sb.first_data_block().0)
                .filter(|_| b.0 < self.sb.blocks_count())
                .and_then(|rel| {
                    Some((
                        u32::try_from(rel / bpg).ok()?,
                        u32::try_from(rel % bpg).ok()?,
                    ))
                });
        found.ok_or_else(|| {
            self.corrupt(
                Structure::Geometry,
                format!(
                    "block {b} is outside the filesystem (blocks {} to {})",
                    self.sb.first_data_block(),
                    self.sb.blocks_count() - 1
                ),
            )
        })
    }

    pub(super) fn itable_blocks(&self) -> u64 {
        (u64::from(self.sb.inodes_per_group()) * self.sb.inode_size() as u64)
            .div_ceil(self.bs as u64)
    }

    /// The group's block bitmap, from memory, disk, or computed for `BLOCK_UNINIT`.
    pub(super) fn block_bitmap(&mut self, g: u32) -> Result<&mut Vec<u8>> {
        if !self.bitmaps.blocks.contains_key(&g) {
            let gd = &self.groups[g as usize];
            let map = if self.sb.group_csum() && gd.flags() & BG_BLOCK_UNINIT != 0 {
                self.uninit_block_bitmap(g)
            } else {
                let map = self.blocks.read(gd.block_bitmap())?;
                let len = self.sb.blocks_per_group() as usize / 8;
                self.check_bitmap(g, "block", &map[..len], gd.bitmap_csums().0)?;
                map
            };
            self.bitmaps.blocks.insert(g, map);
        }
        Ok(self.bitmaps.blocks.get_mut(&g).expect("inserted above"))
    }

    /// Verifies a bitmap against the checksum in its descriptor (16 bits of it in a
    /// 32-byte descriptor).
    fn check_bitmap(&self, g: u32, what: &str, bits: &[u8], want: u32) -> Result<()> {
        if !self.sb.metadata_csum() {
            return Ok(());
        }
        let got = crc32c(self.seed, bits);
        let got = if self.groups[g as usize].wide() {
            got
        } else {
            got & 0xFFFF
        };
        if want != got {
            return Err(self.corrupt(
                Structure::Bitmap(g),
                format!("{what} bitmap of group {g}: checksum 0x{want:08x}, computed 0x{got:08x}"),
            ));
        }
        Ok(())
    }

    /// What e2fsprogs computes for a group whose bitmap was never written: its superblock
    /// backup and descriptor tables, any group's bitmaps and inode table that lie in it,
    /// and padding past the end of the filesystem.
    fn uninit_block_bitmap(&self, g: u32) -> Vec<u8> {
        let mut map = vec![0u8; self.bs];
        let start = self.group_start(g);
        let bpg = self.sb.blocks_per_group();
        let mut mark = |b: Block| {
            if let Some(i) =
                b.0.checked_sub(start.0)
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|&i| i < bpg)
            {
                set_bit(&mut map, i as usize, true);
            }
        };
        if self.sb.group_has_super(g) {
            let meta = 1 + self.sb.gdt_blocks() + self.sb.reserved_gdt_blocks();
            start.run(meta).for_each(&mut mark);
        }
        for gd in &self.groups {
            mark(gd.block_bitmap());
            mark(gd.inode_bitmap());
            gd.inode_table()
                .run(self.itable_blocks())
                .for_each(&mut mark);
        }
        for i in self.group_len(g) as usize..self.bs * 8 {
            set_bit(&mut map, i, true);
        }
        map
    }

    fn inode_bitmap(&mut self, g: u32) -> Result<&mut Vec<u8>> {
        if !self.bitmaps.inodes.contains_key(&g) {
            let gd = &self.groups[g as usize];
            let ipg = self.sb.inodes_per_group() as usize;
            let map = if self.sb.group_csum() && gd.flags() & BG_INODE_UNINIT != 0 {
                let mut map = vec![0u8; self.bs];
                for i in ipg..self.bs * 8 {
                    set_bit(&mut map, i, true);
                }
                map
            } else {
                let map = self.blocks.read(gd.inode_bitmap())?;
                self.check_bitmap(g, "inode", &map[..ipg / 8], gd.bitmap_csums().1)?;
                map
            };
            self.bitmaps.inodes.insert(g, map);
        }
        Ok(self.bitmaps.inodes.get_mut(&g).expect("inserted above"))
    }

    /// Allocates an inode, preferring group `goal`. Directories count in `used_dirs`.
    pub(super) fn alloc_inode(&mut self, goal: u32, dir: bool) -> Result<Ino> {
        let groups = self.sb.groups();
        let ipg = self.sb.inodes_per_group();
        for k in 0..groups {
            let g = (goal + k) % groups;
            if self.groups[g as usize].free_inodes() == 0 {
                continue;
            }
            let first = if g == 0 { self.sb.first_ino() - 1 } else { 0 };
            let map = self.inode_bitmap(g)?;
            let Some(i) = (first..ipg).find(|&i| !bit(map, i as usize)) else {
                continue;
            };
            set_bit(map, i as usize, true);
            self.blocks.changes += 1;
            let gd = &mut self.groups[g as usize];
            gd.set_free_inodes(gd.free_inodes().saturating_sub(1));
            if dir {
                gd.set_used_dirs(gd.used_dirs() + 1);
            }
            if self.sb.group_csum() {
                let unused_from = ipg - gd.itable_unused();
                if i >= unused_from {
                    gd.set_itable_unused(ipg - i - 1);
                }
                gd.set_flags(gd.flags() & !BG_INODE_UNINIT);
            }
            self.dirty_groups.insert(g);
            let free = self.sb.free_inodes().saturating_sub(1);
            self.sb.set_free_inodes(free);
            return Ok(Ino::at(g, i, ipg));
        }
        Err(self.err(ErrorKind::NoSpace {
            detail: "no free inodes left".into(),
        }))
    }

    pub(super) fn free_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        let ipg = self.sb.inodes_per_group();
        let g = ino.group(ipg);
        let map = self.inode_bitmap(g)?;
        set_bit(map, ino.index(ipg) as usize, false);
        self.blocks.changes += 1;
        let gd = &mut self.groups[g as usize];
        gd.set_free_inodes(gd.free_inodes() + 1);
        if dir {
            gd.set_used_dirs(gd.used_dirs().saturating_sub(1));
        }
        self.dirty_groups.insert(g);
        let free = self.sb.free_inodes() + 1;
        self.sb.set_free_inodes(free);
        Ok(())
    }

    /// Allocates `count` blocks as few runs as possible, searching from group `goal`:
    /// the first run that holds them all, else free runs in order until enough.
    pub(super) fn alloc_blocks(&mut self, goal: u32, count: u64) -> Result<Vec<(Block, u64)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if self.sb.free_blocks() < count {
            return Err(self.err(ErrorKind::NoSpace {
                detail: format!("{count} blocks needed, {} free", self.sb.free_blocks()),
            }));
        }
        // Free runs in search order, merged where they continue into the next group;
        // stop at the first that holds everything.
        let groups = self.sb.groups();
        let mut merged: Vec<(Block, u64)> = Vec::new();
        let mut whole = None;
        'search: for k in 0..groups {
            let g = (goal + k) % groups;
            if self.groups[g as usize].free_blocks() == 0 {
                continue;
            }
            for (s, l) in self.free_runs(g)? {
                match merged.last_mut() {
                    Some((ms, ml)) if *ms + *ml == s => *ml += l,
                    _ => merged.push((s, l)),
                }
                let &(ms, ml) = merged.last().expect("just pushed");
                if ml >= count {
                    whole = Some(ms);
                    break 'search;
                }
            }
        }
        let chosen: Vec<(Block, u64)> = if let Some(s) = whole {
            vec![(s, count)]
        } else {
            let mut left = count;
            let mut v = Vec::new();
            for &(s, l) in &merged {
                if left == 0 {
                    break;
                }
                let take = l.min(left);
                v.push((s, take));
                left -= take;
            }
            // The superblock's count said there was room; the groups disagree.
            if left > 0 {
                return Err(self.corrupt(
                    Structure::Superblock,
                    format!(
                        "{} free blocks counted, but the groups' descriptors and bitmaps hold \
                         only {} of the {count} needed (run e2fsck on the image)",
                        self.sb.free_blocks(),
                        count - left
                    ),
                ));
            }
            v
        };
        for &(s, l) in &chosen {
            self.mark_blocks(s, l, true)?;
        }
        Ok(chosen)
    }

    /// Free runs `(start, len)` of group `g`, in block order.
    fn free_runs(&mut self, g: u32) -> Result<Vec<(Block, u64)>> {
        let start = self.group_start(g);
        let len = self.group_len(g) as usize;
        let map = self.block_bitmap(g)?;
        let mut runs = Vec::new();
        let mut i = 0;
        while i < len {
            if map[i / 8] == 0xFF && i % 8 == 0 {
                i += 8;
                continue;
            }
            if bit(map, i) {
                i += 1;
                continue;
            }
            let s = i;
            while i < len && !bit(map, i) {
                i += 1;
            }
            runs.push((start + s as u64, (i - s) as u64));
        }
        Ok(runs)
    }

    /// Marks blocks used or free, keeping group and superblock counts in step.
    pub(super) fn mark_blocks(&mut self, mut start: Block, mut len: u64, used: bool) -> Result<()> {
        let bpg = self.sb.blocks_per_group();
        while len > 0 {
            let (g, first) = self.locate(start)?;
            let room = bpg - first;
            let n = u32::try_from(len).map_or(room, |len| len.min(room));
            let map = self.block_bitmap(g)?;
            for i in first..first + n {
                if bit(map, i as usize) == used {
                    return Err(self.corrupt(
                        Structure::Bitmap(g),
                        format!(
                            "block {} is already {} in the bitmap",
                            start + u64::from(i - first),
                            if used { "in use" } else { "free" }
                        ),
                    ));
                }
                set_bit(map, i as usize, used);
            }
            self.blocks.changes += 1;
            let gd = &mut self.groups[g as usize];
            let free = if used {
                gd.free_blocks() - n
            } else {
                gd.free_blocks() + n
            };
            gd.set_free_blocks(free);
            gd.set_flags(gd.flags() & !BG_BLOCK_UNINIT);
            self.dirty_groups.insert(g);
            let total = if used {
                self.sb.free_blocks() - u64::from(n)
            } else {
                self.sb.free_blocks() + u64::from(n)
            };
            self.sb.set_free_blocks(total);
            start += u64::from(n);
            len -= u64::from(n);
        }
        Ok(())
    }

    /// Writes bitmaps and descriptors of every touched group, with their checksums.
    pub(super) fn flush_groups(&mut self) -> Result<()> {
        let dirty: Vec<u32> = std::mem::take(&mut self.dirty_groups).into_iter().collect();
        let ds = self.sb.desc_size();
        let bs = self.bs;
        for g in dirty {
            let ipg = self.sb.inodes_per_group() as usize;
            let bpg = self.sb.blocks_per_group() as usize;
            let mut gd = self.groups[g as usize].clone();
            if let Some(map) = self.bitmaps.blocks.get(&g) {
                self.blocks.write(gd.block_bitmap(), map.clone());
            }
            if let Some(map) = self.bitmaps.inodes.get(&g) {
                self.blocks.write(gd.inode_bitmap(), map.clone());
            }
            if self.sb.metadata_csum() {
                let bmap = match self.bitmaps.blocks.get(&g) {
                    Some(m) => m.clone(),
                    None => self.blocks.read(gd.block_bitmap())?,
                };
                let imap = match self.bitmaps.inodes.get(&g) {
                    Some(m) => m.clone(),
                    None => self.blocks.read(gd.inode_bitmap())?,
                };
                let b = crc32c(self.seed, &bmap[..bpg / 8]);
                let i = crc32c(self.seed, &imap[..ipg / 8]);
                gd.set_bitmap_csums(b, i);
            }
            if self.sb.group_csum() {
                let c = gd.checksum(g, self.sb.metadata_csum(), self.seed, self.sb.uuid());
                gd.raw.set_u16(0x1E, c);
            }
            let off = g as usize * ds;
            let blk = self.sb.first_data_block() + 1 + (off / bs) as u64;
            let mut block = self.blocks.read(blk)?;
            block[off % bs..off % bs + ds].copy_from_slice(&gd.raw);
            self.blocks.write(blk, block);
            self.groups[g as usize] = gd;
        }
        Ok(())
    }

    /// The group an inode lives in.
    pub(super) fn group_of_inode(&self, ino: Ino) -> u32 {
        ino.group(self.sb.inodes_per_group())
    }

    /// The group of a block, as an allocation goal (any group will do for a block
    /// outside the filesystem: a goal is a preference).
    pub(super) fn group_of_block(&self, block: Block) -> u32 {
        let rel = block.0.saturating_sub(self.sb.first_data_block().0);
        u32::try_from(rel / u64::from(self.sb.blocks_per_group())).unwrap_or(0)
    }
}

impl Ext4 {
    /// Takes block `b` if it is free; used to keep a growing directory contiguous.
    pub(super) fn try_take_block(&mut self, b: Block) -> Result<bool> {
        let (g, i) = self.locate(b)?;
        if bit(self.block_bitmap(g)?, i as usize) {
            return Ok(false);
        }
        self.mark_blocks(b, 1, true)?;
        Ok(true)
    }
}
