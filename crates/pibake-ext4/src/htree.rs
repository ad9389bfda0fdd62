//! Adding names to hash-indexed (`dir_index`) directories.
//!
//! An htree directory's block 0 is the root: `.` and `..`, then the index (hash, block)
//! pairs, sorted by hash; with one indirect level, the root points at index nodes that
//! point at leaves. A name lives in the leaf whose hash range covers its hash. When that
//! leaf is full it is split at a hash boundary near its middle, the upper half moves to a
//! new block, and the index gets an entry for it; a full index node is split the same
//! way, and a full root moves its entries into a new node (the tree grows one level).
//! Without `large_dir`, two levels are the most ext4 allows.

use super::Ext4;
use super::csum::crc32c;
use super::dir::insert_into_block;
use super::hash::{HashVersion, dx_hash};
use super::inode::Inode;
use super::le::{Le, in_block16};
use crate::error::{Block, Error, Ino, Result, Structure};
use crate::hash::UnknownHashVersion;

/// An index block: where its count/limit header is, and its entries.
struct Node {
    logical: u32,
    physical: Block,
    block: Vec<u8>,
    /// Byte offset of `dx_countlimit` (0x20 in the root, 8 in nodes).
    at: usize,
}

impl Node {
    fn limit(&self) -> usize {
        usize::from(self.block.u16_at(self.at))
    }
    fn count(&self) -> usize {
        usize::from(self.block.u16_at(self.at + 2))
    }
    /// (hash, logical block) of entry `i`; entry 0 has no hash (covers from 0).
    fn entry(&self, i: usize) -> (u32, u32) {
        let o = self.at + i * 8;
        (
            if i == 0 { 0 } else { self.block.u32_at(o) },
            self.block.u32_at(o + 4),
        )
    }
    fn entries(&self) -> Vec<(u32, u32)> {
        (0..self.count()).map(|i| self.entry(i)).collect()
    }
    /// Rewrites the entries (count changes, limit stays).
    fn set_entries(&mut self, entries: &[(u32, u32)]) {
        self.block.set_u16(self.at + 2, in_block16(entries.len()));
        for (i, &(h, b)) in entries.iter().enumerate() {
            let o = self.at + i * 8;
            if i > 0 {
                self.block.set_u32(o, h);
            }
            self.block.set_u32(o + 4, b);
        }
    }
    /// Index of the entry whose range covers `hash`.
    fn find(&self, hash: u32) -> usize {
        (1..self.count())
            .take_while(|&i| self.entry(i).0 <= hash)
            .last()
            .unwrap_or(0)
    }
}

impl Ext4 {
    fn dx_limit(&self, at: usize) -> usize {
        (self.bs - at) / 8 - usize::from(self.sb.metadata_csum())
    }

    fn read_node(&self, dir: &Inode, blocks: &[Block], logical: u32, at: usize) -> Result<Node> {
        let physical = *blocks.get(logical as usize).ok_or_else(|| {
            self.corrupt(
                Structure::Directory(dir.ino),
                format!("directory inode {}: index points past its end", dir.ino),
            )
        })?;
        let node = Node {
            logical,
            physical,
            block: self.blocks.read(physical)?,
            at,
        };
        if node.count() > node.limit() || node.limit() != self.dx_limit(at) || node.count() == 0 {
            return Err(self.corrupt(
                Structure::Directory(dir.ino),
                format!(
                    "directory inode {}: index block {logical} has count {} / limit {}",
                    dir.ino,
                    node.count(),
                    node.limit()
                ),
            ));
        }
        Ok(node)
    }

    /// The index root (block 0), refused unless it is the two-level kind pibake writes.
    fn read_root(&self, dir: &Inode, blocks: &[Block]) -> Result<Node> {
        let root = self.read_node(dir, blocks, 0, 0x20)?;
        let levels = root.block[0x1E];
        if root.block[0x1D] != 8 || levels > 1 {
            return Err(Error::unsupported(
                &self.origin,
                format!(
                    "directory inode {}: htree with {} index levels (large_dir)",
                    dir.ino,
                    u16::from(levels) + 1
                ),
            ));
        }
        Ok(root)
    }

    /// Stores an index block with its checksum tail.
    fn write_node(&mut self, dir: &Inode, node: &mut Node) {
        if self.sb.metadata_csum() {
            let tail = node.at + node.limit() * 8;
            node.block.set_u32(tail, 0);
            let c = crc32c(
                dir.csum_seed(self.seed),
                &node.block[..node.at + node.count() * 8],
            );
            // The tail counts with its checksum field zeroed.
            let c = crc32c(c, &node.block[tail..tail + 4]);
            let c = crc32c(c, &[0; 4]);
            node.block.set_u32(tail + 4, c);
        }
        self.blocks.write(node.physical, node.block.clone());
    }

    /// A new, empty index node block (a fake empty record spanning the block).
    fn new_node(&mut self, dir: &mut Inode) -> Result<Node> {
        let physical = self.append_dir_block(dir)?;
        let logical = self.dir_len(dir)? - 1;
        let mut block = vec![0u8; self.bs];
        block.set_u16(4, in_block16(self.bs));
        block.set_u16(8, in_block16(self.dx_limit(8)));
        Ok(Node {
            logical,
            physical,
            block,
            at: 8,
        })
    }

    fn hash_of(&self, dir: &Inode, root: &[u8], name: &[u8]) -> Result<u32> {
        let version = HashVersion::from_disk(root[0x1C], self.sb.unsigned_hash()).map_err(|e| {
            let detail = format!("directory inode {}: {e}", dir.ino);
            match e {
                UnknownHashVersion::Siphash => Error::unsupported(&self.origin, detail),
                UnknownHashVersion::Other(_) => self.corrupt(Structure::Directory(dir.ino), detail),
            }
        })?;
        Ok(dx_hash(version, name, self.sb.hash_seed()).0)
    }

    /// Finds a name through the index: one leaf read (two on a hash collision that
    /// continues into the next leaf) instead of a scan of the whole directory.
    pub(super) fn htree_find(&self, dir: &Inode, name: &[u8]) -> Result<Option<Ino>> {
        let blocks = self.dir_blocks(dir)?;
        let root = self.read_root(dir, &blocks)?;
        let levels = root.block[0x1E];
        let hash = self.hash_of(dir, &root.block, name)?;
        let node = if levels == 1 {
            self.read_node(dir, &blocks, root.entry(root.find(hash)).1, 8)?
        } else {
            root
        };
        let end = self.leaf_end();
        let mut i = node.find(hash);
        loop {
            let leaf = node.entry(i).1;
            let phys = *blocks.get(leaf as usize).ok_or_else(|| {
                self.corrupt(
                    Structure::Directory(dir.ino),
                    format!("directory inode {}: index points past its end", dir.ino),
                )
            })?;
            let block = self.blocks.read(phys)?;
            if let Some(ino) = self
                .dir_records(dir, &block, end)?
                .iter()
                .find(|r| r.ino.is_some() && r.name == name)
                .and_then(|r| r.ino)
            {
                return Ok(Some(ino));
            }
            // A set low bit marks a leaf that continues the previous one's last hash.
            let next = i + 1;
            if next < node.count() && node.entry(next).0 & 1 == 1 && node.entry(next).0 & !1 == hash
            {
                i = next;
                continue;
            }
            return Ok(None);
        }
    }

    /// Turns a full one-block directory into an htree: its names move to a new leaf
    /// (block 1) and block 0 becomes the index root pointing at it.
    pub(super) fn index_directory(&mut self, dir: &mut Inode) -> Result<()> {
        let blocks = self.dir_blocks(dir)?;
        let end = self.leaf_end();
        let old = self.blocks.read(blocks[0])?;
        let mut leaf = self.empty_leaf();
        let mut parent = dir.ino;
        for r in self.dir_records(dir, &old, end)? {
            let Some(ino) = r.ino else { continue };
            match r.name {
                b"." => {}
                b".." => parent = ino,
                name => {
                    if !insert_into_block(&mut leaf, end, ino, name, r.ftype)? {
                        return Err(self.corrupt(
                            Structure::Directory(dir.ino),
                            format!("directory inode {} overflows while indexing", dir.ino),
                        ));
                    }
                }
            }
        }
        let leaf_phys = self.append_dir_block(dir)?;
        self.write_leaf(dir, leaf_phys, leaf);

        let mut root = vec![0u8; self.bs];
        let dir_type = super::inode::Kind::Dir.dirent_type();
        root.set_u32(0, dir.ino.0);
        root.set_u16(4, 12);
        root[6] = 1;
        root[7] = dir_type;
        root[8] = b'.';
        root.set_u32(12, parent.0);
        root.set_u16(16, in_block16(self.bs - 12));
        root[18] = 2;
        root[19] = dir_type;
        root[20..22].copy_from_slice(b"..");
        root[0x1C] = self.sb.def_hash_version();
        root[0x1D] = 8;
        root.set_u16(0x20, in_block16(self.dx_limit(0x20)));
        let mut node = Node {
            logical: 0,
            physical: blocks[0],
            block: root,
            at: 0x20,
        };
        node.set_entries(&[(0, 1)]);
        self.write_node(dir, &mut node);
        dir.set_flags(dir.flags() | super::inode::EXT4_INDEX_FL);
        Ok(())
    }

    /// Adds `name -> ino` to an htree directory.
    pub(super) fn htree_add(
        &mut self,
        dir: &mut Inode,
        name: &[u8],
        ino: Ino,
        ftype: u8,
    ) -> Result<()> {
        let blocks = self.dir_blocks(dir)?;
        let mut root = self.read_root(dir, &blocks)?;
        let levels = root.block[0x1E];
        let hash = self.hash_of(dir, &root.block, name)?;
        let ri = root.find(hash);
        let mut node = if levels == 1 {
            Some(self.read_node(dir, &blocks, root.entry(ri).1, 8)?)
        } else {
            None
        };
        let (ni, leaf_logical) = match &node {
            Some(n) => {
                let i = n.find(hash);
                (i, n.entry(i).1)
            }
            None => (ri, root.entry(ri).1),
        };
        let leaf_phys = *blocks.get(leaf_logical as usize).ok_or_else(|| {
            self.corrupt(
                Structure::Directory(dir.ino),
                format!("directory inode {}: index points past its end", dir.ino),
            )
        })?;
        let end = self.leaf_end();
        let mut leaf = self.blocks.read(leaf_phys)?;
        if insert_into_block(&mut leaf, end, ino, name, ftype)? {
            self.write_leaf(dir, leaf_phys, leaf);
            return Ok(());
        }

        // Split the leaf: all its names plus the new one, sorted by hash, cut at a hash
        // boundary near the middle so no hash straddles two leaves.
        let mut names: Vec<(u32, Vec<u8>, Ino, u8)> = self
            .dir_records(dir, &leaf, end)?
            .iter()
            .filter_map(|r| Some((r, r.ino?)))
            .map(|(r, ino)| {
                Ok((
                    self.hash_of(dir, &root.block, r.name)?,
                    r.name.to_vec(),
                    ino,
                    r.ftype,
                ))
            })
            .collect::<Result<_>>()?;
        names.push((hash, name.to_vec(), ino, ftype));
        names.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let half = names.len() / 2;
        let cut = (half..names.len())
            .chain((1..half).rev())
            .find(|&i| names[i].0 != names[i - 1].0)
            .ok_or_else(|| {
                Error::unsupported(
                    &self.origin,
                    format!(
                        "directory inode {}: a full leaf whose names all share one hash",
                        dir.ino
                    ),
                )
            })?;
        let split_hash = names[cut].0;
        let new_phys = self.append_dir_block(dir)?;
        let new_logical = self.dir_len(dir)? - 1;
        for (part, phys) in [(&names[..cut], leaf_phys), (&names[cut..], new_phys)] {
            let mut block = self.empty_leaf();
            for (_, n, i, t) in part {
                if !insert_into_block(&mut block, end, *i, n, *t)? {
                    return Err(self.corrupt(
                        Structure::Directory(dir.ino),
                        "directory leaf split overflow",
                    ));
                }
            }
            self.write_leaf(dir, phys, block);
        }

        // Index the new leaf right after the one it came from.
        let parent = match node.as_mut() {
            Some(n) => n,
            None => &mut root,
        };
        let mut entries = parent.entries();
        entries.insert(ni + 1, (split_hash, new_logical));
        if entries.len() <= parent.limit() {
            parent.set_entries(&entries);
            let mut p = match node {
                Some(n) => n,
                None => root,
            };
            self.write_node(dir, &mut p);
            return Ok(());
        }
        match node {
            None => {
                // The root is full: its entries move into a new node below it.
                let mut child = self.new_node(dir)?;
                child.set_entries(&entries);
                self.write_node(dir, &mut child);
                root.block[0x1E] = 1;
                root.set_entries(&[(0, child.logical)]);
                self.write_node(dir, &mut root);
            }
            Some(mut n) => {
                // A full node splits in two; the root indexes the upper half.
                if root.count() >= root.limit() {
                    return Err(Error::unsupported(
                        &self.origin,
                        format!(
                            "directory inode {} is too large for a two-level htree (large_dir)",
                            dir.ino
                        ),
                    ));
                }
                let half = entries.len() / 2;
                let mut upper = self.new_node(dir)?;
                upper.set_entries(&entries[half..]);
                n.set_entries(&entries[..half]);
                self.write_node(dir, &mut upper);
                self.write_node(dir, &mut n);
                let mut top = root.entries();
                top.insert(ri + 1, (entries[half].0, upper.logical));
                root.set_entries(&top);
                self.write_node(dir, &mut root);
            }
        }
        Ok(())
    }
}
