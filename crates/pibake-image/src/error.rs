//! The image layer's errors.
//!
//! Every refusal pibake makes must say *what* it found, *where* (a file, a line, a byte
//! offset, an inode) and, where possible, *what to do*. The variants separate the three
//! kinds of trouble a user can meet, because they call for different reactions: fix your
//! input, your image is damaged, or pibake does not (yet) handle this.

use std::fmt;
use std::path::{Path, PathBuf};

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the image layer, by what the user should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the call was on.
        path: PathBuf,
        /// The error the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The user's input (a file, a flag, an image) is not what pibake needs.
    #[error("{what}{}", Hint(hint))]
    Invalid {
        /// What is wrong, naming the input.
        what: String,
        /// What to do about it, shown on its own line.
        hint: Option<String>,
    },
    /// On-disk data contradicts itself: a checksum, a length, a pointer out of range.
    #[error("corrupt {what}")]
    Corrupt {
        /// What contradicts itself, and where.
        what: String,
    },
    /// Well-formed input that pibake deliberately refuses to touch.
    #[error("unsupported: {what}{}", Hint(hint))]
    Unsupported {
        /// What pibake refuses to handle.
        what: String,
        /// What to do instead, shown on its own line.
        hint: Option<String>,
    },
    /// A compressor failed on data it was given (not the user's input).
    #[error("{format} compression: {message}")]
    Codec {
        /// The format's file suffix (`zst` or `xz`).
        format: &'static str,
        /// The compressor's own message.
        message: String,
    },
    /// The root filesystem refused or failed an edit (growing it, say).
    #[cfg(feature = "ext4")]
    #[error(transparent)]
    Filesystem(#[from] pibake_ext4::Error),
    /// A worker thread panicked; its item was not done.
    #[error("internal error, a worker was lost: {0}")]
    WorkerLost(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An [`Error::Invalid`] without a hint (add one with [`Error::with_hint`]).
    pub fn invalid(what: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            hint: None,
        }
    }

    /// An [`Error::Corrupt`] saying what contradicts itself.
    pub fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt { what: what.into() }
    }

    /// An [`Error::Unsupported`] without a hint (add one with [`Error::with_hint`]).
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported {
            what: what.into(),
            hint: None,
        }
    }

    /// Attaches (or replaces) the "what to do" part of an `Invalid` or `Unsupported` error.
    pub fn with_hint(self, text: impl Into<String>) -> Self {
        match self {
            Error::Invalid { what, .. } => Error::Invalid {
                what,
                hint: Some(text.into()),
            },
            Error::Unsupported { what, .. } => Error::Unsupported {
                what,
                hint: Some(text.into()),
            },
            other => other,
        }
    }
}

/// Renders an optional hint on its own line, so the main message stays one line.
struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, "\n  hint: {h}"),
            None => Ok(()),
        }
    }
}

/// Adds the path to an `io::Result`, the way every file operation in pibake reports errors.
pub trait IoContext<T> {
    /// Turns the I/O error, if any, into an [`Error::Io`] naming `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
