//! A byte window of an image file, seen as a device of its own.
//!
//! Partitions live at offsets inside one image file. Every filesystem layer in pibake
//! (FAT, ext4) works on a [`Region`]: offsets are relative to the partition start, every
//! access is bounds-checked (a corrupt pointer becomes an error naming the offset, never
//! a read of the neighbouring partition), and every write is recorded so that outputs can
//! later be made from deltas against the base.
//!
//! A region is backed either by a writable image file, or by an [`Overlay`]: the base
//! image read-only underneath, with every write kept in memory as 4 KiB pages. Building a
//! node on an overlay costs no copy of the base at all; its outputs (raw, compressed,
//! block map, digest) are then made from the base plus those pages.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};

/// Pages of an [`Overlay`]: the page size of every common filesystem and of bmaps.
pub const PAGE: u64 = 4096;

/// A base image, read-only, with writes kept in memory as whole pages.
#[derive(Debug)]
pub struct Overlay {
    base: File,
    pages: Mutex<BTreeMap<u64, Box<[u8]>>>,
}

impl Overlay {
    /// Takes the pages written so far, by page index, in order; the overlay reads as the
    /// bare base afterwards, so take them once the edits are done.
    pub fn take_pages(&self) -> BTreeMap<u64, Box<[u8]>> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Box<[u8]>>> {
        // Pages are replaced whole, so a panic elsewhere cannot leave one half-written.
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_at(&self, buf: &mut [u8], abs: u64) -> io::Result<()> {
        self.base.read_exact_at(buf, abs)?;
        let pages = self.lock();
        let (first, end) = (abs / PAGE, (abs + buf.len() as u64).div_ceil(PAGE));
        for (&i, page) in pages.range(first..end) {
            let (lo, hi) = overlap(i, abs, buf.len());
            buf[(lo - abs) as usize..(hi - abs) as usize]
                .copy_from_slice(&page[(lo - i * PAGE) as usize..(hi - i * PAGE) as usize]);
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], abs: u64) -> io::Result<()> {
        let mut pages = self.lock();
        let (first, end) = (abs / PAGE, (abs + buf.len() as u64).div_ceil(PAGE));
        for i in first..end {
            let page = match pages.entry(i) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
                    // Past the end of the base, a page reads as zeros.
                    let n = self.base.read_at(&mut fresh, i * PAGE)?;
                    fresh[n..].fill(0);
                    e.insert(fresh)
                }
            };
            let (lo, hi) = overlap(i, abs, buf.len());
            page[(lo - i * PAGE) as usize..(hi - i * PAGE) as usize]
                .copy_from_slice(&buf[(lo - abs) as usize..(hi - abs) as usize]);
        }
        Ok(())
    }
}

/// The image bytes `[lo, hi)` shared by page `i` and the access `[abs, abs + len)`.
fn overlap(i: u64, abs: u64, len: usize) -> (u64, u64) {
    (abs.max(i * PAGE), (abs + len as u64).min((i + 1) * PAGE))
}

/// What a region reads from and writes to.
#[derive(Debug, Clone)]
enum Backend {
    File(Arc<File>),
    Overlay(Arc<Overlay>),
}

impl Backend {
    fn read_at(&self, buf: &mut [u8], abs: u64) -> io::Result<()> {
        match self {
            Backend::File(f) => f.read_exact_at(buf, abs),
            Backend::Overlay(o) => o.read_at(buf, abs),
        }
    }

    fn write_at(&self, buf: &[u8], abs: u64) -> io::Result<()> {
        match self {
            Backend::File(f) => f.write_all_at(buf, abs),
            Backend::Overlay(o) => o.write_at(buf, abs),
        }
    }
}

/// A window `[start, start + len)` of an image file.
#[derive(Debug, Clone)]
pub struct Region {
    backend: Backend,
    path: PathBuf,
    start: u64,
    len: u64,
    /// Cursor for the `Read`/`Write`/`Seek` impls (used by the FAT layer).
    pos: u64,
    /// Image-file byte ranges written so far, sorted and merged. Shared by every clone
    /// and sub-window of the same opened file, so one image has one write log.
    written: Arc<Mutex<Vec<Range<u64>>>>,
}

impl Region {
    /// A window over an already opened image file.
    pub fn new(file: Arc<File>, path: impl AsRef<Path>, start: u64, len: u64) -> Self {
        Region {
            backend: Backend::File(file),
            path: path.as_ref().to_path_buf(),
            start,
            len,
            pos: 0,
            written: Arc::default(),
        }
    }

    /// The whole of a file, read-only unless opened otherwise by the caller.
    pub fn whole(path: impl AsRef<Path>, writable: bool) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let len = file.metadata().at(path)?.len();
        Ok(Region::new(Arc::new(file), path, 0, len))
    }

    /// The whole of `base`, opened read-only, with writes kept in the returned overlay.
    pub fn overlay(base: impl AsRef<Path>) -> Result<(Self, Arc<Overlay>)> {
        let path = base.as_ref();
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let overlay = Arc::new(Overlay {
            base: file,
            pages: Mutex::default(),
        });
        let region = Region {
            backend: Backend::Overlay(overlay.clone()),
            path: path.to_path_buf(),
            start: 0,
            len,
            pos: 0,
            written: Arc::default(),
        };
        Ok((region, overlay))
    }

    /// A sub-window of this one; offsets are relative to this region.
    pub fn sub(&self, offset: u64, len: u64) -> Result<Region> {
        self.check(offset, len)?;
        Ok(Region {
            start: self.start + offset,
            len,
            pos: 0,
            ..self.clone()
        })
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is zero bytes long.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of this window inside the image file.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Path of the image file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::corrupt(format!(
                "{}: access of {len} bytes at offset {offset} (image byte {}) runs past the end of a {}-byte region",
                self.path.display(),
                self.start.saturating_add(offset),
                self.len
            ))),
        }
    }

    /// The bounds check as an I/O error, for readers that speak `io`.
    #[cfg(feature = "ext4")]
    fn check_io(&self, offset: u64, len: usize) -> io::Result<()> {
        self.check(offset, len as u64)
            .map_err(|e| io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()))
    }

    /// Reads exactly `buf.len()` bytes at `offset` (relative to the region).
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len() as u64)?;
        self.backend
            .read_at(buf, self.start + offset)
            .at(&self.path)
    }

    /// Reads `len` bytes at `offset` into a new buffer.
    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Writes all of `buf` at `offset` (relative to the region) and records the range.
    pub fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len() as u64)?;
        let abs = self.start + offset;
        self.backend.write_at(buf, abs).at(&self.path)?;
        self.record(abs..abs + buf.len() as u64);
        Ok(())
    }

    /// Image-file byte ranges written through this region, its clones and its
    /// sub-windows, sorted and merged.
    pub fn written(&self) -> Vec<Range<u64>> {
        self.log().clone()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<Range<u64>>> {
        // A poisoned log only means another thread panicked mid-push; the ranges are
        // still a valid (over-)approximation, so keep using them.
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let mut log = self.log();
        let i = log.partition_point(|w| w.end < r.start);
        let mut merged = r;
        let mut j = i;
        while j < log.len() && log[j].start <= merged.end {
            merged.start = merged.start.min(log[j].start);
            merged.end = merged.end.max(log[j].end);
            j += 1;
        }
        log.splice(i..j, [merged]);
    }
}

impl Read for Region {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        self.backend.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Region {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.write_all_at(self.pos, &buf[..n])
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the partition",
            )),
        }
    }
}

/// A region holds a filesystem: pibake-ext4 reads and writes it in place.
#[cfg(feature = "ext4")]
impl pibake_ext4::Device for Region {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_io(offset, buf.len())?;
        self.backend.read_at(buf, self.start + offset)
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.check_io(offset, buf.len())?;
        let abs = self.start + offset;
        self.backend.write_at(buf, abs)?;
        self.record(abs..abs + buf.len() as u64);
        Ok(())
    }

    fn label(&self) -> String {
        format!("{} (ext4 at byte {})", self.path.display(), self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_recorded_merged_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        let whole = Region::whole(&p, true).unwrap();
        let mut r = whole.sub(1024, 1024).unwrap();
        r.write_all_at(0, &[1; 10]).unwrap();
        r.write_all_at(20, &[2; 10]).unwrap();
        r.write_all_at(5, &[3; 20]).unwrap();
        let merged: Vec<(u64, u64)> = r.written().iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(merged, [(1024, 1054)]);
        assert_eq!(whole.written(), r.written(), "clones share one log");
        assert!(r.write_all_at(1020, &[0; 8]).is_err());
        let data = std::fs::read(&p).unwrap();
        assert_eq!(&data[1024..1029], &[1; 5]);
        assert_eq!(&data[1029..1049], &[3; 20]);
        assert_eq!(data[1023], 0);
        assert_eq!(data[2048], 0);
    }

    #[test]
    fn an_overlay_reads_through_and_never_writes_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let base: Vec<u8> = (0..3 * PAGE as usize + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&p, &base).unwrap();
        let (whole, overlay) = Region::overlay(&p).unwrap();
        let mut r = whole.sub(10, whole.len() - 10).unwrap();
        r.write_all_at(PAGE - 20, &[7; 40]).unwrap();
        r.write_all_at(3 * PAGE - 10, &[9; 50]).unwrap();
        let mut expect = base.clone();
        expect[PAGE as usize - 10..PAGE as usize + 30].fill(7);
        expect[3 * PAGE as usize..3 * PAGE as usize + 50].fill(9);
        assert_eq!(whole.read_vec(0, base.len()).unwrap(), expect);
        let pages = overlay.take_pages();
        assert_eq!(pages.keys().copied().collect::<Vec<_>>(), [0, 1, 3]);
        assert_eq!(&pages[&3][..100], &expect[3 * PAGE as usize..]);
        assert!(
            pages[&3][100..].iter().all(|&b| b == 0),
            "past the end reads as zeros"
        );
        assert_eq!(std::fs::read(&p).unwrap(), base, "the base is untouched");
    }
}
