//! The control archive: `control`, `md5sums`, `conffiles`, maintainer scripts and the
//! other files dpkg keeps in its database, read whole into memory.
//!
//! dpkg stores these flat under `/var/lib/dpkg/info/<package>.<name>`, so only plain
//! files at the archive's top level with names safe to append there are accepted.

use std::io::Read;

use tar::EntryType;

use crate::error::{DebError, ErrorKind};
use crate::layout::Scope;
use crate::tarball::{self, Exact};

/// Most bytes a control archive may hold in all. Real ones are kilobytes (the largest,
/// with `md5sums` of big packages, a few megabytes); the cap keeps a damaged or hostile
/// archive from exhausting memory, since these files are read whole.
const CONTROL_MAX: u64 = 64 << 20;

/// One file of the control archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMember {
    /// The bare name (`control`, `postinst`), without the archive's `./`.
    pub name: String,
    /// Permission bits (`mode & 0o7777`): maintainer scripts are executable.
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Reads every file of the control archive, in archive order.
pub(crate) fn read(scope: &Scope<'_, '_>) -> Result<Vec<ControlMember>, DebError> {
    let mut archive = tarball::open(scope)?;
    let mut members: Vec<ControlMember> = Vec::new();
    let mut total: u64 = 0;
    let entries = archive
        .entries()
        .map_err(|e| tarball::header_error(scope, None, &e))?;
    for entry in entries {
        let last = members.last().map(|m| m.name.as_str());
        let mut entry = entry.map_err(|e| tarball::header_error(scope, last, &e))?;
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        let is_dir =
            kind == EntryType::Directory || (kind == EntryType::Regular && raw.ends_with(b"/"));
        if is_dir && matches!(raw.as_slice(), b"." | b"./" | b"/") {
            continue;
        }
        if is_dir || kind != EntryType::Regular {
            let what = if is_dir {
                "directory".into()
            } else {
                tarball::type_name(kind)
            };
            let message = format!(
                "`{}` is a {what}: a control archive holds plain files only",
                raw.escape_ascii()
            );
            return Err(scope.error(ErrorKind::Malformed, message));
        }
        let name = member_name(scope, &raw)?;
        if members.iter().any(|m| m.name == name) {
            return Err(scope.error(ErrorKind::Malformed, format!("`{name}` appears twice")));
        }
        let size = entry.size();
        total = total
            .checked_add(size)
            .filter(|total| *total <= CONTROL_MAX)
            .ok_or_else(|| {
                scope.error(
                    ErrorKind::Malformed,
                    format!("`{name}` makes the control archive larger than {CONTROL_MAX} bytes"),
                )
            })?;
        let mode = entry.header().mode().map_err(|e| {
            scope.error(
                ErrorKind::Malformed,
                format!("`{name}`: bad mode field: {e}"),
            )
        })?;
        let data = read_body(scope, &mut entry, size, &name)?;
        members.push(ControlMember {
            name,
            mode: mode & 0o7777,
            data,
        });
    }
    tarball::close(archive, scope)?;
    if !members.iter().any(|m| m.name == "control") {
        return Err(scope.error(ErrorKind::Malformed, "no `control` file"));
    }
    Ok(members)
}

/// A control file's bytes, exactly as many as its header declares.
fn read_body(
    scope: &Scope<'_, '_>,
    entry: &mut impl Read,
    size: u64,
    name: &str,
) -> Result<Vec<u8>, DebError> {
    let mut data = Vec::new();
    let mut body = Exact::new(entry, size, scope, name);
    // A failed read is recorded in `body`, which `finish` reports.
    let _ = body.read_to_end(&mut data);
    body.finish()?;
    Ok(data)
}

/// The bare name of a top-level control file: `./` stripped, then only characters that
/// are safe in dpkg's `<package>.<name>` database files.
fn member_name(scope: &Scope<'_, '_>, raw: &[u8]) -> Result<String, DebError> {
    let name = raw.strip_prefix(b"./").unwrap_or(raw);
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-');
    if name.is_empty() || name == b"." || name == b".." || !name.iter().all(allowed) {
        let message = format!(
            "`{}` is not a plain top-level control file name (only A-Z, a-z, 0-9 and `._+-` are allowed)",
            raw.escape_ascii()
        );
        return Err(scope.error(ErrorKind::Malformed, message));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}
