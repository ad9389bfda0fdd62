//! What users run next, written beside the images by every build: an Ansible inventory
//! (`inventory.yml` and `group_vars/`) and an MPI hostfile.
//!
//! Both are serialized from the inventory's typed values (validated hostnames, parsed
//! addresses and MACs, YAML values of `vars:`), never pasted together from its text.

use std::collections::BTreeMap;

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
