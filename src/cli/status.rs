//! `pibake status CLUSTER`: is each node up as it was built? One SSH connection per
//! node, a table, a summary, and the commands that rebuild and reflash what failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::{Global, print_json};
use pibake::error::{Error, Result};
use pibake::inventory::Inventory;
use pibake::plan::plans;
use pibake::status::verdict::FirstBootState;
use pibake::status::{self, Expected, NodeStatus, Probe, Summary, expect};

/// What the connection may take beyond its connect timeout: the script's own commands
/// (systemctl, dpkg-query, a cluster tool) on a slow node.
const SCRIPT_TIME: Duration = Duration::from_secs(60);

/// How often `--watch` asks again, at most.
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// Ask each built node over SSH whether it came up as built: first boot, systemd, its
/// role's units and packages, root growth, clock; exit 0 only when every node but the
/// spares is ready
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster file (cluster.yaml)
    pub cluster: PathBuf,
    /// The build's output directory (manifest.json, known_hosts, ssh_config)
    /// [default: CLUSTER_DIR/images, as `pibake flash` uses]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these nodes: names, ranges like `node[001-010]`, or `role:NAME` (repeatable)
    #[arg(long = "node", value_name = "SEL")]
    pub nodes: Vec<String>,
    /// Ask again every 10 s until every node but the spares is ready, or --timeout
    #[arg(long)]
    pub watch: bool,
    /// With --watch: give up after this long (`90s`, `15m`, `1h`)
    #[arg(long, value_name = "D", default_value = "15m", value_parser = status::parse_duration, requires = "watch")]
    pub timeout: Duration,
    /// SSH ConnectTimeout, seconds; each node's connection is killed 60 s after that
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub connect_timeout: u32,
    /// The SSH client and its leading arguments, split on whitespace
    /// (`ip netns exec NS ssh`)
    #[arg(long, value_name = "CMD", default_value = "ssh")]
    pub ssh_command: String,
    /// The admin's private key, passed to ssh as `-i FILE`
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let inv = Inventory::load(&args.cluster)?;
    let default_out = inv.dir.join("images");
    let out = args.out.clone().unwrap_or_else(|| default_out.clone());
    let manifest = expect::manifest(&out, &args.cluster)?;
    let probe = probe(args, &out)?;
    let expected = expect::expected(&inv, &plans(&inv, &args.nodes, None)?, &manifest);
    let nodes = ask(&expected, &probe, args);
    let summary = Summary::of(&nodes);
    let rebuild = |n: &NodeStatus| {
        status::needs_reflash(n)
            .then(|| status::rebuild_commands(&args.cluster, &out, &default_out, &n.node))
    };
    if global.json {
        print_json(&json(&inv, &out, &nodes, &summary, &rebuild)?)?;
    } else {
        report(&nodes, &summary, &rebuild)?;
    }
    if summary.all_ready {
        return Ok(());
    }
    let waiting = nodes
        .iter()
        .filter(|n| !n.spare && n.verdict != status::Verdict::Ready);
    Err(Error::invalid(format!(
        "not ready: {}",
        waiting
            .map(|n| n.node.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The SSH side, refusing early when the build's client files are missing.
fn probe(args: &Args, out: &Path) -> Result<Probe> {
    let command: Vec<String> = args
        .ssh_command
        .split_whitespace()
        .map(String::from)
        .collect();
    if command.is_empty() {
        return Err(Error::invalid("--ssh-command is empty").with_hint("the default is `ssh`"));
    }
    if let Some(i) = args.identity.as_ref().filter(|i| !i.is_file()) {
        return Err(Error::invalid(format!(
            "--identity {}: no such file",
            i.display()
        )));
    }
    Ok(Probe {
        command,
        config: client_file(args, out, "ssh_config")?,
        known_hosts: client_file(args, out, "known_hosts")?,
        identity: args.identity.clone(),
        connect_timeout: args.connect_timeout,
        deadline: Duration::from_secs(args.connect_timeout.into()) + SCRIPT_TIME,
    })
}

/// A file `build` writes for SSH beside the images, or what to do without it.
fn client_file(args: &Args, out: &Path, name: &str) -> Result<PathBuf> {
    let path = out.join(name);
    if path.is_file() {
        return Ok(path);
    }
    Err(
        Error::invalid(format!("{}: no such file", path.display())).with_hint(format!(
            "build first: pibake build {} --out {}",
            args.cluster.display(),
            out.display()
        )),
    )
}

/// Asks every node once, or with `--watch` until all are ready or the time is up,
/// saying each round's summary on stderr.
fn ask(expected: &[Expected], probe: &Probe, args: &Args) -> Vec<NodeStatus> {
    let started = Instant::now();
    loop {
        let nodes = status::check_all(expected, probe);
        let summary = Summary::of(&nodes);
        let elapsed = started.elapsed();
        if !args.watch || summary.all_ready || elapsed >= args.timeout {
            return nodes;
        }
        eprintln!("{:>5} s: {}", elapsed.as_secs(), summary.line());
        std::thread::sleep(WATCH_EVERY.min(args.timeout - elapsed));
    }
}

/// Every field, with each node's rebuild commands when it needs them.
fn json(
    inv: &Inventory,
    out: &Path,
    nodes: &[NodeStatus],
    summary: &Summary,
    rebuild: &dyn Fn(&NodeStatus) -> Option<[String; 2]>,
) -> Result<serde_json::Value> {
    let nodes = nodes
        .iter()
        .map(|n| {
            let mut v = serde_json::to_value(n)
                .map_err(|e| Error::invalid(format!("cannot render JSON: {e}")))?;
            v["rebuild"] = serde_json::json!(rebuild(n));
            Ok(v)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::json!({
        "cluster": inv.file.cluster,
        "out": out,
        "summary": summary,
        "nodes": nodes,
    }))
}

/// The table, what failed first boots logged, the summary and the rebuild commands.
fn report(
    nodes: &[NodeStatus],
    summary: &Summary,
    rebuild: &dyn Fn(&NodeStatus) -> Option<[String; 2]>,
) -> Result<()> {
    out!("{}", table(nodes));
    for n in nodes {
        out!("{}", first_boot_logs(n));
    }
    outln!("{}", summary.line());
    let commands: Vec<[String; 2]> = nodes.iter().filter_map(rebuild).collect();
    if !commands.is_empty() {
        outln!(
            "\nTo rebuild and reflash the failed and wrong nodes (DEV: the node's card, see `pibake flash --list`):"
        );
        for [build, flash] in commands {
            outln!("  {build}\n  {flash}");
        }
    }
    Ok(())
}

/// One line per node, columns as wide as their widest cell.
pub fn table(nodes: &[NodeStatus]) -> String {
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|n| {
            [
                n.node.clone(),
                if n.spare {
                    format!("{} (spare)", n.role)
                } else {
                    n.role.clone()
                },
                n.address.clone().unwrap_or_else(|| "-".into()),
                n.verdict.label().to_string(),
                n.detail.clone(),
            ]
        })
        .collect();
    let head = ["NODE", "ROLE", "ADDRESS", "STATUS", "DETAIL"].map(String::from);
    let mut widths = [0usize; 4];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = widths
            .iter()
            .zip(r)
            .map(|(w, c)| format!("{c:<w$}"))
            .collect();
        s.push_str(&format!("{}  {}\n", cells.join("  "), r[4]).replace("  \n", "\n"));
    }
    s
}

/// A failed first boot's log and journal tails, indented under the node's name.
fn first_boot_logs(n: &NodeStatus) -> String {
    let Some(fb) = n
        .first_boot
        .as_ref()
        .filter(|f| f.state == FirstBootState::Failed)
    else {
        return String::new();
    };
    let mut s = format!("\n{}: {}\n", n.node, n.detail);
    for (name, lines) in [
        ("/var/lib/pibake/firstboot.log", &fb.log_tail),
        ("journal of pibake-firstboot.service", &fb.journal_tail),
    ] {
        if lines.is_empty() {
            continue;
        }
        s.push_str(&format!("  {name}, last lines:\n"));
        for l in &lines[lines.len().saturating_sub(10)..] {
            s.push_str(&format!("    {l}\n"));
        }
    }
    s.push('\n');
    s
}
