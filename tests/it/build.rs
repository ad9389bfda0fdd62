//! `pibake build` on fixtures of each release: every node of the web cluster builds, both
//! checkers accept every image, and each baked item reads back through debugfs and mtools.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    Fixture, Release, bmaptool_copy, build_options as options, debugfs_text as debugfs,
    e2fsck_clean, example_on, fsck_fat_clean, pibake, pibake_ok, tool,
};
use pibake::bake::{OutputFormat, build};
use pibake::inventory::Inventory;
use sha2::{Digest, Sha256};

/// A sha512-crypt hash of a password made for this run, with a random salt: never a
/// credential anyone knows (`build` refuses those).
fn hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let params = sha_crypt::Sha512Params::new(5000).unwrap();
        sha_crypt::sha512_simple(&crate::common::test_key()[12..40], &params).unwrap()
    })
}

/// The web cluster, with an admin named `admin` (so the image's `pi` is renamed).
fn cluster(dir: &Path, base: &Path) -> PathBuf {
    let (hash, key) = (hash(), crate::common::test_key());
    let text = format!(
        "cluster: webfarm\nbase: {}\nnetworks:\n  lan: {{ subnet: 192.168.50.0/24, gateway: 192.168.50.1, dns: [192.168.50.1], domain: web.lan, first: 192.168.50.10 }}\nadmin:\n  name: admin\n  password_hash: '{hash}'\n  ssh_keys: [\"{key}\"]\nroles:\n  head: {{ profile: web-head }}\n  worker: {{ profile: web-worker }}\nnodes:\n  - {{ name: lb, role: head }}\n  - {{ name: \"web[01-02]\", role: worker }}\nvars: {{ site_title: Test, admin_subnet: 192.168.1.0/24, site_pull_every: 5min }}\n",
        base.display()
    );
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

/// A cluster loaded as these tests build it: the fixtures have no apt sources, so the
/// profiles' packages are left to first boot (the `packages` tests bake them).
fn load(path: &Path) -> Inventory {
    let mut inv = Inventory::load(path).unwrap();
    inv.packages_online_instead();
    inv
}

fn mtype(image: &Path, boot_offset: u64, file: &str) -> String {
    let out = tool("mtype")
        .args([
            "-i",
            &format!("{}@@{boot_offset}", image.display()),
            &format!("::/{file}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(p: &Path) -> Vec<u8> {
    Sha256::digest(fs::read(p).unwrap()).to_vec()
}

#[test]
fn every_node_builds_on_every_release_and_reads_back() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        let work = tempfile::tempdir().unwrap();
        let base_sum = sha256(&f.image);
        let inv = load(&cluster(work.path(), &f.image));
        let opts = options(work.path());
        let built = build(&inv, &[], &opts).unwrap();
        assert_eq!(built.len(), 3);
        let name = format!("{release:?}");
        for b in &built {
            e2fsck_clean(&b.image, f.root_offset);
            fsck_fat_clean(&b.image, f.boot_offset, f.boot_size);
            let d = |r: &str| debugfs(&b.image, f.root_offset, r);

            assert_eq!(d("cat /etc/hostname"), format!("{}\n", b.node));
            let hosts = d("cat /etc/hosts");
            assert!(
                // Each node is named by its own address; no loopback line a DNS server
                // reading the file would hand out.
                !hosts.contains("127.0.1.1")
                    && hosts.contains(&format!("\t{0}.web.lan {0}\n", b.node))
                    && hosts.contains("192.168.50.12\tweb02.web.lan web02"),
                "{name}: {hosts}"
            );

            // The image's user `pi` became `admin`, completely.
            let passwd = d("cat /etc/passwd");
            assert!(
                passwd.contains("admin:x:1000:1000:,,,:/home/admin:/bin/bash")
                    && !passwd.contains("pi:x"),
                "{name}: {passwd}"
            );
            assert!(d("cat /etc/shadow").contains(&format!("admin:{}:", hash())));
            let group = d("cat /etc/group");
            assert!(
                group.contains("admin:x:1000:")
                    && group.contains("sudo:x:27:admin")
                    && group.contains("adm:x:4:admin"),
                "{name}: {group}"
            );
            assert!(d("cat /etc/gshadow").contains("sudo:*::admin"));
            assert_eq!(
                d("cat /etc/sudoers.d/010_pi-nopasswd"),
                "admin ALL=(ALL) NOPASSWD: ALL\n"
            );
            assert!(
                d("stat /home/pi").is_empty(),
                "{name}: /home/pi still there"
            );
            assert!(
                d("cat /home/admin/.bashrc").contains("bashrc"),
                "{name}: the home directory moved with its contents"
            );
            let ssh = d("stat /home/admin/.ssh");
            assert!(
                ssh.contains("Mode:  0700") && ssh.contains("User:  1000"),
                "{name}: {ssh}"
            );
            let keys = d("stat /home/admin/.ssh/authorized_keys");
            assert!(
                keys.contains("Mode:  0600") && keys.contains("User:  1000"),
                "{name}: {keys}"
            );
            assert_eq!(
                d("cat /home/admin/.ssh/authorized_keys"),
                format!("{}\n", crate::common::test_key())
            );

            // sshd on, with this node's persistent host keys.
            let wants = d("ls /etc/systemd/system/multi-user.target.wants");
            assert!(
                wants.contains("ssh.service") && wants.contains("pibake-firstboot.service"),
                "{name}: {wants}"
            );
            assert!(
                d("stat /etc/systemd/system/multi-user.target.wants/ssh.service")
                    .contains("/systemd/system/ssh.service")
            );
            let key = d("stat /etc/ssh/pibake/ssh_host_ed25519_key");
            assert!(
                key.contains("Mode:  0600") && key.contains("User:     0"),
                "{name}: {key}"
            );
            assert!(
                d("cat /etc/ssh/sshd_config.d/10-pibake-hostkeys.conf")
                    .contains("HostKey /etc/ssh/pibake/ssh_host_ed25519_key")
            );
            let state_pub = fs::read_to_string(
                work.path()
                    .join("state")
                    .join(&b.node)
                    .join("ssh_host_ed25519_key.pub"),
            )
            .unwrap();
            assert_eq!(d("cat /etc/ssh/pibake/ssh_host_ed25519_key.pub"), state_pub);
            assert!(d("cat /etc/ssh/ssh_known_hosts").contains(state_pub.trim()));
            // Private keys in the state never end up in the cluster's git repository.
            let ignore = fs::read_to_string(work.path().join("state/.gitignore")).unwrap();
            assert!(ignore.lines().any(|l| l == "*"), "{ignore}");

            // Timezone as raspi-config leaves it (the shipped base profile sets Etc/UTC).
            assert_eq!(d("cat /etc/timezone"), "Etc/UTC\n");
            assert!(
                d("stat /etc/localtime")
                    .contains("Fast link dest: \"/usr/share/zoneinfo/Etc/UTC\"")
            );

            // The network, for the stack this release uses.
            if release == Release::Bullseye {
                let conf = d("cat /etc/dhcpcd.conf");
                assert!(
                    conf.starts_with("hostname\n")
                        && conf.contains("interface eth0\nstatic ip_address=192.168.50."),
                    "{name}: {conf}"
                );
            } else {
                let nm = d("stat /etc/NetworkManager/system-connections/pibake-eth0.nmconnection");
                assert!(
                    nm.contains("Mode:  0600") && nm.contains("User:     0"),
                    "{name}: {nm}"
                );
            }
            if release == Release::Trixie {
                assert!(
                    d("cat /etc/cloud/cloud.cfg.d/99-pibake.cfg")
                        .contains("network: {config: disabled}")
                );
            }

            // Boot configuration and a disk identifier of its own, everywhere it is named.
            let id = &b.disk_id.to_string();
            let cmdline = mtype(&b.image, f.boot_offset, "cmdline.txt");
            assert!(
                cmdline.contains(&format!("root=PARTUUID={id}-02")),
                "{name}: {cmdline}"
            );
            assert!(d("cat /etc/fstab").contains(&format!("PARTUUID={id}-01")));
            let mbr = fs::read(&b.image).unwrap();
            assert_eq!(
                format!(
                    "{:08x}",
                    u32::from_le_bytes(mbr[440..444].try_into().unwrap())
                ),
                *id
            );
            let config = mtype(&b.image, f.boot_offset, "config.txt");
            assert_eq!(
                config.contains("gpu_mem=16"),
                b.node != "lb",
                "{name} {}: {config}",
                b.node
            );
        }
        let lb = &built[0].image;
        let conf = debugfs(
            lb,
            f.root_offset,
            "cat /etc/apache2/sites-available/pibake-balancer.conf",
        );
        assert!(
            conf.contains("BalancerMember \"http://192.168.50.12:80\""),
            "{conf}"
        );
        assert!(
            debugfs(
                lb,
                f.root_offset,
                "stat /etc/apache2/mods-enabled/proxy_balancer.load"
            )
            .contains("../mods-available/proxy_balancer.load")
        );
        assert!(
            work.path().join("out/known_hosts").exists()
                && work.path().join("out/ssh_config").exists()
        );

        // The same node again, state kept: the same bytes. The base never changes.
        let first = sha256(&built[1].image);
        let again = build(&inv, &["web01".to_string()], &opts).unwrap();
        assert_eq!(sha256(&again[0].image), first, "{name}: a rebuild differs");
        assert_eq!(sha256(&f.image), base_sum, "{name}: the base changed");
    }
}

#[test]
fn a_base_that_is_not_raspberry_pi_os_is_refused_before_any_output() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    // A release pibake does not know: os-release says buster.
    let whole = pibake_image::region::Region::whole(&f.image, true).unwrap();
    let mut fs =
        pibake_ext4::Ext4::open_rw(whole.sub(f.root_offset, f.root_size).unwrap()).unwrap();
    fs.write_file(
        "/usr/lib/os-release",
        b"VERSION_CODENAME=buster\n",
        &pibake_ext4::Meta::new(0o644, 0, 0),
    )
    .unwrap();
    fs.commit().unwrap();
    drop(fs);
    let inv = load(&cluster(work.path(), &f.image));
    let err = build(&inv, &[], &options(work.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("release `buster` is not one pibake knows"),
        "{err}"
    );
    let out = work.path().join("out");
    assert!(
        !out.exists() || fs::read_dir(&out).unwrap().next().is_none(),
        "outputs appeared"
    );

    // A file that is no disk image at all.
    let junk = work.path().join("junk.img");
    fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let inv = load(&cluster(work.path(), &junk));
    let err = build(&inv, &[], &options(work.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.img"), "{err}");
}

#[test]
fn a_plan_that_does_not_fit_leaves_no_image() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.bin");
    fs::write(&big, vec![7u8; 200 << 20]).unwrap();
    let mut text = fs::read_to_string(cluster(work.path(), &f.image)).unwrap();
    text = text.replace(
        "  - { name: lb, role: head }",
        &format!(
            "  - {{ name: lb, role: head, files: [{{ path: /srv/big.bin, source: {} }}] }}",
            big.display()
        ),
    );
    fs::write(work.path().join("cluster.yaml"), text).unwrap();
    let inv = load(&work.path().join("cluster.yaml"));
    let err = build(&inv, &["lb".to_string()], &options(work.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the filesystem is full"), "{err}");
    let names: Vec<_> = fs::read_dir(work.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".pibake.lock")
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
}

/// Every node of every shipped example, on a fixture of each release.
#[test]
fn every_node_of_every_example_builds_on_every_release() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        for example in fs::read_dir("examples").unwrap().map(|e| e.unwrap().path()) {
            let work = tempfile::tempdir().unwrap();
            let inv = load(&example_on(&example, &f.image, work.path()));
            let built = build(&inv, &[], &options(work.path()))
                .unwrap_or_else(|e| panic!("{release:?} {}: {e}", example.display()));
            assert_eq!(built.len(), inv.nodes.len());
            if example.ends_with("portable-cluster") {
                // node_ssh: every node holds the cluster key pair and trusts its public half.
                let public =
                    fs::read_to_string(work.path().join("state/_cluster/id_ed25519.pub")).unwrap();
                for b in &built {
                    let key = debugfs(&b.image, f.root_offset, "stat /home/pi/.ssh/id_ed25519");
                    assert!(
                        key.contains("Mode:  0600") && key.contains("User:  1000"),
                        "{key}"
                    );
                    assert!(
                        debugfs(&b.image, f.root_offset, "cat /home/pi/.ssh/authorized_keys")
                            .contains(public.trim())
                    );
                }
            }
            // Both checkers on the first and the last node of each example.
            for b in [&built[0], &built[built.len() - 1]] {
                e2fsck_clean(&b.image, f.root_offset);
                fsck_fat_clean(&b.image, f.boot_offset, f.boot_size);
            }
        }
    }
}

#[test]
fn the_number_of_jobs_does_not_change_a_byte() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let inv = load(&cluster(work.path(), &f.image));
    let mut outs = Vec::new();
    for jobs in [1, 3] {
        let mut opts = options(work.path());
        opts.out = work.path().join(format!("out-{jobs}"));
        opts.jobs = jobs;
        let built = build(&inv, &[], &opts).unwrap();
        outs.push(built.iter().map(|b| sha256(&b.image)).collect::<Vec<_>>());
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn bmaps_and_the_manifest_check_out_with_independent_tools() {
    let f = Fixture::new(Release::Trixie);
    let work = tempfile::tempdir().unwrap();
    let inv = load(&cluster(work.path(), &f.image));
    let mut opts = options(work.path());
    opts.bmap = true;
    opts.sha256 = true;
    let built = build(&inv, &[], &opts).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(opts.out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["base"]["sha256"],
        sha256(&f.image)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    for (b, entry) in built.iter().zip(manifest["nodes"].as_array().unwrap()) {
        assert_eq!(entry["node"], b.node.as_str());
        let digest: String = sha256(&b.image)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(
            entry["files"][0]["file"],
            format!("{}.img", b.node).as_str()
        );
        assert_eq!(entry["files"][0]["sha256"], digest.as_str());
        assert_eq!(
            entry["files"][1]["file"],
            format!("{}.img.bmap", b.node).as_str()
        );
        assert_eq!(
            entry["image"]["size"],
            fs::metadata(&b.image).unwrap().len()
        );
        // The image digest, as the README says coreutils reproduce it.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("split -b 4194304 --filter=sha256sum \"$1\" | cut -c1-64 | sha256sum")
            .arg("sh")
            .arg(&b.image)
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout);
        assert_eq!(entry["image"]["sha256_4m"], &theirs[..64]);
        assert_eq!(entry["disk_id"], b.disk_id.to_string().as_str());
        // ssh-keygen agrees on the host key fingerprint.
        let pubkey = work
            .path()
            .join("state")
            .join(&b.node)
            .join("ssh_host_ed25519_key.pub");
        let out = tool("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f", pubkey.to_str().unwrap()])
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        assert_eq!(entry["host_keys"][0]["fingerprint"], theirs.as_str());

        // bmaptool copies with the bmap, checking every range's checksum.
        let bmap = b.image.with_extension("img.bmap");
        let copy = work.path().join(format!("{}.bmaptool.img", b.node));
        assert!(
            bmaptool_copy(&bmap, &b.image, &copy) == fs::read(&b.image).unwrap(),
            "bmaptool's copy differs"
        );
    }
    // pibake verify --manifest: a copy of lb's image matches lb, not web01.
    let manifest = opts.out.join("manifest.json");
    let lb = built[0].image.to_str().unwrap();
    assert!(
        pibake(&[
            "verify",
            lb,
            "--manifest",
            manifest.to_str().unwrap(),
            "--node",
            "lb"
        ])
        .status
        .success()
    );
    let wrong = pibake(&[
        "verify",
        lb,
        "--manifest",
        manifest.to_str().unwrap(),
        "--node",
        "web01",
    ]);
    assert!(
        !wrong.status.success()
            && String::from_utf8_lossy(&wrong.stderr).contains("are not node web01's image")
    );
    // A digest in the manifest that is not a sha256 is refused, naming the manifest.
    let broken = work.path().join("broken-manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    m["nodes"][0]["image"]["sha256_4m"] = "not-a-digest".into();
    fs::write(&broken, m.to_string()).unwrap();
    let bad = pibake(&[
        "verify",
        lb,
        "--manifest",
        broken.to_str().unwrap(),
        "--node",
        "lb",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("broken-manifest.json") && err.contains("malformed"),
        "{err}"
    );

    // pibake verify --bmap catches a changed byte in a mapped range.
    let copy = work.path().join("lb.bmaptool.img");
    let bmap = built[0].image.with_extension("img.bmap");
    assert!(
        pibake(&[
            "verify",
            copy.to_str().unwrap(),
            "--bmap",
            bmap.to_str().unwrap()
        ])
        .status
        .success()
    );
    use std::os::unix::fs::FileExt;
    fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .write_all_at(&[0xEE], f.root_offset + 1024)
        .unwrap();
    let out = pibake(&[
        "verify",
        copy.to_str().unwrap(),
        "--bmap",
        bmap.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not match the bmap's checksum"));
}

#[test]
fn plan_shows_boot_changes_as_diffs_against_the_base() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let cluster = example_on(
        Path::new("examples/container-cluster"),
        &f.image,
        work.path(),
    );
    let cache = work.path().join("cache");
    let text = pibake_ok(&[
        "--cache-dir",
        cache.to_str().unwrap(),
        "plan",
        "--online-packages",
        cluster.to_str().unwrap(),
        "--node",
        "manager",
    ]);
    assert!(
        text.contains("--- config.txt (base)\n  +++ config.txt (manager)\n")
            && text.contains("+ gpu_mem=16"),
        "{text}"
    );
    let old = f.mtype("cmdline.txt");
    let old = String::from_utf8_lossy(&old);
    assert!(text.contains(&format!("- {}", old.trim_end())), "{text}");
    assert!(
        text.contains("cgroup_memory=1 cgroup_enable=memory"),
        "{text}"
    );
    assert!(
        !text.contains("assuming NetworkManager"),
        "the stack was read from the base"
    );
}

#[test]
fn zst_outputs_reuse_the_base_frames_and_decode_to_the_raw_image() {
    let f = Fixture::new(Release::Bullseye);
    let work = tempfile::tempdir().unwrap();
    let inv = load(&cluster(work.path(), &f.image));
    let mut opts = options(work.path());
    opts.formats = vec![OutputFormat::Raw, OutputFormat::Zst];
    let built = build(&inv, &[], &opts).unwrap();
    for b in &built {
        let zst = b.image.with_extension("img.zst");
        let out = tool("zstd")
            .args(["-d", "-c", zst.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zstd -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == fs::read(&b.image).unwrap(),
            "{}: the .zst does not decode to the raw image",
            b.node
        );
    }
    // zst only: no raw image is left, and the bytes are the same as before.
    let first = fs::read(built[0].image.with_extension("img.zst")).unwrap();
    let mut zst_only = options(work.path());
    zst_only.out = work.path().join("zst-only");
    zst_only.formats = vec![OutputFormat::Zst];
    let again = build(&inv, &[], &zst_only).unwrap();
    assert!(again[0].image.to_str().unwrap().ends_with(".img.zst"));
    assert!(!zst_only.out.join("lb.img").exists());
    assert!(
        fs::read(&again[0].image).unwrap() == first,
        "zst outputs are not reproducible"
    );
}

/// `--bmap` with only compressed outputs still writes the bmap of the raw image the
/// compressed file expands to, and bmaptool flashes the `.img.xz` with it.
#[test]
fn a_bmap_comes_with_compressed_only_outputs() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let inv = load(&cluster(work.path(), &f.image));
    let mut raw_opts = options(work.path());
    raw_opts.out = work.path().join("raw");
    let raw = build(&inv, &["lb".to_string()], &raw_opts).unwrap();
    let mut opts = options(work.path());
    opts.formats = vec![OutputFormat::Xz];
    opts.bmap = true;
    let built = build(&inv, &["lb".to_string()], &opts).unwrap();
    let xz = &built[0].image;
    assert!(
        xz.to_str().unwrap().ends_with("lb.img.xz"),
        "{}",
        xz.display()
    );
    let bmap = opts.out.join("lb.img.bmap");
    assert!(built[0].files.contains(&bmap), "{:?}", built[0].files);
    let copy = work.path().join("copy.img");
    assert!(
        bmaptool_copy(&bmap, xz, &copy) == fs::read(&raw[0].image).unwrap(),
        "bmaptool's copy of the .img.xz differs from the raw image"
    );
}

/// A key-only admin on an image without pi-gen's NOPASSWD drop-in (images since 2026-04)
/// gets one of its own, or sudo would ask for a password that does not exist; with SSH
/// keys, password logins are off. An admin name the image already uses is refused.
#[test]
fn a_key_only_admin_can_sudo_and_logs_in_by_key_only() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base.img");
    fs::copy(&f.image, &base).unwrap();
    let out = tool("debugfs")
        .args([
            "-w",
            "-R",
            "rm /etc/sudoers.d/010_pi-nopasswd",
            &format!("{}?offset={}", base.display(), f.root_offset),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = cluster(work.path(), &base);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace(&format!("  password_hash: '{}'", hash()), "  locked: true");
    fs::write(&path, &text).unwrap();
    let inv = load(&path);
    let built = build(&inv, &["lb".to_string()], &options(work.path())).unwrap();
    let d = |req: &str| debugfs(&built[0].image, f.root_offset, req);
    assert_eq!(
        d("cat /etc/sudoers.d/010_pibake-nopasswd").lines().last(),
        Some("admin ALL=(ALL) NOPASSWD: ALL")
    );
    let st = d("stat /etc/sudoers.d/010_pibake-nopasswd");
    assert!(
        st.contains("Mode:  0440") && st.contains("User:     0"),
        "{st}"
    );
    assert!(
        d("cat /etc/ssh/sshd_config.d/20-pibake-no-password.conf")
            .contains("PasswordAuthentication no")
    );
    e2fsck_clean(&built[0].image, f.root_offset);

    // An admin with a password follows the image (no drop-in of pibake's), unless it
    // says `sudo: nopasswd`.
    let with_password = |sudo: &str| {
        let t = text.replace(
            "  locked: true",
            &format!("  password_hash: '{}'{sudo}", hash()),
        );
        fs::write(&path, t).unwrap();
        let inv = load(&path);
        let built = build(&inv, &["lb".to_string()], &options(work.path())).unwrap();
        debugfs(
            &built[0].image,
            f.root_offset,
            "cat /etc/sudoers.d/010_pibake-nopasswd",
        )
    };
    assert!(!with_password("").contains("NOPASSWD"));
    assert!(with_password("\n  sudo: nopasswd").contains("admin ALL=(ALL) NOPASSWD: ALL"));

    fs::write(&path, text.replace("  name: admin", "  name: daemon")).unwrap();
    let inv = load(&path);
    let err = build(&inv, &["lb".to_string()], &options(work.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("admin name `daemon` is already a user of the image"),
        "{err}"
    );
}

/// A second build into a directory another build holds is refused, naming the holder,
/// and leaves the first build's files alone; once the holder is gone the build runs.
#[test]
fn a_second_build_into_a_held_directory_is_refused() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let inv = load(&cluster(work.path(), &f.image));
    let opts = options(work.path());
    for dir in [&opts.out, &opts.state] {
        fs::create_dir_all(dir).unwrap();
        let held = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".pibake.lock"))
            .unwrap();
        held.lock().unwrap();
        fs::write(dir.join(".pibake.lock"), "4242\n").unwrap();
        let err = build(&inv, &["lb".to_string()], &opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is in use by another pibake build (process 4242)"),
            "{err}"
        );
        assert!(!opts.out.join("lb.img").exists());
        drop(held);
    }
    build(&inv, &["lb".to_string()], &opts).unwrap();
    assert!(opts.out.join("lb.img").exists());
}

/// Credentials everyone knows are refused by `build`: the examples' placeholder key
/// (nobody holds its private half) and a hash of "raspberry"; `--allow-example-credentials`
/// builds anyway, for throw-away clusters.
#[test]
fn known_credentials_are_refused_unless_allowed() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let cluster = work.path().join("cluster.yaml");
    let text = fs::read_to_string("examples/desk/cluster.yaml")
        .unwrap()
        .replace(
            "base: raspios-bookworm-arm64-lite.img.xz",
            &format!("base: {}", f.image.display()),
        );
    fs::write(&cluster, &text).unwrap();
    let (c, out) = (cluster.to_str().unwrap(), work.path().join("out"));
    let o = out.to_str().unwrap();
    let err = crate::common::pibake_fails(&["build", c, "--out", o, "--node", "head"]);
    assert!(
        err.contains(
            "refusing to build with known credentials: an SSH key is the examples' placeholder"
        ),
        "{err}"
    );
    assert!(!out.join("head.img").exists());
    pibake_ok(&[
        "build",
        c,
        "--out",
        o,
        "--node",
        "head",
        "--allow-example-credentials",
    ]);
    assert!(out.join("head.img").exists());

    // sha512-crypt and yescrypt (Raspberry Pi OS's default) hashes of "raspberry", the
    // yescrypt one made by libxcrypt (`mkpasswd -m yescrypt raspberry`).
    for raspberry in [
        "$6$pibakesalt$XOhqLJoOs11sebuzOz2kOvEtXpOhlUvfTApVuont.s98RScuQUqY5TXt3L7dthjiPyjR45EeInI5rE/dpeKm4/",
        "$y$j9T$AGezPy96xoQAGHs5nznkB1$cwChSC1C/nHObfF/4J5WCxex/nUEsTuYWJ3w6XFKM05",
    ] {
        let with_hash = text
            .replace("  locked: true\n", &format!("  password_hash: '{raspberry}'\n"))
            .replace(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqU+JMbv/mYQnyv4yiqHAW1Q/hrqkSaWfYBnnh3kInG admin@laptop",
                crate::common::test_key(),
            );
        fs::write(&cluster, with_hash).unwrap();
        let err = crate::common::pibake_fails(&["build", c, "--out", o, "--node", "head"]);
        assert!(
            err.contains("the password hash is of \"raspberry\""),
            "{raspberry}: {err}"
        );
    }
    // Another yescrypt hash (of "not-raspberry") is not taken for one.
    let other = "$y$j9T$cECkVf1AZk6QFpv29FPl81$gRqeBIz9nVAV6EUPiwGvCOKSYQpOw1mPXVACmuyZPS/";
    let with_hash = text
        .replace("  locked: true\n", &format!("  password_hash: '{other}'\n"))
        .replace(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqU+JMbv/mYQnyv4yiqHAW1Q/hrqkSaWfYBnnh3kInG admin@laptop",
            crate::common::test_key(),
        );
    fs::write(&cluster, with_hash).unwrap();
    // Without --out, the images go where `flash CLUSTER` and `status` look for them.
    pibake_ok(&["build", c, "--node", "head"]);
    assert!(work.path().join("images/head.img").exists());
}

/// Every build writes an Ansible inventory and an MPI hostfile beside the images; the
/// inventory is read back by `ansible-inventory` itself, group_vars included.
#[test]
fn the_ansible_inventory_and_the_mpi_hostfile_describe_the_cluster() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let path = cluster(work.path(), &f.image);
    let text = fs::read_to_string(&path).unwrap().replace(
        "  - { name: \"web[01-02]\", role: worker }\n",
        "  - { name: \"web[01-02]\", role: worker }\n  - { name: web03, role: worker, vars: { mpi_slots: 2, rack: b } }\n  - { name: web04, role: worker, spare: true, mac: { eth0: \"dc:a6:32:00:00:04\" } }\n",
    ).replace("  worker: { profile: web-worker }", "  worker: { profile: mpi-worker }");
    fs::write(&path, text).unwrap();
    fs::create_dir_all(work.path().join("profiles")).unwrap();
    fs::write(
        work.path().join("profiles/mpi-worker.yaml"),
        "extends: web-worker\nvars: { mpi_slots: 4 }\n",
    )
    .unwrap();
    let inv = load(&path);
    let opts = options(work.path());
    build(&inv, &["lb".into()], &opts).unwrap();

    assert_eq!(
        fs::read_to_string(opts.out.join("hostfile")).unwrap(),
        "# MPI hostfile of the cluster webfarm (`mpirun --hostfile FILE`). Written by pibake.\nlb\nweb01 slots=4\nweb02 slots=4\nweb03 slots=2\n",
        "no spare; the node's own slots over its role's; none given for the head"
    );
    let listed = std::process::Command::new("ansible-inventory")
        .arg("-i")
        .arg(opts.out.join("inventory.yml"))
        .arg("--list")
        .output()
        .expect("ansible-inventory: `pip install ansible-core` (bash .ci/run does)");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let hosts = |g: &str| list[g]["hosts"].clone();
    assert_eq!(hosts("head"), serde_json::json!(["lb"]));
    assert_eq!(
        hosts("worker"),
        serde_json::json!(["web01", "web02", "web03", "web04"])
    );
    assert_eq!(hosts("spare"), serde_json::json!(["web04"]));
    let vars = &list["_meta"]["hostvars"];
    assert_eq!(vars["web01"]["ansible_host"], "192.168.50.11");
    assert_eq!(vars["web01"]["addresses"]["lan"], "192.168.50.11");
    assert_eq!(vars["web04"]["mac"]["eth0"], "dc:a6:32:00:00:04");
    assert_eq!(vars["web03"]["rack"], "b", "node vars are host vars");
    assert_eq!(vars["lb"]["ansible_user"], "admin");
    // group_vars/ beside the inventory: the cluster's vars for all, the role's for its group.
    assert_eq!(vars["lb"]["site_title"], "Test");
    assert_eq!(vars["web01"]["mpi_slots"], 4);
    assert_eq!(
        vars["web03"]["mpi_slots"], 2,
        "a host var wins over its group's"
    );
    assert!(vars["lb"].get("mpi_slots").is_none());
}

/// k3s: the user's binary and images baked in as they are (read back with debugfs), and
/// each node's config.yaml 0600 (read back by a YAML parser) with the one token the
/// first build made into the state directory (0600) and the next build kept; that token
/// is in no plan, no output of the build and nothing it printed.
#[test]
fn k3s_nodes_get_the_release_files_and_one_token_that_is_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let path = example_on(Path::new("examples/k3s-cluster"), &f.image, work.path());
    // The fixtures have no dpkg database for the time server's chrony: time off.
    let text = fs::read_to_string(&path).unwrap() + "time: { sync: false }\n";
    fs::write(&path, text).unwrap();
    let built = build(&load(&path), &[], &options(work.path())).unwrap();
    let token_file = work.path().join("state/_cluster/k3s-token");
    let mode = fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = fs::read_to_string(&token_file).unwrap().trim().to_string();
    assert!(
        token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    let binary = fs::read_to_string(work.path().join("k3s/k3s-arm64")).unwrap();
    let images =
        fs::read_to_string(work.path().join("k3s/k3s-airgap-images-arm64.tar.zst")).unwrap();
    let images_at = "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-arm64.tar.zst";
    let check = |built: &[pibake::bake::Built]| {
        for (i, b) in built.iter().enumerate() {
            e2fsck_clean(&b.image, f.root_offset);
            let at = |p: &str| debugfs(&b.image, f.root_offset, &format!("stat {p}"));
            assert!(
                at("/usr/local/bin/k3s").contains("Mode:  0755"),
                "{}",
                b.node
            );
            assert!(at(images_at).contains("Mode:  0644"), "{}", b.node);
            let config = at("/etc/rancher/k3s/config.yaml");
            assert!(
                config.contains("Mode:  0600") && config.contains("User:     0"),
                "{config}"
            );
            let cat = |p: &str| debugfs(&b.image, f.root_offset, &format!("cat {p}"));
            assert_eq!(cat("/usr/local/bin/k3s"), binary);
            assert_eq!(cat(images_at), images);
            let y: serde_json::Value =
                serde_norway::from_str(&cat("/etc/rancher/k3s/config.yaml")).unwrap();
            let address = format!("10.30.0.{}", 10 + i);
            assert_eq!(y["token"], token.as_str(), "{}", b.node);
            assert_eq!(y["node-name"], b.node.as_str());
            assert_eq!(y["node-ip"], address.as_str());
            if b.node == "server" {
                assert_eq!(y["advertise-address"], "10.30.0.10");
                assert_eq!(y["node-label"], serde_json::json!(["role=server"]));
                assert!(y.get("server").is_none());
            } else {
                assert_eq!(y["server"], "https://10.30.0.10:6443");
                assert_eq!(
                    y["node-label"],
                    serde_json::json!(["role=agent", "zone=rack"])
                );
            }
        }
    };
    assert_eq!(built.len(), 4);
    check(&built);

    // A second build, through the command line: the same token, and none of it shown.
    let (c, o) = (path.to_str().unwrap(), work.path().join("out"));
    let state = work.path().join("state");
    let run = pibake(&[
        "build",
        c,
        "--out",
        o.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(fs::read_to_string(&token_file).unwrap().trim(), token);
    check(&built);
    let mut shown = String::from_utf8_lossy(&run.stdout).into_owned();
    shown += &String::from_utf8_lossy(&run.stderr);
    shown += &pibake_ok(&["plan", c]);
    shown += &pibake_ok(&["plan", "--json", c]);
    for e in fs::read_dir(&o).unwrap().map(|e| e.unwrap().path()) {
        if e.extension().is_none_or(|x| x != "img") && e.is_file() {
            shown += &String::from_utf8_lossy(&fs::read(&e).unwrap());
        }
    }
    assert!(
        shown.contains("config.yaml 0600 gets the cluster token"),
        "{shown}"
    );
    assert!(!shown.contains(&token), "the k3s token was shown");
}

/// A file whose sha256 is not the one the cluster file gives is refused, naming the key
/// and the file, before any node's image is written.
#[test]
fn a_k3s_file_with_another_sha256_is_refused_before_any_image() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let path = example_on(Path::new("examples/k3s-cluster"), &f.image, work.path());
    fs::write(work.path().join("k3s/k3s-arm64"), "another build of k3s\n").unwrap();
    let Err(err) = build(&load(&path), &[], &options(work.path())) else {
        panic!("a file with another sha256 was baked");
    };
    let err = err.to_string();
    assert!(
        err.contains("k3s/k3s-arm64: its sha256 is ")
            && err.contains("and `k3s.binary.sha256` in the cluster file says"),
        "{err}"
    );
    let left: Vec<_> = fs::read_dir(work.path().join("out"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|n: &std::ffi::OsString| n.to_string_lossy().ends_with(".img")),
        "{left:?}"
    );
}
