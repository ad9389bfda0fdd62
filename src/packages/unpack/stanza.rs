//! A package's record in `/var/lib/dpkg/status` after `dpkg --unpack`, written as dpkg
//! writes it (`lib/dpkg/dump.c`): its known fields in dpkg's own order, relation fields
//! in their canonical one-line form, `Status: install ok unpacked`, the conffiles with
//! the `newconffile` mark, then any other field in the order the control file has them.

use pibake_apt::control::Paragraph;
use pibake_apt::relation::parse_relations;

use crate::error::{Error, Result};

/// dpkg's field order (`fieldinfos[]` in `lib/dpkg/parse.c`); `Status` and `Conffiles`
/// are made here, not copied.
const ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Fields dpkg parses as relations and writes back in canonical form.
const RELATIONS: &[&str] = &[
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
];

/// Fields dpkg keeps only for `yes` / only when not `no`.
fn dropped(name: &str, value: &str) -> bool {
    matches!(name, "Essential" | "Protected") && value != "yes"
        || name == "Multi-Arch" && value == "no"
}

/// The status record of `control` (the package's control paragraph) as unpacked, with
/// `conffiles` (absolute paths) marked new.
pub fn unpacked(label: &str, control: &Paragraph, conffiles: &[String]) -> Result<String> {
    let mut out = String::new();
    for &name in ORDER {
        match name {
            "Status" => out.push_str("Status: install ok unpacked\n"),
            "Conffiles" if !conffiles.is_empty() => {
                out.push_str("Conffiles:\n");
                for c in conffiles {
                    out.push_str(&format!(" {c} newconffile\n"));
                }
            }
            _ => {
                if let Some(f) = control.field(name) {
                    push_field(&mut out, label, name, f.value)?;
                }
            }
        }
    }
    for f in &control.fields {
        if !ORDER.iter().any(|k| k.eq_ignore_ascii_case(f.name)) {
            out.push_str(&format!("{}: {}\n", f.name, f.value));
        }
    }
    Ok(out)
}

fn push_field(out: &mut String, label: &str, name: &str, value: &str) -> Result<()> {
    if dropped(name, value) || value.is_empty() {
        return Ok(());
    }
    if RELATIONS.contains(&name) {
        let rels = parse_relations(value)
            .map_err(|e| Error::invalid(format!("{label}: its control file's {name}: {e}")))?;
        let text: Vec<String> = rels.iter().map(ToString::to_string).collect();
        out.push_str(&format!("{name}: {}\n", text.join(", ")));
    } else {
        out.push_str(&format!("{name}: {value}\n"));
    }
    Ok(())
}

/// `status` with `records` added, every record in package-name order as dpkg keeps
/// them (a record already there under the same name and architecture is replaced).
pub fn merge(status: &str, records: &[(String, String)]) -> String {
    let mut all: Vec<(String, String)> = status
        .split("\n\n")
        .map(|r| r.trim_matches('\n'))
        .filter(|r| !r.is_empty())
        .map(|r| (key(r), format!("{r}\n")))
        .collect();
    for (_, record) in records {
        let k = key(record);
        all.retain(|(old, _)| *old != k);
        all.push((k, record.clone()));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (_, r) in all {
        out.push_str(&r);
        out.push('\n');
    }
    out
}

/// `name` then `arch`: the order of dpkg's status file.
fn key(record: &str) -> String {
    let field = |f: &str| {
        record
            .lines()
            .find_map(|l| l.strip_prefix(f))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    format!("{}\0{}", field("Package:"), field("Architecture:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pibake_apt::control;

    fn record(text: &str, conffiles: &[&str]) -> String {
        let paras = control::parse(text).unwrap();
        let conffiles: Vec<String> = conffiles.iter().map(|c| c.to_string()).collect();
        unpacked("x.deb", &paras[0], &conffiles).unwrap()
    }

    #[test]
    fn unpacked_writes_fields_in_dpkg_order_with_canonical_relations() {
        let control = "Package: hello\n\
            Version: 1.0-1\n\
            Architecture: arm64\n\
            Maintainer: Test <test@example.org>\n\
            Description: a greeting\n two lines\n\
            Depends: libc6 (>=2.34),\n libfoo1 (>> 1)|libbar,\n  zlib1g (>=1)\n\
            Homepage: https://example.org\n\
            Multi-Arch: no\n\
            Essential: no\n\
            Pre-Depends: dpkg (>= 1.19)\n\
            Priority: optional\n\
            Section: misc\n\
            Installed-Size: 12\n";
        assert_eq!(
            record(control, &["/etc/hello.conf", "/etc/hello/other"]),
            "Package: hello\n\
             Status: install ok unpacked\n\
             Priority: optional\n\
             Section: misc\n\
             Installed-Size: 12\n\
             Maintainer: Test <test@example.org>\n\
             Architecture: arm64\n\
             Version: 1.0-1\n\
             Depends: libc6 (>= 2.34), libfoo1 (>> 1) | libbar, zlib1g (>= 1)\n\
             Pre-Depends: dpkg (>= 1.19)\n\
             Conffiles:\n /etc/hello.conf newconffile\n /etc/hello/other newconffile\n\
             Description: a greeting\n two lines\n\
             Homepage: https://example.org\n"
        );
    }

    #[test]
    fn unpacked_keeps_essential_yes_and_multi_arch_other_than_no() {
        let out = record(
            "Package: libx\nEssential: yes\nMulti-Arch: same\nVersion: 1\nArchitecture: arm64\n",
            &[],
        );
        assert_eq!(
            out,
            "Package: libx\nEssential: yes\nStatus: install ok unpacked\nArchitecture: arm64\nMulti-Arch: same\nVersion: 1\n"
        );
        assert!(!out.contains("Conffiles"), "no conffiles, no field");
    }

    #[test]
    fn unpacked_refuses_a_relation_it_cannot_parse_by_name() {
        let paras = control::parse("Package: a\nVersion: 1\nDepends: b (>= )\n").unwrap();
        let e = unpacked("a_1_arm64.deb", &paras[0], &[]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("a_1_arm64.deb") && text.contains("Depends"),
            "{text}"
        );
    }

    #[test]
    fn merge_sorts_by_name_then_architecture_and_replaces_a_same_record() {
        let status = "Package: zlib1g\nStatus: install ok installed\nArchitecture: arm64\n\n\
            Package: base-files\nStatus: install ok installed\nArchitecture: arm64\n\n\
            Package: hello\nStatus: install ok half-installed\nArchitecture: arm64\nVersion: 0.9\n\n";
        let records = vec![
            (
                "hello".to_string(),
                "Package: hello\nStatus: install ok unpacked\nArchitecture: arm64\nVersion: 1.0\n"
                    .to_string(),
            ),
            (
                "libc6:armhf".to_string(),
                "Package: libc6\nStatus: install ok unpacked\nArchitecture: armhf\n".to_string(),
            ),
            (
                "libc6:arm64".to_string(),
                "Package: libc6\nStatus: install ok unpacked\nArchitecture: arm64\n".to_string(),
            ),
        ];
        assert_eq!(
            merge(status, &records),
            "Package: base-files\nStatus: install ok installed\nArchitecture: arm64\n\n\
             Package: hello\nStatus: install ok unpacked\nArchitecture: arm64\nVersion: 1.0\n\n\
             Package: libc6\nStatus: install ok unpacked\nArchitecture: arm64\n\n\
             Package: libc6\nStatus: install ok unpacked\nArchitecture: armhf\n\n\
             Package: zlib1g\nStatus: install ok installed\nArchitecture: arm64\n\n"
        );
        assert_eq!(merge("", &[]), "");
    }
}
