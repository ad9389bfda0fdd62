//! Every verdict from recorded answers: what the status script printed on nodes in each
//! state, and what `ssh` said when it could not get that far.

use super::checks::UnitOutcome;
use super::expect::{Expected, Leads};
use super::ssh::Answer;
use super::verdict::{FirstBootState, Verdict, judge};
use super::*;

/// A web worker: ssh and a timer enabled, first-boot work, curl baked in.
fn worker() -> Expected {
    Expected {
        node: "web1".into(),
        role: "worker".into(),
        address: Some("10.0.0.11".into()),
        spare: false,
        first_boot: true,
        units: vec!["ssh.service".into(), "pibake-site-pull.timer".into()],
        packages: vec![("curl".into(), "7.88.1-10+deb12u8".into())],
        built: true,
        leads: None,
    }
}

/// What a ready web worker printed (`firstboot_log` is two `ok` lines; 1700000000 is
/// the node's clock).
const READY: &str = "pibake_status=1
hostname=web1
firstboot_done=yes
firstboot_unit=LoadState=loaded ActiveState=inactive Result=success 
firstboot_steps=10-packages 20-enable-units 
firstboot_steps_done=10-packages 20-enable-units 
firstboot_log=MjAyNC0wMS0wMVQwMDowMDowMFogMTAtcGFja2FnZXMgb2sKMjAyNC0wMS0wMVQwMDowMDowMVogMjAtZW5hYmxlLXVuaXRzIG9rCg==
system=running
unit=active running success yes notify ssh.service sshd.service
unit=active waiting success yes - pibake-site-pull.timer
unit=inactive dead success no oneshot pibake-firstboot.service
pkg=bash 5.2.15-2+b8 ii 
pkg=curl 7.88.1-10+deb12u8 ii 
root=mmcblk0p2 1064960 61669376 62734336 31003000000
now=1700000000
end=1
";

fn answer(stdout: &str) -> Answer {
    Answer {
        exit: Some(0),
        stdout: stdout.into(),
        now_received: Some(1_700_000_000.2),
        ..Answer::default()
    }
}

fn with(lines: &[(&str, &str)]) -> String {
    let mut text = READY.to_string();
    for (old, new) in lines {
        assert!(text.contains(old), "{old}");
        text = text.replace(old, new);
    }
    text
}

#[test]
fn a_node_as_built_is_ready() {
    let s = judge(&worker(), &answer(READY));
    assert_eq!(s.verdict, Verdict::Ready, "{s:?}");
    assert_eq!(s.detail, "2 unit(s) up, 1 package(s) as built");
    assert!(s.problems.is_empty() && s.warnings.is_empty(), "{s:?}");
    assert_eq!(s.first_boot.as_ref().unwrap().state, FirstBootState::Done);
    assert!(s.units.iter().all(|u| u.state == UnitOutcome::Ok));
    assert!(s.root.as_ref().unwrap().ok);
    let clock = s.clock.unwrap();
    assert!(clock.ok && clock.offset_seconds == 0.3, "{clock:?}");
}

#[test]
fn a_running_first_boot_waits() {
    let text = with(&[
        ("firstboot_done=yes", "firstboot_done=no"),
        ("ActiveState=inactive", "ActiveState=activating"),
        (
            "firstboot_steps_done=10-packages 20-enable-units",
            "firstboot_steps_done=",
        ),
        ("system=running", "system=starting"),
        ("pkg=curl 7.88.1-10+deb12u8 ii \n", ""),
    ]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(s.verdict, Verdict::FirstBootRunning, "{s:?}");
    assert_eq!(s.detail, "first boot: 0 of 2 steps done; systemd starting");
    // The packages are installed by first boot: not missing yet, only not checked.
    assert!(s.problems.is_empty(), "{s:?}");
}

#[test]
fn a_failed_step_is_named_with_the_runners_log() {
    // firstboot_log: "... 10-packages failed (exit 100); retried on the next boot".
    let text = with(&[
        ("firstboot_done=yes", "firstboot_done=no"),
        (
            "ActiveState=inactive Result=success",
            "ActiveState=failed Result=exit-code",
        ),
        (
            "firstboot_steps_done=10-packages 20-enable-units",
            "firstboot_steps_done=",
        ),
        (
            "firstboot_log=MjAy",
            "firstboot_log=MjAyNC0wMS0wMVQwMDowMDowMFogMTAtcGFja2FnZXMgZmFpbGVkIChleGl0IDEwMCk7IHJldHJpZWQgb24gdGhlIG5leHQgYm9vdAo=\nignored=MjAy",
        ),
        (
            "system=running",
            "system=degraded\nfailed_unit=pibake-firstboot.service",
        ),
        (
            "firstboot_unit",
            "firstboot_journal=RTogVW5hYmxlIHRvIGxvY2F0ZSBwYWNrYWdlCg==\nfirstboot_unit",
        ),
    ]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(s.verdict, Verdict::Failed, "{s:?}");
    assert_eq!(s.detail, "first boot failed at step 10-packages (exit 100)");
    let fb = s.first_boot.unwrap();
    assert_eq!(fb.failed_step.as_deref(), Some("10-packages"));
    assert_eq!(fb.failed_exit, Some(100));
    assert_eq!(fb.journal_tail, ["E: Unable to locate package"]);
    assert!(fb.log_tail[0].ends_with("10-packages failed (exit 100); retried on the next boot"));
}

#[test]
fn a_step_retried_on_this_boot_is_running_again() {
    let text = with(&[
        ("firstboot_done=yes", "firstboot_done=no"),
        ("ActiveState=inactive", "ActiveState=activating"),
        (
            "firstboot_log=MjAy",
            "firstboot_log=MjAyNC0wMS0wMVQwMDowMDowMFogMTAtcGFja2FnZXMgZmFpbGVkIChleGl0IDEwMCk7IHJldHJpZWQgb24gdGhlIG5leHQgYm9vdAo=\nignored=MjAy",
        ),
        ("system=running", "system=starting"),
    ]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(s.verdict, Verdict::FirstBootRunning, "{s:?}");
    assert!(s.detail.contains("retrying 10-packages"), "{}", s.detail);
}

#[test]
fn a_first_boot_that_never_ran_after_boot_failed() {
    let text = with(&[("firstboot_done=yes", "firstboot_done=no")]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.detail
            .starts_with("first boot did not finish (pibake-firstboot.service inactive")
    );
}

#[test]
fn failed_units_other_versions_and_missing_packages_are_named() {
    let text = with(&[
        (
            "system=running",
            "system=degraded\nfailed_unit=pibake-site-pull.service",
        ),
        (
            "unit=active waiting success yes - pibake-site-pull.timer\n",
            "",
        ),
        (
            "pkg=curl 7.88.1-10+deb12u8 ii",
            "pkg=curl 7.88.1-10+deb12u5 iF",
        ),
    ]);
    let mut e = worker();
    e.packages
        .push(("apache2".into(), "2.4.62-1~deb12u2".into()));
    let s = judge(&e, &answer(&text));
    assert_eq!(s.verdict, Verdict::Failed);
    assert_eq!(
        s.problems,
        [
            "degraded: failed units pibake-site-pull.service",
            "pibake-site-pull.timer not enabled",
            "curl 7.88.1-10+deb12u5 (built with 7.88.1-10+deb12u8)",
            "apache2 missing",
        ]
    );
    let text = with(&[(
        "pkg=curl 7.88.1-10+deb12u8 ii",
        "pkg=curl 7.88.1-10+deb12u8 iF",
    )]);
    assert_eq!(judge(&worker(), &answer(&text)).detail, "curl state iF");
}

#[test]
fn oneshots_that_ran_and_units_done_by_condition_are_up() {
    let mut e = worker();
    e.units = vec!["nftables.service".into(), "pibake-swarm.service".into()];
    let text = with(&[(
        "unit=active running success yes notify ssh.service sshd.service",
        "unit=inactive dead success yes oneshot nftables.service\nunit=inactive dead success no exec pibake-swarm.service",
    )]);
    assert_eq!(judge(&e, &answer(&text)).verdict, Verdict::Ready);
    let text = with(&[(
        "unit=active running success yes notify ssh.service sshd.service",
        "unit=activating start success yes exec pibake-swarm.service\nunit=inactive dead exit-code yes oneshot nftables.service",
    )]);
    let s = judge(&e, &answer(&text));
    assert_eq!(
        (s.verdict, s.detail.as_str()),
        (Verdict::Failed, "nftables.service inactive")
    );
}

#[test]
fn a_starting_unit_waits() {
    let text = with(&[("unit=active waiting", "unit=activating start")]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(
        (s.verdict, s.detail.as_str()),
        (
            Verdict::FirstBootRunning,
            "pibake-site-pull.timer activating"
        )
    );
}

#[test]
fn root_clock_and_hostname_are_warnings() {
    let text = with(&[
        ("61669376 62734336", "6000000 62734336"),
        ("now=1700000000", "now=1699999000"),
        ("hostname=web1", "hostname=web2"),
    ]);
    let s = judge(&worker(), &answer(&text));
    assert_eq!(s.verdict, Verdict::Ready);
    assert_eq!(
        s.warnings,
        [
            "root not grown to the card (mmcblk0p2 ends at 3449 MiB of 30632 MiB)",
            "clock 1000 s behind",
            "answers as host `web2`",
        ]
    );
    assert!(
        s.detail.contains("warning: clock 1000 s behind"),
        "{}",
        s.detail
    );
}

#[test]
fn a_changed_host_key_is_a_wrong_card() {
    let a = Answer {
        exit: Some(255),
        stderr: "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\nHost key verification failed.\n".into(),
        ..Answer::default()
    };
    let s = judge(&worker(), &a);
    assert_eq!(s.verdict, Verdict::WrongHostKey);
    assert_eq!(
        s.detail,
        "wrong host key: a card in the wrong slot or a reinstalled node"
    );
    assert_eq!(
        s.ssh.messages.last().unwrap(),
        "Host key verification failed."
    );
    assert!(needs_reflash(&s));
    let unknown = Answer {
        exit: Some(255),
        stderr: "No ED25519 host key is known for 10.0.0.11 and you have requested strict checking.\nHost key verification failed.\n".into(),
        ..Answer::default()
    };
    assert!(
        judge(&worker(), &unknown)
            .detail
            .contains("known_hosts has none for it")
    );
}

#[test]
fn no_connection_is_unreachable_with_the_reason() {
    for (stderr, timed_out, detail) in [
        (
            "ssh: connect to host 10.0.0.11 port 22: Connection timed out\n",
            false,
            "connection timed out",
        ),
        (
            "ssh: connect to host 10.0.0.11 port 22: Connection refused\n",
            false,
            "connection refused: sshd not up yet?",
        ),
        (
            "admin@10.0.0.11: Permission denied (publickey).\n",
            false,
            "login refused: is --identity the admin's key?",
        ),
        ("", true, "no answer before the deadline"),
        (
            "kex_exchange_identification: read: Connection reset by peer\n",
            false,
            "kex_exchange_identification: read: Connection reset by peer",
        ),
    ] {
        let a = Answer {
            exit: (!timed_out).then_some(255),
            timed_out,
            stderr: stderr.into(),
            ..Answer::default()
        };
        let s = judge(&worker(), &a);
        assert_eq!(
            (s.verdict, s.detail.as_str()),
            (Verdict::Unreachable, detail)
        );
        assert!(!needs_reflash(&s));
    }
}

#[test]
fn an_answer_that_is_not_the_scripts_is_unreachable() {
    let mut a = answer("This account is currently not available.\n");
    a.exit = Some(1);
    let s = judge(&worker(), &a);
    assert_eq!(
        (s.verdict, s.detail.as_str()),
        (
            Verdict::Unreachable,
            "no complete status answer (ssh exit 1)"
        )
    );
    // Cut short: killed halfway through.
    let half = &READY[..READY.find("pkg=").unwrap()];
    assert_eq!(
        judge(&worker(), &answer(half)).verdict,
        Verdict::Unreachable
    );
}

#[test]
fn a_node_without_first_boot_work_is_ready_without_a_marker() {
    let mut e = worker();
    e.first_boot = false;
    e.packages.clear();
    let text = with(&[
        ("firstboot_done=yes", "firstboot_done=no"),
        (
            "LoadState=loaded ActiveState=inactive",
            "LoadState=not-found ActiveState=inactive",
        ),
    ]);
    let s = judge(&e, &answer(&text));
    assert_eq!(s.verdict, Verdict::Ready, "{s:?}");
    assert_eq!(s.first_boot.unwrap().state, FirstBootState::None);
}

#[test]
fn a_leaders_view_of_its_cluster() {
    let mut e = worker();
    e.leads = Some(Leads {
        system: "swarm".into(),
        members: vec!["manager".into(), "worker1".into()],
    });
    // "manager Ready Active Leader\nworker1 Down Active \n"
    let text = with(&[(
        "now=",
        "cluster=swarm\ncluster_ok=yes\ncluster_view=bWFuYWdlciBSZWFkeSBBY3RpdmUgTGVhZGVyCndvcmtlcjEgRG93biBBY3RpdmUgCg==\nnow=",
    )]);
    let s = judge(&e, &answer(&text));
    assert_eq!(s.verdict, Verdict::Ready);
    assert_eq!(s.warnings, ["swarm: not Ready: worker1"]);
    let ok = text.replace(
        "bWFuYWdlciBSZWFkeSBBY3RpdmUgTGVhZGVyCndvcmtlcjEgRG93biBBY3RpdmUgCg==",
        "bWFuYWdlciBSZWFkeSBBY3RpdmUgTGVhZGVyCndvcmtlcjEgUmVhZHkgQWN0aXZlIAo=",
    );
    let s = judge(&e, &answer(&ok));
    assert!(s.detail.ends_with("swarm: 2 of 2 Ready"), "{}", s.detail);
}

#[test]
fn spares_do_not_count_for_the_exit_status() {
    let mut spare = worker();
    spare.spare = true;
    let down = Answer {
        exit: Some(255),
        stderr: "Connection timed out".into(),
        ..Answer::default()
    };
    let nodes = [judge(&worker(), &answer(READY)), judge(&spare, &down)];
    let sum = Summary::of(&nodes);
    assert!(sum.all_ready);
    assert_eq!(
        sum.line(),
        "1 ready, 0 first boot running, 0 failed, 0 wrong host key, 1 unreachable"
    );
    assert!(!Summary::of(&[judge(&worker(), &down)]).all_ready);
}

#[test]
fn rebuild_commands_name_the_output_and_quote_paths() {
    let p = std::path::Path::new;
    assert_eq!(
        rebuild_commands(p("c/cluster.yaml"), p("c/images"), p("c/images"), "web1"),
        [
            "pibake build c/cluster.yaml --node web1 --out c/images",
            "pibake flash c/cluster.yaml --node web1 --device DEV",
        ]
    );
    assert_eq!(
        rebuild_commands(p("my c/cluster.yaml"), p("/o'ut"), p("my c/images"), "web1")[1],
        "pibake flash 'my c/cluster.yaml' --node web1 --out '/o'\\''ut' --device DEV"
    );
}

#[test]
fn durations_read_as_people_write_them() {
    let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
    assert_eq!(secs("15m"), Ok(900));
    assert_eq!(secs("1h30m"), Ok(5400));
    assert_eq!(secs("90s"), Ok(90));
    assert_eq!(secs("45"), Ok(45));
    for bad in ["", "m", "10x", "5m3", "-1s"] {
        assert!(secs(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_ssh_command_line_never_carries_the_script() {
    let probe = Probe {
        command: vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            "ns1".into(),
            "ssh".into(),
        ],
        config: "/o/ssh_config".into(),
        known_hosts: "/o/known_hosts".into(),
        identity: Some("/k/id".into()),
        connect_timeout: 7,
        deadline: std::time::Duration::from_secs(67),
    };
    let args: Vec<String> = probe
        .args("web1")
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args.join(" "),
        "netns exec ns1 ssh -F /o/ssh_config -i /k/id -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/o/known_hosts -o ConnectTimeout=7 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o LogLevel=ERROR -T -- web1 sh -s"
    );
}

#[test]
fn the_script_is_shell_and_its_keys_are_read() {
    let out = std::process::Command::new("sh")
        .args(["-n", "-c", script::SCRIPT])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every key the script prints is one the parser reads.
    for key in [
        "hostname",
        "firstboot_done",
        "firstboot_unit",
        "firstboot_steps",
        "firstboot_steps_done",
        "firstboot_log",
        "firstboot_journal",
        "system",
        "failed_unit",
        "unit",
        "pkg",
        "root",
        "cluster",
        "cluster_ok",
        "cluster_view",
        "now",
        "end",
    ] {
        assert!(script::SCRIPT.contains(&format!("{key}=")), "{key}");
    }
}
