//! `pibake plan CLUSTER [--node NAME]`: exactly what each node's image will get.

use std::fmt::Write;
use std::path::PathBuf;

use crate::cli::{Global, print_json};
use pibake::bake::BootFiles;
use pibake::error::Result;
use pibake::fs::fat::Fat;
use pibake::inventory::Inventory;
use pibake::plan::{Plan, human, plans};
use pibake_image::base;
use pibake_image::partition::Layout;
use pibake_image::region::Region;

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
    out!("{out}");
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
    let report = pibake::inspect::inspect(&raw)?;
    let whole = Region::whole(&raw, false)?;
    let layout = Layout::read(&whole)?;
    let boot = BootFiles::read(&Fat::open(
        whole.sub(layout.boot().start, layout.boot().size)?,
    )?)?;
    Ok(Some((
        pibake::inspect::stack_name(&report.network.stack).map(str::to_string),
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

#[cfg(test)]
mod tests {
    use super::diff_lines;

    #[test]
    fn diffs_show_only_what_changed() {
        assert_eq!(diff_lines("a\nb\nc\n", "a\nc\nd\n"), ["- b", "+ d"]);
        assert_eq!(diff_lines("x\n", "x\n"), Vec::<String>::new());
    }
}
