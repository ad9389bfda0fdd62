//! Reading one member as a tar archive: opening it through its decompressor, reading
//! entry bodies to their exact declared size, and checking the stream ends cleanly.
//!
//! The `tar` crate parses headers (GNU long names, PAX `path`/`linkpath`/`size`), but an
//! entry body that ends early reads as a short file there. A package cut short would then
//! unpack a truncated binary without complaint, so bodies go through [`Exact`], which
//! turns an early end into an error.

use std::io::{self, Read};

use tar::{Archive, EntryType};

use crate::decompress::Decoder;
use crate::error::{DebError, ErrorKind};
use crate::layout::Scope;

/// Opens the member's tar archive, decompressing as its name says.
pub(crate) fn open<'a>(scope: &Scope<'_, 'a>) -> Result<Archive<Decoder<'a>>, DebError> {
    let member = scope.member;
    Decoder::new(member.compression, member.bytes)
        .map(Archive::new)
        .map_err(|e| {
            scope.error(
                ErrorKind::Malformed,
                format!("cannot start decompressing: {e}"),
            )
        })
}

/// Checks that nothing but padding follows the end-of-archive block.
pub(crate) fn close(archive: Archive<Decoder<'_>>, scope: &Scope<'_, '_>) -> Result<(), DebError> {
    archive
        .into_inner()
        .finish()
        .map_err(|detail| scope.error(ErrorKind::Malformed, detail))
}

/// A tar header that did not parse, placed after the last entry that did.
pub(crate) fn header_error(
    scope: &Scope<'_, '_>,
    last: Option<&str>,
    error: &io::Error,
) -> DebError {
    match last {
        Some(path) => scope.error(ErrorKind::Malformed, format!("after `{path}`: {error}")),
        None => scope.error(ErrorKind::Malformed, format!("at the first entry: {error}")),
    }
}

/// What a tar entry type is, in words, for refusals.
pub(crate) fn type_name(kind: EntryType) -> String {
    match kind {
        EntryType::Regular => "regular file".into(),
        EntryType::Link => "hard link".into(),
        EntryType::Symlink => "symlink".into(),
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Directory => "directory".into(),
        EntryType::Fifo => "FIFO".into(),
        EntryType::Continuous => "contiguous file".into(),
        EntryType::GNUSparse => "GNU sparse file".into(),
        EntryType::XGlobalHeader => "PAX global header".into(),
        other => format!(
            "tar entry of unknown type `{}`",
            other.as_byte().escape_ascii()
        ),
    }
}

/// An entry body of exactly `left` bytes. An early end or a decompression error is
/// returned to the reader as an `io::Error` wrapping the [`DebError`] (so a caller that
/// maps it keeps the label), and remembered, so [`Exact::finish`] reports it even when
/// the reader swallowed it.
pub(crate) struct Exact<'s, R> {
    inner: R,
    left: u64,
    fault: Option<DebError>,
    scope: &'s Scope<'s, 's>,
    what: &'s str,
}

impl<'s, R: Read> Exact<'s, R> {
    /// `what` names the entry in errors (its path).
    pub fn new(inner: R, size: u64, scope: &'s Scope<'s, 's>, what: &'s str) -> Exact<'s, R> {
        Exact {
            inner,
            left: size,
            fault: None,
            scope,
            what,
        }
    }

    /// Reads (and drops) whatever the caller left unread, then reports the first fault.
    pub fn finish(mut self) -> Result<(), DebError> {
        let mut sink = [0u8; 8192];
        while self.fault.is_none() && self.left > 0 {
            match self.read(&mut sink) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.fault.map_or(Ok(()), Err)
    }

    fn fail(&mut self, kind: io::ErrorKind, detail: String) -> io::Error {
        let error = self.scope.error(ErrorKind::Malformed, detail);
        self.fault = Some(error.clone());
        io::Error::new(kind, error)
    }
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(fault) = &self.fault {
            return Err(io::Error::other(fault.clone()));
        }
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let window = buf.get_mut(..want).unwrap_or_default();
        match self.inner.read(window) {
            Ok(0) => {
                let detail = format!(
                    "`{}` ends {} bytes early: the archive is truncated",
                    self.what, self.left
                );
                Err(self.fail(io::ErrorKind::UnexpectedEof, detail))
            }
            Ok(n) => {
                self.left = self.left.saturating_sub(n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let detail = format!("reading `{}`: {e}", self.what);
                Err(self.fail(io::ErrorKind::InvalidData, detail))
            }
        }
    }
}
