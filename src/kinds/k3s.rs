//! k3s: a profile's `k3s: server|agent`, cluster.yaml's `k3s: { binary, images }` (k3s
//! is not in Debian, so the user gives one release's files, named by sha256), the
//! cluster token made once into the state directory, and each member's
//! `/etc/rancher/k3s/config.yaml` (0600: the build adds the token to it).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use pibake_ext4::{Ext4, Meta};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Join, Kind, Part, Roster, Secret, starter};
use crate::error::{Error, IoContext, Result};
use crate::inventory::schema::ArtifactDef;
use crate::inventory::source::Source;
use crate::inventory::{Inventory, Node};
use crate::plan::{Plan, PlannedArtifact};
use pibake_image::digest::Sha256;

/// Where k3s reads its settings; holds the token, so 0600.
pub const K3S_CONFIG: &str = "/etc/rancher/k3s/config.yaml";
/// Where k3s imports airgap image archives from when it starts.
pub const K3S_IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";
/// The token's file in the state directory's `_cluster`.
const TOKEN_FILE: &str = "k3s-token";

/// The part a node plays in the k3s cluster (`k3s:` in a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum K3sPart {
    /// Runs `k3s server`: the control plane the agents join.
    Server,
    /// Runs `k3s agent`, joining the server.
    Agent,
}

impl TryFrom<String> for K3sPart {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<K3sPart, String> {
        super::word(
            "k3s",
            &s,
            &[("server", K3sPart::Server), ("agent", K3sPart::Agent)],
        )
    }
}

/// `k3s:` in cluster.yaml: the files of one k3s release, for the nodes' architecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K3sDef {
    /// `binary:`, the `k3s` executable (installed as /usr/local/bin/k3s).
    pub binary: ArtifactDef,
    /// `images:`, the release's airgap images archive (`k3s-airgap-images-arm64.tar.zst`),
    /// put where k3s imports it from on start.
    pub images: ArtifactDef,
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

/// A k3s member's part, as its plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct K3sJoin {
    /// Server or agent.
    pub part: K3sPart,
    /// The server agents join.
    pub server: String,
    /// Its URL (`https://ADDRESS:6443`).
    pub url: String,
    /// This node's labels, `name=value`, `role=` first.
    pub labels: Vec<String>,
    /// `/etc/rancher/k3s/config.yaml` without its `token:` line, which the build adds
    /// from the state directory.
    pub config: String,
}

fn part(p: Part) -> Option<K3sPart> {
    match p {
        Part::K3s(k) => Some(k),
        _ => None,
    }
}

/// Checks the k3s settings against the roles that say `k3s:`.
pub fn load(roster: &Roster, def: Option<&K3sDef>) -> Result<Option<K3s>> {
    let source = roster.source;
    let members: Vec<(&Node, K3sPart)> = roster.members(part);
    let def = match (def, members.first()) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            let e = source.error_at("k3s", "`k3s:` is set, but no role's profile says `k3s:`");
            return Err(e.with_hint(
                "give the roles the shipped `k3s-server` and `k3s-agent` profiles, or remove `k3s:`",
            ));
        }
        (None, Some((n, _))) => {
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
    let servers: Vec<&Node> = members
        .iter()
        .filter(|(n, p)| !n.spare && *p == K3sPart::Server)
        .map(|(n, _)| *n)
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

impl Kind for K3s {
    fn key(&self) -> &'static str {
        "k3s"
    }

    fn plan(&self, inv: &Inventory, node: &Node, plan: &mut Plan) -> Result<()> {
        let Some(part) = inv.part(node).and_then(part) else {
            return Ok(());
        };
        let labels = node.labels.with_role(&node.role);
        let url = format!("https://{}:6443", self.server_address);
        let config = self.config(inv, node, part, &url, &labels);
        if let (Some(t), K3sPart::Agent) = (&inv.time, part) {
            t.order(node, "k3s-agent.service", plan);
        }
        for (a, path, mode) in [
            (&self.binary, "/usr/local/bin/k3s".to_string(), 0o755),
            (
                &self.images,
                format!("{K3S_IMAGES_DIR}/{}", self.images.name),
                0o644,
            ),
        ] {
            plan_artifact(inv, a, path, mode, plan)?;
        }
        plan.join = Some(Join::K3s(K3sJoin {
            part,
            server: self.server.clone(),
            url,
            labels,
            config,
        }));
        Ok(())
    }

    fn context(&self) -> Value {
        json!({
            "server": self.server, "url": format!("https://{}:6443", self.server_address),
        })
    }

    fn secret(&self, state: &Path) -> Result<Option<Secret>> {
        let path = crate::bake::hostkeys::cluster_dir(state)?.join(TOKEN_FILE);
        if !path.exists() {
            let token = pibake_image::digest::hex(Secret::random(32).bytes());
            crate::bake::hostkeys::write_secret(&path, format!("{token}\n").as_bytes())?;
        }
        let text = std::fs::read_to_string(&path).at(&path)?;
        let token = K3sToken::parse(&text).map_err(|why| {
            Error::invalid(format!("{}: {why}", path.display()))
                .with_hint("delete it to have a new one made (every node must then be rebuilt)")
        })?;
        Ok(Some(Secret::new(token.0.into_bytes())))
    }

    /// k3s's config: the plan's, with the cluster token; 0600, as the token lets a
    /// machine into the cluster.
    fn bake_secret(&self, fs: &mut Ext4, plan: &Plan, secret: &Secret) -> Result<()> {
        let Some(Join::K3s(K3sJoin { config, .. })) = &plan.join else {
            return Ok(());
        };
        let mut text = format!("{config}token: \"").into_bytes();
        text.extend_from_slice(secret.bytes());
        text.extend_from_slice(b"\"\n");
        let dir = Meta::new(0o755, 0, 0);
        fs.mkdir_p(parent(K3S_CONFIG), &dir)?;
        Ok(fs.write_file(K3S_CONFIG, &text, &Meta::new(0o600, 0, 0))?)
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(p, _)| p)
}

impl K3s {
    /// `/etc/rancher/k3s/config.yaml` without its token.
    fn config(
        &self,
        inv: &Inventory,
        node: &Node,
        part: K3sPart,
        url: &str,
        labels: &[String],
    ) -> String {
        let mut config = format!(
            "# Written by pibake: k3s on {} of the cluster {}. The build adds the cluster's\n# token (kept in its state directory), so this file is 0600.\nnode-name: {}\n",
            node.name, inv.file.cluster, node.name
        );
        if let Some(a) = node.addresses.values().next() {
            config.push_str(&format!("node-ip: {a}\n"));
        }
        match part {
            K3sPart::Server => config.push_str(&format!(
                "advertise-address: {0}\ntls-san:\n  - \"{0}\"\n  - \"{1}\"\n",
                self.server_address, self.server
            )),
            K3sPart::Agent => config.push_str(&format!("server: \"{url}\"\n")),
        }
        config.push_str("node-label:\n");
        for l in labels {
            config.push_str(&format!("  - \"{l}\"\n"));
        }
        config
    }
}

/// One of the user's files, read only from the cluster's directory or its
/// `source_dirs`; a file not there yet is a warning (the build needs it).
fn plan_artifact(
    inv: &Inventory,
    a: &Artifact,
    path: String,
    mode: u16,
    plan: &mut Plan,
) -> Result<()> {
    let mut source = inv.dir.join(&a.rel);
    if source.exists() {
        source = inv
            .source(&a.rel)
            .map_err(|e| e.place(|what| inv.source.error_at(&format!("{}.path", a.key), what)))?;
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
    Ok(())
}

impl K3sJoin {
    /// The one line `pibake plan` prints for it (no secret is in a plan).
    pub fn summary(&self) -> String {
        let what = match self.part {
            K3sPart::Server => format!("server on {}", self.url),
            K3sPart::Agent => format!("agent that joins {}", self.url),
        };
        format!(
            "{what}; labels {}; {K3S_CONFIG} 0600 gets the cluster token from the state directory at build (never shown)",
            self.labels.join(" ")
        )
    }
}
