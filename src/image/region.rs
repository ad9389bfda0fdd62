//! A byte window of an image file, seen as a device of its own.
//!
//! Partitions live at offsets inside one image file. Every filesystem layer in pibake
//! (FAT, ext4) works on a [`Region`]: offsets are relative to the partition start, every
//! access is bounds-checked (a corrupt pointer becomes an error naming the offset, never
//! a read of the neighbouring partition), and every write is recorded so that outputs can
//! later be made from deltas against the base.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};

/// A window `[start, start + len)` of an image file.
#[derive(Debug, Clone)]
pub struct Region {
    file: Arc<File>,
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
            file,
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

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of this window inside the image file.
    pub fn start(&self) -> u64 {
        self.start
    }

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

    /// Reads exactly `buf.len()` bytes at `offset` (relative to the region).
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len() as u64)?;
        self.file
            .read_exact_at(buf, self.start + offset)
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
        self.file.write_all_at(buf, abs).at(&self.path)?;
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
        self.file
            .read_exact_at(&mut buf[..n], self.start + self.pos)?;
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
}
