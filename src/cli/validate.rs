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
    #[command(flatten)]
    pub catalog: crate::cli::images::CatalogArg,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let mut inv = Inventory::load(&args.cluster)?;
    inv.catalog = args.catalog.source();
    // A base by URL or catalog name is never downloaded here: only where it stands.
    let base = global
        .cache_options()
        .dir()
        .ok()
        .and_then(|dir| pibake::basefetch::cache_status(&inv, &dir));
    // Values only the image can check (timezones, overlays, the admin's name) are
    // checked against it whenever it is there, without downloading it.
    let present = global
        .cache_options()
        .dir()
        .ok()
        .and_then(|dir| pibake::basefetch::present_base(&inv, &dir));
    let raw = match &present {
        Some(p) => Some(pibake_image::base::prepare(p, &global.cache_options())?.raw),
        None => None,
    };
    let stack = match &raw {
        Some(r) => pibake::inspect::inspect(r)?.network.active,
        None => Some(NetworkStack::NetworkManager),
    };
    let all = plans(&inv, &[], stack)?;
    if let Some(r) = &raw {
        pibake::bake::preflight::check(&inv, &all, r)?;
    }
    let against = match &present {
        Some(p) => format!("checked against the base image {}", p.display()),
        None => "not checked against the base image, which is not here: timezones, config.txt overlays and the admin's name are checked when `plan` or `build` has it".to_string(),
    };
    let mut roles: std::collections::BTreeMap<&str, usize> = Default::default();
    for n in &inv.nodes {
        *roles.entry(n.role.as_str()).or_default() += 1;
    }
    let files: usize = all.iter().map(|p| p.files.len()).sum();
    if global.json {
        return crate::cli::print_json(&serde_json::json!({
            "cluster": inv.file.cluster, "nodes": inv.nodes.len(), "roles": roles, "files": files, "warnings": inv.warnings, "base": base, "checked_against_base": present,
        }));
    }
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(b) = &base {
        outln!("{b}");
    }
    outln!("{against}");
    let roles: Vec<String> = roles.iter().map(|(r, n)| format!("{n} {r}")).collect();
    outln!(
        "ok: cluster {} is valid: {} nodes ({}), {files} files planned",
        inv.file.cluster,
        inv.nodes.len(),
        roles.join(", ")
    );
    Ok(())
}
