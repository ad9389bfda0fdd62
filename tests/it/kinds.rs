//! Clusters that form themselves: Slurm's settings refused where they are written, its
//! slurm.conf and plan lines, the munge key (made once, baked 0400 munge, never shown),
//! and the cluster's time service.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{Fixture, Release, debugfs_text as debugfs, e2fsck_clean};
use crate::common::{pibake, pibake_ok, test_key};
use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::plans;

/// A cluster of a controller and computes on local profiles (no packages, so the
/// fixtures can build it), with `slurm` appended.
fn slurm_cluster(dir: &Path, base: &str, nodes: &str, tail: &str) -> PathBuf {
    let profiles = [
        ("ctl", "extends: worker\nslurm: controller\ntime: server\n"),
        ("cmp", "extends: worker\nslurm: compute\nmodel: pi3\n"),
    ];
    for (name, text) in profiles {
        fs::create_dir_all(dir.join("profiles")).unwrap();
        fs::write(dir.join(format!("profiles/{name}.yaml")), text).unwrap();
    }
    let text = format!(
        "cluster: lab\n{base}networks:\n  lan: {{ subnet: 10.0.0.0/24, gateway: 10.0.0.1 }}\nadmin:\n  name: pi\n  locked: true\n  ssh_keys: [\"{}\"]\nroles:\n  ctl: {{ profile: ctl }}\n  cmp: {{ profile: cmp }}\n  web: {{ profile: worker }}\nnodes:\n{nodes}\n{tail}",
        test_key()
    );
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

const NODES: &str = "  - { name: c, role: ctl }\n  - { name: \"n[1-2]\", role: cmp }";

fn error_of(nodes: &str, tail: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = slurm_cluster(dir.path(), "", nodes, tail);
    let result = Inventory::load(&path)
        .and_then(|inv| plans(&inv, &[], Some(NetworkStack::NetworkManager)).map(|_| ()));
    let err = result.expect_err("bad input accepted").to_string();
    err.replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn slurm_settings_are_refused_at_their_file_line_and_column() {
    let cases = [
        (
            "  - { name: c, role: ctl }\n  - { name: c2, role: ctl }\n  - { name: n1, role: cmp }",
            "",
            "cluster.yaml:14:5: Slurm has more than one controller (c, c2)",
        ),
        (
            "  - { name: c, role: ctl, spare: true }\n  - { name: n1, role: cmp }",
            "",
            "cluster.yaml:13:5: `c` is a spare Slurm controller",
        ),
        (
            NODES,
            "slurm:\n  partitions:\n    p: { roles: [web] }\n",
            "cluster.yaml:17:18: role `web` has no `slurm: compute` nodes",
        ),
        (
            NODES,
            "slurm:\n  partitions:\n    p: { roles: [cmp], max_time: soon }\n",
            "cluster.yaml:17:34: slurm.partitions.p: max_time `soon`: use minutes",
        ),
        (
            NODES,
            "slurm:\n  partitions:\n    p: { roles: [cmp], default: true }\n    q: { roles: [cmp], default: true }\n",
            "cluster.yaml:18:33: a second default partition",
        ),
        (
            NODES,
            "slurm:\n  partitions:\n    Big: { roles: [cmp] }\n",
            "cluster.yaml:17:5: slurm.partitions: `Big`: a Slurm name is a lowercase letter",
        ),
        (
            "  - { name: c, role: ctl }\n  - { name: n1, role: cmp, vars: { cpus: 0 } }",
            "",
            "cluster.yaml:14:42: `cpus` must be a whole number from 1 to 1024",
        ),
        (
            NODES,
            "vars: { memory_mb: lots }\n",
            "cluster.yaml:15:20: `memory_mb` must be a whole number",
        ),
        (
            "  - { name: c, role: ctl }\n  - { name: n1, role: cmp }",
            "slurm: { cluster_name: \"x y\" }\n",
            "cluster.yaml:15:24: slurm: `x y`: a Slurm name",
        ),
        (
            "  - { name: n1, role: cmp }",
            "",
            "the Slurm cluster (a `slurm: controller`) has no node to start it",
        ),
    ];
    let failed: Vec<String> = cases
        .iter()
        .map(|(nodes, tail, expect)| (error_of(nodes, tail), expect))
        .filter(|(err, expect)| !err.contains(**expect))
        .map(|(err, expect)| format!("expected `{expect}` in: {err}"))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// slurm.conf from parsed values: the controller's address, one NodeName per compute
/// with its model's CPUs and memory (or its own vars), the spare FUTURE, the partitions
/// as cluster.yaml gives them; computes get only the controller's address; every node
/// its time from the controller.
#[test]
fn the_controller_gets_slurm_conf_and_the_computes_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = "  - { name: c, role: ctl }\n  - { name: \"n[1-2]\", role: cmp }\n  - { name: n3, role: cmp, vars: { cpus: 2, memory_mb: 300 } }\n  - { name: s1, role: cmp, spare: true }";
    let tail = "slurm:\n  cluster_name: lab1\n  partitions:\n    short: { roles: [cmp], max_time: 90 }\n    long: { roles: [cmp], default: true, max_time: \"2-12\" }\n";
    let path = slurm_cluster(dir.path(), "", nodes, tail);
    let inv = Inventory::load(&path).unwrap();
    let all = plans(&inv, &[], Some(NetworkStack::NetworkManager)).unwrap();
    let file = |node: &str, path: &str| {
        let p = all.iter().find(|p| p.node == node).unwrap();
        p.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| String::from_utf8(f.content.clone()).unwrap())
    };
    let conf = file("c", "/etc/slurm/slurm.conf").expect("slurm.conf on the controller");
    let lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    for want in [
        "ClusterName=lab1",
        "SlurmctldHost=c(10.0.0.2)",
        "SlurmctldParameters=enable_configless",
        "MpiDefault=pmix",
        "NodeName=n1 NodeAddr=10.0.0.3 CPUs=4 RealMemory=768 State=UNKNOWN",
        "NodeName=n2 NodeAddr=10.0.0.4 CPUs=4 RealMemory=768 State=UNKNOWN",
        "NodeName=n3 NodeAddr=10.0.0.5 CPUs=2 RealMemory=300 State=UNKNOWN",
        "NodeName=s1 NodeAddr=10.0.0.6 CPUs=4 RealMemory=768 State=FUTURE",
        "PartitionName=long Nodes=n1,n2,n3,s1 Default=YES MaxTime=2-12:00:00 State=UP",
        "PartitionName=short Nodes=n1,n2,n3,s1 Default=NO MaxTime=0-01:30:00 State=UP",
    ] {
        assert!(lines.contains(&want), "no `{want}` in:\n{conf}");
    }
    assert!(file("n1", "/etc/slurm/slurm.conf").is_none(), "configless");
    let dropin = file("n1", "/etc/systemd/system/slurmd.service.d/pibake.conf").unwrap();
    assert!(dropin.contains("ConditionPathExists=\n"), "{dropin}");
    assert!(
        dropin.contains("Environment=SLURMD_OPTIONS=--conf-server=10.0.0.2\n"),
        "{dropin}"
    );
    // Time: chrony serves the subnet on the controller; the others sync from it, and
    // munge and slurmd wait for that.
    let chrony = file("c", "/etc/chrony/conf.d/pibake.conf").unwrap();
    assert!(
        chrony.contains("local stratum 8\nallow 10.0.0.0/24\n"),
        "{chrony}"
    );
    let synced = file("n3", "/etc/systemd/timesyncd.conf.d/pibake.conf").unwrap();
    assert!(synced.contains("[Time]\nNTP=10.0.0.2\n"), "{synced}");
    for unit in ["munge.service", "slurmd.service"] {
        let after = file(
            "n3",
            &format!("/etc/systemd/system/{unit}.d/pibake-time.conf"),
        )
        .unwrap();
        assert!(
            after.contains("[Unit]\nAfter=time-sync.target\n"),
            "{after}"
        );
    }
    let n3 = all.iter().find(|p| p.node == "n3").unwrap();
    assert!(n3.symlinks.iter().any(|l| {
        l.path
            .ends_with("sysinit.target.wants/systemd-time-wait-sync.service")
    }));
    let ctl = &inv.profiles["ctl"];
    assert!(
        ctl.def.packages.iter().any(|p| p == "chrony"),
        "the time server gets chrony"
    );
    let text = pibake::plan::human(n3);
    assert!(
        text.contains("slurm   compute with 2 CPUs and 300 MiB in long, short; slurmd takes slurm.conf from c (10.0.0.2)"),
        "{text}"
    );
    let spare = pibake::plan::human(all.iter().find(|p| p.node == "s1").unwrap());
    assert!(spare.contains("State=FUTURE: out of service"), "{spare}");

    // `time: { sync: false }` turns the time service off, chrony with it.
    fs::write(
        &path,
        fs::read_to_string(&path).unwrap() + "time: { sync: false }\n",
    )
    .unwrap();
    let inv = Inventory::load(&path).unwrap();
    assert!(inv.time.is_none() && inv.profiles["ctl"].def.packages.is_empty());
}

/// The munge key: made once into the state directory (0600), kept by a rebuild, baked
/// into every member 0400 and owned by a `munge` system account made as adduser would
/// (read back with debugfs), and in no plan, output or message.
#[test]
fn the_munge_key_is_made_once_baked_0400_munge_and_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let base = format!("base: {}\n", f.image.display());
    let path = slurm_cluster(work.path(), &base, NODES, "time: { sync: false }\n");
    let (c, o) = (path.to_str().unwrap(), work.path().join("out"));
    let state = work.path().join("state");
    let args = [
        "build",
        c,
        "--out",
        o.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let first = pibake(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let key_file = state.join("_cluster/munge.key");
    assert_eq!(
        fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = fs::read(&key_file).unwrap();
    assert_eq!(key.len(), 128);
    let run = pibake(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(fs::read(&key_file).unwrap(), key, "a rebuild keeps the key");
    for node in ["c", "n1", "n2"] {
        let image = o.join(format!("{node}.img"));
        e2fsck_clean(&image, f.root_offset);
        let passwd = debugfs(&image, f.root_offset, "cat /etc/passwd");
        let munge = passwd
            .lines()
            .find(|l| l.starts_with("munge:"))
            .expect("a munge account");
        let f3: Vec<&str> = munge.split(':').collect();
        let id: u32 = f3[2].parse().unwrap();
        assert!((100..1000).contains(&id) && f3[3] == f3[2], "{munge}");
        assert_eq!(f3[5..], ["/nonexistent", "/usr/sbin/nologin"]);
        let group = debugfs(&image, f.root_offset, "cat /etc/group");
        assert!(
            group.lines().any(|l| l == format!("munge:x:{id}:")),
            "{group}"
        );
        let st = debugfs(&image, f.root_offset, "stat /etc/munge/munge.key");
        assert!(
            st.contains("Mode:  0400") && st.contains(&format!("User:   {id}")),
            "{st}"
        );
        let dump = work.path().join(format!("{node}.key"));
        debugfs(
            &image,
            f.root_offset,
            &format!("dump /etc/munge/munge.key {}", dump.display()),
        );
        assert_eq!(fs::read(&dump).unwrap(), key, "{node}");
    }
    let mut shown = fs::read(o.join("manifest.json")).unwrap();
    for out in [&first, &run] {
        shown.extend_from_slice(&out.stdout);
        shown.extend_from_slice(&out.stderr);
    }
    shown.extend_from_slice(pibake_ok(&["plan", c]).as_bytes());
    shown.extend_from_slice(pibake_ok(&["plan", "--json", c]).as_bytes());
    for e in fs::read_dir(&o).unwrap().map(|e| e.unwrap().path()) {
        if e.extension().is_none_or(|x| x != "img") && e.is_file() {
            shown.extend(fs::read(&e).unwrap());
        }
    }
    assert!(
        !shown.windows(16).any(|w| w == &key[..16]),
        "the munge key's bytes were shown"
    );
    let hex = pibake_image::digest::hex(&key[..16]);
    assert!(
        !String::from_utf8_lossy(&shown).contains(&hex),
        "the munge key was shown in hex"
    );
}
