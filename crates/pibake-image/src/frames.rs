//! `.img.zst` and `.img.xz` outputs without recompressing whole images.
//!
//! The base is compressed once, into the cache, as one independent frame per 4 MiB chunk
//! (a zstd frame, or a whole xz stream). A node's compressed image is the same sequence
//! of frames, reusing the base's frame for every chunk the node did not change and
//! compressing only the chunks it did. Concatenated zstd frames are a standard `.zst`
//! file, and concatenated xz streams a standard `.xz` file: `zstd -d`, `xz -d`, and
//! libarchive (which Raspberry Pi Imager reads images with; it decodes xz with
//! `LZMA_CONCATENATED`) all accept them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::CHUNK;
use crate::chunks::{Changed, per_chunk, read_chunk};
use crate::codec::Codec;
use crate::digest::Sha256;
use crate::error::{Error, IoContext, Result};

/// The base's frames in the cache: one file of concatenated frames, and their sizes.
pub struct BaseFrames {
    /// The format the frames are compressed in.
    pub codec: Codec,
    data: PathBuf,
    /// Compressed size of each frame, in order.
    sizes: Vec<u64>,
    /// Offset of each frame in `data`.
    offsets: Vec<u64>,
}

impl BaseFrames {
    /// The frames of `base` under `key` in `cache_dir`, made (on `jobs` threads) when missing.
    pub fn prepare(
        codec: Codec,
        base: &Path,
        key: &Sha256,
        cache_dir: &Path,
        jobs: usize,
    ) -> Result<BaseFrames> {
        std::fs::create_dir_all(cache_dir).at(cache_dir)?;
        let data = cache_dir.join(format!("{key}.{}-frames", codec.suffix()));
        let index = cache_dir.join(format!("{key}.{}-frames.idx", codec.suffix()));
        if !(data.exists() && index.exists()) {
            make(codec, base, &data, &index, jobs)?;
        }
        let sizes: Vec<u64> = std::fs::read_to_string(&index)
            .at(&index)?
            .lines()
            .map(|l| {
                l.parse().map_err(|_| {
                    Error::corrupt(format!("{}: not a frame index; delete it", index.display()))
                })
            })
            .collect::<Result<_>>()?;
        let offsets = sizes.iter().scan(0, |at, s| {
            let o = *at;
            *at += s;
            Some(o)
        });
        Ok(BaseFrames {
            codec,
            offsets: offsets.collect(),
            sizes,
            data,
        })
    }

    /// Total size of the base's frames: about what each node's file takes.
    pub fn total(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Writes `out` for a node image of `chunks` chunks, taking frame `slot` of each
    /// chunk that differs from the base from `differs` and every other frame from the base.
    pub fn write_node(
        &self,
        chunks: usize,
        differs: &std::collections::BTreeMap<usize, &Changed>,
        slot: usize,
        out: &Path,
    ) -> Result<()> {
        if chunks != self.sizes.len() {
            return Err(Error::invalid(format!(
                "{}: made for an image of {} chunks, not {chunks}; delete it",
                self.data.display(),
                self.sizes.len()
            )));
        }
        let base = File::open(&self.data).at(&self.data)?;
        let mut w = BufWriter::with_capacity(
            1 << 20,
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(out)
                .at(out)?,
        );
        let mut buf = Vec::new();
        for i in 0..chunks {
            let frame = match differs.get(&i) {
                Some(c) => &c.frames[slot],
                None => {
                    buf.resize(self.sizes[i] as usize, 0);
                    base.read_exact_at(&mut buf, self.offsets[i])
                        .at(&self.data)?;
                    &buf
                }
            };
            w.write_all(frame).at(out)?;
        }
        w.into_inner()
            .map_err(|e| Error::io(out, e.into_error()))?
            .sync_all()
            .at(out)
    }
}

/// Compresses `base` chunk by chunk, on `jobs` threads, into `data` and `index`.
fn make(codec: Codec, base: &Path, data: &Path, index: &Path, jobs: usize) -> Result<()> {
    let src = File::open(base).at(base)?;
    let len = src.metadata().at(base)?.len();
    let count = len.div_ceil(CHUNK) as usize;
    let part = data.with_extension("part");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&part).at(&part)?);
    let mut sizes = Vec::with_capacity(count);
    // Batches of a few chunks per thread keep memory bounded while every core works.
    let batch = jobs.max(1) * 4;
    for first in (0..count).step_by(batch) {
        let n = batch.min(count - first);
        let frames = per_chunk(n, jobs, |k| {
            codec.compress(&read_chunk(&src, base, len, first + k)?)
        })?;
        for f in frames {
            w.write_all(&f).at(&part)?;
            sizes.push(f.len() as u64);
        }
    }
    w.into_inner()
        .map_err(|e| Error::io(&part, e.into_error()))?
        .sync_all()
        .at(&part)?;
    let text: String = sizes.iter().map(|s| format!("{s}\n")).collect();
    let idx_part = index.with_extension("part");
    std::fs::write(&idx_part, text).at(&idx_part)?;
    std::fs::rename(&part, data).at(data)?;
    std::fs::rename(&idx_part, index).at(index)
}
