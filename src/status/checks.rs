//! One check per area of a node: its role's units, its packages against the build, its
//! root partition against the card, its clock, and a leader's view of its cluster.
//! Each is a pure function of what the node reported and what it should have.

use serde::Serialize;

use super::expect::Leads;
use super::parse::{ClusterFacts, Installed, RootFacts, UnitState};

/// Past this many seconds between the node's clock and the operator's, say so: TLS
/// (k3s), the swarm's certificates and apt's signatures care about time.
pub const CLOCK_TOLERANCE: f64 = 5.0;

/// How far from the disk's end a grown root may end: GPT keeps its backup table there.
const END_SLACK_SECTORS: u64 = 2048;

/// What a unit's state means for the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitOutcome {
    /// Active, or done as it should be (a oneshot that exited, a condition that says
    /// its work is already done).
    Ok,
    /// Activating or reloading: wait.
    Starting,
    /// Failed, inactive, or not enabled at all.
    Bad,
}

/// One of the role's units on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitCheck {
    /// The unit as the plan enables it.
    pub unit: String,
    /// Its ActiveState, or `not enabled` when the node does not have it enabled.
    pub active: String,
    /// Its SubState.
    pub sub: Option<String>,
    /// What it means.
    pub state: UnitOutcome,
}

impl UnitCheck {
    /// `docker.service failed` or `docker.service not enabled`.
    pub fn summary(&self) -> String {
        format!("{} {}", self.unit, self.active)
    }
}

/// Each planned unit against the node's enabled units (matched by any of its names, so
/// an alias the plan uses is found).
pub fn units(planned: &[String], enabled: &[UnitState]) -> Vec<UnitCheck> {
    planned
        .iter()
        .map(|u| match enabled.iter().find(|s| s.names.contains(u)) {
            None => UnitCheck {
                unit: u.clone(),
                active: "not enabled".into(),
                sub: None,
                state: UnitOutcome::Bad,
            },
            Some(s) => UnitCheck {
                unit: u.clone(),
                active: s.active.clone(),
                sub: Some(s.sub.clone()),
                state: unit_outcome(s),
            },
        })
        .collect()
}

fn unit_outcome(s: &UnitState) -> UnitOutcome {
    match s.active.as_str() {
        "active" => UnitOutcome::Ok,
        "activating" | "reloading" | "deactivating" => UnitOutcome::Starting,
        "inactive" if s.condition == "no" => UnitOutcome::Ok,
        "inactive" if s.kind == "oneshot" && s.result == "success" => UnitOutcome::Ok,
        _ => UnitOutcome::Bad,
    }
}

/// One package of the build on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageCheck {
    /// Its name.
    pub name: String,
    /// The version the image was built with.
    pub want: String,
    /// The version dpkg has, if any.
    pub got: Option<String>,
    /// dpkg's state (`ii` when installed and configured).
    pub state: Option<String>,
    /// Installed, configured, at the built version.
    pub ok: bool,
}

impl PackageCheck {
    /// `curl missing`, `curl 7.88 (built with 7.89)` or `curl state iF`.
    pub fn summary(&self) -> String {
        match (&self.got, &self.state) {
            (None, _) => format!("{} missing", self.name),
            (Some(v), _) if *v != self.want => {
                format!("{} {v} (built with {})", self.name, self.want)
            }
            (_, Some(st)) => format!("{} state {st}", self.name),
            _ => format!("{} unknown", self.name),
        }
    }
}

/// Each package the manifest records against dpkg's list. A name dpkg lists twice
/// (two architectures) matches when either entry does.
pub fn packages(built: &[(String, String)], installed: &[Installed]) -> Vec<PackageCheck> {
    built
        .iter()
        .map(|(name, want)| {
            let same: Vec<&Installed> = installed.iter().filter(|i| i.name == *name).collect();
            let best = same
                .iter()
                .find(|i| i.version == *want && i.state == "ii")
                .or_else(|| same.iter().find(|i| i.version == *want))
                .or(same.first());
            PackageCheck {
                name: name.clone(),
                want: want.clone(),
                got: best.map(|i| i.version.clone()),
                state: best.map(|i| i.state.clone()),
                ok: best.is_some_and(|i| i.version == *want && i.state == "ii"),
            }
        })
        .collect()
}

/// The root partition against the card, as `tests/e2e/lib.sh` `root_on_card` checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootCheck {
    /// The partition's name.
    pub partition: String,
    /// Where it ends (sector).
    pub end_sector: u64,
    /// Where the card ends (sectors).
    pub disk_sectors: u64,
    /// The partition's size in bytes.
    pub partition_bytes: u64,
    /// The filesystem's size in bytes.
    pub filesystem_bytes: u64,
    /// Grown to the card, and the filesystem fills it.
    pub ok: bool,
}

impl RootCheck {
    /// What is wrong with it, for a warning.
    pub fn summary(&self) -> String {
        if self.disk_sectors.saturating_sub(self.end_sector) > END_SLACK_SECTORS {
            format!(
                "root not grown to the card ({} ends at {} MiB of {} MiB)",
                self.partition,
                self.end_sector >> 11,
                self.disk_sectors >> 11
            )
        } else {
            format!(
                "root filesystem ({} MiB) does not fill its partition ({} MiB)",
                self.filesystem_bytes >> 20,
                self.partition_bytes >> 20
            )
        }
    }
}

/// Whether the root partition reaches the card's end and its filesystem fills it.
pub fn root(r: &RootFacts) -> RootCheck {
    let end = r.start.saturating_add(r.sectors);
    let bytes = r.sectors.saturating_mul(512);
    RootCheck {
        partition: r.partition.clone(),
        end_sector: end,
        disk_sectors: r.disk_sectors,
        partition_bytes: bytes,
        filesystem_bytes: r.filesystem_bytes,
        ok: r.disk_sectors.saturating_sub(end) <= END_SLACK_SECTORS
            && r.filesystem_bytes > bytes / 10 * 9,
    }
}

/// The node's clock against the operator's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockCheck {
    /// The node's `date +%s`.
    pub node: i64,
    /// The operator's clock when that line arrived.
    pub operator: f64,
    /// Node minus operator, seconds (positive: the node is ahead).
    pub offset_seconds: f64,
    /// Within [`CLOCK_TOLERANCE`].
    pub ok: bool,
}

impl ClockCheck {
    /// `clock 42 s ahead`.
    pub fn summary(&self) -> String {
        let dir = if self.offset_seconds > 0.0 {
            "ahead"
        } else {
            "behind"
        };
        format!("clock {:.0} s {dir}", self.offset_seconds.abs())
    }
}

/// The offset, when both clocks were read. `date +%s` truncates, so the node's second
/// is taken at its middle.
pub fn clock(node: Option<i64>, operator: Option<f64>) -> Option<ClockCheck> {
    let (node, operator) = (node?, operator?);
    let offset = node as f64 + 0.5 - operator;
    Some(ClockCheck {
        node,
        operator,
        offset_seconds: (offset * 10.0).round() / 10.0,
        ok: offset.abs() <= CLOCK_TOLERANCE,
    })
}

/// A leader's view of its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterCheck {
    /// `swarm`, `k3s` or `slurm`.
    pub system: String,
    /// Members it lists, with their status (`Ready`, `Down`, `NotReady`).
    pub members: Vec<(String, String)>,
    /// Members the inventory has that it does not list Ready.
    pub not_ready: Vec<String>,
    /// The tool answered and every member is Ready.
    pub ok: bool,
    /// The tool's own words when it did not answer.
    pub error: Option<String>,
}

impl ClusterCheck {
    /// `swarm: 3 of 3 Ready` or `swarm: not Ready: worker2`.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("{}: {e}", self.system);
        }
        if self.not_ready.is_empty() {
            let ready = self.members.iter().filter(|(_, s)| s == "Ready").count();
            return format!("{}: {ready} of {} Ready", self.system, self.members.len());
        }
        format!("{}: not Ready: {}", self.system, self.not_ready.join(", "))
    }
}

/// The leader's answer against the members it should see; `None` when the node leads
/// nothing and reported nothing.
pub fn cluster(leads: Option<&Leads>, seen: Option<&ClusterFacts>) -> Option<ClusterCheck> {
    let system = seen
        .map(|s| s.system.clone())
        .or_else(|| leads.map(|l| l.system.clone()))?;
    let Some(seen) = seen else {
        return Some(ClusterCheck {
            system,
            members: Vec::new(),
            not_ready: leads.map(|l| l.members.clone()).unwrap_or_default(),
            ok: false,
            error: Some("no view: the node does not lead it yet".into()),
        });
    };
    let members: Vec<(String, String)> = seen
        .lines
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    let ready = |n: &String| members.iter().any(|(m, s)| m == n && s == "Ready");
    let mut not_ready: Vec<String> = leads
        .map(|l| l.members.iter().filter(|n| !ready(n)).cloned().collect())
        .unwrap_or_default();
    for (m, s) in &members {
        if s != "Ready" && !not_ready.contains(m) {
            not_ready.push(m.clone());
        }
    }
    let error = (!seen.command_ok).then(|| {
        seen.lines
            .last()
            .cloned()
            .unwrap_or_else(|| "the tool gave no answer".into())
    });
    Some(ClusterCheck {
        system,
        ok: seen.command_ok && not_ready.is_empty(),
        members: if seen.command_ok { members } else { Vec::new() },
        not_ready,
        error,
    })
}
