//! A built node's files: raw `.img`, `.img.zst`, `.img.xz`, `.img.bmap`, all made from the
//! base plus the pages the build wrote (see `image::chunks`), each written under a
//! temporary name and renamed only when every file of the node is complete.

use std::path::{Path, PathBuf};

use super::OutputFormat;
use crate::error::{Error, IoContext, Result};
use pibake_image::bmap;
use pibake_image::chunks::{BaseIndex, NodeImage, digest};
use pibake_image::codec::Codec;
use pibake_image::digest::Sha256;
use pibake_image::frames::BaseFrames;
use pibake_image::sparse::can_reflink;

/// What every node's outputs are made from, prepared once per build.
pub struct Outputs {
    pub index: BaseIndex,
    frames: Vec<BaseFrames>,
    raw: bool,
    bmap: bool,
    sha256: bool,
    dir: PathBuf,
}

/// One node's finished files and the digest of its image.
pub struct Written {
    pub files: Vec<PathBuf>,
    /// sha256 of each file, when asked for.
    pub sha256: Vec<Option<Sha256>>,
    pub digest: Sha256,
    pub size: u64,
    pub bytes_written: u64,
}

impl Outputs {
    /// The base's chunk sums and, per compressed format asked for, its frames (both
    /// cached under `key`, made on `jobs` threads the first time).
    pub fn prepare(
        base: &Path,
        key: &Sha256,
        cache_dir: &Path,
        opts: &super::Options,
        jobs: usize,
    ) -> Result<Outputs> {
        let index = BaseIndex::prepare(base, key, cache_dir, jobs)?;
        let frames = opts
            .formats
            .iter()
            .filter_map(|f| f.codec())
            .map(|c| BaseFrames::prepare(c, base, key, cache_dir, jobs))
            .collect::<pibake_image::Result<_>>()?;
        Ok(Outputs {
            index,
            frames,
            raw: opts.formats.contains(&OutputFormat::Raw),
            bmap: opts.bmap,
            sha256: opts.sha256,
            dir: opts.out.clone(),
        })
    }

    /// Memory one node's output work needs at most: a chunk buffer and an encoder per
    /// compressed format (pages are a few MiB and counted in the margin).
    pub fn memory_per_job(&self) -> u64 {
        (16 << 20) + self.frames.iter().map(|f| f.codec.memory()).sum::<u64>()
    }

    /// Disk space one node's files take: the compressed files are about the size of the
    /// base's frames; a raw image shares the base's blocks on a reflink filesystem and
    /// takes a full sparse copy elsewhere.
    pub fn bytes_per_node(&self, base: &Path) -> Result<u64> {
        let mut need: u64 = self.frames.iter().map(BaseFrames::total).sum();
        if self.raw {
            need += if can_reflink(base, &self.dir)? {
                // The pages a build writes: a generous bound for what a plan changes.
                64 << 20
            } else {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(base).at(base)?.blocks() * 512
            };
        }
        Ok(need)
    }

    /// The node's files, with their final names.
    pub fn files(&self, node: &str) -> Vec<PathBuf> {
        self.kinds().map(|k| self.file(node, k)).collect()
    }

    /// What this build writes per node, in order: the raw image, each compressed form,
    /// then the bmap.
    fn kinds(&self) -> impl Iterator<Item = FileKind> + '_ {
        self.raw
            .then_some(FileKind::Raw)
            .into_iter()
            .chain((0..self.frames.len()).map(FileKind::Compressed))
            .chain(self.bmap.then_some(FileKind::Bmap))
    }

    /// The codecs of the compressed formats asked for, in the order of their slots.
    pub fn codecs(&self) -> Vec<Codec> {
        self.frames.iter().map(|f| f.codec).collect()
    }

    /// Where a role's layer (the base with its packages, see `chunks::Layer`) is kept
    /// during the build: beside the outputs, so that their raw images can share its
    /// blocks; hidden, and removed when the build ends.
    pub fn layer_path(&self, role: &str) -> PathBuf {
        self.dir.join(format!(".pibake-layer-{role}.img.part"))
    }

    /// The final name of one of the node's files.
    fn file(&self, node: &str, kind: FileKind) -> PathBuf {
        match kind {
            FileKind::Raw => self.dir.join(format!("{node}.img")),
            FileKind::Compressed(slot) => self
                .dir
                .join(format!("{node}.img.{}", self.frames[slot].codec.suffix())),
            // The bmap describes the raw image, whichever files carry it: bmaptool takes
            // it beside an `.img.xz` or `.img.zst` as well.
            FileKind::Bmap => self.dir.join(format!("{node}.img.bmap")),
        }
    }

    /// Writes every file of the node; on any failure none of them appears.
    pub fn write(&self, node: &str, image: &NodeImage) -> Result<Written> {
        let files: Vec<(FileKind, PathBuf, PathBuf)> = self
            .kinds()
            .map(|k| {
                let f = self.file(node, k);
                (k, part_name(&f), f)
            })
            .collect();
        let result = self.write_parts(image, &files);
        if result.is_err() || super::interrupted() {
            for (_, p, _) in &files {
                let _ = std::fs::remove_file(p);
            }
            return match result {
                Err(e) => Err(e),
                Ok(_) => Err(Error::Interrupted),
            };
        }
        let (digest, size) = result?;
        let sha256 = files
            .iter()
            .map(|(_, p, _)| {
                self.sha256
                    .then(|| pibake_image::base::sha256_file(p, false))
                    .transpose()
            })
            .collect::<pibake_image::Result<_>>()?;
        for (_, p, f) in &files {
            std::fs::rename(p, f).at(f)?;
        }
        Ok(Written {
            files: files.into_iter().map(|(_, _, f)| f).collect(),
            sha256,
            digest,
            size,
            bytes_written: image.written_bytes(),
        })
    }

    /// Each file under its temporary name, by what it is.
    fn write_parts(
        &self,
        image: &NodeImage,
        files: &[(FileKind, PathBuf, PathBuf)],
    ) -> Result<(Sha256, u64)> {
        let changed = image.changed(&self.codecs())?;
        let differs = image.differs(&changed);
        let sums = image.all_sums(&differs);
        for (kind, p, _) in files {
            if super::interrupted() {
                return Err(Error::Interrupted);
            }
            match *kind {
                FileKind::Raw => image.write_raw(p)?,
                FileKind::Compressed(slot) => {
                    self.frames[slot].write_node(sums.len(), &differs, slot, p)?
                }
                FileKind::Bmap => {
                    let text = bmap::render(self.index.len, sums.iter().flat_map(|s| &s.ranges));
                    std::fs::write(p, text).at(p)?;
                }
            }
        }
        Ok((digest(&sums), self.index.len))
    }
}

/// One kind of file a node gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// `NODE.img`.
    Raw,
    /// `NODE.img.zst` or `.img.xz`: the base frames of that slot.
    Compressed(usize),
    /// `NODE.img.bmap`.
    Bmap,
}

/// The temporary name of an output: hidden, and never one a final name could have.
pub fn part_name(f: &Path) -> PathBuf {
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    f.with_file_name(format!(".{name}.part"))
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("{}: a path with a NUL byte", dir.display())))?;
    // SAFETY: statvfs fills the struct it is given from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Error::io(dir, std::io::Error::last_os_error()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}
