//! Writing images to SD cards: only the data, verified, logged.
//!
//! The image's data ranges come from the file itself (`SEEK_DATA`/`SEEK_HOLE`: pibake's
//! images are sparse, their holes are all-zero blocks). Data ranges are written in large
//! writes; the gaps between them must still read as zeros on the card (a zero block may be
//! part of a file), so on a block device they are zeroed by the kernel (`BLKZEROOUT`,
//! which uses the device's write-zeroes or discard support when it has one) and in a file
//! they become holes. Then the target is flushed, its page cache dropped, and the data
//! ranges read back and compared: a mismatch is an error naming the byte offset.

pub mod device;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use pibake_image::digest::Sha256;
use serde::Serialize;
use sha2::Digest;

use crate::error::{Error, IoContext, Result};
pub use device::Target;
use pibake_image::sparse::data_ranges;

const CHUNK: usize = 4 << 20;
/// `_IO(0x12, 127)`: zero a byte range of a block device.
const BLKZEROOUT: libc::c_ulong = 0x127f;

/// What one flash did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The image's path, as given.
    pub image: String,
    /// The device or file written to.
    pub target: Target,
    /// Size of the image, holes included.
    pub image_bytes: u64,
    /// Bytes of image data written (the rest is zeros the target makes itself).
    pub written: u64,
    /// SHA-256 of the whole image (holes hashed as zeros).
    pub image_sha256: Sha256,
    /// Whether the data was read back and compared.
    pub verified: bool,
    /// Wall-clock time the flash took, verification included.
    pub seconds: f64,
}

/// The gaps between data ranges, up to `len`.
fn gaps(ranges: &[Range<u64>], len: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in ranges {
        if r.start > at {
            out.push(at..r.start);
        }
        at = r.end;
    }
    if at < len {
        out.push(at..len);
    }
    out
}

/// Writes `image` to `target`, then (when `verify`) reads the data back and compares.
/// The image must be a regular file, and not the target itself: both are checked
/// before anything is opened.
pub fn flash(
    image: &Path,
    target: &Target,
    verify: bool,
    bar: &indicatif::ProgressBar,
) -> Result<Report> {
    let started = Instant::now();
    crate::values::input_file(image, false)?;
    device::refuse_same(image, &target.path)?;
    let src = File::open(image).at(image)?;
    let len = src.metadata().at(image)?.len();
    let ranges = data_ranges(&src, len).at(image)?;
    let dst_path = &target.path;
    let dst = if target.block {
        OpenOptions::new()
            .write(true)
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(dst_path)
            .at(dst_path)?
    } else {
        let f = OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(false)
            .open(dst_path)
            .at(dst_path)?;
        f.set_len(0).and_then(|_| f.set_len(len)).at(dst_path)?;
        f
    };
    let data: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    bar.set_length(data);

    let mut hasher = sha2::Sha256::new();
    let zeros = vec![0u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    for r in &ranges {
        hash_zeros(&mut hasher, &zeros, r.start - at);
        let mut off = r.start;
        while off < r.end {
            let n = ((r.end - off) as usize).min(CHUNK);
            src.read_exact_at(&mut buf[..n], off).at(image)?;
            dst.write_all_at(&buf[..n], off).at(dst_path)?;
            hasher.update(&buf[..n]);
            bar.inc(n as u64);
            off += n as u64;
        }
        at = r.end;
    }
    hash_zeros(&mut hasher, &zeros, len - at);
    if target.block {
        for g in gaps(&ranges, len) {
            zero_out(&dst, g).map_err(|e| Error::io(dst_path, e))?;
        }
    }
    dst.sync_all().at(dst_path)?;
    drop(dst);
    if verify {
        bar.set_message("verifying");
        bar.set_position(0);
        compare(image, &src, dst_path, &ranges, bar)?;
    }
    Ok(Report {
        image: image.display().to_string(),
        target: target.clone(),
        image_bytes: len,
        written: data,
        image_sha256: Sha256::from_hasher(hasher),
        verified: verify,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn hash_zeros(h: &mut sha2::Sha256, zeros: &[u8], mut n: u64) {
    while n > 0 {
        let k = (n as usize).min(zeros.len());
        h.update(&zeros[..k]);
        n -= k as u64;
    }
}

fn zero_out(dev: &File, r: Range<u64>) -> std::io::Result<()> {
    let range: [u64; 2] = [r.start, r.end - r.start];
    // SAFETY: BLKZEROOUT reads two u64s from the pointer, which points at `range`.
    let rc = unsafe { libc::ioctl(dev.as_raw_fd(), BLKZEROOUT, range.as_ptr()) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads the data ranges back from `target`, past its page cache, and compares them.
fn compare(
    image: &Path,
    src: &File,
    target: &Path,
    ranges: &[Range<u64>],
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let dst = File::open(target).at(target)?;
    // SAFETY: advice on a descriptor owned here; drops cached pages so reads hit the device.
    unsafe { libc::posix_fadvise(dst.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut a = vec![0u8; CHUNK];
    let mut b = vec![0u8; CHUNK];
    for r in ranges {
        let mut off = r.start;
        while off < r.end {
            let n = ((r.end - off) as usize).min(CHUNK);
            src.read_exact_at(&mut a[..n], off).at(image)?;
            dst.read_exact_at(&mut b[..n], off)
                .map_err(|e| Error::io(target, e))?;
            if a[..n] != b[..n] {
                let i = a[..n]
                    .iter()
                    .zip(&b[..n])
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                return Err(Error::corrupt(format!(
                    "{}: byte {} differs from {} (read 0x{:02x}, expected 0x{:02x})",
                    target.display(),
                    off + i as u64,
                    image.display(),
                    b[i],
                    a[i]
                )));
            }
            bar.inc(n as u64);
            off += n as u64;
        }
    }
    Ok(())
}

/// Compares a target with an image (`pibake verify`): byte for byte over the image's
/// whole length, holes read as the zeros they stand for, so a card with garbage where
/// the image has a hole does not pass; with `data_only`, over the image's data ranges
/// alone (faster, for a card whose gaps were zeroed when it was flashed).
pub fn verify(image: &Path, target: &Path, data_only: bool) -> Result<u64> {
    crate::values::input_file(image, false)?;
    crate::values::input_file(target, true)?;
    let src = File::open(image).at(image)?;
    let len = src.metadata().at(image)?.len();
    let ranges = if data_only {
        data_ranges(&src, len).at(image)?
    } else {
        std::iter::once(0..len).collect()
    };
    compare(
        image,
        &src,
        target,
        &ranges,
        &indicatif::ProgressBar::hidden(),
    )?;
    Ok(ranges.iter().map(|r| r.end - r.start).sum())
}

/// Appends one line of JSON per flash to the log, so every card traces to its node.
pub fn log(path: &Path, node: Option<&str>, r: &Report) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let line = serde_json::json!({
        "time": now, "node": node, "image": r.image, "image_sha256": r.image_sha256,
        "device": r.target.path, "model": r.target.model, "serial": r.target.serial,
        "bytes_written": r.written, "verified": r.verified,
    });
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at(path)?;
    writeln!(f, "{line}").at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_fill_between_ranges() {
        assert_eq!(
            gaps(&[4096..8192, 16384..20480], 32768),
            vec![0..4096, 8192..16384, 20480..32768]
        );
        assert_eq!(gaps(&[], 10), vec![0..10]);
    }
}
