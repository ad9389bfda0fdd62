//! Extent trees: where a file's blocks are.
//!
//! Reading walks the tree to any depth, checking each node's magic, depth and checksum.
//! Writing builds a whole new tree for a file's runs: up to four extents fit in the inode;
//! more get leaf blocks, and more leaves than four get index blocks above them, level by
//! level, as ext4 does for fragmented files.

use super::Ext4;
use super::csum::crc32c;
use super::inode::{EXT4_EXTENTS_FL, Inode};
use super::le::{Le, in_block16};
use crate::error::{Block, Error, Result, Structure};

const MAGIC: u16 = 0xF30A;
/// The longest initialized extent ext4 allows (longer lengths mark unwritten extents).
const MAX_LEN: u16 = 32768;
const MAX_DEPTH: u16 = 5;

/// A run of a file: `len` blocks from logical block `logical`, stored at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub logical: u32,
    pub start: Block,
    pub len: u32,
    /// Allocated but unwritten (reads as zeros).
    pub uninit: bool,
}

/// A file's extents in logical order and the blocks of its tree (index and leaf nodes).
pub struct Mapping {
    pub extents: Vec<Extent>,
    pub tree: Vec<Block>,
}

impl Mapping {
    /// Physical block of logical block `n`, or `None` in a hole.
    pub fn physical(&self, n: u32) -> Option<Block> {
        self.extents
            .iter()
            .find(|e| (e.logical..e.logical + e.len).contains(&n))
            .map(|e| e.start + u64::from(n - e.logical))
    }
}

impl Ext4 {
    /// The extents of an inode that uses an extent tree.
    pub(super) fn mapping(&self, inode: &Inode) -> Result<Mapping> {
        if inode.flags() & EXT4_EXTENTS_FL == 0 {
            return Err(Error::unsupported(
                &self.origin,
                format!(
                    "inode {} uses block maps (ext2/ext3 style), which pibake does not read",
                    inode.ino
                ),
            ));
        }
        let mut m = Mapping {
            extents: Vec::new(),
            tree: Vec::new(),
        };
        self.walk(inode, inode.i_block(), None, &mut m)?;
        Ok(m)
    }

    fn walk(&self, inode: &Inode, node: &[u8], depth: Option<u16>, m: &mut Mapping) -> Result<()> {
        let bad = |what: &str| {
            self.corrupt(
                Structure::Extents(inode.ino),
                format!("inode {}: extent tree: {what}", inode.ino),
            )
        };
        if node.u16_at(0) != MAGIC {
            return Err(bad("bad magic"));
        }
        let entries = usize::from(node.u16_at(2));
        let d = node.u16_at(6);
        if depth.is_some_and(|want| want != d) || d > MAX_DEPTH || 12 + entries * 12 > node.len() {
            return Err(bad("inconsistent node header"));
        }
        for i in 0..entries {
            let e = &node[12 + i * 12..24 + i * 12];
            if d == 0 {
                let raw_len = e.u16_at(4);
                let (len, uninit) = if raw_len > MAX_LEN {
                    (raw_len - MAX_LEN, true)
                } else {
                    (raw_len, false)
                };
                let start = Block::from_lo_hi(e.u32_at(8), e.u16_at(6));
                if start.0 + u64::from(len) > self.sb.blocks_count() {
                    return Err(bad("extent past the end of the filesystem"));
                }
                m.extents.push(Extent {
                    logical: e.u32_at(0),
                    start,
                    len: u32::from(len),
                    uninit,
                });
            } else {
                let child = Block::from_lo_hi(e.u32_at(4), e.u16_at(8));
                let block = self.blocks.read(child)?;
                if self.sb.metadata_csum() {
                    let max = usize::from(block.u16_at(4));
                    let tail = 12 + max * 12;
                    if tail + 4 > block.len()
                        || block.u32_at(tail) != crc32c(inode.csum_seed(self.seed), &block[..tail])
                    {
                        return Err(bad(&format!("checksum mismatch in block {child}")));
                    }
                }
                m.tree.push(child);
                self.walk(inode, &block, Some(d - 1), m)?;
            }
        }
        Ok(())
    }

    /// Gives a file the data `runs` (physical `(start, len)`, in logical order from block
    /// 0) as a fresh extent tree, allocating tree blocks near the data. Returns how many
    /// tree blocks were allocated. The old tree must have been freed by the caller.
    pub(super) fn set_extents(&mut self, inode: &mut Inode, runs: &[(Block, u64)]) -> Result<u64> {
        let mut leaves: Vec<[u8; 12]> = Vec::new();
        let mut logical = 0u32;
        for &(start, len) in runs {
            let mut off = 0;
            while off < len {
                let n = u16::try_from(len - off).map_or(MAX_LEN, |left| left.min(MAX_LEN));
                let mut e = [0u8; 12];
                e.set_u32(0, logical);
                e.set_u16(4, n);
                e.set_u16(6, (start + off).hi16());
                e.set_u32(8, (start + off).lo());
                leaves.push(e);
                logical = logical.checked_add(u32::from(n)).ok_or_else(|| {
                    Error::unsupported(&self.origin, "a file of 2^32 blocks or more")
                })?;
                off += u64::from(n);
            }
        }
        let per_block = (self.bs - 12) / 12;
        let goal = runs
            .first()
            .map_or(self.group_of_inode(inode.ino), |r| self.group_of_block(r.0));
        let mut level = leaves;
        let mut depth = 0u16;
        let mut tree_blocks = 0u64;
        while level.len() > 4 {
            let chunks: Vec<Vec<[u8; 12]>> = level.chunks(per_block).map(<[_]>::to_vec).collect();
            let blocks: Vec<Block> = self
                .alloc_blocks(goal, chunks.len() as u64)?
                .into_iter()
                .flat_map(|(s, l)| s.run(l))
                .collect();
            tree_blocks += blocks.len() as u64;
            let mut next = Vec::new();
            for (chunk, &b) in chunks.iter().zip(&blocks) {
                let mut block = vec![0u8; self.bs];
                header(&mut block, chunk.len(), per_block, depth);
                for (i, e) in chunk.iter().enumerate() {
                    block[12 + i * 12..24 + i * 12].copy_from_slice(e);
                }
                if self.sb.metadata_csum() {
                    let tail = 12 + per_block * 12;
                    let c = crc32c(inode.csum_seed(self.seed), &block[..tail]);
                    block.set_u32(tail, c);
                }
                self.blocks.write(b, block);
                let mut idx = [0u8; 12];
                idx.set_u32(0, chunk[0].u32_at(0));
                idx.set_u32(4, b.lo());
                idx.set_u16(8, b.hi16());
                next.push(idx);
            }
            level = next;
            depth += 1;
        }
        let root = inode.i_block_mut();
        root.fill(0);
        header(root, level.len(), 4, depth);
        for (i, e) in level.iter().enumerate() {
            root[12 + i * 12..24 + i * 12].copy_from_slice(e);
        }
        inode.set_flags(inode.flags() | EXT4_EXTENTS_FL);
        Ok(tree_blocks)
    }

    /// Frees a file's data and tree blocks.
    pub(super) fn free_mapping(&mut self, m: &Mapping) -> Result<()> {
        for e in &m.extents {
            self.mark_blocks(e.start, u64::from(e.len), false)?;
        }
        for &b in &m.tree {
            self.mark_blocks(b, 1, false)?;
        }
        Ok(())
    }
}

fn header(node: &mut [u8], entries: usize, max: usize, depth: u16) {
    node.set_u16(0, MAGIC);
    node.set_u16(2, in_block16(entries));
    node.set_u16(4, in_block16(max));
    node.set_u16(6, depth);
    node.set_u32(8, 0);
}
