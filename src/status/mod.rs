//! `pibake status`: whether each node of a built cluster came up as it was built, asked
//! from the operator's machine over SSH.
//!
//! Only what the build wrote is read ([`expect`]: the plans and `manifest.json`; the
//! output directory's `ssh_config` and `known_hosts`), and each node is asked once, by
//! one fixed read-only script ([`script`]) through the system's `ssh` ([`ssh`]). The
//! answer is read as untrusted text ([`parse`]) and judged by pure functions
//! ([`checks`], [`verdict`]), so every verdict can be tested from recorded answers.

pub mod checks;
pub mod expect;
pub mod parse;
pub mod script;
pub mod ssh;
pub mod verdict;

use std::path::Path;

use serde::Serialize;

pub use expect::Expected;
pub use ssh::Probe;
pub use verdict::{NodeStatus, Verdict, judge};

/// Nodes asked at once: SSH connections are cheap, waiting on them is most of the time.
pub const MAX_PARALLEL: usize = 32;

/// Asks every node, up to [`MAX_PARALLEL`] at once; results in the order given.
pub fn check_all(nodes: &[Expected], probe: &Probe) -> Vec<NodeStatus> {
    pibake_image::pool::run(nodes.len(), MAX_PARALLEL, |_, i| {
        judge(&nodes[i], &probe.run(&nodes[i].node))
    })
    .into_iter()
    .zip(nodes)
    .map(|(r, e)| r.unwrap_or_else(|lost| lost_node(e, &lost.message)))
    .collect()
}

/// A node whose check panicked: a bug in pibake, reported as that node's answer.
fn lost_node(e: &Expected, message: &str) -> NodeStatus {
    let answer = ssh::Answer {
        spawn_error: Some(format!(
            "internal error while checking it (please report it): {message}"
        )),
        ..ssh::Answer::default()
    };
    judge(e, &answer)
}

/// How many nodes got each verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Ready.
    pub ready: usize,
    /// Still in first boot, or units starting.
    pub first_boot_running: usize,
    /// Something failed.
    pub failed: usize,
    /// Another host key than the build made.
    pub wrong_host_key: usize,
    /// No answer.
    pub unreachable: usize,
    /// Every node that is not a spare is ready (the exit status).
    pub all_ready: bool,
}

impl Summary {
    /// Counts the verdicts.
    pub fn of(nodes: &[NodeStatus]) -> Summary {
        let count = |v: Verdict| nodes.iter().filter(|n| n.verdict == v).count();
        Summary {
            ready: count(Verdict::Ready),
            first_boot_running: count(Verdict::FirstBootRunning),
            failed: count(Verdict::Failed),
            wrong_host_key: count(Verdict::WrongHostKey),
            unreachable: count(Verdict::Unreachable),
            all_ready: nodes.iter().all(|n| n.spare || n.verdict == Verdict::Ready),
        }
    }

    /// `3 ready, 1 first boot running, 0 failed, 0 wrong host key, 1 unreachable`.
    pub fn line(&self) -> String {
        format!(
            "{} ready, {} first boot running, {} failed, {} wrong host key, {} unreachable",
            self.ready, self.first_boot_running, self.failed, self.wrong_host_key, self.unreachable
        )
    }
}

/// Whether the node's image should be rebuilt and its card flashed again.
pub fn needs_reflash(n: &NodeStatus) -> bool {
    matches!(n.verdict, Verdict::Failed | Verdict::WrongHostKey)
}

/// The commands that rebuild a node into `out` and flash it; `flash` is told `--out`
/// when `out` is not the directory it uses by itself (`default_out`), so it flashes
/// the image just built instead of building another.
pub fn rebuild_commands(cluster: &Path, out: &Path, default_out: &Path, node: &str) -> [String; 2] {
    let (c, o, n) = (sh_quote(cluster), sh_quote(out), sh_quote(node));
    let flash_out = if out == default_out {
        String::new()
    } else {
        format!(" --out {o}")
    };
    [
        format!("pibake build {c} --node {n} --out {o}"),
        format!("pibake flash {c} --node {n}{flash_out} --device DEV"),
    ]
}

/// A path or name as one shell word (see [`crate::plan::render::sh_quote`]).
fn sh_quote(s: impl AsRef<std::ffi::OsStr>) -> String {
    crate::plan::render::sh_quote(&s.as_ref().to_string_lossy())
}

/// Parses a duration like `15m`, `90s`, `1h30m` or `45` (seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a duration: use e.g. 90s, 15m, 1h30m");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let (mut total, mut num) = (0u64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests;
