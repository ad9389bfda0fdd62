//! Role software, baked in: each role's `packages:` resolved against the base image's
//! own apt setup at build time, fetched once into a shared cache, recorded in
//! `pibake.lock`, and installed on first boot with no network.
//!
//! The flow: [`resolve`] reads the lock; roles whose `packages:` changed since (or that
//! `--update-packages` names) are resolved again against the image's sources, keys and
//! installed set ([`image`], [`indices`], `pibake_apt::resolve`); every other role keeps
//! its locked set without any index being read. [`Resolved::fetch`] then makes each
//! `.deb` present in the content-addressed [`cache::Store`], where one file serves every
//! node and every cluster. Applying writes a node's own closure into its image (see
//! `bake::apply`); nothing of the target runs on the build machine.

pub mod cache;
pub mod fetch;
mod image;
mod indices;
pub mod lock;
pub mod unpack;

use std::collections::BTreeMap;
use std::path::Path;

use pibake_apt::{PackageName, PackageRequest, ResolveInput};
use pibake_ext4::Ext4;
use pibake_image::digest::Sha256;
use pibake_image::partition::Layout;
use pibake_image::region::Region;

use crate::error::{Error, Result};
use crate::inventory::Inventory;
pub use lock::{Lock, Locked, RoleLock};

/// What `--update-packages` asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Update {
    /// Keep every role's locked set (roles whose `packages:` changed are resolved anyway).
    #[default]
    Nothing,
    /// Resolve every role again.
    All,
    /// Resolve again the roles whose set holds one of these packages.
    Named(Vec<PackageName>),
}

/// How packages are obtained.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Use the cache alone; any file not in it is an error.
    pub offline: bool,
    /// Which locked sets to resolve again.
    pub update: Update,
    /// Show progress bars (only on a terminal).
    pub progress: bool,
    /// `--locked`: fail rather than change pibake.lock.
    pub locked: bool,
}

/// Every role's package set for this build, and how it differs from the lock.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// The lock as it will be after this build.
    pub lock: Lock,
    /// Role -> what changed against the lock on disk (empty lines: nothing).
    pub changes: BTreeMap<String, Vec<String>>,
    /// Whether [`Resolved::lock`] differs from the file on disk.
    pub lock_changed: bool,
    /// Whether the base's installed set differs from the one the lock was resolved
    /// against, so that every role was resolved again.
    pub base_changed: bool,
    /// Roles in the lock on disk that no longer ask for packages (their entry goes),
    /// with the lines of what the lock drops.
    pub removed: BTreeMap<String, Vec<String>>,
}

/// Said by `plan` and `build` when the base's installed set changed under the lock.
pub const BASE_CHANGED: &str = "the base image's installed packages differ from those pibake.lock was resolved against: every role is resolved again";

impl Resolved {
    /// Gives every plan its role's closure: the one place packages join plans, for
    /// `build` and `plan` alike.
    pub fn attach(&self, plans: &mut [crate::plan::Plan]) {
        for p in plans {
            p.packages = self.for_role(&p.role).to_vec();
        }
    }

    /// The closure one role's nodes get (empty when the role asks for no packages).
    pub fn for_role(&self, role: &str) -> &[Locked] {
        self.lock
            .roles
            .get(role)
            .map_or(&[], |r| r.packages.as_slice())
    }

    /// Makes every `.deb` of the lock present and verified in the cache.
    pub fn fetch(
        &self,
        inv: &Inventory,
        cache_dir: &Path,
        settings: &Settings,
    ) -> Result<cache::Fetched> {
        let mut wanted: BTreeMap<Sha256, cache::Wanted> = BTreeMap::new();
        for p in self.lock.roles.values().flat_map(|r| &r.packages) {
            wanted.entry(p.sha256).or_insert_with(|| cache::Wanted {
                name: p.label(),
                url: p.url.clone(),
                sha256: p.sha256,
                size: p.size,
            });
        }
        let wanted: Vec<cache::Wanted> = wanted.into_values().collect();
        let fetcher = fetch::Fetcher::new(&inv.file.apt.mirrors, settings.offline);
        cache::Store::new(cache_dir).ensure(&wanted, &fetcher, 4, settings.progress)
    }
}

/// Why a role's locked set does not hold what its requests ask for, if it does not (an
/// entry emptied, truncated or edited): each request must be in the set, or installed
/// in the base, at its pinned version and architecture.
fn uncovered(l: &RoleLock, base: &[pibake_apt::Package]) -> Option<String> {
    l.requests.iter().find_map(|text| {
        let Ok(r) = text.parse::<PackageRequest>() else {
            return Some(format!(
                "pibake.lock's request `{text}` is not a package request"
            ));
        };
        let fits = |name: &PackageName, version: &pibake_apt::Version, arch: &str| {
            *name == r.name
                && r.version.as_ref().is_none_or(|v| v == version)
                && r.arch.as_deref().is_none_or(|a| a == arch)
        };
        let locked = l
            .packages
            .iter()
            .any(|p| fits(&p.name, &p.version, &p.architecture));
        let in_base = base
            .iter()
            .any(|p| fits(&p.name, &p.version, &p.architecture));
        (!locked && !in_base)
            .then(|| format!("pibake.lock's set lacks `{text}`, which it asks for"))
    })
}

/// `--locked`: the lock must hold as it is; say which role would change, and why.
fn refuse_unlocked(
    why: &BTreeMap<&String, String>,
    old: &Lock,
    roles: &BTreeMap<String, Request>,
) -> Result<()> {
    let mut lines: Vec<String> = why
        .iter()
        .map(|(role, w)| format!("role {role}: {w}"))
        .collect();
    lines.extend(
        old.roles
            .keys()
            .filter(|r| !roles.contains_key(*r))
            .map(|r| format!("role {r}: asks for no packages now, and pibake.lock has an entry")),
    );
    if lines.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "--locked: pibake.lock would change:\n  {}",
        lines.join("\n  ")
    ))
    .with_hint("build without --locked to resolve and write pibake.lock, review it, and commit it"))
}

/// What a role asks of the resolver: the lock holds while all of it is unchanged.
struct Request {
    /// Its `packages:`, sorted as the lock keeps them.
    packages: Vec<String>,
    /// Its `install_recommends:` (None: the base's apt setting).
    recommends: Option<bool>,
}

/// Roles that ask for `packages:`, with what they ask.
fn wanted_roles(inv: &Inventory) -> BTreeMap<String, Request> {
    inv.profiles
        .iter()
        .filter(|(_, p)| !p.def.packages.is_empty())
        .map(|(role, p)| {
            let mut packages = p.def.packages.clone();
            packages.sort();
            packages.dedup();
            let recommends = p.def.install_recommends;
            (
                role.clone(),
                Request {
                    packages,
                    recommends,
                },
            )
        })
        .collect()
}

/// How a recommends policy reads in a message.
fn policy(recommends: Option<bool>) -> &'static str {
    match recommends {
        None => "the base's apt setting",
        Some(true) => "true",
        Some(false) => "false",
    }
}

/// Each role's packages: the lock's where it holds, resolved again where it does not.
/// Reads the base image (read-only) and the network only when something must be
/// resolved; `write_lock` records the result in `pibake.lock` (a plan only shows it).
pub fn resolve(
    inv: &Inventory,
    base_raw: &Path,
    cache_dir: &Path,
    settings: &Settings,
    write_lock: bool,
) -> Result<Resolved> {
    let path = Lock::path(&inv.dir);
    let old = Lock::read(&path)?;
    let roles = wanted_roles(inv);
    let (installed, base_set) = if roles.is_empty() {
        (None, Vec::new())
    } else {
        let root = open_root(base_raw)?;
        (
            Some(image::installed_sha256(&root)?),
            image::installed(&root)?,
        )
    };
    let base_changed = matches!((old.installed, installed), (Some(a), Some(b)) if a != b);
    let stale = |role: &str, request: &Request| -> Option<String> {
        let Some(l) = old.roles.get(role) else {
            return Some("pibake.lock has no entry for it".into());
        };
        if base_changed {
            return Some("the base's installed packages changed".into());
        }
        if l.requests != request.packages {
            return Some("its profile's `packages:` changed".into());
        }
        if l.recommends != request.recommends {
            return Some(format!(
                "its profile's `install_recommends:` is {} now, and pibake.lock was resolved with {}",
                policy(request.recommends),
                policy(l.recommends)
            ));
        }
        if let Some(why) = uncovered(l, &base_set) {
            return Some(why);
        }
        match &settings.update {
            Update::Nothing => None,
            Update::All => Some("--update-packages".into()),
            Update::Named(names) => l
                .packages
                .iter()
                .any(|p| names.contains(&p.name))
                .then(|| "--update-packages names one of its packages".into()),
        }
    };
    let why: BTreeMap<&String, String> = roles
        .iter()
        .filter_map(|(role, req)| stale(role, req).map(|w| (role, w)))
        .collect();
    if settings.locked {
        refuse_unlocked(&why, &old, &roles)?;
    }
    let todo: Vec<&String> = why.keys().copied().collect();
    let mut lock = Lock {
        installed,
        roles: BTreeMap::new(),
    };
    for (role, l) in &old.roles {
        if roles.contains_key(role) && !todo.contains(&role) {
            lock.roles.insert(role.clone(), l.clone());
        }
    }
    if !todo.is_empty() {
        let apt = image::ImageApt::read(open_root(base_raw)?)?;
        let fetcher = fetch::Fetcher::new(&inv.file.apt.mirrors, settings.offline);
        let store = cache::Store::new(cache_dir);
        let repos = indices::repositories(&apt, &fetcher, &store, cache_dir)?;
        let uris: BTreeMap<String, &pibake_apt::sources::Uri> = apt
            .sources
            .iter()
            .map(|s| (indices::repository_id(s), &s.uri))
            .collect();
        for role in todo {
            let profile = &inv.profiles[role];
            let requests = profile
                .def
                .packages
                .iter()
                .map(|p| p.parse::<PackageRequest>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::invalid(format!("role {role}: {e}")))?;
            let input = ResolveInput {
                repositories: &repos,
                installed: &apt.installed,
                native_arch: &apt.native_arch,
                install_recommends: profile
                    .def
                    .install_recommends
                    .unwrap_or(apt.config.install_recommends),
            };
            let resolution = pibake_apt::resolve(&requests, input).map_err(|e| {
                let at = profile
                    .sources
                    .iter()
                    .find(|s| s.has("packages"))
                    .unwrap_or(&profile.sources[0]);
                at.error_at("packages", &format!("role {role}: {e}"))
                    .with_hint("check the package names against the image's release; `name=version` pins a version the archive still has")
            })?;
            let packages = resolution
                .packages
                .into_iter()
                .map(|c| {
                    let uri = uris.get(c.repository.as_str()).ok_or_else(|| {
                        Error::invalid(format!("role {role}: no source for {}", c.repository))
                    })?;
                    Ok(Locked {
                        url: uri.join(c.filename.as_str()),
                        name: c.name,
                        version: c.version,
                        architecture: c.architecture,
                        sha256: Sha256(c.sha256),
                        size: c.size,
                        installed_size: c.installed_size.unwrap_or(0) * 1024,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            lock.roles.insert(
                role.clone(),
                RoleLock {
                    requests: roles[role].packages.clone(),
                    recommends: roles[role].recommends,
                    packages,
                },
            );
        }
    }
    let mut changes = BTreeMap::new();
    for (role, r) in &lock.roles {
        changes.insert(role.clone(), lock::diff(old.roles.get(role), r));
    }
    // Roles the lock has but the cluster no longer asks packages for: dropped from it.
    let empty = RoleLock {
        requests: Vec::new(),
        recommends: None,
        packages: Vec::new(),
    };
    let removed = old
        .roles
        .iter()
        .filter(|(role, _)| !lock.roles.contains_key(*role))
        .map(|(role, l)| (role.clone(), lock::diff(Some(l), &empty)))
        .collect();
    let lock_changed = lock != old;
    if write_lock && lock_changed {
        lock.write(&path)?;
    }
    Ok(Resolved {
        lock,
        changes,
        lock_changed,
        base_changed,
        removed,
    })
}

/// The base image's root filesystem, read-only.
pub fn open_root(base_raw: &Path) -> Result<Ext4> {
    let whole = Region::whole(base_raw, false)?;
    let layout = Layout::read(&whole)?;
    let root = layout.root();
    Ok(Ext4::open(whole.sub(root.start, root.size)?)?)
}

/// Free bytes of the base image's root filesystem, before any node's files.
pub fn root_free_bytes(base_raw: &Path) -> Result<u64> {
    let root = open_root(base_raw)?;
    Ok(root.free_blocks() * root.block_size() as u64)
}
