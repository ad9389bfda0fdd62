//! Sparse writing: zero runs become holes, so multi-GB images with little data in them
//! take little disk space and little time to write.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Why a copy stopped: reading the input, or writing the output.
pub enum CopyError {
    /// Reading the input stream failed.
    Input(io::Error),
    /// Writing the output file failed; the error names the file.
    Output(Error),
}

/// Writes a stream to a file, leaving holes where whole 4 KiB blocks are zero.
pub struct SparseWriter<'a> {
    file: &'a File,
    path: &'a Path,
    /// Bytes of the stream seen so far.
    pos: u64,
}

/// The granularity of holes: the block size of every common Linux filesystem.
const HOLE: usize = 4096;

impl<'a> SparseWriter<'a> {
    /// A writer into `file` (named `path` in errors), from its first byte.
    pub fn new(file: &'a File, path: &'a Path) -> Self {
        SparseWriter { file, path, pos: 0 }
    }

    /// Bytes of the stream written so far, holes included.
    pub fn written(&self) -> u64 {
        self.pos
    }

    /// Reads `input` to its end in 4 MiB chunks, writing only non-zero blocks.
    pub fn copy_from(&mut self, input: &mut impl Read) -> std::result::Result<(), CopyError> {
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match input.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(CopyError::Input(e)),
                }
            }
            if filled == 0 {
                return Ok(());
            }
            self.write_chunk(&buf[..filled])
                .map_err(CopyError::Output)?;
        }
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        for run in nonzero_runs(chunk) {
            self.write_at(&chunk[run.clone()], run.start)?;
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset_in_chunk: usize) -> Result<()> {
        self.file
            .write_all_at(data, self.pos + offset_in_chunk as u64)
            .at(self.path)
    }

    /// Sets the final length, so a trailing zero run is a hole too.
    pub fn finish(self) -> Result<()> {
        self.file.set_len(self.pos).at(self.path)
    }
}

/// The data ranges of a (sparse) file, in 4 KiB-aligned pieces.
pub fn data_ranges(file: &File, len: u64) -> std::io::Result<Vec<Range<u64>>> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0i64;
    while (pos as u64) < len {
        // SAFETY: lseek on a file descriptor this function borrows; no memory is touched.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            return Err(e);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let start = (data as u64) & !4095;
        let end = (hole as u64).div_ceil(4096).saturating_mul(4096).min(len);
        out.push(start..end);
        pos = hole;
    }
    Ok(out)
}

/// Byte ranges of `chunk` made of whole 4 KiB blocks that are not all zeros, merged.
fn nonzero_runs(chunk: &[u8]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, block) in chunk.chunks(HOLE).enumerate() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        let (start, end) = (i * HOLE, i * HOLE + block.len());
        match out.last_mut() {
            Some(r) if r.end == start => r.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

/// `FICLONE`: share all of a file's blocks with another (btrfs, XFS).
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Whether files in `dir` can share `from`'s blocks (tried on a throw-away clone).
pub fn can_reflink(from: &Path, dir: &Path) -> Result<bool> {
    let src = File::open(from).at(from)?;
    let path = dir.join(format!(".pibake-reflink-probe-{}", std::process::id()));
    let probe = File::create(&path).at(&path)?;
    // SAFETY: FICLONE takes the source descriptor as its argument; both are open here.
    let shared = unsafe { libc::ioctl(probe.as_raw_fd(), FICLONE, src.as_raw_fd()) } == 0;
    std::fs::remove_file(&path).at(&path)?;
    Ok(shared)
}

/// A copy of `from` at `to` that costs almost nothing: a reflink clone where the
/// filesystem can share blocks, else a copy of the data ranges only (holes stay holes).
pub fn clone_or_copy(from: &Path, to: &Path) -> Result<()> {
    let src = File::open(from).at(from)?;
    let len = src.metadata().at(from)?.len();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(to)
        .at(to)?;
    // SAFETY: FICLONE takes the source descriptor as its argument; both are open here.
    if unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE, src.as_raw_fd()) } == 0 {
        return Ok(());
    }
    // Only the data ranges are read, and of those only blocks that are not all zeros are
    // written: the copy is as sparse as it can be, whatever the base's allocation.
    let mut buf = vec![0u8; 4 << 20];
    for r in data_ranges(&src, len).at(from)? {
        let mut off = r.start;
        while off < r.end {
            let n = ((r.end - off) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], off).at(from)?;
            for run in nonzero_runs(&buf[..n]) {
                dst.write_all_at(&buf[run.clone()], off + run.start as u64)
                    .at(to)?;
            }
            off += n as u64;
        }
    }
    dst.set_len(len).at(to)
}
