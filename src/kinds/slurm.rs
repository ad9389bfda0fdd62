//! Slurm: a profile's `slurm: controller|compute`, cluster.yaml's `slurm: { cluster_name,
//! partitions }`, the munge key made once into the state directory, and what each member
//! gets:
//!
//! - the controller: `/etc/slurm/slurm.conf`, generated from parsed values, serving it to
//!   the computes (`SlurmctldParameters=enable_configless`);
//! - a compute: only the controller's address (`slurmd --conf-server`), so a rebuilt
//!   controller never leaves a stale copy on a compute;
//! - every member: `/etc/munge/munge.key`, 0400 and owned by the `munge` account (made
//!   at build as `adduser --system` would, so munge's postinst keeps the key).
//!
//! A node's CPUs and memory come from its `cpus` and `memory_mb` vars, else from its
//! profile's `model:` (see [`by_model`]); spares are `State=FUTURE`, out of service until
//! an operator brings them in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use pibake_ext4::{Ext4, Meta};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Join, Kind, Part, Roster, Secret, starter};
use crate::error::{Error, IoContext, Result};
use crate::inventory::{Inventory, Node};
use crate::plan::Plan;

/// Where the controller's configuration goes (and, configless, only there).
pub const SLURM_CONF: &str = "/etc/slurm/slurm.conf";
/// slurmd's options file, read by Debian's slurmd.service.
pub const SLURMD_DEFAULTS: &str = "/etc/default/slurmd";
/// The munge key on every member.
pub const MUNGE_KEY: &str = "/etc/munge/munge.key";
/// Lets slurmd start with no slurm.conf (Debian's unit requires one) and after the
/// clock agrees with the controller's.
pub const SLURMD_DROPIN: &str = "/etc/systemd/system/slurmd.service.d/pibake.conf";
/// The key's file in the state directory's `_cluster`.
const KEY_FILE: &str = "munge.key";
/// munge takes keys of 32 to 1024 bytes; `mungekey` makes 128 (1024 bits) by default.
const KEY_BYTES: usize = 128;

/// The part a node plays in the Slurm cluster (`slurm:` in a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum SlurmPart {
    /// Runs slurmctld and serves the configuration.
    Controller,
    /// Runs slurmd and the jobs.
    Compute,
}

impl TryFrom<String> for SlurmPart {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<SlurmPart, String> {
        let words = [
            ("controller", SlurmPart::Controller),
            ("compute", SlurmPart::Compute),
        ];
        super::word("slurm", &s, &words)
    }
}

/// A Slurm name (the cluster's, a partition's): a lowercase letter, then lowercase
/// letters, digits, `_` and `-`, at most 32 (what slurm.conf and the accounting
/// database both take without quoting).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct SlurmName(String);

impl TryFrom<String> for SlurmName {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<SlurmName, String> {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if ok {
            Ok(SlurmName(s))
        } else {
            Err(format!(
                "`{s}`: a Slurm name is a lowercase letter, then lowercase letters, digits, `_` and `-` (at most 32)"
            ))
        }
    }
}

impl fmt::Display for SlurmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A partition's time limit, in whole minutes (None: `UNLIMITED`). Written as Slurm
/// writes it: `minutes`, `hours:minutes:seconds`, `days-hours[:minutes[:seconds]]`, or
/// `UNLIMITED`; a YAML number is minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct MaxTime(Option<u64>);

impl TryFrom<Value> for MaxTime {
    type Error = String;

    fn try_from(v: Value) -> std::result::Result<MaxTime, String> {
        let text = match &v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err("max_time: minutes, `D-HH:MM:SS` or `UNLIMITED`".into()),
        };
        MaxTime::parse(&text).ok_or_else(|| {
            format!(
                "max_time `{text}`: use minutes (`90`), `HH:MM:SS`, `D-HH[:MM[:SS]]` or `UNLIMITED`"
            )
        })
    }
}

impl MaxTime {
    fn parse(s: &str) -> Option<MaxTime> {
        if matches!(s, "UNLIMITED" | "INFINITE") {
            return Some(MaxTime(None));
        }
        let num = |t: &str| -> Option<u64> {
            (!t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())?
        };
        let (days, rest) = match s.split_once('-') {
            Some((d, r)) => (num(d)?, Some(r)),
            None => (0, None),
        };
        let seconds = match rest {
            // D-HH, D-HH:MM, D-HH:MM:SS
            Some(r) => {
                let f: Vec<&str> = r.split(':').collect();
                let [h, m, s] = match f[..] {
                    [h] => [h, "0", "0"],
                    [h, m] => [h, m, "0"],
                    [h, m, s] => [h, m, s],
                    _ => return None,
                };
                ((days * 24 + num(h)?) * 60 + num(m)?) * 60 + num(s)?
            }
            // MM, MM:SS, HH:MM:SS
            None => match s.split(':').collect::<Vec<_>>()[..] {
                [m] => num(m)? * 60,
                [m, s] => num(m)? * 60 + num(s)?,
                [h, m, s] => (num(h)? * 60 + num(m)?) * 60 + num(s)?,
                _ => return None,
            },
        };
        (seconds > 0).then_some(MaxTime(Some(seconds.div_ceil(60))))
    }
}

impl fmt::Display for MaxTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("UNLIMITED"),
            Some(m) => write!(f, "{}-{:02}:{:02}:00", m / 1440, m / 60 % 24, m % 60),
        }
    }
}

/// One entry of `slurm: { partitions: }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionDef {
    /// `roles:`, the roles (each `slurm: compute`) whose nodes are in it.
    pub roles: Vec<String>,
    /// `default:`, where jobs go that name no partition (at most one).
    #[serde(default)]
    pub default: bool,
    /// `max_time:`, the longest a job may run (default: `UNLIMITED`).
    pub max_time: Option<MaxTime>,
}

/// `slurm:` in cluster.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmDef {
    /// `cluster_name:`, Slurm's `ClusterName` (default: the cluster's name).
    pub cluster_name: Option<SlurmName>,
    /// `partitions:`, name -> its roles (default: one partition `main`, the default, of
    /// every compute role).
    #[serde(default)]
    pub partitions: BTreeMap<SlurmName, PartitionDef>,
}

/// A compute node as slurm.conf describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputeNode {
    /// Its hostname (slurmd's NodeName).
    pub name: String,
    /// Where slurmctld reaches it.
    pub address: Ipv4Addr,
    /// CPUs slurmd offers.
    pub cpus: u32,
    /// Memory slurmd offers, in MiB (slurmd drains a node that has less).
    pub memory_mb: u32,
    /// Kept out of service (`State=FUTURE`).
    pub spare: bool,
    /// The partitions it is in.
    pub partitions: Vec<String>,
}

/// A partition as slurm.conf describes it.
#[derive(Debug, Clone)]
pub struct Partition {
    name: SlurmName,
    nodes: Vec<String>,
    default: bool,
    max_time: MaxTime,
}

/// The cluster's Slurm.
#[derive(Debug, Clone)]
pub struct Slurm {
    /// `ClusterName`.
    pub cluster_name: SlurmName,
    /// The one non-spare controller.
    pub controller: String,
    /// Its address on its first network, where slurmd and the clients reach it.
    pub controller_address: Ipv4Addr,
    /// Every compute node, spares included.
    pub computes: Vec<ComputeNode>,
    partitions: Vec<Partition>,
}

/// A Slurm member's part, as its plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlurmJoin {
    /// Controller or compute.
    pub part: SlurmPart,
    /// The controller.
    pub controller: String,
    /// Its address.
    pub controller_address: String,
    /// This node, when it computes.
    pub node: Option<ComputeNode>,
}

fn part(p: Part) -> Option<SlurmPart> {
    match p {
        Part::Slurm(s) => Some(s),
        _ => None,
    }
}

/// CPUs and usable memory (MiB) of the smallest board of a model: three quarters of its
/// RAM, as the GPU's share and the kernel take the rest (slurmd drains a node that has
/// less than slurm.conf says).
pub fn by_model(model: &str) -> Option<(u32, u32)> {
    let (cpus, ram) = match model {
        "pi0" | "pi0w" | "pi1" => (1, 512),
        "pi02" => (4, 512),
        "pi2" | "pi3" | "pi3+" | "cm3" | "pi4" | "cm4" | "pi5" => (4, 1024),
        "cm5" => (4, 2048),
        "pi400" => (4, 4096),
        "pi500" => (4, 8192),
        _ => return None,
    };
    Some((cpus, ram * 3 / 4))
}

/// A positive whole number from a var (`cpus`, `memory_mb`), at most `max`.
fn count(roster: &Roster, node: &Node, var: &str, max: u64) -> Result<Option<u32>> {
    let Some(at) = (roster.var)(node, var) else {
        return Ok(None);
    };
    match at.value.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as u32)),
        _ => Err(at.source.error_at(
            &at.key,
            &format!("`{var}` must be a whole number from 1 to {max}"),
        )),
    }
}

/// A compute node's line of slurm.conf, from its vars or its model.
fn compute(roster: &Roster, node: &Node) -> Result<ComputeNode> {
    let address = node.addresses.values().next().copied().ok_or_else(|| {
        roster
            .source
            .error_at(
                &node.origin,
                &format!(
                    "`{}` computes for Slurm but has no static address for slurmctld to reach",
                    node.name
                ),
            )
            .with_hint(
                "put its interface on a cluster network (`interfaces: { eth0: { network: lan } }`)",
            )
    })?;
    let model = (roster.model)(node).and_then(by_model);
    let cpus = count(roster, node, "cpus", 1024)?.or(model.map(|m| m.0));
    let memory_mb = count(roster, node, "memory_mb", 1 << 24)?.or(model.map(|m| m.1));
    let (Some(cpus), Some(memory_mb)) = (cpus, memory_mb) else {
        return Err(roster
            .source
            .error_at(
                &node.origin,
                &format!("Slurm needs `{}`'s CPUs and memory", node.name),
            )
            .with_hint("set `vars: { cpus: 4, memory_mb: 768 }` (on the node, its role's profile or the cluster), or `model:` in its profile"));
    };
    Ok(ComputeNode {
        name: node.name.clone(),
        address,
        cpus,
        memory_mb,
        spare: node.spare,
        partitions: Vec::new(),
    })
}

/// The partitions as cluster.yaml gives them, or `main` of every compute role.
fn partitions(
    roster: &Roster,
    def: &SlurmDef,
    computes: &mut [ComputeNode],
    members: &[(&Node, SlurmPart)],
) -> Result<Vec<Partition>> {
    let compute_roles: Vec<&str> = members
        .iter()
        .filter(|(_, p)| *p == SlurmPart::Compute)
        .map(|(n, _)| n.role.as_str())
        .fold(Vec::new(), |mut v, r| {
            if !v.contains(&r) {
                v.push(r);
            }
            v
        });
    let defs: Vec<(SlurmName, PartitionDef)> = if def.partitions.is_empty() {
        let roles = compute_roles.iter().map(|r| r.to_string()).collect();
        let main = PartitionDef {
            roles,
            default: true,
            max_time: None,
        };
        vec![(SlurmName("main".into()), main)]
    } else {
        def.partitions.clone().into_iter().collect()
    };
    let mut out: Vec<Partition> = Vec::new();
    for (name, p) in defs {
        let key = format!("slurm.partitions.{name}");
        for (i, role) in p.roles.iter().enumerate() {
            if !compute_roles.contains(&role.as_str()) {
                return Err(roster
                    .source
                    .error_at(
                        &format!("{key}.roles.{i}"),
                        &format!("role `{role}` has no `slurm: compute` nodes"),
                    )
                    .with_hint(format!(
                        "a partition holds compute roles: {}",
                        compute_roles.join(", ")
                    )));
            }
        }
        if p.default && out.iter().any(|o| o.default) {
            return Err(roster.source.error_at(
                &format!("{key}.default"),
                "a second default partition; Slurm has one",
            ));
        }
        let mut nodes = Vec::new();
        for c in computes.iter_mut() {
            let role = members
                .iter()
                .find(|(n, _)| n.name == c.name)
                .map(|(n, _)| n.role.as_str());
            if role.is_some_and(|r| p.roles.iter().any(|x| x == r)) {
                c.partitions.push(name.to_string());
                nodes.push(c.name.clone());
            }
        }
        if nodes.is_empty() {
            return Err(roster
                .source
                .error_at(&key, &format!("partition `{name}` has no nodes")));
        }
        out.push(Partition {
            name,
            nodes,
            default: p.default,
            max_time: p.max_time.unwrap_or(MaxTime(None)),
        });
    }
    if !out.iter().any(|p| p.default) {
        out[0].default = true;
    }
    Ok(out)
}

/// Checks the Slurm settings against the roles that say `slurm:`.
pub fn load(roster: &Roster, def: Option<&SlurmDef>) -> Result<Option<Slurm>> {
    let source = roster.source;
    let members: Vec<(&Node, SlurmPart)> = roster.members(part);
    if members.is_empty() {
        if def.is_some() {
            let e = source.error_at(
                "slurm",
                "`slurm:` is set, but no role's profile says `slurm:`",
            );
            return Err(e.with_hint("give the roles the shipped `slurm-controller` and `slurm-compute` profiles, or remove `slurm:`"));
        }
        return Ok(None);
    }
    let default = SlurmDef::default();
    let def = def.unwrap_or(&default);
    let controllers: Vec<&Node> = members
        .iter()
        .filter(|(_, p)| *p == SlurmPart::Controller)
        .map(|(n, _)| *n)
        .collect();
    if let Some(n) = controllers.iter().find(|n| n.spare) {
        return Err(source
            .error_at(
                &n.origin,
                &format!(
                    "`{}` is a spare Slurm controller; Slurm has one controller, in service",
                    n.name
                ),
            )
            .with_hint("give the spare another role, or remove `spare: true`"));
    }
    if controllers.len() > 1 {
        let names: Vec<&str> = controllers.iter().map(|n| n.name.as_str()).collect();
        return Err(source
            .error_at(
                &controllers[1].origin,
                &format!(
                    "Slurm has more than one controller ({}); pibake bakes one",
                    names.join(", ")
                ),
            )
            .with_hint("make the others computes"));
    }
    let (controller, controller_address) = starter(
        source,
        &controllers,
        "Slurm cluster (a `slurm: controller`)",
    )?;
    let mut computes = members
        .iter()
        .filter(|(_, p)| *p == SlurmPart::Compute)
        .map(|(n, _)| compute(roster, n))
        .collect::<Result<Vec<_>>>()?;
    if computes.is_empty() {
        return Err(source
            .error_at("nodes", "the Slurm cluster has no `slurm: compute` node")
            .with_hint("give a role the shipped `slurm-compute` profile"));
    }
    let partitions = partitions(roster, def, &mut computes, &members)?;
    let cluster_name = match &def.cluster_name {
        Some(n) => n.clone(),
        None => SlurmName::try_from(roster.cluster.to_ascii_lowercase()).map_err(|why| {
            source
                .error_at("cluster", &format!("as Slurm's cluster name: {why}"))
                .with_hint("set `slurm: { cluster_name: NAME }`")
        })?,
    };
    Ok(Some(Slurm {
        cluster_name,
        controller: controller.name.clone(),
        controller_address,
        computes,
        partitions,
    }))
}

impl Slurm {
    /// `/etc/slurm/slurm.conf`, every line from a parsed value. Debian's paths; munge
    /// authentication; the PMIx plugin, which Debian's Open MPI and Slurm both carry, for
    /// `srun` of MPI programs; no accounting database.
    pub fn conf(&self, cluster: &str) -> String {
        let mut c = format!(
            "# Written by pibake for the cluster {cluster}: the controller serves it to the compute\n# nodes (configless), so it lives here alone.\n"
        );
        for (k, v) in [
            ("ClusterName", self.cluster_name.to_string()),
            (
                "SlurmctldHost",
                format!("{}({})", self.controller, self.controller_address),
            ),
            ("SlurmctldParameters", "enable_configless".into()),
            ("AuthType", "auth/munge".into()),
            ("CryptoType", "crypto/munge".into()),
            ("MpiDefault", "pmix".into()),
            ("ProctrackType", "proctrack/linuxproc".into()),
            ("TaskPlugin", "task/none".into()),
            ("ReturnToService", "2".into()),
            // A Pi Zero starting a job step (slurmstepd, PMIx) takes longer than the
            // default 10 s allows.
            ("MessageTimeout", "60".into()),
            ("SlurmUser", "slurm".into()),
            ("SlurmctldPidFile", "/run/slurmctld.pid".into()),
            ("SlurmdPidFile", "/run/slurmd.pid".into()),
            ("SlurmdSpoolDir", "/var/lib/slurm/slurmd".into()),
            ("StateSaveLocation", "/var/lib/slurm/slurmctld".into()),
            ("SlurmctldLogFile", "/var/log/slurm/slurmctld.log".into()),
            ("SlurmdLogFile", "/var/log/slurm/slurmd.log".into()),
            ("SchedulerType", "sched/backfill".into()),
            ("SelectType", "select/cons_tres".into()),
            ("SelectTypeParameters", "CR_Core".into()),
            ("AccountingStorageType", "accounting_storage/none".into()),
            ("JobAcctGatherType", "jobacct_gather/none".into()),
            ("JobCompType", "jobcomp/none".into()),
        ] {
            c.push_str(&format!("{k}={v}\n"));
        }
        c.push_str("# Spares are FUTURE: out of service until `scontrol update NodeName=... State=RESUME`.\n");
        for n in &self.computes {
            let state = if n.spare { "FUTURE" } else { "UNKNOWN" };
            c.push_str(&format!(
                "NodeName={} NodeAddr={} CPUs={} RealMemory={} State={state}\n",
                n.name, n.address, n.cpus, n.memory_mb
            ));
        }
        for p in &self.partitions {
            c.push_str(&format!(
                "PartitionName={} Nodes={} Default={} MaxTime={} State=UP\n",
                p.name,
                p.nodes.join(","),
                if p.default { "YES" } else { "NO" },
                p.max_time
            ));
        }
        c
    }
}

impl Kind for Slurm {
    fn key(&self) -> &'static str {
        "slurm"
    }

    fn plan(&self, inv: &Inventory, node: &Node, plan: &mut Plan) -> Result<()> {
        let Some(part) = inv.part(node).and_then(part) else {
            return Ok(());
        };
        if let Some(t) = &inv.time {
            t.order(node, "munge.service", plan);
            t.order(node, "slurmd.service", plan);
        }
        match part {
            SlurmPart::Controller => plan.add_file(SLURM_CONF, 0o644, self.conf(&inv.file.cluster)),
            SlurmPart::Compute => plan.add_file(
                SLURMD_DROPIN,
                0o644,
                format!(
                    "# Written by pibake: slurmd fetches slurm.conf from the controller (configless),\n# so Debian's condition on a local copy is dropped.\n[Unit]\nConditionPathExists=\n\n[Service]\nEnvironment=SLURMD_OPTIONS=--conf-server={}\n",
                    self.controller_address
                ),
            ),
        }
        plan.join = Some(Join::Slurm(SlurmJoin {
            part,
            controller: self.controller.clone(),
            controller_address: self.controller_address.to_string(),
            node: self.computes.iter().find(|c| c.name == node.name).cloned(),
        }));
        Ok(())
    }

    fn context(&self) -> Value {
        let partitions: Vec<String> = self.partitions.iter().map(|p| p.name.to_string()).collect();
        json!({
            "cluster_name": self.cluster_name.to_string(),
            "controller": self.controller,
            "controller_address": self.controller_address.to_string(),
            "partitions": partitions,
        })
    }

    fn secret(&self, state: &Path) -> Result<Option<Secret>> {
        let path = crate::bake::hostkeys::cluster_dir(state)?.join(KEY_FILE);
        if !path.exists() {
            crate::bake::hostkeys::write_secret(&path, Secret::random(KEY_BYTES).bytes())?;
        }
        let bytes = std::fs::read(&path).at(&path)?;
        if !(32..=1024).contains(&bytes.len()) {
            return Err(Error::invalid(format!(
                "{}: a munge key is 32 to 1024 bytes, this one {}",
                path.display(),
                bytes.len()
            ))
            .with_hint("delete it to have a new one made (every node must then be rebuilt)"));
        }
        Ok(Some(Secret::new(bytes)))
    }

    /// The munge key, 0400 and owned by `munge` (the account made now if the image has
    /// none, as munge's postinst would, which then keeps both).
    fn bake_secret(&self, fs: &mut Ext4, plan: &Plan, secret: &Secret) -> Result<()> {
        if !matches!(plan.join, Some(Join::Slurm(_))) {
            return Ok(());
        }
        let (uid, gid) = crate::bake::users::system_account(fs, "munge")?;
        fs.mkdir_p("/etc/munge", &Meta::new(0o700, uid, gid))?;
        Ok(fs.write_file(MUNGE_KEY, secret.bytes(), &Meta::new(0o400, uid, gid))?)
    }
}

impl SlurmJoin {
    /// The one line `pibake plan` prints for it (no secret is in a plan).
    pub fn summary(&self) -> String {
        let what = match (&self.part, &self.node) {
            (SlurmPart::Controller, _) => format!(
                "controller on {}: slurmctld, serving slurm.conf to the computes (configless)",
                self.controller_address
            ),
            (SlurmPart::Compute, Some(n)) if n.spare => format!(
                "spare compute ({} CPUs, {} MiB), State=FUTURE: out of service until resumed",
                n.cpus, n.memory_mb
            ),
            (SlurmPart::Compute, Some(n)) => format!(
                "compute with {} CPUs and {} MiB in {}; slurmd takes slurm.conf from {} ({})",
                n.cpus,
                n.memory_mb,
                n.partitions.join(", "),
                self.controller,
                self.controller_address
            ),
            (SlurmPart::Compute, None) => "compute".into(),
        };
        format!(
            "{what}; {MUNGE_KEY} 0400 munge gets the cluster's munge key from the state directory at build (never shown)"
        )
    }
}
