//! How a node joins the cluster its role belongs to on first boot: the Docker swarm's
//! settings file, k3s's config and files, and the one line `pibake plan` shows of it.
//!
//! Everything here is made from parsed values (see `inventory::orchestrator`). No join
//! secret is in a plan: a swarm worker fetches its token from the manager at first boot,
//! and the k3s token is read from the state directory when the image is written.

use std::path::PathBuf;

use serde::Serialize;

use super::Plan;
use crate::error::Result;
use crate::inventory::orchestrator::{self, K3sPart, Swarm, SwarmPart};
use crate::inventory::{Inventory, Node};
use pibake_image::digest::Sha256;

/// Read, as data, by the shipped `swarm` overlay's swarm.sh.
pub const SWARM_ENV: &str = "/etc/pibake/swarm.env";
/// Where k3s reads its settings; holds the token, so 0600.
pub const K3S_CONFIG: &str = "/etc/rancher/k3s/config.yaml";
/// Where k3s imports airgap image archives from when it starts.
pub const K3S_IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";

/// A node's part in the cluster it forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "system", rename_all = "lowercase")]
pub enum Join {
    /// A Docker swarm member.
    Swarm {
        /// Manager or worker.
        part: SwarmPart,
        /// Whether this node initialises the swarm and deploys the stack.
        leads: bool,
        /// The node that initialises it.
        manager: String,
        /// Its address, where the others join (`ADDRESS:2377`).
        manager_address: String,
        /// The stack the leader deploys.
        stack: String,
        /// This node's labels, `name=value`, `role=` first.
        labels: Vec<String>,
    },
    /// A k3s node.
    K3s {
        /// Server or agent.
        part: K3sPart,
        /// The server agents join.
        server: String,
        /// Its URL (`https://ADDRESS:6443`).
        url: String,
        /// This node's labels, `name=value`, `role=` first.
        labels: Vec<String>,
        /// `/etc/rancher/k3s/config.yaml` without its `token:` line, which the build adds
        /// from the state directory.
        config: String,
    },
}

/// A user's file copied into the image as it is, its sha256 checked when it is read
/// at build time (`k3s.binary`, `k3s.images`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedArtifact {
    /// Absolute path in the image.
    pub path: String,
    /// Permission bits.
    pub mode: u16,
    /// The file on the build machine.
    pub source: PathBuf,
    /// The cluster.yaml key that names it, for messages (`k3s.binary`).
    pub key: String,
    /// What its bytes must hash to.
    pub sha256: Sha256,
}

impl Join {
    /// The one line `pibake plan` prints for it (no secret is in a plan).
    pub fn summary(&self) -> String {
        match self {
            Join::Swarm {
                part,
                leads: true,
                manager_address,
                stack,
                labels,
                ..
            } => format!(
                "{} that initialises the swarm on {manager_address}, waits for every member to be Ready, labels them and deploys /etc/pibake/swarm/stack.yml as stack `{stack}`; labels {}",
                part.name(),
                labels.join(" ")
            ),
            Join::Swarm {
                part,
                manager,
                manager_address,
                labels,
                ..
            } => format!(
                "{} that joins {manager} ({manager_address}:2377) with a {} token it fetches from {manager} over the cluster's SSH at first boot; labels {}",
                part.name(),
                part.name(),
                labels.join(" ")
            ),
            Join::K3s {
                part: K3sPart::Server,
                url,
                labels,
                ..
            } => format!(
                "server on {url}; labels {}; {K3S_CONFIG} 0600 gets the cluster token from the state directory at build (never shown)",
                labels.join(" ")
            ),
            Join::K3s {
                part: K3sPart::Agent,
                url,
                labels,
                ..
            } => format!(
                "agent that joins {url}; labels {}; {K3S_CONFIG} 0600 gets the cluster token from the state directory at build (never shown)",
                labels.join(" ")
            ),
        }
    }
}

/// The node's join, its files and artifacts, added to its plan.
pub fn plan(inv: &Inventory, node: &Node, plan: &mut Plan) -> Result<()> {
    let profile = &inv.profiles[&node.role];
    let labels = inv.labels(node).with_role(&node.role);
    let address = node.addresses.values().next();
    if let (Some(part), Some(s)) = (orchestrator::swarm_part(profile), &inv.swarm) {
        plan.add_file(SWARM_ENV, 0o644, swarm_env(inv, s, node, part));
        plan.join = Some(Join::Swarm {
            part,
            leads: node.name == s.leader,
            manager: s.leader.clone(),
            manager_address: s.leader_address.to_string(),
            stack: s.stack.to_string(),
            labels,
        });
    } else if let (Some(part), Some(k)) = (orchestrator::k3s_part(profile), &inv.k3s) {
        let url = format!("https://{}:6443", k.server_address);
        let mut config = format!(
            "# Written by pibake: k3s on {} of the cluster {}. The build adds the cluster's\n# token (kept in its state directory), so this file is 0600.\nnode-name: {}\n",
            node.name, inv.file.cluster, node.name
        );
        if let Some(a) = address {
            config.push_str(&format!("node-ip: {a}\n"));
        }
        match part {
            K3sPart::Server => config.push_str(&format!(
                "advertise-address: {0}\ntls-san:\n  - \"{0}\"\n  - \"{1}\"\n",
                k.server_address, k.server
            )),
            K3sPart::Agent => config.push_str(&format!("server: \"{url}\"\n")),
        }
        config.push_str("node-label:\n");
        for l in &labels {
            config.push_str(&format!("  - \"{l}\"\n"));
        }
        for (a, path, mode) in [
            (&k.binary, "/usr/local/bin/k3s".to_string(), 0o755),
            (
                &k.images,
                format!("{K3S_IMAGES_DIR}/{}", k.images.name),
                0o644,
            ),
        ] {
            let mut source = inv.dir.join(&a.rel);
            if source.exists() {
                // Only the cluster's directory and its `source_dirs` may be read.
                source = inv.source(&a.rel).map_err(|e| {
                    e.place(|what| inv.source.error_at(&format!("{}.path", a.key), what))
                })?;
            } else {
                plan.warnings.push(format!(
                    "`{}` ({}) is not there yet: the build needs it (one k3s release's file, with the sha256 cluster.yaml gives)",
                    a.key,
                    source.display()
                ));
            }
            plan.artifacts.push(PlannedArtifact {
                path,
                mode,
                source,
                key: a.key.clone(),
                sha256: a.sha256,
            });
        }
        plan.join = Some(Join::K3s {
            part,
            server: k.server.clone(),
            url,
            labels,
            config,
        });
    }
    Ok(())
}

/// `/etc/pibake/swarm.env`: `KEY=VALUE` lines of parsed values (names, addresses,
/// labels), read by swarm.sh with `sed`, never sourced.
fn swarm_env(inv: &Inventory, s: &Swarm, node: &Node, part: SwarmPart) -> String {
    let members: Vec<&Node> = inv
        .nodes
        .iter()
        .filter(|n| orchestrator::swarm_part(&inv.profiles[&n.role]).is_some())
        .collect();
    let mut env = format!(
        "# The Docker swarm of the cluster {}: written by pibake from the inventory, and read\n# as data (never run) by /usr/local/lib/pibake/swarm.sh.\n",
        inv.file.cluster
    );
    env.push_str(&format!("SWARM_MANAGER={}\n", s.leader));
    env.push_str(&format!("SWARM_MANAGER_ADDRESS={}\n", s.leader_address));
    if let Some(a) = node.addresses.values().next() {
        env.push_str(&format!("SWARM_ADDRESS={a}\n"));
    }
    env.push_str(&format!("SWARM_JOIN_AS={}\n", part.name()));
    env.push_str(&format!("SWARM_ADMIN={}\n", inv.file.admin.name));
    env.push_str(&format!("SWARM_STACK={}\n", s.stack));
    let live: Vec<&str> = members
        .iter()
        .filter(|n| !n.spare)
        .map(|n| n.name.as_str())
        .collect();
    env.push_str(
        "# The members that are not spares: the manager waits for all of them to be Ready.\n",
    );
    env.push_str(&format!("SWARM_NODES={}\n", live.join(" ")));
    env.push_str("# Each member's labels, one line each: NAME NAME=VALUE...\n");
    for n in &members {
        let labels = inv.labels(n).with_role(&n.role);
        env.push_str(&format!("SWARM_LABELS={} {}\n", n.name, labels.join(" ")));
    }
    env
}
