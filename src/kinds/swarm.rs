//! The Docker swarm: a profile's `swarm: manager|worker`, cluster.yaml's `swarm: {
//! stack }`, and what each member gets: `/etc/pibake/swarm.env`, read as data by the
//! shipped `swarm` overlay's swarm.sh. No join secret is in a plan: a worker fetches its
//! token from the manager over the cluster's SSH at first boot.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Join, Kind, Part, Roster, starter};
use crate::error::Result;
use crate::inventory::{Inventory, Node};
use crate::plan::Plan;

/// Read, as data, by the shipped `swarm` overlay's swarm.sh.
pub const SWARM_ENV: &str = "/etc/pibake/swarm.env";

/// The part a node plays in the Docker swarm (`swarm:` in a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum SwarmPart {
    /// Joins with the manager token; the first non-spare one initialises the swarm and
    /// deploys the stack.
    Manager,
    /// Joins with the worker token.
    Worker,
}

impl TryFrom<String> for SwarmPart {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<SwarmPart, String> {
        let words = [
            ("manager", SwarmPart::Manager),
            ("worker", SwarmPart::Worker),
        ];
        super::word("swarm", &s, &words)
    }
}

impl SwarmPart {
    /// The word swarm.sh and `docker swarm join-token` use.
    pub fn name(self) -> &'static str {
        match self {
            SwarmPart::Manager => "manager",
            SwarmPart::Worker => "worker",
        }
    }
}

/// `swarm:` in cluster.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmDef {
    /// `stack:`, the name the manager deploys `/etc/pibake/swarm/stack.yml` as (default:
    /// the cluster's name).
    pub stack: Option<StackName>,
}

/// The name a swarm stack is deployed as: lowercase letters, digits, `_` and `-`,
/// starting with a letter or digit, at most 63 (Compose's project names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StackName(String);

impl TryFrom<String> for StackName {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<StackName, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(StackName(s))
        } else {
            Err(format!(
                "stack name `{s}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit (at most 63)"
            ))
        }
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cluster's Docker swarm.
#[derive(Debug, Clone)]
pub struct Swarm {
    /// The node that initialises the swarm and deploys the stack: the first non-spare
    /// manager.
    pub leader: String,
    /// Its address on its first network, where the others join.
    pub leader_address: Ipv4Addr,
    /// The name the stack is deployed as.
    pub stack: StackName,
}

/// A swarm member's part, as its plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwarmJoin {
    /// Manager or worker.
    pub part: SwarmPart,
    /// Whether this node initialises the swarm and deploys the stack.
    pub leads: bool,
    /// The node that initialises it.
    pub manager: String,
    /// Its address, where the others join (`ADDRESS:2377`).
    pub manager_address: String,
    /// The stack the leader deploys.
    pub stack: String,
    /// This node's labels, `name=value`, `role=` first.
    pub labels: Vec<String>,
}

fn part(p: Part) -> Option<SwarmPart> {
    match p {
        Part::Swarm(s) => Some(s),
        _ => None,
    }
}

/// Checks the swarm's settings against the roles that say `swarm:`.
pub fn load(roster: &Roster, def: &SwarmDef) -> Result<Option<Swarm>> {
    let members: Vec<(&Node, SwarmPart)> = roster.members(part);
    if members.is_empty() {
        if def.stack.is_some() {
            let e = roster.source.error_at(
                "swarm",
                "`swarm:` is set, but no role's profile says `swarm:`",
            );
            return Err(e.with_hint(
                "give the roles a swarm profile (`swarm-manager`, `swarm-node`), or remove `swarm:`",
            ));
        }
        return Ok(None);
    }
    let managers: Vec<&Node> = members
        .iter()
        .filter(|(n, p)| !n.spare && *p == SwarmPart::Manager)
        .map(|(n, _)| *n)
        .collect();
    let (leader, leader_address) = starter(roster.source, &managers, "swarm (a `swarm: manager`)")?;
    let stack = match &def.stack {
        Some(s) => s.clone(),
        None => StackName::try_from(roster.cluster.to_ascii_lowercase()).map_err(|why| {
            roster
                .source
                .error_at("cluster", &format!("as the default stack name: {why}"))
        })?,
    };
    Ok(Some(Swarm {
        leader: leader.name.clone(),
        leader_address,
        stack,
    }))
}

impl Kind for Swarm {
    fn key(&self) -> &'static str {
        "swarm"
    }

    fn plan(&self, inv: &Inventory, node: &Node, plan: &mut Plan) -> Result<()> {
        let Some(part) = inv.part(node).and_then(part) else {
            return Ok(());
        };
        plan.add_file(SWARM_ENV, 0o644, self.env(inv, node, part));
        if let Some(t) = &inv.time {
            t.order(node, "pibake-swarm.service", plan);
        }
        plan.join = Some(Join::Swarm(SwarmJoin {
            part,
            leads: node.name == self.leader,
            manager: self.leader.clone(),
            manager_address: self.leader_address.to_string(),
            stack: self.stack.to_string(),
            labels: node.labels.with_role(&node.role),
        }));
        Ok(())
    }

    fn context(&self) -> Value {
        json!({
            "manager": self.leader, "manager_address": self.leader_address.to_string(), "stack": self.stack.to_string(),
        })
    }
}

impl Swarm {
    /// `/etc/pibake/swarm.env`: `KEY=VALUE` lines of parsed values (names, addresses,
    /// labels), read by swarm.sh with `sed`, never sourced.
    fn env(&self, inv: &Inventory, node: &Node, part: SwarmPart) -> String {
        let members: Vec<&Node> = inv
            .nodes
            .iter()
            .filter(|n| inv.part(n).and_then(self::part).is_some())
            .collect();
        let mut env = format!(
            "# The Docker swarm of the cluster {}: written by pibake from the inventory, and read\n# as data (never run) by /usr/local/lib/pibake/swarm.sh.\n",
            inv.file.cluster
        );
        env.push_str(&format!("SWARM_MANAGER={}\n", self.leader));
        env.push_str(&format!("SWARM_MANAGER_ADDRESS={}\n", self.leader_address));
        if let Some(a) = node.addresses.values().next() {
            env.push_str(&format!("SWARM_ADDRESS={a}\n"));
        }
        env.push_str(&format!("SWARM_JOIN_AS={}\n", part.name()));
        env.push_str(&format!("SWARM_ADMIN={}\n", inv.file.admin.name));
        env.push_str(&format!("SWARM_STACK={}\n", self.stack));
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
            let labels = n.labels.with_role(&n.role);
            env.push_str(&format!("SWARM_LABELS={} {}\n", n.name, labels.join(" ")));
        }
        env
    }
}

impl SwarmJoin {
    /// The one line `pibake plan` prints for it.
    pub fn summary(&self) -> String {
        let labels = self.labels.join(" ");
        if self.leads {
            format!(
                "{} that initialises the swarm on {}, waits for every member to be Ready, labels them and deploys /etc/pibake/swarm/stack.yml as stack `{}`; labels {labels}",
                self.part.name(),
                self.manager_address,
                self.stack
            )
        } else {
            format!(
                "{} that joins {} ({}:2377) with a {} token it fetches from {} over the cluster's SSH at first boot; labels {labels}",
                self.part.name(),
                self.manager,
                self.manager_address,
                self.part.name(),
                self.manager
            )
        }
    }
}
