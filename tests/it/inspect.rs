//! `inspect` tells each release apart from what is in the image, and `demo` makes an
//! image both checkers accept.

use std::process::Command;

use crate::common::{Fixture, Release};
use pibake::inspect::inspect;

#[test]
fn inspect_reads_each_release() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        let r = inspect(&f.image).unwrap();
        let name = format!("{release:?}");
        assert_eq!(r.os.codename.as_deref(), Some(release.codename()), "{name}");
        assert_eq!(r.os.arch.as_deref(), Some(release.arch()), "{name}");
        assert_eq!(r.disk_id, format!("{:08x}", f.spec.disk_id));
        assert_eq!(r.partitions.len(), 2);
        assert_eq!(r.partitions[0].start, f.boot_offset);
        assert_eq!(r.hostname.as_deref(), Some("raspberrypi"));
        assert_eq!(r.users, vec!["pi".to_string()]);
        assert_eq!(
            r.boot.mount.as_deref(),
            Some(release.boot_mount()),
            "{name}"
        );
        assert!(
            r.os.issue
                .as_deref()
                .unwrap()
                .starts_with("Raspberry Pi reference")
        );
        assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
        assert!(r.boot.cmdline.contains("rootwait"));
        assert!(
            r.boot
                .config
                .contains(&"[all] dtoverlay=vc4-kms-v3d".to_string()),
            "{name}: {:?}",
            r.boot.config
        );
        assert!(
            r.boot.config.contains(&"[cm4] otg_mode=1".to_string()),
            "{name}"
        );
        assert_eq!(r.first_boot.ssh_host_keys, 0);
        assert!(!r.first_boot.ssh_enabled);
        match release {
            Release::Bullseye => {
                assert_eq!(
                    r.network.stack, "dhcpcd",
                    "NetworkManager is installed but not enabled"
                );
                assert!(r.network.also.is_empty());
                assert_eq!(r.first_boot.machine_id, "empty");
                assert_eq!(
                    r.first_boot.trigger.as_deref(),
                    Some("init=/usr/lib/raspberrypi-sys-mods/firstboot")
                );
            }
            Release::Bookworm => {
                assert_eq!(r.network.stack, "NetworkManager");
                assert_eq!(r.first_boot.machine_id, "empty");
            }
            Release::Trixie => {
                assert_eq!(r.network.stack, "NetworkManager");
                assert_eq!(r.network.also, vec!["cloud-init", "netplan"]);
                assert_eq!(r.first_boot.machine_id, "uninitialized");
                assert_eq!(r.first_boot.trigger.as_deref(), Some("resize"));
                assert!(
                    r.boot
                        .config
                        .contains(&"[pi5] dtoverlay=nospi10".to_string())
                );
            }
        }
    }
}

#[test]
fn inspect_warns_when_partuuids_do_not_match_the_disk() {
    let f = Fixture::new(Release::Bookworm);
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&f.image)
            .unwrap();
        file.write_all_at(&0x11223344u32.to_le_bytes(), 440)
            .unwrap();
    }
    let r = inspect(&f.image).unwrap();
    assert_eq!(r.disk_id, "11223344");
    assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("cmdline.txt root=PARTUUID=5e3da0b5-02"));
}

/// An image whose cmdline.txt lost `root=` cannot boot: inspect says so.
#[test]
fn inspect_warns_when_the_command_line_has_no_root() {
    let f = Fixture::new(Release::Bookworm);
    let local = f.dir.path().join("cmdline.txt");
    std::fs::write(&local, "console=serial0,115200 rootfstype=ext4 rootwait\n").unwrap();
    let (img, l) = (f.image.to_str().unwrap(), local.to_str().unwrap());
    crate::common::pibake_ok(&["fs", "put", img, l, "boot:/cmdline.txt"]);
    let r = inspect(&f.image).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("cmdline.txt has no root=")),
        "{:?}",
        r.warnings
    );
}

fn pibake(args: &[&str], cache: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(args)
        .env("PIBAKE_CACHE_DIR", cache)
        .output()
        .unwrap()
}

#[test]
fn the_command_reads_compressed_images_and_speaks_json() {
    let f = Fixture::new(Release::Trixie);
    let zst = f.dir.path().join("trixie.img.zst");
    let st = Command::new("zstd")
        .args([
            "-q",
            "-T0",
            "-o",
            crate::common::path(&zst),
            crate::common::path(&f.image),
        ])
        .status()
        .expect("zstd");
    assert!(st.success());
    let cache = f.dir.path().join("cache");
    let out = pibake(&["inspect", "--json", crate::common::path(&zst)], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["os"]["codename"], "trixie");
    assert_eq!(v["network"]["stack"], "NetworkManager");
    assert_eq!(v["partitions"][1]["label"], "rootfs");
    assert_eq!(v["image"], crate::common::path(&zst));

    let out = pibake(&["inspect", crate::common::path(&f.image)], &cache);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("trixie") && text.contains("arm64"), "{text}");
    assert!(
        text.contains("NetworkManager (also: cloud-init, netplan)"),
        "{text}"
    );
}

#[test]
fn inspect_of_a_broken_image_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("not-an-image.img");
    std::fs::write(&p, vec![0u8; 4096]).unwrap();
    let out = pibake(
        &["inspect", crate::common::path(&p)],
        &dir.path().join("cache"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-an-image.img") && err.contains("no partition table"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn demo_makes_an_image_that_both_checkers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let out = pibake(
        &["demo", crate::common::path(dir.path())],
        &dir.path().join("cache"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bookworm") && text.contains("NetworkManager"),
        "{text}"
    );
    let image = dir.path().join("demo-base.img");
    let r = inspect(&image).unwrap();
    assert_eq!(r.disk_id, format!("{:08x}", pibake::demo::DISK_ID));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (boot, root) = (&r.partitions[0], &r.partitions[1]);
    assert_eq!(boot.start, 8 << 20, "8 MiB alignment like 2025+ images");
    crate::common::fsck_fat_clean(&image, boot.start, boot.size);
    crate::common::e2fsck_clean(&image, root.start);
    let f = crate::common::tool("mcopy")
        .args([
            "-n",
            "-i",
            &format!("{}@@{}", image.display(), boot.start),
            "::/cmdline.txt",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&f.stdout)
            .contains(&format!("root=PARTUUID={:08x}-02", pibake::demo::DISK_ID))
    );
}

/// The demo's closing "Next:" line is what a new user types next: each command in it
/// runs as printed (run from the directory the demo ran in).
#[test]
fn the_demos_next_commands_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = pibake(
        &["demo", crate::common::path(&dir.path().join("d"))],
        &cache,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let next = text
        .lines()
        .find(|l| l.starts_with("Next:"))
        .expect("a Next: line");
    let commands: Vec<&str> = next.split('`').skip(1).step_by(2).collect();
    assert_eq!(commands.len(), 2, "{next}");
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(args[0], "pibake", "{command}");
        let out = pibake(&args[1..], &cache);
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "`{command}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn inspect_reads_roots_with_64bit_or_without_checksums() {
    // Build hosts differ: some leave 64bit on; images before 2022 had no metadata_csum.
    for features in [
        "^huge_file,64bit,^orphan_file",
        "^huge_file,^64bit,^metadata_csum",
    ] {
        let mut spec = crate::common::Spec::new(Release::Bookworm);
        spec.ext4_features = features.to_string();
        let f = Fixture::build(spec);
        let r = inspect(&f.image).unwrap();
        assert_eq!(r.os.codename.as_deref(), Some("bookworm"), "{features}");
        assert_eq!(r.network.stack, "NetworkManager", "{features}");
    }
}

/// The demo's ssh_config, read back by ssh itself (`ssh -G` prints what it resolved):
/// each node's address and login, the build's known_hosts and the key pair the demo
/// made, all under a directory whose name holds a space and a `%`, which ssh_config
/// must quote and escape. The demo's cluster file speaks of that key, not of a
/// placeholder.
#[test]
fn the_demos_ssh_config_is_what_ssh_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("a demo %h");
    let out = pibake(
        &["demo", crate::common::path(&demo)],
        &dir.path().join("cache"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = std::fs::read_to_string(demo.join("web-cluster/cluster.yaml")).unwrap();
    assert!(
        cluster.contains("identity_file: ../admin_key") && !cluster.contains("nobody holds"),
        "{cluster}"
    );
    let images = demo.join("images");
    let resolved = Command::new("ssh")
        .args([
            "-F",
            images.join("ssh_config").to_str().unwrap(),
            "-G",
            "web01",
        ])
        .output()
        .unwrap();
    assert!(
        resolved.status.success(),
        "{}",
        String::from_utf8_lossy(&resolved.stderr)
    );
    let text = String::from_utf8_lossy(&resolved.stdout);
    let key = demo.join("web-cluster/../admin_key");
    for line in [
        "hostname 192.168.50.11".to_string(),
        "user pi".to_string(),
        // `-G` prints IdentityFile before ssh expands its `%` tokens (it does when it
        // loads the key), so the escaped `%%` shows; the known_hosts path is expanded.
        format!(
            "identityfile {}",
            key.display().to_string().replace('%', "%%")
        ),
        format!(
            "userknownhostsfile {}",
            images.join("known_hosts").display()
        ),
        "stricthostkeychecking true".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}
