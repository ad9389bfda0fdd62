//! The closure of a package request list, as `apt-get install` would
//! compute it, without running anything.
//!
//! # Inputs
//! - the candidate universe: parsed `Packages` indices of several
//!   [`Repository`]s, in priority order;
//! - the installed set (parsed `/var/lib/dpkg/status`);
//! - the native architecture and `APT::Install-Recommends`.
//!
//! # Rules
//! - **Candidate**: for each (name, architecture) the candidate is the
//!   highest version in the universe; ties go to the earlier repository, then
//!   the earlier record. A request `name=version` pins that exact version.
//!   As in apt (installed priority 100 < archive 500 only matters for equal
//!   versions), an installed version at least as high as the archive's is the
//!   candidate and nothing is fetched. Only the candidate version of a
//!   package is ever considered for a dependency: if it does not satisfy a
//!   versioned dependency, the dependency fails, as in apt (apt pinning
//!   preferences are not modelled).
//! - **Architectures**: packages of architecture `all` count as native. A
//!   dependency of a package of architecture A (requests are native unless
//!   `name:arch`) is satisfied by a package of architecture A, or of any
//!   architecture if it is `Multi-Arch: foreign`. `pkg:any` is satisfied only
//!   by `Multi-Arch: allowed` packages (any architecture); `pkg:native` only
//!   by native ones; `pkg:armhf` only by armhf ones. `Multi-Arch: same`
//!   needs nothing special (same-architecture satisfaction).
//! - **Relations**: `Pre-Depends` and `Depends` must be satisfied;
//!   `Recommends` are followed when enabled, and an unsatisfiable Recommends
//!   is skipped (listed in [`Resolution::skipped_recommends`]), not an error.
//!   Suggests are never followed.
//! - **Alternatives** (`a | b`): first, if any alternative is already
//!   satisfied by an installed package (not being replaced), nothing is done;
//!   then if any is satisfied by a package already chosen, that one is used;
//!   otherwise the alternatives are tried in order, each first as a real
//!   package (its candidate) and then through providers.
//! - **Virtual packages**: a `Provides` satisfies an unversioned
//!   dependency; a versioned dependency only through a versioned provide
//!   (`Provides: foo (= 1.2)`) whose version satisfies it. Among several
//!   candidate providers the one with the highest `Priority` wins, then the
//!   name. Requesting a virtual package works when exactly one package
//!   provides it (apt's "selecting X instead of Y").
//! - **Installed packages**: an installed package satisfying a relation
//!   means nothing is fetched (and its own dependencies are assumed
//!   satisfied, since dpkg keeps the status consistent). An installed
//!   package at a version that does not satisfy the relation needs an
//!   upgrade: its candidate is chosen and marked with
//!   [`ChosenPackage::upgrade_from`]. Essential packages are never added on
//!   their own (they are assumed installed when present in status, and
//!   packages do not declare dependencies on them).
//! - **Conflicts / Breaks** are checked between every chosen package and
//!   every other chosen or still-installed package (by name and by
//!   provides), declared by either side. A hit between two chosen packages
//!   is an error naming both ([`ResolveError::Conflict`]). A hit between a
//!   chosen package P and an installed package Q is resolved as apt resolves
//!   it, by removing Q, when all of these hold:
//!   - P `Replaces` Q: by Q's name with a version Q's satisfies (dpkg's own
//!     test), or by a virtual name Q provides (unversioned, or versioned
//!     through a versioned `Provides`), which is Policy's `Conflicts` +
//!     `Replaces` + `Provides` idiom (`chrony` and `systemd-timesyncd` over
//!     `time-daemon`);
//!   - Q is neither `Essential: yes` nor `Priority: required`;
//!   - no installed package that stays and no chosen package has a
//!     `Pre-Depends`/`Depends` relation that Q meets and nothing else does
//!     (another alternative, another installed or chosen package, or P's
//!     own `Provides`, all count).
//!
//!   Q is then listed in [`Resolution::removes`] with the first such P, and
//!   every other hit on Q (from other chosen packages too) goes with it. A
//!   hit on an installed package that no chosen package replaces is a
//!   [`ResolveError::Conflict`] as before; a removal refused by the other
//!   two conditions is a [`ResolveError::Unremovable`] that says why.
//!
//! # Order
//! Requests are chosen first (so a pin wins over a dependency), then
//! dependencies are expanded breadth-first in choice order, which makes the
//! dependency chains in errors the shortest ones. The result lists every
//! package after the packages its `Pre-Depends`/`Depends` were satisfied by
//! (a depth-first post-order in choice order); a dependency cycle is broken
//! at the edge that closes it. This is safe because the app hands all the
//! packages to a single `dpkg -i` call, and dpkg unpacks everything before
//! configuring and resolves cycles itself.
//!
//! # Limits
//! No backtracking: an alternative chosen early is kept even if a later
//! relation would have needed a different one, and a conflict is reported
//! instead of searching for another solution. The only removals are those
//! above: an installed package a chosen one conflicts with or breaks,
//! replaces, and that nothing left needs. apt's own resolver does more (it
//! may remove conflicting packages without `Replaces`, remove the packages
//! that depend on a removed one, or try other alternatives to fix a broken
//! state); pibake refuses those instead of removing more than a role's
//! packages replace.

use std::collections::HashMap;
use std::fmt;

use crate::index::{MultiArch, Package, PoolPath};
use crate::relation::{ArchQual, Atom, PackageName, PackageRequest, Relation};
use crate::version::Version;

/// One repository's packages (all its parsed `Packages` indices).
#[derive(Debug, Clone)]
pub struct Repository {
    /// An identifier for reports (e.g. `http://deb.debian.org/debian bookworm`).
    pub id: String,
    /// The packages.
    pub packages: Vec<Package>,
}

/// Everything the resolver reads besides the request list.
#[derive(Debug, Clone, Copy)]
pub struct ResolveInput<'a> {
    /// Repositories, in priority order (earlier wins ties).
    pub repositories: &'a [Repository],
    /// Installed packages (from the image's dpkg status).
    pub installed: &'a [Package],
    /// Native architecture (`arm64`, `armhf`).
    pub native_arch: &'a str,
    /// `APT::Install-Recommends`.
    pub install_recommends: bool,
}

/// A package to download and install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenPackage {
    /// Package name.
    pub name: PackageName,
    /// Version.
    pub version: Version,
    /// Architecture as in the index (`arm64`, `all`, ...).
    pub architecture: String,
    /// Pool path relative to the repository URI.
    pub filename: PoolPath,
    /// Size of the `.deb`.
    pub size: u64,
    /// SHA-256 of the `.deb`.
    pub sha256: [u8; 32],
    /// Installed size in KiB.
    pub installed_size: Option<u64>,
    /// [`Repository::id`] of the repository it comes from.
    pub repository: String,
    /// Installed version this replaces, for an upgrade.
    pub upgrade_from: Option<Version>,
    /// Chain of packages that needed it (`[apache2, apache2-bin]`); empty for a request.
    pub needed_by: Vec<String>,
}

/// The resolver's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Packages to fetch, dependencies first.
    pub packages: Vec<ChosenPackage>,
    /// Requests already satisfied by the installed set.
    pub already_installed: Vec<String>,
    /// Recommends that could not be satisfied and were skipped (`pkg: relation`).
    pub skipped_recommends: Vec<String>,
    /// Installed packages apt removes to install [`Resolution::packages`], in the
    /// order their conflicts were found.
    pub removes: Vec<Removal>,
}

/// An installed package that a chosen one conflicts with (or breaks) and replaces,
/// which apt removes when it installs the chosen one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The installed package.
    pub name: PackageName,
    /// Its installed version.
    pub version: Version,
    /// The chosen package it makes way for.
    pub by: PackageName,
}

/// Why no closure could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No candidate satisfies a relation (or a request).
    Unsatisfiable {
        /// Packages leading to the relation, starting with the requested one.
        chain: Vec<String>,
        /// The relation (or request) text.
        relation: String,
        /// Versions that exist, for the message.
        available: String,
    },
    /// A virtual package was requested and several packages provide it.
    AmbiguousVirtual {
        /// The request.
        request: String,
        /// Candidate providers.
        providers: Vec<String>,
    },
    /// Two packages of the result (or result and installed set) conflict.
    Conflict {
        /// `name version` of the package declaring the relation.
        package: String,
        /// `Conflicts` or `Breaks`.
        kind: &'static str,
        /// The relation.
        relation: String,
        /// `name version` of the other package.
        other: String,
        /// Whether `other` is installed (rather than chosen).
        other_installed: bool,
    },
    /// A conflict with an installed package that a chosen package replaces, which
    /// apt would resolve by removing the installed one, but that cannot go.
    Unremovable {
        /// The conflict, as [`ResolveError::Conflict`].
        conflict: Box<ResolveError>,
        /// Name of the installed package.
        removed: String,
        /// Why it cannot be removed.
        why: String,
    },
    /// A chosen package has no download information (not from a Packages index).
    NoDownload(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Unsatisfiable {
                chain,
                relation,
                available,
            } => {
                for c in chain {
                    write!(f, "{c} -> ")?;
                }
                write!(
                    f,
                    "{relation}: no candidate satisfies `{relation}`; available: {available}"
                )
            }
            ResolveError::AmbiguousVirtual { request, providers } => write!(
                f,
                "`{request}` is a virtual package provided by {}; request one of them",
                providers.join(", ")
            ),
            ResolveError::Conflict {
                package,
                kind,
                relation,
                other,
                other_installed,
            } => write!(
                f,
                "`{package}` {} `{other}`{} ({kind}: {relation})",
                if *kind == "Breaks" {
                    "breaks"
                } else {
                    "conflicts with"
                },
                if *other_installed { " (installed)" } else { "" }
            ),
            ResolveError::Unremovable {
                conflict,
                removed,
                why,
            } => write!(f, "{conflict}; `{removed}` cannot be removed for it: {why}"),
            ResolveError::NoDownload(p) => write!(f, "{p}: no Filename/Size/SHA256 in its index"),
        }
    }
}

type PkgRef = (usize, usize);

/// A `Conflicts`/`Breaks` hit between a chosen package and an installed one, which
/// removing the installed one may resolve.
struct Hit<'a> {
    chosen: &'a Package,
    installed: &'a Package,
    /// What is reported when the removal does not resolve it.
    conflict: ResolveError,
}

impl Hit<'_> {
    /// The error for a removal of `q` this hit would need that cannot be.
    fn unremovable(&self, q: &Package, why: String) -> ResolveError {
        ResolveError::Unremovable {
            conflict: Box::new(self.conflict.clone()),
            removed: q.name.to_string(),
            why,
        }
    }
}

/// An installed package the result removes.
struct Removing<'a> {
    installed: &'a Package,
    by: &'a Package,
    /// The [`Hit`] that removes it.
    hit: usize,
}

/// Whether `p` is one of the installed packages being removed.
fn gone(removing: &[Removing<'_>], p: &Package) -> bool {
    removing.iter().any(|r| std::ptr::eq(r.installed, p))
}

/// Whether `atom` of a `Conflicts`, `Breaks` or `Replaces` names `q`: by name with
/// a matching version, or by a name `q` provides (a versioned atom only through a
/// versioned `Provides`, as for dependencies). Architecture does not narrow these
/// relations (dpkg matches them across architectures).
fn matches(atom: &Atom, q: &Package) -> bool {
    (q.name == atom.name && atom.version_matches(&q.version))
        || q.provides.iter().any(|pr| {
            pr.name == atom.name
                && match (&atom.version, &pr.version) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(v)) => atom.version_matches(v),
                }
        })
}

/// Whether `p` declares `Replaces` on `q`. By name with a version `q`'s satisfies is
/// dpkg's own test (`does_replace`); by a virtual name `q` provides is Policy's
/// `Conflicts` + `Replaces` + `Provides` idiom for packages of which only one may be
/// installed (`time-daemon`, `mail-transport-agent`), which apt carries out by
/// removing the installed provider.
fn replaces(p: &Package, q: &Package) -> bool {
    p.replaces
        .iter()
        .flat_map(|r| &r.alternatives)
        .any(|a| matches(a, q))
}

struct Chosen<'a> {
    pkg: &'a Package,
    repo: usize,
    upgrade_from: Option<&'a Version>,
    /// Chain of names leading here, including this package.
    chain: Vec<String>,
    /// Chosen indices this package's Pre-Depends/Depends resolved to.
    deps: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Depends,
    Recommends,
}

struct Resolver<'a> {
    input: ResolveInput<'a>,
    by_name: HashMap<&'a str, Vec<PkgRef>>,
    providers: HashMap<&'a str, Vec<PkgRef>>,
    installed: HashMap<&'a str, Vec<&'a Package>>,
    installed_providers: HashMap<&'a str, Vec<&'a Package>>,
    chosen: Vec<Chosen<'a>>,
    chosen_by_key: HashMap<(&'a str, &'a str), usize>,
    chosen_by_name: HashMap<&'a str, Vec<usize>>,
    chosen_providers: HashMap<&'a str, Vec<usize>>,
    skipped: Vec<String>,
}

fn priority_rank(p: &Package) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

impl<'a> Resolver<'a> {
    fn new(input: ResolveInput<'a>) -> Self {
        let mut by_name: HashMap<&str, Vec<PkgRef>> = HashMap::new();
        let mut providers: HashMap<&str, Vec<PkgRef>> = HashMap::new();
        for (r, repo) in input.repositories.iter().enumerate() {
            for (i, p) in repo.packages.iter().enumerate() {
                by_name.entry(p.name.as_str()).or_default().push((r, i));
                for pr in &p.provides {
                    providers.entry(pr.name.as_str()).or_default().push((r, i));
                }
            }
        }
        let mut installed: HashMap<&str, Vec<&Package>> = HashMap::new();
        let mut installed_providers: HashMap<&str, Vec<&Package>> = HashMap::new();
        for p in input.installed {
            installed.entry(p.name.as_str()).or_default().push(p);
            for pr in &p.provides {
                installed_providers
                    .entry(pr.name.as_str())
                    .or_default()
                    .push(p);
            }
        }
        Resolver {
            input,
            by_name,
            providers,
            installed,
            installed_providers,
            chosen: Vec::new(),
            chosen_by_key: HashMap::new(),
            chosen_by_name: HashMap::new(),
            chosen_providers: HashMap::new(),
            skipped: Vec::new(),
        }
    }

    fn pkg(&self, r: PkgRef) -> &'a Package {
        &self.input.repositories[r.0].packages[r.1]
    }

    /// Architecture with `all` mapped to native.
    fn eff(&self, p: &'a Package) -> &'a str {
        if p.architecture == "all" {
            self.input.native_arch
        } else {
            &p.architecture
        }
    }

    fn arch_ok(&self, atom: &Atom, p: &'a Package, from_arch: &str) -> bool {
        let pa = self.eff(p);
        match &atom.arch {
            None => pa == from_arch || p.multi_arch == MultiArch::Foreign,
            Some(ArchQual::Any) => p.multi_arch == MultiArch::Allowed,
            Some(ArchQual::Native) => pa == self.input.native_arch,
            Some(ArchQual::Arch(a)) => pa == a,
        }
    }

    fn satisfies(&self, atom: &Atom, p: &'a Package, from_arch: &str) -> bool {
        if !self.arch_ok(atom, p, from_arch) {
            return false;
        }
        if p.name == atom.name && atom.version_matches(&p.version) {
            return true;
        }
        p.provides.iter().any(|pr| {
            pr.name == atom.name
                && match (&atom.version, &pr.version) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(v)) => atom.version_matches(v),
                }
        })
    }

    /// The installed package of this name and architecture still present
    /// (not replaced by a chosen upgrade).
    fn installed_of(&self, name: &str, arch: &str) -> Option<&'a Package> {
        self.installed
            .get(name)?
            .iter()
            .copied()
            .find(|p| self.eff(p) == arch)
    }

    fn replaced(&self, p: &'a Package) -> bool {
        self.chosen_by_key
            .contains_key(&(p.name.as_str(), self.eff(p)))
    }

    /// Highest archive version of `name` for `arch` (ties: repository order).
    fn best(&self, name: &str, arch: &str) -> Option<PkgRef> {
        let mut best: Option<PkgRef> = None;
        for &r in self.by_name.get(name)? {
            let p = self.pkg(r);
            if self.eff(p) != arch {
                continue;
            }
            if best.is_none_or(|b| p.version > self.pkg(b).version) {
                best = Some(r);
            }
        }
        best
    }

    /// The archive candidate to fetch for `name`/`arch`, or `None` if there
    /// is none or the installed version is at least as high.
    fn fetch_candidate(&self, name: &str, arch: &str) -> Option<PkgRef> {
        let b = self.best(name, arch)?;
        match self.installed_of(name, arch) {
            Some(i) if i.version >= self.pkg(b).version => None,
            _ => Some(b),
        }
    }

    fn choose(&mut self, r: PkgRef, parent_chain: &[String]) -> usize {
        let p = self.pkg(r);
        let key = (p.name.as_str(), self.eff(p));
        if let Some(&i) = self.chosen_by_key.get(&key) {
            return i;
        }
        let upgrade_from = self.installed_of(key.0, key.1).map(|i| &i.version);
        let idx = self.chosen.len();
        let mut chain = parent_chain.to_vec();
        chain.push(p.name.to_string());
        self.chosen.push(Chosen {
            pkg: p,
            repo: r.0,
            upgrade_from,
            chain,
            deps: Vec::new(),
        });
        self.chosen_by_key.insert(key, idx);
        self.chosen_by_name
            .entry(p.name.as_str())
            .or_default()
            .push(idx);
        for pr in &p.provides {
            self.chosen_providers
                .entry(pr.name.as_str())
                .or_default()
                .push(idx);
        }
        idx
    }

    fn available(&self, rel: &Relation) -> String {
        let one = |atom: &Atom| {
            let mut vs: Vec<&Version> = self
                .by_name
                .get(atom.name.as_str())
                .map(|v| v.iter().map(|&r| &self.pkg(r).version).collect())
                .unwrap_or_default();
            vs.sort_by(|a, b| b.cmp(a));
            vs.dedup_by(|a, b| a.as_str() == b.as_str());
            let mut s: Vec<String> = vs.iter().map(|v| v.to_string()).collect();
            if let Some(list) = self.installed.get(atom.name.as_str()) {
                for i in list {
                    s.push(format!("{} (installed)", i.version));
                }
            }
            if s.is_empty() {
                let mut provs: Vec<String> = self
                    .providers
                    .get(atom.name.as_str())
                    .map(|v| {
                        v.iter()
                            .map(|&r| format!("{} {}", self.pkg(r).name, self.pkg(r).version))
                            .collect()
                    })
                    .unwrap_or_default();
                provs.dedup();
                if provs.is_empty() {
                    "none".to_string()
                } else {
                    format!("none (provided by {})", provs.join(", "))
                }
            } else {
                s.join(", ")
            }
        };
        if rel.alternatives.len() == 1 {
            one(&rel.alternatives[0])
        } else {
            rel.alternatives
                .iter()
                .map(|a| format!("{}: {}", a.name, one(a)))
                .collect::<Vec<_>>()
                .join("; ")
        }
    }

    /// Satisfy one relation of chosen package `from`. Returns the chosen
    /// index that satisfies it, or `None` (installed, or skipped Recommends).
    fn satisfy(
        &mut self,
        from: usize,
        rel: &Relation,
        kind: Kind,
    ) -> Result<Option<usize>, ResolveError> {
        let from_pkg = self.chosen[from].pkg;
        let from_arch = self.eff(from_pkg);
        // 1. Already installed (and not being replaced)?
        for atom in &rel.alternatives {
            let n = atom.name.as_str();
            let inst = self.installed.get(n).into_iter().flatten();
            let prov = self.installed_providers.get(n).into_iter().flatten();
            if inst
                .chain(prov)
                .any(|p| !self.replaced(p) && self.satisfies(atom, p, from_arch))
            {
                return Ok(None);
            }
        }
        // 2. Already chosen?
        for atom in &rel.alternatives {
            let n = atom.name.as_str();
            let direct = self.chosen_by_name.get(n).into_iter().flatten();
            let prov = self.chosen_providers.get(n).into_iter().flatten();
            if let Some(&i) = direct
                .chain(prov)
                .find(|&&i| self.satisfies(atom, self.chosen[i].pkg, from_arch))
            {
                return Ok(Some(i));
            }
        }
        // 3. Try alternatives in order: real package, then providers.
        let native = self.input.native_arch;
        for atom in &rel.alternatives {
            let arches: Vec<&str> = match &atom.arch {
                None => vec![from_arch, native],
                Some(ArchQual::Any) => vec![native, from_arch],
                Some(ArchQual::Native) => vec![native],
                Some(ArchQual::Arch(a)) => vec![a.as_str()],
            };
            for arch in arches {
                if let Some(r) = self.fetch_candidate(atom.name.as_str(), arch)
                    && self.satisfies(atom, self.pkg(r), from_arch)
                {
                    let chain = self.chosen[from].chain.clone();
                    return Ok(Some(self.choose(r, &chain)));
                }
            }
            let mut provs: Vec<PkgRef> = Vec::new();
            for &r in self.providers.get(atom.name.as_str()).into_iter().flatten() {
                let p = self.pkg(r);
                // Only a provider's candidate version counts.
                if self.fetch_candidate(p.name.as_str(), self.eff(p)) == Some(r)
                    && self.satisfies(atom, p, from_arch)
                    && !provs.contains(&r)
                {
                    provs.push(r);
                }
            }
            provs.sort_by(|&a, &b| {
                let (pa, pb) = (self.pkg(a), self.pkg(b));
                priority_rank(pa)
                    .cmp(&priority_rank(pb))
                    .then_with(|| pa.name.cmp(&pb.name))
                    .then_with(|| a.cmp(&b))
            });
            if let Some(&r) = provs.first() {
                let chain = self.chosen[from].chain.clone();
                return Ok(Some(self.choose(r, &chain)));
            }
        }
        if kind == Kind::Recommends {
            self.skipped.push(format!("{}: {rel}", from_pkg.name));
            return Ok(None);
        }
        Err(ResolveError::Unsatisfiable {
            chain: self.chosen[from].chain.clone(),
            relation: rel.to_string(),
            available: self.available(rel),
        })
    }

    fn request(
        &mut self,
        req: &PackageRequest,
        already: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        let native = self.input.native_arch;
        let arch = req.arch.as_deref().unwrap_or(native);
        let name = req.name.as_str();
        let unsat = |s: &Self| ResolveError::Unsatisfiable {
            chain: Vec::new(),
            relation: req.to_string(),
            available: s.available(&Relation {
                alternatives: vec![Atom {
                    name: req.name.clone(),
                    arch: None,
                    version: None,
                    arch_restriction: Vec::new(),
                    profiles: Vec::new(),
                }],
            }),
        };
        if let Some(pin) = &req.version {
            if self
                .installed_of(name, arch)
                .is_some_and(|i| &i.version == pin)
            {
                already.push(req.to_string());
                return Ok(());
            }
            let found = self
                .by_name
                .get(name)
                .into_iter()
                .flatten()
                .copied()
                .find(|&r| {
                    self.eff(self.pkg(r)) == arch && self.pkg(r).version.as_str() == pin.as_str()
                })
                .or_else(|| {
                    self.by_name
                        .get(name)
                        .into_iter()
                        .flatten()
                        .copied()
                        .find(|&r| self.eff(self.pkg(r)) == arch && &self.pkg(r).version == pin)
                });
            let Some(r) = found else {
                return Err(unsat(self));
            };
            if let Some(&i) = self.chosen_by_key.get(&(name, self.eff(self.pkg(r))))
                && self.chosen[i].pkg.version != *pin
            {
                return Err(ResolveError::Unsatisfiable {
                    chain: Vec::new(),
                    relation: req.to_string(),
                    available: format!("{} already requested", self.chosen[i].pkg.version),
                });
            }
            self.choose(r, &[]);
            return Ok(());
        }
        if self.best(name, arch).is_some() {
            match self.fetch_candidate(name, arch) {
                Some(r) => {
                    self.choose(r, &[]);
                }
                None => already.push(req.to_string()),
            }
            return Ok(());
        }
        // Virtual package: apt picks the provider if there is exactly one.
        if self
            .installed_providers
            .get(name)
            .is_some_and(|v| v.iter().any(|p| self.eff(p) == arch))
        {
            already.push(req.to_string());
            return Ok(());
        }
        let mut provs: Vec<PkgRef> = Vec::new();
        for &r in self.providers.get(name).into_iter().flatten() {
            let p = self.pkg(r);
            if self.eff(p) == arch
                && self.best(p.name.as_str(), arch) == Some(r)
                && !provs.iter().any(|&q| self.pkg(q).name == p.name)
            {
                provs.push(r);
            }
        }
        match provs.len() {
            0 => Err(unsat(self)),
            1 => {
                let p = self.pkg(provs[0]);
                match self.fetch_candidate(p.name.as_str(), arch) {
                    Some(r) => {
                        self.choose(r, &[]);
                    }
                    None => already.push(req.to_string()),
                }
                Ok(())
            }
            _ => {
                let mut providers: Vec<String> = provs
                    .iter()
                    .map(|&r| self.pkg(r).name.to_string())
                    .collect();
                providers.sort();
                Err(ResolveError::AmbiguousVirtual {
                    request: req.to_string(),
                    providers,
                })
            }
        }
    }

    /// Checks every `Conflicts`/`Breaks` of the result (see the module doc) and
    /// returns the installed packages apt removes to resolve them.
    fn check_conflicts(&self) -> Result<Vec<Removing<'a>>, ResolveError> {
        let hits = self.conflict_hits()?;
        let removing = self.removals(&hits)?;
        self.check_dependents(&hits, &removing)?;
        Ok(removing)
    }

    /// Every `Conflicts`/`Breaks` hit between a chosen package and an installed one,
    /// declared by either; a hit between two chosen packages is an error at once,
    /// since nothing but another solution (no backtracking here) resolves it.
    fn conflict_hits(&self) -> Result<Vec<Hit<'a>>, ResolveError> {
        let mut by_name: HashMap<&str, Vec<(&'a Package, bool)>> = HashMap::new();
        let mut by_prov: HashMap<&str, Vec<(&'a Package, bool)>> = HashMap::new();
        let mut all: Vec<(&'a Package, bool)> =
            self.chosen.iter().map(|c| (c.pkg, false)).collect();
        for p in self.input.installed {
            if !self.replaced(p) {
                all.push((p, true));
            }
        }
        for &(p, inst) in &all {
            by_name.entry(p.name.as_str()).or_default().push((p, inst));
            for pr in &p.provides {
                by_prov.entry(pr.name.as_str()).or_default().push((p, inst));
            }
        }
        let label = |p: &Package| format!("{} {}", p.name, p.version);
        let mut hits = Vec::new();
        for &(p, p_inst) in &all {
            for (kind, rels) in [("Conflicts", &p.conflicts), ("Breaks", &p.breaks)] {
                for rel in rels {
                    for atom in &rel.alternatives {
                        let n = atom.name.as_str();
                        let cands = by_name
                            .get(n)
                            .into_iter()
                            .flatten()
                            .chain(by_prov.get(n).into_iter().flatten());
                        for &(q, q_inst) in cands {
                            if q.name == p.name || (p_inst && q_inst) || !matches(atom, q) {
                                continue;
                            }
                            let conflict = ResolveError::Conflict {
                                package: label(p),
                                kind,
                                relation: rel.to_string(),
                                other: label(q),
                                other_installed: q_inst,
                            };
                            let (chosen, installed) = match (p_inst, q_inst) {
                                (false, false) => return Err(conflict),
                                (false, true) => (p, q),
                                _ => (q, p),
                            };
                            hits.push(Hit {
                                chosen,
                                installed,
                                conflict,
                            });
                        }
                    }
                }
            }
        }
        Ok(hits)
    }

    /// The installed packages the hits remove, each with the first chosen package
    /// (in hit order) that replaces it. An installed package no chosen package
    /// replaces is the hit's conflict as before; an `Essential` or `required` one
    /// cannot go, since dpkg and apt refuse to remove the former and the base
    /// counts on the latter.
    fn removals(&self, hits: &[Hit<'a>]) -> Result<Vec<Removing<'a>>, ResolveError> {
        let mut out: Vec<Removing<'a>> = Vec::new();
        for h in hits {
            let q = h.installed;
            if gone(&out, q) {
                continue;
            }
            let Some(hit) = hits
                .iter()
                .position(|o| std::ptr::eq(o.installed, q) && replaces(o.chosen, q))
            else {
                return Err(h.conflict.clone());
            };
            let why = if q.essential {
                Some("it is Essential")
            } else if q.priority.as_deref() == Some("required") {
                Some("its Priority is required")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(hits[hit].unremovable(q, why.to_string()));
            }
            out.push(Removing {
                installed: q,
                by: hits[hit].chosen,
                hit,
            });
        }
        Ok(out)
    }

    /// Refuses a removal that would leave a `Pre-Depends`/`Depends` of a package
    /// that stays (installed and neither upgraded nor removed, or chosen) met by
    /// nothing: apt would remove that package too, which pibake does not do
    /// behind a role's back.
    fn check_dependents(
        &self,
        hits: &[Hit<'a>],
        removing: &[Removing<'a>],
    ) -> Result<(), ResolveError> {
        if removing.is_empty() {
            return Ok(());
        }
        let staying = self
            .input
            .installed
            .iter()
            .filter(|p| !self.replaced(p) && !gone(removing, p))
            .map(|p| (p, true));
        let chosen = self.chosen.iter().map(|c| (c.pkg, false));
        for (d, d_inst) in staying.chain(chosen) {
            let arch = self.eff(d);
            for (kind, rels) in [("Pre-Depends", &d.pre_depends), ("Depends", &d.depends)] {
                for rel in rels {
                    let Some(r) = removing.iter().find(|r| {
                        rel.alternatives
                            .iter()
                            .any(|a| self.satisfies(a, r.installed, arch))
                    }) else {
                        continue;
                    };
                    if self.met_by_staying(rel, arch, removing) {
                        continue;
                    }
                    let why = format!(
                        "`{} {}`{} depends on it ({kind}: {rel}) and nothing else satisfies that",
                        d.name,
                        d.version,
                        if d_inst { " (installed)" } else { "" }
                    );
                    return Err(hits[r.hit].unremovable(r.installed, why));
                }
            }
        }
        Ok(())
    }

    /// Whether an installed package that stays, or a chosen one, meets `rel` of a
    /// package of architecture `arch`.
    fn met_by_staying(&self, rel: &Relation, arch: &str, removing: &[Removing<'a>]) -> bool {
        rel.alternatives.iter().any(|a| {
            let n = a.name.as_str();
            let installed = self.installed.get(n).into_iter().flatten();
            let inst_prov = self.installed_providers.get(n).into_iter().flatten();
            let direct = self.chosen_by_name.get(n).into_iter().flatten();
            let prov = self.chosen_providers.get(n).into_iter().flatten();
            installed
                .chain(inst_prov)
                .any(|p| !self.replaced(p) && !gone(removing, p) && self.satisfies(a, p, arch))
                || direct
                    .chain(prov)
                    .any(|&i| self.satisfies(a, self.chosen[i].pkg, arch))
        })
    }

    fn order(&self) -> Vec<usize> {
        // 0 = unvisited, 1 = in progress, 2 = done.
        let mut state = vec![0u8; self.chosen.len()];
        let mut out = Vec::with_capacity(self.chosen.len());
        for start in 0..self.chosen.len() {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (node, next dep index).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (n, ref mut k)) = stack.last_mut() {
                if let Some(&d) = self.chosen[n].deps.get(*k) {
                    *k += 1;
                    if state[d] == 0 {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                } else {
                    state[n] = 2;
                    out.push(n);
                    stack.pop();
                }
            }
        }
        out
    }
}

/// Compute the packages to fetch for `requests`; see the module doc.
pub fn resolve(
    requests: &[PackageRequest],
    input: ResolveInput<'_>,
) -> Result<Resolution, ResolveError> {
    let mut r = Resolver::new(input);
    let mut already = Vec::new();
    for req in requests {
        r.request(req, &mut already)?;
    }
    let mut i = 0;
    while i < r.chosen.len() {
        let p = r.chosen[i].pkg;
        for rel in p.pre_depends.iter().chain(&p.depends) {
            if let Some(d) = r.satisfy(i, rel, Kind::Depends)?
                && d != i
                && !r.chosen[i].deps.contains(&d)
            {
                r.chosen[i].deps.push(d);
            }
        }
        if input.install_recommends {
            for rel in &p.recommends {
                r.satisfy(i, rel, Kind::Recommends)?;
            }
        }
        i += 1;
    }
    let removing = r.check_conflicts()?;
    let removes = removing
        .iter()
        .map(|m| Removal {
            name: m.installed.name.clone(),
            version: m.installed.version.clone(),
            by: m.by.name.clone(),
        })
        .collect();
    let mut packages = Vec::with_capacity(r.chosen.len());
    for idx in r.order() {
        let c = &r.chosen[idx];
        let p = c.pkg;
        let d = p
            .download
            .as_ref()
            .ok_or_else(|| ResolveError::NoDownload(format!("{} {}", p.name, p.version)))?;
        packages.push(ChosenPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            filename: d.filename.clone(),
            size: d.size,
            sha256: d.sha256,
            installed_size: p.installed_size,
            repository: input.repositories[c.repo].id.clone(),
            upgrade_from: c.upgrade_from.cloned(),
            needed_by: c.chain[..c.chain.len() - 1].to_vec(),
        });
    }
    Ok(Resolution {
        packages,
        already_installed: already,
        skipped_recommends: r.skipped,
        removes,
    })
}
