//! The YAML the user writes: `cluster.yaml` and `profiles/<role>.yaml`.
//!
//! Every struct refuses unknown keys, so a typo is an error with a did-you-mean instead
//! of a setting silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::baseref::BaseRef;
use super::grammar::{ClientPath, IfaceName, LocalDeb, UnitName};
use super::var_types::VarType;
use super::wifi::{Country, Psk, Ssid};
use crate::kinds::k3s::{K3sDef, K3sPart};
use crate::kinds::slurm::{SlurmDef, SlurmPart};
use crate::kinds::swarm::{SwarmDef, SwarmPart};
use crate::kinds::time::{TimeDef, TimeRole};
use crate::values::ByteSize;

/// `cluster.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster's name (a hostname-like word).
    pub cluster: String,
    /// The base image: a path relative to the cluster file, `{ url, sha256 }` or
    /// `{ catalog: NAME }`.
    pub base: Option<BaseRef>,
    /// Subnets the nodes have addresses on, by name.
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkDef>,
    /// `admin:`: the one login account every node gets.
    pub admin: AdminDef,
    /// How the nodes' sshd lets people in.
    #[serde(default)]
    pub ssh: SshDef,
    /// Role name -> profile; a role without a profile uses the profile of its own name.
    pub roles: BTreeMap<String, RoleDef>,
    /// `nodes:`: the machines, in the order addresses are handed out and images built.
    pub nodes: Vec<NodeDef>,
    /// Free-form values for templates (`{{vars.site_title}}`).
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Directories outside the cluster's own that `files: source:` and `debs:` may read
    /// from (relative to the cluster file). Nothing else of the build machine is read.
    #[serde(default)]
    pub source_dirs: Vec<String>,
    /// How role packages are fetched at build time.
    #[serde(default)]
    pub apt: AptDef,
    /// `swarm:`, the Docker swarm formed by the nodes whose profile says `swarm:`.
    #[serde(default)]
    pub swarm: SwarmDef,
    /// `k3s:`, the k3s release the nodes whose profile says `k3s:` run (k3s is not in
    /// Debian, so the user gives its files).
    pub k3s: Option<K3sDef>,
    /// `slurm:`, the Slurm cluster of the nodes whose profile says `slurm:`.
    pub slurm: Option<SlurmDef>,
    /// `time:`, the cluster's one clock, served by the node whose profile says `time:
    /// server`.
    #[serde(default)]
    pub time: TimeDef,
    /// `root_size:`, the root partition's size in every node's image (`4GiB`), unless a
    /// role's profile says otherwise; the base's root is grown to it at build time.
    pub root_size: Option<ByteSize>,
}

/// A file from the build machine baked into images as it is, checked by its sha256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDef {
    /// `path:`, relative to the cluster file (inside its directory or `source_dirs`).
    pub path: String,
    /// `sha256:`, 64 hex digits: the build refuses a file with any other.
    pub sha256: String,
}

/// `apt:` in cluster.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptDef {
    /// Repository URL prefix -> the prefix to fetch from instead (a local mirror or an
    /// apt-cacher-ng), e.g. `"http://deb.debian.org/debian": "http://10.0.0.1:3142/debian"`.
    /// The images keep their own sources; only pibake's downloads are redirected.
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
}

/// One entry of `networks:` in cluster.yaml (`lan: { subnet: 10.0.0.0/24, ... }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// `subnet:`, the network address and prefix (`10.0.0.0/24`, /8 to /30).
    pub subnet: String,
    /// `gateway:`, the default router: an IPv4 address in the subnet, or the name of the
    /// node that routes (`head`). None: nodes on this network get no default route.
    pub gateway: Option<String>,
    /// `dns:`, name servers: IPv4 addresses or node names, in order of preference.
    #[serde(default)]
    pub dns: Vec<String>,
    /// DNS search domain; node names get it as their FQDN.
    pub domain: Option<String>,
    /// First address handed out to nodes without an explicit one (default: the first
    /// host address that is not the gateway or a DNS server).
    pub first: Option<String>,
}

/// `admin:` in cluster.yaml: the login account of every node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDef {
    /// `name:`, the login name (lowercase letters, digits, `-`, `_`; at most 32); the
    /// image's first user is renamed to it.
    pub name: String,
    /// A crypt(3) hash: yescrypt (`$y$`) or sha512-crypt (`$6$`).
    pub password_hash: Option<String>,
    /// No password login at all (SSH keys only).
    #[serde(default)]
    pub locked: bool,
    /// `ssh_keys:`, OpenSSH public keys, one line each (`ssh-ed25519 AAAA... me@laptop`),
    /// for the admin's `authorized_keys`.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// `identity_file:`, the private half of one of `ssh_keys` on the admin's machine
    /// (relative to the cluster file): the `IdentityFile` of the build's ssh_config.
    /// Without it, the first `~/.ssh` key whose public half is in `ssh_keys`.
    pub identity_file: Option<ClientPath>,
    /// `true` (the default): in the sudo group, asking for the password as the image
    /// does (a key-only admin gets NOPASSWD, having no password); `nopasswd`: never
    /// asked; `false`: no sudo.
    #[serde(default)]
    pub sudo: Sudo,
    /// Passwordless SSH between all nodes: one cluster key pair for the admin, kept in
    /// the state directory, in every node's `~/.ssh` and `authorized_keys`.
    #[serde(default)]
    pub node_ssh: bool,
}

/// sshd settings for every node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshDef {
    /// Password logins over SSH; off by default when the admin has `ssh_keys`.
    pub password_login: Option<bool>,
}

/// How the admin may use sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sudo {
    /// No sudo at all.
    No,
    /// The sudo group; the password is asked for as the image's own policy says.
    #[default]
    Yes,
    /// The sudo group and a NOPASSWD drop-in: never asked.
    NoPasswd,
}

impl<'de> Deserialize<'de> for Sudo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sudo, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(true) => Ok(Sudo::Yes),
            Raw::Flag(false) => Ok(Sudo::No),
            Raw::Word(w) if w == "nopasswd" => Ok(Sudo::NoPasswd),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "sudo `{w}`: use true, false or nopasswd"
            ))),
        }
    }
}

/// One entry of `roles:` in cluster.yaml (`worker: {}` or `worker: { profile: web }`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// `profile:`, the profile's name (`profiles/<name>.yaml` or a shipped one). None:
    /// the profile named like the role.
    pub profile: Option<String>,
}

/// One node, or a range of them (`name: worker[001-144]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// `name:`, the hostname, or a range of them (`node[001-144]` keeps the zero padding).
    pub name: String,
    /// `role:`, a key of `roles:`; it decides the node's profile.
    pub role: String,
    /// Network name -> address; for a range, the address of the first node (the rest
    /// follow in order).
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
    /// Interface -> MAC address, for DHCP reservations on the head.
    #[serde(default)]
    pub mac: BTreeMap<String, String>,
    /// Built like the others but kept in reserve.
    #[serde(default)]
    pub spare: bool,
    /// `files:`, extra files for this node (every node of a range), written after the
    /// profile's.
    #[serde(default)]
    pub files: Vec<FileDef>,
    /// `vars:`, template values for this node; they override the profile's and the
    /// cluster's of the same name.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// A file to put in the root filesystem.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDef {
    /// `path:`, absolute in the image, naming a file (`/etc/motd`); no `..`.
    pub path: String,
    /// Inline content (a template when `template: true`).
    pub content: Option<String>,
    /// A file relative to the cluster directory, instead of `content`.
    pub source: Option<String>,
    /// `mode:`, octal permission bits (`"0640"`). None: 0644, or 0600 when `source`
    /// is readable by its owner only. A mode no one else may read makes it a secret.
    #[serde(default, deserialize_with = "octal")]
    pub mode: Option<u16>,
    /// `UID:GID`, numeric.
    pub owner: Option<String>,
    /// `template: true` renders the content as a Handlebars template first (the same
    /// context as overlay `.hbs` files).
    #[serde(default)]
    pub template: bool,
}

/// `profiles/<name>.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Another profile this one builds on: its settings apply first.
    pub extends: Option<String>,
    /// `description:`, free text for people reading the profile; pibake does not use it.
    pub description: Option<String>,
    /// The board the role runs on (`pi0`, `pi3`, `pi4`, `pi5`, ...), for per-model checks.
    pub model: Option<String>,
    /// `auto` (read from the image's enabled units), `networkmanager`, `dhcpcd`,
    /// `networkd` or `ifupdown`.
    pub network_stack: Option<String>,
    /// `interfaces:`, interface name (`eth0`, `wlan0`, `usb0`) -> how it gets its
    /// address.
    #[serde(default)]
    pub interfaces: BTreeMap<IfaceName, InterfaceDef>,
    /// GPU memory in MiB.
    pub gpu_mem: Option<u32>,
    /// `root_size:`, the root partition's size in the role's images (`4GiB`): the base's
    /// root is grown to it at build time (never shrunk). Over the cluster's `root_size`.
    pub root_size: Option<ByteSize>,
    /// `config:`, edits to the boot partition's config.txt.
    #[serde(default)]
    pub config: ConfigDef,
    /// `cmdline:`, edits to the boot partition's cmdline.txt.
    #[serde(default)]
    pub cmdline: CmdlineDef,
    /// `services:`, systemd units written, enabled, disabled or masked.
    #[serde(default)]
    pub services: ServicesDef,
    /// Packages resolved and fetched at build time (`name`, `name=version`, `name:arch`),
    /// baked into the image with their dependencies and installed on first boot with no
    /// network.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Packages installed on first boot from the network (`apt-get install`): off unless
    /// asked for, since the node then needs a reachable mirror when it first boots.
    #[serde(default)]
    pub packages_online: Vec<String>,
    /// Follow Recommends when resolving `packages:` (default: the image's apt setting).
    pub install_recommends: Option<bool>,
    /// Local .deb files (relative to the cluster directory) copied into the image and
    /// installed on first boot without a network; each file name keeps to the alphabet
    /// of Debian's package file names.
    #[serde(default)]
    pub debs: Vec<LocalDeb>,
    /// Shell snippets run once, in order, on first boot.
    #[serde(default)]
    pub firstboot: Vec<String>,
    /// Overlay trees (`overlays/<name>/`) copied into the root; templates end in `.hbs`.
    #[serde(default)]
    pub overlays: Vec<String>,
    /// `files:`, files written into the root after the overlays (a node's own `files:`
    /// come after these).
    #[serde(default)]
    pub files: Vec<FileDef>,
    /// Path in the image -> link target (relative targets resolve inside the image).
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    /// `timezone:`, a tz name the image's tzdata has (`Europe/London`). None: the
    /// image's own.
    pub timezone: Option<String>,
    /// `locale:`, the `LANG` for `/etc/default/locale` (`en_GB.UTF-8`). None: the
    /// image's own.
    pub locale: Option<String>,
    /// `keyboard:`, the XKB layout for `/etc/default/keyboard` (`gb`, `us`). None: the
    /// image's own.
    pub keyboard: Option<String>,
    /// `vars:`, template values for this role's nodes; they override the cluster's.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// `swarm: manager` or `swarm: worker`: the role's nodes are members of the cluster's
    /// Docker swarm (see cluster.yaml's `swarm:`).
    pub swarm: Option<SwarmPart>,
    /// `k3s: server` or `k3s: agent`: the role's nodes run k3s (see cluster.yaml's `k3s:`).
    pub k3s: Option<K3sPart>,
    /// `slurm: controller` or `slurm: compute`: the role's nodes are members of the
    /// cluster's Slurm (see cluster.yaml's `slurm:`).
    pub slurm: Option<SlurmPart>,
    /// `time: server`: the role's node serves the cluster's time.
    pub time: Option<TimeRole>,
    /// `var_types:`, template variable -> the grammar its value must have (`word`,
    /// `line`, `interface`, `path`, `subnet`, `port`, `duration`), for the variables the
    /// role's overlays paste into configuration files.
    #[serde(default)]
    pub var_types: BTreeMap<String, VarType>,
}

/// One entry of a profile's `interfaces:` (`eth0: { network: lan }`, `wlan0: { dhcp:
/// true, ssid: ..., psk: ..., country: GB }`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceDef {
    /// The node's address on this network of the cluster: static, or with `dhcp: true`
    /// reserved for it on the cluster's DHCP server (the portable head's dnsmasq).
    pub network: Option<String>,
    /// Address by DHCP (from any server, or with `network:` the reserved one).
    #[serde(default)]
    pub dhcp: bool,
    /// Wi-Fi network name (wlan0): 1 to 32 bytes, no control characters.
    pub ssid: Option<Ssid>,
    /// `psk:`, the Wi-Fi passphrase (8 to 63 printable ASCII characters) or key (64 hex
    /// digits); the files it lands in are written 0600 and never printed. None with an
    /// `ssid`: an open network.
    pub psk: Option<Psk>,
    /// Wi-Fi regulatory country, an ISO 3166-1 alpha-2 code (`GB`, `US`, ...).
    pub country: Option<Country>,
    /// This interface is the default route even when static (the gateway of its network).
    #[serde(default)]
    pub default_route: Option<bool>,
}

/// config.txt edits; top level applies under `[all]`, `sections` under model filters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDef {
    /// `name` or `name,param=value,...`
    #[serde(default)]
    pub overlays: Vec<String>,
    /// `name=value`
    #[serde(default)]
    pub dtparams: Vec<String>,
    /// `set:`, setting -> value (`arm_boost: "1"`), each replacing the setting's earlier
    /// value in its section.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// `lines:`, lines added as written, for what the other keys cannot say.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Section name (`pi0`, `pi4`, `cm4`, ...) -> edits inside it.
    #[serde(default)]
    pub sections: BTreeMap<String, ConfigDef>,
}

/// `cmdline:` in a profile: edits to cmdline.txt, the kernel's one-line command line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdlineDef {
    /// `add:`, `key=value` parameters (replacing the key's value) or bare flags
    /// (`quiet`), added once.
    #[serde(default)]
    pub add: Vec<String>,
    /// `remove:`, parameter names removed (every `key` and `key=value` of that name).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Allows removing what the image needs to boot (`root=`, `rootfstype=`, `init=`).
    #[serde(default)]
    pub allow_unbootable: bool,
}

/// `services:` in a profile: systemd units, switched offline as `systemctl` would.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesDef {
    /// Unit name -> unit file text (written to /etc/systemd/system); the names in its
    /// `[Install]` section are checked when the profile loads.
    #[serde(default)]
    pub units: BTreeMap<UnitName, String>,
    /// `enable:`, unit names (`ssh.service`) enabled; one the image lacks is enabled on
    /// first boot, after the packages that bring it.
    #[serde(default)]
    pub enable: Vec<UnitName>,
    /// `disable:`, unit names whose enablement links are removed.
    #[serde(default)]
    pub disable: Vec<UnitName>,
    /// `mask:`, unit names linked to /dev/null, so nothing can start them.
    #[serde(default)]
    pub mask: Vec<UnitName>,
}

/// A mode written as `"0644"`, `'0755'` or a bare `644` (read as octal digits either way).
fn octal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u64),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Num(n) => n.to_string(),
        Raw::Text(s) => s,
    };
    u16::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "mode `{text}` is not octal from 0 to 7777 (e.g. \"0644\")"
            ))
        })
}
