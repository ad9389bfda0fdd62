//! Where the filesystem's bytes live.
//!
//! The crate reads and writes through [`Device`], positioned reads and writes over a
//! fixed length, so a filesystem can sit in a partition of an image file
//! ([`FileRange`]), in memory (`Vec<u8>`), or behind any layer a caller brings (an
//! overlay that keeps writes in memory, say). Nothing here seeks a shared cursor, so one
//! file can back several devices at once.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Storage a filesystem lives on: `len` bytes, read and written at offsets.
pub trait Device {
    /// The device's size in bytes.
    fn len(&self) -> u64;

    /// True for a zero-length device.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`; a read past the end is an error.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `buf` at `offset`; a write past the end is an error.
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// How errors name the filesystem on this device.
    fn label(&self) -> String {
        "ext4".to_string()
    }
}

fn past_end(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{len} bytes at offset {offset} run past the end of a {size}-byte device"),
    )
}

fn check(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(past_end(offset, len, size)),
    }
}

/// A window `[start, start + len)` of an open file: a partition inside an image file.
#[derive(Debug)]
pub struct FileRange {
    file: File,
    start: u64,
    len: u64,
    label: String,
}

impl FileRange {
    /// The window of `file` that starts at byte `start` and holds `len` bytes; `label`
    /// names it in errors (for example the image's path).
    pub fn new(file: File, start: u64, len: u64, label: impl Into<String>) -> FileRange {
        FileRange {
            file,
            start,
            len,
            label: label.into(),
        }
    }

    /// The whole of `file`.
    pub fn whole(file: File, label: impl Into<String>) -> io::Result<FileRange> {
        let len = file.metadata()?.len();
        Ok(FileRange::new(file, 0, len, label))
    }
}

impl Device for FileRange {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, self.start + offset)
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check(offset, buf.len(), self.len)?;
        self.file.write_all_at(buf, self.start + offset)
    }

    fn label(&self) -> String {
        format!("{} (ext4 at byte {})", self.label, self.start)
    }
}

/// Where `len` bytes at `offset` start inside a vector of `size` bytes.
fn vec_offset(offset: u64, len: usize, size: u64) -> io::Result<usize> {
    check(offset, len, size)?;
    // Inside the vector, so it fits a usize.
    usize::try_from(offset).map_err(|_| past_end(offset, len, size))
}

/// A filesystem in memory, for tests and for building one before it is placed.
impl Device for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let at = vec_offset(offset, buf.len(), Device::len(self))?;
        buf.copy_from_slice(&self[at..at + buf.len()]);
        Ok(())
    }

    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let at = vec_offset(offset, buf.len(), Device::len(self))?;
        self[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }
}
