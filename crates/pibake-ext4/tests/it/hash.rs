//! The directory hashes agree with e2fsprogs (`debugfs dx_hash`) on many names, for every
//! hash version, signed and unsigned, with and without a seed.

use pibake_ext4::hash::{HashVersion, dx_hash};

/// Names of every length up to well past one half_md4 block (32 bytes), with bytes above
/// 0x7f (where signed and unsigned variants differ) and the characters real /etc has.
fn names() -> Vec<String> {
    let mut out = Vec::new();
    let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-@+é";
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = 0x2545_f491_u32;
    for len in 1..=80 {
        // debugfs would read a leading '-' as an option.
        let mut s = String::from("n");
        for _ in 1..len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            s.push(chars[state as usize % chars.len()]);
        }
        out.push(s);
    }
    out.extend(
        [
            "hostname",
            "NetworkManager.service",
            "ssh_host_ed25519_key.pub",
            "ÿþ",
            "x",
        ]
        .map(String::from),
    );
    out
}

#[test]
fn matches_debugfs_for_every_version_and_seed() {
    // debugfs knows the unsigned variants only by number (3, 4, 5): by name it
    // silently falls back to legacy.
    let versions = [
        ("0", HashVersion::Legacy),
        ("1", HashVersion::HalfMd4),
        ("2", HashVersion::Tea),
        ("3", HashVersion::LegacyUnsigned),
        ("4", HashVersion::HalfMd4Unsigned),
        ("5", HashVersion::TeaUnsigned),
    ];
    let seeds = [
        ("", [0u32; 4]),
        (
            "0c4a4b36-8b4f-4e2b-9c0a-6f3c3c4d5e6f",
            [
                u32::from_le_bytes([0x0c, 0x4a, 0x4b, 0x36]),
                u32::from_le_bytes([0x8b, 0x4f, 0x4e, 0x2b]),
                u32::from_le_bytes([0x9c, 0x0a, 0x6f, 0x3c]),
                u32::from_le_bytes([0x3c, 0x4d, 0x5e, 0x6f]),
            ],
        ),
    ];
    let names = names();
    let dir = tempfile::tempdir().unwrap();
    let mut requests = String::new();
    let mut expected = Vec::new();
    for (vname, version) in versions {
        for (sname, seed) in seeds {
            for n in &names {
                let s = if sname.is_empty() {
                    String::new()
                } else {
                    format!(" -s {sname}")
                };
                requests.push_str(&format!("dx_hash -h {vname}{s} {n}\n"));
                expected.push((
                    vname,
                    sname,
                    n.clone(),
                    dx_hash(version, n.as_bytes(), seed),
                ));
            }
        }
    }
    let cmds = dir.path().join("requests");
    std::fs::write(&cmds, requests).unwrap();
    let out = crate::util::tool("debugfs")
        .args(["-f", crate::util::path(&cmds)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<(u32, u32)> = text
        .lines()
        .filter(|l| l.starts_with("Hash of "))
        .map(|l| {
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            let rest = l.rsplit(" is ").next().unwrap();
            let (major, minor) = rest.split_once(" (minor ").unwrap();
            (hex(major), hex(minor.trim_end_matches(')')))
        })
        .collect();
    assert_eq!(
        answers.len(),
        expected.len(),
        "debugfs answered every request:\n{text}"
    );
    for ((vname, sname, name, ours), theirs) in expected.iter().zip(&answers) {
        // debugfs reports the minor hash only for the algorithms that have one.
        let ours_cmp = if ["0", "3"].contains(vname) {
            (ours.0, 0)
        } else {
            *ours
        };
        assert_eq!(ours_cmp, *theirs, "{vname} seed={sname:?} name={name:?}");
    }
}

#[test]
fn on_disk_versions_and_the_unsigned_flag() {
    assert_eq!(
        HashVersion::from_disk(1, true).unwrap(),
        HashVersion::HalfMd4Unsigned
    );
    assert_eq!(HashVersion::from_disk(2, false).unwrap(), HashVersion::Tea);
    assert!(
        HashVersion::from_disk(6, false)
            .unwrap_err()
            .to_string()
            .contains("siphash")
    );
    assert!(
        HashVersion::from_disk(9, false)
            .unwrap_err()
            .to_string()
            .contains("unknown")
    );
}
