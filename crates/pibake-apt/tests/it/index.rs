use pibake_apt::index::MultiArch;
use pibake_apt::{AptConfig, parse_packages, parse_status};

#[test]
fn packages_fields() {
    let t = "Package: libfoo1\nSource: foo\nVersion: 1:2.3-4+b1\nInstalled-Size: 120\nMaintainer: X <x@example.org>\nArchitecture: arm64\nMulti-Arch: same\n\
Provides: libfoo-abi (= 2), foo-virtual\nDepends: libc6 (>= 2.34), libbar1 | libbaz1\nPre-Depends: dpkg (>= 1.19)\nRecommends: foo-data\nBreaks: old (<< 1)\nConflicts: other\nReplaces: other (<< 2)\n\
Description: foo\n long text\nPriority: optional\nEssential: yes\nFilename: pool/main/f/foo/libfoo1_2.3-4+b1_arm64.deb\nSize: 4242\n\
SHA256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    let p = &parse_packages(t).unwrap()[0];
    assert_eq!(p.name.as_str(), "libfoo1");
    assert_eq!(p.version.epoch(), 1);
    assert_eq!(p.multi_arch, MultiArch::Same);
    assert!(p.essential);
    assert_eq!(p.priority.as_deref(), Some("optional"));
    assert_eq!(p.depends.len(), 2);
    assert_eq!(p.depends[1].alternatives.len(), 2);
    assert_eq!(p.pre_depends[0].to_string(), "dpkg (>= 1.19)");
    assert_eq!(p.provides[0].version.as_ref().unwrap().as_str(), "2");
    assert_eq!(p.provides[1].version, None);
    assert_eq!(p.breaks[0].to_string(), "old (<< 1)");
    assert_eq!(p.conflicts[0].to_string(), "other");
    assert_eq!(p.replaces[0].to_string(), "other (<< 2)");
    assert_eq!(p.recommends[0].to_string(), "foo-data");
    let d = p.download.as_ref().unwrap();
    assert_eq!(
        (d.filename.as_str(), d.size),
        ("pool/main/f/foo/libfoo1_2.3-4+b1_arm64.deb", 4242)
    );
    assert_eq!(d.sha256[1], 0x11);
    assert_eq!(p.installed_size, Some(120));
}

#[test]
fn packages_refused_with_line() {
    let base =
        "Package: aa\nVersion: 1\nArchitecture: arm64\nSize: 1\nSHA256: {h}\nFilename: {f}\n";
    let h = "ab".repeat(32);
    for bad in [
        "/etc/passwd",
        "pool/../../x.deb",
        "pool//x.deb",
        "pool/x y.deb",
    ] {
        let t = format!(
            "Package: ok\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: {h}\nFilename: pool/o.deb\n\n"
        ) + &base.replace("{h}", &h).replace("{f}", bad);
        let e = parse_packages(&t).unwrap_err();
        assert_eq!(e.line, 13, "{bad}: {e}");
        assert!(e.to_string().contains("unsafe Filename"), "{e}");
    }
    let e = parse_packages(&base.replace("{h}", "zz").replace("{f}", "p/a.deb")).unwrap_err();
    assert_eq!(e.to_string(), "line 5: aa: SHA256: invalid `zz`");
    let e = parse_packages("Package: aa\nVersion: 1\nArchitecture: arm64\nDepends: bb (>= )\n")
        .unwrap_err();
    assert_eq!(e.line, 4);
    let e = parse_packages("Package: aa\nVersion: 1\nArchitecture: arm64\n").unwrap_err();
    assert_eq!(e.to_string(), "line 1: missing field Filename");
}

#[test]
fn status_only_installed() {
    let t = "Package: aa\nStatus: install ok installed\nVersion: 1\nArchitecture: arm64\n\n\
Package: bb\nStatus: install ok half-installed\nVersion: 1\nArchitecture: arm64\n\n\
Package: cc\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: arm64\n\n\
Package: dd\nStatus: hold ok installed\nVersion: 1\nArchitecture: all\n\n\
Package: ee\nStatus: install reinstreq installed\nVersion: 1\nArchitecture: arm64\n\n\
Package: ff\nStatus: install ok unpacked\nVersion: 1\nArchitecture: arm64\n";
    let names: Vec<String> = parse_status(t)
        .unwrap()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(names, ["aa", "dd"]);
    assert_eq!(
        parse_status("Package: aa\nStatus: installed\n")
            .unwrap_err()
            .line,
        2
    );
}

#[test]
fn aptconf_order() {
    let c = AptConfig::from_files([
        (
            "/etc/apt/apt.conf.d/00norecommends",
            "APT { Install-Recommends \"false\"; };",
        ),
        (
            "/etc/apt/apt.conf.d/50raspi",
            "Acquire::Languages \"none\";\n",
        ),
    ])
    .unwrap();
    assert!(!c.install_recommends);
    let c = AptConfig::from_files([
        ("10", "APT::Install-Recommends \"0\";"),
        ("20", "APT::Install-Recommends \"1\";"),
    ])
    .unwrap();
    assert!(c.install_recommends);
    let e = AptConfig::from_files([(
        "/etc/apt/apt.conf.d/x",
        "APT::Install-Recommends \"false\"\nFoo \"1\";",
    )])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/apt/apt.conf.d/x:1: expected `;` after `APT::Install-Recommends \"false\"`"
    );
}
