use pibake_apt::resolve::{Removal, Repository, Resolution, ResolveError, ResolveInput, resolve};
use pibake_apt::{PackageRequest, Version, parse_packages, parse_status};

use crate::para;

struct Fx {
    repos: Vec<Repository>,
    installed: Vec<pibake_apt::Package>,
    recommends: bool,
}

impl Fx {
    fn new(indices: &[&str]) -> Self {
        Fx {
            repos: indices
                .iter()
                .enumerate()
                .map(|(i, t)| Repository {
                    id: format!("repo{i}"),
                    packages: parse_packages(t).unwrap(),
                })
                .collect(),
            installed: Vec::new(),
            recommends: false,
        }
    }
    fn status(mut self, s: &str) -> Self {
        self.installed = parse_status(s).unwrap();
        self
    }
    fn recommends(mut self, on: bool) -> Self {
        self.recommends = on;
        self
    }
    fn run(&self, reqs: &[&str]) -> Result<Resolution, ResolveError> {
        let reqs: Vec<PackageRequest> = reqs.iter().map(|r| r.parse().unwrap()).collect();
        resolve(
            &reqs,
            ResolveInput {
                repositories: &self.repos,
                installed: &self.installed,
                native_arch: "arm64",
                install_recommends: self.recommends,
            },
        )
    }
    fn names(&self, reqs: &[&str]) -> Vec<String> {
        self.run(reqs)
            .unwrap()
            .packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }
}

fn status_para(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: arm64\n{extra}\n\n"
    )
}

#[test]
fn simple_chain_dependency_order() {
    let idx = [
        para("app", "1.0", "Depends: libfoo (>= 1.0), libbar"),
        para("libfoo", "1.2", "Depends: libc6"),
        para("libbar", "2.0", "Pre-Depends: libc6"),
        para("libc6", "2.36", ""),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    assert_eq!(
        fx.names(&["app"]),
        ["libc6=2.36", "libfoo=1.2", "libbar=2.0", "app=1.0"]
    );
    let r = fx.run(&["app"]).unwrap();
    assert_eq!(r.packages[0].needed_by, ["app", "libfoo"]);
    assert_eq!(
        r.packages[0].filename.as_str(),
        "pool/main/l/libc6/libc6_2.36_arm64.deb"
    );
    assert_eq!(r.packages[0].repository, "repo0");
    // Deterministic: same input, same output.
    assert_eq!(fx.run(&["app"]).unwrap(), r);
}

#[test]
fn alternatives_in_order_prefer_installed_or_chosen() {
    let idx = [
        para("app", "1", "Depends: mta-a | mta-b"),
        para("other", "1", "Depends: mta-b"),
        para("mta-a", "1", ""),
        para("mta-b", "1", ""),
        para("app2", "1", "Depends: missing | mta-b"),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    assert_eq!(fx.names(&["app"]), ["mta-a=1", "app=1"]);
    // Already chosen earlier: `other` is processed first and pulls mta-b.
    assert_eq!(fx.names(&["other", "app"]), ["mta-b=1", "other=1", "app=1"]);
    assert_eq!(fx.names(&["app2"]), ["mta-b=1", "app2=1"]);
    // Installed alternative wins.
    let fx = Fx::new(&[&idx]).status(&status_para("mta-b", "1", ""));
    assert_eq!(fx.names(&["app"]), ["app=1"]);
}

#[test]
fn virtual_and_versioned_provides() {
    let idx = [
        para("app", "1", "Depends: mail-transport-agent"),
        para(
            "exim4",
            "4.96",
            "Provides: mail-transport-agent\nPriority: standard",
        ),
        para(
            "postfix",
            "3.7",
            "Provides: mail-transport-agent\nPriority: optional",
        ),
        para("vapp", "1", "Depends: libvirt-api (>= 2)"),
        para("impl-old", "1", "Provides: libvirt-api (= 1)"),
        para("impl-unver", "1", "Provides: libvirt-api"),
        para("impl-new", "1", "Provides: libvirt-api (= 2.5)"),
        para("uapp", "1", "Depends: only-unver (>= 1)"),
        para("unver", "1", "Provides: only-unver"),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    // Higher priority provider wins.
    assert_eq!(fx.names(&["app"]), ["exim4=4.96", "app=1"]);
    // Versioned dependency: only a versioned provide that satisfies it.
    assert_eq!(fx.names(&["vapp"]), ["impl-new=1", "vapp=1"]);
    // Unversioned provide never satisfies a versioned dependency.
    let e = fx.run(&["uapp"]).unwrap_err();
    assert!(matches!(e, ResolveError::Unsatisfiable { .. }), "{e}");
    assert!(e.to_string().contains("provided by unver 1"), "{e}");
    // Requesting a virtual package with several providers is ambiguous.
    let e = fx.run(&["mail-transport-agent"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`mail-transport-agent` is a virtual package provided by exim4, postfix; request one of them"
    );
    // With one provider it is selected.
    assert_eq!(fx.names(&["only-unver"]), ["unver=1"]);
}

#[test]
fn version_relations_and_highest_version_across_repos() {
    let r1 = [
        para("lib", "1.0-1", ""),
        para("tool", "2.0", "Depends: lib (>= 1.0-1+b1)"),
    ]
    .concat();
    let r2 = [para("lib", "1.0-1+b1", ""), para("tool", "1:0.1", "")].concat();
    let fx = Fx::new(&[&r1, &r2]);
    // 1:0.1 > 2.0 thanks to the epoch; it comes from repo1.
    let r = fx.run(&["tool"]).unwrap();
    assert_eq!(r.packages.len(), 1);
    assert_eq!(
        (
            r.packages[0].version.as_str(),
            r.packages[0].repository.as_str()
        ),
        ("1:0.1", "repo1")
    );
    // Pin the older one: its dependency needs the +b1 rebuild from repo1.
    let r = fx.run(&["tool=2.0"]).unwrap();
    let got: Vec<(String, String)> = r
        .packages
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                format!("{}@{}", p.version, p.repository),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("lib".into(), "1.0-1+b1@repo1".into()),
            ("tool".into(), "2.0@repo0".into())
        ]
    );
    // Ties go to the first repository.
    let fx = Fx::new(&[&para("same", "1", ""), &para("same", "1", "")]);
    assert_eq!(fx.run(&["same"]).unwrap().packages[0].repository, "repo0");
    // Pin to a missing version.
    let e = fx.run(&["same=2"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "same=2: no candidate satisfies `same=2`; available: 1"
    );
}

#[test]
fn multi_arch() {
    let idx = [
        para("app", "1", "Depends: python3:any, perl:any, tzdata, libx"),
        para("python3", "3.11", "Multi-Arch: allowed"),
        para("perl", "5.36", ""),
        para("tzdata", "2024a", "Architecture: all\nMulti-Arch: foreign"),
        para("libx", "1", "Multi-Arch: same"),
        // armhf packages (e.g. a second index for a foreign architecture).
        para(
            "armapp",
            "1",
            "Architecture: armhf\nDepends: tzdata, libx, python3:any",
        ),
        para("libx", "1", "Architecture: armhf\nMulti-Arch: same"),
        para("nolib", "1", "Architecture: armhf\nDepends: perl"),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    // perl is not Multi-Arch: allowed, so perl:any fails.
    let e = fx.run(&["app"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "app -> perl:any: no candidate satisfies `perl:any`; available: 5.36"
    );
    let idx2 = idx.replace("perl:any, ", "");
    let fx = Fx::new(&[&idx2]);
    assert_eq!(
        fx.names(&["app"]),
        ["python3=3.11", "tzdata=2024a", "libx=1", "app=1"]
    );
    // armhf package: foreign tzdata (arch all = native) satisfies it, libx must be armhf,
    // python3:any is satisfied by the native python3.
    let r = fx.run(&["armapp:armhf"]).unwrap();
    let got: Vec<String> = r
        .packages
        .iter()
        .map(|p| format!("{}:{}", p.name, p.architecture))
        .collect();
    assert_eq!(
        got,
        ["tzdata:all", "libx:armhf", "python3:arm64", "armapp:armhf"]
    );
    // A non-foreign native package does not satisfy an armhf package's dependency.
    let e = fx.run(&["nolib:armhf"]).unwrap_err();
    assert!(
        e.to_string().starts_with("nolib -> perl: no candidate"),
        "{e}"
    );
}

#[test]
fn essential_and_installed_are_not_refetched() {
    let idx = [
        para("app", "1", "Depends: libc6 (>= 2.30), bash"),
        para("libc6", "2.36-9", ""),
        para("bash", "5.2", "Essential: yes"),
    ]
    .concat();
    let status = [
        status_para("libc6", "2.36-9", ""),
        status_para("bash", "5.2", "Essential: yes"),
        // Not really installed: must not count.
        "Package: half\nStatus: install reinstreq half-installed\nVersion: 1\nArchitecture: arm64\n\n".to_string(),
    ]
    .concat();
    let fx = Fx::new(&[&idx]).status(&status);
    assert_eq!(fx.names(&["app"]), ["app=1"]);
    let r = fx.run(&["app", "bash"]).unwrap();
    assert_eq!(r.already_installed, ["bash"]);
    assert_eq!(fx.installed.len(), 2);
}

#[test]
fn upgrade_of_installed_package() {
    let idx = [
        para("app", "2", "Depends: libfoo (>= 1.5)"),
        para("libfoo", "1.6", ""),
    ]
    .concat();
    let fx = Fx::new(&[&idx]).status(&status_para("libfoo", "1.2", ""));
    let r = fx.run(&["app"]).unwrap();
    assert_eq!(r.packages[0].name.as_str(), "libfoo");
    assert_eq!(r.packages[0].upgrade_from.as_ref().unwrap().as_str(), "1.2");
    assert_eq!(r.packages[1].upgrade_from, None);
    // Installed newer than the archive: the installed one is the candidate.
    let fx = Fx::new(&[&idx]).status(&status_para("libfoo", "9", ""));
    assert_eq!(fx.names(&["app"]), ["app=2"]);
    // Requested and installed at an older version: upgraded.
    let fx = Fx::new(&[&idx]).status(&status_para("app", "1", ""));
    let r = fx.run(&["app"]).unwrap();
    assert_eq!(
        r.packages
            .iter()
            .find(|p| p.name.as_str() == "app")
            .unwrap()
            .upgrade_from
            .as_ref()
            .unwrap()
            .as_str(),
        "1"
    );
}

#[test]
fn recommends_on_and_off() {
    let idx = [
        para("app", "1", "Recommends: helper, ghost"),
        para("helper", "1", "Recommends: app"),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    assert_eq!(fx.names(&["app"]), ["app=1"]);
    let fx = fx.recommends(true);
    let r = fx.run(&["app"]).unwrap();
    let names: Vec<&str> = r.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["app", "helper"]);
    assert_eq!(r.skipped_recommends, ["app: ghost"]);
}

#[test]
fn conflicts_and_breaks() {
    let idx = [
        para("aa", "1", "Conflicts: bb"),
        para("bb", "1", ""),
        para("cc", "1", "Breaks: dd (<< 2)"),
        para("dd", "1", ""),
        para("ee", "1", "Conflicts: virt"),
        para("ff", "1", "Provides: virt"),
        para("gg", "1", "Conflicts: gg, virt2\nProvides: virt2"),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    let e = fx.run(&["aa", "bb"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`aa 1` conflicts with `bb 1` (Conflicts: bb)"
    );
    let fx2 = Fx::new(&[&idx]).status(&status_para("dd", "1", ""));
    let e = fx2.run(&["cc"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`cc 1` breaks `dd 1` (installed) (Breaks: dd (<< 2))"
    );
    let e = fx.run(&["ee", "ff"]).unwrap_err();
    assert!(
        e.to_string().contains("`ee 1` conflicts with `ff 1`"),
        "{e}"
    );
    // Self-conflict via own name/provides is not a conflict.
    assert_eq!(fx.names(&["gg"]), ["gg=1"]);
}

#[test]
fn unsatisfiable_chain_message() {
    let idx = [
        para("apache2", "2.4.62-1", "Depends: apache2-bin (= 2.4.62-1)"),
        para(
            "apache2-bin",
            "2.4.62-1",
            "Depends: libapr1 (>= 1.7), libc6",
        ),
        para("libapr1", "1.6.5-1", ""),
        para("libc6", "2.36", ""),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    let e = fx.run(&["apache2"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "apache2 -> apache2-bin -> libapr1 (>= 1.7): no candidate satisfies `libapr1 (>= 1.7)`; available: 1.6.5-1"
    );
    let e = fx.run(&["nope"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "nope: no candidate satisfies `nope`; available: none"
    );
    let idx = para("xx", "1", "Depends: yy | zz (>= 2)") + &para("zz", "1", "");
    let e = Fx::new(&[&idx]).run(&["xx"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "xx -> yy | zz (>= 2): no candidate satisfies `yy | zz (>= 2)`; available: yy: none; zz: 1"
    );
}

#[test]
fn cycles_are_broken_deterministically() {
    let idx = [
        para("aa", "1", "Depends: bb"),
        para("bb", "1", "Depends: cc"),
        para("cc", "1", "Pre-Depends: aa, dd"),
        para("dd", "1", ""),
    ]
    .concat();
    let fx = Fx::new(&[&idx]);
    assert_eq!(fx.names(&["aa"]), ["dd=1", "cc=1", "bb=1", "aa=1"]);
    assert_eq!(fx.names(&["cc"]), ["bb=1", "aa=1", "dd=1", "cc=1"]);
}

/// The base's `systemd-timesyncd` (one `time-daemon` of many: it conflicts with,
/// replaces and provides it), with `extra` fields, and `others` installed besides.
fn timesyncd_base(extra: &str, others: &[String]) -> String {
    let timesyncd = status_para(
        "systemd-timesyncd",
        "252.30-1",
        &format!(
            "Provides: time-daemon\nConflicts: time-daemon\nReplaces: time-daemon, ntp\n{extra}"
        ),
    );
    [timesyncd].iter().chain(others).cloned().collect()
}

/// `chrony` as bookworm ships it, with `replaces` as its `Replaces` field (none when
/// empty), and its dependencies.
fn chrony_archive(replaces: &str, depends: &str) -> String {
    let mut fields = String::from("Provides: time-daemon\nConflicts: ntp, time-daemon\n");
    if !replaces.is_empty() {
        fields.push_str(&format!("Replaces: {replaces}\n"));
    }
    if !depends.is_empty() {
        fields.push_str(&format!("Depends: {depends}\n"));
    }
    [
        para("chrony", "4.3-2", &fields),
        para("timesync-tool", "1", "Depends: systemd-timesyncd"),
    ]
    .concat()
}

#[test]
fn chrony_conflicting_with_and_replacing_installed_timesyncd_removes_it() {
    let others = [
        // Still met after the removal: by another alternative, and by chrony's Provides.
        status_para("systemd", "252.30-1", "Depends: systemd-timesyncd | cron"),
        status_para("cron", "3.0", ""),
        status_para("wants-time", "1", "Depends: time-daemon"),
    ];
    let fx = Fx::new(&[&chrony_archive("time-daemon", "")]).status(&timesyncd_base("", &others));
    let r = fx.run(&["chrony"]).unwrap();
    assert_eq!(fx.names(&["chrony"]), ["chrony=4.3-2"]);
    assert_eq!(
        r.removes,
        [Removal {
            name: "systemd-timesyncd".parse().unwrap(),
            version: Version::parse("252.30-1").unwrap(),
            by: "chrony".parse().unwrap(),
        }]
    );
    // Replaces by name, with a version the installed one satisfies, is dpkg's own test.
    let fx = Fx::new(&[&chrony_archive("systemd-timesyncd (<< 253)", "")])
        .status(&timesyncd_base("", &[]));
    assert_eq!(fx.run(&["chrony"]).unwrap().removes.len(), 1);
    // Nothing to remove, nothing listed.
    let fx = Fx::new(&[&chrony_archive("time-daemon", "")]);
    assert!(fx.run(&["chrony"]).unwrap().removes.is_empty());
}

#[test]
fn an_essential_or_required_installed_package_is_not_removed() {
    let archive = chrony_archive("time-daemon", "");
    let fx = Fx::new(&[&archive]).status(&timesyncd_base("Essential: yes", &[]));
    let e = fx.run(&["chrony"]).unwrap_err();
    assert!(matches!(e, ResolveError::Unremovable { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "`chrony 4.3-2` conflicts with `systemd-timesyncd 252.30-1` (installed) (Conflicts: time-daemon); \
         `systemd-timesyncd` cannot be removed for it: it is Essential"
    );
    let fx = Fx::new(&[&archive]).status(&timesyncd_base("Priority: required", &[]));
    let e = fx.run(&["chrony"]).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("cannot be removed for it: its Priority is required"),
        "{e}"
    );
}

#[test]
fn a_package_that_only_the_removed_one_satisfies_blocks_its_removal() {
    let archive = chrony_archive("time-daemon", "");
    // An installed package that stays and depends on it by name, with no alternative.
    let others = [status_para(
        "timesync-helper",
        "2",
        "Pre-Depends: systemd-timesyncd (>= 250)",
    )];
    let fx = Fx::new(&[&archive]).status(&timesyncd_base("", &others));
    let e = fx.run(&["chrony"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`chrony 4.3-2` conflicts with `systemd-timesyncd 252.30-1` (installed) (Conflicts: time-daemon); \
         `systemd-timesyncd` cannot be removed for it: `timesync-helper 2` (installed) depends on it \
         (Pre-Depends: systemd-timesyncd (>= 250)) and nothing else satisfies that"
    );
    // A chosen package that needs it: requested alongside, met by the installed one.
    let fx = Fx::new(&[&archive]).status(&timesyncd_base("", &[]));
    let e = fx.run(&["chrony", "timesync-tool"]).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("`timesync-tool 1` depends on it (Depends: systemd-timesyncd) and nothing else satisfies that"),
        "{e}"
    );
}

#[test]
fn a_conflict_with_an_installed_package_it_does_not_replace_stays_an_error() {
    let conflict = "`chrony 4.3-2` conflicts with `systemd-timesyncd 252.30-1` (installed) (Conflicts: time-daemon)";
    // No Replaces at all.
    let fx = Fx::new(&[&chrony_archive("", "")]).status(&timesyncd_base("", &[]));
    let e = fx.run(&["chrony"]).unwrap_err();
    assert!(matches!(e, ResolveError::Conflict { .. }), "{e:?}");
    assert_eq!(e.to_string(), conflict);
    // Replaces by name at versions the installed one is not.
    let fx = Fx::new(&[&chrony_archive("systemd-timesyncd (<< 250)", "")])
        .status(&timesyncd_base("", &[]));
    assert_eq!(fx.run(&["chrony"]).unwrap_err().to_string(), conflict);
    // A versioned Replaces on the virtual name, which timesyncd provides unversioned.
    let fx = Fx::new(&[&chrony_archive("time-daemon (<< 2)", "")]).status(&timesyncd_base("", &[]));
    assert_eq!(fx.run(&["chrony"]).unwrap_err().to_string(), conflict);
}

#[test]
fn breaks_and_replaces_removes_the_installed_package_too() {
    let idx = para(
        "newtool",
        "2",
        "Breaks: oldtool (<< 2)\nReplaces: oldtool (<< 2)",
    );
    let fx = Fx::new(&[&idx]).status(&status_para("oldtool", "1", ""));
    let r = fx.run(&["newtool"]).unwrap();
    assert_eq!(r.removes.len(), 1);
    assert_eq!(r.removes[0].name.as_str(), "oldtool");
    assert_eq!(r.removes[0].by.as_str(), "newtool");
}
