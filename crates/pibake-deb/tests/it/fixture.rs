//! Package trees on disk and `dpkg-deb --build` over them.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Every mtime dpkg-deb writes is clamped to this (`SOURCE_DATE_EPOCH`).
pub const EPOCH: i64 = 1_700_000_000;

/// A path longer than the 100 bytes a plain tar header holds: GNU long name entries.
pub fn long_path() -> String {
    format!("usr/share/fixture/{}/{}", "d".repeat(70), "f".repeat(60))
}

/// `cmd` run to completion; panics with a clear message when the tool is missing or fails.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let program = format!("{:?}", cmd.get_program());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("these tests need {program} (from the dpkg and tar packages), but it could not be run: {e}")
    });
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || pipe.write_all(&bytes))
    });
    let out = child.wait_with_output().unwrap();
    if let Some(writer) = writer {
        writer.join().unwrap().unwrap();
    }
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deterministic filler bytes (xorshift), so content comparisons see varied data.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn write(root: &Path, path: &str, data: &[u8], mode: u32) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(root: &Path, path: &str, mode: u32) {
    let path = root.join(path);
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The control directory every fixture shares: a conffile and two maintainer scripts.
fn debian_dir(root: &Path) {
    mkdir(root, "", 0o755);
    mkdir(root, "DEBIAN", 0o755);
    let control = "Package: pibake-fixture\nVersion: 1.0-1\nArchitecture: all\n\
                   Maintainer: Nobody <nobody@example.org>\nDescription: pibake-deb test fixture\n";
    write(root, "DEBIAN/control", control.as_bytes(), 0o644);
    write(root, "DEBIAN/conffiles", b"/etc/fixture.conf\n", 0o644);
    write(
        root,
        "DEBIAN/preinst",
        b"#!/bin/sh\nset -e\nexit 0\n",
        0o755,
    );
    write(
        root,
        "DEBIAN/postinst",
        b"#!/bin/sh\nset -e\n# configure\n",
        0o755,
    );
    write(root, "etc/fixture.conf", b"key = value\n", 0o644);
}

/// Every kind and mode bit pibake unpacks: setuid file, setgid and sticky directories,
/// symlinks (one with a target over 100 bytes), a hard link pair, an empty file, a
/// GNU long name and a 1 MiB file to stream.
pub fn full_tree(root: &Path) {
    debian_dir(root);
    write(root, "usr/bin/tool", &noise(5000, 1), 0o4755);
    symlink("tool", root.join("usr/bin/tool-link")).unwrap();
    write(
        root,
        "usr/lib/fixture/first",
        b"one inode, two names\n",
        0o640,
    );
    fs::hard_link(
        root.join("usr/lib/fixture/first"),
        root.join("usr/lib/fixture/second"),
    )
    .unwrap();
    mkdir(root, "usr/share/fixture/setgid", 0o2755);
    write(root, "usr/share/fixture/empty", b"", 0o600);
    write(root, "usr/share/fixture/big", &noise(1 << 20, 2), 0o644);
    write(root, &long_path(), b"long name\n", 0o644);
    symlink(
        format!("/{}", long_path()),
        root.join("usr/share/fixture/long-link"),
    )
    .unwrap();
    mkdir(root, "var/sticky", 0o1777);
}

/// A few small entries of each kind, for the fuzz loop (fast to decompress).
pub fn small_tree(root: &Path) {
    debian_dir(root);
    write(root, "usr/bin/tool", &noise(700, 3), 0o4755);
    symlink("tool", root.join("usr/bin/tool-link")).unwrap();
    write(root, "usr/lib/first", b"linked\n", 0o644);
    fs::hard_link(root.join("usr/lib/first"), root.join("usr/lib/second")).unwrap();
    write(root, &long_path(), b"long name\n", 0o644);
}

/// A package built from a tree, kept on disk for the reference tools.
pub struct Built {
    _dir: TempDir,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Builds a tree made by `make` with `dpkg-deb -Z<compression>`.
pub fn build(make: fn(&Path), compression: &str, root_owner_group: bool) -> Built {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("root");
    make(&root);
    let path = dir.path().join("fixture.deb");
    let mut cmd = Command::new("dpkg-deb");
    cmd.env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .arg("--build");
    if root_owner_group {
        cmd.arg("--root-owner-group");
    }
    run(
        cmd.arg(format!("-Z{compression}")).arg(&root).arg(&path),
        None,
    );
    let bytes = fs::read(&path).unwrap();
    Built {
        _dir: dir,
        path,
        bytes,
    }
}
