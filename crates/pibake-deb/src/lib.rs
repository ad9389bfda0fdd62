//! Read Debian binary packages (.deb) safely, in-process, for an offline unpacker that
//! reproduces `dpkg --unpack` without dpkg, root or a chroot.
//!
//! A [`Deb`] borrows the package bytes. [`Deb::parse`] checks the `ar` container the
//! way dpkg reads it (`debian-binary` 2.x first, then the control archive, then the data
//! archive; `_` members skipped). [`Deb::control`] returns the control files
//! (`control`, `md5sums`, maintainer scripts, ...), and [`Deb::each_data_entry`] streams
//! the data archive entry by entry with bodies read straight from the decompressor,
//! so a package is never unpacked into memory.
//!
//! Everything that reaches a caller has been validated: paths are normalised to
//! [`DebPath`]s that cannot leave the target root, hard links point at regular files
//! already seen, regular file bodies are exactly as long as declared, and the kinds are
//! the four an image writer creates ([`EntryKind`]). Device nodes, FIFOs and other
//! entry types are refused with an [`ErrorKind::Unsupported`] error saying so, since
//! such a package is better left to dpkg on first boot than unpacked partly. Errors
//! never panic and always start with the label the package was opened under.
//!
//! ```
//! use pibake_deb::{Deb, DebError, EntryKind};
//!
//! /// An unpacker's own error: what the package reader refused, or what failed writing.
//! #[derive(Debug)]
//! enum UnpackError {
//!     Deb(DebError),
//!     Io(std::io::Error),
//! }
//! impl From<DebError> for UnpackError {
//!     fn from(e: DebError) -> Self { UnpackError::Deb(e) }
//! }
//! impl From<std::io::Error> for UnpackError {
//!     fn from(e: std::io::Error) -> Self { UnpackError::Io(e) }
//! }
//!
//! /// Bytes of regular-file content in a package.
//! fn content_size(label: &str, bytes: &[u8]) -> Result<u64, UnpackError> {
//!     let deb = Deb::parse(label, bytes)?;
//!     assert!(deb.control()?.iter().any(|m| m.name == "control"));
//!     let mut total = 0;
//!     deb.each_data_entry(|entry, body| {
//!         if entry.kind == EntryKind::File {
//!             total += std::io::copy(body, &mut std::io::sink())?;
//!         }
//!         Ok::<(), UnpackError>(())
//!     })?;
//!     Ok(total)
//! }
//! assert!(matches!(content_size("x.deb", b"junk"), Err(UnpackError::Deb(_))));
//! ```
//!
//! Internals, one module per layer: `ar` (the container), `layout` (which members, in
//! which order), `decompress`, `tarball` (tar over a member, exact-size bodies),
//! `control`, `data`, and `path`.

mod ar;
mod control;
mod data;
mod decompress;
mod error;
mod layout;
mod path;
mod tarball;

use std::io::Read;

pub use control::ControlMember;
pub use data::{DataEntry, EntryKind};
pub use error::{DebError, ErrorKind};
pub use path::{DebPath, PathError};

use layout::{Member, Scope};

/// A parsed .deb over borrowed bytes: the container is checked, the archives are read
/// on demand.
pub struct Deb<'a> {
    label: String,
    control: Member<'a>,
    data: Member<'a>,
}

impl<'a> Deb<'a> {
    /// Parses the `ar` container: magic `!<arch>\n`, 60-byte member headers, data padded
    /// to even length. Members must come in dpkg's order: `debian-binary` (format 2.x),
    /// then `control.tar[.gz|.xz|.zst]`, then `data.tar[.gz|.xz|.zst]`; members whose
    /// names start with `_` are skipped. Anything else (an unknown, misplaced, duplicate
    /// or missing member, a truncated header or body, a bad size field, bzip2 or lzma
    /// compression) is an error naming the member and its byte offset. `label` (the file
    /// name, say) starts every error message.
    pub fn parse(label: &str, bytes: &'a [u8]) -> Result<Deb<'a>, DebError> {
        let layout = layout::locate(label, bytes)?;
        Ok(Deb {
            label: label.to_owned(),
            control: layout.control,
            data: layout.data,
        })
    }

    /// The label the package was opened under.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every regular file at the top level of the control archive (`control`,
    /// `md5sums`, `conffiles`, `preinst`, `postinst`, `prerm`, `postrm`, `triggers`,
    /// `shlibs`, `symbols`, `templates`, `config`, ...), in archive order. The `./`
    /// directory entry is allowed; subdirectories, links and devices are errors, as are
    /// names outside `[A-Za-z0-9._+-]`, duplicates, and a missing `control`.
    pub fn control(&self) -> Result<Vec<ControlMember>, DebError> {
        control::read(&self.scope(&self.control))
    }

    /// Streams the data archive: calls `visit` once per entry, in archive order, with the
    /// validated entry and a reader of its body: exactly `entry.size` bytes for regular
    /// files, nothing for other kinds. Unread body bytes are skipped. A body that ends
    /// early fails the read (with an `io::Error` wrapping the [`DebError`]) and the walk.
    /// A `visit` error stops the walk and is returned as is.
    ///
    /// Entries come in archive order; dpkg itself creates symlinks only after every other
    /// entry, which a writer reproducing it exactly must do too.
    pub fn each_data_entry<E: From<DebError>>(
        &self,
        visit: impl FnMut(&DataEntry, &mut dyn Read) -> Result<(), E>,
    ) -> Result<(), E> {
        data::walk(&self.scope(&self.data), visit)
    }

    fn scope<'s>(&'s self, member: &'s Member<'a>) -> Scope<'s, 'a> {
        Scope {
            label: &self.label,
            member,
        }
    }
}
