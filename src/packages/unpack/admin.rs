//! What the base image's dpkg knows, read once before unpacking: its status, who owns
//! which path, its diversions and status overrides, its path filters, its users and
//! groups, and its trigger state. Unpacking must honour each exactly as the image's own
//! dpkg would, so everything is read from the image, never from the build machine.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;

use pibake_apt::{Package, parse_status};
use pibake_ext4::{Ext4, Kind};

use super::triggers::Triggers;
use crate::error::{Error, Result};

/// dpkg's administrative directory.
pub const ADMIN: &str = "/var/lib/dpkg";
/// Where control members and file lists live.
pub const INFO: &str = "/var/lib/dpkg/info";
/// The status database.
pub const STATUS: &str = "/var/lib/dpkg/status";

/// A path dpkg puts somewhere else (`dpkg-divert`).
#[derive(Debug, Clone)]
pub struct Diversion {
    /// Where the file goes instead.
    pub to: String,
    /// The package that diverts it (`:` for a local diversion).
    pub by: String,
}

/// `dpkg-statoverride`: owner and mode a path gets whatever its package says.
#[derive(Debug, Clone, Copy)]
pub struct Override {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u16,
}

/// `path-exclude` / `path-include` from the image's dpkg configuration.
#[derive(Debug, Clone)]
pub struct Filter {
    /// `true` for `path-include`.
    pub include: bool,
    /// The glob, as `fnmatch(3)` takes it.
    pub pattern: CString,
}

/// The base's dpkg state.
pub struct Admin {
    /// `/var/lib/dpkg/status`, as it is.
    pub status: String,
    /// Packages installed and configured (dpkg's `installed` state).
    pub configured: Vec<Package>,
    /// Every package the status names, in any state.
    pub known: BTreeSet<String>,
    /// Path -> the base package that owns it (from `info/*.list`).
    pub owners: HashMap<String, String>,
    /// Diverted paths.
    pub diversions: HashMap<String, Diversion>,
    /// Status overrides by path.
    pub overrides: HashMap<String, Override>,
    /// Path filters, in the order dpkg applies them (the last match wins).
    pub filters: Vec<Filter>,
    /// Whether `info/` names `Multi-Arch: same` packages `PKG:ARCH` (`info/format` 1).
    pub arch_qualified_info: bool,
    /// User and group names of the image.
    pub users: HashMap<String, u32>,
    /// Group names of the image.
    pub groups: HashMap<String, u32>,
    /// Trigger interests and the activations not yet incorporated.
    pub triggers: Triggers,
}

impl Admin {
    /// Reads the base's dpkg state from its root.
    pub fn read(fs: &Ext4) -> Result<Admin> {
        let status = text(fs, STATUS)?.ok_or_else(|| {
            Error::invalid(format!(
                "the base image has no {STATUS}: pibake unpacks packages only into a Debian-based root"
            ))
        })?;
        let configured = parse_status(&status).map_err(|e| base_err(STATUS, &e))?;
        let known = status
            .lines()
            .filter_map(|l| l.strip_prefix("Package:"))
            .map(|n| n.trim().to_string())
            .collect();
        let users = ids(fs, "/etc/passwd", 2)?;
        let groups = ids(fs, "/etc/group", 2)?;
        Ok(Admin {
            configured,
            known,
            owners: owners(fs)?,
            diversions: diversions(fs)?,
            overrides: overrides(fs, &users, &groups)?,
            filters: filters(fs)?,
            arch_qualified_info: text(fs, &format!("{INFO}/format"))?
                .is_some_and(|t| t.trim() == "1"),
            users,
            groups,
            triggers: Triggers::read(fs)?,
            status,
        })
    }

    /// Whether dpkg's path filters leave `path` out (`filter_should_skip` in dpkg:
    /// the last matching pattern wins; an excluded directory or symlink is kept when a
    /// later include pattern's fixed prefix starts with its path).
    pub fn filtered(&self, path: &str, dir_or_link: bool) -> bool {
        let Ok(c) = CString::new(path) else {
            return false;
        };
        let mut skip = false;
        for f in &self.filters {
            // SAFETY: both are NUL-terminated strings that outlive the call.
            if unsafe { libc::fnmatch(f.pattern.as_ptr(), c.as_ptr(), 0) } == 0 {
                skip = !f.include;
            }
        }
        if skip && dir_or_link {
            return !self.filters.iter().filter(|f| f.include).any(|f| {
                let p = f.pattern.to_string_lossy();
                let fixed = p.find(['*', '?', '[', '\\']).unwrap_or(p.len());
                path.starts_with(p[..fixed].trim_end_matches('/'))
            });
        }
        skip
    }
}

fn base_err(file: &str, e: &dyn std::fmt::Display) -> Error {
    Error::invalid(format!("the base image's {file}: {e}"))
}

/// A text file of the image, `None` when it is absent.
pub fn text(fs: &Ext4, path: &str) -> Result<Option<String>> {
    if !fs.exists(path)? {
        return Ok(None);
    }
    let bytes = fs.read(path)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| base_err(path, &"is not UTF-8 text"))
}

/// `name:x:ID:...` files: name -> the number in field `field`.
fn ids(fs: &Ext4, path: &str, field: usize) -> Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for (n, line) in text(fs, path)?.unwrap_or_default().lines().enumerate() {
        let parts: Vec<&str> = line.split(':').collect();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = parts.get(field).and_then(|v| v.parse::<u32>().ok());
        match (parts.first(), id) {
            (Some(name), Some(id)) if !name.is_empty() => {
                out.entry(name.to_string()).or_insert(id);
            }
            _ => {
                return Err(base_err(
                    path,
                    &format!("line {}: not `name:x:id:...`", n + 1),
                ));
            }
        }
    }
    Ok(out)
}

/// Every path a base package lists, with its package.
fn owners(fs: &Ext4) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if !fs.exists(INFO)? {
        return Ok(out);
    }
    for e in fs.read_dir(INFO)? {
        let Some(stem) = e.name.strip_suffix(".list") else {
            continue;
        };
        if e.kind != Some(Kind::File) {
            continue;
        }
        let pkg = stem.split(':').next().unwrap_or(stem).to_string();
        let list = text(fs, &format!("{INFO}/{}", e.name))?.unwrap_or_default();
        for path in list.lines().filter(|p| !p.is_empty()) {
            out.entry(path.to_string()).or_insert_with(|| pkg.clone());
        }
    }
    Ok(out)
}

/// `/var/lib/dpkg/diversions`: records of three lines (from, to, package).
fn diversions(fs: &Ext4) -> Result<HashMap<String, Diversion>> {
    let file = "/var/lib/dpkg/diversions";
    let text = text(fs, file)?.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if !lines.len().is_multiple_of(3) {
        return Err(base_err(
            file,
            &"is not a list of three-line records (from, to, package)",
        ));
    }
    Ok(lines
        .chunks(3)
        .map(|r| {
            (
                r[0].to_string(),
                Diversion {
                    to: r[1].to_string(),
                    by: r[2].to_string(),
                },
            )
        })
        .collect())
}

/// `/var/lib/dpkg/statoverride`: `user group mode path`, names or `#id`.
fn overrides(
    fs: &Ext4,
    users: &HashMap<String, u32>,
    groups: &HashMap<String, u32>,
) -> Result<HashMap<String, Override>> {
    let file = "/var/lib/dpkg/statoverride";
    let mut out = HashMap::new();
    for (n, line) in text(fs, file)?.unwrap_or_default().lines().enumerate() {
        let bad = |what: &str| base_err(file, &format!("line {}: {what}", n + 1));
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        let [user, group, mode, path] = parts[..] else {
            return Err(bad("not `user group mode path`"));
        };
        let id = |name: &str, db: &HashMap<String, u32>| match name.strip_prefix('#') {
            Some(n) => n.parse::<u32>().ok(),
            None => db.get(name).copied(),
        };
        let (Some(uid), Some(gid)) = (id(user, users), id(group, groups)) else {
            return Err(bad(&format!(
                "`{user}` or `{group}` is no user or group of the image"
            )));
        };
        let mode = u16::from_str_radix(mode, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| bad(&format!("`{mode}` is not an octal mode")))?;
        out.insert(path.to_string(), Override { uid, gid, mode });
    }
    Ok(out)
}

/// dpkg reads `dpkg.cfg.d/*` (names of letters, digits, `_` and `-` only, in name
/// order) and then `dpkg.cfg`; `path-exclude`/`path-include` there filter every unpack.
fn filters(fs: &Ext4) -> Result<Vec<Filter>> {
    let dir = "/etc/dpkg/dpkg.cfg.d";
    let mut files = Vec::new();
    if fs.exists(dir)? {
        let mut names: Vec<String> = fs
            .read_dir(dir)?
            .into_iter()
            .filter(|e| e.kind != Some(Kind::Dir))
            .map(|e| e.name)
            .filter(|n| {
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    files.push("/etc/dpkg/dpkg.cfg".into());
    let mut out = Vec::new();
    for f in files {
        for line in text(fs, &f)?.unwrap_or_default().lines() {
            let line = line.trim();
            let (name, value) = line
                .split_once(['=', ' ', '\t'])
                .map_or((line, ""), |(n, v)| (n, v.trim()));
            let include = match name.trim_start_matches("--") {
                "path-include" => true,
                "path-exclude" => false,
                _ => continue,
            };
            let pattern =
                CString::new(value).map_err(|_| base_err(&f, &format!("`{line}` holds a NUL")))?;
            out.push(Filter { include, pattern });
        }
    }
    Ok(out)
}
