//! The base image's own apt setup, read from its root filesystem: never the build
//! machine's.
//!
//! What the image trusts and where it installs from decides what a node can install:
//! its sources (`sources.list`, `sources.list.d/*.list` and deb822 `*.sources`), the
//! keyrings they name or that apt trusts by default, the architecture dpkg was built
//! for, the installed set, and the `apt.conf.d` settings that change resolution.

use pibake_apt::{AptConfig, Keyring, Package, Source, parse_sources, parse_status};
use pibake_ext4::{Ext4, Kind};

use crate::error::{Error, Result};

/// Where apt reads trusted keys when a source names none (`/etc/apt/trusted.gpg` too).
const TRUSTED_DIR: &str = "/etc/apt/trusted.gpg.d";
const STATUS: &str = "/var/lib/dpkg/status";

/// Everything of the image's apt setup that resolution needs.
pub struct ImageApt {
    /// Every `deb` entry, in the order apt reads them.
    pub sources: Vec<Source>,
    /// The installed packages (`/var/lib/dpkg/status`).
    pub installed: Vec<Package>,
    /// dpkg's native architecture: that of the installed `dpkg` package.
    pub native_arch: String,
    /// `APT::Install-Recommends` and friends.
    pub config: AptConfig,
    /// The root filesystem, kept for reading keyrings on demand.
    root: Ext4,
}

impl ImageApt {
    /// Reads the apt setup of the root filesystem `root`.
    pub fn read(root: Ext4) -> Result<ImageApt> {
        let at = |file: &str, e: &dyn std::fmt::Display| {
            Error::invalid(format!("the base image's {file}: {e}"))
        };
        let mut sources = Vec::new();
        let mut files = Vec::new();
        if root.exists("/etc/apt/sources.list")? {
            files.push("/etc/apt/sources.list".to_string());
        }
        files.extend(
            names_in(&root, "/etc/apt/sources.list.d")?
                .into_iter()
                .filter(|n| n.ends_with(".list") || n.ends_with(".sources"))
                .map(|n| format!("/etc/apt/sources.list.d/{n}")),
        );
        for f in &files {
            let text = text_of(&root, f)?;
            sources.extend(parse_sources(f, &text).map_err(|e| at(f, &e))?);
        }
        let installed = installed(&root)?;
        let native_arch = installed
            .iter()
            .find(|p| p.name.as_str() == "dpkg")
            .map(|p| p.architecture.clone())
            .ok_or_else(|| {
                at(
                    STATUS,
                    &"no installed `dpkg` package to take the native architecture from",
                )
            })?;
        let mut conf = Vec::new();
        for n in names_in(&root, "/etc/apt/apt.conf.d")? {
            // apt's own rule for the files it reads there.
            if n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                && !n.ends_with(".disabled")
                && !n.ends_with(".dpkg-old")
            {
                let f = format!("/etc/apt/apt.conf.d/{n}");
                conf.push((f.clone(), text_of(&root, &f)?));
            }
        }
        if root.exists("/etc/apt/apt.conf")? {
            conf.push((
                "/etc/apt/apt.conf".into(),
                text_of(&root, "/etc/apt/apt.conf")?,
            ));
        }
        let config = AptConfig::from_files(conf.iter().map(|(f, t)| (f.as_str(), t.as_str())))
            .map_err(|e| at("apt configuration", &e))?;
        Ok(ImageApt {
            sources,
            installed,
            native_arch,
            config,
            root,
        })
    }

    /// The keyrings that may sign `source`'s InRelease: its `signed-by` file or key, or
    /// apt's default trusted keys (narrowed to the fingerprints `signed-by` lists).
    pub fn keyrings(&self, source: &Source) -> Result<Vec<Keyring>> {
        use pibake_apt::sources::SignedBy;
        let named = |path: &str| -> Result<Keyring> {
            let bytes = self.root.read(path).map_err(|e| {
                Error::invalid(format!(
                    "{}:{}: the keyring `{path}` it names: {e}",
                    source.file, source.line
                ))
            })?;
            Keyring::from_bytes(&bytes).map_err(|e| {
                Error::invalid(format!("{}:{}: `{path}`: {e}", source.file, source.line))
            })
        };
        Ok(match &source.signed_by {
            Some(SignedBy::Path(p)) => vec![named(p)?],
            Some(SignedBy::Inline(bytes)) => vec![Keyring::from_bytes(bytes).map_err(|e| {
                Error::invalid(format!(
                    "{}:{}: the inline Signed-By key: {e}",
                    source.file, source.line
                ))
            })?],
            Some(SignedBy::Fingerprints(f)) => self
                .default_keyrings()?
                .iter()
                .map(|k| k.filter(f))
                .collect(),
            None => self.default_keyrings()?,
        })
    }

    /// `/etc/apt/trusted.gpg` and `/etc/apt/trusted.gpg.d/*.{gpg,asc}`; unreadable keys
    /// are skipped, as apt skips them.
    fn default_keyrings(&self) -> Result<Vec<Keyring>> {
        let mut paths = Vec::new();
        if self.root.exists("/etc/apt/trusted.gpg")? {
            paths.push("/etc/apt/trusted.gpg".to_string());
        }
        for n in names_in(&self.root, TRUSTED_DIR)? {
            if n.ends_with(".gpg") || n.ends_with(".asc") {
                paths.push(format!("{TRUSTED_DIR}/{n}"));
            }
        }
        let mut rings = Vec::new();
        for p in paths {
            if let Ok(k) = Keyring::from_bytes(&self.root.read(&p)?) {
                rings.push(k);
            }
        }
        Ok(rings)
    }
}

/// Names of the regular files (or links) in a directory of the image, sorted; none when
/// the directory does not exist.
fn names_in(root: &Ext4, dir: &str) -> Result<Vec<String>> {
    if !root.exists(dir)? {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = root
        .read_dir(dir)?
        .into_iter()
        .filter(|e| !matches!(e.kind, Some(Kind::Dir)) && e.name != "." && e.name != "..")
        .map(|e| e.name)
        .collect();
    names.sort();
    Ok(names)
}

/// SHA-256 of the base's `/var/lib/dpkg/status`: what a lock's closures were resolved
/// against (see `lock::Lock::installed`).
pub fn installed_sha256(root: &Ext4) -> Result<pibake_image::digest::Sha256> {
    Ok(pibake_image::digest::Sha256::of(status(root)?.as_bytes()))
}

/// The packages the base has installed (`/var/lib/dpkg/status`).
pub fn installed(root: &Ext4) -> Result<Vec<Package>> {
    parse_status(&status(root)?)
        .map_err(|e| Error::invalid(format!("the base image's {STATUS}: {e}")))
}

/// The base's dpkg status, refused with what to do instead when the base has none (a
/// base that is not Debian's, or the demo's synthesized one).
fn status(root: &Ext4) -> Result<String> {
    if !root.exists(STATUS)? {
        return Err(Error::invalid(format!(
            "the base image has no {STATUS}: it is not a Debian-based image, so pibake cannot resolve `packages:` against it"
        ))
        .with_hint("use a Raspberry Pi OS image, or install the packages from the network on first boot instead (`packages_online:` in the profile, or `--online-packages`)"));
    }
    text_of(root, STATUS)
}

fn text_of(root: &Ext4, path: &str) -> Result<String> {
    String::from_utf8(root.read(path)?)
        .map_err(|_| Error::invalid(format!("the base image's {path} is not UTF-8 text")))
}
