//! Growing a filesystem offline, in place, without moving a byte of data.
//!
//! A stock Raspberry Pi OS root has a few hundred MiB free; a role's software does not
//! fit. The partition is made larger by the caller (the device this filesystem is on
//! must already hold the new size); this module then makes the filesystem fill it, the
//! way `resize2fs` grows an unmounted filesystem:
//!
//! - the last group, if short, is completed (its bitmap's padding cleared);
//! - new groups get their block and inode bitmaps and inode table inside themselves
//!   (always free: the group is new), `BLOCK_UNINIT`/`INODE_UNINIT` and `itable_unused`
//!   where descriptors carry checksums (the kernel zeroes such inode tables lazily, as
//!   after `resize2fs`), zeroed inode tables where they do not;
//! - more descriptor blocks come from the reserved GDT blocks that `resize_inode` keeps
//!   right after the table in every backup group (one 4 KiB block of 32-byte descriptors
//!   covers 16 GiB), and the resize inode is rebuilt to map what stays reserved, in the
//!   new backup groups too. A filesystem without enough reserved blocks is refused: this
//!   crate does not write `meta_bg` or move data;
//! - every backup group (`sparse_super`) gets the new superblock and descriptor table;
//! - the superblock's counts, reserved blocks (the same share as before, computed as
//!   resize2fs does so both give the same numbers) and checksum.
//!
//! The geometry follows resize2fs's rules exactly (a last group too small to hold its
//! own metadata plus 50 blocks is left out), so the same filesystem grown to the same
//! size by either has the same block, inode and free counts.

use crate::error::{Block, ErrorKind, Result, Structure};
use crate::group::{BG_BLOCK_UNINIT, BG_INODE_UNINIT, GroupDesc, set_bit};
use crate::inode::Inode;
use crate::le::{Le, lo16};
use crate::superblock::{COMPAT_RESIZE_INODE, SB_SIZE};
use crate::{Error, Ext4, Ino};

/// The resize inode, which owns the reserved GDT blocks.
const RESIZE_INO: Ino = Ino(7);
/// `i_block[EXT2_DIND_BLOCK]`: the resize inode's double-indirect block.
const DIND_SLOT: usize = 13;

/// What [`Ext4::grow`] changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Growth {
    /// Blocks before and after.
    pub old_blocks: u64,
    /// Blocks after (at most what was asked: a last group too small is left out).
    pub new_blocks: u64,
    /// Block groups before.
    pub old_groups: u32,
    /// Block groups after.
    pub new_groups: u32,
    /// Inodes before.
    pub old_inodes: u32,
    /// Inodes after.
    pub new_inodes: u32,
    /// Descriptor blocks taken from the reserved GDT blocks.
    pub descriptor_blocks_added: u64,
}

/// The grown filesystem's geometry, computed before anything changes.
struct Target {
    blocks: u64,
    groups: u32,
    reserved_gdt: u16,
}

impl Ext4 {
    /// Blocks the device under the filesystem can hold: the most [`Ext4::grow`] takes.
    pub fn device_blocks(&self) -> u64 {
        self.blocks.dev.len() / self.bs as u64
    }

    /// Blocks in the filesystem.
    pub fn blocks_count(&self) -> u64 {
        self.sb.blocks_count()
    }

    /// Grows the filesystem to `new_blocks` blocks, which its device must hold, and
    /// commits: nothing else may be pending. A size the filesystem already has changes
    /// nothing; a smaller one is refused (this only grows).
    pub fn grow(&mut self, new_blocks: u64) -> Result<Growth> {
        self.require_writable()?;
        if !self.blocks.dirty.is_empty() || !self.dirty_groups.is_empty() {
            return Err(
                Error::unsupported(&self.origin, "growing with other edits pending")
                    .with_hint("commit the edits first, then grow"),
            );
        }
        self.check_counts()?;
        let target = self.grow_target(new_blocks)?;
        let mut growth = Growth {
            old_blocks: self.sb.blocks_count(),
            new_blocks: self.sb.blocks_count(),
            old_groups: self.sb.groups(),
            new_groups: self.sb.groups(),
            old_inodes: self.sb.inodes_count(),
            new_inodes: self.sb.inodes_count(),
            descriptor_blocks_added: 0,
        };
        if target.blocks <= growth.old_blocks {
            return Ok(growth);
        }
        let old_desc = self.sb.gdt_blocks();
        self.edit(|fs| {
            fs.complete_last_group(&target)?;
            fs.set_geometry(&target);
            fs.take_reserved_gdt(old_desc)?;
            fs.add_groups(growth.old_groups)?;
            fs.rebuild_resize_inode()
        })?;
        if !self.sb.group_csum() {
            self.zero_inode_tables(growth.old_groups)?;
        }
        self.commit()?;
        self.write_backups()?;
        growth.new_blocks = self.sb.blocks_count();
        growth.new_groups = self.sb.groups();
        growth.new_inodes = self.sb.inodes_count();
        growth.descriptor_blocks_added = self.sb.gdt_blocks() - old_desc;
        Ok(growth)
    }

    /// Refuses counts that say the filesystem needs checking, as resize2fs does.
    fn check_counts(&self) -> Result<()> {
        if self.sb.free_blocks() > self.sb.blocks_count()
            || self.sb.free_inodes() > self.sb.inodes_count()
        {
            return Err(self.corrupt(
                Structure::Superblock,
                "more free blocks or inodes counted than the filesystem has \
                 (run `e2fsck -f` on the partition first, then grow)",
            ));
        }
        Ok(())
    }

    fn geometry_err(&self, what: String) -> Error {
        self.err(ErrorKind::InvalidGeometry(what))
    }

    /// The geometry of the filesystem grown to at most `new_blocks`, by resize2fs's
    /// rules (`adjust_fs_info`), or why it cannot be.
    fn grow_target(&self, new_blocks: u64) -> Result<Target> {
        let old = self.sb.blocks_count();
        if new_blocks < old {
            return Err(self.geometry_err(format!(
                "{new_blocks} blocks is smaller than the filesystem's {old}: pibake only grows"
            )));
        }
        if new_blocks > self.device_blocks() {
            return Err(self.geometry_err(format!(
                "{new_blocks} blocks do not fit the partition, which holds {}",
                self.device_blocks()
            )));
        }
        if !self.sb.is_64bit() && new_blocks > u64::from(u32::MAX) {
            return Err(self.geometry_err(format!(
                "{new_blocks} blocks need the 64bit feature, which this filesystem lacks (at most 2^32 - 1 blocks)"
            )));
        }
        let (fdb, bpg) = (
            self.sb.first_data_block().0,
            u64::from(self.sb.blocks_per_group()),
        );
        let per_desc_block = (self.bs / self.sb.desc_size()) as u64;
        let mut blocks = new_blocks;
        loop {
            let groups = (blocks - fdb).div_ceil(bpg);
            let desc_blocks = groups.div_ceil(per_desc_block);
            let last = u32::try_from(groups - 1).unwrap_or(u32::MAX);
            let mut overhead = 2 + self.itable_blocks();
            if self.sb.group_has_super(last) {
                overhead += 1 + desc_blocks + self.sb.reserved_gdt_blocks();
            }
            let rem = (blocks - fdb) % bpg;
            if groups > 1 && rem != 0 && rem < overhead + 50 {
                blocks -= rem;
                continue;
            }
            if groups * u64::from(self.sb.inodes_per_group()) > u64::from(u32::MAX) {
                if groups == 1 {
                    return Err(self.geometry_err("too many inodes".into()));
                }
                blocks = fdb + (groups - 1) * bpg;
                continue;
            }
            return self.with_descriptors(blocks, groups, desc_blocks);
        }
    }

    /// Completes `Target` with the reserved GDT blocks left once `desc_blocks`
    /// descriptor blocks are in use, refusing a growth they cannot cover.
    fn with_descriptors(&self, blocks: u64, groups: u64, desc_blocks: u64) -> Result<Target> {
        let old_desc = self.sb.gdt_blocks();
        let reserved = self.sb.reserved_gdt_blocks();
        let extra = desc_blocks.saturating_sub(old_desc);
        if extra > 0 && (!self.sb.has_compat(COMPAT_RESIZE_INODE) || extra > reserved) {
            return Err(Error::unsupported(
                &self.origin,
                format!(
                    "growing to {blocks} blocks needs {extra} more group-descriptor block(s) and the filesystem keeps {reserved} in reserve{}",
                    if self.sb.has_compat(COMPAT_RESIZE_INODE) { "" } else { " (it has no resize_inode)" }
                ),
            )
            .with_hint("grow by less, or grow this image with resize2fs (which can move data and write meta_bg)"));
        }
        Ok(Target {
            blocks,
            groups: u32::try_from(groups)
                .map_err(|_| self.geometry_err("too many groups".into()))?,
            // Within the old count, itself a u16.
            reserved_gdt: u16::try_from(reserved - extra).unwrap_or(u16::MAX),
        })
    }

    /// Clears the padding of the (old) last group's block bitmap where the group now
    /// extends, and counts the new blocks free.
    fn complete_last_group(&mut self, target: &Target) -> Result<()> {
        let g = self.sb.groups() - 1;
        let old_len = self.group_len(g);
        let start = self.group_start(g);
        let new_len = if target.groups == self.sb.groups() {
            u32::try_from(target.blocks - start.0).unwrap_or(u32::MAX)
        } else {
            self.sb.blocks_per_group()
        };
        if new_len <= old_len {
            return Ok(());
        }
        let map = self.block_bitmap(g)?;
        for i in old_len..new_len {
            set_bit(map, i as usize, false);
        }
        let gd = &mut self.groups[g as usize];
        gd.set_free_blocks(gd.free_blocks() + (new_len - old_len));
        gd.set_flags(gd.flags() & !BG_BLOCK_UNINIT);
        self.dirty_groups.insert(g);
        Ok(())
    }

    /// The superblock's new size, counts and reserve; new groups' metadata is taken
    /// off the free count as they are added.
    fn set_geometry(&mut self, target: &Target) {
        let old_blocks = self.sb.blocks_count();
        let added_groups = target.groups - self.sb.groups();
        // resize2fs keeps the reserved share in floating point; the same arithmetic gives
        // the same count.
        let percent = self.sb.r_blocks() as f64 * 100.0 / old_blocks as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // as C converts
        let reserved = (percent * target.blocks as f64 / 100.0) as u64;
        let free = self.sb.free_blocks() + (target.blocks - old_blocks);
        let ipg = self.sb.inodes_per_group();
        self.sb.set_blocks_count(target.blocks);
        self.sb.set_free_blocks(free);
        self.sb.set_r_blocks(reserved);
        self.sb.set_inodes_count(target.groups * ipg);
        self.sb
            .set_free_inodes(self.sb.free_inodes() + added_groups * ipg);
        self.sb.set_reserved_gdt_blocks(target.reserved_gdt);
        // As resize2fs leaves it: the kernel computes the overhead at mount.
        self.sb.set_overhead_clusters(0);
        self.blocks.count = target.blocks;
        self.blocks.changes += 1;
    }

    /// Zeroes the reserved GDT blocks that now hold descriptors (they held the resize
    /// inode's lists), so the table's unused tail reads as no descriptors.
    fn take_reserved_gdt(&mut self, old_desc: u64) -> Result<()> {
        let first = self.sb.first_data_block() + 1;
        for b in (first + old_desc).run(self.sb.gdt_blocks() - old_desc) {
            self.blocks.write(b, vec![0; self.bs]);
        }
        Ok(())
    }

    /// Descriptors and bitmaps of the groups from `from` on: metadata inside each group,
    /// after its superblock backup and descriptor tables where it has them.
    fn add_groups(&mut self, from: u32) -> Result<()> {
        let ipg = self.sb.inodes_per_group();
        let csum = self.sb.group_csum();
        let last = self.sb.groups() - 1;
        for g in from..=last {
            let start = self.group_start(g);
            let len = self.group_len(g);
            let meta = if self.sb.group_has_super(g) {
                1 + self.sb.gdt_blocks() + self.sb.reserved_gdt_blocks()
            } else {
                0
            };
            let used = meta + 2 + self.itable_blocks();
            let free = u64::from(len).checked_sub(used).ok_or_else(|| {
                self.geometry_err(format!("group {g} is too small for its own metadata"))
            })?;
            let mut gd = GroupDesc {
                raw: vec![0; self.sb.desc_size()],
            };
            let bitmap = start + meta;
            gd.set_locations(bitmap, bitmap + 1, bitmap + 2);
            gd.set_free_blocks(u32::try_from(free).unwrap_or(u32::MAX));
            gd.set_free_inodes(ipg);
            if csum {
                let block_uninit = if g == last { 0 } else { BG_BLOCK_UNINIT };
                gd.set_flags(BG_INODE_UNINIT | block_uninit);
                gd.set_itable_unused(ipg);
            }
            self.groups.push(gd);
            self.bitmaps
                .blocks
                .insert(g, self.fresh_bitmap(used, len as usize));
            self.bitmaps
                .inodes
                .insert(g, self.fresh_bitmap(0, ipg as usize));
            self.dirty_groups.insert(g);
            self.sb.set_free_blocks(self.sb.free_blocks() - used);
        }
        Ok(())
    }

    /// A bitmap block with its first `used` bits set, and the padding from `len` on.
    fn fresh_bitmap(&self, used: u64, len: usize) -> Vec<u8> {
        let mut map = vec![0u8; self.bs];
        // At most a group's blocks, which fit one bitmap block.
        let used = usize::try_from(used).unwrap_or(len);
        for i in (0..used).chain(len..self.bs * 8) {
            set_bit(&mut map, i, true);
        }
        map
    }

    /// Rebuilds the resize inode as e2fsprogs does (`ext2fs_create_resize_inode` after
    /// `fix_resize_inode`): its double-indirect block lists each reserved GDT block of
    /// the primary table, and each of those, as an indirect block, lists the same block
    /// in every backup group.
    fn rebuild_resize_inode(&mut self) -> Result<()> {
        if !self.sb.has_compat(COMPAT_RESIZE_INODE) {
            return Ok(());
        }
        let mut inode = self.inode(RESIZE_INO)?;
        let dind = inode.i_block().u32_at(4 * DIND_SLOT);
        if dind == 0 {
            return Err(self.corrupt(
                Structure::Inode(RESIZE_INO),
                "the resize inode has no double-indirect block \
                 (run `e2fsck -f` on the partition first, then grow)",
            ));
        }
        let per_block = self.bs / 4;
        let mut dind_buf = vec![0u8; self.bs];
        let mut owned = 1u64;
        let backups: Vec<u64> = (1..self.sb.groups())
            .filter(|&g| self.sb.group_has_super(g))
            .map(|g| u64::from(g) * u64::from(self.sb.blocks_per_group()))
            .collect();
        let desc = self.sb.gdt_blocks();
        for k in 0..self.sb.reserved_gdt_blocks() {
            let primary = self.sb.first_data_block() + 1 + desc + k;
            let slot = usize::try_from((desc + k) % per_block as u64).expect("below per_block");
            dind_buf.set_u32(4 * slot, self.block32(primary)?);
            let mut list = vec![0u8; self.bs];
            if backups.len() > per_block {
                return Err(self.geometry_err("more backup groups than one block lists".into()));
            }
            for (i, &offset) in backups.iter().enumerate() {
                list.set_u32(4 * i, self.block32(primary + offset)?);
            }
            self.blocks.write(primary, list);
            owned += 1 + backups.len() as u64;
        }
        self.blocks.write(Block(u64::from(dind)), dind_buf);
        self.finish_resize_inode(&mut inode, owned)
    }

    fn finish_resize_inode(&mut self, inode: &mut Inode, blocks: u64) -> Result<()> {
        inode.set_blocks_512(blocks * (self.bs as u64 / 512));
        inode.set_mtime(self.time);
        inode.set_atime(self.time);
        self.write_inode(inode)
    }

    /// A block number for the resize inode's 32-bit block lists.
    fn block32(&self, b: Block) -> Result<u32> {
        u32::try_from(b.0).map_err(|_| {
            Error::unsupported(
                &self.origin,
                format!("reserved GDT block {b} is past what the resize inode can address"),
            )
        })
    }

    /// Writes zeros over the inode tables of the groups from `from` on, for
    /// filesystems whose descriptors cannot say "not initialised" (no group checksums).
    fn zero_inode_tables(&mut self, from: u32) -> Result<()> {
        let zeros = vec![0u8; self.bs * 256];
        for g in from..self.sb.groups() {
            let table = self.groups[g as usize].inode_table();
            let mut left = self.itable_blocks();
            let mut at = table;
            while left > 0 {
                let n = left.min(256);
                let bytes = usize::try_from(n).expect("at most 256") * self.bs;
                self.blocks
                    .write_bytes(at.offset(self.bs), &zeros[..bytes])?;
                at += n;
                left -= n;
            }
        }
        Ok(())
    }

    /// Copies the committed superblock and descriptor table into every backup group
    /// (`sparse_super`), as resize2fs's final flush does: old backups learn the new
    /// size, new backup groups get theirs.
    fn write_backups(&mut self) -> Result<()> {
        let first = self.sb.first_data_block() + 1;
        let table = self.blocks.read_run(first, self.sb.gdt_blocks())?;
        for g in 1..self.sb.groups() {
            if !self.sb.group_has_super(g) {
                continue;
            }
            let start = self.group_start(g);
            let mut copy = self.sb.clone();
            copy.raw.set_u16(0x5A, lo16(g));
            copy.finalize();
            debug_assert_eq!(copy.raw.len(), SB_SIZE);
            self.blocks.write_bytes(start.offset(self.bs), &copy.raw)?;
            self.blocks
                .write_bytes((start + 1).offset(self.bs), &table)?;
        }
        Ok(())
    }
}
