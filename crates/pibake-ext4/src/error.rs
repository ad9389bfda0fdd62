//! What can go wrong, as data.
//!
//! Callers branch on [`ErrorKind`], never on message text: a missing path
//! ([`ErrorKind::NotFound`]) is an answer, damaged metadata ([`ErrorKind::Corrupt`]) is a
//! reason to stop, and a feature this crate does not write ([`ErrorKind::Unsupported`])
//! is a reason to use another image. Every error names the filesystem it came from (the
//! [`Device::label`](crate::Device::label)), so a message read alone in a log still says
//! which image to look at.

use std::fmt;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Ino(pub u32);

impl fmt::Display for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Ino {
    /// The inode at `index` (from 0) of group `group`, with `ipg` inodes per group
    /// (inode numbers start at 1).
    pub(crate) fn at(group: u32, index: u32, ipg: u32) -> Ino {
        Ino(group * ipg + index + 1)
    }

    /// The group this inode lives in, with `ipg` inodes per group. Not for inode 0,
    /// which names no inode.
    pub(crate) fn group(self, ipg: u32) -> u32 {
        (self.0 - 1) / ipg
    }

    /// The inode's index inside its group's bitmap and inode table.
    pub(crate) fn index(self, ipg: u32) -> u32 {
        (self.0 - 1) % ipg
    }

    /// The number as it is stored on disk (and fed to checksums).
    pub(crate) fn to_le_bytes(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

/// A block number: the index of a filesystem block from the start of the filesystem.
/// Block counts and lengths stay plain `u64`; `Block + u64` is a block, `Block - Block`
/// a distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Block(pub u64);

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Block {
    /// A 48-bit block number as extents store it: low 32 bits, high 16 bits.
    pub(crate) fn from_lo_hi(lo: u32, hi: u16) -> Block {
        Block(u64::from(lo) | u64::from(hi) << 32)
    }

    /// The byte offset of the block, with `bs`-byte blocks.
    pub(crate) fn offset(self, bs: usize) -> u64 {
        self.0 * bs as u64
    }

    /// The low 32 bits, for the `lo` field of a split block number.
    pub(crate) fn lo(self) -> u32 {
        crate::le::lo32(self.0)
    }

    /// Bits 32 to 47, for the 16-bit `hi` field of an extent or extent index: extent
    /// trees address 48 bits of blocks.
    pub(crate) fn hi16(self) -> u16 {
        crate::le::lo16(crate::le::hi32(self.0))
    }

    /// The blocks `self..self + len`.
    pub(crate) fn run(self, len: u64) -> impl Iterator<Item = Block> {
        (self.0..self.0 + len).map(Block)
    }

    /// The number as it is fed to checksums.
    pub(crate) fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

impl std::ops::Add<u64> for Block {
    type Output = Block;
    fn add(self, n: u64) -> Block {
        Block(self.0 + n)
    }
}

impl std::ops::AddAssign<u64> for Block {
    fn add_assign(&mut self, n: u64) {
        self.0 += n;
    }
}

impl std::ops::Sub for Block {
    type Output = u64;
    /// How many blocks `other` lies before `self`.
    fn sub(self, other: Block) -> u64 {
        self.0 - other.0
    }
}

/// The on-disk structure a [`ErrorKind::Corrupt`] error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The superblock.
    Superblock,
    /// The filesystem's size against its partition, or a block number out of range.
    Geometry,
    /// A block group descriptor (its group number).
    GroupDescriptor(u32),
    /// A block or inode bitmap (its group number).
    Bitmap(u32),
    /// An inode record.
    Inode(Ino),
    /// An inode's extent tree.
    Extents(Ino),
    /// A directory's blocks or its hash index.
    Directory(Ino),
}

/// The kind of an [`Error`]: what the caller can act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing the device failed.
    Io(std::io::Error),
    /// The device holds no ext4 superblock.
    NotExt4 {
        /// The 16 bits found where the magic number 0xef53 belongs.
        magic: u16,
    },
    /// Nothing exists at the path.
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The path (or one of its parents) is not a directory.
    NotADirectory {
        /// The path as given.
        path: String,
    },
    /// The path is not a regular file.
    NotAFile {
        /// The path as given.
        path: String,
    },
    /// Something of another kind is in the way of a file, directory or symlink to create,
    /// or anything at all is where a hard link's new name should go.
    Exists {
        /// The path as given.
        path: String,
        /// What the caller wanted there ("regular file", "directory", "symlink", "free
        /// name for a hard link").
        wanted: &'static str,
    },
    /// A directory to remove still has entries.
    NotEmpty {
        /// The path as given.
        path: String,
    },
    /// The path or name cannot be used as given.
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why not.
        reason: &'static str,
    },
    /// The filesystem was opened with [`Ext4::open`](crate::Ext4::open), not for writing.
    ReadOnly,
    /// An earlier edit of this session failed part-way; nothing will be committed.
    Poisoned,
    /// Not enough free blocks or inodes for the edit.
    NoSpace {
        /// What was needed and what was free.
        detail: String,
    },
    /// On-disk data contradicts itself.
    Corrupt {
        /// Where the damage is.
        structure: Structure,
        /// What was wrong.
        detail: String,
    },
    /// Well-formed data this crate deliberately does not read or write.
    Unsupported {
        /// The feature or layout.
        feature: String,
        /// What a user can do about it, when there is something.
        hint: Option<&'static str>,
    },
    /// A new filesystem's parameters, or a size to grow one to, cannot work.
    InvalidGeometry(String),
    /// The reader a file's content came from ([`Ext4::write_file_from`](crate::Ext4::write_file_from))
    /// failed, or held fewer or more bytes than the length promised. A file of the wrong
    /// length is never written: a truncated archive member must not become a short file.
    Content {
        /// The path being written.
        path: String,
        /// What the reader did: its error, or how many bytes it held.
        detail: String,
        /// The reader's own error, when it returned one.
        source: Option<std::io::Error>,
    },
}

/// An error from this crate: its [`kind`](Error::kind) and the filesystem it is about.
#[derive(Debug)]
pub struct Error {
    fs: String,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(fs: impl Into<String>, kind: ErrorKind) -> Error {
        Error {
            fs: fs.into(),
            kind,
        }
    }

    pub(crate) fn corrupt(fs: &str, structure: Structure, detail: impl Into<String>) -> Error {
        Error::new(
            fs,
            ErrorKind::Corrupt {
                structure,
                detail: detail.into(),
            },
        )
    }

    pub(crate) fn unsupported(fs: &str, feature: impl Into<String>) -> Error {
        Error::new(
            fs,
            ErrorKind::Unsupported {
                feature: feature.into(),
                hint: None,
            },
        )
    }

    pub(crate) fn with_hint(mut self, text: &'static str) -> Error {
        if let ErrorKind::Unsupported { hint, .. } = &mut self.kind {
            *hint = Some(text);
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The filesystem's label, as its device gave it.
    pub fn filesystem(&self) -> &str {
        &self.fs
    }

    /// What a user can do about it, when the error knows.
    pub fn hint(&self) -> Option<&'static str> {
        match &self.kind {
            ErrorKind::Unsupported { hint, .. } => *hint,
            ErrorKind::NoSpace { .. } => {
                Some("use a larger image (or grow the root partition) or write less")
            }
            _ => None,
        }
    }

    /// True when the path simply does not exist, as opposed to any other failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, ErrorKind::NotFound { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fs = &self.fs;
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{fs}: {e}"),
            ErrorKind::NotExt4 { magic } => write!(
                f,
                "{fs}: no ext4 superblock (magic 0x{magic:04x} at byte 1080, expected 0xef53)"
            ),
            ErrorKind::NotFound { path } => write!(f, "{fs}: {path}: no such file or directory"),
            ErrorKind::NotADirectory { path } => write!(f, "{fs}: {path}: not a directory"),
            ErrorKind::NotAFile { path } => write!(f, "{fs}: {path}: not a regular file"),
            ErrorKind::Exists { path, wanted } => {
                write!(f, "{fs}: {path}: exists and is not a {wanted}")
            }
            ErrorKind::NotEmpty { path } => write!(f, "{fs}: {path}: directory not empty"),
            ErrorKind::InvalidPath { path, reason } => write!(f, "{fs}: {path}: {reason}"),
            ErrorKind::ReadOnly => write!(f, "{fs}: opened read-only"),
            ErrorKind::Poisoned => write!(
                f,
                "{fs}: an earlier edit failed part-way, so none of this session's edits will be written"
            ),
            ErrorKind::NoSpace { detail } => write!(f, "{fs}: the filesystem is full ({detail})"),
            ErrorKind::Corrupt { detail, .. } => write!(f, "corrupt {fs}: {detail}"),
            ErrorKind::Unsupported { feature, .. } => write!(f, "unsupported: {fs}: {feature}"),
            ErrorKind::InvalidGeometry(what) => write!(f, "{fs}: {what}"),
            ErrorKind::Content { path, detail, .. } => {
                write!(f, "{fs}: {path}: content {detail}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Content {
                source: Some(e), ..
            } => Some(e),
            _ => None,
        }
    }
}
