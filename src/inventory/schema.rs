//! The YAML the user writes: `cluster.yaml` and `profiles/<role>.yaml`.
//!
//! Every struct refuses unknown keys, so a typo is an error with a did-you-mean instead
//! of a setting silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// `cluster.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster's name (a hostname-like word).
    pub cluster: String,
    /// The base image, relative to the cluster file.
    pub base: Option<String>,
    /// Subnets the nodes have addresses on, by name.
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkDef>,
    pub admin: AdminDef,
    /// How the nodes' sshd lets people in.
    #[serde(default)]
    pub ssh: SshDef,
    /// Role name -> profile; a role without a profile uses the profile of its own name.
    pub roles: BTreeMap<String, RoleDef>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// `10.0.0.0/24`
    pub subnet: String,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// DNS search domain; node names get it as their FQDN.
    pub domain: Option<String>,
    /// First address handed out to nodes without an explicit one (default: the first
    /// host address that is not the gateway or a DNS server).
    pub first: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDef {
    pub name: String,
    /// A crypt(3) hash: yescrypt (`$y$`) or sha512-crypt (`$6$`).
    pub password_hash: Option<String>,
    /// No password login at all (SSH keys only).
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub ssh_keys: Vec<String>,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub profile: Option<String>,
}

/// One node, or a range of them (`name: worker[001-144]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    pub name: String,
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
    #[serde(default)]
    pub files: Vec<FileDef>,
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// A file to put in the root filesystem.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDef {
    pub path: String,
    /// Inline content (a template when `template: true`).
    pub content: Option<String>,
    /// A file relative to the cluster directory, instead of `content`.
    pub source: Option<String>,
    #[serde(default, deserialize_with = "octal")]
    pub mode: Option<u16>,
    /// `UID:GID`, numeric.
    pub owner: Option<String>,
    #[serde(default)]
    pub template: bool,
}

/// `profiles/<name>.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Another profile this one builds on: its settings apply first.
    pub extends: Option<String>,
    pub description: Option<String>,
    /// The board the role runs on (`pi0`, `pi3`, `pi4`, `pi5`, ...), for per-model checks.
    pub model: Option<String>,
    /// `auto` (read from the image's enabled units), `networkmanager`, `dhcpcd`,
    /// `networkd` or `ifupdown`.
    pub network_stack: Option<String>,
    #[serde(default)]
    pub interfaces: BTreeMap<String, InterfaceDef>,
    /// GPU memory in MiB.
    pub gpu_mem: Option<u32>,
    #[serde(default)]
    pub config: ConfigDef,
    #[serde(default)]
    pub cmdline: CmdlineDef,
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
    /// installed on first boot without a network.
    #[serde(default)]
    pub debs: Vec<String>,
    /// Shell snippets run once, in order, on first boot.
    #[serde(default)]
    pub firstboot: Vec<String>,
    /// Overlay trees (`overlays/<name>/`) copied into the root; templates end in `.hbs`.
    #[serde(default)]
    pub overlays: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileDef>,
    /// Path in the image -> link target (relative targets resolve inside the image).
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub keyboard: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceDef {
    /// Static address on this network of the cluster.
    pub network: Option<String>,
    /// Address by DHCP.
    #[serde(default)]
    pub dhcp: bool,
    /// Wi-Fi network name (wlan0).
    pub ssid: Option<String>,
    pub psk: Option<String>,
    /// Wi-Fi regulatory country (`GB`, `US`, ...).
    pub country: Option<String>,
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
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub lines: Vec<String>,
    /// Section name (`pi0`, `pi4`, `cm4`, ...) -> edits inside it.
    #[serde(default)]
    pub sections: BTreeMap<String, ConfigDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdlineDef {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// Allows removing what the image needs to boot (`root=`, `rootfstype=`, `init=`).
    #[serde(default)]
    pub allow_unbootable: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesDef {
    /// Unit name -> unit file text (written to /etc/systemd/system).
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    #[serde(default)]
    pub enable: Vec<String>,
    #[serde(default)]
    pub disable: Vec<String>,
    #[serde(default)]
    pub mask: Vec<String>,
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
