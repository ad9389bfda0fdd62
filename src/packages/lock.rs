//! `pibake.lock`: the exact packages each role's nodes get, beside `cluster.yaml`.
//!
//! A node rebuilt months later must get the software its siblings run, byte for byte,
//! whatever the archive holds by then; so the first build that resolves a role records
//! its closure here (name, version, architecture, SHA-256, size and where it came from),
//! and later builds fetch exactly that, without reading any index. The file is YAML,
//! sorted, with no times in it, so it diffs well and is meant to be committed. Every
//! value read back is parsed into its type (names, versions, digests, URLs): the lock
//! is input like any other, and its values end up in file names and a first-boot script.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use pibake_apt::sources::Uri;
use pibake_apt::{PackageName, Version};
use pibake_image::digest::Sha256;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::inventory::Source;

/// The lock file's name, beside the cluster file.
pub const LOCK_FILE: &str = "pibake.lock";

/// One package of a role's closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// Package name.
    pub name: PackageName,
    /// Exact version.
    pub version: Version,
    /// `arm64`, `armhf` or `all`.
    pub architecture: String,
    /// SHA-256 of the `.deb`, from the verified index.
    pub sha256: Sha256,
    /// Size of the `.deb`.
    pub size: u64,
    /// `Installed-Size`, in bytes.
    pub installed_size: u64,
    /// Where it is fetched from (the image's own source; mirrors rewrite it at fetch time).
    pub url: String,
}

impl Locked {
    /// The file name the `.deb` gets in the image (`name_version_arch.deb`, the epoch's
    /// colon written `%3a` as apt writes it in its cache).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.as_str().replace(':', "%3a"),
            self.architecture
        )
    }

    /// `name version arch`, for messages.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.name, self.version, self.architecture)
    }
}

/// Plans and manifests show a package as the lock writes it.
impl Serialize for Locked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        PackageText::from(self).serialize(s)
    }
}

impl From<&Locked> for PackageText {
    fn from(p: &Locked) -> Self {
        PackageText {
            name: p.name.to_string(),
            version: p.version.to_string(),
            architecture: p.architecture.clone(),
            sha256: p.sha256.to_string(),
            size: p.size,
            installed_size: p.installed_size,
            url: p.url.clone(),
        }
    }
}

/// One role's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLock {
    /// The profile's `packages:` as written, sorted: the lock holds while they are unchanged.
    pub requests: Vec<String>,
    /// The profile's `install_recommends:` the closure was resolved with (None: the
    /// base's apt setting): turning recommends on or off changes the closure, so the
    /// lock holds only while it is unchanged too.
    pub recommends: Option<bool>,
    /// The closure, dependencies first (the order first boot installs in).
    pub packages: Vec<Locked>,
}

/// The whole lock: role name -> its packages, and what the base had installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// SHA-256 of the base's `/var/lib/dpkg/status` the roles were resolved against: a
    /// closure resolved against one installed set may not install on another (a newer
    /// base with newer libraries), so a base whose status differs resolves every role
    /// again. None in locks written before it was recorded (kept as they are).
    pub installed: Option<Sha256>,
    /// Per role.
    pub roles: BTreeMap<String, RoleLock>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockText {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    installed_sha256: Option<String>,
    roles: BTreeMap<String, RoleText>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleText {
    requests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    install_recommends: Option<bool>,
    packages: Vec<PackageText>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageText {
    name: String,
    version: String,
    architecture: String,
    sha256: String,
    size: u64,
    installed_size: u64,
    url: String,
}

const HEADER: &str = "# pibake.lock: the exact packages each role's nodes get. Written by pibake; commit it.\n# Builds use it unchanged; `pibake build --update-packages [NAME,...]` resolves again.\n";

impl Lock {
    /// The lock beside `cluster_dir`'s cluster file.
    pub fn path(cluster_dir: &Path) -> PathBuf {
        cluster_dir.join(LOCK_FILE)
    }

    /// Reads the lock; an absent file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock> {
        if !path.exists() {
            return Ok(Lock::default());
        }
        let source = Source::read(path)?;
        let text: LockText = source.parse()?;
        if text.version != 1 {
            return Err(source
                .error_at(
                    "version",
                    &format!(
                        "lock format {} is not one this pibake reads (1)",
                        text.version
                    ),
                )
                .with_hint(
                    "build with the pibake that wrote it, or delete the file to resolve again",
                ));
        }
        let installed = text
            .installed_sha256
            .map(|t| {
                t.parse::<Sha256>().map_err(|e| {
                    source
                        .error_at("installed_sha256", &e.to_string())
                        .with_hint("the lock is written by pibake; delete the line to keep the lock, or the file to resolve again")
                })
            })
            .transpose()?;
        let mut roles = BTreeMap::new();
        for (role, r) in text.roles {
            let mut packages = Vec::new();
            for (i, p) in r.packages.into_iter().enumerate() {
                let at = |field: &str, what: String| {
                    source
                        .error_at(&format!("roles.{role}.packages.{i}.{field}"), &what)
                        .with_hint("the lock is written by pibake; delete the role's entry (or the file) and build with --update-packages to record it again")
                };
                let name = PackageName::new(&p.name).map_err(|e| at("name", e.to_string()))?;
                let version =
                    Version::parse(&p.version).map_err(|e| at("version", e.to_string()))?;
                if !pibake_apt::relation::valid_arch(&p.architecture) {
                    return Err(at(
                        "architecture",
                        format!("`{}` is not an architecture", p.architecture),
                    ));
                }
                let sha256 = p
                    .sha256
                    .parse::<Sha256>()
                    .map_err(|e| at("sha256", e.to_string()))?;
                let url = Uri::new(&p.url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| at("url", format!("`{}` is not an http(s) URL", p.url)))?;
                packages.push(Locked {
                    name,
                    version,
                    architecture: p.architecture,
                    sha256,
                    size: p.size,
                    installed_size: p.installed_size,
                    url: url.as_str().to_string(),
                });
            }
            let mut requests = r.requests;
            requests.sort();
            roles.insert(
                role,
                RoleLock {
                    requests,
                    recommends: r.install_recommends,
                    packages,
                },
            );
        }
        Ok(Lock { installed, roles })
    }

    /// The lock as its file's text.
    pub fn to_text(&self) -> Result<String> {
        let text = LockText {
            version: 1,
            installed_sha256: self.installed.map(|d| d.to_string()),
            roles: self
                .roles
                .iter()
                .map(|(role, r)| {
                    let packages = r.packages.iter().map(PackageText::from).collect();
                    (
                        role.clone(),
                        RoleText {
                            requests: r.requests.clone(),
                            install_recommends: r.recommends,
                            packages,
                        },
                    )
                })
                .collect(),
        };
        let body = serde_norway::to_string(&text)
            .map_err(|e| Error::invalid(format!("{LOCK_FILE}: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Writes the lock atomically (a temporary file renamed over the old one).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("lock.part");
        std::fs::write(&tmp, self.to_text()?).at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)
    }
}

/// What changes between two versions of a role's set, one line each (`+ name version`,
/// `- name version`, `~ name old -> new`); empty when nothing does.
pub fn diff(old: Option<&RoleLock>, new: &RoleLock) -> Vec<String> {
    let by_name = |r: Option<&RoleLock>| -> BTreeMap<String, String> {
        r.map(|r| {
            r.packages
                .iter()
                .map(|p| {
                    (
                        format!("{}:{}", p.name, p.architecture),
                        p.version.to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let (a, b) = (by_name(old), by_name(Some(new)));
    let mut out = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => out.push(format!("+ {k} {v}")),
            Some(o) if o != v => out.push(format!("~ {k} {o} -> {v}")),
            Some(_) => {}
        }
    }
    for (k, v) in &a {
        if !b.contains_key(k) {
            out.push(format!("- {k} {v}"));
        }
    }
    out
}

/// A size in human units (`1.4 MiB`).
pub fn size(bytes: u64) -> String {
    let mut s = String::new();
    let b = bytes as f64;
    let _ = if bytes >= 1 << 30 {
        write!(s, "{:.1} GiB", b / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        write!(s, "{:.1} MiB", b / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        write!(s, "{:.0} KiB", b / 1024.0)
    } else {
        write!(s, "{bytes} B")
    };
    s
}
