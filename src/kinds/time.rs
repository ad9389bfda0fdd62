//! One clock for the cluster. A Raspberry Pi has no battery clock and a cluster network
//! often has no time source, while munge refuses credentials from a clock minutes off and
//! swarm's and k3s's TLS refuse certificates "not yet valid". So the node whose profile
//! says `time: server` (a gateway, controller, manager or server) serves NTP to the
//! cluster's subnets with chrony, even with no upstream (`local stratum`); every other
//! node syncs from it with systemd-timesyncd, and `systemd-time-wait-sync` holds
//! `time-sync.target` until it has, so units ordered after that target (munge, slurmd,
//! the swarm join, k3s) start on the cluster's time. cluster.yaml's `time: { sync: false }`
//! turns it off.
//!
//! chrony conflicts with systemd-timesyncd, so apt replaces it on the server at first
//! boot (the build keeps chrony a `.deb` for that reason).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Deserialize;

use super::Roster;
use crate::error::Result;
use crate::inventory::Node;
use crate::inventory::net::Subnet;
use crate::plan::{Plan, PlannedLink};

/// chrony's settings for serving the cluster (Debian's chrony.conf reads `conf.d`).
pub const CHRONY_CONF: &str = "/etc/chrony/conf.d/pibake.conf";
/// timesyncd's settings on the other nodes.
pub const TIMESYNCD_CONF: &str = "/etc/systemd/timesyncd.conf.d/pibake.conf";
/// Holds `time-sync.target` until timesyncd has synchronised.
pub const WAIT_SYNC: &str = "systemd-time-wait-sync.service";
/// Holds `time-sync.target` until chrony has synchronised.
pub const CHRONY_WAIT: &str = "chrony-wait.service";
/// The package that serves time, added to the packages of the roles that say `time:
/// server`.
pub const SERVER_PACKAGE: &str = "chrony";

/// A profile's `time:`: the part its role plays in the cluster's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TimeRole {
    /// Serves the cluster's time.
    Server,
}

impl TryFrom<String> for TimeRole {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<TimeRole, String> {
        super::word("time", &s, &[("server", TimeRole::Server)])
    }
}

/// cluster.yaml's `time:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeDef {
    /// `sync:`, whether the nodes keep one clock (default: true, when a profile says
    /// `time: server`).
    #[serde(default = "yes")]
    pub sync: bool,
}

fn yes() -> bool {
    true
}

impl Default for TimeDef {
    fn default() -> TimeDef {
        TimeDef { sync: true }
    }
}

/// The cluster's time service.
#[derive(Debug, Clone)]
pub struct TimeService {
    /// The node that serves it.
    pub server: String,
    /// Its addresses, by network.
    pub addresses: BTreeMap<String, Ipv4Addr>,
    /// The subnets of those networks, which it serves.
    pub subnets: Vec<Subnet>,
    /// The roles that say `time: server`: their nodes get chrony, and those that do not
    /// serve sync with it from the server.
    pub roles: Vec<String>,
}

/// The time service, when a node's profile says `time: server` and cluster.yaml does not
/// turn it off: the first such node that is not a spare serves.
pub fn load(
    roster: &Roster,
    def: &TimeDef,
    serves: impl Fn(&str) -> bool,
    subnet: impl Fn(&str) -> Option<Subnet>,
) -> Result<Option<TimeService>> {
    if !def.sync {
        return Ok(None);
    }
    let nodes = || roster.nodes.iter().map(|(n, _)| *n);
    let Some(server) = nodes().find(|n| !n.spare && serves(&n.role)) else {
        return Ok(None);
    };
    let mut roles: Vec<String> = nodes()
        .filter(|n| serves(&n.role))
        .map(|n| n.role.clone())
        .collect();
    roles.dedup();
    if server.addresses.is_empty() {
        let what = format!(
            "`{}` serves the cluster's time but has no static address for the others to reach",
            server.name
        );
        return Err(roster
            .source
            .error_at(&server.origin, &what)
            .with_hint("put its interface on a cluster network, or turn the time service off with `time: { sync: false }`"));
    }
    Ok(Some(TimeService {
        server: server.name.clone(),
        addresses: server.addresses.clone(),
        subnets: server.addresses.keys().filter_map(|n| subnet(n)).collect(),
        roles,
    }))
}

impl TimeService {
    /// The server's address a node reaches it at: on a network they share, else its
    /// first (a time server has one: checked when loaded).
    fn address_for(&self, node: &Node) -> Option<Ipv4Addr> {
        node.addresses
            .keys()
            .find_map(|net| self.addresses.get(net))
            .or_else(|| self.addresses.values().next())
            .copied()
    }

    /// Orders `unit` after `time-sync.target` on a node that syncs from the server, so
    /// it starts on the cluster's time (a drop-in beside the unit's own file).
    pub fn order(&self, node: &Node, unit: &str, plan: &mut Plan) {
        if node.name != self.server {
            plan.add_file(
                &format!("/etc/systemd/system/{unit}.d/pibake-time.conf"),
                0o644,
                format!("# Written by pibake: {unit} starts once the clock agrees with {}'s.\n[Unit]\nAfter=time-sync.target\n", self.server),
            );
        }
    }

    /// How `node` keeps the cluster's time.
    fn part(&self, node: &Node) -> Keeps {
        match self.address_for(node) {
            _ if node.name == self.server => Keeps::Serves,
            Some(a) if self.roles.contains(&node.role) => Keeps::Chrony(a),
            Some(a) => Keeps::Timesyncd(a),
            None => Keeps::Serves,
        }
    }

    /// chrony's settings on the server; on the others, where to sync from (chrony on a
    /// node of a serving role, which has it, else timesyncd) and the unit that holds
    /// `time-sync.target` until they have.
    pub fn plan(&self, node: &Node, plan: &mut Plan) {
        let (path, conf, wait) = match self.part(node) {
            Keeps::Serves => {
                let mut conf = String::from(
                    "# Written by pibake: this node serves the cluster's time, even with no source of\n# its own (`local`), to the cluster's subnets.\nlocal stratum 8\n",
                );
                for s in &self.subnets {
                    conf.push_str(&format!("allow {s}\n"));
                }
                (CHRONY_CONF, conf, None)
            }
            Keeps::Chrony(address) => (
                CHRONY_CONF,
                format!(
                    "# Written by pibake: the cluster's time, from {}; the clock is stepped to it at\n# any distance, as a Pi's clock starts wherever it was last saved.\nserver {address} iburst\nmakestep 1 -1\n",
                    self.server
                ),
                Some(CHRONY_WAIT),
            ),
            Keeps::Timesyncd(address) => (
                TIMESYNCD_CONF,
                format!(
                    "# Written by pibake: the cluster's time, from {}.\n[Time]\nNTP={address}\nFallbackNTP=\n",
                    self.server
                ),
                Some(WAIT_SYNC),
            ),
        };
        plan.add_file(path, 0o644, conf);
        // systemd-time-wait-sync is systemd's own; the images of some releases lack it,
        // so its link is made here rather than checked as a unit to enable.
        match wait {
            Some(WAIT_SYNC) => plan.symlinks.push(PlannedLink {
                path: format!("/etc/systemd/system/sysinit.target.wants/{WAIT_SYNC}"),
                target: format!("/lib/systemd/system/{WAIT_SYNC}"),
            }),
            Some(w) if !plan.services.enable.iter().any(|u| u == w) => {
                plan.services.enable.push(w.into())
            }
            _ => {}
        }
    }

    /// The line `pibake plan` prints for the node.
    pub fn summary(&self, node: &Node) -> String {
        let from = |how: &str, a: Ipv4Addr| {
            format!(
                "syncs from {} ({a}) with {how}; units after time-sync.target wait for it",
                self.server
            )
        };
        match self.part(node) {
            Keeps::Serves => {
                let subnets: Vec<String> = self.subnets.iter().map(|s| s.to_string()).collect();
                format!(
                    "serves the cluster's time to {} (chrony, local stratum 8 when it has no source)",
                    subnets.join(", ")
                )
            }
            Keeps::Chrony(a) => from("chrony", a),
            Keeps::Timesyncd(a) => from("systemd-timesyncd", a),
        }
    }
}

/// How a node keeps the cluster's time.
enum Keeps {
    /// It serves it.
    Serves,
    /// chrony (its role serves, another node of it does), from this address.
    Chrony(Ipv4Addr),
    /// systemd-timesyncd, from this address.
    Timesyncd(Ipv4Addr),
}
