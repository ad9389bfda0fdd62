//! `pibake plan CLUSTER [--node NAME]`: exactly what each node's image will get.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use crate::cli::{Global, print_json};
use pibake::bake::BootFiles;
use pibake::bake::software::preview;
use pibake::error::Result;
use pibake::inventory::{Inventory, NetworkStack};
use pibake::packages::Resolved;
use pibake::packages::cache::Store;
use pibake::packages::lock::size as size_text;
use pibake::plan::room::{HEADROOM, Reason, Room};
use pibake::plan::{Plan, human, plans};
use pibake_image::base;

/// Show what will be written into each node's image: files with modes and owners,
/// symlinks, config.txt and cmdline.txt edits, services. Secrets are never shown.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster file (cluster.yaml)
    pub cluster: PathBuf,
    /// Only these nodes: names, ranges like `node[001-010]`, or `role:NAME` (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub packages: crate::cli::PackageArgs,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let inv = args.packages.load(&args.cluster)?;
    let base = read_base(&inv, global, args.packages.offline)?;
    let stack = base.as_ref().and_then(|b| b.stack);
    let mut all = plans(&inv, &args.nodes, stack)?;
    if let Some(b) = &base {
        pibake::bake::preflight::check(&inv, &all, &b.raw)?;
    }
    // Resolving needs the base's apt setup; without it the plan shows the requests.
    let resolved = match &base {
        Some(b) => Some(pibake::packages::resolve(
            &inv,
            &b.raw,
            &global.cache_options().dir()?,
            &args.packages.settings(global)?,
            false,
        )?),
        None => None,
    };
    if let Some(r) = &resolved {
        r.attach(&mut all);
    }
    let room = match &base {
        Some(b) => Some(Room::measure(&inv, &all, &b.raw)?),
        None => None,
    };
    let software = match &base {
        Some(b) => preview(&b.raw, &all, &Store::new(&global.cache_options().dir()?))?,
        None => BTreeMap::new(),
    };
    if global.json {
        return print_json(&serde_json::json!({
            "packages": resolved.as_ref().map(packages_json),
            "root": room,
            "software": software.iter().map(|(r, s)| (r.clone(), s.as_ref().map_or(serde_json::Value::Null, |s| s.json()))).collect::<serde_json::Map<_, _>>(),
            "nodes": all,
        }));
    }
    let mut out = String::new();
    for w in &inv.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push_str(&packages_text(&inv, resolved.as_ref()));
    for (role, s) in &software {
        let how = s.as_ref().map_or_else(
            || "unpacked at build time where dpkg allows; which, is decided once `pibake build` has fetched them".to_string(),
            |s| s.summary(),
        );
        let _ = writeln!(out, "role {role}: {how}");
    }
    if let Some(room) = &room {
        out.push_str(&room_text(room));
    }
    for p in &all {
        out.push_str(&human(p));
        if let Some(b) = &base {
            out.push_str(&boot_diff(p, &b.boot)?);
        }
    }
    out!("{out}");
    Ok(())
}

/// What a plan reads of the base image.
struct BaseFacts {
    /// The uncompressed base.
    raw: PathBuf,
    /// Its network stack; `None` when none is active.
    stack: Option<NetworkStack>,
    /// Its config.txt and cmdline.txt.
    boot: BootFiles,
}

/// Each role's resolved set and what changes against pibake.lock.
fn packages_json(r: &Resolved) -> serde_json::Value {
    let roles: serde_json::Map<String, serde_json::Value> = r
        .lock
        .roles
        .iter()
        .map(|(role, l)| {
            (
                role.clone(),
                serde_json::json!({
                    "requests": l.requests,
                    "packages": l.packages,
                    "download_size": l.packages.iter().map(|p| p.size).sum::<u64>(),
                    "installed_size": l.packages.iter().map(|p| p.installed_size).sum::<u64>(),
                    "changes": r.changes.get(role),
                }),
            )
        })
        .collect();
    serde_json::json!({ "lock_changed": r.lock_changed, "base_changed": r.base_changed, "roles": roles, "removed_roles": r.removed })
}

/// Each role's packages as a person reads them, and the lock's changes.
fn packages_text(inv: &Inventory, resolved: Option<&Resolved>) -> String {
    let mut out = String::new();
    let Some(r) = resolved else {
        for (role, p) in inv
            .profiles
            .iter()
            .filter(|(_, p)| !p.def.packages.is_empty())
        {
            let _ = writeln!(
                out,
                "role {role}: packages {} (resolved against the base image when it is present)",
                p.def.packages.join(", ")
            );
        }
        return out;
    };
    if r.base_changed {
        let _ = writeln!(out, "{}", pibake::packages::BASE_CHANGED);
    }
    for (role, l) in &r.lock.roles {
        let size: u64 = l.packages.iter().map(|p| p.size).sum();
        let installed: u64 = l.packages.iter().map(|p| p.installed_size).sum();
        let changes = &r.changes[role];
        let _ = writeln!(
            out,
            "role {role}: {} package(s) for {}: {} to download, {} installed; {}",
            l.packages.len(),
            l.requests.join(", "),
            size_text(size),
            size_text(installed),
            if changes.is_empty() {
                "as in pibake.lock".to_string()
            } else {
                format!("pibake.lock would change ({} line(s) below)", changes.len())
            }
        );
        for p in &l.packages {
            let _ = writeln!(
                out,
                "  {:<32} {:<28} {:<6} {:>9}",
                p.name.as_str(),
                p.version.as_str(),
                p.architecture,
                size_text(p.size)
            );
        }
        for c in changes {
            let _ = writeln!(out, "  lock {c}");
        }
    }
    for (role, lines) in &r.removed {
        let _ = writeln!(
            out,
            "role {role}: asks for no packages now; pibake.lock would drop its entry"
        );
        for c in lines {
            let _ = writeln!(out, "  lock {c}");
        }
    }
    out
}

/// Each role's root partition: the base's, or grown, and why.
fn room_text(room: &Room) -> String {
    let mut out = String::new();
    for (role, r) in &room.roles {
        let why = match r.reason {
            Reason::Base => format!(
                "as the base has it ({} free; the role's software takes {})",
                size_text(room.base_free),
                size_text(r.software)
            ),
            Reason::Asked => format!(
                "grown from the base's {}, as `root_size:` asks",
                size_text(room.base_size)
            ),
            Reason::Software => format!(
                "grown from the base's {}: the role's software takes {} (plus {} of headroom) and the base's root has {} free",
                size_text(room.base_size),
                size_text(r.software),
                size_text(HEADROOM),
                size_text(room.base_free)
            ),
        };
        let _ = writeln!(
            out,
            "role {role}: root partition {} {why}",
            size_text(r.size)
        );
    }
    out
}

/// The base image's network stack and boot files, when the base is there to read: a
/// local file, or a URL or catalog entry, downloaded into the cache first unless
/// `offline` (then a base not in the cache is an error saying what to run).
fn read_base(inv: &Inventory, global: &Global, offline: bool) -> Result<Option<BaseFacts>> {
    let cache_dir = global.cache_options().dir()?;
    let fetch = pibake::basefetch::Fetch {
        cache_dir: &cache_dir,
        offline,
        progress: global.progress(),
    };
    let Some(path) = pibake::basefetch::local_base(inv, &fetch)? else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    let raw = base::prepare(&path, &global.cache_options())?.raw;
    let report = pibake::inspect::inspect(&raw)?;
    let boot = pibake::bake::preflight::boot_files(&raw)?;
    Ok(Some(BaseFacts {
        stack: report.network.active,
        boot,
        raw,
    }))
}

/// config.txt and cmdline.txt as the node will have them, as a diff against the base.
pub fn boot_diff(p: &Plan, boot: &BootFiles) -> Result<String> {
    let (config, cmdline) = boot.edited(p)?;
    let mut s = String::new();
    for (name, old, new) in [
        ("config.txt", &boot.config, &config),
        ("cmdline.txt", &boot.cmdline, &cmdline),
    ] {
        let lines = diff_lines(old, new);
        if !lines.is_empty() {
            let _ = writeln!(s, "  --- {name} (base)\n  +++ {name} ({})", p.node);
            for l in lines {
                let _ = writeln!(s, "  {l}");
            }
        }
    }
    Ok(s)
}

/// Removed (`-`) and added (`+`) lines, in order, from a longest-common-subsequence diff.
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diff_lines;

    #[test]
    fn diffs_show_only_what_changed() {
        assert_eq!(diff_lines("a\nb\nc\n", "a\nc\nd\n"), ["- b", "+ d"]);
        assert_eq!(diff_lines("x\n", "x\n"), Vec::<String>::new());
    }
}
