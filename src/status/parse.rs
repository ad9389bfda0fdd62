//! The status script's answer ([`super::script::SCRIPT`]) read into facts.
//!
//! The answer comes from a machine on the network, so it is read as untrusted text:
//! unknown keys and malformed lines are skipped, numbers that do not parse are absent,
//! and every value kept has its control characters replaced, so that printing it can
//! never move the cursor or colour the operator's terminal.

use serde::Serialize;

/// The answer's format version, on its first line: an answer without it is not the
/// script's (a login banner, a shell that could not start).
pub const FORMAT: &str = "1";

/// Longest value kept of one line, and most lines kept of a base64 tail.
const MAX_VALUE: usize = 4096;
const MAX_TAIL_LINES: usize = 40;

/// Everything the script reported about one node, as it reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// The first line was `pibake_status=1`: the script ran.
    pub answered: bool,
    /// The last line was `end=1`: the script ran to its end.
    pub complete: bool,
    /// The node's hostname.
    pub hostname: Option<String>,
    /// `/var/lib/pibake/firstboot.done` exists.
    pub firstboot_done: bool,
    /// `pibake-firstboot.service`'s properties (`LoadState`, `ActiveState`, `Result`).
    pub firstboot_unit: Vec<(String, String)>,
    /// The first-boot steps in the image, by name (`10-packages`).
    pub steps: Vec<String>,
    /// The steps whose marker says they succeeded.
    pub steps_done: Vec<String>,
    /// The last lines of `/var/lib/pibake/firstboot.log`.
    pub firstboot_log: Vec<String>,
    /// The last lines of the first-boot unit's journal (only while not done).
    pub firstboot_journal: Vec<String>,
    /// `systemctl is-system-running`.
    pub system: Option<String>,
    /// Units in the failed state.
    pub failed_units: Vec<String>,
    /// Every enabled unit's state.
    pub units: Vec<UnitState>,
    /// Every package dpkg knows.
    pub packages: Vec<Installed>,
    /// Where the root filesystem is and how large its partition and disk are.
    pub root: Option<RootFacts>,
    /// The node's view of the cluster it leads, when it leads one.
    pub cluster: Option<ClusterFacts>,
    /// The node's clock (`date +%s`).
    pub now: Option<i64>,
}

/// One enabled unit, as `systemctl show` reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitState {
    /// Its names: the unit's own, then its aliases (`ssh.service sshd.service`).
    pub names: Vec<String>,
    /// `active`, `activating`, `inactive`, `failed`, ...
    pub active: String,
    /// `running`, `exited`, `waiting`, `dead`, ...
    pub sub: String,
    /// `success`, `exit-code`, ...
    pub result: String,
    /// `yes`, or `no` when a condition kept it from starting.
    pub condition: String,
    /// `simple`, `oneshot`, ...; `-` for units without a type (timers).
    pub kind: String,
}

/// One package as dpkg has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// dpkg's two-letter state (`ii` installed; `iF` half-configured, ...).
    pub state: String,
}

/// The root filesystem's partition against its disk, in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootFacts {
    /// The partition's kernel name (`mmcblk0p2`).
    pub partition: String,
    /// Its first sector.
    pub start: u64,
    /// Its length.
    pub sectors: u64,
    /// The whole disk's length.
    pub disk_sectors: u64,
    /// The mounted filesystem's size in bytes (`df`).
    pub filesystem_bytes: u64,
}

/// A cluster tool's answer on the node that leads the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterFacts {
    /// `swarm`, `k3s` or `slurm`.
    pub system: String,
    /// The tool exited 0.
    pub command_ok: bool,
    /// Its output, one entry a line (`NAME STATUS ...`).
    pub lines: Vec<String>,
}

/// Reads the script's output.
pub fn parse(output: &str) -> Facts {
    let mut f = Facts::default();
    let mut lines = output.lines().filter(|l| !l.is_empty()).peekable();
    f.answered = lines.peek() == Some(&format!("pibake_status={FORMAT}").as_str());
    for line in lines {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        f.complete = false;
        line_into(&mut f, key, value);
    }
    f
}

/// One `key=value` line into the facts.
fn line_into(f: &mut Facts, key: &str, value: &str) {
    let text = || Some(clean(value)).filter(|v| !v.is_empty());
    match key {
        "hostname" => f.hostname = text(),
        "firstboot_done" => f.firstboot_done = value == "yes",
        "firstboot_unit" => f.firstboot_unit = properties(value),
        "firstboot_steps" => f.steps = words(value),
        "firstboot_steps_done" => f.steps_done = words(value),
        "firstboot_log" => f.firstboot_log = tail(value),
        "firstboot_journal" => f.firstboot_journal = tail(value),
        "system" => f.system = text(),
        "failed_unit" => f.failed_units.push(clean(value)),
        "unit" => f.units.extend(unit(value)),
        "pkg" => f.packages.extend(package(value)),
        "root" => f.root = root(value),
        "cluster" => {
            f.cluster = Some(ClusterFacts {
                system: clean(value),
                command_ok: false,
                lines: Vec::new(),
            })
        }
        "cluster_ok" => f
            .cluster
            .iter_mut()
            .for_each(|c| c.command_ok = value == "yes"),
        "cluster_view" => f.cluster.iter_mut().for_each(|c| c.lines = tail(value)),
        "now" => f.now = value.trim().parse().ok(),
        "end" => f.complete = value == "1",
        _ => {}
    }
}

/// A value with its control characters replaced by `?`, cut to a bounded length.
pub fn clean(value: &str) -> String {
    value
        .chars()
        .take(MAX_VALUE)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(clean).collect()
}

/// `KEY=VALUE KEY=VALUE` pairs.
fn properties(value: &str) -> Vec<(String, String)> {
    value
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (clean(k), clean(v)))
        .collect()
}

/// A base64 tail: its last lines, each cleaned; nothing when it does not decode.
fn tail(value: &str) -> Vec<String> {
    let Some(bytes) = base64(value.trim()) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text.lines().map(clean).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(MAX_TAIL_LINES)..].to_vec()
}

/// `ACTIVE SUB RESULT CONDITION TYPE NAME...`
fn unit(value: &str) -> Option<UnitState> {
    let w = words(value);
    if w.len() < 6 {
        return None;
    }
    Some(UnitState {
        active: w[0].clone(),
        sub: w[1].clone(),
        result: w[2].clone(),
        condition: w[3].clone(),
        kind: w[4].clone(),
        names: w[5..].to_vec(),
    })
}

/// `NAME VERSION STATE`; dpkg's state may lack its third letter's space.
fn package(value: &str) -> Option<Installed> {
    let mut w = value.split_whitespace();
    let (name, version, state) = (w.next()?, w.next()?, w.next()?);
    Some(Installed {
        name: clean(name),
        version: clean(version),
        state: clean(state),
    })
}

/// `PARTITION START SECTORS DISK_SECTORS FS_BYTES`.
fn root(value: &str) -> Option<RootFacts> {
    let w: Vec<&str> = value.split_whitespace().collect();
    let [partition, start, sectors, disk, fs] = w.as_slice() else {
        return None;
    };
    Some(RootFacts {
        partition: clean(partition),
        start: start.parse().ok()?,
        sectors: sectors.parse().ok()?,
        disk_sectors: disk.parse().ok()?,
        filesystem_bytes: fs.parse().ok()?,
    })
}

/// Standard base64 (RFC 4648, with or without padding); `None` for anything else.
pub fn base64(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=').as_bytes();
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | digit(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_what_coreutils_writes() {
        assert_eq!(base64("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(base64("aGk=").unwrap(), b"hi");
        assert_eq!(base64("aA==").unwrap(), b"h");
        assert_eq!(base64("").unwrap(), b"");
        assert_eq!(base64("a"), None);
        assert_eq!(base64("a$==").map(|_| ()), None);
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("ok\x1b[31mred\x07"), "ok?[31mred?");
        // A tail's lines are cleaned one by one: "a\x1b\nb" base64-encoded.
        assert_eq!(tail("YRsKYgo="), ["a?", "b"]);
    }

    #[test]
    fn an_answer_without_the_marker_is_not_the_scripts() {
        let f = parse("Welcome!\nhostname=x\n");
        assert!(!f.answered && !f.complete);
        assert_eq!(f.hostname.as_deref(), Some("x"));
    }

    #[test]
    fn lines_are_read_by_key_and_bad_ones_skipped() {
        let f = parse(
            "pibake_status=1\nfirstboot_unit=LoadState=loaded ActiveState=failed Result=exit-code \n\
             unit=active running success yes notify ssh.service sshd.service\nunit=broken\n\
             pkg=curl 7.88.1-10 ii \npkg=half\nroot=mmcblk0p2 1064960 60000000 61067264 30000000000\n\
             root=vda2 x 1 2 3\nnow=1700000000\nmystery=1\nend=1\n",
        );
        assert!(f.answered && f.complete);
        assert_eq!(f.firstboot_unit[1], ("ActiveState".into(), "failed".into()));
        assert_eq!(f.units.len(), 1);
        assert_eq!(f.units[0].names, ["ssh.service", "sshd.service"]);
        assert_eq!(f.packages[0].state, "ii");
        assert_eq!(f.packages.len(), 1);
        // The second, malformed root line replaces the first with nothing.
        assert_eq!(f.root, None);
        assert_eq!(f.now, Some(1_700_000_000));
    }

    #[test]
    fn an_answer_cut_short_is_not_complete() {
        let f = parse("pibake_status=1\nend=1\nsystem=running\n");
        assert!(f.answered && !f.complete);
    }
}
