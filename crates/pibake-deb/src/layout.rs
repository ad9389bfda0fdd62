//! Which `ar` members make a .deb, and in which order, as dpkg insists.
//!
//! dpkg reads `debian-binary` first, then the control archive, then the data archive,
//! and skips members whose names start with `_` (reserved for optional additions such
//! as signatures). Anything else is refused here rather than guessed at: a second data
//! member or one before the control member is how two tools come to unpack different
//! contents from the same file.

use std::fmt::Display;

use crate::ar::{ArMember, ArReader};
use crate::decompress::Compression;
use crate::error::{DebError, ErrorKind};

/// A located control or data archive.
pub(crate) struct Member<'a> {
    /// The member's name as dpkg spells it (`data.tar.xz`).
    pub name: &'static str,
    /// Where its `ar` header starts in the .deb.
    pub offset: usize,
    pub compression: Compression,
    pub bytes: &'a [u8],
}

/// The two archives of a package, found and ordered.
pub(crate) struct Layout<'a> {
    pub control: Member<'a>,
    pub data: Member<'a>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Control,
    Data,
}

/// Every member name a package may use for its archives.
const ARCHIVES: [(&str, Role, Compression); 8] = [
    ("control.tar", Role::Control, Compression::None),
    ("control.tar.gz", Role::Control, Compression::Gzip),
    ("control.tar.xz", Role::Control, Compression::Xz),
    ("control.tar.zst", Role::Control, Compression::Zstd),
    ("data.tar", Role::Data, Compression::None),
    ("data.tar.gz", Role::Data, Compression::Gzip),
    ("data.tar.xz", Role::Data, Compression::Xz),
    ("data.tar.zst", Role::Data, Compression::Zstd),
];

/// Archive names dpkg knows (old packages) but pibake does not decompress.
const UNSUPPORTED: [(&str, &str); 4] = [
    ("control.tar.bz2", "bzip2"),
    ("control.tar.lzma", "lzma"),
    ("data.tar.bz2", "bzip2"),
    ("data.tar.lzma", "lzma"),
];

/// The error helper for one member: every message names the member and its offset.
pub(crate) struct Scope<'s, 'a> {
    pub label: &'s str,
    pub member: &'s Member<'a>,
}

impl Scope<'_, '_> {
    pub fn error(&self, kind: ErrorKind, detail: impl Display) -> DebError {
        let member = self.member;
        let message = format!("{} at byte {}: {detail}", member.name, member.offset);
        DebError::new(kind, self.label, message)
    }
}

/// Finds the control and data archives, checking order, names and the format version.
pub(crate) fn locate<'a>(label: &str, bytes: &'a [u8]) -> Result<Layout<'a>, DebError> {
    let malformed = |message: String| DebError::new(ErrorKind::Malformed, label, message);
    let mut ar = ArReader::new(label, bytes)?;
    let first = ar
        .next_member()?
        .ok_or_else(|| malformed("empty ar archive: no `debian-binary` member".into()))?;
    check_version(label, &first)?;
    let (mut control, mut data) = (None, None);
    while let Some(member) = ar.next_member()? {
        if member.name.starts_with(b"_") {
            continue;
        }
        let (role, found) = classify(label, &member)?;
        let earlier = match role {
            Role::Control if data.is_some() => Some("after the data member"),
            Role::Data if control.is_none() => Some("before the control member"),
            _ => None,
        };
        if let Some(place) = earlier {
            let at = found.offset;
            return Err(malformed(format!(
                "member `{}` at byte {at} comes {place}",
                found.name
            )));
        }
        let slot = if role == Role::Control {
            &mut control
        } else {
            &mut data
        };
        if let Some(previous) = slot.replace(found) {
            let at = member.offset;
            let name = member.name.escape_ascii();
            let first = previous.name;
            return Err(malformed(format!(
                "second archive member `{name}` at byte {at} (the first was `{first}`)"
            )));
        }
    }
    match (control, data) {
        (Some(control), Some(data)) => Ok(Layout { control, data }),
        (None, _) => Err(malformed("no control member (`control.tar*`)".into())),
        (Some(_), None) => Err(malformed("no data member (`data.tar*`)".into())),
    }
}

/// Checks `debian-binary`: the first member, "2.<minor>\n" and possibly more lines, as
/// dpkg reads it. Another major version is a format this crate does not know.
fn check_version(label: &str, member: &ArMember<'_>) -> Result<(), DebError> {
    let at = member.offset;
    if member.name != b"debian-binary" {
        let name = member.name.escape_ascii();
        let message = format!(
            "first member is `{name}` at byte {at}, not `debian-binary`: not a Debian binary package"
        );
        return Err(DebError::new(ErrorKind::Malformed, label, message));
    }
    let data = member.data;
    let first_line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let version = first_line.escape_ascii();
    let minor_ok = |minor: &[u8]| !minor.is_empty() && minor.iter().all(u8::is_ascii_digit);
    match first_line.strip_prefix(b"2.") {
        Some(minor) if minor_ok(minor) && data.ends_with(b"\n") => Ok(()),
        Some(minor) if minor_ok(minor) => {
            let message =
                format!("debian-binary at byte {at}: `{version}` does not end in a newline");
            Err(DebError::new(ErrorKind::Malformed, label, message))
        }
        None if first_line.first().is_some_and(u8::is_ascii_digit) => {
            let message = format!(
                "debian-binary at byte {at}: format version `{version}`; pibake reads format 2.x only"
            );
            Err(DebError::new(ErrorKind::Unsupported, label, message))
        }
        _ => {
            let message =
                format!("debian-binary at byte {at}: malformed format version `{version}`");
            Err(DebError::new(ErrorKind::Malformed, label, message))
        }
    }
}

/// What an archive member is, by its name.
fn classify<'a>(label: &str, member: &ArMember<'a>) -> Result<(Role, Member<'a>), DebError> {
    let at = member.offset;
    if let Some((name, role, compression)) = ARCHIVES
        .iter()
        .find(|(name, ..)| name.as_bytes() == member.name)
    {
        let found = Member {
            name,
            offset: at,
            compression: *compression,
            bytes: member.data,
        };
        if found.bytes.is_empty() {
            let message = format!("member `{name}` at byte {at} is empty");
            return Err(DebError::new(ErrorKind::Malformed, label, message));
        }
        return Ok((*role, found));
    }
    let name = member.name.escape_ascii();
    if let Some((_, method)) = UNSUPPORTED
        .iter()
        .find(|(name, _)| name.as_bytes() == member.name)
    {
        let message = format!(
            "member `{name}` at byte {at} uses {method} compression, which pibake does not read"
        );
        return Err(DebError::new(ErrorKind::Unsupported, label, message));
    }
    let message = if member.name == b"debian-binary" {
        format!("second `debian-binary` member at byte {at}")
    } else {
        format!("unknown member `{name}` at byte {at}")
    };
    Err(DebError::new(ErrorKind::Malformed, label, message))
}
