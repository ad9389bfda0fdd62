//! `pibake plan CLUSTER [--node NAME]`: exactly what each node's image will get.

use std::fmt::Write;
use std::path::PathBuf;

use crate::build::BootFiles;
use crate::cli::{Global, print_json};
use crate::error::Result;
use crate::fs::fat::Fat;
use crate::image::base;
use crate::image::partition::Layout;
use crate::image::region::Region;
use crate::inventory::Inventory;
use crate::plan::{Plan, plans};

/// Show what will be written into each node's image: files with modes and owners,
/// symlinks, config.txt and cmdline.txt edits, services. Secrets are never shown.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster file (cluster.yaml)
    pub cluster: PathBuf,
    /// Only these nodes: names, ranges like `node[001-010]`, or `role:NAME` (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let inv = Inventory::load(&args.cluster)?;
    let base = read_base(&inv, global)?;
    let stack = base.as_ref().and_then(|(stack, _)| stack.clone());
    let all = plans(&inv, &args.nodes, stack.as_deref())?;
    if global.json {
        return print_json(&all);
    }
    let mut out = String::new();
    for w in &inv.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for p in &all {
        out.push_str(&human(p));
        if let Some((_, boot)) = &base {
            out.push_str(&boot_diff(p, boot)?);
        }
    }
    print!("{out}");
    Ok(())
}

/// The base image's network stack and boot files, when the base is there to read.
fn read_base(inv: &Inventory, global: &Global) -> Result<Option<(Option<String>, BootFiles)>> {
    let Some(b) = &inv.file.base else {
        return Ok(None);
    };
    let path = inv.dir.join(b);
    if !path.exists() {
        return Ok(None);
    }
    let raw = base::prepare(&path, &global.cache_options())?.raw;
    let report = crate::inspect::inspect(&raw)?;
    let whole = Region::whole(&raw, false)?;
    let layout = Layout::read(&whole)?;
    let boot = BootFiles::read(&Fat::open(
        whole.sub(layout.boot().start, layout.boot().size)?,
    )?)?;
    Ok(Some((
        crate::inspect::stack_name(&report.network.stack).map(str::to_string),
        boot,
    )))
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

/// One plan as a person reads it.
pub fn human(p: &Plan) -> String {
    let mut s = String::new();
    let addrs: Vec<String> = p
        .addresses
        .iter()
        .map(|(n, a)| format!("{n} {a}"))
        .collect();
    let _ = writeln!(
        s,
        "node {}{} (role {}, profile {}): {}; network via {}",
        p.node,
        if p.spare { " [spare]" } else { "" },
        p.role,
        p.profile,
        if addrs.is_empty() {
            "no static address".into()
        } else {
            addrs.join(", ")
        },
        p.network_stack
    );
    let _ = writeln!(
        s,
        "  user    {} (password {}, {} ssh key(s){})",
        p.user.name,
        p.user.password,
        p.user.ssh_keys.len(),
        if p.user.sudo { ", sudo" } else { "" }
    );
    for d in &p.dirs {
        let _ = writeln!(s, "  dir     {:04o} {}:{} {}", d.mode, d.uid, d.gid, d.path);
    }
    for f in &p.files {
        let origin = format!("{:?}", f.origin).to_lowercase();
        let what = match (&f.from, f.secret) {
            (_, true) => format!("{origin}, secret: content not shown"),
            (Some(from), _) => format!("{origin} from {from}"),
            (None, _) => origin,
        };
        let _ = writeln!(
            s,
            "  file    {:04o} {}:{} {:>7} {}  [{what}]",
            f.mode,
            f.uid,
            f.gid,
            f.content.len(),
            f.path
        );
    }
    for l in &p.symlinks {
        let _ = writeln!(s, "  link    {} -> {}", l.path, l.target);
    }
    for b in &p.blocks {
        let _ = writeln!(
            s,
            "  block   {} ({} lines between pibake markers)",
            b.path,
            b.content.lines().count()
        );
    }
    for e in &p.config_txt {
        let _ = writeln!(s, "  config  + {e}");
    }
    for t in &p.cmdline_add {
        let _ = writeln!(s, "  cmdline + {t}");
    }
    for t in &p.cmdline_remove {
        let _ = writeln!(s, "  cmdline - {t}");
    }
    for (verb, units) in [
        ("enable", &p.services.enable),
        ("disable", &p.services.disable),
        ("mask", &p.services.mask),
    ] {
        if !units.is_empty() {
            let _ = writeln!(s, "  service {verb} {}", units.join(" "));
        }
    }
    for (k, v) in [
        ("timezone", &p.locale.timezone),
        ("locale", &p.locale.locale),
        ("keyboard", &p.locale.keyboard),
    ] {
        if let Some(v) = v {
            let _ = writeln!(s, "  {k:<7} {v}");
        }
    }
    for w in &p.warnings {
        let _ = writeln!(s, "  warning {w}");
    }
    s
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
