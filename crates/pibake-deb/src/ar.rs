//! The `ar` container every .deb is wrapped in: an 8-byte magic, then members, each a
//! 60-byte text header followed by its data, padded to an even length.
//!
//! Only what dpkg reads is read: the name and the size. Timestamps, owners and modes
//! of members mean nothing to an unpacker, so they are not parsed (and not refused
//! when odd), exactly as dpkg does not. The size field is parsed strictly, since a
//! lenient parse is how two readers come to disagree about where a member ends.

use crate::error::{DebError, ErrorKind};

/// The first bytes of every `ar` archive.
const MAGIC: &[u8; 8] = b"!<arch>\n";

/// Bytes in a member header: name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n".
const HEADER_LEN: usize = 60;

/// One member, borrowed from the archive bytes.
pub(crate) struct ArMember<'a> {
    /// The name with the trailing spaces and the GNU `/` terminator removed.
    pub name: &'a [u8],
    /// Where the member's header starts in the .deb, for error messages.
    pub offset: usize,
    /// The member's data, exactly as long as its size field says.
    pub data: &'a [u8],
}

/// Walks the members of an `ar` archive in order.
pub(crate) struct ArReader<'l, 'a> {
    label: &'l str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'l, 'a> ArReader<'l, 'a> {
    /// Checks the magic; members are read with [`ArReader::next_member`].
    pub fn new(label: &'l str, bytes: &'a [u8]) -> Result<ArReader<'l, 'a>, DebError> {
        if !bytes.starts_with(MAGIC) {
            return Err(DebError::new(
                ErrorKind::Malformed,
                label,
                "not a Debian package: no `!<arch>` magic at byte 0",
            ));
        }
        Ok(ArReader {
            label,
            bytes,
            pos: MAGIC.len(),
        })
    }

    /// The next member, or `None` at the exact end of the archive.
    pub fn next_member(&mut self) -> Result<Option<ArMember<'a>>, DebError> {
        let offset = self.pos;
        let rest = self.bytes.get(offset..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let Some(header) = rest.first_chunk::<HEADER_LEN>() else {
            return Err(self.error(format!(
                "truncated member header at byte {offset}: {} of {HEADER_LEN} bytes present",
                rest.len()
            )));
        };
        let name = member_name(header);
        if !header.ends_with(b"`\n") {
            return Err(self.error(format!(
                "member `{}` at byte {offset}: bad header terminator (not an ar member header)",
                name.escape_ascii()
            )));
        }
        let size = parse_size(header).ok_or_else(|| {
            self.error(format!(
                "member `{}` at byte {offset}: bad size field `{}`",
                name.escape_ascii(),
                header.get(48..58).unwrap_or_default().escape_ascii()
            ))
        })?;
        let data = rest
            .get(HEADER_LEN..)
            .and_then(|after| after.get(..size))
            .ok_or_else(|| {
                self.error(format!(
                    "member `{}` at byte {offset} is truncated: it declares {size} bytes, {} are present",
                    name.escape_ascii(),
                    rest.len().saturating_sub(HEADER_LEN)
                ))
            })?;
        self.pos = next_offset(offset, size, self.bytes.len());
        Ok(Some(ArMember { name, offset, data }))
    }

    fn error(&self, message: String) -> DebError {
        DebError::new(ErrorKind::Malformed, self.label, message)
    }
}

/// The name field without its padding: trailing spaces, then one GNU `/` terminator.
fn member_name(header: &[u8; HEADER_LEN]) -> &[u8] {
    let field = header.get(..16).unwrap_or_default();
    let trimmed = field.trim_ascii_end();
    trimmed.strip_suffix(b"/").unwrap_or(trimmed)
}

/// The size field: decimal digits, then space padding, nothing else. dpkg accepts the
/// same; anything looser (signs, embedded spaces) would let readers disagree.
fn parse_size(header: &[u8; HEADER_LEN]) -> Option<usize> {
    let field = header.get(48..58)?.trim_ascii_end();
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Where the member after this one starts: data is padded to an even length. A missing
/// pad byte at the very end of the file is tolerated (there is nothing left to misread).
fn next_offset(offset: usize, size: usize, len: usize) -> usize {
    offset
        .saturating_add(HEADER_LEN)
        .saturating_add(size)
        .saturating_add(size % 2)
        .min(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: &str) -> Vec<u8> {
        format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
            0, 0, 0, 100644
        )
        .into_bytes()
    }

    #[test]
    fn reads_members_with_padding_and_gnu_names() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(header("odd/", "3"));
        bytes.extend(b"abc\n");
        bytes.extend(header("even", "2"));
        bytes.extend(b"de");
        let mut ar = ArReader::new("t", &bytes).unwrap();
        let first = ar.next_member().unwrap().unwrap();
        assert_eq!(
            (first.name, first.offset, first.data),
            (&b"odd"[..], 8, &b"abc"[..])
        );
        let second = ar.next_member().unwrap().unwrap();
        assert_eq!(
            (second.name, second.offset, second.data),
            (&b"even"[..], 72, &b"de"[..])
        );
        assert!(ar.next_member().unwrap().is_none());
    }

    #[test]
    fn refuses_bad_sizes() {
        for size in ["", "-1", "1 2", "0x10", "+5"] {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(header("m", size));
            let err = ArReader::new("t", &bytes)
                .unwrap()
                .next_member()
                .err()
                .unwrap();
            assert!(
                err.to_string().starts_with("t: member `m` at byte 8"),
                "{err}"
            );
        }
    }

    #[test]
    fn refuses_truncation() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(header("m", "9999999999"));
        bytes.extend(b"short");
        let err = ArReader::new("t", &bytes)
            .unwrap()
            .next_member()
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("declares 9999999999 bytes, 5 are present"),
            "{err}"
        );
        let err = ArReader::new("t", &bytes[..30])
            .unwrap()
            .next_member()
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("truncated member header at byte 8"),
            "{err}"
        );
    }
}
