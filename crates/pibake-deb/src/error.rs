//! What can go wrong reading a package, as data.
//!
//! Callers branch on [`ErrorKind`], never on message text: a damaged download
//! ([`ErrorKind::Malformed`]) is a reason to fetch again, a package that tries to write
//! outside its root ([`ErrorKind::Unsafe`]) is a reason to stop, and a package this crate
//! cannot reproduce faithfully ([`ErrorKind::Unsupported`], a device node, say) is a reason
//! to leave it to dpkg on first boot. Every message starts with the package's label, so a
//! line read alone in a log still says which package to look at.

/// Why a package was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes are not a well-formed .deb: bad magic, truncation, a damaged compressed
    /// stream, members out of order, a tar header that does not parse.
    Malformed,
    /// The package is well-formed but would write outside its root or confuse one path
    /// with another: `..` components, hard links to nowhere, unusable names.
    Unsafe,
    /// The package is valid for dpkg but uses something pibake does not write: device
    /// nodes, FIFOs, bzip2 or lzma compression, a newer format version.
    Unsupported,
}

/// A refusal: which kind, and a message that starts with the package label and names the
/// member (with its byte offset in the .deb) or the entry path at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{label}: {message}")]
pub struct DebError {
    kind: ErrorKind,
    label: String,
    message: String,
}

impl DebError {
    pub(crate) fn new(kind: ErrorKind, label: &str, message: impl Into<String>) -> DebError {
        DebError {
            kind,
            label: label.to_owned(),
            message: message.into(),
        }
    }

    /// Why the package was refused.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The label the package was opened with (its file name, typically).
    pub fn label(&self) -> &str {
        &self.label
    }
}
