//! What each node should be running, from what the operator's machine already has: the
//! cluster's plans (the units each role enables, the cluster each node forms) and the
//! build's `manifest.json` (the packages each image was built with, at their versions).
//! Nothing here touches the network.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::inventory::Inventory;
use crate::kinds::k3s::{K3sJoin, K3sPart};
use crate::kinds::slurm::{SlurmJoin, SlurmPart};
use crate::kinds::swarm::{SwarmJoin, SwarmPart};
use crate::plan::{Join, Plan};

/// The first-boot unit: it runs once, so "inactive" is its normal state afterwards; its
/// own checks (the done marker, the log) say more than its unit state.
pub use crate::plan::firstboot::FIRSTBOOT_UNIT;

/// One node as it should be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Its name, which `ssh_config` has as a `Host`.
    pub node: String,
    /// Its role.
    pub role: String,
    /// Its first address, for the table.
    pub address: Option<String>,
    /// Kept in reserve: it does not count towards the exit status.
    pub spare: bool,
    /// Its image has first-boot work (`pibake-firstboot.service`).
    pub first_boot: bool,
    /// The units its plan enables (the first-boot unit aside).
    pub units: Vec<String>,
    /// The packages its image was built with: (name, version).
    pub packages: Vec<(String, String)>,
    /// The manifest has an entry for it.
    pub built: bool,
    /// The cluster it leads, when it leads one: its view should show these members.
    pub leads: Option<Leads>,
}

/// A cluster a node leads, and the members it should see Ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leads {
    /// `swarm` or `k3s`, as the status script names it.
    pub system: String,
    /// Every member that is not a spare.
    pub members: Vec<String>,
}

/// Reads `OUT/manifest.json`, refusing with what to do when it is missing or damaged.
pub fn manifest(out: &Path, cluster: &Path) -> Result<serde_json::Value> {
    let path = out.join("manifest.json");
    let build = format!(
        "build first: pibake build {} --out {}",
        cluster.display(),
        out.display()
    );
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::invalid(format!(
                "{}: no such file: nothing was built there",
                path.display()
            ))
            .with_hint(build));
        }
        r => r.at(&path)?,
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!("{}: not a pibake manifest: {e}", path.display())).with_hint(build)
    })
}

/// Each planned node as it should be, in plan order.
pub fn expected(inv: &Inventory, plans: &[Plan], manifest: &serde_json::Value) -> Vec<Expected> {
    plans
        .iter()
        .map(|p| {
            let entry = manifest["nodes"]
                .as_array()
                .and_then(|n| n.iter().find(|e| e["node"] == p.node.as_str()));
            one(inv, p, entry)
        })
        .collect()
}

fn one(inv: &Inventory, p: &Plan, entry: Option<&serde_json::Value>) -> Expected {
    let built_units = entry
        .and_then(|e| e["changes"]["services"]["enable"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_string));
    // The plan's units, and any the build recorded beyond them (a network stack read
    // from the base image).
    let mut units: Vec<String> = p.services.enable.clone();
    for u in built_units {
        if !units.contains(&u) {
            units.push(u);
        }
    }
    let first_boot = units.iter().any(|u| u == FIRSTBOOT_UNIT);
    units.retain(|u| u != FIRSTBOOT_UNIT);
    Expected {
        node: p.node.clone(),
        role: p.role.clone(),
        address: p.addresses.values().next().cloned(),
        spare: p.spare,
        first_boot,
        units,
        packages: entry.map(packages).unwrap_or_default(),
        built: entry.is_some(),
        leads: leads(inv, p),
    }
}

/// The manifest's packages of one node: (name, version).
fn packages(entry: &serde_json::Value) -> Vec<(String, String)> {
    entry["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.into(), p["version"].as_str()?.into())))
        .collect()
}

/// The cluster a swarm manager or k3s server leads, and its members (spares aside).
fn leads(inv: &Inventory, p: &Plan) -> Option<Leads> {
    let system = match p.join.as_ref()? {
        Join::Swarm(SwarmJoin {
            part: SwarmPart::Manager,
            ..
        }) => "swarm",
        Join::K3s(K3sJoin {
            part: K3sPart::Server,
            ..
        }) => "k3s",
        Join::Slurm(SlurmJoin {
            part: SlurmPart::Controller,
            ..
        }) => "slurm",
        _ => return None,
    };
    let members = inv
        .nodes
        .iter()
        .filter(|n| !n.spare)
        .filter(|n| {
            inv.part(n)
                .is_some_and(|p| p.key() == system && p.listed_by_leader())
        })
        .map(|n| n.name.clone())
        .collect();
    Some(Leads {
        system: system.into(),
        members,
    })
}
