//! A node image as the base plus the pages the build wrote, cut into 4 MiB chunks.
//!
//! A node differs from the base in a few MiB at most, so everything an output needs is
//! made from what the base already has, computed once per base and cached: the sha256
//! of every chunk, the data ranges in every chunk with their sha256 (bmap ranges never
//! cross a chunk boundary), and compressed frames (see `frames`). Per node, only the
//! chunks holding a written page are read, hashed and recompressed. A 151-node batch
//! reads the base once, not 151 times.
//!
//! The image digest pibake records is over chunks, so it too costs only the changed
//! chunks: the sha256 of the lines `hex(sha256(chunk))\n`, one per 4 MiB chunk in order,
//! which coreutils reproduce from any copy of the image:
//! `split -b 4194304 --filter=sha256sum NODE.img | cut -c1-64 | sha256sum`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::Digest;

use super::region::PAGE;
use super::sparse::{clone_or_copy, data_ranges};
use crate::CHUNK;
use crate::codec::Codec;
use crate::digest::Sha256;
use crate::error::{Error, IoContext, Result};

pub use crate::digest::hex;

/// What a chunk holds: its sha256, and its data ranges (image offsets) with theirs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChunkSums {
    /// sha256 of the whole chunk.
    pub sha256: Sha256,
    /// The chunk's data ranges as `(start, end, sha256)`, in image byte offsets.
    pub ranges: Vec<(u64, u64, Sha256)>,
}

/// The base's chunk sums, computed once (on `jobs` threads) and cached beside it.
pub struct BaseIndex {
    /// Length of the base image in bytes.
    pub len: u64,
    /// The sums of every chunk, in order.
    pub chunks: Vec<ChunkSums>,
}

/// Runs `f` for chunks `0..count` on `jobs` threads; results in chunk order.
pub fn per_chunk<T: Send>(
    count: usize,
    jobs: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    crate::pool::run(count, jobs, |_, i| f(i))
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|lost| {
                Err(Error::WorkerLost(format!(
                    "chunk {}: {}",
                    lost.item, lost.message
                )))
            })
        })
        .collect()
}

/// Reads chunk `i` of `file` (the last one may be short).
pub fn read_chunk(file: &File, path: &Path, len: u64, i: usize) -> Result<Vec<u8>> {
    let start = i as u64 * CHUNK;
    let mut buf = vec![0u8; CHUNK.min(len - start) as usize];
    file.read_exact_at(&mut buf, start).at(path)?;
    Ok(buf)
}

/// The sums of chunk `i` whose bytes are `buf`, with `data` its data ranges.
fn sums(i: usize, buf: &[u8], data: &[Range<u64>]) -> ChunkSums {
    let start = i as u64 * CHUNK;
    let ranges = data
        .iter()
        .map(|r| {
            let bytes = &buf[(r.start - start) as usize..(r.end - start) as usize];
            (r.start, r.end, Sha256::of(bytes))
        })
        .collect();
    ChunkSums {
        sha256: Sha256::of(buf),
        ranges,
    }
}

/// `ranges` cut at chunk boundaries, grouped by chunk.
fn by_chunk(ranges: &[Range<u64>], count: usize) -> Vec<Vec<Range<u64>>> {
    let mut out = vec![Vec::new(); count];
    for r in ranges {
        let mut s = r.start;
        while s < r.end {
            let i = (s / CHUNK) as usize;
            let e = r.end.min((i as u64 + 1) * CHUNK);
            out[i].push(s..e);
            s = e;
        }
    }
    out
}

impl BaseIndex {
    /// The index of `base` cached under `key` in `cache_dir`, computed on `jobs` threads
    /// (and cached) when missing or not matching the base's length.
    pub fn prepare(base: &Path, key: &Sha256, cache_dir: &Path, jobs: usize) -> Result<BaseIndex> {
        std::fs::create_dir_all(cache_dir).at(cache_dir)?;
        let path = cache_dir.join(format!("{key}.chunks.json"));
        let file = File::open(base).at(base)?;
        let len = file.metadata().at(base)?.len();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let chunks: Vec<ChunkSums> = serde_json::from_str(&text).map_err(|e| {
                Error::corrupt(format!("{}: {e}", path.display()))
                    .with_hint("delete it; pibake makes it again")
            })?;
            if chunks.len() as u64 == len.div_ceil(CHUNK) {
                return Ok(BaseIndex { len, chunks });
            }
        }
        let count = len.div_ceil(CHUNK) as usize;
        let data = by_chunk(&data_ranges(&file, len).at(base)?, count);
        let chunks = per_chunk(count, jobs, |i| {
            Ok(sums(i, &read_chunk(&file, base, len, i)?, &data[i]))
        })?;
        let part = path.with_extension("part");
        let text = serde_json::to_string(&chunks).map_err(|e| Error::invalid(e.to_string()))?;
        std::fs::write(&part, text).at(&part)?;
        std::fs::rename(&part, &path).at(&path)?;
        Ok(BaseIndex { len, chunks })
    }
}

/// A node's image: the base, a layer shared with other nodes (if any), and the pages its
/// own build wrote on top.
pub struct NodeImage<'a> {
    /// The uncompressed base image.
    pub base: &'a Path,
    /// The base's chunk sums.
    pub index: &'a BaseIndex,
    /// Pages the node shares with others, applied to the base once for all of them.
    pub layer: Option<&'a Layer>,
    /// The pages the node's build wrote, by page index ([`PAGE`] bytes each), over the
    /// layer when there is one.
    pub pages: BTreeMap<u64, Box<[u8]>>,
}

/// Pages that every node of a group shares (a role's `.deb`s, say), applied to the base
/// once: the base with them is a file of its own (a reflink clone of the base where the
/// filesystem allows, plus the pages), and the chunks they change are hashed and
/// compressed once. A node built over the layer then reads, hashes, compresses and
/// writes only its own pages, and its raw image shares the layer's blocks.
pub struct Layer {
    /// The base with the layer's pages; removed when the layer is dropped.
    pub raw: std::path::PathBuf,
    /// The chunks the layer changed: their sums and frames.
    changed: BTreeMap<usize, Changed>,
}

impl Layer {
    /// Writes `pages` over a clone of `base` at `raw`, and hashes and compresses (with
    /// each of `codecs`, in the order every node's outputs use) the chunks they change.
    pub fn make(
        base: &Path,
        index: &BaseIndex,
        pages: BTreeMap<u64, Box<[u8]>>,
        codecs: &[Codec],
        raw: &Path,
    ) -> Result<Layer> {
        let image = NodeImage {
            base,
            index,
            layer: None,
            pages,
        };
        let changed = image.changed(codecs)?;
        let layer = Layer {
            raw: raw.to_path_buf(),
            changed,
        };
        image.write_raw(raw)?;
        Ok(layer)
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.raw);
    }
}

/// A chunk the node changed: its sums, and its frames (one per codec asked, in order).
pub struct Changed {
    /// The sums of the chunk as the node has it.
    pub sums: ChunkSums,
    /// The chunk compressed with each codec asked, in the order asked.
    pub frames: Vec<Vec<u8>>,
}

impl NodeImage<'_> {
    /// The chunks holding at least one written page.
    pub fn changed_chunks(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .pages
            .keys()
            .map(|p| (p * PAGE / CHUNK) as usize)
            .collect();
        out.dedup();
        out
    }

    /// Bytes written by the build (whole pages).
    pub fn written_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// The file the node's pages go over: the layer's, else the base.
    fn under(&self) -> &Path {
        self.layer.map_or(self.base, |l| &l.raw)
    }

    /// The sums of chunk `i` under the node's pages: the layer's, else the base's.
    fn under_sums(&self, i: usize) -> &ChunkSums {
        self.layer
            .and_then(|l| l.changed.get(&i))
            .map_or(&self.index.chunks[i], |c| &c.sums)
    }

    /// Reads, hashes and compresses (with each of `codecs`) every chunk the node's own
    /// pages changed, once.
    pub fn changed(&self, codecs: &[Codec]) -> Result<BTreeMap<usize, Changed>> {
        let under = self.under();
        let file = File::open(under).at(under)?;
        let pages_per_chunk = CHUNK / PAGE;
        let mut out = BTreeMap::new();
        for i in self.changed_chunks() {
            let mut buf = read_chunk(&file, under, self.index.len, i)?;
            let first = i as u64 * pages_per_chunk;
            let mut data: Vec<Range<u64>> = self
                .under_sums(i)
                .ranges
                .iter()
                .map(|(s, e, _)| *s..*e)
                .collect();
            for (&p, page) in self.pages.range(first..first + pages_per_chunk) {
                let at = ((p - first) * PAGE) as usize;
                let n = page.len().min(buf.len() - at);
                buf[at..at + n].copy_from_slice(&page[..n]);
                data.push(p * PAGE..(p * PAGE + n as u64));
            }
            let frames = codecs
                .iter()
                .map(|c| c.compress(&buf))
                .collect::<Result<_>>()?;
            out.insert(
                i,
                Changed {
                    sums: sums(i, &buf, &merge(data)),
                    frames,
                },
            );
        }
        Ok(out)
    }

    /// Every chunk that differs from the base, the node's own `changed` over the layer's.
    pub fn differs<'s>(
        &'s self,
        changed: &'s BTreeMap<usize, Changed>,
    ) -> BTreeMap<usize, &'s Changed> {
        let mut all: BTreeMap<usize, &Changed> = self
            .layer
            .map(|l| l.changed.iter().map(|(&i, c)| (i, c)).collect())
            .unwrap_or_default();
        all.extend(changed.iter().map(|(&i, c)| (i, c)));
        all
    }

    /// The chunk sums of the whole node image, in order, from what `differs` gave.
    pub fn all_sums<'s>(&'s self, differs: &BTreeMap<usize, &'s Changed>) -> Vec<&'s ChunkSums> {
        (0..self.index.chunks.len())
            .map(|i| differs.get(&i).map_or(&self.index.chunks[i], |c| &c.sums))
            .collect()
    }

    /// The raw image at `out`: a clone (or sparse copy) of the layer or the base, with the
    /// node's pages on top.
    pub fn write_raw(&self, out: &Path) -> Result<()> {
        clone_or_copy(self.under(), out)?;
        let file = OpenOptions::new().write(true).open(out).at(out)?;
        for (&p, page) in &self.pages {
            let n = (page.len() as u64).min(self.index.len - p * PAGE) as usize;
            file.write_all_at(&page[..n], p * PAGE).at(out)?;
        }
        file.sync_all().at(out)
    }
}

/// The image digest (see the module doc) from every chunk's sums.
pub fn digest(sums: &[&ChunkSums]) -> Sha256 {
    let mut h = sha2::Sha256::new();
    for s in sums {
        h.update(s.sha256.to_string().as_bytes());
        h.update(b"\n");
    }
    Sha256::from_hasher(h)
}

/// The image digest of `path`'s first `len` bytes, read in chunks; `None` when the file
/// is shorter.
pub fn digest_file(path: &Path, len: u64) -> Result<Option<Sha256>> {
    let file = File::open(path).at(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        let mut got = 0;
        while got < n {
            match file.read_at(&mut buf[got..n], at + got as u64).at(path)? {
                0 => return Ok(None),
                k => got += k,
            }
        }
        h.update(Sha256::of(&buf[..n]).to_string().as_bytes());
        h.update(b"\n");
        at += n as u64;
    }
    Ok(Some(Sha256::from_hasher(h)))
}

/// Sorted, merged ranges.
fn merge(mut v: Vec<Range<u64>>) -> Vec<Range<u64>> {
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}
