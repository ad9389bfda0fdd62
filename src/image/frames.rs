//! `.img.zst` outputs without recompressing whole images.
//!
//! The base is compressed once, into the cache, as independent zstd frames of [`FRAME`]
//! bytes each. A node's `.img.zst` is the same sequence of frames, reusing the base's
//! compressed frame for every chunk the node did not change and compressing only the
//! chunks it did (the write log of the node's image says which). Concatenated zstd frames
//! are a standard `.zst` file: `zstd -d` and every libzstd-based reader accept it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Uncompressed bytes per frame: small enough that a node's few changes recompress little,
/// large enough that the frame headers cost nothing.
pub const FRAME: u64 = 4 << 20;
const LEVEL: i32 = 3;

/// The base's frames in the cache: one file of concatenated frames, and their sizes.
pub struct BaseFrames {
    data: PathBuf,
    /// Compressed size of each frame, in order.
    sizes: Vec<u64>,
    /// Offset of each frame in `data`.
    offsets: Vec<u64>,
}

fn compress(chunk: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(chunk, LEVEL).map_err(|e| Error::invalid(format!("zstd: {e}")))
}

fn read_chunk(file: &File, path: &Path, i: usize, len: u64) -> Result<Vec<u8>> {
    let start = i as u64 * FRAME;
    let n = FRAME.min(len - start) as usize;
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, start).at(path)?;
    Ok(buf)
}

impl BaseFrames {
    /// The frames of `base` under `key` in `cache_dir`, made (on `jobs` threads) when missing.
    pub fn prepare(base: &Path, key: &str, cache_dir: &Path, jobs: usize) -> Result<BaseFrames> {
        std::fs::create_dir_all(cache_dir).at(cache_dir)?;
        let data = cache_dir.join(format!("{key}.zst-frames"));
        let index = cache_dir.join(format!("{key}.zst-frames.idx"));
        if !(data.exists() && index.exists()) {
            make(base, &data, &index, jobs)?;
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
            offsets: offsets.collect(),
            sizes,
            data,
        })
    }

    /// Writes `out` (through a temporary name) for the node image `image`, whose bytes
    /// differ from the base only inside `changed`.
    pub fn write_node(&self, image: &Path, changed: &[Range<u64>], out: &Path) -> Result<()> {
        let src = File::open(image).at(image)?;
        let len = src.metadata().at(image)?.len();
        let frames = len.div_ceil(FRAME) as usize;
        if frames != self.sizes.len() {
            return Err(Error::invalid(format!(
                "{}: not the size of the base its frames were made from",
                image.display()
            )));
        }
        let base = File::open(&self.data).at(&self.data)?;
        let tmp = out.with_extension("zst.part");
        let mut w = BufWriter::with_capacity(
            1 << 20,
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .at(&tmp)?,
        );
        for i in 0..frames {
            let r = i as u64 * FRAME..((i as u64 + 1) * FRAME).min(len);
            let frame = if changed.iter().any(|c| c.start < r.end && r.start < c.end) {
                compress(&read_chunk(&src, image, i, len)?)?
            } else {
                let mut buf = vec![0u8; self.sizes[i] as usize];
                base.read_exact_at(&mut buf, self.offsets[i])
                    .at(&self.data)?;
                buf
            };
            w.write_all(&frame).at(&tmp)?;
        }
        w.into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?
            .sync_all()
            .at(&tmp)?;
        std::fs::rename(&tmp, out).at(out)
    }
}

/// Compresses `base` frame by frame, `jobs` frames at a time, into `data` and `index`.
fn make(base: &Path, data: &Path, index: &Path, jobs: usize) -> Result<()> {
    let src = File::open(base).at(base)?;
    let len = src.metadata().at(base)?.len();
    let frames = len.div_ceil(FRAME) as usize;
    let part = data.with_extension("part");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&part).at(&part)?);
    let mut sizes = Vec::with_capacity(frames);
    let jobs = jobs.max(1);
    for batch in (0..frames).collect::<Vec<_>>().chunks(jobs) {
        let compressed: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&i| {
                    let src = &src;
                    s.spawn(move || compress(&read_chunk(src, base, i, len)?))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::invalid("a compression thread stopped")))
                })
                .collect()
        });
        for c in compressed {
            let c = c?;
            w.write_all(&c).at(&part)?;
            sizes.push(c.len() as u64);
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
