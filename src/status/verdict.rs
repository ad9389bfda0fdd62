//! From a node's answer and what it should have, one verdict and the checks behind it.
//!
//! Pure functions over recorded text: the SSH client's exit status and messages, the
//! status script's facts, and the operator's clock. The order of the checks is the
//! order a person would look: can we reach it and is it the right node, did its first
//! boot finish, is systemd content, are its role's units up and its packages the
//! built ones. Root growth, the clock and a leader's view of its cluster are warnings:
//! worth knowing, but the node does its work without them.

use serde::Serialize;

use super::checks::{self, ClockCheck, ClusterCheck, PackageCheck, RootCheck, UnitCheck};
use super::expect::Expected;
use super::parse::{Facts, parse};
use super::ssh::Answer;

/// The one-word answer per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything it should run is running, as built.
    Ready,
    /// Still coming up: first-boot work or units starting.
    FirstBootRunning,
    /// Something failed: a first-boot step, a unit, a package.
    Failed,
    /// It answers with another host key than the build made for it.
    WrongHostKey,
    /// No answer: off, not on the network, or not letting us in.
    Unreachable,
}

impl Verdict {
    /// As the table and the summary print it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::FirstBootRunning => "first boot running",
            Verdict::Failed => "failed",
            Verdict::WrongHostKey => "wrong host key",
            Verdict::Unreachable => "unreachable",
        }
    }

    /// Every verdict, in the summary's order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Ready,
        Verdict::FirstBootRunning,
        Verdict::Failed,
        Verdict::WrongHostKey,
        Verdict::Unreachable,
    ];
}

/// Where the node's first boot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstBootState {
    /// Its image has no first-boot work.
    None,
    /// `firstboot.done` is there.
    Done,
    /// The unit is running, or has not started yet.
    Running,
    /// A step failed and the runner stopped.
    Failed,
}

/// The first-boot runner's state, from its markers, unit and log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstBoot {
    /// Done, running, failed, or none to do.
    pub state: FirstBootState,
    /// `pibake-firstboot.service`'s ActiveState.
    pub unit: Option<String>,
    /// The step that failed last, as the runner's log names it.
    pub failed_step: Option<String>,
    /// Its exit status, from the same log line.
    pub failed_exit: Option<i32>,
    /// The steps in the image, by name.
    pub steps: Vec<String>,
    /// The steps whose marker is set.
    pub steps_done: Vec<String>,
    /// The last lines of `/var/lib/pibake/firstboot.log`.
    pub log_tail: Vec<String>,
    /// The last lines of the unit's journal (the failing step's own output).
    pub journal_tail: Vec<String>,
}

/// Everything known about one node, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The node's name.
    pub node: String,
    /// Its role.
    pub role: String,
    /// Its first address.
    pub address: Option<String>,
    /// A spare: shown, but not counted for the exit status.
    pub spare: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// One short line saying why.
    pub detail: String,
    /// Everything that keeps it from being ready.
    pub problems: Vec<String>,
    /// Worth a look, but not keeping it from being ready.
    pub warnings: Vec<String>,
    /// The SSH client's exit status, deadline and messages.
    pub ssh: SshResult,
    /// The node's hostname as it answered.
    pub hostname: Option<String>,
    /// Its first boot, when it answered.
    pub first_boot: Option<FirstBoot>,
    /// `systemctl is-system-running`.
    pub system: Option<String>,
    /// Units in the failed state.
    pub failed_units: Vec<String>,
    /// Each of the role's units.
    pub units: Vec<UnitCheck>,
    /// Each package the image was built with.
    pub packages: Vec<PackageCheck>,
    /// The root partition against the card.
    pub root: Option<RootCheck>,
    /// The node's clock against the operator's.
    pub clock: Option<ClockCheck>,
    /// Its view of the cluster it leads.
    pub cluster: Option<ClusterCheck>,
}

/// The client's side of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshResult {
    /// Exit status; none when killed or not started.
    pub exit: Option<i32>,
    /// Killed at the per-node deadline.
    pub timed_out: bool,
    /// The client's last message lines (errors, warnings).
    pub messages: Vec<String>,
}

/// The verdict on one node from its answer.
pub fn judge(expected: &Expected, answer: &Answer) -> NodeStatus {
    let facts = parse(&answer.stdout);
    let mut s = NodeStatus {
        node: expected.node.clone(),
        role: expected.role.clone(),
        address: expected.address.clone(),
        spare: expected.spare,
        verdict: Verdict::Unreachable,
        detail: String::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        ssh: ssh_result(answer),
        hostname: facts.hostname.clone(),
        first_boot: None,
        system: facts.system.clone(),
        failed_units: facts.failed_units.clone(),
        units: Vec::new(),
        packages: Vec::new(),
        root: None,
        clock: None,
        cluster: None,
    };
    if let Some((verdict, why)) = connection(answer, &facts) {
        s.verdict = verdict;
        s.problems.push(why.clone());
        s.detail = why;
        return s;
    }
    fill_checks(&mut s, expected, &facts, answer);
    decide(&mut s, expected);
    s
}

/// The client's messages, minus blank lines, the last few.
fn ssh_result(answer: &Answer) -> SshResult {
    let lines: Vec<String> = answer
        .stderr
        .lines()
        .map(super::parse::clean)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '@'))
        .collect();
    SshResult {
        exit: answer.exit,
        timed_out: answer.timed_out,
        messages: lines[lines.len().saturating_sub(8)..].to_vec(),
    }
}

/// A node that could not be asked: unreachable, or the wrong host key.
pub fn connection(answer: &Answer, facts: &Facts) -> Option<(Verdict, String)> {
    let err = &answer.stderr;
    if let Some(why) = &answer.spawn_error {
        return Some((Verdict::Unreachable, why.clone()));
    }
    if err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Some((
            Verdict::WrongHostKey,
            "wrong host key: a card in the wrong slot or a reinstalled node".into(),
        ));
    }
    if err.contains("Host key verification failed") {
        let why = if err.contains("host key is known for") {
            "wrong host key: known_hosts has none for it (is --out the build's directory?)"
        } else {
            "wrong host key: a card in the wrong slot or a reinstalled node"
        };
        return Some((Verdict::WrongHostKey, why.into()));
    }
    if answer.timed_out {
        return Some((Verdict::Unreachable, "no answer before the deadline".into()));
    }
    if answer.exit == Some(255) {
        return Some((Verdict::Unreachable, unreachable_why(err)));
    }
    if !facts.answered || !facts.complete {
        let last = err
            .lines()
            .map(super::parse::clean)
            .rfind(|l| !l.is_empty());
        return Some((
            Verdict::Unreachable,
            format!(
                "no complete status answer (ssh exit {}){}",
                answer.exit.map_or("unknown".into(), |c| c.to_string()),
                last.map(|l| format!(": {l}")).unwrap_or_default()
            ),
        ));
    }
    None
}

/// Why the client gave up, in a few words, from its message.
fn unreachable_why(err: &str) -> String {
    for (needle, why) in [
        ("Connection timed out", "connection timed out"),
        ("Connection refused", "connection refused: sshd not up yet?"),
        ("No route to host", "no route to host"),
        (
            "Permission denied",
            "login refused: is --identity the admin's key?",
        ),
        (
            "Could not resolve hostname",
            "name not resolved: no address in ssh_config",
        ),
        ("Network is unreachable", "network unreachable"),
    ] {
        if err.contains(needle) {
            return why.into();
        }
    }
    let last = err
        .lines()
        .map(super::parse::clean)
        .rfind(|l| !l.is_empty());
    last.unwrap_or_else(|| "ssh exited 255 without a message".into())
}

/// The per-area checks from the facts.
fn fill_checks(s: &mut NodeStatus, expected: &Expected, facts: &Facts, answer: &Answer) {
    s.first_boot = Some(first_boot(expected, facts));
    s.units = checks::units(&expected.units, &facts.units);
    s.packages = checks::packages(&expected.packages, &facts.packages);
    s.root = facts.root.as_ref().map(checks::root);
    s.clock = checks::clock(facts.now, answer.now_received);
    s.cluster = checks::cluster(expected.leads.as_ref(), facts.cluster.as_ref());
}

/// Where the first boot is: its marker, unit and the runner's log.
pub fn first_boot(expected: &Expected, facts: &Facts) -> FirstBoot {
    let unit = |key: &str| {
        facts
            .firstboot_unit
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let active = unit("ActiveState");
    // The runner's last word decides: a step that failed and was not retried since.
    let failure = match facts.firstboot_log.iter().rev().find_map(|l| log_line(l)) {
        Some(Outcome::Failed(step, exit)) => Some((step, exit)),
        _ => None,
    };
    let booted = matches!(facts.system.as_deref(), Some("running" | "degraded"));
    let state = if facts.firstboot_done {
        FirstBootState::Done
    } else if !expected.first_boot && unit("LoadState").as_deref() != Some("loaded") {
        FirstBootState::None
    } else {
        match active.as_deref() {
            Some("activating" | "active" | "reloading") => FirstBootState::Running,
            Some("failed") => FirstBootState::Failed,
            // Inactive with boot over: it failed on an earlier boot, or never ran.
            _ if failure.is_some() || booted => FirstBootState::Failed,
            _ => FirstBootState::Running,
        }
    };
    let failure = failure.filter(|_| state != FirstBootState::Done);
    FirstBoot {
        state,
        unit: active,
        failed_step: failure.as_ref().map(|(s, _)| s.clone()),
        failed_exit: failure.and_then(|(_, e)| e),
        steps: facts.steps.clone(),
        steps_done: facts.steps_done.clone(),
        log_tail: facts.firstboot_log.clone(),
        journal_tail: facts.firstboot_journal.clone(),
    }
}

/// What the runner logged of one step.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// `DATE NAME ok`.
    Ok,
    /// `DATE NAME failed (exit RC); retried on the next boot`: the step and RC.
    Failed(String, Option<i32>),
}

/// One line of the runner's log (see `FIRSTBOOT_RUNNER_TEXT` in `plan::firstboot`); `None`
/// for lines of any other shape.
fn log_line(line: &str) -> Option<Outcome> {
    let mut w = line.split_whitespace();
    let (_date, step, outcome) = (w.next()?, w.next()?, w.next()?);
    match outcome {
        "ok" => Some(Outcome::Ok),
        "failed" => {
            let exit = line
                .split("(exit ")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|c| c.trim().parse().ok());
            Some(Outcome::Failed(step.to_string(), exit))
        }
        _ => None,
    }
}

/// The verdict from the checks, with its one-line detail.
fn decide(s: &mut NodeStatus, expected: &Expected) {
    let mut starting = Vec::new();
    let fb = s.first_boot.as_ref().map(|f| f.state);
    match fb {
        Some(FirstBootState::Failed) => s.problems.push(failed_step_text(s)),
        Some(FirstBootState::Running) => starting.push(running_text(s)),
        _ => {}
    }
    let settled = matches!(fb, Some(FirstBootState::Done | FirstBootState::None));
    system_state(s, &mut starting);
    for u in &s.units {
        match u.state {
            checks::UnitOutcome::Starting => starting.push(format!("{} {}", u.unit, u.active)),
            checks::UnitOutcome::Bad if settled => s.problems.push(u.summary()),
            _ => {}
        }
    }
    if settled {
        s.problems.extend(
            s.packages
                .iter()
                .filter(|p| !p.ok)
                .map(PackageCheck::summary),
        );
    }
    collect_warnings(s, expected);
    s.verdict = if !s.problems.is_empty() {
        Verdict::Failed
    } else if !starting.is_empty() {
        Verdict::FirstBootRunning
    } else {
        Verdict::Ready
    };
    s.detail = match s.verdict {
        Verdict::Failed => s.problems.join("; "),
        Verdict::FirstBootRunning => starting.join("; "),
        _ => ready_text(s),
    };
}

/// `systemctl is-system-running`: starting is waiting, degraded names its failed units.
fn system_state(s: &mut NodeStatus, starting: &mut Vec<String>) {
    match s.system.as_deref() {
        Some("running") => {}
        Some("initializing" | "starting") => starting.push("systemd starting".into()),
        Some("degraded") => {
            // The first-boot unit's failure is already said, with its step.
            let others: Vec<&str> = s
                .failed_units
                .iter()
                .map(String::as_str)
                .filter(|u| *u != super::expect::FIRSTBOOT_UNIT)
                .collect();
            if !others.is_empty() {
                s.problems
                    .push(format!("degraded: failed units {}", others.join(", ")));
            } else if s.failed_units.is_empty() {
                s.problems.push("degraded".into());
            }
        }
        Some(other) => s.problems.push(format!("systemd is {other}")),
        None => s.problems.push("systemd state unknown".into()),
    }
}

fn failed_step_text(s: &NodeStatus) -> String {
    let fb = s.first_boot.as_ref();
    match fb.and_then(|f| f.failed_step.as_deref()) {
        Some(step) => format!(
            "first boot failed at step {step}{}",
            fb.and_then(|f| f.failed_exit)
                .map(|e| format!(" (exit {e})"))
                .unwrap_or_default()
        ),
        None => format!(
            "first boot did not finish (pibake-firstboot.service {}, no firstboot.done)",
            fb.and_then(|f| f.unit.as_deref()).unwrap_or("unknown")
        ),
    }
}

fn running_text(s: &NodeStatus) -> String {
    let Some(fb) = &s.first_boot else {
        return "first boot running".into();
    };
    let mut t = format!(
        "first boot: {} of {} steps done",
        fb.steps_done.len(),
        fb.steps.len()
    );
    if let Some(step) = &fb.failed_step {
        t.push_str(&format!(", retrying {step}"));
    }
    t
}

/// Root, clock, cluster view and an unbuilt node: said, never failing the node.
fn collect_warnings(s: &mut NodeStatus, expected: &Expected) {
    if !expected.built {
        s.warnings
            .push("not in manifest.json: its packages are not checked".into());
    }
    if let Some(r) = s.root.as_ref().filter(|r| !r.ok) {
        s.warnings.push(r.summary());
    }
    if let Some(c) = s.clock.as_ref().filter(|c| !c.ok) {
        s.warnings.push(c.summary());
    }
    if let Some(c) = s.cluster.as_ref().filter(|c| !c.ok) {
        s.warnings.push(c.summary());
    }
    if let (Some(h), false) = (&s.hostname, s.hostname.as_deref() == Some(&s.node)) {
        s.warnings.push(format!("answers as host `{h}`"));
    }
}

fn ready_text(s: &NodeStatus) -> String {
    let mut parts = vec![format!("{} unit(s) up", s.units.len())];
    if !s.packages.is_empty() {
        parts.push(format!("{} package(s) as built", s.packages.len()));
    }
    if let Some(c) = s.cluster.as_ref().filter(|c| c.ok) {
        parts.push(c.summary());
    }
    parts.extend(s.warnings.iter().map(|w| format!("warning: {w}")));
    parts.join(", ")
}
