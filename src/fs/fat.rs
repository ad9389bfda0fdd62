//! The FAT boot partition: read and write files with long names.
//!
//! Reading and writing files goes through the `fatfs` crate, which handles FAT32 and VFAT
//! long names (most `overlays/*.dtbo` names are not 8.3). Two things it gets wrong for us
//! are handled here:
//!
//! * `fatfs` 0.3.6 `create_dir` writes long-name slots in front of the `.` and `..`
//!   entries of the new directory, which `fsck.fat` rejects ("Expected a valid '.' entry
//!   in this slot"). After creating a directory, pibake rewrites its first cluster so that
//!   `.` and `..` are the first two slots, as every FAT driver expects ([`raw`]).
//! * Timestamps come from a fixed clock (`SOURCE_DATE_EPOCH`, else the DOS epoch), never
//!   from the host clock, so the same inputs give the same bytes.

mod raw;

use std::io::{Read, Write};

use fatfs::{Date, DateTime, FileSystem, FsOptions, Time, TimeProvider};

use crate::error::{Error, Result};
use pibake_image::region::Region;

/// An open FAT filesystem inside an image.
pub struct Fat {
    fs: FileSystem<Region>,
    /// A second handle on the same bytes for the raw fix-ups `fatfs` cannot do.
    raw: Region,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatEntry {
    /// The entry's long name (its 8.3 name when it has none).
    pub name: String,
    /// Whether the entry is a directory.
    pub is_dir: bool,
    /// Size in bytes, as the directory entry records it (0 for a directory).
    pub size: u64,
}

impl Fat {
    /// Opens the FAT filesystem in `region` (a whole partition).
    pub fn open(region: Region) -> Result<Fat> {
        let raw = region.clone();
        let what = format!(
            "{}: FAT partition at byte {}",
            region.path().display(),
            region.start()
        );
        let options = FsOptions::new()
            .update_accessed_date(false)
            .time_provider(&FIXED_CLOCK);
        let fs =
            FileSystem::new(region, options).map_err(|e| Error::corrupt(format!("{what}: {e}")))?;
        Ok(Fat { fs, raw })
    }

    fn fail(&self, path: &str, e: std::io::Error) -> Error {
        let name = format!("{}: boot partition: {path}", self.raw.path().display());
        // fatfs reports damaged structures as invalid or truncated data; everything else
        // (a missing name, a directory not empty, a full partition) is about the request.
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::invalid(format!("{name}: no such file or directory"))
            }
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                Error::corrupt(format!("{name}: {e}"))
            }
            _ => Error::invalid(format!("{name}: {e}")),
        }
    }

    /// Reads a whole file, e.g. `config.txt` or `overlays/dwc2.dtbo`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let rel = relative(path)?;
        let mut file = self
            .fs
            .root_dir()
            .open_file(rel)
            .map_err(|e| self.fail(path, e))?;
        // No file is larger than its partition; a size field that says otherwise, over a
        // cluster chain that loops, would read the same clusters up to 4 GiB into memory.
        let limit = self.raw.len();
        let mut out = Vec::new();
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.fail(path, e))?;
        if out.len() as u64 > limit {
            return Err(Error::corrupt(format!(
                "{path}: larger than its partition ({limit} bytes): the FAT's cluster chain for it loops"
            ))
            .with_hint("the boot partition is damaged: check it with `fsck.fat -n`, or use another base image"));
        }
        Ok(out)
    }

    /// Whether a file or directory exists at `path`.
    pub fn exists(&self, path: &str) -> Result<bool> {
        let rel = relative(path)?;
        if rel.is_empty() {
            return Ok(true);
        }
        let (parent, name) = split(rel);
        Ok(self
            .list(parent, path)?
            .iter()
            .any(|e| e.name.eq_ignore_ascii_case(name)))
    }

    /// Lists a directory, without `.` and `..`.
    pub fn read_dir(&self, path: &str) -> Result<Vec<FatEntry>> {
        self.list(relative(path)?, path)
    }

    fn list(&self, rel: &str, path: &str) -> Result<Vec<FatEntry>> {
        let root = self.fs.root_dir();
        let dir = if rel.is_empty() {
            root
        } else {
            root.open_dir(rel).map_err(|e| self.fail(path, e))?
        };
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| self.fail(path, e))?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            out.push(FatEntry {
                name,
                is_dir: entry.is_dir(),
                size: entry.len(),
            });
        }
        Ok(out)
    }

    /// Creates or replaces a file; its directory must exist (see [`Fat::mkdir_p`]).
    pub fn write(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let rel = relative(path)?;
        let mut file = self
            .fs
            .root_dir()
            .create_file(rel)
            .map_err(|e| self.fail(path, e))?;
        file.truncate().map_err(|e| self.fail(path, e))?;
        file.write_all(data).map_err(|e| self.fail(path, e))?;
        file.flush().map_err(|e| self.fail(path, e))
    }

    /// Creates a directory and its missing parents.
    pub fn mkdir_p(&mut self, path: &str) -> Result<()> {
        let rel = relative(path)?;
        let mut done = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            let parent = done.clone();
            if !done.is_empty() {
                done.push('/');
            }
            done.push_str(part);
            let exists = self
                .list(&parent, path)?
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(part));
            match exists {
                Some(e) if e.is_dir => continue,
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "boot partition: cannot create directory {path}: /{done} is a file"
                    )));
                }
                None => {
                    self.fs
                        .root_dir()
                        .create_dir(&done)
                        .map_err(|e| self.fail(path, e))?;
                    raw::fix_new_dir(&mut self.raw, &done)?;
                }
            }
        }
        Ok(())
    }

    /// Removes a file or an empty directory.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let rel = relative(path)?;
        self.fs
            .root_dir()
            .remove(rel)
            .map_err(|e| self.fail(path, e))
    }

    /// Flushes and closes the filesystem (clears the FAT "dirty" flag `fatfs` sets).
    pub fn close(self) -> Result<()> {
        let name = self.raw.path().display().to_string();
        self.fs
            .unmount()
            .map_err(|e| Error::io(format!("{name} (boot partition)"), e))
    }
}

/// `/overlays/x.dtbo` -> `overlays/x.dtbo`; refuses `..` so paths stay inside the partition.
fn relative(path: &str) -> Result<&str> {
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    if rel.split('/').any(|p| p == ".." || p == ".") {
        return Err(Error::invalid(format!(
            "boot partition path {path:?}: `.` and `..` are not allowed"
        )));
    }
    Ok(rel)
}

fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// A clock that always says the same time, for reproducible images.
#[derive(Debug)]
struct FixedClock;

static FIXED_CLOCK: FixedClock = FixedClock;

impl FixedClock {
    fn now() -> DateTime {
        static NOW: std::sync::OnceLock<DateTime> = std::sync::OnceLock::new();
        *NOW.get_or_init(|| {
            let epoch = crate::values::source_date_epoch().unwrap_or(0);
            dos_time(epoch)
        })
    }
}

impl TimeProvider for FixedClock {
    fn get_current_date(&self) -> Date {
        Self::now().date
    }

    fn get_current_date_time(&self) -> DateTime {
        Self::now()
    }
}

/// Unix seconds (UTC) to a DOS date-time, clamped to the range FAT can store.
fn dos_time(unix: i64) -> DateTime {
    const DOS_MIN: i64 = 315_532_800; // 1980-01-01
    const DOS_MAX: i64 = 4_354_819_198; // 2107-12-31 23:59:58
    let t = unix.clamp(DOS_MIN, DOS_MAX);
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (year, month, day) = crate::values::civil_from_days(days);
    DateTime {
        date: Date {
            year: year as u16,
            month: month as u16,
            day: day as u16,
        },
        time: Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_time_converts_and_clamps() {
        let t = dos_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        let t = dos_time(0);
        assert_eq!((t.date.year, t.date.month, t.date.day), (1980, 1, 1));
    }

    #[test]
    fn paths_stay_inside() {
        assert_eq!(
            relative("/overlays/dwc2.dtbo").unwrap(),
            "overlays/dwc2.dtbo"
        );
        assert!(relative("/../etc").is_err());
    }
}
