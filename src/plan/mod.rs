//! A node's plan: pure data, every change its image will get.
//!
//! Rendering a plan reads the inventory and the overlay trees and nothing else; it never
//! touches an image, so it can be printed, diffed and tested on its own. Applying it is
//! the build's business ([`crate::bake`] in a later step). The network stack is the one
//! the base image really uses when known (`pibake plan` reads it from the base when the
//! base is there), else the profile's choice.

pub mod firstboot;
pub mod network;
pub mod overlay;
pub mod render;
pub mod room;
pub mod template;
mod text;

pub use crate::kinds::Join;
pub use firstboot::PACKAGES_DIR;
pub use render::role_wide;
pub use text::human;

use std::collections::BTreeMap;

use std::path::PathBuf;

use pibake_image::digest::Sha256;
use serde::Serialize;

use crate::inventory::credentials::{PasswordHash, SshKey};
use crate::inventory::schema::Sudo;
use crate::inventory::{NetworkStack, Timezone};

use crate::error::Result;
use crate::inventory::{Inventory, Node};

/// A user's file copied into the image as it is, its sha256 checked when it is read
/// at build time (`k3s.binary`, `k3s.images`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedArtifact {
    /// Absolute path in the image.
    pub path: String,
    /// Permission bits.
    pub mode: u16,
    /// The file on the build machine.
    pub source: PathBuf,
    /// The cluster.yaml key that names it, for messages (`k3s.binary`).
    pub key: String,
    /// What its bytes must hash to.
    pub sha256: Sha256,
}

/// Where a planned file's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Made by pibake from the inventory (hostname, hosts, network files, units).
    Generated,
    /// A profile's or node's `files:` entry.
    Inventory,
    /// Copied from an overlay tree.
    Overlay,
    /// Rendered from an overlay `.hbs` template.
    Template,
}

/// A file in the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Absolute path in the image's root filesystem (`/etc/hostname`).
    pub path: String,
    /// Permission bits (`0o644`), without the file type.
    pub mode: u16,
    /// Numeric owner in the image (the image's own `/etc/passwd` decides who that is).
    pub uid: u32,
    /// Numeric group in the image.
    pub gid: u32,
    /// Private keys, Wi-Fi passphrases: written 0600, never printed.
    pub secret: bool,
    /// Which part of the inventory made it.
    pub origin: Origin,
    /// Where it came from in the cluster directory (overlay or template path).
    pub from: Option<String>,
    /// The bytes written, in full (templates already rendered).
    pub content: Vec<u8>,
}

/// JSON shows text as text, binary as a note, and a secret's size only.
impl Serialize for PlannedFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let content = match std::str::from_utf8(&self.content) {
            _ if self.secret => format!("(secret: {} bytes, not shown)", self.content.len()),
            Ok(t) => t.to_string(),
            Err(_) => format!("({} bytes of binary data)", self.content.len()),
        };
        let mut st = s.serialize_struct("PlannedFile", 8)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("mode", &self.mode)?;
        st.serialize_field("uid", &self.uid)?;
        st.serialize_field("gid", &self.gid)?;
        st.serialize_field("secret", &self.secret)?;
        st.serialize_field("origin", &self.origin)?;
        st.serialize_field("from", &self.from)?;
        st.serialize_field("content", &content)?;
        st.end()
    }
}

/// A directory made in the root filesystem (with its parents), from an overlay tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDir {
    /// Absolute path in the image.
    pub path: String,
    /// Permission bits (`0o755`).
    pub mode: u16,
    /// Numeric owner in the image.
    pub uid: u32,
    /// Numeric group in the image.
    pub gid: u32,
}

/// A symbolic link in the root filesystem, from an overlay tree or `symlinks:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLink {
    /// Absolute path of the link itself in the image.
    pub path: String,
    /// What it points to, stored as written; a relative target resolves inside the image.
    pub target: String,
}

/// A block of lines pibake owns inside a file the image already has (dhcpcd.conf):
/// replaced on every build between its markers, never appended twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedBlock {
    /// Absolute path of the file in the image that holds the block (`/etc/dhcpcd.conf`).
    pub path: String,
    /// The lines between the markers, each ending in a newline; the markers are added
    /// when the block is written.
    pub content: String,
}

/// One config.txt edit, in a section (`all`, `pi0`, `pi4`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "lowercase")]
pub enum ConfigEdit {
    /// `key=value`, replacing the key's earlier value in the section (`set:`, `gpu_mem:`).
    Set {
        /// The `[section]` filter the edit goes under.
        section: String,
        /// The setting's name (`gpu_mem`, `arm_boost`).
        key: String,
        /// Its value, as config.txt has it.
        value: String,
    },
    /// A `dtoverlay=` line (`overlays:`), the overlay checked against the boot
    /// partition's `overlays/` directory.
    Overlay {
        /// The `[section]` filter the edit goes under.
        section: String,
        /// `name` or `name,param=value,...`.
        overlay: String,
    },
    /// A `dtparam=` line (`dtparams:`).
    Dtparam {
        /// The `[section]` filter the edit goes under.
        section: String,
        /// `name=value`; a bare `name` means `name=on`.
        param: String,
    },
    /// A line added as written (`lines:`), for what the other edits cannot say.
    Line {
        /// The `[section]` filter the edit goes under.
        section: String,
        /// The whole line, without its newline.
        line: String,
    },
}

impl std::fmt::Display for ConfigEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigEdit::Set {
                section,
                key,
                value,
            } => write!(f, "[{section}] {key}={value}"),
            ConfigEdit::Overlay { section, overlay } => {
                write!(f, "[{section}] dtoverlay={overlay}")
            }
            ConfigEdit::Dtparam { section, param } => write!(f, "[{section}] dtparam={param}"),
            ConfigEdit::Line { section, line } => write!(f, "[{section}] {line}"),
        }
    }
}

/// The admin account as the plan carries it; the hash is a secret and is not printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPlan {
    /// Login name (`admin.name`): the image's first user (UID 1000) is renamed to it.
    pub name: String,
    /// The crypt(3) hash for `/etc/shadow`; `None` locks the password (`locked: true`).
    #[serde(skip)]
    pub password_hash: Option<PasswordHash>,
    /// What `pibake plan` says of the password instead of the hash: `locked` or
    /// `hash set`.
    pub password: &'static str,
    /// Public keys written to the user's `~/.ssh/authorized_keys`.
    pub ssh_keys: Vec<SshKey>,
    /// Whether the user gets sudo, and whether it asks for the password.
    pub sudo: Sudo,
    /// The cluster key pair for SSH between nodes goes into `~/.ssh` (at build).
    pub node_ssh: bool,
}

/// systemd units switched offline, as `systemctl` would (unit names with their suffix,
/// `ssh.service`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Services {
    /// Enabled at build time; a unit the image lacks is enabled on first boot, once
    /// the packages that bring it are installed.
    pub enable: Vec<String>,
    /// Disabled: their `[Install]` links removed.
    pub disable: Vec<String>,
    /// Masked: linked to `/dev/null`, so nothing can start them.
    pub mask: Vec<String>,
}

/// Timezone, locale and keyboard, written where raspi-config leaves them; `None` keeps
/// the image's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Locale {
    /// `/etc/timezone` and the `/etc/localtime` link (`Europe/London`).
    pub timezone: Option<Timezone>,
    /// `LANG=` in `/etc/default/locale` (`en_GB.UTF-8`).
    pub locale: Option<String>,
    /// `XKBLAYOUT=` in `/etc/default/keyboard` (`gb`).
    pub keyboard: Option<String>,
}

/// Everything one node's image gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The node's name in the inventory (a range already expanded: `worker007`).
    pub node: String,
    /// The role the node has in `nodes:`.
    pub role: String,
    /// The profile the role uses (the role's own name unless `roles:` says otherwise).
    pub profile: String,
    /// Built like the others but kept in reserve (`spare: true`).
    pub spare: bool,
    /// Written to `/etc/hostname`: the node's name; with a network `domain:` it is the
    /// first label of the node's FQDN in `/etc/hosts`.
    pub hostname: String,
    /// Network name -> the node's IPv4 address on it, as text (`10.0.0.11`).
    pub addresses: BTreeMap<String, String>,
    /// The stack the interface files are written for.
    pub network_stack: NetworkStack,
    /// The admin account.
    pub user: UserPlan,
    /// Directories made, sorted by path.
    pub dirs: Vec<PlannedDir>,
    /// Files written, sorted by path; a later source of the same path replaces an
    /// earlier one (generated, overlays, then `files:`).
    pub files: Vec<PlannedFile>,
    /// Symbolic links made, sorted by path.
    pub symlinks: Vec<PlannedLink>,
    /// Blocks pibake owns inside files the image already has.
    pub blocks: Vec<PlannedBlock>,
    /// config.txt edits, in order.
    pub config_txt: Vec<ConfigEdit>,
    /// cmdline.txt parameters set (`key=value` replaces the key's value) or flags added.
    pub cmdline_add: Vec<String>,
    /// cmdline.txt keys removed: every parameter of that name, flag or `key=value`.
    pub cmdline_remove: Vec<String>,
    /// systemd units enabled, disabled and masked.
    pub services: Services,
    /// Timezone, locale and keyboard.
    pub locale: Locale,
    /// The role's baked packages (from `pibake.lock`), in install order; attached by the
    /// build once resolved ([`crate::packages::Resolved::attach`]).
    pub packages: Vec<crate::packages::Locked>,
    /// The user's files copied in as they are (k3s's binary and images): the same for
    /// every node of the role, so written once, into the role's layer.
    pub artifacts: Vec<PlannedArtifact>,
    /// How the node joins the cluster its role forms (swarm, k3s, Slurm), if any.
    pub join: Option<Join>,
    /// How the node keeps the cluster's time, when the cluster has a time server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Things worth a look that do not stop the build (an assumed network stack);
    /// `pibake plan` prints them.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether the role has bulk data of its own (packages, artifacts), written once
    /// into a layer its nodes are built over.
    pub fn has_layer(&self) -> bool {
        !self.packages.is_empty() || !self.artifacts.is_empty()
    }

    /// The bytes of that data, as far as the build machine knows them now.
    pub fn layer_bytes(&self) -> u64 {
        let artifacts: u64 = self
            .artifacts
            .iter()
            .filter_map(|a| std::fs::metadata(&a.source).ok())
            .map(|m| m.len())
            .sum();
        self.packages.iter().map(|d| d.size).sum::<u64>() + artifacts
    }
}

/// Plans for every node (or the named ones), in inventory order.
/// `detected_stack`: the base image's own stack, when it was read (a profile's `auto`).
pub fn plans(
    inv: &Inventory,
    only: &[String],
    detected_stack: Option<NetworkStack>,
) -> Result<Vec<Plan>> {
    let nodes: Vec<&Node> = if only.is_empty() {
        inv.nodes.iter().collect()
    } else {
        inv.select(only)?
    };
    let templates = template::Templates::new(inv)?;
    nodes
        .into_iter()
        .map(|n| render::plan(inv, n, &templates, detected_stack))
        .collect()
}
