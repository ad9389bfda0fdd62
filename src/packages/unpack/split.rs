//! Which of a role's packages pibake unpacks at build time and which stay `.deb`s that
//! dpkg installs on first boot, and why.
//!
//! dpkg unpacks a package only once its `Pre-Depends` are configured, so a package
//! whose `Pre-Depends` the base does not already have configured cannot be unpacked
//! offline (bookworm's `python3 -> python3-minimal -> python3.11-minimal` on a base
//! without Python). Nor can a package the base already has in some state (that is an
//! upgrade, with old files to remove), one whose files overwrite another package's
//! (dpkg decides that by `Replaces`), or one with conffile flags pibake does not
//! reproduce. Nor can one that conflicts with or breaks a package the base has
//! installed (or that such a package conflicts with or breaks): apt removes that
//! package before it installs this one (the resolver accepts that only when the
//! package replaces it, as `chrony` does `systemd-timesyncd`), and a root with both
//! unpacked is one dpkg never makes. The split finds these by itself, from the base's
//! status and the packages' own control fields, since it also runs from the lock
//! without resolving. Whatever depends on a first-boot package goes with it, so that
//! the packages unpacked offline configure among themselves on first boot.

use std::collections::{BTreeMap, HashMap};

use pibake_apt::Package;
use pibake_apt::relation::{Atom, Relation};

use super::Inspected;
use super::admin::Admin;

/// Why a package installs on first boot instead of being unpacked at build time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// The base has the package already (another version, or not configured).
    InBase,
    /// A `Pre-Depends` the base does not have configured.
    PreDepends {
        /// The relation, as the package states it.
        relation: String,
    },
    /// It depends on a package that installs on first boot.
    DependsOn {
        /// That package.
        package: String,
    },
    /// One of its files is another package's.
    Overwrites {
        /// The path.
        path: String,
        /// Whose it is.
        owner: String,
    },
    /// Its `conffiles` has flags (`remove-on-upgrade`) that only dpkg applies.
    ConffileFlags,
    /// It conflicts with (or breaks) a package the base has installed, or that
    /// package with it, so apt removes that package first.
    Removes {
        /// The base's package.
        package: String,
        /// The fields that make apt remove it (`Conflicts/Replaces`, `Breaks`).
        relations: String,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::InBase => f.write_str("the base has it already: dpkg upgrades it"),
            Reason::PreDepends { relation } => write!(
                f,
                "Pre-Depends {relation}, which the base does not have configured"
            ),
            Reason::DependsOn { package } => write!(f, "depends on {package}"),
            Reason::Overwrites { path, owner } => {
                write!(f, "{path} is {owner}'s too: dpkg decides by Replaces")
            }
            Reason::ConffileFlags => f.write_str("its conffiles carry flags only dpkg applies"),
            Reason::Removes { package, relations } => {
                write!(f, "apt removes {package} for it ({relations})")
            }
        }
    }
}

/// The decision for one role: indexes into the inspected packages.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Unpacked at build time, dependencies first.
    pub offline: Vec<usize>,
    /// Installed by dpkg on first boot, in closure order, each with its reason.
    pub first_boot: Vec<(usize, Reason)>,
}

/// Decides the split for `debs` (a role's closure) over the base `admin` describes.
pub fn decide(debs: &[Inspected], admin: &Admin) -> Split {
    let mut reasons: BTreeMap<usize, Reason> = BTreeMap::new();
    for (i, d) in debs.iter().enumerate() {
        if let Some(r) = own_reason(d, debs, admin) {
            reasons.insert(i, r);
        }
    }
    for (i, r) in overwrites(debs, admin) {
        reasons.entry(i).or_insert(r);
    }
    follow_dependents(debs, admin, &mut reasons);
    let offline = order(debs, |i| !reasons.contains_key(&i));
    Split {
        offline,
        first_boot: reasons.into_iter().collect(),
    }
}

/// The reasons a package has by itself (with the set it comes in).
fn own_reason(d: &Inspected, debs: &[Inspected], admin: &Admin) -> Option<Reason> {
    if admin.known.contains(d.package.name.as_str()) {
        return Some(Reason::InBase);
    }
    if let Some(r) = removes(&d.package, debs, admin) {
        return Some(r);
    }
    if d.conffile_flags {
        return Some(Reason::ConffileFlags);
    }
    let base: Vec<&Package> = admin.configured.iter().collect();
    d.package
        .pre_depends
        .iter()
        .find(|r| !holds(r, &base))
        .map(|r| Reason::PreDepends {
            relation: r.to_string(),
        })
}

/// The base package apt removes before it installs `p`: one installed and not
/// upgraded by the set (an upgraded one's new version is the resolver's to check)
/// that `p` conflicts with or breaks, or that conflicts with or breaks `p`.
fn removes(p: &Package, debs: &[Inspected], admin: &Admin) -> Option<Reason> {
    admin
        .configured
        .iter()
        .filter(|q| q.name != p.name && !debs.iter().any(|d| d.package.name == q.name))
        .find_map(|q| {
            let kind = conflict_kind(p, q).or_else(|| conflict_kind(q, p))?;
            let replaces = p
                .replaces
                .iter()
                .any(|r| r.alternatives.iter().any(|a| satisfies(a, q)));
            Some(Reason::Removes {
                package: q.name.to_string(),
                relations: if replaces {
                    format!("{kind}/Replaces")
                } else {
                    kind.to_string()
                },
            })
        })
}

/// Which of `p`'s `Conflicts` and `Breaks` names `q`, if one does.
fn conflict_kind(p: &Package, q: &Package) -> Option<&'static str> {
    [("Conflicts", &p.conflicts), ("Breaks", &p.breaks)]
        .into_iter()
        .find(|(_, rels)| {
            rels.iter()
                .any(|r| r.alternatives.iter().any(|a| satisfies(a, q)))
        })
        .map(|(kind, _)| kind)
}

/// Packages whose non-directory entries land on a path a base package owns, or on one
/// an earlier package of the set ships. A diverted path is no conflict when its owner
/// or the package itself is the diverting one (dpkg's rule); otherwise dpkg decides by
/// `Replaces`, on first boot.
fn overwrites(debs: &[Inspected], admin: &Admin) -> Vec<(usize, Reason)> {
    let mut ours: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, d) in debs.iter().enumerate() {
        let name = d.package.name.as_str();
        let hit = d.files.iter().find_map(|path| {
            let owner = admin
                .owners
                .get(path.as_str())
                .map(String::as_str)
                .or_else(|| ours.get(path.as_str()).copied())?;
            let diverted_by = admin.diversions.get(path.as_str()).map(|v| v.by.as_str());
            if diverted_by.is_some_and(|by| by == owner || by == name) {
                return None;
            }
            Some(Reason::Overwrites {
                path: path.clone(),
                owner: owner.into(),
            })
        });
        match hit {
            Some(r) => out.push((i, r)),
            None => ours.extend(d.files.iter().map(|p| (p.as_str(), name))),
        }
    }
    out
}

/// Until nothing changes: a package left offline whose dependency is not met by the
/// configured base and the packages still offline goes to first boot too.
fn follow_dependents(debs: &[Inspected], admin: &Admin, reasons: &mut BTreeMap<usize, Reason>) {
    loop {
        let offline: Vec<&Package> = admin
            .configured
            .iter()
            .chain(
                debs.iter()
                    .enumerate()
                    .filter(|(i, _)| !reasons.contains_key(i))
                    .map(|(_, d)| &d.package),
            )
            .collect();
        let newly: Vec<(usize, Reason)> = debs
            .iter()
            .enumerate()
            .filter(|(i, _)| !reasons.contains_key(i))
            .filter_map(|(i, d)| {
                let p = &d.package;
                let unmet = p
                    .depends
                    .iter()
                    .chain(&p.pre_depends)
                    .find(|r| !holds(r, &offline))?;
                let package = provider(unmet, debs).unwrap_or_else(|| unmet.to_string());
                Some((i, Reason::DependsOn { package }))
            })
            .collect();
        if newly.is_empty() {
            return;
        }
        reasons.extend(newly);
    }
}

/// The set's package that would have met `r`, for the message.
fn provider(r: &Relation, debs: &[Inspected]) -> Option<String> {
    debs.iter()
        .map(|d| &d.package)
        .find(|p| r.alternatives.iter().any(|a| satisfies(a, p)))
        .map(|p| p.name.to_string())
}

/// Whether some alternative of `r` is met by one of `have`.
pub fn holds(r: &Relation, have: &[&Package]) -> bool {
    r.alternatives
        .iter()
        .any(|a| have.iter().any(|p| satisfies(a, p)))
}

/// A package meets an atom by name and version, or by a `Provides` (versioned when the
/// atom asks for a version). The images pibake builds hold one architecture, so
/// architecture qualifiers do not narrow it further.
fn satisfies(a: &Atom, p: &Package) -> bool {
    if p.name == a.name {
        return a.version_matches(&p.version);
    }
    p.provides.iter().any(|pr| {
        pr.name == a.name
            && match (&a.version, &pr.version) {
                (None, _) => true,
                (Some(_), Some(v)) => a.version_matches(v),
                (Some(_), None) => false,
            }
    })
}

/// The packages `keep` selects, each after the ones it depends on within the
/// selection (closure order breaks cycles).
fn order(debs: &[Inspected], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let chosen: Vec<usize> = (0..debs.len()).filter(|&i| keep(i)).collect();
    let mut done: Vec<usize> = Vec::new();
    let mut visiting: Vec<usize> = Vec::new();
    for &i in &chosen {
        visit(i, debs, &chosen, &mut visiting, &mut done);
    }
    done
}

fn visit(
    i: usize,
    debs: &[Inspected],
    chosen: &[usize],
    visiting: &mut Vec<usize>,
    done: &mut Vec<usize>,
) {
    if done.contains(&i) || visiting.contains(&i) {
        return;
    }
    visiting.push(i);
    let p = &debs[i].package;
    for r in p.pre_depends.iter().chain(&p.depends) {
        for &j in chosen {
            if j != i
                && r.alternatives
                    .iter()
                    .any(|a| satisfies(a, &debs[j].package))
            {
                visit(j, debs, chosen, visiting, done);
            }
        }
    }
    visiting.pop();
    done.push(i);
}

#[cfg(test)]
mod tests {
    use pibake_apt::relation::parse_relations;
    use pibake_apt::{parse_control, parse_status};

    use super::super::admin::Diversion;
    use super::super::triggers::Triggers;
    use super::*;

    /// A package of the closure: `name` with `extra` control fields, shipping `files`.
    fn deb(name: &str, extra: &str, files: &[&str]) -> Inspected {
        let control =
            format!("Package: {name}\nVersion: 1.0\nArchitecture: arm64\n{extra}Description: t\n");
        let package = parse_control(&control).unwrap();
        Inspected {
            label: format!("{name}_1.0_arm64.deb"),
            bytes: Vec::new(),
            package,
            control_text: control,
            members: Vec::new(),
            conffiles: Vec::new(),
            conffile_flags: false,
            files: files.iter().map(|f| f.to_string()).collect(),
            info_name: name.into(),
            file_bytes: 0,
            kept: None,
        }
    }

    /// A base whose dpkg status is `status`, with `owners` (path, package) and
    /// `diversions` (from, to, by).
    fn admin(status: &str, owners: &[(&str, &str)], diversions: &[(&str, &str, &str)]) -> Admin {
        Admin {
            status: status.into(),
            configured: parse_status(status).unwrap(),
            known: status
                .lines()
                .filter_map(|l| l.strip_prefix("Package: "))
                .map(str::to_string)
                .collect(),
            owners: owners
                .iter()
                .map(|(p, o)| (p.to_string(), o.to_string()))
                .collect(),
            diversions: diversions
                .iter()
                .map(|(from, to, by)| {
                    (
                        from.to_string(),
                        Diversion {
                            to: to.to_string(),
                            by: by.to_string(),
                        },
                    )
                })
                .collect(),
            overrides: HashMap::new(),
            filters: Vec::new(),
            arch_qualified_info: false,
            users: HashMap::new(),
            groups: HashMap::new(),
            triggers: Triggers::default(),
        }
    }

    const STATUS: &str = "Package: dpkg\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.21.22\n\n\
        Package: coreutils\nStatus: install ok installed\nArchitecture: arm64\nVersion: 9.1-1\n\n\
        Package: half\nStatus: install ok unpacked\nArchitecture: arm64\nVersion: 1.0\n\n";

    fn names(debs: &[Inspected], idx: &[usize]) -> Vec<String> {
        idx.iter()
            .map(|&i| debs[i].package.name.to_string())
            .collect()
    }

    #[test]
    fn each_reason_and_the_offline_order() {
        let debs = vec![
            deb("pre-ok", "Pre-Depends: dpkg (>= 1.19)\n", &[]),
            deb("needs-minimal", "Pre-Depends: minimal\n", &[]),
            deb("minimal", "", &[]),
            deb("user", "Depends: needs-minimal\n", &[]),
            deb("user-of-user", "Depends: user | nothing\n", &[]),
            deb("half", "", &[]),
            deb("clobber", "", &["/usr/bin/ls"]),
            deb("diverted", "", &["/usr/bin/cp"]),
            deb("first", "", &["/usr/share/same"]),
            deb("second", "", &["/usr/share/same"]),
            deb("flags", "", &[]),
            deb("wants-virtual", "Depends: virtual (>= 2)\n", &[]),
            deb("provider", "Provides: virtual (= 2)\n", &[]),
            deb("wants-versioned", "Depends: other (>= 1)\n", &[]),
            deb("unversioned", "Provides: other\n", &[]),
        ];
        let mut debs = debs;
        debs[10].conffile_flags = true;
        let base = admin(
            STATUS,
            // The diverting package owns `/usr/bin/cp`: dpkg lets another package's
            // file go to the diverted name.
            &[
                ("/usr/bin/ls", "coreutils"),
                ("/usr/bin/cp", "coreutils-wrapper"),
            ],
            &[("/usr/bin/cp", "/usr/bin/cp.real", "coreutils-wrapper")],
        );
        let split = decide(&debs, &base);
        let why: Vec<(String, Reason)> = split
            .first_boot
            .iter()
            .map(|(i, r)| (debs[*i].package.name.to_string(), r.clone()))
            .collect();
        let depends_on = |p: &str| Reason::DependsOn { package: p.into() };
        assert_eq!(
            why,
            [
                (
                    "needs-minimal".into(),
                    Reason::PreDepends {
                        relation: "minimal".into()
                    }
                ),
                ("user".into(), depends_on("needs-minimal")),
                ("user-of-user".into(), depends_on("user")),
                ("half".into(), Reason::InBase),
                (
                    "clobber".into(),
                    Reason::Overwrites {
                        path: "/usr/bin/ls".into(),
                        owner: "coreutils".into()
                    }
                ),
                (
                    "second".into(),
                    Reason::Overwrites {
                        path: "/usr/share/same".into(),
                        owner: "first".into()
                    }
                ),
                ("flags".into(), Reason::ConffileFlags),
                ("wants-versioned".into(), depends_on("other (>= 1)")),
            ]
        );
        // Dependencies first: the provider before the package that needs it.
        assert_eq!(
            names(&debs, &split.offline),
            [
                "pre-ok",
                "minimal",
                "diverted",
                "first",
                "provider",
                "wants-virtual",
                "unversioned"
            ]
        );
    }

    /// dpkg lets a file land on a diverted path only when the file's owner or the
    /// unpacking package is the diverting one (`tarobject` in dpkg's `archives.c`);
    /// otherwise it is a file conflict, decided by `Replaces`. Here `coreutils` owns
    /// `/usr/bin/cp`, `wrapper` diverted it, and `other` is neither: dpkg refuses unless
    /// `Replaces`, and unpacking offline would overwrite coreutils' diverted file.
    #[test]
    fn a_diverted_path_owned_by_a_package_other_than_the_diverter_is_an_overwrite() {
        let debs = vec![deb("other", "", &["/usr/bin/cp"])];
        let base = admin(
            STATUS,
            &[("/usr/bin/cp", "coreutils")],
            &[("/usr/bin/cp", "/usr/bin/cp.real", "wrapper")],
        );
        let split = decide(&debs, &base);
        assert_eq!(
            split.first_boot,
            [(
                0,
                Reason::Overwrites {
                    path: "/usr/bin/cp".into(),
                    owner: "coreutils".into()
                }
            )]
        );
        assert!(split.offline.is_empty());
    }

    /// The base has `systemd-timesyncd`, one `time-daemon` of many; `chrony` conflicts
    /// with it and replaces it, so apt removes it on first boot and chrony must stay a
    /// `.deb` (unpacking it offline would leave both daemons in the root).
    #[test]
    fn a_package_that_makes_apt_remove_a_base_package_stays_a_deb() {
        let status = format!(
            "{STATUS}Package: systemd-timesyncd\nStatus: install ok installed\nArchitecture: arm64\n\
             Version: 252.30-1\nProvides: time-daemon\nConflicts: time-daemon\n\
             Replaces: time-daemon, ntp\n\n"
        );
        let mut debs = vec![
            deb(
                "chrony",
                "Provides: time-daemon\nConflicts: ntp, time-daemon\nReplaces: time-daemon\n",
                &["/usr/sbin/chronyd"],
            ),
            deb("chrony-user", "Depends: chrony\n", &[]),
            // Met by the base's time-daemon now and by chrony's once it replaces it.
            deb("wants-time", "Depends: time-daemon\n", &[]),
            // Only the base's package declares the conflict, and this one replaces nothing.
            deb("other-daemon", "Provides: time-daemon\n", &[]),
            // It breaks the base's `dpkg`, which the set upgrades past the broken
            // versions: an upgrade, not a removal.
            deb("breaks-old-dpkg", "Breaks: dpkg (<< 1.22)\n", &[]),
            deb("dpkg", "", &[]),
        ];
        debs[5].package.version = pibake_apt::Version::parse("1.22.6").unwrap();
        let split = decide(&debs, &admin(&status, &[], &[]));
        let removes = |relations: &str| Reason::Removes {
            package: "systemd-timesyncd".into(),
            relations: relations.into(),
        };
        assert_eq!(
            split.first_boot,
            [
                (0, removes("Conflicts/Replaces")),
                (
                    1,
                    Reason::DependsOn {
                        package: "chrony".into()
                    }
                ),
                (3, removes("Conflicts")),
                (5, Reason::InBase),
            ]
        );
        assert_eq!(
            names(&debs, &split.offline),
            ["wants-time", "breaks-old-dpkg"]
        );
        assert_eq!(
            split.first_boot[0].1.to_string(),
            "apt removes systemd-timesyncd for it (Conflicts/Replaces)"
        );
    }

    #[test]
    fn a_dependency_cycle_is_ordered_by_the_closure() {
        let debs = vec![
            deb("px", "Depends: py\n", &[]),
            deb("py", "Pre-Depends: dpkg\nDepends: px\n", &[]),
        ];
        let split = decide(&debs, &admin(STATUS, &[], &[]));
        assert!(split.first_boot.is_empty());
        assert_eq!(names(&debs, &split.offline), ["py", "px"]);
    }

    #[test]
    fn holds_by_name_version_and_provides() {
        let have = [
            parse_control("Package: dpkg\nVersion: 1.21.22\nArchitecture: arm64\n").unwrap(),
            parse_control(
                "Package: mawk\nVersion: 1.3.4\nArchitecture: arm64\nProvides: awk, awk-v (= 5)\n",
            )
            .unwrap(),
        ];
        let have: Vec<&Package> = have.iter().collect();
        let holds = |r: &str| {
            let rels = parse_relations(r).unwrap();
            rels.iter().all(|rel| super::holds(rel, &have))
        };
        assert!(holds("dpkg (>= 1.19)"));
        assert!(!holds("dpkg (>= 1.22)"));
        assert!(holds("gawk | awk"));
        assert!(
            !holds("awk (>= 1)"),
            "an unversioned Provides meets no version"
        );
        assert!(holds("awk-v (>= 4)"));
        assert!(!holds("awk-v (<< 5)"));
        assert!(!holds("nothing"));
    }

    #[test]
    fn reasons_read_as_sentences() {
        let texts: Vec<String> = [
            Reason::InBase,
            Reason::PreDepends {
                relation: "python3-minimal (= 3.11.2-1)".into(),
            },
            Reason::DependsOn {
                package: "python3".into(),
            },
            Reason::Overwrites {
                path: "/usr/bin/x".into(),
                owner: "y".into(),
            },
            Reason::ConffileFlags,
            Reason::Removes {
                package: "systemd-timesyncd".into(),
                relations: "Conflicts/Replaces".into(),
            },
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            texts,
            [
                "the base has it already: dpkg upgrades it",
                "Pre-Depends python3-minimal (= 3.11.2-1), which the base does not have configured",
                "depends on python3",
                "/usr/bin/x is y's too: dpkg decides by Replaces",
                "its conffiles carry flags only dpkg applies",
                "apt removes systemd-timesyncd for it (Conflicts/Replaces)",
            ]
        );
        assert_eq!(
            serde_json::to_value(Reason::Removes {
                package: "systemd-timesyncd".into(),
                relations: "Conflicts/Replaces".into(),
            })
            .unwrap(),
            serde_json::json!({
                "reason": "removes",
                "package": "systemd-timesyncd",
                "relations": "Conflicts/Replaces",
            })
        );
        assert_eq!(
            serde_json::to_value(Reason::DependsOn {
                package: "p".into()
            })
            .unwrap(),
            serde_json::json!({"reason": "depends-on", "package": "p"})
        );
    }
}
