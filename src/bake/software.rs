//! A role's packages written into its layer: unpacked where dpkg would unpack them, the
//! rest as `.deb`s for first boot, with the files the first-boot step reads (see
//! `plan::firstboot`).

use std::collections::BTreeMap;
use std::path::Path;

use pibake_ext4::{Ext4, Meta};

use crate::error::{Error, IoContext, Result};
use crate::packages::Locked;
use crate::packages::cache::Store;
use crate::packages::unpack::{self, Inspected, Split, admin::Admin};
use crate::plan::Plan;
use crate::plan::firstboot::{PACKAGES_DIR, PackagesFile};

/// What the build did with one role's packages.
pub struct RoleSoftware {
    /// The role's closure, read.
    pub debs: Vec<Inspected>,
    /// Which were unpacked and which install on first boot.
    pub split: Split,
}

impl RoleSoftware {
    /// For `plan --json`: the packages unpacked at build time, and those installed on
    /// first boot with their reasons.
    pub fn json(&self) -> serde_json::Value {
        let name = |i: usize| self.debs[i].package.name.to_string();
        serde_json::json!({
            "unpacked": self.split.offline.iter().map(|&i| name(i)).collect::<Vec<_>>(),
            "first_boot": self.split.first_boot.iter().map(|(i, why)| {
                serde_json::json!({ "package": name(*i), "why": why, "text": why.to_string() })
            }).collect::<Vec<_>>(),
        })
    }

    /// One line for the build's report: how much was unpacked, what waits for first
    /// boot and why.
    pub fn summary(&self) -> String {
        let bytes: u64 = self
            .split
            .offline
            .iter()
            .map(|&i| self.debs[i].file_bytes)
            .sum();
        let mut s = format!(
            "{} package(s) unpacked at build time ({})",
            self.split.offline.len(),
            crate::packages::lock::size(bytes)
        );
        if !self.split.first_boot.is_empty() {
            let names: Vec<String> = self
                .split
                .first_boot
                .iter()
                .map(|(i, why)| format!("{} ({why})", self.debs[*i].package.name))
                .collect();
            s.push_str(&format!("; installed on first boot: {}", names.join(", ")));
        }
        s
    }
}

/// Reads the role's `.deb`s from the cache and checks them (the cache verified each
/// against its sha256 when the build fetched it; a size that changed since is caught).
pub fn read_debs(
    plan: &Plan,
    store: &Store,
    admin: &Admin,
    unpacking: bool,
) -> Result<Vec<Inspected>> {
    // Reading a package decompresses all its data: one package a core. When the read
    // is for unpacking, what it decompressed is kept (up to a budget, by the lock's
    // installed sizes) so that unpacking does not decompress it again.
    let mut budget = KEEP_BUDGET;
    let keep: Vec<bool> = plan
        .packages
        .iter()
        .map(|p| {
            let fits = unpacking && p.installed_size <= budget;
            if fits {
                budget -= p.installed_size;
            }
            fits
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    pibake_image::pool::run(plan.packages.len(), cores, |_, i| {
        read_deb(&plan.packages[i], store, admin, keep[i])
    })
    .into_iter()
    .zip(&plan.packages)
    .map(|(r, p)| {
        r.unwrap_or_else(|lost| {
            Err(Error::WorkerLost {
                node: format!("{} (reading {})", plan.node, p.file_name()),
                message: lost.message,
            })
        })
    })
    .collect()
}

/// Decompressed package data a build keeps in memory between reading and unpacking.
const KEEP_BUDGET: u64 = 256 << 20;

fn read_deb(p: &Locked, store: &Store, admin: &Admin, keep: bool) -> Result<Inspected> {
    let path = store.path(&p.sha256);
    let bytes = std::fs::read(&path).at(&path)?;
    if bytes.len() as u64 != p.size {
        return Err(Error::corrupt(format!(
            "{}: {} bytes, but {} has {} (the cache changed during the build)",
            path.display(),
            bytes.len(),
            p.label(),
            p.size
        )));
    }
    let d = Inspected::read(&p.file_name(), bytes, admin, keep)?;
    let q = &d.package;
    if q.name != p.name || q.version != p.version || q.architecture != p.architecture {
        return Err(Error::corrupt(format!(
            "{}: the package inside is {} {} {}, not {}",
            path.display(),
            q.name,
            q.version,
            q.architecture,
            p.label()
        )));
    }
    Ok(d)
}

/// Unpacks what dpkg would let pibake unpack, writes the rest as `.deb`s, and the
/// first-boot lists.
pub fn write(fs: &mut Ext4, plan: &Plan, store: &Store) -> Result<RoleSoftware> {
    let mut admin = Admin::read(fs)?;
    let debs = read_debs(plan, store, &admin, true)?;
    let split = unpack::decide(&debs, &admin);
    let done = unpack::unpack(fs, &mut admin, &debs, &split)?;
    let file = Meta::new(0o644, 0, 0);
    fs.mkdir_p(PACKAGES_DIR, &Meta::new(0o755, 0, 0))?;
    let mut order = String::new();
    for (i, _) in &split.first_boot {
        let d = &debs[*i];
        fs.write_file(&format!("{PACKAGES_DIR}/{}", d.label), &d.bytes, &file)?;
        order.push_str(&d.label);
        order.push('\n');
    }
    let units: String = done.units.iter().map(|u| format!("{u}\n")).collect();
    for (f, text) in [
        (PackagesFile::Unpacked, done.preinst_order.as_str()),
        (PackagesFile::Order, order.as_str()),
        (PackagesFile::Units, units.as_str()),
    ] {
        fs.write_file(&f.path(), text.as_bytes(), &file)?;
    }
    Ok(RoleSoftware { debs, split })
}

/// Units the role's unpacked packages ship, read back from the image (the node's
/// own build sees them in the layer): they may only start once configured.
pub fn package_units(fs: &Ext4) -> Result<Vec<String>> {
    let path = PackagesFile::Units.path();
    if !fs.exists(&path)? {
        return Ok(Vec::new());
    }
    let text = String::from_utf8_lossy(&fs.read(&path)?).into_owned();
    Ok(text.lines().map(str::to_string).collect())
}

/// For `plan`: the split each role's build would make, from the base and the cached
/// `.deb`s; `None` for a role whose packages are not all in the cache yet (a build
/// fetches them).
pub fn preview(
    base_raw: &Path,
    plans: &[Plan],
    store: &Store,
) -> Result<BTreeMap<String, Option<RoleSoftware>>> {
    let mut out = BTreeMap::new();
    if plans.iter().all(|p| p.packages.is_empty()) {
        return Ok(out);
    }
    let fs = crate::packages::open_root(base_raw)?;
    let admin = Admin::read(&fs)?;
    for p in plans.iter().filter(|p| !p.packages.is_empty()) {
        if out.contains_key(&p.role) {
            continue;
        }
        let cached = p.packages.iter().all(|d| store.path(&d.sha256).is_file());
        let software = if cached {
            let debs = read_debs(p, store, &admin, false)?;
            let split = unpack::decide(&debs, &admin);
            Some(RoleSoftware { debs, split })
        } else {
            None
        };
        out.insert(p.role.clone(), software);
    }
    Ok(out)
}
