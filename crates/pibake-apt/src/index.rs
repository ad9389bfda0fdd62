//! `Packages` indices and the dpkg `status` file, as typed records.
//!
//! Only the fields that matter for resolution and download are kept. Every
//! field is validated when parsed, so later code never sees a malformed name,
//! version, relation or pool path. Errors carry the 1-based line.

use crate::control::{self, Paragraph};
use crate::relation::{self, PackageName, Provide, Relation};
use crate::version::Version;

/// A refused index, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IndexError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// `Multi-Arch:` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// Absent or `no`.
    #[default]
    No,
    /// `same`: co-installable across architectures, satisfies same-arch deps only.
    Same,
    /// `foreign`: satisfies dependencies from packages of any architecture.
    Foreign,
    /// `allowed`: satisfies `pkg:any` dependencies.
    Allowed,
}

/// A validated pool path (`pool/main/h/hello/hello_2.10-3_arm64.deb`):
/// relative, no `..`, `.` or empty segments, no backslash, no control chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolPath(String);

impl PoolPath {
    /// Validate a `Filename:` value.
    pub fn new(s: &str) -> Result<Self, String> {
        if s.is_empty()
            || s.starts_with('/')
            || s.contains('\\')
            || s.chars().any(|c| c.is_control() || c.is_whitespace())
            || s.split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(format!("unsafe Filename `{s}`"));
        }
        Ok(PoolPath(s.to_string()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where and how to download a package (from a `Packages` index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// `Filename:`, relative to the archive URI.
    pub filename: PoolPath,
    /// `Size:` in bytes.
    pub size: u64,
    /// `SHA256:`.
    pub sha256: [u8; 32],
}

/// One package record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package:`
    pub name: PackageName,
    /// `Version:`
    pub version: Version,
    /// `Architecture:` (`arm64`, `armhf`, `all`, ...).
    pub architecture: String,
    /// `Multi-Arch:`
    pub multi_arch: MultiArch,
    /// `Essential: yes`
    pub essential: bool,
    /// `Priority:` if present.
    pub priority: Option<String>,
    /// `Depends:`
    pub depends: Vec<Relation>,
    /// `Pre-Depends:`
    pub pre_depends: Vec<Relation>,
    /// `Recommends:`
    pub recommends: Vec<Relation>,
    /// `Provides:`
    pub provides: Vec<Provide>,
    /// `Conflicts:`
    pub conflicts: Vec<Relation>,
    /// `Breaks:`
    pub breaks: Vec<Relation>,
    /// `Replaces:` (with `Conflicts`/`Breaks`, what lets apt remove an installed package).
    pub replaces: Vec<Relation>,
    /// Download data; `Some` for every `Packages` record, `None` from status.
    pub download: Option<Download>,
    /// `Installed-Size:` in KiB.
    pub installed_size: Option<u64>,
}

fn err(line: usize, message: impl Into<String>) -> IndexError {
    IndexError {
        line,
        message: message.into(),
    }
}

/// Decode a 64-digit hex SHA-256.
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let h = (b[2 * i] as char).to_digit(16)?;
        let l = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (h * 16 + l) as u8;
    }
    Some(out)
}

fn package_from(p: &Paragraph, need_download: bool) -> Result<Package, IndexError> {
    let req = |name: &str| {
        p.get(name)
            .ok_or_else(|| err(p.line, format!("missing field {name}")))
    };
    let at = |name: &str| p.line_of(name);
    let name = PackageName::new(req("Package")?).map_err(|e| err(at("Package"), e.message))?;
    let ctx = |field: &str, m: String| err(at(field), format!("{name}: {field}: {m}"));
    let version = Version::parse(req("Version")?).map_err(|e| ctx("Version", e.to_string()))?;
    let architecture = req("Architecture")?.to_string();
    if !relation::valid_arch(&architecture) {
        return Err(ctx("Architecture", format!("invalid `{architecture}`")));
    }
    let multi_arch = match p.get("Multi-Arch") {
        None | Some("no") => MultiArch::No,
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        Some(o) => return Err(ctx("Multi-Arch", format!("invalid `{o}`"))),
    };
    let essential = p.get("Essential") == Some("yes");
    let rel = |field: &str| -> Result<Vec<Relation>, IndexError> {
        match p.get(field) {
            None => Ok(Vec::new()),
            Some(v) => relation::parse_relations(v).map_err(|e| ctx(field, e.to_string())),
        }
    };
    let provides = match p.get("Provides") {
        None => Vec::new(),
        Some(v) => relation::parse_provides(v).map_err(|e| ctx("Provides", e.to_string()))?,
    };
    let num = |field: &str| -> Result<Option<u64>, IndexError> {
        p.get(field)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ctx(field, format!("not a number: `{v}`")))
            })
            .transpose()
    };
    let depends = rel("Depends")?;
    let pre_depends = rel("Pre-Depends")?;
    let recommends = rel("Recommends")?;
    let conflicts = rel("Conflicts")?;
    let breaks = rel("Breaks")?;
    let replaces = rel("Replaces")?;
    let download = if need_download {
        let filename = PoolPath::new(req("Filename")?).map_err(|m| ctx("Filename", m))?;
        let size = num("Size")?.ok_or_else(|| ctx("Size", "missing".into()))?;
        let sha = req("SHA256")?;
        let sha256 = parse_sha256(sha).ok_or_else(|| ctx("SHA256", format!("invalid `{sha}`")))?;
        Some(Download {
            filename,
            size,
            sha256,
        })
    } else {
        None
    };
    Ok(Package {
        version,
        architecture,
        multi_arch,
        essential,
        priority: p.get("Priority").map(str::to_string),
        depends,
        pre_depends,
        recommends,
        provides,
        conflicts,
        breaks,
        replaces,
        download,
        installed_size: num("Installed-Size")?,
        name,
    })
}

/// Parse a (decompressed) `Packages` index. Every record must have
/// `Filename`, `Size` and `SHA256`.
pub fn parse_packages(text: &str) -> Result<Vec<Package>, IndexError> {
    let mut out = Vec::new();
    for p in control::paragraphs(text) {
        let p = p.map_err(|e| err(e.line, e.message))?;
        out.push(package_from(&p, true)?);
    }
    Ok(out)
}

/// Parse a package's own `control` file (the `control` member of its control
/// archive): one paragraph, with no download fields.
pub fn parse_control(text: &str) -> Result<Package, IndexError> {
    let mut all = control::paragraphs(text);
    let p = match all.next() {
        Some(p) => p.map_err(|e| err(e.line, e.message))?,
        None => return Err(err(1, "an empty control file")),
    };
    if all.next().is_some() {
        return Err(err(p.line, "a control file holds one paragraph"));
    }
    package_from(&p, false)
}

/// Parse `/var/lib/dpkg/status`, keeping only installed packages: `Status`
/// with flag `ok` and state `installed` (the want word may be `install`,
/// `hold`, `deinstall` or `purge`: the files are on disk either way).
/// `half-installed`, `unpacked`, `config-files`, `not-installed`, and any
/// `reinstreq` flag count as not installed.
pub fn parse_status(text: &str) -> Result<Vec<Package>, IndexError> {
    let mut out = Vec::new();
    for p in control::paragraphs(text) {
        let p = p.map_err(|e| err(e.line, e.message))?;
        let status: Vec<&str> = p.get("Status").unwrap_or("").split_whitespace().collect();
        if status.len() != 3 {
            return Err(err(p.line_of("Status"), "Status must have three words"));
        }
        if status[1] != "ok" || status[2] != "installed" {
            continue;
        }
        out.push(package_from(&p, false)?);
    }
    Ok(out)
}
