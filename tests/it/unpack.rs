//! Packages unpacked at build time: a package pibake cannot unpack safely is refused by
//! its file name, with the reason, and no node is written under its final name; a
//! package with a conffile and a trigger is left as `dpkg --unpack` leaves it.
//! The `.deb`s here are crafted byte by byte (ar and tar written by hand) or built by
//! `dpkg-deb`; every image built is e2fsck-clean.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::aptrepo::{self, Deb};
use crate::common::{Fixture, Release, e2fsck_clean, pibake_build_run, test_key, tool};
use crate::httpd::Httpd;

const FILE: &str = "hello-pibake_1.0-1_arm64.deb";
const CONTROL: &str = "Package: hello-pibake\nVersion: 1.0-1\nArchitecture: arm64\nMaintainer: Test <test@example.org>\nDescription: pibake test package\n";

/// One ustar entry: path, type flag (`0` file, `2` symlink, `3` char device, `5`
/// directory), link target, content.
struct Entry<'a>(&'a str, u8, &'a str, &'a [u8]);

fn file<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry(path, b'0', "", data)
}

fn dir(path: &str) -> Entry<'_> {
    Entry(path, b'5', "", b"")
}

/// A ustar archive of `entries`, ended by two zero blocks.
fn tar(entries: &[Entry]) -> Vec<u8> {
    fn put(h: &mut [u8], at: usize, bytes: &[u8]) {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn octal(h: &mut [u8], at: usize, width: usize, v: u64) {
        put(h, at, format!("{v:0w$o}\0", w = width - 1).as_bytes());
    }
    let mut out = Vec::new();
    for Entry(path, kind, link, data) in entries {
        let mut h = [0u8; 512];
        put(&mut h, 0, path.as_bytes());
        octal(&mut h, 100, 8, if *kind == b'0' { 0o644 } else { 0o755 });
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_700_000_000);
        put(&mut h, 148, b"        ");
        h[156] = *kind;
        put(&mut h, 157, link.as_bytes());
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        put(&mut h, 265, b"root");
        put(&mut h, 297, b"root");
        octal(&mut h, 329, 8, if *kind == b'3' { 1 } else { 0 });
        octal(&mut h, 337, 8, if *kind == b'3' { 3 } else { 0 });
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An `ar` archive as dpkg-deb writes one: magic, 60-byte headers, even padding.
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            "100644",
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// `bytes` compressed by the `xz` tool.
fn xz(bytes: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.tar");
    fs::write(&path, bytes).unwrap();
    let out = tool("xz").arg("-c").arg(&path).output().unwrap();
    assert!(out.status.success(), "xz failed");
    out.stdout
}

/// `hello-pibake` 1.0-1 whose `bytes` are the package file.
fn deb(bytes: Vec<u8>) -> Deb {
    Deb {
        name: "hello-pibake".into(),
        version: "1.0-1".into(),
        control: CONTROL.into(),
        bytes,
    }
}

/// A well-formed container (proper control archive) around the data member `data`.
fn crafted(data_name: &str, data: &[u8]) -> Deb {
    deb(container(CONTROL, data_name, data))
}

fn container(control: &str, data_name: &str, data: &[u8]) -> Vec<u8> {
    let control = tar(&[dir("./"), file("./control", control.as_bytes())]);
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control),
        (data_name, data),
    ])
}

/// A base listing a repository (signed by a key it trusts) that serves `debs`, after
/// `prepare` ran on the fixture.
fn serve(debs: &[&Deb], prepare: impl FnOnce(&Fixture)) -> (Httpd, Fixture) {
    let key = aptrepo::keygen();
    let files = aptrepo::files(debs, &key);
    let server = Httpd::start(files.iter().map(|(p, b)| (p.as_str(), b.clone())));
    let f = Fixture::new(Release::Bookworm);
    let sources = format!("deb {} bookworm main\n", server.url("/debian"));
    aptrepo::install_apt(&f, &sources, &aptrepo::armored_public(&key));
    prepare(&f);
    (server, f)
}

/// `pibake build` of two `app` nodes whose profile asks for `hello-pibake`.
fn build(work: &Path, base: &Path) -> Output {
    fs::create_dir_all(work.join("profiles")).unwrap();
    fs::write(
        work.join("profiles/app.yaml"),
        "packages: [hello-pibake]\ninstall_recommends: false\n",
    )
    .unwrap();
    let cluster = work.join("cluster.yaml");
    fs::write(
        &cluster,
        format!(
            "cluster: pkgs\nbase: {}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles:\n  app: {{}}\nnodes:\n  - {{ name: \"app[1-2]\", role: app }}\n",
            base.display(),
            test_key()
        ),
    )
    .unwrap();
    pibake_build_run(work, &cluster, &work.join("out"), &[])
}

/// The build of a role asking for `debs` fails, naming the package file and saying
/// `reason`; no node file exists under a final name, and the base is untouched.
fn refused(debs: &[&Deb], reason: &[&str]) {
    let (_server, f) = serve(debs, |_| {});
    let before = fs::read(&f.image).unwrap();
    let work = tempfile::tempdir().unwrap();
    let o = build(work.path(), &f.image);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the build should have failed:\n{err}");
    assert!(err.contains(FILE), "the package is not named:\n{err}");
    for word in reason {
        assert!(err.contains(word), "`{word}` is not in:\n{err}");
    }
    let out = work.path().join("out");
    let visible: Vec<String> = fs::read_dir(&out)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    // The role's layer fails before any node is built: nothing but the directory's
    // lock file (hidden) is there, no `app1.img` or `app2.img` above all.
    assert!(visible.is_empty(), "outputs left: {visible:?}");
    for node in ["app1", "app2"] {
        assert!(!out.join(format!("{node}.img")).exists(), "{node}.img");
    }
    assert!(
        fs::read(&f.image).unwrap() == before,
        "the base image changed"
    );
    f.assert_clean();
}

#[test]
fn a_file_that_is_not_an_ar_archive_is_refused() {
    refused(
        &[&deb(b"this is not a deb\n".to_vec())],
        &["not a Debian package"],
    );
}

#[test]
fn a_truncated_data_archive_is_refused() {
    let payload: Vec<u8> = (0..64 << 10).map(|i: u32| (i * 7 % 251) as u8).collect();
    let data = tar(&[
        dir("./"),
        dir("./usr/"),
        dir("./usr/share/"),
        file("./usr/share/hello", &payload),
    ]);
    let whole = xz(&data);
    let half = &whole[..whole.len() / 2];
    refused(
        &[&crafted("data.tar.xz", half)],
        &["data.tar.xz", "premature eof"],
    );
}

#[test]
fn a_path_with_dot_dot_is_refused() {
    let data = tar(&[
        dir("./"),
        dir("./usr/"),
        file("./usr/../../etc/passwd", b"root::0:0::/:/bin/sh\n"),
    ]);
    refused(
        &[&crafted("data.tar", &data)],
        &["`..`", "./usr/../../etc/passwd"],
    );
}

#[test]
fn a_file_written_through_the_package_s_own_symlink_is_refused() {
    let data = tar(&[
        dir("./"),
        dir("./usr/"),
        dir("./usr/share/"),
        Entry("./usr/share/x", b'2', "../../../../etc", b""),
        file("./usr/share/x/passwd", b"root::0:0::/:/bin/sh\n"),
    ]);
    refused(
        &[&crafted("data.tar", &data)],
        &["symlink", "/usr/share/x/passwd"],
    );
}

#[test]
fn a_character_device_is_refused() {
    let data = tar(&[dir("./"), dir("./dev/"), Entry("./dev/foo", b'3', "", b"")]);
    refused(
        &[&crafted("data.tar", &data)],
        &["/dev/foo", "character device"],
    );
}

/// The doc of pibake's writer: "Symlinks this package set made: nothing is written
/// through them". Here the set's first package (a dependency) makes the symlink and the
/// second writes through it, which lands outside `/usr` (in `/etc`).
#[test]
fn a_file_written_through_another_package_s_symlink_is_refused() {
    let lib_control = "Package: libpibake1\nVersion: 1.0-1\nArchitecture: arm64\nMaintainer: Test <test@example.org>\nDescription: pibake test library\n";
    let lib = Deb {
        name: "libpibake1".into(),
        version: "1.0-1".into(),
        control: lib_control.into(),
        bytes: container(
            lib_control,
            "data.tar",
            &tar(&[
                dir("./"),
                dir("./usr/"),
                dir("./usr/share/"),
                Entry("./usr/share/x", b'2', "../../etc", b""),
            ]),
        ),
    };
    let hello_control = CONTROL.replace("Description:", "Depends: libpibake1\nDescription:");
    let hello = Deb {
        control: hello_control.clone(),
        ..deb(container(
            &hello_control,
            "data.tar",
            &tar(&[
                dir("./"),
                dir("./usr/"),
                dir("./usr/share/"),
                file("./usr/share/x/pibake-through", b"written through\n"),
            ]),
        ))
    };
    refused(&[&hello, &lib], &["symlink", "/usr/share/x/pibake-through"]);
}

/// A real `.deb` built by dpkg-deb from `files` (under the root) and the control
/// members `members` (besides `control`).
fn dpkg_deb(files: &[(&str, &[u8])], members: &[(&str, &str)]) -> Deb {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(root.join("DEBIAN/control"), CONTROL).unwrap();
    for (name, text) in members {
        fs::write(root.join("DEBIAN").join(name), text).unwrap();
    }
    for (path, data) in files {
        let at = root.join(path);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        fs::write(at, data).unwrap();
    }
    deb(aptrepo::dpkg_deb_build(&root))
}

/// debugfs's standard output for `request` on the root at `offset` of `image`.
fn debugfs(image: &Path, offset: u64, request: &str) -> String {
    let out = tool("debugfs")
        .args([
            "-R",
            request,
            &format!("{}?offset={offset}", image.display()),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_conffile_and_a_trigger_are_left_as_dpkg_unpack_leaves_them() {
    let conf = b"setting = 1\n";
    let hello = dpkg_deb(
        &[("etc/pibake-test.conf", conf)],
        &[
            ("conffiles", "/etc/pibake-test.conf\n"),
            ("triggers", "activate-noawait ldconfig\n"),
        ],
    );
    // libc-bin's interest in `ldconfig`, as every Debian root has it.
    let (_server, f) = serve(&[&hello], |f| {
        let dir = tempfile::tempdir().unwrap();
        let interest = dir.path().join("ldconfig");
        fs::write(&interest, "libc-bin\n").unwrap();
        let cmds = dir.path().join("cmds");
        fs::write(
            &cmds,
            format!(
                "mkdir /var/lib/dpkg/triggers\nwrite {} /var/lib/dpkg/triggers/ldconfig\n",
                interest.display()
            ),
        )
        .unwrap();
        let out = tool("debugfs")
            .args(["-w", "-f", cmds.to_str().unwrap(), &f.ext4_target()])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            f.debugfs("cat /var/lib/dpkg/triggers/ldconfig"),
            "libc-bin\n"
        );
        f.assert_clean();
    });
    let work = tempfile::tempdir().unwrap();
    let o = build(work.path(), &f.image);
    assert!(
        o.status.success(),
        "pibake failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for node in ["app1", "app2"] {
        let img = work.path().join(format!("out/{node}.img"));
        e2fsck_clean(&img, f.root_offset);
        let d = |r: &str| debugfs(&img, f.root_offset, r);
        assert_eq!(d("cat /etc/pibake-test.conf.dpkg-new").as_bytes(), conf);
        assert_eq!(
            d("stat /etc/pibake-test.conf"),
            "",
            "{node}: the conffile keeps its .dpkg-new name until configure"
        );
        let status = d("cat /var/lib/dpkg/status");
        let record = status
            .split("\n\n")
            .find(|r| r.starts_with("Package: hello-pibake\n"))
            .unwrap_or_else(|| panic!("{node}: no record:\n{status}"));
        assert_eq!(
            record,
            "Package: hello-pibake\nStatus: install ok unpacked\nMaintainer: Test <test@example.org>\nArchitecture: arm64\nVersion: 1.0-1\nConffiles:\n /etc/pibake-test.conf newconffile\nDescription: pibake test package"
        );
        assert_eq!(
            d("cat /var/lib/dpkg/info/hello-pibake.conffiles"),
            "/etc/pibake-test.conf\n"
        );
        assert_eq!(
            d("cat /var/lib/dpkg/info/hello-pibake.triggers"),
            "activate-noawait ldconfig\n"
        );
        // The list names the conffile by its real name, as dpkg's does.
        assert_eq!(
            d("cat /var/lib/dpkg/info/hello-pibake.list"),
            "/.\n/etc\n/etc/pibake-test.conf\n"
        );
        assert_eq!(d("cat /var/lib/dpkg/triggers/Unincorp"), "ldconfig -\n");
        assert_eq!(
            d("cat /var/lib/dpkg/triggers/ldconfig"),
            "libc-bin\n",
            "{node}: the interest is the base's, unchanged"
        );
    }
}
