//! The application's error type.
//!
//! Every refusal pibake makes must say *what* it found, *where* (a file, a line, a byte
//! offset, an inode) and, where possible, *what to do*. The variants separate the kinds
//! of trouble a user can meet, because they call for different reactions: fix your
//! input, your image is damaged, pibake does not (yet) handle this, or pibake has a bug.
//! The layers below keep their own typed errors ([`pibake_image::Error`],
//! [`pibake_ext4::Error`]); they are wrapped, not flattened into text, so callers can
//! still ask what happened (`NotFound` is not corruption).

use std::fmt;
use std::path::{Path, PathBuf};

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pibake, by the reaction it calls for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The user's input (a file, a flag, an image) is not what pibake needs.
    #[error("{what}{}", Hint(hint))]
    Invalid {
        /// What is wrong, and where.
        what: String,
        /// What to do about it, if pibake knows.
        hint: Option<String>,
    },
    /// Bad input found where its position is not known; the caller that knows where the
    /// value came from places it ([`Error::place`]).
    #[error("{what}{}", Hint(hint))]
    Unplaced {
        /// What is wrong, without the where.
        what: String,
        /// What to do about it, if pibake knows.
        hint: Option<String>,
    },
    /// On-disk data contradicts itself: a checksum, a length, a pointer out of range.
    #[error("corrupt {what}")]
    Corrupt {
        /// The damaged structure and how it contradicts itself.
        what: String,
    },
    /// Well-formed input that pibake deliberately refuses to touch.
    #[error("unsupported: {what}{}", Hint(hint))]
    Unsupported {
        /// What pibake refuses, and where.
        what: String,
        /// What to do instead, if there is an alternative.
        hint: Option<String>,
    },
    /// A download failed: the repository or mirror could not be reached, answered with
    /// an error status, or sent something other than what its index promised.
    #[error("fetching {url}{}: {message}{}", Mirrored(original), Hint(hint))]
    Fetch {
        /// The URL requested.
        url: String,
        /// The URL asked for, when a mirror rule in cluster.yaml rewrote it into `url`.
        original: Option<String>,
        /// What went wrong.
        message: String,
        /// What to do about it, if pibake knows.
        hint: Option<String>,
    },
    /// From the image layer: partitions, bases, outputs.
    #[error(transparent)]
    Image(#[from] pibake_image::Error),
    /// From a root filesystem; its hint, when it has one, on its own line.
    #[error("{source}{}", Hint(&source.hint().map(str::to_string)))]
    Fs {
        /// The filesystem layer's own error.
        #[from]
        source: pibake_ext4::Error,
    },
    /// The user asked the command to stop (Ctrl-C, SIGTERM).
    #[error(
        "interrupted: no half-written file was left under a final name (a node image already finished stays, complete); run the same command again to finish"
    )]
    Interrupted,
    /// A node's worker thread panicked: a bug in pibake, never bad input.
    #[error("internal error while building {node} (please report it): {message}")]
    WorkerLost {
        /// The node whose build was lost.
        node: String,
        /// The panic's message.
        message: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Bad user input, with its position already in the message.
    pub fn invalid(what: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            hint: None,
        }
    }

    /// Bad input whose position the caller adds with [`Error::place`].
    pub fn unplaced(what: impl Into<String>) -> Self {
        Error::Unplaced {
            what: what.into(),
            hint: None,
        }
    }

    /// Gives an [`Error::Unplaced`] its position (`at` makes the positioned error from the
    /// message), keeping its hint; any other error passes through unchanged.
    pub fn place(self, at: impl FnOnce(&str) -> Error) -> Error {
        match self {
            Error::Unplaced { what, hint } => {
                let e = at(&what);
                match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            }
            other => other,
        }
    }

    /// Places a refusal made without knowing where its value was written (a writer's
    /// own check, or the image's) at that value: an `Invalid`, `Unplaced` or
    /// `Unsupported` error's message goes through `at`, keeping its hint; any other
    /// error passes through unchanged.
    pub fn relocate(self, at: impl FnOnce(&str) -> Error) -> Error {
        match self {
            Error::Invalid { what, hint }
            | Error::Unplaced { what, hint }
            | Error::Unsupported { what, hint } => {
                let e = at(&what);
                match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            }
            other => other,
        }
    }

    /// On-disk data that contradicts itself.
    pub fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt { what: what.into() }
    }

    /// Well-formed input that pibake deliberately does not handle.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported {
            what: what.into(),
            hint: None,
        }
    }

    /// True for a write into a pipe whose reader has gone.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Attaches (or replaces) the "what to do" part of an `Invalid`, `Unplaced`,
    /// `Unsupported` or `Fetch` error.
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
            Error::Unplaced { what, .. } => Error::Unplaced {
                what,
                hint: Some(text.into()),
            },
            Error::Fetch {
                url,
                original,
                message,
                ..
            } => Error::Fetch {
                url,
                original,
                message,
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

/// Names the URL a mirror rule rewrote, after the one requested.
struct Mirrored<'a>(&'a Option<String>);

impl fmt::Display for Mirrored<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(o) => write!(f, " (mirror of {o})"),
            None => Ok(()),
        }
    }
}

/// Adds the path to an `io::Result`, the way every file operation in pibake reports errors.
pub trait IoContext<T> {
    /// Turns an I/O failure into [`Error::Io`] on `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
