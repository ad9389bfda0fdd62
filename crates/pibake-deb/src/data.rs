//! The data archive: the files a package installs, as validated entries.
//!
//! Each tar entry becomes a [`DataEntry`] only after everything an unpacker relies on
//! has been checked: the path is normalised and stays inside the root, the kind is one
//! pibake writes, a hard link points at a regular file already unpacked, and ownership
//! and times parse. Refusing here keeps those checks out of every writer.

use std::collections::HashSet;
use std::io::Read;

use tar::{Entry, EntryType};

use crate::error::{DebError, ErrorKind};
use crate::layout::Scope;
use crate::path::DebPath;
use crate::tarball::{self, Exact};

/// Longest symlink target Linux stores (`PATH_MAX`, including its NUL).
const SYMLINK_MAX: usize = 4096;

/// One entry of the data archive, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    pub path: DebPath,
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// Owner and group names from the tar header, when present. dpkg prefers them to
    /// the numeric ids when the target system knows the names.
    pub uname: Option<String>,
    pub gname: Option<String>,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Bytes of content: regular files only, 0 for every other kind.
    pub size: u64,
}

/// What an entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// The target is kept as written (it may be relative or absolute); confining it to
    /// the root is the writer's job, since only the writer resolves it.
    Symlink {
        target: String,
    },
    /// Another name for a regular file that came earlier in the same archive.
    HardLink {
        target: DebPath,
    },
}

/// Calls `visit` for each entry in archive order, then checks the archive ended cleanly.
pub(crate) fn walk<E: From<DebError>>(
    scope: &Scope<'_, '_>,
    mut visit: impl FnMut(&DataEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let mut archive = tarball::open(scope)?;
    // Regular files seen so far: the only valid hard link targets.
    let mut files: HashSet<DebPath> = HashSet::new();
    let mut last: Option<DebPath> = None;
    let entries = archive
        .entries()
        .map_err(|e| tarball::header_error(scope, None, &e))?;
    for entry in entries {
        let last_path = last.as_ref().map(DebPath::as_str);
        let mut entry = entry.map_err(|e| tarball::header_error(scope, last_path, &e))?;
        let info = describe(scope, &entry, &files)?;
        let mut body = Exact::new(&mut entry, info.size, scope, info.path.as_str());
        visit(&info, &mut body)?;
        body.finish()?;
        if info.kind == EntryKind::File {
            files.insert(info.path.clone());
        } else {
            files.remove(&info.path);
        }
        last = Some(info.path);
    }
    tarball::close(archive, scope)?;
    Ok(())
}

/// Validates one entry's header into a [`DataEntry`].
fn describe<R: Read>(
    scope: &Scope<'_, '_>,
    entry: &Entry<'_, R>,
    files: &HashSet<DebPath>,
) -> Result<DataEntry, DebError> {
    let raw = entry.path_bytes();
    let path = DebPath::parse(&raw)
        .map_err(|e| scope.error(e.kind(), format!("entry `{}`: {e}", raw.escape_ascii())))?;
    let header = entry.header();
    let kind = kind_of(scope, entry, &raw, &path, files)?;
    let size = entry.size();
    check_shape(scope, &path, &kind, size)?;
    let field = |name: &str, e: std::io::Error| {
        scope.error(
            ErrorKind::Malformed,
            format!("`{path}`: bad {name} field: {e}"),
        )
    };
    // The mask leaves 12 bits, so the narrowing below is lossless.
    let mode = (header.mode().map_err(|e| field("mode", e))? & 0o7777) as u16;
    let uid = header.uid().map_err(|e| field("uid", e))?;
    let gid = header.gid().map_err(|e| field("gid", e))?;
    let mtime = header.mtime().map_err(|e| field("mtime", e))?;
    let too_big = |name: &str, value: u64| {
        scope.error(
            ErrorKind::Malformed,
            format!("`{path}`: {name} {value} is out of range"),
        )
    };
    Ok(DataEntry {
        mode,
        uid: u32::try_from(uid).map_err(|_| too_big("uid", uid))?,
        gid: u32::try_from(gid).map_err(|_| too_big("gid", gid))?,
        mtime: i64::try_from(mtime).map_err(|_| too_big("mtime", mtime))?,
        uname: owner_name(scope, &path, "owner", header.username_bytes())?,
        gname: owner_name(scope, &path, "group", header.groupname_bytes())?,
        path,
        kind,
        size,
    })
}

/// The entry's kind, refusing every kind pibake does not write.
fn kind_of<R: Read>(
    scope: &Scope<'_, '_>,
    entry: &Entry<'_, R>,
    raw: &[u8],
    path: &DebPath,
    files: &HashSet<DebPath>,
) -> Result<EntryKind, DebError> {
    let link = entry.link_name_bytes();
    let link = link.as_deref().unwrap_or_default();
    match entry.header().entry_type() {
        // Pre-POSIX archives mark directories as regular files named with a trailing
        // slash; dpkg still reads them so.
        EntryType::Regular if raw.ends_with(b"/") => Ok(EntryKind::Dir),
        EntryType::Regular => Ok(EntryKind::File),
        EntryType::Directory => Ok(EntryKind::Dir),
        EntryType::Symlink => {
            symlink_target(scope, path, link).map(|target| EntryKind::Symlink { target })
        }
        EntryType::Link => {
            hard_link_target(scope, path, link, files).map(|target| EntryKind::HardLink { target })
        }
        kind @ (EntryType::Char | EntryType::Block | EntryType::Fifo) => {
            let what = tarball::type_name(kind);
            let message = format!(
                "`{path}` is a {what}: pibake writes files, directories, symlinks and hard links only, \
                 so it cannot unpack this package; install it on first boot instead"
            );
            Err(scope.error(ErrorKind::Unsupported, message))
        }
        kind => {
            let what = tarball::type_name(kind);
            let message = format!("`{path}` is a {what}, which dpkg does not unpack either");
            Err(scope.error(ErrorKind::Malformed, message))
        }
    }
}

/// Refuses entries whose kind contradicts their path or size: the root as anything but
/// a directory, a hard link to itself (unpacking it would remove its only content), and
/// content on a kind that has none (dpkg would read those bytes as the next header).
fn check_shape(
    scope: &Scope<'_, '_>,
    path: &DebPath,
    kind: &EntryKind,
    size: u64,
) -> Result<(), DebError> {
    let what = kind_name(kind);
    let problem = match kind {
        _ if path.is_root() && *kind != EntryKind::Dir => Some((
            ErrorKind::Unsafe,
            format!("the root `/` is a {what}, not a directory"),
        )),
        EntryKind::HardLink { target } if target == path => Some((
            ErrorKind::Unsafe,
            format!("hard link `{path}` points to itself"),
        )),
        EntryKind::File => None,
        _ if size != 0 => Some((
            ErrorKind::Malformed,
            format!("`{path}` is a {what} but declares {size} bytes of content"),
        )),
        _ => None,
    };
    problem.map_or(Ok(()), |(kind, message)| Err(scope.error(kind, message)))
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Dir => "directory",
        EntryKind::File => "regular file",
        EntryKind::Symlink { .. } => "symlink",
        EntryKind::HardLink { .. } => "hard link",
    }
}

/// A symlink target: non-empty, UTF-8, no NUL, short enough for Linux to store.
fn symlink_target(scope: &Scope<'_, '_>, path: &DebPath, link: &[u8]) -> Result<String, DebError> {
    let problem = if link.is_empty() {
        Some("has an empty target")
    } else if link.contains(&0) {
        Some("has a target containing a NUL byte")
    } else if link.len() >= SYMLINK_MAX {
        Some("has a target longer than Linux stores")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(scope.error(ErrorKind::Malformed, format!("symlink `{path}` {problem}")));
    }
    String::from_utf8(link.to_vec()).map_err(|_| {
        let message =
            format!("symlink `{path}` has a target that is not UTF-8, which pibake does not write");
        scope.error(ErrorKind::Unsupported, message)
    })
}

/// A hard link target: a valid path naming a regular file earlier in the archive, since
/// that is the only file a link can be made to while unpacking in order.
fn hard_link_target(
    scope: &Scope<'_, '_>,
    path: &DebPath,
    link: &[u8],
    files: &HashSet<DebPath>,
) -> Result<DebPath, DebError> {
    let target = DebPath::parse(link).map_err(|e| {
        let message = format!("hard link `{path}` to `{}`: {e}", link.escape_ascii());
        scope.error(e.kind(), message)
    })?;
    if files.contains(&target) {
        return Ok(target);
    }
    let message = format!(
        "hard link `{path}` points to `{target}`, which is not an earlier regular file in this package"
    );
    Err(scope.error(ErrorKind::Unsafe, message))
}

/// An owner or group name: absent when empty, refused when not UTF-8.
fn owner_name(
    scope: &Scope<'_, '_>,
    path: &DebPath,
    what: &str,
    name: Option<&[u8]>,
) -> Result<Option<String>, DebError> {
    match name {
        None | Some([]) => Ok(None),
        Some(bytes) => String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| {
            let message = format!(
                "`{path}`: {what} name `{}` is not UTF-8",
                bytes.escape_ascii()
            );
            scope.error(ErrorKind::Malformed, message)
        }),
    }
}
