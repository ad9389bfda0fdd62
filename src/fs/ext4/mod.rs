//! The ext4 root filesystem.
//!
//! Reading goes through the `ext4-view` crate for now (issue 2 allows a read-only crate
//! until pibake's own ext4 code exists); [`hash`] is the first piece of that own code.
//! [`Ext4`] is the narrow interface the rest of pibake uses, so the reader behind it can
//! be replaced without touching callers.

pub mod hash;

use crate::error::{Error, Result};
use crate::image::region::Region;

/// A read-only view of an ext4 filesystem inside an image region.
pub struct Ext4 {
    fs: ext4_view::Ext4,
    origin: String,
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
}

/// Lets `ext4-view` read through a bounds-checked [`Region`].
struct RegionReader(Region);

impl ext4_view::Ext4Read for RegionReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0
            .read_exact_at(start_byte, dst)
            .map_err(|e| e.to_string().into())
    }
}

impl Ext4 {
    /// Opens the filesystem; a bad superblock is an error naming the image.
    pub fn open(region: Region) -> Result<Ext4> {
        let origin = format!(
            "{} (ext4 at byte {})",
            region.path().display(),
            region.start()
        );
        let fs = ext4_view::Ext4::load(Box::new(RegionReader(region)))
            .map_err(|e| Error::corrupt(format!("{origin}: {e}")))?;
        Ok(Ext4 { fs, origin })
    }

    fn fail(&self, path: &str, e: ext4_view::Ext4Error) -> Error {
        Error::corrupt(format!("{}: {path}: {e}", self.origin))
    }

    /// The whole content of a file (symlinks followed inside the filesystem).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.fs.read(path).map_err(|e| self.fail(path, e))
    }

    pub fn exists(&self, path: &str) -> Result<bool> {
        self.fs.exists(path).map_err(|e| self.fail(path, e))
    }

    /// The names in a directory, without `.` and `..`.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in self.fs.read_dir(path).map_err(|e| self.fail(path, e))? {
            let entry = entry.map_err(|e| self.fail(path, e))?;
            let name = entry.file_name().display().to_string();
            if name != "." && name != ".." {
                out.push(DirEntry { name });
            }
        }
        Ok(out)
    }
}
