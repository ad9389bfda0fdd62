//! What users run next, written beside the images by every build: an Ansible inventory
//! (`inventory.yml` and `group_vars/`), an MPI hostfile and an ssh_config.
//!
//! All are serialized from the inventory's typed values (validated hostnames, parsed
//! addresses and MACs, YAML values of `vars:`), never pasted together from its text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::inventory::{Inventory, Node};

#[derive(Serialize)]
struct Group<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    hosts: BTreeMap<&'a str, BTreeMap<&'a str, Value>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    children: BTreeMap<&'a str, Group<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    vars: BTreeMap<&'a str, Value>,
}

/// A host's variables: `ansible_host` (the address on the node's first network, the one
/// /etc/hosts lists, else its name), `pibake_role`, `addresses` and `mac`, then the
/// node's own `vars:`, which win (a node may set its own `ansible_host`).
fn host<'a>(inv: &Inventory, n: &'a Node) -> BTreeMap<&'a str, Value> {
    let fqdn = match inv.domain() {
        Some(d) => format!("{}.{d}", n.name),
        None => n.name.clone(),
    };
    let mut h = BTreeMap::new();
    let first = n.addresses.values().next();
    h.insert(
        "ansible_host",
        Value::from(first.map_or(fqdn, |a| a.to_string())),
    );
    h.insert("pibake_role", Value::from(n.role.as_str()));
    if !n.addresses.is_empty() {
        h.insert("addresses", texts(&n.addresses));
    }
    if !n.mac.is_empty() {
        h.insert("mac", texts(&n.mac));
    }
    h.extend(n.vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
    h
}

/// A map of parsed values (addresses, MACs) as a map of their text.
fn texts<V: std::fmt::Display>(m: &BTreeMap<String, V>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), v.to_string().into()))
            .collect(),
    )
}

fn yaml<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_norway::to_string(value).map_err(|e| Error::invalid(format!("{what}: {e}")))
}

/// `inventory.yml`: the `all` group (the admin as `ansible_user`), one child group per
/// role with its nodes, and `spare` holding the spares too (for `--limit '!spare'`).
pub fn ansible_inventory(inv: &Inventory) -> Result<String> {
    let mut children: BTreeMap<&str, Group> = BTreeMap::new();
    for role in inv.file.roles.keys() {
        children.insert(role, empty());
    }
    for n in &inv.nodes {
        let group = children.entry(&n.role).or_insert_with(empty);
        group.hosts.insert(&n.name, host(inv, n));
        if n.spare {
            children
                .entry("spare")
                .or_insert_with(empty)
                .hosts
                .insert(&n.name, host(inv, n));
        }
    }
    let mut vars = BTreeMap::new();
    vars.insert("ansible_user", Value::from(inv.file.admin.name.as_str()));
    let all = BTreeMap::from([(
        "all",
        Group {
            hosts: BTreeMap::new(),
            children,
            vars,
        },
    )]);
    Ok(format!(
        "# The cluster {}, for Ansible (`ansible-inventory -i inventory.yml --list`). Written by pibake.\n{}",
        inv.file.cluster,
        yaml("inventory.yml", &all)?
    ))
}

fn empty<'a>() -> Group<'a> {
    Group {
        hosts: BTreeMap::new(),
        children: BTreeMap::new(),
        vars: BTreeMap::new(),
    }
}

/// `group_vars/`: `all.yml` from the cluster's `vars:`, `ROLE.yml` from each role
/// profile's own `vars:` (only those that have some), as (file name, content).
pub fn group_vars(inv: &Inventory) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if !inv.file.vars.is_empty() {
        out.push((
            "all.yml".into(),
            yaml("group_vars/all.yml", &inv.file.vars)?,
        ));
    }
    for (role, profile) in &inv.profiles {
        if !profile.def.vars.is_empty() {
            let name = format!("{role}.yml");
            out.push((
                name.clone(),
                yaml(&format!("group_vars/{name}"), &profile.def.vars)?,
            ));
        }
    }
    Ok(out)
}

/// The MPI hostfile: every node that is not a spare, `NAME slots=N` with N the node's
/// `mpi_slots` (see `Inventory::mpi_slots`), in inventory order.
pub fn mpi_hostfile(inv: &Inventory) -> String {
    let mut s = format!(
        "# MPI hostfile of the cluster {} (`mpirun --hostfile FILE`). Written by pibake.\n",
        inv.file.cluster
    );
    for n in inv.nodes.iter().filter(|n| !n.spare) {
        match inv.mpi_slots(n) {
            Some(k) => s.push_str(&format!("{} slots={k}\n", n.name)),
            None => s.push_str(&format!("{}\n", n.name)),
        }
    }
    s
}

/// ssh_config for every node with an address: its name, address, the admin's login, the
/// build's `known_hosts` with strict checking, and the admin's private key when one is
/// known (`admin: identity_file:`, else the `~/.ssh` key whose public half is in
/// `ssh_keys`), so `ssh -F ssh_config NODE` works from any directory.
pub fn ssh_config(inv: &Inventory, out: &Path, known_hosts: &Path) -> Result<String> {
    let identity = match &inv.file.admin.identity_file {
        Some(p) => Some(inv.dir.join(p.as_path())),
        None => own_identity(inv),
    };
    let mut cfg = format!("# ssh -F {} NODE\n", ssh_quoted(&out.join("ssh_config"))?);
    for n in &inv.nodes {
        if let Some(a) = n.addresses.values().next() {
            cfg.push_str(&format!(
                "Host {}\n    HostName {a}\n    User {}\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n",
                n.name,
                inv.file.admin.name,
                ssh_quoted(known_hosts)?
            ));
            if let Some(key) = &identity {
                cfg.push_str(&format!("    IdentityFile {}\n", ssh_quoted(key)?));
            }
        }
    }
    Ok(cfg)
}

/// A path as one ssh_config argument: in double quotes (spaces stay inside it), `%`
/// doubled (ssh expands `%` tokens in these paths). A path with a `"` or a control
/// character has no spelling there and is refused.
fn ssh_quoted(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .filter(|t| !t.contains('"') && !t.chars().any(char::is_control));
    match text {
        Some(t) => Ok(format!("\"{}\"", t.replace('%', "%%"))),
        None => Err(Error::invalid(format!(
            "{}: ssh_config cannot name this path (it is not UTF-8, or holds a `\"` or a control character)",
            path.display()
        ))
        .with_hint("build into a directory whose path has none (--out DIR)")),
    }
}

/// The private key under `~/.ssh` whose `.pub` holds one of the admin's keys.
fn own_identity(inv: &Inventory) -> Option<PathBuf> {
    let body = |line: &str| line.split_whitespace().nth(1).map(str::to_string);
    let wanted: Vec<String> = inv
        .credentials
        .ssh_keys
        .iter()
        .filter_map(|k| body(k.as_str()))
        .collect();
    let mut pubs: Vec<PathBuf> = std::fs::read_dir(dirs::home_dir()?.join(".ssh"))
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    pubs.sort();
    pubs.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let private = p.with_extension("");
        (wanted.contains(&body(text.lines().next()?)?) && private.is_file()).then_some(private)
    })
}
