//! Inodes: read, checked, changed in place, checksummed, written back.

use super::Ext4;
use super::csum::crc32c;
use super::le::{Le, get_split, hi16, in_block16, lo16, set_split};
use crate::error::{Block, Ino, Result, Structure};

pub const ROOT_INO: Ino = Ino(2);

pub const S_IFMT: u16 = 0o170000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFLNK: u16 = 0o120000;

pub const EXT4_INDEX_FL: u32 = 0x1000;
pub const EXT4_HUGE_FILE_FL: u32 = 0x40000;
pub const EXT4_EXTENTS_FL: u32 = 0x80000;

/// What kind of object an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl Kind {
    /// The kind an inode's mode bits name.
    pub fn from_mode(mode: u16) -> Option<Kind> {
        Some(match mode & S_IFMT {
            0o100000 => Kind::File,
            0o040000 => Kind::Dir,
            0o120000 => Kind::Symlink,
            0o020000 => Kind::CharDevice,
            0o060000 => Kind::BlockDevice,
            0o010000 => Kind::Fifo,
            0o140000 => Kind::Socket,
            _ => return None,
        })
    }

    /// The directory-entry file type (`filetype` feature).
    pub fn dirent_type(self) -> u8 {
        match self {
            Kind::File => 1,
            Kind::Dir => 2,
            Kind::CharDevice => 3,
            Kind::BlockDevice => 4,
            Kind::Fifo => 5,
            Kind::Socket => 6,
            Kind::Symlink => 7,
        }
    }
}

/// A point in time as ext4 stores it: seconds (with two epoch bits in the extra field)
/// and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Time {
    /// Seconds since 1970-01-01 UTC.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Time {
    /// A whole second.
    pub fn from_secs(secs: i64) -> Time {
        Time { secs, nanos: 0 }
    }
}

/// One inode, as its on-disk bytes (`s_inode_size` of them).
#[derive(Clone)]
pub struct Inode {
    pub ino: Ino,
    pub raw: Vec<u8>,
}

// (seconds offset, extra offset) of each timestamp.
const CTIME: (usize, usize) = (0x0C, 0x84);
const MTIME: (usize, usize) = (0x10, 0x88);
const ATIME: (usize, usize) = (0x08, 0x8C);
const CRTIME: (usize, usize) = (0x90, 0x94);

impl Inode {
    pub fn mode(&self) -> u16 {
        self.raw.u16_at(0x0)
    }
    pub fn set_mode(&mut self, m: u16) {
        self.raw.set_u16(0x0, m)
    }
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_mode(self.mode())
    }
    pub fn uid(&self) -> u32 {
        u32::from(self.raw.u16_at(0x2)) | u32::from(self.raw.u16_at(0x78)) << 16
    }
    pub fn gid(&self) -> u32 {
        u32::from(self.raw.u16_at(0x18)) | u32::from(self.raw.u16_at(0x7A)) << 16
    }
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        self.raw.set_u16(0x2, lo16(uid));
        self.raw.set_u16(0x78, hi16(uid));
        self.raw.set_u16(0x18, lo16(gid));
        self.raw.set_u16(0x7A, hi16(gid));
    }
    pub fn size(&self) -> u64 {
        get_split(&self.raw, 0x4, Some(0x6C), 4)
    }
    pub fn set_size(&mut self, v: u64) {
        set_split(&mut self.raw, 0x4, Some(0x6C), 4, v)
    }
    pub fn links(&self) -> u16 {
        self.raw.u16_at(0x1A)
    }
    pub fn set_links(&mut self, n: u16) {
        self.raw.set_u16(0x1A, n)
    }
    pub fn flags(&self) -> u32 {
        self.raw.u32_at(0x20)
    }
    pub fn set_flags(&mut self, f: u32) {
        self.raw.set_u32(0x20, f)
    }
    pub fn generation(&self) -> u32 {
        self.raw.u32_at(0x64)
    }
    /// `i_blocks` in 512-byte units (or filesystem blocks with `HUGE_FILE_FL`).
    pub fn blocks_512(&self, block_size: usize) -> u64 {
        let n = get_split(&self.raw, 0x1C, Some(0x74), 2);
        if self.flags() & EXT4_HUGE_FILE_FL != 0 {
            n * (block_size as u64 / 512)
        } else {
            n
        }
    }
    pub fn set_blocks_512(&mut self, n: u64) {
        self.set_flags(self.flags() & !EXT4_HUGE_FILE_FL);
        set_split(&mut self.raw, 0x1C, Some(0x74), 2, n)
    }
    /// The extended-attribute block, if the inode has one.
    pub fn file_acl(&self) -> Option<Block> {
        match get_split(&self.raw, 0x68, Some(0x76), 2) {
            0 => None,
            b => Some(Block(b)),
        }
    }
    /// The 60 bytes of `i_block`: extent root, or a fast symlink's target.
    pub fn i_block(&self) -> &[u8] {
        &self.raw[0x28..0x64]
    }
    pub fn i_block_mut(&mut self) -> &mut [u8] {
        &mut self.raw[0x28..0x64]
    }
    pub fn extra_isize(&self) -> usize {
        if self.raw.len() > 128 {
            usize::from(self.raw.u16_at(0x80))
        } else {
            0
        }
    }
    /// Whether the field ending at `end` lies inside the inode's extra space.
    fn has_extra(&self, end: usize) -> bool {
        128 + self.extra_isize() >= end
    }

    fn time(&self, (s, x): (usize, usize)) -> Time {
        // The seconds field is signed: 1901 to 2038, moved by the epoch bits.
        let lo = i64::from(self.raw.u32_at(s).cast_signed());
        if !self.has_extra(x + 4) {
            return Time::from_secs(lo);
        }
        let extra = self.raw.u32_at(x);
        let epoch = i64::from(extra & 3);
        Time {
            secs: lo + (epoch << 32),
            nanos: extra >> 2,
        }
    }
    fn set_time(&mut self, (s, x): (usize, usize), t: Time) {
        self.raw.set_u32(s, secs_lo(t.secs));
        if self.has_extra(x + 4) {
            let epoch = secs_lo((t.secs - i64::from(secs_lo(t.secs).cast_signed())) >> 32) & 3;
            self.raw.set_u32(x, t.nanos << 2 | epoch);
        }
    }
    pub fn mtime(&self) -> Time {
        self.time(MTIME)
    }
    pub fn atime(&self) -> Time {
        self.time(ATIME)
    }
    pub fn ctime(&self) -> Time {
        self.time(CTIME)
    }
    pub fn crtime(&self) -> Option<Time> {
        self.has_extra(CRTIME.1 + 4).then(|| self.time(CRTIME))
    }
    pub fn set_mtime(&mut self, t: Time) {
        self.set_time(MTIME, t)
    }
    pub fn set_atime(&mut self, t: Time) {
        self.set_time(ATIME, t)
    }
    pub fn set_ctime(&mut self, t: Time) {
        self.set_time(CTIME, t)
    }
    pub fn set_crtime(&mut self, t: Time) {
        if self.has_extra(CRTIME.1 + 4) {
            self.set_time(CRTIME, t)
        }
    }
    /// The deletion time (32 bits of seconds; it has no extra field).
    pub fn set_dtime(&mut self, t: Time) {
        self.raw.set_u32(0x14, secs_lo(t.secs))
    }

    /// The inode checksum (`metadata_csum`), over the whole on-disk inode.
    fn checksum(&self, seed: u32) -> u32 {
        let mut raw = self.raw.clone();
        raw.set_u16(0x7C, 0);
        if self.has_extra(0x84) {
            raw.set_u16(0x82, 0);
        }
        let c = crc32c(self.csum_seed(seed), &raw);
        if self.has_extra(0x84) { c } else { c & 0xFFFF }
    }

    /// The per-inode seed extent, directory and htree checksums start from.
    pub fn csum_seed(&self, fs_seed: u32) -> u32 {
        let c = crc32c(fs_seed, &self.ino.to_le_bytes());
        crc32c(c, &self.generation().to_le_bytes())
    }

    fn stored_checksum(&self) -> u32 {
        let lo = u32::from(self.raw.u16_at(0x7C));
        if self.has_extra(0x84) {
            lo | u32::from(self.raw.u16_at(0x82)) << 16
        } else {
            lo
        }
    }
}

/// The low 32 bits of a time in seconds, as the 32-bit seconds fields hold them (the
/// rest goes to the epoch bits of the extra field, or is lost where there is none).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // the format's split
fn secs_lo(secs: i64) -> u32 {
    secs as u32
}

impl Ext4 {
    /// Block and byte offset of an inode inside its group's inode table.
    fn inode_location(&self, ino: Ino) -> Result<(Block, usize)> {
        let out_of_range = || {
            self.corrupt(
                Structure::Inode(ino),
                format!("inode number {ino} out of range"),
            )
        };
        if ino.0 == 0 || ino.0 > self.sb.inodes_count() {
            return Err(out_of_range());
        }
        let ipg = self.sb.inodes_per_group();
        let table = self
            .groups
            .get(ino.group(ipg) as usize)
            .ok_or_else(out_of_range)?
            .inode_table();
        // Inode and block sizes are powers of two, the inode no larger (checked at open).
        let isize = self.sb.inode_size();
        let per_block = self.bs / isize;
        let index = ino.index(ipg) as usize;
        Ok((
            table + (index / per_block) as u64,
            index % per_block * isize,
        ))
    }

    /// Reads an inode and verifies its checksum.
    pub(super) fn inode(&self, ino: Ino) -> Result<Inode> {
        let (block, off) = self.inode_location(ino)?;
        let data = self.blocks.read(block)?;
        let inode = Inode {
            ino,
            raw: data[off..off + self.sb.inode_size()].to_vec(),
        };
        if self.sb.metadata_csum() && inode.checksum(self.seed) != inode.stored_checksum() {
            return Err(self.corrupt(
                Structure::Inode(ino),
                format!("inode {ino}: checksum mismatch (run e2fsck on the image)"),
            ));
        }
        Ok(inode)
    }

    /// Writes an inode back, with a fresh checksum.
    pub(super) fn write_inode(&mut self, inode: &mut Inode) -> Result<()> {
        if self.sb.metadata_csum() {
            let c = inode.checksum(self.seed);
            inode.raw.set_u16(0x7C, lo16(c));
            if inode.has_extra(0x84) {
                inode.raw.set_u16(0x82, hi16(c));
            }
        }
        let (block, off) = self.inode_location(inode.ino)?;
        let mut data = self.blocks.read(block)?;
        data[off..off + inode.raw.len()].copy_from_slice(&inode.raw);
        self.blocks.write(block, data);
        Ok(())
    }

    /// Sets `i_blocks` for `blocks` blocks of data and extent tree, plus the inode's
    /// external extended-attribute block when it has one: e2fsck counts that block as the
    /// inode's too, so rewriting a file's content or growing a directory must not drop it.
    pub(super) fn set_block_count(&self, inode: &mut Inode, blocks: u64) {
        let xattr = u64::from(inode.file_acl().is_some());
        inode.set_blocks_512((blocks + xattr) * (self.bs as u64 / 512));
    }

    /// A fresh inode: zeroed, with the extra space the superblock wants, all four
    /// timestamps set to `time`, and a generation derived from its number so that the
    /// same operations give the same bytes.
    pub(super) fn new_inode(&self, ino: Ino, mode: u16, time: Time) -> Inode {
        let mut raw = vec![0u8; self.sb.inode_size()];
        if raw.len() > 128 {
            let want = self.sb.want_extra_isize().max(32);
            let room = in_block16(raw.len() - 128);
            raw.set_u16(0x80, want.min(room));
        }
        raw.set_u32(0x64, crc32c(self.seed, &ino.to_le_bytes()));
        let mut inode = Inode { ino, raw };
        inode.set_mode(mode);
        for set in [
            Inode::set_atime,
            Inode::set_ctime,
            Inode::set_mtime,
            Inode::set_crtime,
        ] {
            set(&mut inode, time);
        }
        inode
    }
}
