//! Directories: entries in blocks, lookup, listing, adding and removing names.
//!
//! Every directory block, indexed or not, is a chain of `ext4_dir_entry_2` records; with
//! `metadata_csum` each leaf block ends in a 12-byte tail holding its checksum. Lookups
//! scan the leaves (the index blocks parse as empty records and are skipped). Adding a
//! name to a hash-indexed directory goes through [`super::htree`]; to a linear one, into
//! the first block with room, or a new block at the end.

use super::Ext4;
use super::csum::crc32c;
use super::inode::{EXT4_INDEX_FL, Inode, Kind};
use super::le::{Le, in_block16};
use super::superblock::COMPAT_DIR_INDEX;
use crate::error::{Block, Error, Ino, Result, Structure};

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (bytes that are not UTF-8 shown lossily).
    pub name: String,
    /// The inode it names.
    pub ino: u32,
    /// The file type the entry records, when the filesystem records one.
    pub kind: Option<Kind>,
}

/// Size of a record holding a name of `len` bytes.
pub fn rec_size(len: usize) -> usize {
    (8 + len).div_ceil(4) * 4
}

/// A record inside a block: offset, inode (`None` in an empty record), name, file type.
pub struct Record<'a> {
    pub off: usize,
    pub rec_len: usize,
    pub ino: Option<Ino>,
    pub name: &'a [u8],
    pub ftype: u8,
}

/// The records of a directory block (including empty ones, inode 0), checked so that
/// no record runs past the block or the space before the checksum tail.
pub fn records(block: &[u8], end: usize) -> Result<Vec<Record<'_>>, String> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < end {
        if off + 8 > end {
            return Err(format!("directory record at byte {off} is cut off"));
        }
        let rec_len = usize::from(block.u16_at(off + 4));
        let name_len = usize::from(block[off + 6]);
        if rec_len < 8 || rec_len % 4 != 0 || off + rec_len > end || 8 + name_len > rec_len {
            return Err(format!(
                "directory record at byte {off} has length {rec_len} (name {name_len})"
            ));
        }
        out.push(Record {
            off,
            rec_len,
            ino: match block.u32_at(off) {
                0 => None,
                n => Some(Ino(n)),
            },
            name: &block[off + 8..off + 8 + name_len],
            ftype: block[off + 7],
        });
        off += rec_len;
    }
    Ok(out)
}

fn put_record(block: &mut [u8], off: usize, rec_len: usize, ino: Ino, name: &[u8], ftype: u8) {
    block.set_u32(off, ino.0);
    block.set_u16(off + 4, in_block16(rec_len));
    block[off + 6] = u8::try_from(name.len()).expect("names are checked to be at most 255 bytes");
    block[off + 7] = ftype;
    block[off + 8..off + 8 + name.len()].copy_from_slice(name);
    for b in &mut block[off + 8 + name.len()..off + rec_size(name.len()).min(rec_len)] {
        *b = 0;
    }
}

/// Puts a name into a leaf block if it fits, in the first gap large enough.
pub fn insert_into_block(
    block: &mut [u8],
    end: usize,
    ino: Ino,
    name: &[u8],
    ftype: u8,
) -> Result<bool> {
    let need = rec_size(name.len());
    let spot = records(block, end)
        .map_err(|e| Error::corrupt("directory block", Structure::Geometry, e))?
        .iter()
        .find_map(|r| {
            let used = if r.ino.is_none() {
                0
            } else {
                rec_size(r.name.len())
            };
            (r.rec_len - used >= need).then_some((r.off, r.rec_len, used))
        });
    let Some((off, rec_len, used)) = spot else {
        return Ok(false);
    };
    if used == 0 {
        put_record(block, off, rec_len, ino, name, ftype);
    } else {
        block.set_u16(off + 4, in_block16(used));
        put_record(block, off + used, rec_len - used, ino, name, ftype);
    }
    Ok(true)
}

impl Ext4 {
    /// Where the records of a leaf block end (before the checksum tail, if any).
    pub(super) fn leaf_end(&self) -> usize {
        if self.sb.metadata_csum() {
            self.bs - 12
        } else {
            self.bs
        }
    }

    /// Writes a leaf block's checksum tail (with `metadata_csum`) and stores the block.
    pub(super) fn write_leaf(&mut self, dir: &Inode, block_no: Block, mut block: Vec<u8>) {
        if self.sb.metadata_csum() {
            let t = self.bs - 12;
            block.set_u32(t, 0);
            block.set_u16(t + 4, 12);
            block[t + 6] = 0;
            block[t + 7] = 0xDE;
            let c = crc32c(dir.csum_seed(self.seed), &block[..t]);
            block.set_u32(t + 8, c);
        }
        self.blocks.write(block_no, block);
    }

    /// An empty leaf block: one empty record over all the space.
    pub(super) fn empty_leaf(&self) -> Vec<u8> {
        let mut block = vec![0u8; self.bs];
        block.set_u16(4, in_block16(self.leaf_end()));
        block
    }

    /// How many blocks a directory's size spans.
    pub(super) fn dir_len(&self, dir: &Inode) -> Result<u32> {
        u32::try_from(dir.size().div_ceil(self.bs as u64)).map_err(|_| {
            self.corrupt(
                Structure::Directory(dir.ino),
                format!("directory inode {} has size {}", dir.ino, dir.size()),
            )
        })
    }

    /// The physical blocks of a directory, in logical order.
    pub(super) fn dir_blocks(&self, dir: &Inode) -> Result<Vec<Block>> {
        let m = self.mapping(dir)?;
        let n = self.dir_len(dir)?;
        (0..n)
            .map(|i| {
                m.physical(i).ok_or_else(|| {
                    self.corrupt(
                        Structure::Directory(dir.ino),
                        format!("directory inode {} has a hole at block {i}", dir.ino),
                    )
                })
            })
            .collect()
    }

    /// A directory block's records, damage reported against the directory.
    pub(super) fn dir_records<'b>(
        &self,
        dir: &Inode,
        block: &'b [u8],
        end: usize,
    ) -> Result<Vec<Record<'b>>> {
        records(block, end).map_err(|e| {
            self.corrupt(
                Structure::Directory(dir.ino),
                format!("directory inode {}: {e}", dir.ino),
            )
        })
    }

    /// The live entries of a directory, `.` and `..` included, in on-disk order.
    pub(super) fn entries(&self, dir: &Inode) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for (i, b) in self.dir_blocks(dir)?.into_iter().enumerate() {
            let block = self.blocks.read(b)?;
            let is_dx_node = i > 0
                && dir.flags() & EXT4_INDEX_FL != 0
                && block.u32_at(0) == 0
                && usize::from(block.u16_at(4)) == self.bs;
            if is_dx_node {
                continue;
            }
            let end = if self.sb.metadata_csum() && i > 0
                || self.sb.metadata_csum() && dir.flags() & EXT4_INDEX_FL == 0
            {
                self.verify_leaf(dir, &block).map_err(|e| {
                    self.corrupt(
                        Structure::Directory(dir.ino),
                        format!("directory inode {}: {e}", dir.ino),
                    )
                })?;
                self.leaf_end()
            } else {
                self.bs
            };
            for r in self.dir_records(dir, &block, end)? {
                if let Some(ino) = r.ino {
                    out.push(DirEntry {
                        name: String::from_utf8_lossy(r.name).into_owned(),
                        ino: ino.0,
                        kind: Kind::from_dirent_type(r.ftype),
                    });
                }
            }
        }
        Ok(out)
    }

    fn verify_leaf(&self, dir: &Inode, block: &[u8]) -> Result<(), String> {
        let t = self.bs - 12;
        if block.u32_at(t) != 0 || block.u16_at(t + 4) != 12 || block[t + 7] != 0xDE {
            return Err("directory block without checksum tail".into());
        }
        if block.u32_at(t + 8) != crc32c(dir.csum_seed(self.seed), &block[..t]) {
            return Err("directory block checksum mismatch".into());
        }
        Ok(())
    }

    /// The inode a name refers to in a directory, if any.
    pub(super) fn lookup(&self, dir: &Inode, name: &str) -> Result<Option<Ino>> {
        if dir.flags() & EXT4_INDEX_FL != 0 && name != "." && name != ".." {
            return self.htree_find(dir, name.as_bytes());
        }
        Ok(self
            .entries(dir)?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| Ino(e.ino)))
    }

    /// Adds `name -> ino` to a directory.
    pub(super) fn add_entry(
        &mut self,
        dir: &mut Inode,
        name: &str,
        ino: Ino,
        kind: Kind,
    ) -> Result<()> {
        if dir.flags() & EXT4_INDEX_FL != 0 {
            return self.htree_add(dir, name.as_bytes(), ino, kind.dirent_type());
        }
        let end = self.leaf_end();
        for b in self.dir_blocks(dir)? {
            let mut block = self.blocks.read(b)?;
            if insert_into_block(&mut block, end, ino, name.as_bytes(), kind.dirent_type())? {
                self.write_leaf(dir, b, block);
                return Ok(());
            }
        }
        if self.sb.has_compat(COMPAT_DIR_INDEX) && dir.size() == self.bs as u64 {
            // A one-block directory that is full becomes hash-indexed, as the kernel
            // makes it: lookups stay fast however large it grows.
            self.index_directory(dir)?;
            return self.htree_add(dir, name.as_bytes(), ino, kind.dirent_type());
        }
        let b = self.append_dir_block(dir)?;
        let mut block = self.empty_leaf();
        insert_into_block(&mut block, end, ino, name.as_bytes(), kind.dirent_type())?;
        self.write_leaf(dir, b, block);
        Ok(())
    }

    /// Grows a directory by one block (allocated near its last block) and returns it.
    pub(super) fn append_dir_block(&mut self, dir: &mut Inode) -> Result<Block> {
        let m = self.mapping(dir)?;
        let goal = m.extents.last().map_or(self.group_of_inode(dir.ino), |e| {
            self.group_of_block(e.start + u64::from(e.len))
        });
        // Prefer the block right after the last one, so the directory stays one extent.
        let next = m.extents.last().map(|e| e.start + u64::from(e.len));
        let block = match next {
            Some(n) if n.0 < self.sb.blocks_count() && self.try_take_block(n)? => n,
            _ => self.alloc_blocks(goal, 1)?[0].0,
        };
        let mut runs: Vec<(Block, u64)> = m
            .extents
            .iter()
            .map(|e| (e.start, u64::from(e.len)))
            .collect();
        match runs.last_mut() {
            Some((s, l)) if *s + *l == block => *l += 1,
            _ => runs.push((block, 1)),
        }
        for &t in &m.tree {
            self.mark_blocks(t, 1, false)?;
        }
        let tree = self.set_extents(dir, &runs)?;
        let data: u64 = runs.iter().map(|r| r.1).sum();
        dir.set_size(data * self.bs as u64);
        self.set_block_count(dir, data + tree);
        Ok(block)
    }

    /// Removes `name` from a directory (merging its record into the one before it).
    pub(super) fn remove_entry(&mut self, dir: &Inode, name: &str) -> Result<()> {
        let end = self.leaf_end();
        let indexed = dir.flags() & EXT4_INDEX_FL != 0;
        for (i, b) in self.dir_blocks(dir)?.into_iter().enumerate() {
            if indexed && i == 0 {
                continue;
            }
            let mut block = self.blocks.read(b)?;
            if indexed && block.u32_at(0) == 0 && usize::from(block.u16_at(4)) == self.bs {
                continue;
            }
            let recs: Vec<(usize, usize, bool)> = self
                .dir_records(dir, &block, end)?
                .iter()
                .map(|r| {
                    (
                        r.off,
                        r.rec_len,
                        r.ino.is_some() && r.name == name.as_bytes(),
                    )
                })
                .collect();
            let Some(pos) = recs.iter().position(|r| r.2) else {
                continue;
            };
            if pos == 0 {
                block.set_u32(0, 0);
            } else {
                let (prev_off, prev_len, _) = recs[pos - 1];
                block.set_u16(prev_off + 4, in_block16(prev_len + recs[pos].1));
            }
            self.write_leaf(dir, b, block);
            return Ok(());
        }
        Err(self.corrupt(
            Structure::Directory(dir.ino),
            format!("no entry {name:?} in directory inode {}", dir.ino),
        ))
    }
}

impl Kind {
    /// The kind a directory entry's file-type byte names.
    pub fn from_dirent_type(t: u8) -> Option<Kind> {
        Some(match t {
            1 => Kind::File,
            2 => Kind::Dir,
            3 => Kind::CharDevice,
            4 => Kind::BlockDevice,
            5 => Kind::Fifo,
            6 => Kind::Socket,
            7 => Kind::Symlink,
            _ => return None,
        })
    }
}
