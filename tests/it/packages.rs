//! Role packages baked in: resolved from the image's own signed sources, fetched into
//! the cache, recorded in pibake.lock, written into each node's image with the order
//! first boot installs them in. Read back with debugfs; every image e2fsck-clean.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::aptrepo::{self, Deb};
use crate::common::{
    Fixture, Release, bmaptool_copy, e2fsck_clean, pibake_build_run, pibake_ok, test_key, tool,
};
use crate::httpd::Httpd;

const STEP: &str = "/usr/local/lib/pibake/firstboot.d/10-packages.sh";

/// A cluster of two `app` nodes whose profile asks for `hello-pibake`.
fn cluster(dir: &Path, base: &Path, extra: &str) -> PathBuf {
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(
        dir.join("profiles/app.yaml"),
        "packages: [hello-pibake]\ninstall_recommends: false\n",
    )
    .unwrap();
    let text = format!(
        "cluster: pkgs\nbase: {}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles:\n  app: {{}}\nnodes:\n  - {{ name: \"app[1-2]\", role: app }}\n{extra}",
        base.display(),
        test_key()
    );
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

fn debugfs(image: &Path, offset: u64, request: &str) -> Vec<u8> {
    tool("debugfs")
        .args([
            "-R",
            request,
            &format!("{}?offset={offset}", image.display()),
        ])
        .output()
        .unwrap()
        .stdout
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

struct Setup {
    f: Fixture,
    work: tempfile::TempDir,
    server: Httpd,
    hello: Deb,
    lib: Deb,
    /// The key the image trusts.
    key: pgp::composed::SignedSecretKey,
}

/// Serves a repository of `debs` signed by `signer`, and makes a base that trusts
/// `trusted` and lists the repository (under `listed_as` when a mirror rule is to
/// rewrite it to the server).
fn serve(
    debs: &[&Deb],
    signer: &pgp::composed::SignedSecretKey,
    trusted: &pgp::composed::SignedSecretKey,
    listed_as: Option<&str>,
) -> (Httpd, Fixture) {
    let files = aptrepo::files(debs, signer);
    let server = Httpd::start(files.iter().map(|(p, b)| (p.as_str(), b.clone())));
    let f = Fixture::new(Release::Bookworm);
    let uri = listed_as.map_or_else(|| server.url("/debian"), str::to_string);
    aptrepo::install_apt(
        &f,
        &format!("deb {uri} bookworm main\n"),
        &aptrepo::armored_public(trusted),
    );
    (server, f)
}

/// `pibake build` of `cluster` with its cache and outputs in `work`.
fn build_in(work: &Path, cluster: &Path, extra: &[&str]) -> std::process::Output {
    pibake_build_run(work, cluster, &work.join("out"), extra)
}

impl Setup {
    /// A base listing the server's repository, which is signed by the key the base
    /// trusts or by another one.
    fn new(signer_is_trusted: bool, with_lib: bool) -> Setup {
        let key = aptrepo::keygen();
        let signer = if signer_is_trusted {
            key.clone()
        } else {
            aptrepo::keygen()
        };
        let hello = Deb::build("hello-pibake", "1.0-1", "Depends: libpibake1 (>= 1.0)\n");
        let lib = Deb::build("libpibake1", "1.0-1", "");
        let mut debs = vec![&hello];
        if with_lib {
            debs.push(&lib);
        }
        let (server, f) = serve(&debs, &signer, &key, None);
        Setup {
            f,
            work: tempfile::tempdir().unwrap(),
            server,
            hello,
            lib,
            key,
        }
    }

    fn path(&self, p: &str) -> String {
        self.work.path().join(p).display().to_string()
    }

    fn build(&self, extra: &[&str]) -> std::process::Output {
        build_in(
            self.work.path(),
            &cluster(self.work.path(), &self.f.image, ""),
            extra,
        )
    }
}

fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "pibake failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn failed(o: std::process::Output) -> String {
    assert!(!o.status.success(), "pibake should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A role's packages are written once, into a layer its nodes are built over: every
/// node's `.img.zst` still expands to its raw image, and its bmap (checksums included)
/// describes it, as bmaptool checks while it copies the `.zst`.
#[test]
fn every_format_of_a_node_built_over_its_role_layer_is_the_same_image() {
    let s = Setup::new(true, true);
    ok(s.build(&["--format", "raw", "--format", "zst", "--bmap"]));
    for node in ["app1", "app2"] {
        let img = s.work.path().join(format!("out/{node}.img"));
        let zst = s.work.path().join(format!("out/{node}.img.zst"));
        let copy = s.work.path().join(format!("{node}.copy"));
        let bmap = s.work.path().join(format!("out/{node}.img.bmap"));
        assert!(
            bmaptool_copy(&bmap, &zst, &copy) == fs::read(&img).unwrap(),
            "{node}: the .zst is not the raw image"
        );
        e2fsck_clean(&img, s.f.root_offset);
        assert_eq!(
            text(debugfs(
                &img,
                s.f.root_offset,
                "cat /usr/share/pibake-test/hello-pibake"
            )),
            "hello-pibake 1.0-1\n"
        );
    }
    let left: Vec<_> = fs::read_dir(s.work.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pibake-layer"))
        .collect();
    assert!(
        left.is_empty(),
        "the layer is removed after the build: {left:?}"
    );
}

/// What a role's nodes share (packages, first-boot work, units) is in the layer, so a
/// node over it writes no more pages of its own than the same node without packages;
/// also when the role has a unit of its own, which each node writes and enables.
#[test]
fn a_node_over_its_role_layer_writes_only_its_own_pages() {
    let s = Setup::new(true, true);
    let unit = "services:\n  units: { hello.service: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\" }\n  enable: [hello.service]\n";
    let changed = |o: std::process::Output| -> Vec<u64> {
        let built: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
        built
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bytes_changed"].as_u64().unwrap())
            .collect()
    };
    let file = cluster(s.work.path(), &s.f.image, "");
    let profile = s.work.path().join("profiles/app.yaml");
    let packages = fs::read_to_string(&profile).unwrap();
    fs::write(&profile, format!("{packages}{unit}")).unwrap();
    let with = changed(build_in(s.work.path(), &file, &["--json"]));
    let text = debugfs(
        &s.work.path().join("out/app1.img"),
        s.f.root_offset,
        &format!("cat {STEP}"),
    );
    assert!(!text.is_empty(), "the packages step is in the node's image");
    let img = s.work.path().join("out/app1.img");
    let link = debugfs(
        &img,
        s.f.root_offset,
        "stat /etc/systemd/system/multi-user.target.wants/hello.service",
    );
    assert!(
        !link.is_empty(),
        "the role's own unit is enabled at build time"
    );
    let later = debugfs(
        &img,
        s.f.root_offset,
        "cat /var/lib/pibake/enable-after-install",
    );
    assert!(
        later.is_empty(),
        "no unit is left for after the install: {}",
        String::from_utf8_lossy(&later)
    );
    fs::write(&profile, format!("install_recommends: false\n{unit}")).unwrap();
    let without = changed(build_in(s.work.path(), &file, &["--json"]));
    assert_eq!(with.len(), 2);
    for (w, wo) in with.iter().zip(&without) {
        assert!(w <= wo, "with packages {w} bytes, without {wo}");
    }
}

#[test]
fn packages_are_resolved_locked_baked_and_kept() {
    let s = Setup::new(true, true);
    ok(s.build(&[]));

    // The lock: both packages, the dependency first, with their digests.
    let lock = fs::read_to_string(s.work.path().join("pibake.lock")).unwrap();
    let lib_at = lock.find("name: libpibake1").expect("libpibake1 locked");
    let hello_at = lock
        .find("name: hello-pibake")
        .expect("hello-pibake locked");
    assert!(lib_at < hello_at, "dependency first:\n{lock}");
    assert!(lock.contains(&format!("{:x}", Sha256::digest(&s.hello.bytes))));
    assert!(
        lock.contains(
            &s.server
                .url("/debian/pool/main/h/hello-pibake/hello-pibake_1.0-1_arm64.deb")
        )
    );

    for node in ["app1", "app2"] {
        let img = s.work.path().join(format!("out/{node}.img"));
        e2fsck_clean(&img, s.f.root_offset);
        let d = |r: &str| debugfs(&img, s.f.root_offset, r);
        // Unpacked at build time as `dpkg --unpack` leaves them, the dependency first;
        // no `.deb` is left for first boot.
        assert_eq!(
            text(d("cat /var/lib/pibake/packages/unpacked")),
            "libpibake1 arm64 libpibake1\nhello-pibake arm64 hello-pibake\n"
        );
        assert_eq!(text(d("cat /var/lib/pibake/packages/order")), "");
        for deb in [&s.hello, &s.lib] {
            let file = format!("/usr/share/pibake-test/{}", deb.name);
            assert_eq!(
                text(d(&format!("cat {file}"))),
                format!("{} {}\n", deb.name, deb.version),
                "{node}: {file}"
            );
            let list = text(d(&format!("cat /var/lib/dpkg/info/{}.list", deb.name)));
            assert_eq!(
                list,
                format!("/.\n/usr\n/usr/share\n/usr/share/pibake-test\n{file}\n")
            );
            let sums = text(d(&format!("cat /var/lib/dpkg/info/{}.md5sums", deb.name)));
            assert!(sums.ends_with(&format!("  {}\n", &file[1..])), "{sums}");
        }
        let status = text(d("cat /var/lib/dpkg/status"));
        assert!(
            status.contains("Package: hello-pibake\nStatus: install ok unpacked\n"),
            "{status}"
        );
        assert!(
            status.contains("Depends: libpibake1 (>= 1.0)\n"),
            "{status}"
        );
        let step = text(d(&format!("cat {STEP}")));
        assert!(
            step.contains("dpkg --configure -a --force-confdef --force-confold")
                && step.contains("\"$script\" install")
                && step.contains("/var/lib/pibake/packages/$f"),
            "{step}"
        );
        assert!(!step.contains("apt-get update"), "{step}");
        let unit = text(d("cat /etc/systemd/system/pibake-firstboot.service"));
        assert!(
            !unit.contains("network-online"),
            "no network to wait for:\n{unit}"
        );
    }
    // One file per package in the cache, whatever the node count (plus the index).
    let cached = fs::read_dir(s.work.path().join("cache/apt/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 64)
        .count();
    assert_eq!(cached, 3);
    let manifest = fs::read_to_string(s.work.path().join("out/manifest.json")).unwrap();
    assert!(manifest.contains("\"hello-pibake\""), "{manifest}");

    // The archive moves on; the lock holds, and the rebuilt node is byte-identical.
    let image_sum =
        |n: &str| Sha256::digest(fs::read(s.work.path().join(format!("out/{n}.img"))).unwrap());
    let before = image_sum("app1");
    let newer = Deb::build("hello-pibake", "1.1-1", "Depends: libpibake1 (>= 1.0)\n");
    for (p, b) in aptrepo::files(&[&newer, &s.lib], &s.key) {
        s.server.put(&p, b);
    }
    ok(s.build(&["--node", "app1"]));
    assert_eq!(
        image_sum("app1"),
        before,
        "lock kept: same software, same image"
    );
    assert_eq!(
        fs::read_to_string(s.work.path().join("pibake.lock")).unwrap(),
        lock
    );

    // A plan shows what an update would change, without writing the lock.
    let cluster = s.work.path().join("cluster.yaml");
    let cache = s.path("cache");
    let plan = pibake_ok(&[
        "--cache-dir",
        &cache,
        "plan",
        cluster.to_str().unwrap(),
        "--update-packages=hello-pibake",
    ]);
    assert!(
        plan.contains("lock ~ hello-pibake:arm64 1.0-1 -> 1.1-1"),
        "{plan}"
    );
    assert_eq!(
        fs::read_to_string(s.work.path().join("pibake.lock")).unwrap(),
        lock
    );

    ok(s.build(&["--update-packages"]));
    let updated = fs::read_to_string(s.work.path().join("pibake.lock")).unwrap();
    assert!(updated.contains("version: 1.1-1"), "{updated}");
    let img = s.work.path().join("out/app2.img");
    assert_eq!(
        text(debugfs(
            &img,
            s.f.root_offset,
            "cat /usr/share/pibake-test/hello-pibake"
        )),
        "hello-pibake 1.1-1\n"
    );
    e2fsck_clean(&img, s.f.root_offset);

    // A role that no longer asks for packages: the plan says its entry goes.
    fs::write(
        s.work.path().join("profiles/app.yaml"),
        "description: no packages\n",
    )
    .unwrap();
    let plan = pibake_ok(&["--cache-dir", &cache, "plan", cluster.to_str().unwrap()]);
    assert!(
        plan.contains("role app: asks for no packages now; pibake.lock would drop its entry")
            && plan.contains("lock - hello-pibake:arm64 1.1-1")
            && plan.contains("lock - libpibake1:arm64 1.0-1"),
        "{plan}"
    );
}

#[test]
fn offline_uses_the_cache_alone() {
    let s = Setup::new(true, true);
    ok(s.build(&[]));
    let served = s.server.total_requests();
    // With the lock and a warm cache: nothing is asked for.
    ok(s.build(&["--offline"]));
    // Resolving again offline reads the kept InRelease and index.
    ok(s.build(&["--offline", "--update-packages"]));
    assert_eq!(s.server.total_requests(), served, "--offline made requests");

    // A cold cache offline: the error names what is missing and the way out.
    fs::remove_dir_all(s.work.path().join("cache/apt")).unwrap();
    let err = failed(s.build(&["--offline"]));
    assert!(
        err.contains("hello-pibake 1.0-1 arm64") && err.contains("libpibake1 1.0-1 arm64"),
        "{err}"
    );
    fs::remove_file(s.work.path().join("pibake.lock")).unwrap();
    let err = failed(s.build(&["--offline"]));
    assert!(
        err.contains("--offline") && err.contains("InRelease"),
        "{err}"
    );
    assert_eq!(s.server.total_requests(), served);
}

#[test]
fn a_repository_signed_by_an_untrusted_key_is_refused() {
    let s = Setup::new(false, true);
    let err = failed(s.build(&[]));
    assert!(
        err.contains(&s.server.url("/debian")) && err.contains("unknown keys"),
        "{err}"
    );
    assert!(!s.work.path().join("pibake.lock").exists());
    assert!(!s.work.path().join("out/app1.img").exists());
}

#[test]
fn an_unresolvable_dependency_names_role_chain_and_profile() {
    let s = Setup::new(true, false);
    let err = failed(s.build(&[]));
    assert!(
        err.contains("profiles/app.yaml")
            && err.contains("role app")
            && err.contains("hello-pibake")
            && err.contains("libpibake1"),
        "{err}"
    );
    assert!(!s.work.path().join("pibake.lock").exists());
}

#[test]
fn a_mirror_rewrite_fetches_elsewhere_and_locks_the_image_source() {
    let key = aptrepo::keygen();
    let hello = Deb::build("hello-pibake", "1.0-1", "");
    let (server, f) = serve(&[&hello], &key, &key, Some("http://archive.invalid/debian"));
    let work = tempfile::tempdir().unwrap();
    let mirror = format!(
        "apt:\n  mirrors:\n    \"http://archive.invalid/debian\": \"{}\"\n",
        server.url("/debian")
    );
    ok(build_in(
        work.path(),
        &cluster(work.path(), &f.image, &mirror),
        &[],
    ));
    let lock = fs::read_to_string(work.path().join("pibake.lock")).unwrap();
    assert!(
        lock.contains("url: http://archive.invalid/debian/pool/main/h/hello-pibake/hello-pibake_1.0-1_arm64.deb"),
        "{lock}"
    );
    assert!(server.requests("/debian/dists/bookworm/InRelease").len() == 1);
    e2fsck_clean(&work.path().join("out/app1.img"), f.root_offset);
}

/// A role whose packages do not fit the base's root gets its root grown at build
/// time, once for all its nodes: the plan says so and why, each image's root partition
/// and filesystem are the larger size, clean, and hold the package.
#[test]
fn packages_that_do_not_fit_the_root_grow_it() {
    let key = aptrepo::keygen();
    // 48 MiB that does not compress, in a 96 MiB root.
    let mut noise = vec![0u8; 48 << 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut noise);
    let big = Deb::build_with("hello-pibake", "1.0-1", "", &noise);
    let (_server, f) = serve(&[&big], &key, &key, None);
    let work = tempfile::tempdir().unwrap();
    let path = cluster(work.path(), &f.image, "");
    let cache = work.path().join("cache").display().to_string();
    let plan = pibake_ok(&["--cache-dir", &cache, "plan", path.to_str().unwrap()]);
    assert!(
        plan.contains("role app: root partition 256.0 MiB grown from the base's 96.0 MiB: the role's software takes 48.0 MiB"),
        "{plan}"
    );
    ok(build_in(work.path(), &path, &[]));
    for node in ["app1", "app2"] {
        let image = work.path().join(format!("out/{node}.img"));
        assert_eq!(
            fs::metadata(&image).unwrap().len(),
            f.root_offset + (256 << 20),
            "{node}"
        );
        e2fsck_clean(&image, f.root_offset);
        let file = "/usr/share/pibake-test/hello-pibake";
        assert!(
            debugfs(&image, f.root_offset, &format!("cat {file}")) == noise,
            "{node}: {file} is not the package's file"
        );
    }
}

/// A lock holds for the base it was resolved against: a base whose installed set
/// differs (here, one that already has the library) resolves every role again, and says
/// so; a lock from before the base was recorded is kept as it is.
#[test]
fn a_base_with_other_installed_packages_resolves_the_lock_again() {
    let s = Setup::new(true, true);
    ok(s.build(&[]));
    let lock_path = s.work.path().join("pibake.lock");
    let lock = fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains("installed_sha256: "), "{lock}");
    assert!(lock.contains("name: libpibake1"));

    // Written before the base was recorded: kept, and the digest is added.
    let old: String = lock
        .lines()
        .filter(|l| !l.starts_with("installed_sha256:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&lock_path, &old).unwrap();
    let o = s.build(&[]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("resolved again"));
    ok(o);
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), lock);

    // The base now has the library installed: the closure no longer carries it.
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    let had = tool("debugfs")
        .args(["-R", "cat /var/lib/dpkg/status", &s.f.ext4_target()])
        .output()
        .unwrap()
        .stdout;
    let mut text = String::from_utf8(had).unwrap();
    text.push_str("Package: libpibake1\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.0-1\n\n");
    fs::write(&status, text).unwrap();
    let script = dir.path().join("cmds");
    fs::write(
        &script,
        format!(
            "rm /var/lib/dpkg/status\nwrite {} /var/lib/dpkg/status\n",
            status.display()
        ),
    )
    .unwrap();
    let out = tool("debugfs")
        .args(["-w", "-f", script.to_str().unwrap(), &s.f.ext4_target()])
        .output()
        .unwrap();
    assert!(out.status.success());
    s.f.assert_clean();
    let o = s.build(&[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("every role is resolved again"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(o);
    let again = fs::read_to_string(&lock_path).unwrap();
    assert!(
        !again.contains("name: libpibake1"),
        "installed now:\n{again}"
    );
    assert!(again.contains("name: hello-pibake"));
    assert_ne!(again, lock);
}

/// The lock is a record of the role's requests, checked as such: an entry cut down to
/// lose a requested package is resolved again (and `--locked` refuses it, naming the
/// role and the request); with the lock whole, `--locked` builds and leaves it as it is.
#[test]
fn a_lock_that_lacks_a_request_is_resolved_again_and_locked_refuses_it() {
    let s = Setup::new(true, true);
    ok(s.build(&[]));
    let path = s.work.path().join("pibake.lock");
    let whole = fs::read_to_string(&path).unwrap();
    ok(s.build(&["--locked"]));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        whole,
        "--locked keeps it"
    );

    // hello-pibake's entry removed: its `- name:` line and the indented fields after it.
    let mut cut = Vec::new();
    let mut skipping = None;
    for line in whole.lines() {
        let indent = line.len() - line.trim_start().len();
        if line.trim_start() == "- name: hello-pibake" {
            skipping = Some(indent);
            continue;
        }
        if skipping.is_some_and(|i| indent > i && !line.trim_start().starts_with("- ")) {
            continue;
        }
        skipping = None;
        cut.push(line);
    }
    let cut = format!("{}\n", cut.join("\n"));
    assert!(
        !cut.contains("name: hello-pibake") && cut.contains("- hello-pibake"),
        "{cut}"
    );
    fs::write(&path, &cut).unwrap();

    let err = failed(s.build(&["--locked"]));
    assert!(
        err.contains("--locked: pibake.lock would change")
            && err.contains("role app: pibake.lock's set lacks `hello-pibake`"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        cut,
        "--locked writes nothing"
    );
    ok(s.build(&[]));
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("name: hello-pibake"),
        "resolved again"
    );
}

/// The recommends policy is part of what a lock records: a profile that turns
/// `install_recommends` on gets the recommended package (and `--locked` refuses the old
/// closure, naming the policy), and the lock says which policy its closure was made with.
#[test]
fn turning_recommends_on_resolves_the_role_again() {
    let key = aptrepo::keygen();
    let hello = Deb::build(
        "hello-pibake",
        "1.0-1",
        "Depends: libpibake1 (>= 1.0)\nRecommends: extra-pibake\n",
    );
    let lib = Deb::build("libpibake1", "1.0-1", "");
    let extra = Deb::build("extra-pibake", "1.0-1", "");
    let (_server, f) = serve(&[&hello, &lib, &extra], &key, &key, None);
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), &f.image, "");
    ok(build_in(work.path(), &cluster, &[]));
    let path = work.path().join("pibake.lock");
    let without = fs::read_to_string(&path).unwrap();
    assert!(
        without.contains("install_recommends: false") && !without.contains("name: extra-pibake"),
        "{without}"
    );

    fs::write(
        work.path().join("profiles/app.yaml"),
        "packages: [hello-pibake]\ninstall_recommends: true\n",
    )
    .unwrap();
    let err = failed(build_in(work.path(), &cluster, &["--locked"]));
    assert!(
        err.contains("role app: its profile's `install_recommends:` is true now, and pibake.lock was resolved with false"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        without,
        "--locked writes nothing"
    );
    ok(build_in(work.path(), &cluster, &[]));
    let with = fs::read_to_string(&path).unwrap();
    assert!(
        with.contains("install_recommends: true") && with.contains("name: extra-pibake"),
        "{with}"
    );
}
