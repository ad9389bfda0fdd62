//! Clusters the nodes form by themselves on first boot, one module per kind (a Docker
//! swarm, k3s), each behind [`Kind`]:
//!
//! - the part a profile gives its role (`swarm: manager`), typed where the YAML is read;
//! - its settings in cluster.yaml, checked once by the kind's `load` against the roles
//!   that use it (one node to start the cluster, with an address the others reach);
//! - the secret it makes once into the state directory, if any;
//! - the files each member gets and the one line `pibake plan` shows of it ([`Join`]);
//! - the settings templates see under its key.
//!
//! Plans and first-boot scripts only ever see parsed values. Adding a kind is its module,
//! its profiles and overlays, and its line in [`Part`], [`Join`] and [`Kinds`].

pub mod k3s;
pub mod labels;
pub mod slurm;
pub mod swarm;
pub mod time;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use pibake_ext4::Ext4;
use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::inventory::schema::ClusterFile;
use crate::inventory::source::Source;
use crate::inventory::{Inventory, Node};
use crate::plan::Plan;

/// A role's part in the one kind of cluster its profile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `swarm: manager|worker`.
    Swarm(swarm::SwarmPart),
    /// `k3s: server|agent`.
    K3s(k3s::K3sPart),
    /// `slurm: controller|compute`.
    Slurm(slurm::SlurmPart),
}

impl Part {
    /// The kind's key: `swarm`, `k3s`, `slurm`.
    pub fn key(self) -> &'static str {
        match self {
            Part::Swarm(_) => "swarm",
            Part::K3s(_) => "k3s",
            Part::Slurm(_) => "slurm",
        }
    }

    /// Whether the cluster's leader lists the node among its members (`docker node ls`,
    /// `kubectl get nodes`, `sinfo`): all but a Slurm controller, which is no node of its
    /// own cluster.
    pub fn listed_by_leader(self) -> bool {
        self != Part::Slurm(slurm::SlurmPart::Controller)
    }
}

/// A node's part in the cluster it forms, as its plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "system", rename_all = "lowercase")]
pub enum Join {
    /// A Docker swarm member.
    Swarm(swarm::SwarmJoin),
    /// A k3s node.
    K3s(k3s::K3sJoin),
    /// A Slurm controller or compute node.
    Slurm(slurm::SlurmJoin),
}

impl Join {
    /// The one line `pibake plan` prints for it (no secret is in a plan).
    pub fn summary(&self) -> String {
        match self {
            Join::Swarm(j) => j.summary(),
            Join::K3s(j) => j.summary(),
            Join::Slurm(j) => j.summary(),
        }
    }

    /// The kind's key: `swarm`, `k3s`.
    pub fn system(&self) -> &'static str {
        match self {
            Join::Swarm(_) => "swarm",
            Join::K3s(_) => "k3s",
            Join::Slurm(_) => "slurm",
        }
    }
}

/// What every kind does once loaded.
pub trait Kind: fmt::Debug + Send + Sync {
    /// Its key in profiles, in cluster.yaml and in templates (`swarm`).
    fn key(&self) -> &'static str;

    /// Adds a member's files, artifacts and [`Join`] to its plan (nothing for a node
    /// that is not a member).
    fn plan(&self, inv: &Inventory, node: &Node, plan: &mut Plan) -> Result<()>;

    /// Its parsed settings, as templates see them under its key.
    fn context(&self) -> Value;

    /// The cluster's secret, made once into the state directory and read on every build,
    /// so a rebuilt node joins the same cluster.
    fn secret(&self, _state: &Path) -> Result<Option<Secret>> {
        Ok(None)
    }

    /// Writes a member's files that hold the secret (never part of a plan).
    fn bake_secret(&self, _fs: &mut Ext4, _plan: &Plan, _secret: &Secret) -> Result<()> {
        Ok(())
    }
}

/// A cluster secret's bytes: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps bytes read from the state directory.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// `n` bytes from the operating system's random source.
    pub fn random(n: usize) -> Secret {
        let mut bytes = vec![0u8; n];
        ssh_key::rand_core::RngCore::fill_bytes(&mut ssh_key::rand_core::OsRng, &mut bytes);
        Secret(bytes)
    }

    /// The bytes, for the one file they go into.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(not shown)")
    }
}

/// The kinds the cluster forms, loaded once with the inventory.
#[derive(Debug, Clone, Default)]
pub struct Kinds {
    /// The Docker swarm, when a profile says `swarm:`.
    pub swarm: Option<swarm::Swarm>,
    /// The k3s cluster, when a profile says `k3s:`.
    pub k3s: Option<k3s::K3s>,
    /// The Slurm cluster, when a profile says `slurm:`.
    pub slurm: Option<slurm::Slurm>,
}

impl Kinds {
    /// Checks each kind's settings against the roles that use it.
    pub fn load(roster: &Roster, file: &ClusterFile) -> Result<Kinds> {
        Ok(Kinds {
            swarm: swarm::load(roster, &file.swarm)?,
            k3s: k3s::load(roster, file.k3s.as_ref())?,
            slurm: slurm::load(roster, file.slurm.as_ref())?,
        })
    }

    /// The kinds this cluster forms, in a fixed order.
    pub fn all(&self) -> Vec<&dyn Kind> {
        let swarm = self.swarm.as_ref().map(|k| k as &dyn Kind);
        let k3s = self.k3s.as_ref().map(|k| k as &dyn Kind);
        let slurm = self.slurm.as_ref().map(|k| k as &dyn Kind);
        [swarm, k3s, slurm].into_iter().flatten().collect()
    }

    /// The template context: each kind's settings under its key, null for a kind the
    /// cluster does not form (strict mode makes `{{swarm.stack}}` an error there).
    pub fn context(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("swarm".into(), Value::Null);
        map.insert("k3s".into(), Value::Null);
        map.insert("slurm".into(), Value::Null);
        for k in self.all() {
            map.insert(k.key().into(), k.context());
        }
        map
    }
}

/// What a kind's `load` reads: the cluster file's source for positions, and the nodes,
/// each with the part its role's profile gives it.
pub struct Roster<'a> {
    /// cluster.yaml, for error positions.
    pub source: &'a Source,
    /// The cluster's name.
    pub cluster: &'a str,
    /// Every node with its role's part.
    pub nodes: Vec<(&'a Node, Option<Part>)>,
    /// A var as a node sees it (its own, else its profile's, else the cluster's), with
    /// where it was set.
    pub var: &'a dyn Fn(&Node, &str) -> Option<VarAt<'a>>,
    /// The node's profile's `model:`.
    pub model: &'a dyn Fn(&Node) -> Option<&'a str>,
}

/// A var's value and where it was set, for an error at that place.
pub struct VarAt<'a> {
    /// The value.
    pub value: &'a Value,
    /// The file that sets it.
    pub source: &'a Source,
    /// Its key path in that file.
    pub key: String,
}

impl<'a> Roster<'a> {
    /// The nodes whose part `pick` takes, with that part.
    pub fn members<P>(&self, pick: impl Fn(Part) -> Option<P>) -> Vec<(&'a Node, P)> {
        self.nodes
            .iter()
            .filter_map(|(n, p)| Some((*n, pick((*p)?)?)))
            .collect()
    }
}

/// A word of a small closed set (`manager`, `worker`) from the YAML key `key`, or why
/// not, naming the words there are.
pub fn word<T: Copy>(key: &str, s: &str, words: &[(&str, T)]) -> std::result::Result<T, String> {
    words
        .iter()
        .find(|(w, _)| *w == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            format!("{key} `{s}`: use {}", names.join(" or "))
        })
}

/// The one node of `starters` that starts a cluster, with its address.
pub fn starter<'n>(
    source: &Source,
    starters: &[&'n Node],
    what: &str,
) -> Result<(&'n Node, Ipv4Addr)> {
    let Some(first) = starters.first() else {
        return Err(source
            .error_at("nodes", &format!("the {what} has no node to start it"))
            .with_hint(format!(
                "give one role a profile that says so (the shipped {what} profiles do)"
            )));
    };
    let address = first.addresses.values().next().copied().ok_or_else(|| {
        source
            .error_at(
                &first.origin,
                &format!(
                    "`{}` starts the {what} but has no static address for the others to reach",
                    first.name
                ),
            )
            .with_hint(
                "put its interface on a cluster network (`interfaces: { eth0: { network: lan } }`)",
            )
    })?;
    Ok((first, address))
}
