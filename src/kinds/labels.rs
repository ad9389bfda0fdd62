//! Node labels (`zone=rack1`) that swarm and k3s members carry: the `labels` var, a map
//! of lowercase names to scalar values, parsed once when the cluster loads.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The template var whose map becomes a swarm or k3s member's node labels.
pub const LABELS_VAR: &str = "labels";

/// A word of letters, digits and inner `.`, `_`, `-`, up to 63 characters: the shape
/// both Docker and Kubernetes accept for a label's name and value.
fn label_word(s: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    s.len() <= 63
        && s.chars().all(inner)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Node labels, from the `labels` var. `role` is pibake's own: every member gets
/// `role=<its role>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Parses the value of a `labels:` var.
    pub fn parse(v: &Value) -> Result<Labels, String> {
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
