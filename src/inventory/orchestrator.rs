//! Clusters the nodes form by themselves on first boot: a Docker swarm, or k3s.
//!
//! A profile says which part its role's nodes play (`swarm: manager|worker`, `k3s:
//! server|agent`); cluster.yaml says what the members share (`swarm: { stack }`, `k3s: {
//! binary, images }`). Loading checks it all once: one node to start the cluster, with a
//! static address the others can reach; a stack name, labels and file names with a
//! grammar; the user's files named by sha256. Plans and first-boot scripts then only
//! ever see parsed values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use pibake_image::digest::Sha256;
use serde::Serialize;
use serde_json::Value;

use super::Node;
use super::profile::Profile;
use super::schema::{ArtifactDef, ClusterFile};
use super::source::Source;
use crate::error::Result;

/// The template var whose map becomes a swarm or k3s member's node labels.
pub const LABELS_VAR: &str = "labels";

/// The part a node plays in the Docker swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwarmPart {
    /// Joins with the manager token; the first non-spare one initialises the swarm and
    /// deploys the stack.
    Manager,
    /// Joins with the worker token.
    Worker,
}

/// The part a node plays in the k3s cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum K3sPart {
    /// Runs `k3s server`: the control plane the agents join.
    Server,
    /// Runs `k3s agent`, joining the server.
    Agent,
}

impl SwarmPart {
    /// `manager` or `worker`.
    pub fn parse(s: &str) -> std::result::Result<SwarmPart, String> {
        match s {
            "manager" => Ok(SwarmPart::Manager),
            "worker" => Ok(SwarmPart::Worker),
            _ => Err(format!("swarm `{s}`: use manager or worker")),
        }
    }

    /// The word swarm.sh and `docker swarm join-token` use.
    pub fn name(self) -> &'static str {
        match self {
            SwarmPart::Manager => "manager",
            SwarmPart::Worker => "worker",
        }
    }
}

impl K3sPart {
    /// `server` or `agent`.
    pub fn parse(s: &str) -> std::result::Result<K3sPart, String> {
        match s {
            "server" => Ok(K3sPart::Server),
            "agent" => Ok(K3sPart::Agent),
            _ => Err(format!("k3s `{s}`: use server or agent")),
        }
    }
}

/// A word of letters, digits and inner `.`, `_`, `-`, up to 63 characters: the shape
/// both Docker and Kubernetes accept for a label's name and value.
fn label_word(s: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    s.len() <= 63
        && s.chars().all(inner)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Node labels (`zone=rack1`), from the `labels` var: a map of lowercase names to
/// scalar values. `role` is pibake's own: every member gets `role=<its role>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Parses the value of a `labels:` var.
    pub fn parse(v: &Value) -> std::result::Result<Labels, String> {
        let Value::Object(map) = v else {
            return Err(
                "`labels` must be a map of label names to values (`{ zone: rack1 }`)".into(),
            );
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            if !label_word(k) || k.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(format!(
                    "label name `{k}`: use lowercase letters, digits and inner `.`, `_`, `-` (at most 63)"
                ));
            }
            if k == "role" {
                return Err(
                    "label `role` is pibake's: every member is labelled with its role".into(),
                );
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(format!(
                        "label `{k}`: the value must be text, a number or true/false"
                    ));
                }
            };
            if !text.is_empty() && !label_word(&text) {
                return Err(format!(
                    "label `{k}`: value `{text}` must be letters, digits and inner `.`, `_`, `-` (at most 63)"
                ));
            }
            out.insert(k.clone(), text);
        }
        Ok(Labels(out))
    }

    /// `role=ROLE` first, then the node's own labels, each `name=value`.
    pub fn with_role(&self, role: &str) -> Vec<String> {
        std::iter::once(format!("role={role}"))
            .chain(self.0.iter().map(|(k, v)| format!("{k}={v}")))
            .collect()
    }
}

/// The name a swarm stack is deployed as: lowercase letters, digits, `_` and `-`,
/// starting with a letter or digit, at most 63 (Compose's project names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StackName(String);

impl StackName {
    /// Parses a stack name.
    pub fn parse(s: &str) -> std::result::Result<StackName, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(StackName(s.to_string()))
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

/// The k3s cluster token: one line of letters, digits and `:._-`, 16 to 512 long (k3s
/// takes any string; pibake makes 64 hex digits). A secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct K3sToken(String);

impl K3sToken {
    /// Parses a token file's text (one line, its newline optional).
    pub fn parse(text: &str) -> std::result::Result<K3sToken, String> {
        let t = text.strip_suffix('\n').unwrap_or(text);
        let ok = (16..=512).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-'));
        if ok {
            Ok(K3sToken(t.to_string()))
        } else {
            Err("a k3s token is one line of 16 to 512 letters, digits and `:._-`".into())
        }
    }

    /// The token itself, for the one file it goes into.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for K3sToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("K3sToken(not shown)")
    }
}

/// A user's file baked into the images as it is (`k3s.binary`, `k3s.images`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The key path in cluster.yaml (`k3s.binary`), for messages.
    pub key: String,
    /// `path:` as written, relative to the cluster file.
    pub rel: String,
    /// The file's name alone: letters, digits, `.`, `_`, `+`, `-`.
    pub name: String,
    /// What its bytes must hash to.
    pub sha256: Sha256,
}

/// Airgap image archives k3s imports on start, by the ends of their names.
const IMAGE_ARCHIVES: &[&str] = &[
    ".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.lz4", ".tar.bz2",
];

fn artifact(source: &Source, key: &str, def: &ArtifactDef) -> Result<Artifact> {
    let sha256 = def.sha256.parse().map_err(|_| {
        source
            .error_at(
                &format!("{key}.sha256"),
                &format!("`{}` is not a sha256 (64 hex digits)", def.sha256),
            )
            .with_hint(format!("`sha256sum {}` prints it", def.path))
    })?;
    let name = def.path.rsplit('/').next().unwrap_or_default();
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if !ok {
        return Err(source.error_at(
            &format!("{key}.path"),
            &format!(
                "`{}`: the file's name must be letters, digits, `.`, `_`, `+` and `-`",
                def.path
            ),
        ));
    }
    Ok(Artifact {
        key: key.to_string(),
        rel: def.path.clone(),
        name: name.to_string(),
        sha256,
    })
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

/// The cluster's k3s.
#[derive(Debug, Clone)]
pub struct K3s {
    /// The one non-spare server.
    pub server: String,
    /// Its address on its first network: the agents' `https://ADDRESS:6443`.
    pub server_address: Ipv4Addr,
    /// The k3s executable.
    pub binary: Artifact,
    /// The airgap images archive.
    pub images: Artifact,
}

/// The swarm part of a role's merged profile (checked when the profile loaded).
pub fn swarm_part(p: &Profile) -> Option<SwarmPart> {
    p.def
        .swarm
        .as_deref()
        .and_then(|s| SwarmPart::parse(s).ok())
}

/// The k3s part of a role's merged profile (checked when the profile loaded).
pub fn k3s_part(p: &Profile) -> Option<K3sPart> {
    p.def.k3s.as_deref().and_then(|s| K3sPart::parse(s).ok())
}

/// The one node of `starters` that starts a cluster, with its address.
fn starter<'n>(source: &Source, starters: &[&'n Node], what: &str) -> Result<(&'n Node, Ipv4Addr)> {
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

/// Checks the swarm and k3s settings against the roles that use them.
pub fn load(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    nodes: &[Node],
) -> Result<(Option<Swarm>, Option<K3s>)> {
    for (role, p) in profiles {
        if p.def.swarm.is_some() && p.def.k3s.is_some() {
            return Err(source.error_at(
                &format!("roles.{role}"),
                &format!(
                    "profile `{}` says both `swarm:` and `k3s:`; a node runs one of them",
                    p.name
                ),
            ));
        }
    }
    for n in nodes {
        if let Some(v) = n.vars.get(LABELS_VAR) {
            Labels::parse(v)
                .map_err(|why| source.error_at(&format!("{}.vars.{LABELS_VAR}", n.origin), &why))?;
        }
    }
    if let Some(v) = file.vars.get(LABELS_VAR) {
        Labels::parse(v).map_err(|why| source.error_at(&format!("vars.{LABELS_VAR}"), &why))?;
    }
    Ok((
        load_swarm(source, file, profiles, nodes)?,
        load_k3s(source, file, profiles, nodes)?,
    ))
}

fn load_swarm(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    nodes: &[Node],
) -> Result<Option<Swarm>> {
    let part = |n: &Node| swarm_part(&profiles[&n.role]);
    if !nodes.iter().any(|n| part(n).is_some()) {
        if file.swarm.stack.is_some() {
            let e = source.error_at(
                "swarm",
                "`swarm:` is set, but no role's profile says `swarm:`",
            );
            return Err(e.with_hint(
                "give the roles a swarm profile (`swarm-manager`, `swarm-node`), or remove `swarm:`",
            ));
        }
        return Ok(None);
    }
    let managers: Vec<&Node> = nodes
        .iter()
        .filter(|n| !n.spare && part(n) == Some(SwarmPart::Manager))
        .collect();
    let (leader, leader_address) = starter(source, &managers, "swarm (a `swarm: manager`)")?;
    let stack = match &file.swarm.stack {
        Some(s) => StackName::parse(s).map_err(|why| source.error_at("swarm.stack", &why))?,
        None => StackName::parse(&file.cluster.to_ascii_lowercase()).map_err(|why| {
            source.error_at("cluster", &format!("as the default stack name: {why}"))
        })?,
    };
    Ok(Some(Swarm {
        leader: leader.name.clone(),
        leader_address,
        stack,
    }))
}

fn load_k3s(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    nodes: &[Node],
) -> Result<Option<K3s>> {
    let part = |n: &Node| k3s_part(&profiles[&n.role]);
    let member = nodes.iter().find(|n| part(n).is_some());
    let def = match (&file.k3s, member) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            let e = source.error_at("k3s", "`k3s:` is set, but no role's profile says `k3s:`");
            return Err(e.with_hint(
                "give the roles the shipped `k3s-server` and `k3s-agent` profiles, or remove `k3s:`",
            ));
        }
        (None, Some(n)) => {
            let what = format!(
                "role `{}` runs k3s, and cluster.yaml has no `k3s:` naming its files",
                n.role
            );
            let e = source.error_at(&format!("roles.{}", n.role), &what);
            return Err(e.with_hint(
                "k3s is not in Debian: add `k3s: { binary: { path: k3s-arm64, sha256: ... }, images: { path: k3s-airgap-images-arm64.tar.zst, sha256: ... } }` from one k3s release",
            ));
        }
        (Some(def), Some(_)) => def,
    };
    let binary = artifact(source, "k3s.binary", &def.binary)?;
    let images = artifact(source, "k3s.images", &def.images)?;
    if !IMAGE_ARCHIVES.iter().any(|s| images.name.ends_with(s)) {
        let what = format!(
            "`{}` is not an archive k3s imports: its name must end in {}",
            images.rel,
            IMAGE_ARCHIVES.join(", ")
        );
        return Err(source.error_at("k3s.images.path", &what).with_hint(
            "use the release's k3s-airgap-images-<arch>.tar.zst (or .tar.gz) as downloaded",
        ));
    }
    let servers: Vec<&Node> = nodes
        .iter()
        .filter(|n| !n.spare && part(n) == Some(K3sPart::Server))
        .collect();
    if servers.len() > 1 {
        let names: Vec<&str> = servers.iter().map(|n| n.name.as_str()).collect();
        let what = format!(
            "k3s has more than one server ({}); pibake bakes one server and its agents",
            names.join(", ")
        );
        return Err(source
            .error_at(&servers[1].origin, &what)
            .with_hint("make the others agents, or mark them `spare: true`"));
    }
    let (server, server_address) = starter(source, &servers, "k3s cluster (a `k3s: server`)")?;
    Ok(Some(K3s {
        server: server.name.clone(),
        server_address,
        binary,
        images,
    }))
}
