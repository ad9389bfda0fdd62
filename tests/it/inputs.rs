//! Inputs that would block or never end (a FIFO, `/dev/zero`) are refused before they are
//! opened, at the inventory line that names them; a template that multiplies without
//! bound is refused at its cap; a long read of the base answers Ctrl-C.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs pibake, killing it (and failing the test) if it has not finished within `secs`:
/// a regression that opens a FIFO must not hang the suite.
fn pibake_within(secs: u64, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pibake");
    wait_within(child, secs, args)
}

/// The child's output once it exits; killed, and the test failed, after `secs`.
fn wait_within(mut child: Child, secs: u64, what: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pibake {what:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Standard error of a run that must fail promptly, without a panic.
fn refused(args: &[&str]) -> String {
    let out = pibake_within(60, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "pibake {args:?} succeeded");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(ok.success());
}

/// A one-node cluster in `dir` on `base`, its worker profile `profile` (plus `extra`
/// files beside it).
fn cluster(dir: &Path, base: &str, profile: &str, extra: &[(&str, &str)]) -> PathBuf {
    let key = crate::common::test_key();
    let text = format!(
        "cluster: lab\nbase: {base}\nnetworks:\n  lan: {{ subnet: 10.0.0.0/24, gateway: 10.0.0.1 }}\nadmin:\n  name: pi\n  locked: true\n  ssh_keys: [\"{key}\"]\nroles:\n  worker: {{}}\nnodes:\n  - {{ name: w1, role: worker }}\n"
    );
    for (p, content) in [("profiles/worker.yaml", profile)].iter().chain(extra) {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_base_that_is_no_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pipe = d.join("base.img.xz");
    mkfifo(&pipe);
    let cache = d.join("cache");
    let c = cluster(d, "base.img.xz", "{}\n", &[]);
    let (c, out, cache) = (c.to_str().unwrap(), d.join("out"), cache.to_str().unwrap());
    let out = out.to_str().unwrap();
    for args in [
        vec!["validate", c],
        vec!["plan", c],
        vec!["build", c, "--out", out, "--cache-dir", cache],
    ] {
        let err = refused(&args);
        assert!(
            err.contains("cluster.yaml:2:7: ")
                && err.contains("base.img.xz is a FIFO (named pipe)"),
            "{args:?}: {err}"
        );
        assert!(err.contains("hint: name the file itself"), "{err}");
    }
    // Named on the command line: refused naming the argument, for every command that
    // reads an image.
    let p = pipe.to_str().unwrap();
    for args in [
        vec!["inspect", p],
        vec!["unpack", p, "--cache-dir", cache],
        vec!["fs", "ls", p, "/"],
    ] {
        let err = refused(&args);
        assert!(err.contains(&format!("{p} is a FIFO")), "{args:?}: {err}");
    }

    // A device that never ends, and a directory.
    let c = cluster(d, "/dev/zero", "{}\n", &[]);
    let err = refused(&["validate", c.to_str().unwrap()]);
    assert!(
        err.contains(
            "cluster.yaml:2:7: /dev/zero is a character device; only a regular file is read here"
        ),
        "{err}"
    );
    let err = refused(&["inspect", "/dev/zero"]);
    assert!(err.contains("/dev/zero is a character device"), "{err}");
    let err = refused(&["inspect", d.to_str().unwrap()]);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn debs_and_file_sources_that_are_no_files_are_refused_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    mkfifo(&d.join("pkg.deb"));
    mkfifo(&d.join("motd"));
    let c = cluster(d, "base.img", "debs:\n  - pkg.deb\n", &[]);
    let err = refused(&["validate", c.to_str().unwrap()]);
    assert!(
        err.contains("profiles/worker.yaml:2:5: ") && err.contains("pkg.deb is a FIFO"),
        "{err}"
    );
    // An entry from a profile the role's profile extends is refused in that file.
    let c = cluster(
        d,
        "base.img",
        "extends: common\n",
        &[("profiles/common.yaml", "gpu_mem: 16\ndebs: [pkg.deb]\n")],
    );
    let err = refused(&["validate", c.to_str().unwrap()]);
    assert!(
        err.contains("profiles/common.yaml:2:8: ") && err.contains("pkg.deb is a FIFO"),
        "{err}"
    );
    let c = cluster(
        d,
        "base.img",
        "gpu_mem: 16\nfiles:\n  - { path: /etc/motd, source: motd }\n",
        &[],
    );
    for cmd in ["validate", "plan"] {
        let err = refused(&[cmd, c.to_str().unwrap()]);
        assert!(
            err.contains("profiles/worker.yaml:3:5: ") && err.contains("motd is a FIFO"),
            "{err}"
        );
    }
    // Through a symlink, the file it points to is what is checked.
    fs::remove_file(d.join("motd")).unwrap();
    mkfifo(&d.join("motd.real"));
    std::os::unix::fs::symlink("motd.real", d.join("motd")).unwrap();
    let err = refused(&["validate", c.to_str().unwrap()]);
    assert!(
        err.contains("profiles/worker.yaml:3:5: ") && err.contains("motd.real is a FIFO"),
        "{err}"
    );
}

#[test]
fn a_template_that_multiplies_without_bound_is_refused_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let items: Vec<String> = (0..1000).map(|i| format!("\"item-{i:04}\"")).collect();
    let profile = format!("overlays: [big]\nvars:\n  items: [{}]\n", items.join(", "));
    let template = "{{#each @root.vars.items}}{{#each @root.vars.items}}{{#each @root.vars.items}}{{this}}\n{{/each}}{{/each}}{{/each}}";
    let c = cluster(
        d,
        "base.img",
        &profile,
        &[("overlays/big/etc/big.conf.hbs", template)],
    );
    let started = Instant::now();
    let err = refused(&["validate", c.to_str().unwrap()]);
    assert!(
        err.contains("overlays/big/etc/big.conf.hbs: template: renders to more than 16 MiB"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// `{{...}}` writes one line whatever the variable: an untyped `vars:` value (or a
/// `{{join}}` item) holding a line break is refused, naming the template, instead of
/// adding a line to the file; `{{{...}}}` writes a value meant to span lines.
#[test]
fn a_template_value_never_adds_a_line() {
    let cases = [
        (
            "note = {{vars.note}}\n",
            "note: \"a\\nextra = evil\"",
            false,
        ),
        (
            "notes = {{join vars.notes \", \"}}\n",
            "notes: [a, \"b\\nextra = evil\"]",
            false,
        ),
        ("note = {{{vars.note}}}\n", "note: \"a\\nb\"", true),
        ("note = {{vars.note}}\n", "note: \"a\\tb\"", true),
    ];
    for (template, vars, accepted) in cases {
        let dir = tempfile::tempdir().unwrap();
        let profile = format!("overlays: [notes]\nvars:\n  {vars}\n");
        let c = cluster(
            dir.path(),
            "base.img",
            &profile,
            &[("overlays/notes/etc/notes.conf.hbs", template)],
        );
        let args = ["validate", c.to_str().unwrap()];
        if accepted {
            let out = pibake_within(60, &args);
            assert!(
                out.status.success(),
                "{template}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let err = refused(&args);
        assert!(
            err.contains(
                "overlays/notes/etc/notes.conf.hbs: template: a `{{...}}` expression would write"
            ) && err.contains("extra = evil")
                && err.contains("three braces"),
            "{template}: {err}"
        );
    }
}

/// Hashing a large raw base takes a while; Ctrl-C (the build's handler only sets a flag)
/// must stop it at its next read, not after the whole file.
#[test]
fn hashing_a_base_answers_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Sparse: 256 GiB of zeros that take no disk, minutes to hash.
    fs::File::create(d.join("base.img"))
        .unwrap()
        .set_len(256 << 30)
        .unwrap();
    let c = cluster(d, "base.img", "{}\n", &[]);
    let (out, cache) = (d.join("out"), d.join("cache"));
    let child = Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(["build", c.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("--cache-dir")
        .arg(&cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the inventory to load and the handler to be installed.
    std::thread::sleep(Duration::from_secs(2));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = wait_within(child, 20, &["build", "(interrupted)"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("error: interrupted"), "{err}");
    eprintln!("stopped {:?} after Ctrl-C", sent.elapsed());
}

/// Values only the image can check are checked by `validate` whenever the base is
/// there, at the line that says them: a timezone its tzdata lacks, an overlay its boot
/// partition lacks, an admin name one of its accounts has. Without the base, `validate`
/// says what it could not check instead of passing them in silence.
#[test]
fn validate_checks_against_the_base_when_it_is_there() {
    let f = crate::common::Fixture::new(crate::common::Release::Bookworm);
    let base = f.image.to_str().unwrap();
    let cases = [
        (
            "timezone: Mars/Olympus\n",
            "name: pi",
            "profiles/worker.yaml:1:11: timezone `Mars/Olympus`: the image has no /usr/share/zoneinfo/Mars/Olympus",
        ),
        (
            "config:\n  overlays: [no-such-overlay]\n",
            "name: pi",
            "profiles/worker.yaml:2:11: node w1: config.txt: overlay 'no-such-overlay' is not in the image's overlays/ directory",
        ),
        (
            "{}\n",
            "name: root",
            "cluster.yaml:6:9: admin name `root` is already a user of the image (UID 0)",
        ),
    ];
    for (profile, admin, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster(dir.path(), base, profile, &[]);
        let text = fs::read_to_string(&c).unwrap().replace("name: pi", admin);
        fs::write(&c, text).unwrap();
        let err = refused(&["validate", c.to_str().unwrap()]);
        assert!(err.contains(want), "want `{want}`, got:\n{err}");

        // The same cluster without its base validates, and says what waits for it.
        let missing = dir.path().join("missing.img");
        let text = fs::read_to_string(&c)
            .unwrap()
            .replace(base, missing.to_str().unwrap());
        fs::write(&c, text).unwrap();
        let out = pibake_within(60, &["validate", c.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("not checked against the base image"),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
