//! `pibake validate CLUSTER`: check the inventory, the profiles and every node's plan.

use std::path::PathBuf;

use crate::cli::Global;
use pibake::error::Result;
use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::plans;

/// Check cluster.yaml, its profiles and templates, and render every node's plan
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster file (cluster.yaml)
    pub cluster: PathBuf,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let inv = Inventory::load(&args.cluster)?;
    let all = plans(&inv, &[], Some(NetworkStack::NetworkManager))?;
    let mut roles: std::collections::BTreeMap<&str, usize> = Default::default();
    for n in &inv.nodes {
        *roles.entry(n.role.as_str()).or_default() += 1;
    }
    let files: usize = all.iter().map(|p| p.files.len()).sum();
    if global.json {
        return crate::cli::print_json(&serde_json::json!({
            "cluster": inv.file.cluster, "nodes": inv.nodes.len(), "roles": roles, "files": files, "warnings": inv.warnings,
        }));
    }
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    let roles: Vec<String> = roles.iter().map(|(r, n)| format!("{n} {r}")).collect();
    outln!(
        "ok: cluster {} is valid: {} nodes ({}), {files} files planned",
        inv.file.cluster,
        inv.nodes.len(),
        roles.join(", ")
    );
    Ok(())
}
