//! A node's plan: pure data, every change its image will get.
//!
//! Rendering a plan reads the inventory and the overlay trees and nothing else; it never
//! touches an image, so it can be printed, diffed and tested on its own. Applying it is
//! the build's business ([`crate::bake`] in a later step). The network stack is the one
//! the base image really uses when known (`pibake plan` reads it from the base when the
//! base is there), else the profile's choice.

pub mod network;
pub mod overlay;
pub mod render;
pub mod template;
mod text;

pub use render::PACKAGES_DIR;
pub use text::human;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inventory::Timezone;
use crate::inventory::credentials::{PasswordHash, SshKey};
use crate::inventory::schema::Sudo;

use crate::error::Result;
use crate::inventory::{Inventory, Node};

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
    pub path: String,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// Private keys, Wi-Fi passphrases: written 0600, never printed.
    pub secret: bool,
    pub origin: Origin,
    /// Where it came from in the cluster directory (overlay or template path).
    pub from: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDir {
    pub path: String,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLink {
    pub path: String,
    pub target: String,
}

/// A block of lines pibake owns inside a file the image already has (dhcpcd.conf):
/// replaced on every build between its markers, never appended twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedBlock {
    pub path: String,
    pub content: String,
}

/// One config.txt edit, in a section (`all`, `pi0`, `pi4`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "lowercase")]
pub enum ConfigEdit {
    Set {
        section: String,
        key: String,
        value: String,
    },
    Overlay {
        section: String,
        overlay: String,
    },
    Dtparam {
        section: String,
        param: String,
    },
    Line {
        section: String,
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
    pub name: String,
    #[serde(skip)]
    pub password_hash: Option<PasswordHash>,
    pub password: &'static str,
    pub ssh_keys: Vec<SshKey>,
    pub sudo: Sudo,
    /// The cluster key pair for SSH between nodes goes into `~/.ssh` (at build).
    pub node_ssh: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Services {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    pub mask: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Locale {
    pub timezone: Option<Timezone>,
    pub locale: Option<String>,
    pub keyboard: Option<String>,
}

/// Everything one node's image gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub node: String,
    pub role: String,
    pub profile: String,
    pub spare: bool,
    pub hostname: String,
    pub addresses: BTreeMap<String, String>,
    pub network_stack: String,
    pub user: UserPlan,
    pub dirs: Vec<PlannedDir>,
    pub files: Vec<PlannedFile>,
    pub symlinks: Vec<PlannedLink>,
    pub blocks: Vec<PlannedBlock>,
    pub config_txt: Vec<ConfigEdit>,
    pub cmdline_add: Vec<String>,
    pub cmdline_remove: Vec<String>,
    pub services: Services,
    pub locale: Locale,
    /// The role's baked packages (from `pibake.lock`), in install order; attached by the
    /// build once resolved ([`Plan::attach_packages`]).
    pub packages: Vec<crate::packages::Locked>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Gives the plan its role's resolved packages. A role that asks for `packages:`
    /// must get a closure: an empty one would silently install nothing.
    pub fn attach_packages(&mut self, resolved: &crate::packages::Resolved) {
        self.packages = resolved.for_role(&self.role).to_vec();
    }
}

/// Plans for every node (or the named ones), in inventory order.
pub fn plans(inv: &Inventory, only: &[String], detected_stack: Option<&str>) -> Result<Vec<Plan>> {
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
