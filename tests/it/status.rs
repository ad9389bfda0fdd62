//! `pibake status` against a built cluster, with a stand-in `ssh` first on PATH that
//! answers as each node would: one ready, one whose first boot failed (its log written
//! by the real first-boot runner), one that times out, one with another host key, and an
//! unreachable spare. The table, the summary, the JSON, the rebuild commands, the
//! client's command line and the exit status are checked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{Fixture, Release, test_key};
use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::plans;

/// The version the manifest is made to record for `ready` and `broken`.
const CURL: &str = "7.88.1-10+deb12u8";

/// The stand-in client: records its arguments, environment and standard input per
/// node, then answers as the node named before `sh -s`.
const FAKE_SSH: &str = r#"#!/bin/sh
dir=$(dirname "$0")/..
eval node=\${$(($# - 2))}
printf '%s\n' "$*" >"$dir/calls/$node.args"
printf '%s\n' "${PIBAKE_FAKE:-}" >"$dir/calls/$node.env"
cat >"$dir/calls/$node.script"
case $node in
  gone) echo "ssh: connect to host 10.9.0.12 port 22: Connection timed out" >&2; exit 255 ;;
  reserve) echo "ssh: connect to host 10.9.0.14 port 22: Connection refused" >&2; exit 255 ;;
  swapped)
    cat >&2 <<'EOF'
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key for 10.9.0.13 has changed and you have requested strict checking.
Host key verification failed.
EOF
    exit 255 ;;
esac
a=$dir/answers/$node
cat "$a"
echo "firstboot_log=$(base64 -w0 <"$a.log")"
[ ! -e "$a.journal" ] || echo "firstboot_journal=$(base64 -w0 <"$a.journal")"
echo "now=$(date +%s)"
echo end=1
"#;

/// What `ready` says beyond its log: first boot done, everything up, curl as built.
const READY: &str = "pibake_status=1
hostname=ready
firstboot_done=yes
firstboot_unit=LoadState=loaded ActiveState=inactive Result=success
firstboot_steps=10-enable-units 20-snippet-1
firstboot_steps_done=10-enable-units 20-snippet-1
system=running
unit=active running success yes notify ssh.service sshd.service
pkg=bash 5.2.15-2+b8 ii
pkg=curl 7.88.1-10+deb12u8 ii
root=mmcblk0p2 1064960 61669376 62734336 31003000000
";

/// What `broken` says: its first-boot unit failed, so systemd is degraded.
const BROKEN: &str = "pibake_status=1
hostname=broken
firstboot_done=no
firstboot_unit=LoadState=loaded ActiveState=failed Result=exit-code
firstboot_steps=10-enable-units 20-snippet-1
firstboot_steps_done=10-enable-units
system=degraded
failed_unit=pibake-firstboot.service
unit=active running success yes notify ssh.service sshd.service
root=mmcblk0p2 1064960 61669376 62734336 31003000000
";

/// A cluster of workers with one first-boot snippet, built into `DIR/images` (where
/// `status` and `flash` look by default), with curl recorded in the manifest for two.
struct Built {
    _base: Fixture,
    dir: tempfile::TempDir,
    cluster: PathBuf,
    out: PathBuf,
}

fn build_cluster() -> Built {
    let f = Fixture::new(Release::Bookworm);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("profiles")).unwrap();
    fs::write(
        d.join("profiles/worker.yaml"),
        "extends: base\ninterfaces:\n  eth0: { network: lan }\nfirstboot:\n  - test -e \"${PIBAKE_ROOT:-}/ready\"\n",
    )
    .unwrap();
    let text = format!(
        "cluster: probe\nbase: {}\nnetworks:\n  lan: {{ subnet: 10.9.0.0/24, gateway: 10.9.0.1, first: 10.9.0.10 }}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles: {{ worker: {{}} }}\nnodes:\n  - {{ name: ready, role: worker }}\n  - {{ name: broken, role: worker }}\n  - {{ name: gone, role: worker }}\n  - {{ name: swapped, role: worker }}\n  - {{ name: reserve, role: worker, spare: true }}\n",
        f.image.display(),
        test_key()
    );
    let cluster = d.join("cluster.yaml");
    fs::write(&cluster, text).unwrap();
    let out = d.join("images");
    crate::common::pibake_build(d, &cluster, &out, &[]);
    record_curl(&out.join("manifest.json"));
    Built {
        _base: f,
        dir,
        cluster,
        out,
    }
}

/// Has the manifest record curl for `ready` and `broken`, as a build with packages does.
fn record_curl(manifest: &Path) {
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(manifest).unwrap()).unwrap();
    for n in m["nodes"].as_array_mut().unwrap() {
        if n["node"] == "ready" || n["node"] == "broken" {
            n["packages"] =
                serde_json::json!([{ "name": "curl", "version": CURL, "architecture": "arm64" }]);
        }
    }
    fs::write(manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// The stand-in `ssh` and each node's answer; the first-boot logs are the real runner's,
/// run from the plan against a scratch tree: failing first, then succeeding.
fn fake_ssh(b: &Built) -> PathBuf {
    let fake = b.dir.path().join("fake");
    for sub in ["bin", "calls", "answers"] {
        fs::create_dir_all(fake.join(sub)).unwrap();
    }
    let ssh = fake.join("bin/ssh");
    fs::write(&ssh, FAKE_SSH).unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let answers = fake.join("answers");
    fs::write(answers.join("ready"), READY).unwrap();
    fs::write(answers.join("broken"), BROKEN).unwrap();
    let root = b.dir.path().join("root");
    let (failed, failed_log) = run_first_boot(&b.cluster, &root);
    assert!(!failed.status.success());
    fs::write(answers.join("broken.log"), failed_log).unwrap();
    fs::write(answers.join("broken.journal"), &failed.stdout).unwrap();
    fs::write(root.join("ready"), "").unwrap();
    let (ok, ok_log) = run_first_boot(&b.cluster, &root);
    assert!(ok.status.success());
    fs::write(answers.join("ready.log"), ok_log).unwrap();
    fake
}

/// Runs the node's first-boot runner from its plan with `PIBAKE_ROOT`; its output (the
/// journal's) and its log.
fn run_first_boot(cluster: &Path, root: &Path) -> (Output, String) {
    let inv = Inventory::load(cluster).unwrap();
    let plan = &plans(&inv, &["broken".into()], Some(NetworkStack::NetworkManager)).unwrap()[0];
    crate::common::write_firstboot_files(plan, root);
    let out = Command::new("sh")
        .arg(root.join("usr/local/lib/pibake/firstboot"))
        .env("PIBAKE_ROOT", root)
        .output()
        .unwrap();
    let log = fs::read_to_string(root.join("var/lib/pibake/firstboot.log")).unwrap();
    (out, log)
}

/// `pibake status ARGS` with the stand-in first on PATH.
fn status(fake: &Path, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        fake.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_pibake"))
        .arg("status")
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The table's row of a node, split into its columns (two spaces or more apart).
fn row<'a>(table: &'a str, node: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(node))
        .unwrap_or_else(|| panic!("no row for {node}:\n{table}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn status_names_each_node_verdict_and_how_to_reflash_the_bad_ones() {
    let b = build_cluster();
    let fake = fake_ssh(&b);
    let c = b.cluster.to_str().unwrap();
    let o = status(&fake, &[c]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.starts_with("NODE "), "{out}");
    // Each row's columns, `|`-separated.
    for want in [
        "ready|worker|10.9.0.10|ready|1 unit(s) up, 1 package(s) as built",
        "broken|worker|10.9.0.11|failed|first boot failed at step 20-snippet-1 (exit 1)",
        "gone|worker|10.9.0.12|unreachable|connection timed out",
        "swapped|worker|10.9.0.13|wrong host key|wrong host key: a card in the wrong slot or a reinstalled node",
        "reserve|worker (spare)|10.9.0.14|unreachable|connection refused: sshd not up yet?",
    ] {
        let want: Vec<&str> = want.split('|').collect();
        assert_eq!(row(&out, want[0]), want);
    }
    // The failed first boot's log, as the runner wrote it, and its step's own output.
    assert!(
        out.contains("  /var/lib/pibake/firstboot.log, last lines:\n")
            && out.contains(" 20-snippet-1 failed (exit 1); retried on the next boot\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "    pibake firstboot: 20-snippet-1: failed (exit 1); retried on the next boot\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\n1 ready, 0 first boot running, 1 failed, 1 wrong host key, 2 unreachable\n"
        ),
        "{out}"
    );
    let reflash = out
        .split_once("To rebuild and reflash")
        .map(|(_, r)| r)
        .unwrap_or_default();
    let commands: Vec<&str> = reflash
        .lines()
        .filter(|l| l.starts_with("  pibake "))
        .map(str::trim)
        .collect();
    let o_dir = b.out.to_str().unwrap();
    assert_eq!(
        commands,
        [
            format!("pibake build {c} --node broken --out {o_dir}"),
            format!("pibake flash {c} --node broken --device DEV"),
            format!("pibake build {c} --node swapped --out {o_dir}"),
            format!("pibake flash {c} --node swapped --device DEV"),
        ]
    );
    assert!(err.contains("not ready: broken, gone, swapped"), "{err}");
}

#[test]
fn status_json_has_every_field() {
    let b = build_cluster();
    let fake = fake_ssh(&b);
    let c = b.cluster.to_str().unwrap();
    let o = status(&fake, &["--json", c, "--out", b.out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cluster"], "probe");
    assert_eq!(
        v["summary"],
        serde_json::json!({
            "ready": 1, "first_boot_running": 0, "failed": 1, "wrong_host_key": 1, "unreachable": 2, "all_ready": false
        })
    );
    let node = |name: &str| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap()
            .clone()
    };
    check_ready_json(&node("ready"));
    check_bad_json(&node, c, &b.out);
}

/// The ready node: every check, each ok.
fn check_ready_json(ready: &serde_json::Value) {
    assert_eq!(
        (
            ready["verdict"].as_str(),
            ready["role"].as_str(),
            ready["address"].as_str()
        ),
        (Some("ready"), Some("worker"), Some("10.9.0.10"))
    );
    assert_eq!(ready["spare"], false);
    assert_eq!(ready["hostname"], "ready");
    assert_eq!(ready["system"], "running");
    assert_eq!(ready["problems"], serde_json::json!([]));
    assert_eq!(ready["warnings"], serde_json::json!([]));
    assert_eq!(
        ready["ssh"],
        serde_json::json!({ "exit": 0, "timed_out": false, "messages": [] })
    );
    assert_eq!(ready["first_boot"]["state"], "done");
    assert_eq!(
        ready["first_boot"]["steps_done"],
        serde_json::json!(["10-enable-units", "20-snippet-1"])
    );
    assert_eq!(ready["first_boot"]["failed_step"], serde_json::Value::Null);
    assert_eq!(
        ready["units"],
        serde_json::json!([{ "unit": "ssh.service", "active": "active", "sub": "running", "state": "ok" }])
    );
    assert_eq!(
        ready["packages"],
        serde_json::json!([{ "name": "curl", "want": CURL, "got": CURL, "state": "ii", "ok": true }])
    );
    assert_eq!(ready["root"]["ok"], true);
    assert_eq!(ready["root"]["end_sector"], 62734336);
    assert_eq!(ready["root"]["partition"], "mmcblk0p2");
    assert_eq!(ready["clock"]["ok"], true, "{}", ready["clock"]);
    assert!(ready["clock"]["offset_seconds"].as_f64().unwrap().abs() <= 5.0);
    assert_eq!(ready["cluster"], serde_json::Value::Null);
    assert_eq!(ready["rebuild"], serde_json::Value::Null);
}

/// The failed, unreachable, wrong and spare nodes: why, and the rebuild commands.
fn check_bad_json(node: &dyn Fn(&str) -> serde_json::Value, c: &str, out: &Path) {
    let broken = node("broken");
    assert_eq!(broken["verdict"], "failed");
    assert_eq!(broken["first_boot"]["state"], "failed");
    assert_eq!(broken["first_boot"]["unit"], "failed");
    assert_eq!(broken["first_boot"]["failed_step"], "20-snippet-1");
    assert_eq!(broken["first_boot"]["failed_exit"], 1);
    assert!(
        broken["first_boot"]["log_tail"][0]
            .as_str()
            .unwrap()
            .ends_with(" 10-enable-units ok")
    );
    assert_eq!(
        broken["failed_units"],
        serde_json::json!(["pibake-firstboot.service"])
    );
    assert_eq!(
        broken["problems"],
        serde_json::json!(["first boot failed at step 20-snippet-1 (exit 1)"])
    );
    // Not installed yet: first boot installs packages, and it did not get that far.
    assert_eq!(broken["packages"][0]["got"], serde_json::Value::Null);
    assert_eq!(
        broken["rebuild"][0],
        format!("pibake build {c} --node broken --out {}", out.display())
    );

    let gone = node("gone");
    assert_eq!(
        (gone["verdict"].as_str(), gone["detail"].as_str()),
        (Some("unreachable"), Some("connection timed out"))
    );
    assert_eq!(gone["ssh"]["exit"], 255);
    assert_eq!(
        gone["ssh"]["messages"],
        serde_json::json!(["ssh: connect to host 10.9.0.12 port 22: Connection timed out"])
    );
    assert_eq!(gone["first_boot"], serde_json::Value::Null);
    assert_eq!(gone["rebuild"], serde_json::Value::Null);

    let swapped = node("swapped");
    assert_eq!(swapped["verdict"], "wrong_host_key");
    assert_eq!(
        swapped["ssh"]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "Host key verification failed."
    );
    assert_eq!(
        swapped["rebuild"][1],
        format!("pibake flash {c} --node swapped --device DEV")
    );
    assert_eq!(node("reserve")["spare"], true);
}

#[test]
fn status_asks_through_the_given_client_with_the_fixed_script() {
    let b = build_cluster();
    let fake = fake_ssh(&b);
    let key = b.dir.path().join("admin_key");
    fs::write(&key, "not really a key\n").unwrap();
    let c = b.cluster.to_str().unwrap();
    // Spares aside, the nodes asked are ready: exit 0.
    let o = status(
        &fake,
        &[
            c,
            "--node",
            "ready",
            "--node",
            "reserve",
            "--identity",
            key.to_str().unwrap(),
            "--connect-timeout",
            "3",
            "--ssh-command",
            "env PIBAKE_FAKE=through-env ssh",
        ],
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout)
            .contains("1 ready, 0 first boot running, 0 failed, 0 wrong host key, 1 unreachable")
    );
    let calls = fake.join("calls");
    assert!(
        !calls.join("broken.args").exists(),
        "a node not selected was asked"
    );
    let args = fs::read_to_string(calls.join("ready.args")).unwrap();
    let out = b.out.display();
    assert_eq!(
        args.trim_end(),
        format!(
            "-F {out}/ssh_config -i {} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={out}/known_hosts -o ConnectTimeout=3 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o LogLevel=ERROR -T -- ready sh -s",
            key.display()
        )
    );
    assert_eq!(
        fs::read_to_string(calls.join("ready.env")).unwrap(),
        "through-env\n"
    );
    // The script is the fixed one: nothing of the inventory is in it.
    let script = fs::read_to_string(calls.join("ready.script")).unwrap();
    assert_eq!(script, pibake::status::script::SCRIPT);
    for word in ["ready", "10.9.0", "curl", "probe", "ssh.service"] {
        assert!(!script.contains(word), "{word} in the script");
    }
}

#[test]
fn status_watch_stops_when_ready_or_at_its_timeout() {
    let b = build_cluster();
    let fake = fake_ssh(&b);
    let c = b.cluster.to_str().unwrap();
    let started = std::time::Instant::now();
    let o = status(&fake, &[c, "--node", "ready", "--watch"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(started.elapsed().as_secs() < 10, "did not stop once ready");
    let o = status(&fake, &[c, "--node", "gone", "--watch", "--timeout", "2s"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("0 ready, 0 first boot running, 0 failed, 0 wrong host key, 1 unreachable"),
        "{err}"
    );
    assert!(err.contains("not ready: gone"), "{err}");
}

#[test]
fn status_without_a_build_says_to_build_first() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new(Release::Bookworm);
    let cluster = dir.path().join("cluster.yaml");
    fs::write(
        &cluster,
        format!(
            "cluster: none\nbase: {}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles: {{ box: {{ profile: base }} }}\nnodes:\n  - {{ name: w1, role: box }}\n",
            f.image.display(),
            test_key()
        ),
    )
    .unwrap();
    let c = cluster.to_str().unwrap();
    let o = status(dir.path(), &[c]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    let manifest = dir.path().join("images/manifest.json");
    assert!(
        err.contains(&format!("{}: no such file", manifest.display()))
            && err.contains(&format!(
                "hint: build first: pibake build {c} --out {}",
                dir.path().join("images").display()
            )),
        "{err}"
    );
}

/// The real script, run by a local shell in place of a node (a client that ignores its
/// arguments and runs `sh -s`): it answers completely with this machine's own tools,
/// so the verdict comes from its facts, never from a cut-short answer.
#[test]
fn the_real_script_answers_completely_from_a_local_shell() {
    let b = build_cluster();
    let local = b.dir.path().join("local-sh");
    fs::write(&local, "#!/bin/sh\nexec sh -s\n").unwrap();
    fs::set_permissions(&local, fs::Permissions::from_mode(0o755)).unwrap();
    let c = b.cluster.to_str().unwrap();
    let o = status(
        b.dir.path(),
        &[
            "--json",
            c,
            "--node",
            "ready",
            "--ssh-command",
            local.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = &v["nodes"][0];
    assert_eq!(n["ssh"]["exit"], 0, "{n}");
    assert_ne!(n["verdict"], "unreachable", "{n}");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(n["hostname"], host.trim(), "{n}");
    assert_eq!(n["clock"]["ok"], true, "{n}");
    assert!(n["first_boot"]["state"].is_string(), "{n}");
}
