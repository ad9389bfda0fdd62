//! The inventory and plans: every shipped example validates and renders, plans are
//! stable (snapshots), and each validation rule names file, line and column.

use std::fs;
use std::path::{Path, PathBuf};

use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::{Plan, plans};

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path().join("cluster.yaml"))
        .filter(|p| p.exists())
        .collect();
    v.sort();
    v
}

fn file<'a>(p: &'a Plan, path: &str) -> &'a str {
    let f = p
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{}: no {path}", p.node));
    std::str::from_utf8(&f.content).unwrap()
}

#[test]
fn every_example_validates_and_every_node_renders() {
    let all = examples();
    assert!(all.len() >= 6, "{all:?}");
    for e in all {
        let inv = Inventory::load(&e).unwrap_or_else(|err| panic!("{}: {err}", e.display()));
        let ps = plans(&inv, &[], Some(NetworkStack::NetworkManager))
            .unwrap_or_else(|err| panic!("{}: {err}", e.display()));
        assert_eq!(ps.len(), inv.nodes.len());
        for p in &ps {
            assert_eq!(file(p, "/etc/hostname"), format!("{}\n", p.node));
            for other in &inv.nodes {
                if let Some(a) = other.addresses.values().next() {
                    assert!(
                        file(p, "/etc/hosts").contains(&format!("{a}\t")),
                        "{}: hosts lacks {}",
                        p.node,
                        other.name
                    );
                }
            }
        }
    }
}

#[test]
fn the_bitscope_module_has_151_nodes_with_distinct_addresses() {
    let inv = Inventory::load(Path::new("examples/bitscope-module/cluster.yaml")).unwrap();
    assert_eq!(inv.nodes.len(), 151);
    assert_eq!(inv.nodes.iter().filter(|n| n.spare).count(), 6);
    assert_eq!(inv.nodes[1].name, "node001");
    assert_eq!(inv.nodes[144].name, "node144");
    let mut addrs: Vec<_> = inv.nodes.iter().map(|n| n.addresses["lan"]).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 151);
    assert_eq!(inv.nodes[0].addresses["lan"].to_string(), "10.1.0.2");
    assert_eq!(inv.nodes[1].addresses["lan"].to_string(), "10.1.0.10");
    // Selections: a range, a role, a name; in inventory order, without repeats.
    let sel = |s: &[&str]| -> Vec<String> {
        inv.select(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
            .unwrap()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    };
    assert_eq!(
        sel(&["node[003-005]", "mgmt"]),
        ["mgmt", "node003", "node004", "node005"]
    );
    assert_eq!(sel(&["role:head", "mgmt"]), ["mgmt"]);
    assert_eq!(sel(&["role:worker"]).len(), 150);
    assert!(inv.select(&["node[200-201]".to_string()]).is_err());
    assert!(inv.select(&["role:nope".to_string()]).is_err());
}

#[test]
fn templates_see_the_whole_cluster() {
    let inv = Inventory::load(Path::new("examples/web-cluster/cluster.yaml")).unwrap();
    let ps = plans(&inv, &["lb".into()], Some(NetworkStack::NetworkManager)).unwrap();
    let conf = file(&ps[0], "/etc/apache2/sites-available/pibake-balancer.conf");
    for n in inv.nodes.iter().filter(|n| n.role == "worker") {
        assert!(
            conf.contains(&format!(
                "BalancerMember \"http://{}:80\"",
                n.addresses["lan"]
            )),
            "{conf}"
        );
    }
    assert!(conf.contains("ProxyRequests Off") && conf.contains("lbmethod=byrequests"));
    assert!(
        conf.contains("Require ip 192.168.1.0/24"),
        "balancer-manager only from the admin subnet"
    );
    assert!(
        ps[0]
            .symlinks
            .iter()
            .any(|l| l.path == "/etc/apache2/mods-enabled/proxy_balancer.load")
    );

    let inv = Inventory::load(Path::new("examples/portable-cluster/cluster.yaml")).unwrap();
    let ps = plans(
        &inv,
        &["head".into(), "worker1".into()],
        Some(NetworkStack::NetworkManager),
    )
    .unwrap();
    let dnsmasq = file(&ps[0], "/etc/dnsmasq.d/pibake-cluster.conf");
    assert!(
        dnsmasq.contains("dhcp-host=dc:a6:32:00:00:05,worker5,"),
        "{dnsmasq}"
    );
    let eth1 = file(
        &ps[0],
        "/etc/NetworkManager/system-connections/pibake-eth1.nmconnection",
    );
    assert!(
        eth1.contains("address1=10.10.0.1/24\n") && eth1.contains("never-default=true"),
        "the head is its own gateway:\n{eth1}"
    );
    let worker = file(
        &ps[1],
        "/etc/NetworkManager/system-connections/pibake-eth0.nmconnection",
    );
    // A worker's address is reserved on the head: its interface asks by DHCP, and
    // keeps asking until the head is up; every node still knows it from the inventory.
    assert!(
        worker.contains("method=auto\ndhcp-timeout=2147483647\n") && !worker.contains("address1="),
        "workers take their reserved address by DHCP:\n{worker}"
    );
    assert!(
        dnsmasq.contains("dhcp-host=worker1,10.10.0.11\n"),
        "{dnsmasq}"
    );
    assert!(file(&ps[1], "/etc/hosts").contains("10.10.0.11\tworker1.portable.lan worker1\n"));
    assert!(file(&ps[1], "/etc/auto.pibake-cluster").contains("10.10.0.1:/srv/share/&"));
}

#[test]
fn each_network_stack_gets_its_own_files() {
    let inv = Inventory::load(Path::new("examples/desk/cluster.yaml")).unwrap();
    let node = ["node1".to_string()];
    let nm = &plans(&inv, &node, Some(NetworkStack::NetworkManager)).unwrap()[0];
    assert_eq!(
        nm.files
            .iter()
            .find(|f| f.path.ends_with("pibake-eth0.nmconnection"))
            .unwrap()
            .mode,
        0o600
    );
    let dhcpcd = &plans(&inv, &node, Some(NetworkStack::Dhcpcd)).unwrap()[0];
    assert_eq!(dhcpcd.blocks[0].path, "/etc/dhcpcd.conf");
    assert!(
        dhcpcd.blocks[0]
            .content
            .contains("static ip_address=10.0.0.11/24\nstatic routers=10.0.0.1\n")
    );
    let networkd = &plans(&inv, &node, Some(NetworkStack::Networkd)).unwrap()[0];
    assert!(
        file(networkd, "/etc/systemd/network/10-pibake-eth0.network")
            .contains("Address=10.0.0.11/24")
    );
    assert!(
        networkd
            .services
            .enable
            .contains(&"systemd-networkd.service".to_string())
    );
    let ifupdown = &plans(&inv, &node, Some(NetworkStack::Ifupdown)).unwrap()[0];
    assert!(
        file(ifupdown, "/etc/network/interfaces.d/pibake-eth0").contains("iface eth0 inet static")
    );
}

/// Human plans of a few nodes of each example, compared with `tests/snapshots/`.
/// `PIBAKE_BLESS=1 cargo test --test inventory` rewrites them after a deliberate change.
#[test]
fn plans_match_their_snapshots() {
    for e in examples() {
        let name = e
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let inv = Inventory::load(&e).unwrap();
        let first: Vec<String> = inv.nodes.iter().take(3).map(|n| n.name.clone()).collect();
        let text: String = plans(&inv, &first, Some(NetworkStack::NetworkManager))
            .unwrap()
            .iter()
            .map(|p| {
                let mut s = pibake::plan::human(p);
                for f in p.files.iter().filter(|f| !f.secret) {
                    s.push_str(&format!(
                        "--- {}\n{}",
                        f.path,
                        String::from_utf8_lossy(&f.content)
                    ));
                }
                s
            })
            .collect();
        let snap = Path::new("tests/snapshots").join(format!("{name}.plan"));
        if std::env::var_os("PIBAKE_BLESS").is_some() {
            fs::create_dir_all("tests/snapshots").unwrap();
            fs::write(&snap, &text).unwrap();
            continue;
        }
        let want = fs::read_to_string(&snap)
            .unwrap_or_else(|_| panic!("{} missing: run with PIBAKE_BLESS=1", snap.display()));
        assert!(
            text == want,
            "{}: plan changed; diff it against a fresh PIBAKE_BLESS=1 run\n{text}",
            snap.display()
        );
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqU+JMbv/mYQnyv4yiqHAW1Q/hrqkSaWfYBnnh3kInG admin@laptop";

/// A cluster file from `lines`, with profiles and overlays written beside it.
fn cluster(dir: &Path, text: &str, extra: &[(&str, &str)]) -> PathBuf {
    for (p, content) in extra {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

/// A valid cluster whose parts a case can replace.
fn good(nodes: &str, networks: &str, admin: &str) -> String {
    format!(
        "cluster: lab\nnetworks:\n{networks}\nadmin:\n{admin}\nroles:\n  worker: {{}}\nnodes:\n{nodes}\n"
    )
}

const NETS: &str = "  lan: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 }";
/// A `k3s:` section naming files that need not exist: plans only warn of missing ones.
const K3S: &str = "k3s:\n  binary: { path: k3s/k3s, sha256: \"aa00000000000000000000000000000000000000000000000000000000000000\" }\n  images: { path: k3s/images.tar.zst, sha256: \"aa00000000000000000000000000000000000000000000000000000000000000\" }\n";
const NODES: &str = "  - { name: \"w[1-2]\", role: worker }";

fn admin() -> String {
    format!("  name: pi\n  locked: true\n  ssh_keys: [\"{KEY}\"]")
}

fn error_of(text: &str, extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster(dir.path(), text, extra);
    let result = Inventory::load(&path)
        .and_then(|inv| plans(&inv, &[], Some(NetworkStack::NetworkManager)).map(|_| ()));
    let err = result.expect_err("bad input accepted").to_string();
    err.replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn every_rule_names_file_line_and_column() {
    let a = admin();
    // (cluster.yaml text, other files beside it, what the error must say)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            good(NODES, NETS, &a).replace("roles:", "rolez:"),
            vec![],
            "cluster.yaml:8:1: unknown field `rolez`",
        ),
        (
            good("  - { name: w1, role: worker, adress: {} }", NETS, &a),
            vec![],
            "cluster.yaml:11:31: nodes[0]: unknown field `adress`",
        ),
        (
            good("  - { name: w1, role: worker, adresses: {} }", NETS, &a),
            vec![],
            "hint: did you mean `addresses`?",
        ),
        (
            good("  - { name: w_1, role: worker }", NETS, &a),
            vec![],
            "cluster.yaml:11:13: hostname `w_1` contains `_`",
        ),
        (
            good(
                "  - { name: w1, role: worker }\n  - { name: w1, role: worker }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:12:13: hostname `w1` is used twice (first at line 11)",
        ),
        (
            good("  - { name: \"w[3-1]\", role: worker }", NETS, &a),
            vec![],
            "cluster.yaml:11:13: `w[3-1]`: the range runs backwards",
        ),
        (
            good("  - { name: \"w[1-\", role: worker }", NETS, &a),
            vec![],
            "without a closing `]`",
        ),
        (
            good(
                "  - { name: w1, role: worker, addresses: { lan: 10.0.1.5 } }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:11:49: w1: 10.0.1.5 is outside the subnet 10.0.0.0/24",
        ),
        (
            good(
                "  - { name: w1, role: worker, addresses: { lan: 10.0.0.0 } }",
                NETS,
                &a,
            ),
            vec![],
            "is the network address",
        ),
        (
            good(
                "  - { name: w1, role: worker, addresses: { lan: 10.0.0.255 } }",
                NETS,
                &a,
            ),
            vec![],
            "is the broadcast address",
        ),
        (
            good(
                "  - { name: w1, role: worker, addresses: { lan: 10.0.0.1 } }",
                NETS,
                &a,
            ),
            vec![],
            "10.0.0.1 is the gateway or a DNS server",
        ),
        (
            good(
                "  - { name: w1, role: worker, addresses: { lan: 10.0.0.9 } }\n  - { name: w2, role: worker, addresses: { lan: 10.0.0.9 } }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:12:49: w2: address 10.0.0.9 is already taken by node w1 (line 11)",
        ),
        (
            good(NODES, "  lan: { subnet: 10.0.0.1/24 }", &a),
            vec![],
            "cluster.yaml:3:18: `10.0.0.1/24` has host bits set",
        ),
        (
            good(NODES, NETS, "  name: pi\n  password_hash: '$1$abc$def'"),
            vec![],
            "cluster.yaml:6:18: the password hash is md5-crypt",
        ),
        (
            good(
                NODES,
                NETS,
                "  name: pi\n  locked: true\n  ssh_keys: [\"ssh-ed25519 AAAAbroken\"]",
            ),
            vec![],
            "cluster.yaml:7:14: not an OpenSSH public key",
        ),
        (
            good(NODES, NETS, "  name: Pi\n  locked: true"),
            vec![],
            "cluster.yaml:5:9: user name `Pi`",
        ),
        (
            good("  - { name: w1, role: wroker }", NETS, &a),
            vec![],
            "cluster.yaml:11:23: no role `wroker` in `roles:`\n  hint: did you mean `worker`?",
        ),
        (
            good(NODES, NETS, &a),
            vec![("profiles/worker.yaml", "extends: base\ngpu_mem: 2048\n")],
            "profiles/worker.yaml:2:10: gpu_mem 2048 is out of range",
        ),
        (
            good(NODES, NETS, &a),
            vec![(
                "profiles/worker.yaml",
                "extends: base\ninterfaces:\n  eth0: { netwrk: lan }\n",
            )],
            "profiles/worker.yaml:3:11: interfaces.eth0: unknown field `netwrk`",
        ),
        (
            good(NODES, NETS, &a),
            vec![(
                "profiles/worker.yaml",
                "extends: base\ninterfaces:\n  eth0: { default_route: true }\n",
            )],
            "profiles/worker.yaml:3:9: eth0: give `network: NAME` (static), `dhcp: true`, or both",
        ),
        (
            good(NODES, NETS, &a),
            vec![("profiles/worker.yaml", "extends: bsae\n")],
            "profiles/worker.yaml:1:10: no profile `bsae`",
        ),
        (
            good(NODES, NETS, &a),
            vec![("profiles/worker.yaml", "extends: worker\n")],
            "profiles/worker.yaml:1:10: profile `worker`: `extends` goes round in a circle",
        ),
        (
            good(NODES, NETS, &a),
            vec![(
                "profiles/worker.yaml",
                "interfaces:\n  eth0: { network: wan }\n",
            )],
            "profiles/worker.yaml:2:20: network `wan` is not defined in",
        ),
        (
            good(NODES, NETS, &a),
            vec![
                ("profiles/worker.yaml", "overlays: [site]\n"),
                ("overlays/site/etc/motd.hbs", "hello {{#if}}\n"),
            ],
            "overlays/site/etc/motd.hbs:2:1: template syntax: invalid handlebars syntax",
        ),
        (
            good(NODES, NETS, &a),
            vec![
                ("profiles/worker.yaml", "overlays: [site]\n"),
                (
                    "overlays/site/etc/motd.hbs",
                    "line one\nhello {{node.nmae}}\n",
                ),
            ],
            "overlays/site/etc/motd.hbs:2:7: template: `node.nmae` is not defined",
        ),
        (
            good(NODES, NETS, &a),
            vec![("profiles/worker.yaml", "network_stack: netplan\n")],
            "profiles/worker.yaml:1:16: unknown network stack `netplan`",
        ),
    ];
    for (text, extra, want) in cases {
        let err = error_of(&text, &extra);
        assert!(
            err.contains(want),
            "want `{want}` in:\n{err}\n--- input:\n{text}"
        );
    }
}

#[test]
fn overlays_may_not_point_outside_the_root() {
    let a = admin();
    for (target, want) in [
        ("/etc/passwd", "absolute symlink"),
        ("../../../outside", "climbs out of the root"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = cluster(
            dir.path(),
            &good(NODES, NETS, &a),
            &[
                ("profiles/worker.yaml", "overlays: [site]\n"),
                ("overlays/site/etc/keep", "x"),
            ],
        );
        std::os::unix::fs::symlink(target, dir.path().join("overlays/site/etc/link")).unwrap();
        let err = Inventory::load(&path)
            .and_then(|inv| plans(&inv, &[], None).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want) && err.contains("overlays/site/etc/link"),
            "{err}"
        );
    }
}

#[test]
fn the_plan_command_never_prints_secrets() {
    // The portable example (0600 NetworkManager keyfiles), with a password hash.
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string("examples/portable-cluster/cluster.yaml")
        .unwrap()
        .replace(
            "  locked: true\n",
            &format!("  password_hash: '$6$saltsalt${}'\n", "h".repeat(86)),
        );
    assert!(text.contains("password_hash"));
    let path = dir.path().join("cluster.yaml");
    fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(["--json", "plan", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("$6$"), "the password hash leaked");
    assert!(text.contains("\"password\": \"hash set\""));
    assert!(
        !text.contains("[ipv4]"),
        "a 0600 keyfile's content was printed"
    );
    assert!(text.contains("(secret: "), "secrets are announced by size");
}

#[test]
fn every_shipped_file_is_built_in() {
    let mut on_disk: Vec<String> = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.to_str().unwrap().to_string());
            }
        }
    }
    walk(Path::new("overlays"), &mut on_disk);
    on_disk.sort();
    let built_in: Vec<&str> = pibake::inventory::shipped::OVERLAYS
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(
        on_disk, built_in,
        "src/inventory/shipped.rs must list every overlay file"
    );
    let mut profiles: Vec<String> = fs::read_dir("profiles")
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    profiles.sort();
    let built_in: Vec<&str> = pibake::inventory::shipped::profile_names().collect();
    assert_eq!(
        profiles, built_in,
        "src/inventory/shipped.rs must list every profile"
    );
}

#[test]
fn init_writes_a_cluster_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], home: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pibake"))
            .args(args)
            .env("HOME", home)
            .output()
            .unwrap()
    };
    // Without a key of the user's, init writes a placeholder that validate refuses.
    let bare = dir.path().join("bare");
    let home = dir.path().join("home-without-keys");
    fs::create_dir_all(&home).unwrap();
    assert!(
        run(&["init", bare.to_str().unwrap()], &home)
            .status
            .success()
    );
    let refused = run(
        &["validate", bare.join("cluster.yaml").to_str().unwrap()],
        &home,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not an OpenSSH public key"));
    let text = fs::read_to_string(bare.join("cluster.yaml")).unwrap();
    assert!(
        !text.contains("password_hash") && text.contains("locked: true"),
        "{text}"
    );
    // Its base is one pibake can fetch, not a file nobody has yet.
    assert!(
        text.contains("base: { catalog: \"Raspberry Pi OS Lite (64-bit)\" }"),
        "{text}"
    );
    assert!(
        text.contains("Put your own public key in place of the line below")
            && !text.contains("nobody holds"),
        "{text}"
    );

    // With one, the cluster carries it and validates.
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::write(
        home.join(".ssh/id_ed25519.pub"),
        format!("{}\n", crate::common::test_key()),
    )
    .unwrap();
    let target = dir.path().join("lab");
    assert!(
        run(&["init", target.to_str().unwrap()], &home)
            .status
            .success()
    );
    assert!(target.join("profiles/worker.yaml").exists());
    let cluster = target.join("cluster.yaml");
    let text = fs::read_to_string(&cluster).unwrap();
    assert!(text.contains(crate::common::test_key()), "{text}");
    // The comment speaks of the user's key, not of a placeholder.
    assert!(
        text.contains(&format!(
            "# Key-only login with your key {}",
            home.join(".ssh/id_ed25519.pub").display()
        )) && !text.contains("placeholder")
            && !text.contains("nobody holds"),
        "{text}"
    );
    let out = run(&["validate", cluster.to_str().unwrap()], &home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 nodes"));
    let again = run(&["init", target.to_str().unwrap()], &home);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
}

/// Every value that lands in a file or a script is parsed against its grammar; text
/// outside it (a newline, a comma, a `;`, a `../`) is refused where it was written,
/// never pasted into the image. Each of these was accepted, or panicked, before.
#[test]
fn values_outside_their_grammar_are_refused_where_they_were_written() {
    let a = admin();
    let h86 = "a".repeat(86);
    let worker = |profile: &'static str| vec![("profiles/worker.yaml", profile)];
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            good(NODES, "  lan: { subnet: 10.0.0.0/24, first: foo }", &a),
            vec![],
            "cluster.yaml:3:38: `foo` is not an IPv4 address",
        ),
        (
            good(NODES, "  lan: { subnet: 10.0.0.0/24, first: 10.9.0.5 }", &a),
            vec![],
            "cluster.yaml:3:38: 10.9.0.5 is outside the subnet 10.0.0.0/24",
        ),
        (
            good(
                NODES,
                "  lan: { subnet: 10.0.0.0/24 }\n  san: { subnet: 10.0.0.128/25 }",
                &a,
            ),
            vec![],
            "overlaps network `lan`",
        ),
        (
            good(
                NODES,
                NETS,
                &format!("  name: pi\n  password_hash: \"$6$salt${h86}\\nroot::0:0:::::\""),
            ),
            vec![],
            "cluster.yaml:6:18: the password hash is a malformed hash",
        ),
        (
            good(
                NODES,
                NETS,
                &format!("  name: pi\n  password_hash: '$6$rounds=:x$salt${h86}'"),
            ),
            vec![],
            "cluster.yaml:6:18: the password hash is a malformed hash",
        ),
        (
            good(
                NODES,
                NETS,
                &format!(
                    "  name: pi\n  locked: true\n  ssh_keys: [\"{KEY}\\nssh-ed25519 AAAA evil\"]"
                ),
            ),
            vec![],
            "must be one line",
        ),
        (
            good(
                "  - { name: w1, role: worker, mac: { eth0: \"not-a-mac,set:evil\" } }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:11:44: w1: `not-a-mac,set:evil` is not a MAC address",
        ),
        (
            good(
                "  - { name: w1, role: worker, mac: { eth0: \"ff:ff:ff:ff:ff:ff\" } }",
                NETS,
                &a,
            ),
            vec![],
            "multicast or broadcast",
        ),
        (
            good(
                "  - { name: w1, role: worker, mac: { eth0: \"b8:27:eb:00:00:01\" } }\n  - { name: w2, role: worker, mac: { eth0: \"B8:27:EB:00:00:01\" } }",
                NETS,
                &a,
            ),
            vec![],
            "w2: MAC b8:27:eb:00:00:01 is already node w1",
        ),
        (
            good(
                NODES,
                "  lan: { subnet: 10.0.0.0/24, domain: \"bad domain_\" }",
                &a,
            ),
            vec![],
            "domain `bad domain_` has a character outside",
        ),
        (
            good(NODES, NETS, &a),
            worker("packages: [\"vim; touch /PWNED\"]\n"),
            "profiles/worker.yaml:1:12: ",
        ),
        (
            good(NODES, NETS, &a),
            worker("timezone: ../../../etc/shadow\n"),
            "profiles/worker.yaml:1:11: timezone `../../../etc/shadow` is not a zone name",
        ),
        (
            good(NODES, NETS, &a),
            worker("keyboard: \"gb\\\"\\nXKBOPTIONS=evil\"\n"),
            "is not a keyboard layout",
        ),
        (
            good(NODES, NETS, &a),
            worker("firstboot:\n  - echo \"unterminated\n"),
            "profiles/worker.yaml:2:5: this first-boot step is not valid sh",
        ),
        (
            good(
                "  - { name: w1, role: worker, files: [{ path: /root/x, source: /etc/shadow }] }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:11:39: `/etc/shadow` (/etc/shadow) is outside the cluster's directory",
        ),
        (
            good(NODES, NETS, &a),
            worker("debs: [../../../../../../etc/passwd]\n"),
            "profiles/worker.yaml:1:8: debs[0]: `../../../../../../etc/passwd`: the file name must end in `.deb`",
        ),
        (
            good(NODES, NETS, &a),
            worker("overlays: [/etc]\n"),
            "profiles/worker.yaml:1:12: `/etc` is not an overlay name",
        ),
        (
            good(NODES, NETS, &a),
            worker("cmdline: { remove: [root] }\n"),
            "profiles/worker.yaml:1:21: removing `root=` from cmdline.txt makes an image that cannot boot",
        ),
        // Swarm and k3s: parts, labels, stack names, the node that starts the cluster, the
        // user's files.
        (
            good(NODES, NETS, &a),
            worker("extends: worker\nswarm: boss\n"),
            "profiles/worker.yaml:2:8: swarm `boss`: use manager or worker",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: worker\nk3s: master\n"),
            "profiles/worker.yaml:2:6: k3s `master`: use server or agent",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: worker\nvars: { labels: { Zone: a } }\n"),
            "profiles/worker.yaml:2:17: label name `Zone`: use lowercase letters",
        ),
        (
            good(
                "  - { name: w1, role: worker, vars: { labels: { zone: \"a b\" } } }",
                NETS,
                &a,
            ),
            vec![],
            "cluster.yaml:11:47: label `zone`: value `a b` must be letters, digits",
        ),
        (
            good(
                "  - { name: w1, role: worker, vars: { labels: { role: db } } }",
                NETS,
                &a,
            ),
            vec![],
            "label `role` is pibake's",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nswarm: worker\n"),
            "cluster.yaml:11:3: the swarm (a `swarm: manager`) has no node to start it",
        ),
        (
            good(NODES, NETS, &a).replace("roles:", "swarm: { stack: My App }\nroles:"),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nswarm: manager\n"),
            "cluster.yaml:8:17: swarm: stack name `My App`",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: base\nswarm: manager\n"),
            "`w1` starts the swarm (a `swarm: manager`) but has no static address",
        ),
        (
            good(NODES, NETS, &a),
            worker(
                "extends: base\ninterfaces: { eth0: { network: lan } }\nswarm: manager\nk3s: agent\n",
            ),
            "profile `worker` says both `swarm:` and `k3s:`",
        ),
        (
            good(NODES, NETS, &a).replace("roles:", &format!("{K3S}roles:")),
            vec![],
            "cluster.yaml:9:9: `k3s:` is set, but no role's profile says `k3s:`",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nk3s: agent\n"),
            "role `worker` runs k3s, and cluster.yaml has no `k3s:` naming its files",
        ),
        (
            good(NODES, NETS, &a).replace("roles:", &format!("{K3S}roles:")),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nk3s: server\n"),
            "k3s has more than one server (w1, w2)",
        ),
        (
            good(NODES, NETS, &a).replace(
                "roles:",
                &format!("{K3S}roles:").replace("sha256: \"aa", "sha256: \"zz"),
            ),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nk3s: agent\n"),
            "is not a sha256 (64 hex digits)",
        ),
        (
            good(NODES, NETS, &a).replace(
                "roles:",
                &format!("{K3S}roles:").replace("images.tar.zst", "images.zip"),
            ),
            worker("extends: base\ninterfaces: { eth0: { network: lan } }\nk3s: agent\n"),
            "`k3s/images.zip` is not an archive k3s imports",
        ),
        // Typed template variables: checked where the value was written.
        (
            good(NODES, NETS, &a),
            worker("extends: worker\nvar_types: { share: folder }\n"),
            "profiles/worker.yaml:2:21: var_types: unknown var type `folder`; one of: word, line",
        ),
        (
            good(NODES, NETS, &a).replace("roles:", "vars: { share: \"/srv *(rw)\" }\nroles:"),
            vec![(
                "profiles/worker.yaml",
                "extends: base\nvar_types: { share: path }\n",
            )],
            "cluster.yaml:8:16: `/srv *(rw)` is not a path: an absolute path",
        ),
        (
            good(
                "  - { name: w1, role: worker, vars: { share: /srv/../etc } }",
                NETS,
                &a,
            ),
            vec![(
                "profiles/worker.yaml",
                "extends: base\nvar_types: { share: path }\n",
            )],
            "cluster.yaml:11:46: `/srv/../etc` is not a path",
        ),
        (
            good(NODES, NETS, &a),
            worker("extends: base\nvar_types: { every: duration }\nvars: { every: soon }\n"),
            "profiles/worker.yaml:3:16: `soon` is not a duration: a systemd time span like 5min or 1h 30min (profile `worker` declares `every` a duration)",
        ),
    ];
    let failed: Vec<String> = cases
        .iter()
        .map(|(text, extra, expect)| (error_of(text, extra), expect))
        .filter(|(err, expect)| !err.contains(**expect))
        .map(|(err, expect)| format!("expected `{expect}` in: {err}"))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The first-boot runner, run by the host's `sh` against a scratch tree: a snippet's
/// `exit 0` or stray heredoc ends only its own step; a failing step stops the run, is
/// logged, and is retried next time while the steps before it are not run again; the
/// done-marker appears only when every step has succeeded.
#[test]
fn first_boot_steps_run_once_each_and_a_failed_one_is_retried() {
    let profile = "firstboot:\n  - echo one >> \"$PIBAKE_ROOT/ran\"\n  - |\n    echo two >> \"$PIBAKE_ROOT/ran\"\n    exit 0\n  - |\n    cat <<EOF >/dev/null\n    no end marker\n  - test -e \"$PIBAKE_ROOT/ready\"\n  - echo four >> \"$PIBAKE_ROOT/ran\"\n";
    let dir = tempfile::tempdir().unwrap();
    let text = good("  - { name: w1, role: worker }", NETS, &admin());
    let path = cluster(dir.path(), &text, &[("profiles/worker.yaml", profile)]);
    let inv = Inventory::load(&path).unwrap();
    let plan = &plans(&inv, &[], Some(NetworkStack::NetworkManager)).unwrap()[0];
    let root = dir.path().join("root");
    crate::common::write_firstboot_files(plan, &root);
    let run = || {
        std::process::Command::new("sh")
            .arg(root.join("usr/local/lib/pibake/firstboot"))
            .env("PIBAKE_ROOT", &root)
            .output()
            .unwrap()
    };
    let done = root.join("var/lib/pibake/firstboot.done");
    let log = || fs::read_to_string(root.join("var/lib/pibake/firstboot.log")).unwrap();

    let first = run();
    assert!(
        !first.status.success(),
        "the failing step must fail the run"
    );
    assert_eq!(fs::read_to_string(root.join("ran")).unwrap(), "one\ntwo\n");
    assert!(log().contains("snippet-4 failed"), "{}", log());
    assert!(!done.exists(), "done before every step succeeded");

    fs::write(root.join("ready"), "").unwrap();
    let second = run();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    // Steps that succeeded before did not run again; the rest ran once.
    assert_eq!(
        fs::read_to_string(root.join("ran")).unwrap(),
        "one\ntwo\nfour\n"
    );
    assert!(done.exists());
    assert!(
        log().contains("snippet-4 ok") && log().contains("snippet-5 ok"),
        "{}",
        log()
    );
}

/// All-numeric hostnames are valid but warned about; `allow_unbootable` lets a profile
/// that means it remove a boot parameter.
#[test]
fn numeric_hostnames_warn_and_unbootable_needs_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = good("  - { name: \"[1-2]\", role: worker }", NETS, &admin());
    let profile = "cmdline: { remove: [init], allow_unbootable: true }\n";
    let path = cluster(dir.path(), &text, &[("profiles/worker.yaml", profile)]);
    let inv = Inventory::load(&path).unwrap();
    assert!(
        inv.warnings
            .iter()
            .any(|w| w.contains("node `1`: an all-numeric hostname")),
        "{:?}",
        inv.warnings
    );
}

/// A `source:` only its owner may read is a secret: 0600 in the image and never printed;
/// `source_dirs` allows a directory beside the cluster's own.
#[test]
fn private_sources_stay_private_and_source_dirs_allow_a_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    fs::write(keys.join("token"), "s3cret\n").unwrap();
    fs::set_permissions(keys.join("token"), fs::Permissions::from_mode(0o600)).unwrap();
    let cdir = dir.path().join("cluster");
    fs::create_dir_all(&cdir).unwrap();
    let nodes =
        "  - { name: w1, role: worker, files: [{ path: /etc/token, source: ../keys/token }] }";
    let text = good(nodes, NETS, &admin());
    let path = cluster(&cdir, &text, &[]);
    let err = Inventory::load(&path)
        .and_then(|inv| plans(&inv, &[], Some(NetworkStack::NetworkManager)).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is outside the cluster's directory"), "{err}");
    fs::write(&path, format!("{text}source_dirs: [../keys]\n")).unwrap();
    let inv = Inventory::load(&path).unwrap();
    let p = &plans(&inv, &[], Some(NetworkStack::NetworkManager)).unwrap()[0];
    let f = p.files.iter().find(|f| f.path == "/etc/token").unwrap();
    assert_eq!((f.mode, f.secret), (0o600, true));
    let shown = pibake::plan::human(p);
    assert!(!shown.contains("s3cret"), "{shown}");
}

/// The swarm's settings file is made from parsed values: the first non-spare manager
/// leads, every member's labels are its role and its `labels` var, a spare is labelled
/// but not waited for, and the plan's summary line names the join without a token.
#[test]
fn swarm_members_get_their_settings_and_labels_from_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string("examples/container-cluster/cluster.yaml")
        .unwrap()
        .replace(
            "  - { name: \"worker[1-3]\", role: worker, vars: { labels: { zone: rack } } }",
            "  - { name: \"worker[1-2]\", role: worker, vars: { labels: { zone: rack } } }\n  - { name: standby, role: worker, spare: true }",
        );
    assert!(
        text.contains("standby"),
        "the example's nodes changed shape"
    );
    let mut extra = Vec::new();
    for f in [
        "profiles/app-manager.yaml",
        "profiles/app-node.yaml",
        "overlays/app/etc/pibake/swarm/stack.yml.hbs",
    ] {
        extra.push((
            f,
            fs::read_to_string(Path::new("examples/container-cluster").join(f)).unwrap(),
        ));
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let inv = Inventory::load(&cluster(dir.path(), &text, &extra)).unwrap();
    let ps = plans(&inv, &[], Some(NetworkStack::NetworkManager)).unwrap();
    let env = |node: &str| {
        file(
            ps.iter().find(|p| p.node == node).unwrap(),
            "/etc/pibake/swarm.env",
        )
        .to_string()
    };
    let manager = env("manager");
    for line in [
        "SWARM_MANAGER=manager\n",
        "SWARM_MANAGER_ADDRESS=10.20.0.10\n",
        "SWARM_ADDRESS=10.20.0.10\n",
        "SWARM_JOIN_AS=manager\n",
        "SWARM_STACK=app\n",
        "SWARM_NODES=manager worker1 worker2\n",
        "SWARM_LABELS=manager role=manager zone=desk\n",
        "SWARM_LABELS=worker2 role=worker zone=rack\n",
        "SWARM_LABELS=standby role=worker\n",
    ] {
        assert!(manager.contains(line), "{line:?} not in:\n{manager}");
    }
    let worker = env("worker1");
    assert!(
        worker.contains("SWARM_JOIN_AS=worker\n") && worker.contains("SWARM_ADDRESS=10.20.0.11\n"),
        "{worker}"
    );
    let stack = file(&ps[0], "/etc/pibake/swarm/stack.yml");
    assert!(stack.contains("as the stack `app`"), "{stack}");
    let text = pibake::plan::human(&ps[1]);
    assert!(
        text.contains("  swarm   worker that joins manager (10.20.0.10:2377) with a worker token it fetches from manager over the cluster's SSH at first boot; labels role=worker zone=rack"),
        "{text}"
    );
    assert!(
        pibake::plan::human(&ps[0]).contains("deploys /etc/pibake/swarm/stack.yml as stack `app`")
    );
}

/// Values checked against the base's writers where they were written, not at build
/// time: every config.txt and cmdline.txt value goes through the writer that applies it
/// (each field of the same kind too: a `set:` value inside a section, not only `lines:`),
/// keys sshd would never accept, a path ssh_config cannot hold, and a cluster of no
/// nodes.
#[test]
fn values_only_a_writer_would_refuse_are_refused_at_load() {
    const DSA: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBAPFmpTjSiFV/TATBhWE38rX7gEAB72J0fKugJy9qzTM1AwS8bALfvLdyKw0kxlvRCgM1fX+TKJpuOPvRbzPsaL2mB+XWjr2VudYTNmeciXjJQk1Ogd5WP0zxztwIK1/2DF23Hc0CBDX/F7PX1F3Oxnl2wkUz4zsaf3eZQ+b15XPdAAAAFQChs7QVG9hycnKWHCw4HHUQky02jwAAAIEArvkpaoHLu0HKc2wAdl5dYBECyg/iySvBgGvMXeBdcVkiSCazhvUo5KwAjy7u2LCaf+nc24n8hD4X0tPxJtVFrgHhxPAfWLcc+QMgGEp+vjVQuPdHolTjB+ALSxD2NZFtkdm6cpgAvNu2tVur2uAiLGx6HRnEnST2rDYi3y4su8kAAACBAOWhQKRvAfeK2tYqpMOsW9FtmutH1z+cXAjYFSRy8gOjug2zlpPqbmIQsD6K7Qfk3ezw2z1pOyWhYvhNQse9hJCcz00tbAxl2RX1l4zqmOdwcS8SqQsGZRqM1bxmMexHRHwZnJBhFrxpmytQtPEDuhY26u2QRRSvt66hXIsiIt5G old@box";
    const RSA768: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAYQCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMDk= small";
    let a = admin();
    let keyed = |key: &str| format!("  name: pi\n  locked: true\n  ssh_keys: [\"{key}\"]");
    let worker = |profile: &'static str| vec![("profiles/worker.yaml", profile)];
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            good(NODES, NETS, &keyed(DSA)),
            vec![],
            "a DSA (ssh-dss) key: OpenSSH no longer accepts them",
        ),
        (
            good(NODES, NETS, &keyed(RSA768)),
            vec![],
            "an RSA key of 768 bits",
        ),
        (
            good(
                NODES,
                NETS,
                &format!("{a}\n  identity_file: \"keys/a\\\"b\""),
            ),
            vec![],
            "cluster.yaml:8:18: admin.identity_file: `keys/a\"b` cannot be written into ssh_config",
        ),
        (
            good(NODES, NETS, &a).replace(&format!("nodes:\n{NODES}\n"), "nodes: []\n"),
            vec![],
            "cluster.yaml:10:8: the cluster has no nodes",
        ),
        (
            good(NODES, NETS, &a),
            worker("config:\n  lines: [\"a=1\\nb=2\"]\n"),
            "profiles/worker.yaml:2:11: config.txt: line 'a=1\\nb=2' contains a line break",
        ),
        (
            good(NODES, NETS, &a),
            worker("config:\n  sections:\n    pi4:\n      set: { gpu_mem: \"16\\nx=1\" }\n"),
            "profiles/worker.yaml:4:23: config.txt: value '16\\nx=1' of 'gpu_mem' contains a line break",
        ),
        (
            good(NODES, NETS, &a),
            worker("config:\n  sections:\n    pi4:\n      dtparams: [\"audio=on off\"]\n"),
            "profiles/worker.yaml:4:18: ",
        ),
        (
            good(NODES, NETS, &a),
            worker("config:\n  sections:\n    \"pi4]\": { lines: [x=1] }\n"),
            "profiles/worker.yaml:3:13: config.txt: section name 'pi4]' contains",
        ),
        (
            good(NODES, NETS, &a),
            worker("cmdline:\n  add: [\"a=\\\"b\"]\n"),
            "profiles/worker.yaml:2:9: cmdline.txt: value '\"b' contains a double quote",
        ),
    ];
    for (text, extra, want) in cases {
        let err = error_of(&text, &extra);
        assert!(
            err.contains(want),
            "want `{want}`, got:\n{err}\nfor:\n{text}\n{extra:?}"
        );
    }
}
