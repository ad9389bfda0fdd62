//! The cluster inventory: `cluster.yaml`, the role profiles, and the nodes they make.
//!
//! Loading does all the checking that needs no image: every key known, every hostname
//! valid and unique, every address inside its subnet and not taken, every SSH key and
//! password hash usable. Each error names the file, line and column, and says what to do.
//! What comes out, [`Inventory`], is what [`crate::plan`] turns into one plan per node.

pub mod baseref;
pub mod credentials;
pub mod grammar;
pub mod names;
pub(crate) mod net;
pub mod profile;
pub mod schema;
pub mod shipped;
pub mod source;
pub mod var_types;
mod vars;
pub mod wifi;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::basefetch::catalog::CatalogSource;
use crate::error::{Error, IoContext, Result};
use baseref::BaseRef;
use credentials::{PasswordHash, SshKey};
use grammar::mpi_slots;
pub use grammar::{Domain, MPI_SLOTS_VAR, MacAddr, NetworkStack, Timezone};
use net::Subnet;
pub use profile::Profile;
use schema::{ClusterFile, FileDef};
pub use source::Source;

use crate::kinds::labels::{LABELS_VAR, Labels};
use crate::kinds::time::{self, TimeRole, TimeService};
use crate::kinds::{Kinds, Part, Roster};

/// A named subnet of the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<Domain>,
    /// Where automatic addresses start (`first:`), checked to be a host of the subnet.
    pub first: Option<Ipv4Addr>,
}

/// One node, with everything the inventory decides about it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its hostname (a range's member already expanded: `node007`).
    pub name: String,
    /// Its role, a key of `roles:`; the role's profile decides what the image gets.
    pub role: String,
    /// Position among the nodes of its role, from 1.
    pub index: usize,
    /// Built like the others but kept in reserve (`spare: true`).
    pub spare: bool,
    /// Network name -> address (for the networks its profile puts it on).
    pub addresses: BTreeMap<String, Ipv4Addr>,
    /// Interface -> MAC address, for DHCP reservations.
    pub mac: BTreeMap<String, MacAddr>,
    /// The node's own `files:` entries, written after its profile's.
    pub files: Vec<FileDef>,
    /// The node's own `vars:`, overriding the profile's and the cluster's in templates.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Key path of the `nodes:` entry it came from, for error positions.
    pub origin: String,
    /// Its labels as a swarm or k3s member: its `labels` var (its own, else its role's,
    /// else the cluster's), parsed once when the cluster loads.
    pub labels: Labels,
}

/// Checks the kinds of cluster the nodes form and the time service against the roles
/// that use them; each node gets its labels.
fn load_kinds(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    networks: &BTreeMap<String, Network>,
    nodes: &mut [Node],
) -> Result<(Kinds, Option<TimeService>)> {
    for (role, p) in profiles {
        if let [a, b, ..] = p.kinds()[..] {
            return Err(source.error_at(
                &format!("roles.{role}"),
                &format!(
                    "profile `{}` says both `{a}:` and `{b}:`; a node runs one of them",
                    p.name
                ),
            ));
        }
    }
    if let Some(v) = file.vars.get(LABELS_VAR) {
        Labels::parse(v).map_err(|why| source.error_at(&format!("vars.{LABELS_VAR}"), &why))?;
    }
    let labels = vars::labels(source, file, profiles, nodes)?;
    for (n, l) in nodes.iter_mut().zip(labels) {
        n.labels = l;
    }
    let nodes: &[Node] = nodes;
    let var = |n: &Node, name: &str| {
        let n = nodes.iter().find(|m| m.name == n.name)?;
        vars::var_at(source, file, profiles, n, name)
    };
    let model = |n: &Node| profiles[&n.role].def.model.as_deref();
    let roster = Roster {
        source,
        cluster: &file.cluster,
        nodes: nodes
            .iter()
            .map(|n| (n, profiles[&n.role].part()))
            .collect(),
        var: &var,
        model: &model,
    };
    let kinds = Kinds::load(&roster, file)?;
    let serves = |role: &str| profiles[role].def.time == Some(TimeRole::Server);
    let subnet = |net: &str| networks.get(net).map(|n| n.subnet);
    let time = time::load(&roster, &file.time, serves, subnet)?;
    Ok((kinds, time))
}

/// A loaded, checked cluster.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The directory of the cluster file: `base:`, `profiles/`, `overlays/` and
    /// `files: source:` are relative to it.
    pub dir: PathBuf,
    pub(crate) source: Source,
    /// `cluster.yaml` as written (checked, nothing expanded).
    pub file: ClusterFile,
    pub(crate) networks: BTreeMap<String, Network>,
    /// Role name -> its merged profile.
    pub profiles: BTreeMap<String, Profile>,
    /// Every node, ranges expanded, in the file's order, each with its addresses.
    pub nodes: Vec<Node>,
    /// The admin's password hash and SSH keys, parsed from `admin:`.
    pub credentials: Credentials,
    /// Things accepted but worth a look (an all-numeric hostname, a profile's per-model
    /// notes), each a sentence; `validate` and `plan` print them.
    pub warnings: Vec<String>,
    /// The clusters the nodes form by themselves (swarm, k3s, Slurm).
    pub kinds: Kinds,
    /// The cluster's one clock, when a profile says `time: server`.
    pub time: Option<TimeService>,
    /// Where `base: { catalog: NAME }` is looked up: Raspberry Pi Imager's OS list
    /// unless the command line names another (`--catalog`).
    pub catalog: CatalogSource,
}

impl Inventory {
    /// Reads and checks `cluster.yaml` and the profiles it uses.
    pub fn load(path: &Path) -> Result<Inventory> {
        // A cluster's directory stands for its cluster.yaml, as `init DIR` wrote it.
        let file_in_dir = path.join("cluster.yaml");
        let path = match path.is_dir() {
            true if file_in_dir.is_file() => file_in_dir.as_path(),
            true => {
                return Err(Error::invalid(format!(
                    "{} is a directory without a cluster.yaml",
                    path.display()
                ))
                .with_hint("name the cluster file, or make one with `pibake init DIR`"));
            }
            false => path,
        };
        let source = Source::read(path)?;
        let file: ClusterFile = source.parse()?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut warnings = Vec::new();

        if let Some(why) = names::refuse_hostname(&file.cluster) {
            return Err(source.error_at("cluster", &format!("the cluster name: {why}")));
        }
        check_base(&source, &dir, &file)?;
        let networks = networks(&source, &file)?;
        let credentials = check_admin(&source, &file)?;
        check_mirrors(&source, &file)?;

        let mut profiles = BTreeMap::new();
        for (role, def) in &file.roles {
            if let Some(why) = names::refuse_hostname(role) {
                return Err(source.error_at(&format!("roles.{role}"), &format!("role name: {why}")));
            }
            let name = def.profile.clone().unwrap_or_else(|| role.clone());
            let p = Profile::load(&dir, &name)
                .map_err(|e| e.place(|what| source.error_at(&format!("roles.{role}"), what)))?;
            for net in p.networks() {
                if !networks.contains_key(&net) {
                    return Err(p
                        .interface_error(
                            &net,
                            &format!("network `{net}` is not defined in {}", path.display()),
                        )
                        .with_hint(format!(
                            "add `networks: {{ {net}: {{ subnet: ... }} }}` to the cluster file"
                        )));
                }
            }
            warnings.extend(p.warnings.iter().map(|w| format!("role {role}: {w}")));
            profiles.insert(role.clone(), p);
        }

        let nodes = nodes(&source, &file, &networks, &profiles)?;
        // RFC 1123 allows them, but many tools read an all-digit name as an address.
        for n in nodes
            .iter()
            .filter(|n| n.name.chars().all(|c| c.is_ascii_digit()))
        {
            warnings.push(format!(
                "node `{}`: an all-numeric hostname confuses tools that take it for an address; consider a prefix (`node{}`)",
                n.name, n.name
            ));
        }
        if let Some(v) = file.vars.get(MPI_SLOTS_VAR) {
            mpi_slots(v).map_err(|why| source.error_at(&format!("vars.{MPI_SLOTS_VAR}"), &why))?;
        }
        for n in &nodes {
            if let Some(v) = n.vars.get(MPI_SLOTS_VAR) {
                mpi_slots(v).map_err(|why| {
                    source.error_at(&format!("{}.vars.{MPI_SLOTS_VAR}", n.origin), &why)
                })?;
            }
        }
        let mut networks = networks;
        resolve_servers(&source, &file, &mut networks, &nodes)?;
        vars::check_types(&source, &file, &profiles, &nodes)?;
        let mut nodes = nodes;
        let (kinds, time) = load_kinds(&source, &file, &profiles, &networks, &mut nodes)?;
        // The roles that serve the cluster's time get chrony with their packages.
        for role in time.iter().flat_map(|t| &t.roles) {
            if let Some(p) = profiles.get_mut(role)
                && !p.def.packages.iter().any(|p| p == time::SERVER_PACKAGE)
            {
                p.def.packages.push(time::SERVER_PACKAGE.to_string());
            }
        }
        Ok(Inventory {
            kinds,
            time,
            dir,
            source,
            file,
            networks,
            profiles,
            nodes,
            credentials,
            warnings,
            catalog: CatalogSource::default(),
        })
    }

    /// The node's MPI slots: its own `mpi_slots`, else its role's, else the cluster's
    /// (each checked when loaded).
    pub fn mpi_slots(&self, node: &Node) -> Option<u32> {
        [
            node.vars.get(MPI_SLOTS_VAR),
            self.profiles[&node.role].def.vars.get(MPI_SLOTS_VAR),
            self.file.vars.get(MPI_SLOTS_VAR),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| mpi_slots(v).ok())
    }

    pub(crate) fn node(&self, name: &str) -> Result<&Node> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            let e = Error::invalid(format!("{}: no node `{name}`", self.source.path.display()));
            match crate::bootcfg::did_you_mean(name, &names) {
                Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                None => e,
            }
        })
    }

    /// The nodes a selection names, in inventory order: names, ranges (`node[001-010]`)
    /// and roles (`role:worker`).
    pub fn select(&self, selectors: &[String]) -> Result<Vec<&Node>> {
        let mut wanted = std::collections::BTreeSet::new();
        for sel in selectors {
            if let Some(role) = sel.strip_prefix("role:") {
                let before = wanted.len();
                wanted.extend(
                    self.nodes
                        .iter()
                        .filter(|n| n.role == role)
                        .map(|n| n.name.clone()),
                );
                if wanted.len() == before && !self.nodes.iter().any(|n| n.role == role) {
                    return Err(Error::invalid(format!(
                        "{}: no node has role `{role}`",
                        self.source.path.display()
                    )));
                }
            } else {
                for name in names::expand(sel).map_err(Error::invalid)? {
                    wanted.insert(self.node(&name)?.name.clone());
                }
            }
        }
        Ok(self
            .nodes
            .iter()
            .filter(|n| wanted.contains(&n.name))
            .collect())
    }

    /// The build machine's file `rel` names (relative to the cluster file), refused
    /// unless it lies inside the cluster's directory or one of its `source_dirs`, so an
    /// inventory can never copy the build host's own files (its /etc/shadow) into an
    /// image, and unless it is a regular file (a FIFO would block `validate`, a device
    /// never end). Refusals are unplaced: the caller knows the line that named it.
    pub fn source(&self, rel: &str) -> Result<PathBuf> {
        let path = self.dir.join(rel);
        let real = path.canonicalize().at(&path)?;
        let allowed = std::iter::once(self.dir.clone())
            .chain(self.file.source_dirs.iter().map(|d| self.dir.join(d)))
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| real.starts_with(d));
        if allowed {
            crate::values::input_file(&real, false)?;
            return Ok(real);
        }
        Err(Error::unplaced(format!(
            "`{rel}` ({}) is outside the cluster's directory",
            real.display()
        ))
        .with_hint("copy it beside cluster.yaml, or allow its directory with `source_dirs: [DIR]` in the cluster file"))
    }

    /// The node's part in the cluster its role forms, if any.
    pub fn part(&self, node: &Node) -> Option<Part> {
        self.profiles[&node.role].part()
    }

    /// The domain of the first network that has one.
    pub fn domain(&self) -> Option<&str> {
        self.networks
            .values()
            .find_map(|n| n.domain.as_ref().map(Domain::as_str))
    }
}

/// A `base:` path that is there must be a regular file, refused at its line when it is
/// not: reading a FIFO blocks `build`, `plan` and `inspect`, and `/dev/zero` never ends. A
/// base that is not there (yet), or cannot be read, is left to the commands that read it;
/// a download is written by pibake itself into its cache (`crate::basefetch`).
fn check_base(source: &Source, dir: &Path, file: &ClusterFile) -> Result<()> {
    let Some(BaseRef::Path(base)) = &file.base else {
        return Ok(());
    };
    match crate::values::input_file(&dir.join(base), false) {
        Ok(_) | Err(Error::Io { .. }) => Ok(()),
        Err(e) => Err(e.place(|what| source.error_at("base", what))),
    }
}

fn networks(source: &Source, file: &ClusterFile) -> Result<BTreeMap<String, Network>> {
    let mut out = BTreeMap::new();
    for (name, def) in &file.networks {
        let at = |k: &str| format!("networks.{name}.{k}");
        let subnet = Subnet::parse(&def.subnet).map_err(|e| source.error_at(&at("subnet"), &e))?;
        let host = |key: String, text: &str| -> Result<Ipv4Addr> {
            let a: Ipv4Addr = text
                .parse()
                .map_err(|_| source.error_at(&key, &format!("`{text}` is not an IPv4 address")))?;
            if let Some(why) = subnet.refuse_host(a) {
                return Err(source.error_at(&key, &why));
            }
            Ok(a)
        };
        // A gateway or DNS server is an address, or the name of the node that is one
        // (resolved once addresses are handed out).
        let gateway = match def.gateway.as_deref() {
            Some(g) if g.parse::<Ipv4Addr>().is_ok() => Some(host(at("gateway"), g)?),
            _ => None,
        };
        let mut dns = Vec::new();
        for (i, d) in def.dns.iter().enumerate() {
            if let Ok(a) = d.parse::<Ipv4Addr>() {
                dns.push(a);
            } else if names::refuse_hostname(d).is_some() {
                return Err(source.error_at(
                    &at(&format!("dns.{i}")),
                    &format!("`{d}` is neither an IPv4 address nor a node name"),
                ));
            }
        }
        let domain = match &def.domain {
            Some(d) => Some(Domain::parse(d).map_err(|e| source.error_at(&at("domain"), &e))?),
            None => None,
        };
        let first = match &def.first {
            Some(f) => Some(host(at("first"), f)?),
            None => None,
        };
        // Two networks over the same addresses would hand two nodes one address.
        if let Some(other) = out.values().find(|n: &&Network| n.subnet.overlaps(subnet)) {
            return Err(source
                .error_at(
                    &at("subnet"),
                    &format!(
                        "{subnet} overlaps network `{}` ({}): nodes on both would share addresses",
                        other.name, other.subnet
                    ),
                )
                .with_hint("give each network its own subnet"));
        }
        out.insert(
            name.clone(),
            Network {
                name: name.clone(),
                subnet,
                gateway,
                dns,
                domain,
                first,
            },
        );
    }
    Ok(out)
}

/// The admin's credentials, parsed.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub(crate) password_hash: Option<PasswordHash>,
    pub(crate) ssh_keys: Vec<SshKey>,
}

impl Credentials {
    /// What makes these credentials known to everyone, if anything: the examples'
    /// placeholder key, or a hash of a well-known password.
    pub fn known(&self) -> Option<String> {
        if let Some(p) = self
            .password_hash
            .as_ref()
            .and_then(PasswordHash::known_password)
        {
            return Some(format!("the password hash is of \"{p}\""));
        }
        self.ssh_keys.iter().any(SshKey::is_example).then(|| {
            "an SSH key is the examples' placeholder, whose private half nobody holds".into()
        })
    }
}

fn check_admin(source: &Source, file: &ClusterFile) -> Result<Credentials> {
    let a = &file.admin;
    let valid = a
        .name
        .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && a.name.len() <= 32
        && a.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(source.error_at("admin.name", &format!("user name `{}` must be lowercase letters, digits, `-` and `_`, start with a letter, at most 32 characters", a.name)));
    }
    let password_hash = match (&a.password_hash, a.locked) {
        (Some(h), false) => Some(
            PasswordHash::parse(h).map_err(|why| source.error_at("admin.password_hash", &why))?,
        ),
        (Some(_), true) => {
            return Err(source.error_at(
                "admin.locked",
                "`locked: true` and a `password_hash` contradict each other",
            ));
        }
        (None, true) => None,
        (None, false) => {
            return Err(source.error_at("admin", "the admin user needs `password_hash: ...` or `locked: true`")
                .with_hint("make a hash with `mkpasswd -m yescrypt`, or lock the password and log in with ssh_keys"));
        }
    };
    if a.locked && a.ssh_keys.is_empty() {
        return Err(source.error_at(
            "admin",
            "a locked admin without ssh_keys could never log in",
        ));
    }
    let ssh_keys = a
        .ssh_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            SshKey::parse(k).map_err(|why| source.error_at(&format!("admin.ssh_keys.{i}"), &why))
        })
        .collect::<Result<_>>()?;
    Ok(Credentials {
        password_hash,
        ssh_keys,
    })
}

/// Expands ranges, checks names, and gives every node its addresses: explicit ones
/// first, then the free ones of each network in node order.
fn nodes(
    source: &Source,
    file: &ClusterFile,
    networks: &BTreeMap<String, Network>,
    profiles: &BTreeMap<String, Profile>,
) -> Result<Vec<Node>> {
    if file.nodes.is_empty() {
        // A build of nothing that reports success reads as a cluster built.
        return Err(source
            .error_at("nodes", "the cluster has no nodes")
            .with_hint(
                "list them under `nodes:`, e.g. `- { name: \"node[1-4]\", role: worker }`",
            ));
    }
    let mut out: Vec<Node> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut per_role: HashMap<String, usize> = HashMap::new();
    let mut macs: HashMap<MacAddr, String> = HashMap::new();
    // Network -> address -> the node (key path) holding it. Numeric gateway and DNS
    // addresses belong to machines outside the inventory and are never handed out.
    let mut taken: BTreeMap<String, BTreeMap<Ipv4Addr, String>> = networks
        .keys()
        .map(|n| (n.clone(), BTreeMap::new()))
        .collect();
    let infra = |net: &str, a: Ipv4Addr| {
        let n = &networks[net];
        n.gateway == Some(a) || n.dns.contains(&a)
    };

    for (i, def) in file.nodes.iter().enumerate() {
        let at = format!("nodes.{i}");
        if !profiles.contains_key(&def.role) {
            let roles: Vec<&String> = file.roles.keys().collect();
            let e = source.error_at(
                &format!("{at}.role"),
                &format!("no role `{}` in `roles:`", def.role),
            );
            return Err(match crate::bootcfg::did_you_mean(&def.role, &roles) {
                Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                None => e.with_hint("add the role under `roles:`"),
            });
        }
        let expanded =
            names::expand(&def.name).map_err(|e| source.error_at(&format!("{at}.name"), &e))?;
        for net in def.addresses.keys() {
            if !networks.contains_key(net) {
                return Err(source.error_at(
                    &format!("{at}.addresses.{net}"),
                    &format!("no network `{net}` in `networks:`"),
                ));
            }
        }
        for (k, name) in expanded.iter().enumerate() {
            if let Some(why) = names::refuse_hostname(name) {
                return Err(source.error_at(&format!("{at}.name"), &why));
            }
            if let Some(first) = seen.insert(name.to_lowercase(), at.clone()) {
                let p = source.pos(&format!("{first}.name"));
                return Err(source.error_at(
                    &format!("{at}.name"),
                    &format!("hostname `{name}` is used twice (first at line {})", p.line),
                ));
            }
            let index = per_role.entry(def.role.clone()).or_default();
            *index += 1;
            let mut addresses = BTreeMap::new();
            for (net, text) in &def.addresses {
                let key = format!("{at}.addresses.{net}");
                let first: Ipv4Addr = text.parse().map_err(|_| {
                    source.error_at(&key, &format!("`{text}` is not an IPv4 address"))
                })?;
                let a = u32::try_from(k)
                    .ok()
                    .and_then(|k| u32::from(first).checked_add(k))
                    .map(Ipv4Addr::from)
                    .ok_or_else(|| {
                        source.error_at(
                            &key,
                            &format!("{name}: the range runs past 255.255.255.255"),
                        )
                    })?;
                let network = &networks[net];
                if let Some(why) = network.subnet.refuse_host(a) {
                    return Err(source.error_at(&key, &format!("{name}: {why}")));
                }
                if infra(net, a) {
                    return Err(source.error_at(&key, &format!("{name}: {a} is the gateway or a DNS server of network {net}"))
                        .with_hint(format!("if {name} is that server, write its name instead of the address: `gateway: {name}`")));
                }
                if let Some(holder) = taken[net].get(&a) {
                    return Err(source.error_at(
                        &key,
                        &format!(
                            "{name}: address {a} is already {}",
                            describe(source, holder)
                        ),
                    ));
                }
                taken
                    .get_mut(net)
                    .expect("every network")
                    .insert(a, format!("node {name} ({at})"));
                addresses.insert(net.clone(), a);
            }
            let mut mac = BTreeMap::new();
            for (iface, text) in &def.mac {
                let key = format!("{at}.mac.{iface}");
                if !(1..=15).contains(&iface.len())
                    || !iface
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                {
                    return Err(source.error_at(
                        &key,
                        &format!("`{iface}` is not an interface name like eth0"),
                    ));
                }
                let m = MacAddr::parse(text)
                    .map_err(|e| source.error_at(&key, &format!("{name}: {e}")))?;
                if let Some(holder) = macs.insert(m, format!("node {name} ({at})")) {
                    return Err(
                        source.error_at(&key, &format!("{name}: MAC {m} is already {holder}'s"))
                    );
                }
                mac.insert(iface.clone(), m);
            }
            out.push(Node {
                name: name.clone(),
                role: def.role.clone(),
                index: *index,
                spare: def.spare,
                addresses,
                mac,
                files: def.files.clone(),
                vars: def.vars.clone(),
                origin: at.clone(),
                labels: Labels::default(),
            });
        }
    }

    // Hand out the remaining addresses in node order.
    for node in &mut out {
        for net in profiles[&node.role].networks() {
            if node.addresses.contains_key(&net) {
                continue;
            }
            let network = &networks[&net];
            let first = network.first.unwrap_or(network.subnet.first_host());
            let t = taken.get_mut(&net).expect("every network");
            let Some(a) = network
                .subnet
                .hosts_from(first)
                .find(|a| !t.contains_key(a) && !infra(&net, *a))
            else {
                return Err(source
                    .error_at(
                        &format!("networks.{net}.subnet"),
                        &format!(
                            "no free address left in {} for node {}",
                            network.subnet, node.name
                        ),
                    )
                    .with_hint("use a larger subnet or an earlier `first:` address"));
            };
            t.insert(a, format!("node {} ({})", node.name, node.origin));
            node.addresses.insert(net, a);
        }
    }
    Ok(out)
}

/// Gateways and DNS servers given as node names become those nodes' addresses.
fn resolve_servers(
    source: &Source,
    file: &ClusterFile,
    networks: &mut BTreeMap<String, Network>,
    nodes: &[Node],
) -> Result<()> {
    for (name, def) in &file.networks {
        let lookup = |key: String, n: &str| -> Result<Ipv4Addr> {
            let node = nodes.iter().find(|x| x.name == n).ok_or_else(|| {
                source.error_at(&key, &format!("no node `{n}` (nor an IPv4 address)"))
            })?;
            node.addresses.get(name).copied().ok_or_else(|| {
                source.error_at(
                    &key,
                    &format!("node `{n}` has no address on network {name}"),
                )
            })
        };
        let net = networks.get_mut(name).expect("every network");
        if let Some(g) = def
            .gateway
            .as_deref()
            .filter(|g| g.parse::<Ipv4Addr>().is_err())
        {
            net.gateway = Some(lookup(format!("networks.{name}.gateway"), g)?);
        }
        for (i, d) in def.dns.iter().enumerate() {
            if d.parse::<Ipv4Addr>().is_err() {
                let a = lookup(format!("networks.{name}.dns.{i}"), d)?;
                net.dns.push(a);
            }
        }
    }
    Ok(())
}

fn describe(source: &Source, holder: &str) -> String {
    match holder.rsplit_once('(') {
        Some((who, at)) => {
            let p = source.pos(at.trim_end_matches(')'));
            format!("taken by {}(line {})", who, p.line)
        }
        None => holder.to_string(),
    }
}

impl Inventory {
    /// Every profile's `packages:` installed from the network on first boot instead of
    /// baked in (`--online-packages`): for bases without apt sources, like the demo's.
    pub fn packages_online_instead(&mut self) {
        for p in self.profiles.values_mut() {
            let baked = std::mem::take(&mut p.def.packages);
            for name in baked {
                if !p.def.packages_online.contains(&name) {
                    p.def.packages_online.push(name);
                }
            }
        }
    }
}

/// `apt.mirrors`: both sides must be http(s) URLs, since they become request URLs.
fn check_mirrors(source: &Source, file: &ClusterFile) -> Result<()> {
    for (from, to) in &file.apt.mirrors {
        for url in [from, to] {
            let ok = pibake_apt::sources::Uri::new(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            if ok.is_none() {
                return Err(source
                    .error_at(
                        &format!("apt.mirrors.{from}"),
                        &format!("`{url}` is not an http:// or https:// URL"),
                    )
                    .with_hint(
                        "write `\"http://archive/debian\": \"http://mirror:3142/debian\"`",
                    ));
            }
        }
    }
    Ok(())
}
