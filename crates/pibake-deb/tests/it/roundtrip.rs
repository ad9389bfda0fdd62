//! Packages built by `dpkg-deb` read back identically to dpkg-deb's own extraction.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use pibake_deb::{DataEntry, Deb, DebError, EntryKind};
use tempfile::TempDir;

use crate::craft;
use crate::fixture::{self, EPOCH, build, full_tree, run};
use crate::listing::{self, Listed};

const LABEL: &str = "pibake-fixture_1.0-1_all.deb";

/// The [`DebError`] inside an `io::Error` from a body reader.
pub fn deb_error(error: io::Error) -> DebError {
    *error
        .into_inner()
        .expect("a body error wraps a DebError")
        .downcast::<DebError>()
        .unwrap()
}

/// Every data entry with its body, read through the visitor.
pub fn entries(deb: &Deb<'_>) -> Result<Vec<(DataEntry, Vec<u8>)>, DebError> {
    let mut out = Vec::new();
    deb.each_data_entry(|entry, body| {
        let mut data = Vec::new();
        body.read_to_end(&mut data).map_err(deb_error)?;
        out.push((entry.clone(), data));
        Ok::<(), DebError>(())
    })?;
    Ok(out)
}

fn find<'e>(entries: &'e [(DataEntry, Vec<u8>)], path: &str) -> &'e DataEntry {
    &entries
        .iter()
        .find(|(e, _)| e.path.as_str() == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .0
}

/// The data archive against `dpkg-deb --fsys-tarfile | tar -tv` and `dpkg-deb -x`.
fn compare_data(deb: &Deb<'_>, path: &Path) -> Vec<(DataEntry, Vec<u8>)> {
    let entries = entries(deb).unwrap();
    let ours: Vec<Listed> = entries.iter().map(|(e, _)| Listed::from_entry(e)).collect();
    assert_eq!(ours, listing::data(path));
    let out = TempDir::new().unwrap();
    run(
        Command::new("dpkg-deb").arg("-x").arg(path).arg(out.path()),
        None,
    );
    for (entry, data) in &entries {
        if entry.kind == EntryKind::File {
            let on_disk = fs::read(out.path().join(&entry.path.as_str()[1..])).unwrap();
            assert!(on_disk == *data, "{} differs from dpkg-deb -x", entry.path);
            assert_eq!(entry.size, data.len() as u64);
        } else {
            assert!(
                data.is_empty() && entry.size == 0,
                "{} has a body",
                entry.path
            );
        }
    }
    entries
}

/// The control archive against `dpkg-deb --ctrl-tarfile | tar -tv` and `dpkg-deb -e`.
fn compare_control(deb: &Deb<'_>, path: &Path) {
    let control = deb.control().unwrap();
    let listed: Vec<(String, u32, u64)> = listing::control(path)
        .into_iter()
        .filter(|l| l.path != "/")
        .map(|l| (l.path[1..].to_owned(), l.mode.into(), l.size))
        .collect();
    let ours: Vec<(String, u32, u64)> = control
        .iter()
        .map(|m| (m.name.clone(), m.mode, m.data.len() as u64))
        .collect();
    assert_eq!(ours, listed);
    let out = TempDir::new().unwrap();
    let dir = out.path().join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(path).arg(&dir), None);
    for member in &control {
        assert_eq!(
            member.data,
            fs::read(dir.join(&member.name)).unwrap(),
            "{}",
            member.name
        );
    }
    let names: Vec<&str> = control.iter().map(|m| m.name.as_str()).collect();
    for name in ["control", "conffiles", "preinst", "postinst"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

/// The fixture's tricky entries came through with their kinds and mode bits.
fn check_fixture(entries: &[(DataEntry, Vec<u8>)]) {
    assert!(find(entries, "/").path.is_root());
    assert_eq!(
        (
            find(entries, "/usr/bin/tool").mode,
            find(entries, "/usr/bin/tool").size
        ),
        (0o4755, 5000)
    );
    assert_eq!(find(entries, "/usr/share/fixture/setgid").mode, 0o2755);
    assert_eq!(find(entries, "/var/sticky").mode, 0o1777);
    assert_eq!(find(entries, "/usr/share/fixture/big").size, 1 << 20);
    assert_eq!(
        find(entries, "/usr/bin/tool-link").kind,
        EntryKind::Symlink {
            target: "tool".into()
        }
    );
    let long = format!("/{}", fixture::long_path());
    assert!(long.len() > 100);
    assert_eq!(find(entries, &long).kind, EntryKind::File);
    let long_link = find(entries, "/usr/share/fixture/long-link");
    assert_eq!(long_link.kind, EntryKind::Symlink { target: long });
    let EntryKind::HardLink { target } = &find(entries, "/usr/lib/fixture/second").kind else {
        panic!("the hard link pair was not kept as a hard link");
    };
    assert_eq!(target.as_str(), "/usr/lib/fixture/first");
    assert!(
        entries
            .iter()
            .all(|(e, _)| e.mtime == EPOCH && e.uid == 0 && e.gid == 0)
    );
    assert!(
        entries
            .iter()
            .all(|(e, _)| e.uname.as_deref() == Some("root"))
    );
}

fn roundtrip(compression: &str, suffix: &str) {
    let built = build(full_tree, compression, true);
    let names: Vec<String> = craft::ar_members(&built.bytes)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "debian-binary",
            &format!("control.tar{suffix}"),
            &format!("data.tar{suffix}")
        ]
    );
    let deb = Deb::parse(LABEL, &built.bytes).unwrap();
    assert_eq!(deb.label(), LABEL);
    compare_control(&deb, &built.path);
    let entries = compare_data(&deb, &built.path);
    check_fixture(&entries);
}

#[test]
fn xz_package_reads_like_dpkg_deb() {
    roundtrip("xz", ".xz");
}

#[test]
fn gzip_package_reads_like_dpkg_deb() {
    roundtrip("gzip", ".gz");
}

#[test]
fn zstd_package_reads_like_dpkg_deb() {
    roundtrip("zstd", ".zst");
}

#[test]
fn uncompressed_package_reads_like_dpkg_deb() {
    roundtrip("none", "");
}

/// The full tree with owners other than root, some with names on this system, some not.
fn owned_tree(root: &Path) {
    full_tree(root);
    let chown = |path: &str, id: u32| {
        std::os::unix::fs::lchown(root.join(path), Some(id), Some(id + 1)).unwrap()
    };
    chown("usr/bin/tool", 1);
    chown("usr/bin/tool-link", 2);
    chown("usr/share/fixture/big", 4242);
    chown("var/sticky", 60_000);
}

#[test]
fn owners_and_owner_names_read_like_dpkg_deb() {
    let probe = tempfile::NamedTempFile::new().unwrap();
    if std::os::unix::fs::chown(probe.path(), Some(4242), None).is_err() {
        eprintln!("skipped: changing owners needs root");
        return;
    }
    let built = build(owned_tree, "xz", false);
    let deb = Deb::parse(LABEL, &built.bytes).unwrap();
    let entries = compare_data(&deb, &built.path);
    let big = find(&entries, "/usr/share/fixture/big");
    assert_eq!((big.uid, big.gid), (4242, 4243));
    assert_eq!(
        (
            find(&entries, "/var/sticky").uid,
            find(&entries, "/usr/bin/tool").gid
        ),
        (60_000, 2)
    );
}

#[test]
fn gnu_member_names_and_underscore_members_are_accepted() {
    let built = build(full_tree, "xz", true);
    let members = craft::ar_members(&built.bytes);
    let data = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .as_slice()
    };
    let rebuilt = craft::ar(&[
        ("debian-binary/", data("debian-binary")),
        ("_gpgbuilder", b"odd length"),
        ("control.tar.xz/", data("control.tar.xz")),
        ("_extra", b"x"),
        ("data.tar.xz/", data("data.tar.xz")),
        ("_trailer", b"ignored"),
    ]);
    let original = entries(&Deb::parse(LABEL, &built.bytes).unwrap()).unwrap();
    let deb = Deb::parse(LABEL, &rebuilt).unwrap();
    assert_eq!(entries(&deb).unwrap(), original);
    assert_eq!(
        deb.control().unwrap(),
        Deb::parse(LABEL, &built.bytes).unwrap().control().unwrap()
    );
}

#[test]
fn unread_bodies_are_skipped() {
    let built = build(full_tree, "gzip", true);
    let deb = Deb::parse(LABEL, &built.bytes).unwrap();
    let mut seen = Vec::new();
    deb.each_data_entry(|entry, body| {
        // Read a little of the big file only; the walk must still land on the next header.
        if entry.path.as_str() == "/usr/share/fixture/big" {
            body.read_exact(&mut [0u8; 10]).map_err(deb_error)?;
        }
        seen.push(entry.path.to_string());
        Ok::<(), DebError>(())
    })
    .unwrap();
    let all: Vec<String> = entries(&deb)
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.path.to_string())
        .collect();
    assert_eq!(seen, all);
}
