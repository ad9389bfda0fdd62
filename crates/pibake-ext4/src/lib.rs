//! Read and edit ext4 filesystems in place, in-process: no mount, no root, no
//! e2fsprogs at run time.
//!
//! Written for baking Raspberry Pi OS images (a root filesystem inside an image file),
//! but nothing here knows about images or Raspberry Pis: a filesystem lives on a
//! [`Device`], anything with positioned reads and writes. The filesystem is opened read-only
//! ([`Ext4::open`]) or for writing ([`Ext4::open_rw`]), which first refuses anything that
//! would make a write unsafe: a journal that needs recovery, orphans, errors, or any
//! feature pibake does not implement. Edits collect in memory (metadata and data blocks,
//! bitmaps, descriptors) and reach the image only at [`Ext4::commit`], in block order,
//! checksummed; a failed operation therefore leaves the image untouched.
//!
//! Errors are typed ([`ErrorKind`]): a missing path is [`ErrorKind::NotFound`], never
//! confused with damaged metadata ([`ErrorKind::Corrupt`], which names the structure,
//! inode or group) or with a feature this crate refuses ([`ErrorKind::Unsupported`]).
//!
//! What is written: extent-mapped files (whole, or streamed from a reader), hard links,
//! linear and hash-indexed (two-level) directories, fast and slow symlinks, metadata_csum
//! and gdt_csum checksums, flex_bg and `BLOCK_UNINIT`/`INODE_UNINIT` groups, new
//! filesystems ([`Ext4::mkfs`]), and growth to a larger partition ([`Ext4::grow`],
//! offline, as resize2fs does it). What is
//! refused before any write: a journal that needs recovery, orphans, an error state,
//! block-mapped files, three-level htrees (`large_dir`), and unknown incompatible
//! features.
//!
//! ```
//! use pibake_ext4::{Ext4, Meta, mkfs::MkfsOptions};
//!
//! // A 16 MiB filesystem in memory; any `Device` (a partition of an image file, say) works.
//! let mut fs = Ext4::mkfs(vec![0u8; 16 << 20], &MkfsOptions::new(*b"example-fs-uuid!", 0))?;
//! fs.mkdir_p("/etc", &Meta::new(0o755, 0, 0))?;
//! fs.write_file("/etc/hostname", b"node1\n", &Meta::new(0o644, 0, 0))?;
//! fs.commit()?;
//! assert_eq!(fs.read("/etc/hostname")?, b"node1\n");
//! assert!(fs.read("/etc/missing").unwrap_err().is_not_found());
//! # Ok::<(), pibake_ext4::Error>(())
//! ```
//!
//! Internals, one module per on-disk structure: `superblock` (geometry, features),
//! `group` (descriptors, bitmaps, allocation), `grow` (to a larger partition), `inode`,
//! `extent` (extent trees), `dir` (directory blocks), `htree` (hash-indexed
//! directories), [`hash`] (their name hashes), [`mkfs`] (new filesystems), `csum` and `le` (checksums and field access).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Numbers move between on-disk widths and memory through `From`, `try_from` (a value
// from disk that does not fit is corrupt) or a few documented helpers that cut a value
// where the format does (`le::lo32` and its siblings, `inode::secs_lo`, `hash::c_u32`);
// a bare `as` that could cut, wrap or drop a sign is an error.
#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
#![warn(clippy::cast_lossless)]

mod content;
mod csum;
mod device;
mod dir;
mod error;
mod extent;
mod group;
mod grow;
pub mod hash;
mod htree;
mod inode;
mod le;
pub mod mkfs;
mod superblock;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use content::Content;
pub use device::{Device, FileRange};
use error::Block;
pub use error::{Error, ErrorKind, Ino, Result, Structure};
pub use grow::Growth;

pub use dir::DirEntry;
use extent::Mapping;
use group::{Bitmaps, GroupDesc};
use inode::{EXT4_EXTENTS_FL, Inode, ROOT_INO, S_IFDIR, S_IFLNK, S_IFREG};
pub use inode::{Kind, Time};
use le::Le;
use superblock::{RO_COMPAT_DIR_NLINK, SB_OFFSET, SB_SIZE, Superblock};

/// Reads `len` bytes at `offset` of a device, naming the filesystem on failure.
fn read_vec(dev: &dyn Device, origin: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; len];
    dev.read_exact_at(offset, &mut buf)
        .map_err(|e| Error::new(origin, ErrorKind::Io(e)))?;
    Ok(buf)
}

/// Symlinks followed while resolving one path, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// Hard links one file may have (the kernel's `EXT4_LINK_MAX`).
const MAX_LINKS: u16 = 65000;

/// The filesystem's blocks: read from the image, or from pending writes.
struct Blocks {
    dev: Box<dyn Device + Send>,
    origin: String,
    bs: usize,
    count: u64,
    dirty: BTreeMap<Block, Vec<u8>>,
    /// Bumped by every change to pending state, so a failed edit can tell whether it
    /// left anything half-done.
    changes: u64,
}

impl Blocks {
    fn check(&self, n: Block, len: u64) -> Result<()> {
        if n.0.checked_add(len).is_none_or(|end| end > self.count) {
            return Err(Error::corrupt(
                &self.origin,
                Structure::Geometry,
                format!(
                    "block {n} (+{len}) is past the end of the filesystem ({} blocks)",
                    self.count
                ),
            ));
        }
        Ok(())
    }

    fn read(&self, n: Block) -> Result<Vec<u8>> {
        if let Some(b) = self.dirty.get(&n) {
            return Ok(b.clone());
        }
        self.check(n, 1)?;
        self.read_bytes(n.offset(self.bs), self.bs)
    }

    fn read_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        read_vec(self.dev.as_ref(), &self.origin, offset, len)
    }

    fn write_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.dev
            .write_all_at(offset, data)
            .map_err(|e| Error::new(&self.origin, ErrorKind::Io(e)))
    }

    /// `len` consecutive blocks from `start`, pending writes included.
    fn read_run(&self, start: Block, len: u64) -> Result<Vec<u8>> {
        self.check(start, len)?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_mul(self.bs))
            .ok_or_else(|| {
                Error::unsupported(&self.origin, "a run of blocks larger than memory")
            })?;
        let mut buf = self.read_bytes(start.offset(self.bs), bytes)?;
        for (&n, b) in self.dirty.range(start..start + len) {
            // Below `len`, which fits a usize (checked above).
            let off = usize::try_from(n - start).expect("inside the run") * self.bs;
            buf[off..off + self.bs].copy_from_slice(b);
        }
        Ok(buf)
    }

    fn write(&mut self, n: Block, data: Vec<u8>) {
        debug_assert_eq!(data.len(), self.bs);
        self.changes += 1;
        self.dirty.insert(n, data);
    }
}

/// What `stat` reports about a path (without following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stat {
    /// The inode number.
    pub ino: u32,
    /// File, directory, symlink, ...
    pub kind: Kind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hard links.
    pub links: u16,
    /// Last access.
    pub atime: Time,
    /// Last modification of the content.
    pub mtime: Time,
    /// Last change of the inode.
    pub ctime: Time,
    /// Creation, when the inode is large enough to record it.
    pub crtime: Option<Time>,
    /// A symlink's target.
    pub target: Option<String>,
}

/// Mode, owner and time of a file pibake creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (`0o7777`).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `None`: the filesystem's edit time ([`Ext4::set_time`]).
    pub mtime: Option<Time>,
}

impl Meta {
    /// Mode and owner, stamped with the filesystem's edit time.
    pub fn new(mode: u16, uid: u32, gid: u32) -> Meta {
        Meta {
            mode,
            uid,
            gid,
            mtime: None,
        }
    }
}

/// An ext4 filesystem inside an image region.
pub struct Ext4 {
    blocks: Blocks,
    sb: Superblock,
    groups: Vec<GroupDesc>,
    bitmaps: Bitmaps,
    dirty_groups: BTreeSet<u32>,
    bs: usize,
    seed: u32,
    origin: String,
    writable: bool,
    /// An edit failed after changing pending state: nothing may be committed.
    poisoned: bool,
    /// Timestamp for changes that have no time of their own (directory mtimes, ctimes).
    time: Time,
}

impl Ext4 {
    /// Opens for reading only.
    pub fn open(dev: impl Device + Send + 'static) -> Result<Ext4> {
        let origin = dev.label();
        let sb = Superblock::parse(read_vec(&dev, &origin, SB_OFFSET, SB_SIZE)?, &origin)?;
        let bs = sb.block_size();
        let count = sb.blocks_count();
        if count.checked_mul(bs as u64).is_none_or(|n| n > dev.len()) {
            return Err(Error::corrupt(
                &origin,
                Structure::Geometry,
                format!(
                    "the filesystem has {count} blocks of {bs} bytes but the partition holds {} bytes",
                    dev.len()
                ),
            ));
        }
        let mut fs = Ext4 {
            blocks: Blocks {
                dev: Box::new(dev),
                origin: origin.clone(),
                bs,
                count,
                dirty: BTreeMap::new(),
                changes: 0,
            },
            seed: sb.csum_seed(),
            time: Time::from_secs(i64::from(sb.wtime())),
            sb,
            groups: Vec::new(),
            bitmaps: Bitmaps::default(),
            dirty_groups: BTreeSet::new(),
            bs,
            origin,
            writable: false,
            poisoned: false,
        };
        fs.load_groups()?;
        Ok(fs)
    }

    /// Opens for writing, after refusing anything pibake cannot write safely.
    pub fn open_rw(dev: impl Device + Send + 'static) -> Result<Ext4> {
        let mut fs = Ext4::open(dev)?;
        fs.sb.check_writable(&fs.origin)?;
        fs.writable = true;
        Ok(fs)
    }

    /// The time stamped on changes without a time of their own. It defaults to the
    /// superblock's last write time, so the same edits of the same base give the same
    /// bytes.
    pub fn set_time(&mut self, t: Time) {
        self.time = t;
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.bs
    }

    /// Free blocks, as the superblock (with pending edits) counts them.
    pub fn free_blocks(&self) -> u64 {
        self.sb.free_blocks()
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.origin, kind)
    }

    fn bad_path(&self, path: &str, reason: &'static str) -> Error {
        self.err(ErrorKind::InvalidPath {
            path: path.into(),
            reason,
        })
    }

    fn in_the_way(&self, path: &str, wanted: &'static str) -> Error {
        self.err(ErrorKind::Exists {
            path: path.into(),
            wanted,
        })
    }

    fn corrupt(&self, structure: Structure, detail: impl Into<String>) -> Error {
        Error::corrupt(&self.origin, structure, detail)
    }

    fn require_writable(&self) -> Result<()> {
        if !self.writable {
            return Err(self.err(ErrorKind::ReadOnly));
        }
        if self.poisoned {
            return Err(self.err(ErrorKind::Poisoned));
        }
        Ok(())
    }

    /// Runs one edit. An edit that fails before changing anything (a missing path, a
    /// full filesystem) costs nothing; one that fails part-way (damaged metadata found
    /// mid-edit) poisons the session, so its half-done state never reaches the image.
    fn edit<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.require_writable()?;
        let before = self.blocks.changes;
        let result = f(self);
        if result.is_err() && self.blocks.changes != before {
            self.poisoned = true;
        }
        result
    }

    /// Fails, before anything changes, when `blocks` blocks and `inodes` inodes are not
    /// free. Generous on purpose: it counts the worst case of extent-tree and
    /// directory growth.
    fn reserve(&self, data_bytes: u64, inodes: u32) -> Result<()> {
        let data = data_bytes.div_ceil(self.bs as u64);
        let per_tree_block = (self.bs as u64 - 12) / 12;
        let blocks = data + 2 * data.div_ceil(per_tree_block) + 4;
        if self.sb.free_blocks() < blocks || self.sb.free_inodes() < inodes {
            return Err(self.err(ErrorKind::NoSpace {
                detail: format!(
                    "{} blocks and {} inodes free, up to {blocks} blocks and {inodes} inodes needed",
                    self.sb.free_blocks(),
                    self.sb.free_inodes()
                ),
            }));
        }
        Ok(())
    }

    // ----- paths -----

    /// The components of an absolute path.
    fn components<'p>(&self, path: &'p str) -> Result<Vec<&'p str>> {
        if !path.starts_with('/') {
            return Err(self.bad_path(path, "paths inside the image must be absolute"));
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for c in &parts {
            if c.len() > 255 || c.contains('\0') {
                return Err(self.bad_path(path, "a name is longer than 255 bytes or holds a NUL"));
            }
        }
        Ok(parts)
    }

    /// The inode `path` names, following symlinks inside the filesystem (the last one
    /// only when `follow_last`); `None` when something along the way does not exist.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Option<Ino>> {
        let mut todo: Vec<String> = self
            .components(path)?
            .iter()
            .rev()
            .map(|s| s.to_string())
            .collect();
        let mut stack = vec![ROOT_INO];
        let mut hops = 0;
        while let Some(name) = todo.pop() {
            let dir = self.inode(*stack.last().expect("root stays"))?;
            if dir.kind() != Some(Kind::Dir) {
                return Ok(None);
            }
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Some(ino) = self.lookup(&dir, &name)? else {
                return Ok(None);
            };
            let inode = self.inode(ino)?;
            if inode.kind() == Some(Kind::Symlink) && (follow_last || !todo.is_empty()) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(self.bad_path(path, "too many levels of symbolic links"));
                }
                let target = self.link_target(&inode)?;
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                todo.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .rev()
                        .map(str::to_string),
                );
                continue;
            }
            stack.push(ino);
        }
        Ok(Some(*stack.last().expect("root stays")))
    }

    fn must_resolve(&self, path: &str, follow_last: bool) -> Result<Inode> {
        match self.resolve(path, follow_last)? {
            Some(ino) => self.inode(ino),
            None => Err(self.err(ErrorKind::NotFound { path: path.into() })),
        }
    }

    /// The directory that holds `path` (which must exist) and the last name.
    fn parent_of<'p>(&self, path: &'p str) -> Result<(Inode, &'p str)> {
        let parts = self.components(path)?;
        let Some((&name, _)) = parts.split_last() else {
            return Err(self.bad_path(path, "the root directory has no parent"));
        };
        if name == ".." {
            return Err(self.bad_path(path, "the last name may not be `..`"));
        }
        let parent = &path[..path.trim_end_matches('/').len() - name.len()];
        let dir = self.must_resolve(if parent.is_empty() { "/" } else { parent }, true)?;
        if dir.kind() != Some(Kind::Dir) {
            return Err(self.err(ErrorKind::NotADirectory { path: path.into() }));
        }
        Ok((dir, name))
    }

    // ----- reading -----

    /// The whole content of a file (symlinks followed inside the filesystem).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let inode = self.must_resolve(path, true)?;
        match inode.kind() {
            Some(Kind::File) => self.file_data(&inode),
            _ => Err(self.err(ErrorKind::NotAFile { path: path.into() })),
        }
    }

    /// Whether `path` names something (symlinks followed). Damage found on the way is an
    /// error, not `false`.
    pub fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.resolve(path, true)?.is_some())
    }

    /// The names in a directory, without `.` and `..`.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let inode = self.must_resolve(path, true)?;
        if inode.kind() != Some(Kind::Dir) {
            return Err(self.err(ErrorKind::NotADirectory { path: path.into() }));
        }
        Ok(self
            .entries(&inode)?
            .into_iter()
            .filter(|e| e.name != "." && e.name != "..")
            .collect())
    }

    /// [`Ext4::stat`], with `None` when nothing is at `path`; damage and other failures
    /// stay errors, so "absent" is never a guess.
    pub fn try_stat(&self, path: &str) -> Result<Option<Stat>> {
        match self.stat(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Facts about `path` itself (a final symlink is not followed).
    pub fn stat(&self, path: &str) -> Result<Stat> {
        let inode = self.must_resolve(path, false)?;
        let kind = inode.kind().ok_or_else(|| {
            self.corrupt(
                Structure::Inode(inode.ino),
                format!("{path}: inode has mode 0o{:o}", inode.mode()),
            )
        })?;
        Ok(Stat {
            ino: inode.ino.0,
            kind,
            mode: inode.mode() & 0o7777,
            uid: inode.uid(),
            gid: inode.gid(),
            size: inode.size(),
            links: inode.links(),
            atime: inode.atime(),
            mtime: inode.mtime(),
            ctime: inode.ctime(),
            crtime: inode.crtime(),
            target: if kind == Kind::Symlink {
                Some(self.link_target(&inode)?)
            } else {
                None
            },
        })
    }

    fn file_data(&self, inode: &Inode) -> Result<Vec<u8>> {
        let size = inode.size();
        let in_memory = |n: u64| {
            usize::try_from(n)
                .map_err(|_| Error::unsupported(&self.origin, "file larger than memory"))
        };
        // The size comes from the inode: a damaged one must not become an allocation of
        // that size. No file holds more data than the whole filesystem, and a sparse one
        // that claims more (`truncate -s`) is more than this crate, which reads files
        // whole, should read.
        let fs_bytes = self.blocks.count * self.bs as u64;
        if size > fs_bytes {
            return Err(Error::unsupported(
                &self.origin,
                format!(
                    "inode {}: {size} bytes, more than the whole filesystem ({fs_bytes} bytes), \
                     to read into memory",
                    inode.ino
                ),
            ));
        }
        let mut out = vec![0u8; in_memory(size)?];
        if size == 0 {
            return Ok(out);
        }
        let bs = self.bs as u64;
        for e in self.mapping(inode)?.extents {
            let from = u64::from(e.logical) * bs;
            if e.uninit || from >= size {
                continue;
            }
            let len = u64::from(e.len).min((size - from).div_ceil(bs));
            let data = self.blocks.read_run(e.start, len)?;
            // Both below the size, which fits a usize.
            let (at, n) = (in_memory(from)?, in_memory((len * bs).min(size - from))?);
            out[at..at + n].copy_from_slice(&data[..n]);
        }
        Ok(out)
    }

    fn link_target(&self, inode: &Inode) -> Result<String> {
        let bytes = match usize::try_from(inode.size()) {
            Ok(size) if inode.flags() & EXT4_EXTENTS_FL == 0 && size < 60 => {
                inode.i_block()[..size].to_vec()
            }
            _ => self.file_data(inode)?,
        };
        String::from_utf8(bytes).map_err(|_| {
            Error::unsupported(
                &self.origin,
                format!("symlink inode {} has a non-UTF-8 target", inode.ino),
            )
        })
    }

    // ----- writing -----

    /// Copies `content` block by block into blocks allocated near the inode, and gives
    /// `inode` an extent tree for them. Each block goes straight from the reader to the
    /// pending writes, so the content is in memory once, never also as a whole.
    ///
    /// A reader that fails or holds another length fails here, after blocks were
    /// allocated: the edit that called this is then poisoned, so a half-written file never
    /// reaches the image.
    fn store(&mut self, inode: &mut Inode, content: &mut Content) -> Result<()> {
        let bs = self.bs;
        let nblocks = content.len().div_ceil(bs as u64);
        let goal = self.group_of_inode(inode.ino);
        let runs = self.alloc_blocks(goal, nblocks)?;
        for b in runs.iter().flat_map(|&(start, len)| start.run(len)) {
            let block = content.next_block(bs).map_err(|k| self.err(k))?;
            self.blocks.write(b, block);
        }
        content.finish().map_err(|k| self.err(k))?;
        let tree = self.set_extents(inode, &runs)?;
        inode.set_size(content.len());
        self.set_block_count(inode, nblocks + tree);
        Ok(())
    }

    /// [`Ext4::store`] for content already in memory (a directory block, a symlink
    /// target), for the object at `path`.
    fn store_data(&mut self, inode: &mut Inode, path: &str, data: &[u8]) -> Result<()> {
        self.store(
            inode,
            &mut Content::new(path, &mut &data[..], data.len() as u64),
        )
    }

    /// Frees everything an inode's content occupies (not the inode itself).
    fn free_data(&mut self, inode: &Inode) -> Result<()> {
        if inode.flags() & EXT4_EXTENTS_FL != 0 {
            let m: Mapping = self.mapping(inode)?;
            self.free_mapping(&m)?;
        } else if inode.kind() != Some(Kind::Symlink)
            && inode.blocks_512(self.bs) > 0
            && inode.file_acl().is_none()
        {
            return Err(Error::unsupported(
                &self.origin,
                format!(
                    "inode {} uses block maps (ext2/ext3 style), which pibake does not rewrite",
                    inode.ino
                ),
            ));
        }
        Ok(())
    }

    /// Creates or replaces a regular file. Replacing keeps the inode (and so its hard
    /// links and its extended attributes, such as a `security.capability`) and frees the
    /// old blocks, and gives the file `meta`'s mode and owner (a plan says what a file must
    /// be, not how it was); a symlink in the way is replaced.
    ///
    /// The same as [`Ext4::write_file_from`] with the bytes as the reader.
    pub fn write_file(&mut self, path: &str, data: &[u8], meta: &Meta) -> Result<()> {
        self.write_file_from(path, &mut &data[..], data.len() as u64, meta)
    }

    /// [`Ext4::write_file`] with the content read from `data`, which must hold exactly
    /// `len` bytes: for content that arrives as a stream (a member of a package's
    /// archive, decompressed on the fly), so that a large file is never collected into
    /// one buffer first. It is copied block by block into the pending writes.
    ///
    /// Space for `len` bytes is reserved before the reader is touched, so a full
    /// filesystem costs nothing. A reader that fails, ends before `len` bytes or holds
    /// more ([`ErrorKind::Content`]) is found out only while the file is being written, so
    /// like any edit that fails part-way it poisons the session ([`ErrorKind::Poisoned`]
    /// from every later edit and from [`Ext4::commit`]): the image stays as the last
    /// commit left it, never with a file of the wrong length.
    pub fn write_file_from(
        &mut self,
        path: &str,
        data: &mut dyn Read,
        len: u64,
        meta: &Meta,
    ) -> Result<()> {
        self.require_writable()?;
        self.reserve(len, 1)?;
        self.edit(|fs| fs.write_file_now(path, &mut Content::new(path, data, len), meta))
    }

    fn write_file_now(&mut self, path: &str, data: &mut Content, meta: &Meta) -> Result<()> {
        let (mut dir, name) = self.parent_of(path)?;
        let time = meta.mtime.unwrap_or(self.time);
        if let Some(ino) = self.lookup(&dir, name)? {
            let mut inode = self.inode(ino)?;
            match inode.kind() {
                Some(Kind::File) => {
                    self.free_data(&inode)?;
                    inode.set_mode(S_IFREG | (meta.mode & 0o7777));
                    inode.set_owner(meta.uid, meta.gid);
                    self.store(&mut inode, data)?;
                    inode.set_mtime(time);
                    inode.set_ctime(time);
                    return self.write_inode(&mut inode);
                }
                Some(Kind::Symlink) => self.remove_now(path)?,
                _ => return Err(self.in_the_way(path, "regular file")),
            }
            dir = self.inode(dir.ino)?;
        }
        let ino = self.alloc_inode(self.group_of_inode(dir.ino), false)?;
        let mut inode = self.new_inode(ino, S_IFREG | (meta.mode & 0o7777), time);
        inode.set_owner(meta.uid, meta.gid);
        inode.set_links(1);
        self.store(&mut inode, data)?;
        self.write_inode(&mut inode)?;
        self.link_into(&mut dir, name, ino, Kind::File)
    }

    /// Gives the regular file `existing` a second name, `new` (a hard link, as `ln`
    /// makes it): packages ship hard-linked files (one binary under two names), and a
    /// copy would double their space and break what expects one inode. Both names then
    /// share the inode, its content and its metadata; [`Ext4::remove`] of either keeps
    /// the other.
    ///
    /// `existing` is resolved without following its last component, so a symlink there
    /// is refused like a directory ([`ErrorKind::NotAFile`]), as is a file with 65000
    /// links, ext4's limit ([`ErrorKind::InvalidPath`]). `new` may be in any directory
    /// and must not exist ([`ErrorKind::Exists`]): replacing a name is the caller's
    /// choice, made with [`Ext4::remove`] first.
    pub fn link(&mut self, existing: &str, new: &str) -> Result<()> {
        self.require_writable()?;
        self.reserve(0, 0)?;
        self.edit(|fs| fs.link_now(existing, new))
    }

    fn link_now(&mut self, existing: &str, new: &str) -> Result<()> {
        let mut inode = self.must_resolve(existing, false)?;
        if inode.kind() != Some(Kind::File) {
            return Err(self.err(ErrorKind::NotAFile {
                path: existing.into(),
            }));
        }
        let links = inode.links();
        if links >= MAX_LINKS {
            return Err(self.bad_path(existing, "already has as many links as ext4 allows (65000)"));
        }
        let (mut dir, name) = self.parent_of(new)?;
        if self.lookup(&dir, name)?.is_some() {
            return Err(self.in_the_way(new, "free name for a hard link"));
        }
        // The name first: a directory that cannot grow leaves the count as it was.
        self.link_into(&mut dir, name, inode.ino, Kind::File)?;
        inode.set_links(links + 1);
        inode.set_ctime(self.time);
        self.write_inode(&mut inode)
    }

    /// Adds a name to a directory and stamps the directory's times.
    fn link_into(&mut self, dir: &mut Inode, name: &str, ino: Ino, kind: Kind) -> Result<()> {
        self.add_entry(dir, name, ino, kind)?;
        dir.set_mtime(self.time);
        dir.set_ctime(self.time);
        self.write_inode(dir)
    }

    /// Creates a directory and any missing parents, each with `meta`. Existing
    /// directories are left as they are.
    pub fn mkdir_p(&mut self, path: &str, meta: &Meta) -> Result<()> {
        self.edit(|fs| fs.mkdir_p_now(path, meta))
    }

    fn mkdir_p_now(&mut self, path: &str, meta: &Meta) -> Result<()> {
        let mut sofar = String::new();
        for part in self.components(path)? {
            sofar.push('/');
            sofar.push_str(part);
            match self.resolve(&sofar, true)? {
                Some(ino) if self.inode(ino)?.kind() == Some(Kind::Dir) => continue,
                Some(_) => return Err(self.in_the_way(&sofar, "directory")),
                None => self.mkdir(&sofar, meta)?,
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str, meta: &Meta) -> Result<()> {
        let (mut parent, name) = self.parent_of(path)?;
        self.reserve(self.bs as u64, 1)?;
        let time = meta.mtime.unwrap_or(self.time);
        let ino = self.alloc_inode(self.group_of_inode(parent.ino), true)?;
        let mut inode = self.new_inode(ino, S_IFDIR | (meta.mode & 0o7777), time);
        inode.set_owner(meta.uid, meta.gid);
        inode.set_links(2);
        let mut block = self.empty_leaf();
        let end = self.leaf_end();
        dir::insert_into_block(&mut block, end, ino, b".", Kind::Dir.dirent_type())?;
        dir::insert_into_block(&mut block, end, parent.ino, b"..", Kind::Dir.dirent_type())?;
        self.store_data(&mut inode, path, &block)?;
        let b = self.mapping(&inode)?.extents[0].start;
        self.write_leaf(&inode, b, block);
        self.write_inode(&mut inode)?;
        let links = parent.links();
        if links >= 64999 && self.sb.has_ro(RO_COMPAT_DIR_NLINK) || links == 1 {
            parent.set_links(1);
        } else {
            parent.set_links(links + 1);
        }
        self.link_into(&mut parent, name, ino, Kind::Dir)
    }

    /// Creates a symlink (fast, in the inode, when the target is under 60 bytes). A
    /// symlink already there is replaced.
    pub fn symlink(&mut self, path: &str, target: &str, meta: &Meta) -> Result<()> {
        self.require_writable()?;
        self.reserve(target.len() as u64, 1)?;
        self.edit(|fs| fs.symlink_now(path, target, meta))
    }

    fn symlink_now(&mut self, path: &str, target: &str, meta: &Meta) -> Result<()> {
        if target.is_empty() || target.len() >= self.bs || target.contains('\0') {
            return Err(self.bad_path(
                path,
                "a symlink target must be 1 to block-size bytes, without NUL",
            ));
        }
        let (mut dir, name) = self.parent_of(path)?;
        if let Some(ino) = self.lookup(&dir, name)? {
            if self.inode(ino)?.kind() != Some(Kind::Symlink) {
                return Err(self.in_the_way(path, "symlink"));
            }
            self.remove_now(path)?;
            dir = self.inode(dir.ino)?;
        }
        let time = meta.mtime.unwrap_or(self.time);
        let ino = self.alloc_inode(self.group_of_inode(dir.ino), false)?;
        let mut inode = self.new_inode(ino, S_IFLNK | 0o777, time);
        inode.set_owner(meta.uid, meta.gid);
        inode.set_links(1);
        if target.len() < 60 {
            inode.i_block_mut()[..target.len()].copy_from_slice(target.as_bytes());
            inode.set_size(target.len() as u64);
        } else {
            self.store_data(&mut inode, path, target.as_bytes())?;
        }
        self.write_inode(&mut inode)?;
        self.link_into(&mut dir, name, ino, Kind::Symlink)
    }

    /// Changes permission bits (`0o7777`) of `path` itself.
    pub fn chmod(&mut self, path: &str, mode: u16) -> Result<()> {
        self.change(path, |i| {
            i.set_mode(i.mode() & inode::S_IFMT | mode & 0o7777)
        })
    }

    /// Sets the owner and group of `path` itself.
    pub fn chown(&mut self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.change(path, |i| i.set_owner(uid, gid))
    }

    /// Sets the access and modification times of `path` itself.
    pub fn set_times(&mut self, path: &str, atime: Time, mtime: Time) -> Result<()> {
        self.change(path, |i| {
            i.set_atime(atime);
            i.set_mtime(mtime);
        })
    }

    fn change(&mut self, path: &str, f: impl FnOnce(&mut Inode)) -> Result<()> {
        self.edit(|fs| {
            let mut inode = fs.must_resolve(path, false)?;
            f(&mut inode);
            inode.set_ctime(fs.time);
            fs.write_inode(&mut inode)
        })
    }

    /// Removes a file, a symlink or an empty directory, freeing its inode and blocks
    /// when the last link goes.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        self.edit(|fs| fs.remove_now(path))
    }

    fn remove_now(&mut self, path: &str) -> Result<()> {
        let (mut dir, name) = self.parent_of(path)?;
        let Some(ino) = self.lookup(&dir, name)? else {
            return Err(self.err(ErrorKind::NotFound { path: path.into() }));
        };
        let mut inode = self.inode(ino)?;
        let is_dir = inode.kind() == Some(Kind::Dir);
        if is_dir {
            if self
                .entries(&inode)?
                .iter()
                .any(|e| e.name != "." && e.name != "..")
            {
                return Err(self.err(ErrorKind::NotEmpty { path: path.into() }));
            }
            let links = dir.links();
            if links > 2 {
                dir.set_links(links - 1);
            }
        }
        self.remove_entry(&dir, name)?;
        dir.set_mtime(self.time);
        dir.set_ctime(self.time);
        self.write_inode(&mut dir)?;
        let links = if is_dir {
            0
        } else {
            inode.links().saturating_sub(1)
        };
        inode.set_links(links);
        inode.set_ctime(self.time);
        if links == 0 {
            self.free_data(&inode)?;
            self.release_xattr_block(&inode)?;
            inode.set_dtime(self.time);
            inode.set_size(0);
            inode.set_blocks_512(0);
            self.free_inode(ino, is_dir)?;
        }
        self.write_inode(&mut inode)
    }

    /// Renames a file, symlink or directory within its directory (`/home/pi` to
    /// `/home/admin`): the inode, its contents and owners stay as they are.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.edit(|fs| {
            let (dir, name) = fs.parent_of(from)?;
            let (to_dir, to_name) = fs.parent_of(to)?;
            if dir.ino != to_dir.ino {
                return Err(fs.bad_path(from, "renames move within one directory only"));
            }
            let Some(ino) = fs.lookup(&dir, name)? else {
                return Err(fs.err(ErrorKind::NotFound { path: from.into() }));
            };
            if fs.lookup(&dir, to_name)?.is_some() {
                return Err(fs.bad_path(to, "already exists"));
            }
            let kind = fs.inode(ino)?.kind().ok_or_else(|| {
                fs.corrupt(
                    Structure::Inode(ino),
                    format!("{from}: has an unknown file type"),
                )
            })?;
            let mut dir = dir;
            fs.add_entry(&mut dir, to_name, ino, kind)?;
            fs.remove_entry(&dir, name)?;
            dir.set_mtime(fs.time);
            dir.set_ctime(fs.time);
            fs.write_inode(&mut dir)
        })
    }

    /// Drops a deleted inode's reference to a shared extended-attribute block.
    fn release_xattr_block(&mut self, inode: &Inode) -> Result<()> {
        let Some(b) = inode.file_acl() else {
            return Ok(());
        };
        let mut block = self.blocks.read(b)?;
        let refs = block.u32_at(4);
        if refs <= 1 {
            return self.mark_blocks(b, 1, false);
        }
        block.set_u32(4, refs - 1);
        if self.sb.metadata_csum() {
            block.set_u32(0x10, 0);
            let c = csum::crc32c(self.seed, &b.to_le_bytes());
            let c = csum::crc32c(c, &block);
            block.set_u32(0x10, c);
        }
        self.blocks.write(b, block);
        Ok(())
    }

    /// Writes every pending change to the image: blocks in order, then descriptors and
    /// the superblock.
    pub fn commit(&mut self) -> Result<()> {
        self.require_writable()?;
        self.flush_groups()?;
        let dirty = std::mem::take(&mut self.blocks.dirty);
        for (n, data) in &dirty {
            self.blocks.write_bytes(n.offset(self.bs), data)?;
        }
        self.bitmaps = Bitmaps::default();
        self.sb.finalize();
        let raw = self.sb.raw.clone();
        self.blocks.write_bytes(SB_OFFSET, &raw)?;
        Ok(())
    }
}
