//! Template vars as a node sees them: its own `vars:`, else its profile's, else the
//! cluster's. Values with a grammar (the `var_types:` a profile declares, the `labels`
//! var) are checked here once, at the place they were set.

use std::collections::BTreeMap;

use super::Node;
use super::profile::Profile;
use super::schema::ClusterFile;
use super::source::Source;
use crate::error::Result;
use crate::kinds::VarAt;
use crate::kinds::labels::{LABELS_VAR, Labels};

/// A var's value for `node`, with the file and key that set it.
pub fn var_at<'a>(
    source: &'a Source,
    file: &'a ClusterFile,
    profiles: &'a BTreeMap<String, Profile>,
    node: &'a Node,
    var: &str,
) -> Option<VarAt<'a>> {
    let key = format!("vars.{var}");
    if let Some(value) = node.vars.get(var) {
        let key = format!("{}.{key}", node.origin);
        return Some(VarAt { value, source, key });
    }
    let p = &profiles[&node.role];
    if let Some(value) = p.def.vars.get(var) {
        let holder = p.sources.iter().find(|s| s.has(&key));
        let source = holder.unwrap_or(p.source());
        return Some(VarAt { value, source, key });
    }
    file.vars.get(var).map(|value| VarAt { value, source, key })
}

/// Checks every node's value of every variable its role's profile gives a type, at the
/// place the value was set.
pub fn check_types(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    nodes: &[Node],
) -> Result<()> {
    for n in nodes {
        let p = &profiles[&n.role];
        for (var, ty) in &p.def.var_types {
            let Some(at) = var_at(source, file, profiles, n, var) else {
                continue;
            };
            ty.check(at.value).map_err(|why| {
                let what = format!(
                    "{why} (profile `{}` declares `{var}` a {})",
                    p.name,
                    ty.name()
                );
                at.source.error_at(&at.key, &what)
            })?;
        }
    }
    Ok(())
}

/// Each node's labels, parsed once from its `labels` var (its own, its profile's or the
/// cluster's), at the place the value was set.
pub fn labels(
    source: &Source,
    file: &ClusterFile,
    profiles: &BTreeMap<String, Profile>,
    nodes: &[Node],
) -> Result<Vec<Labels>> {
    nodes
        .iter()
        .map(|n| match var_at(source, file, profiles, n, LABELS_VAR) {
            Some(at) => Labels::parse(at.value).map_err(|why| at.source.error_at(&at.key, &why)),
            None => Ok(Labels::default()),
        })
        .collect()
}
