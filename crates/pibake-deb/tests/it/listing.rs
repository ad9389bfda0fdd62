//! The independent reader: `dpkg-deb` extracts the archives and GNU tar lists them.

use std::path::Path;
use std::process::Command;

use pibake_deb::{DataEntry, EntryKind};

use crate::fixture::run;

/// One entry as `tar -tv` shows it, and as ours is rendered for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    /// `tar -tv`'s type letter: `-`, `d`, `l`, `h`.
    pub kind: char,
    pub mode: u16,
    /// `uid/gid` as numbers.
    pub ids: String,
    /// `owner/group` by name, numbers where the header holds no name.
    pub names: String,
    pub size: u64,
    pub mtime: i64,
    /// Symlink target as written, or hard link target normalised.
    pub link: Option<String>,
}

impl Listed {
    /// How `tar -tv` would show an entry read by pibake-deb.
    pub fn from_entry(entry: &DataEntry) -> Listed {
        let (kind, link) = match &entry.kind {
            EntryKind::Dir => ('d', None),
            EntryKind::File => ('-', None),
            EntryKind::Symlink { target } => ('l', Some(target.clone())),
            EntryKind::HardLink { target } => ('h', Some(target.to_string())),
        };
        let uname = entry.uname.clone().unwrap_or(entry.uid.to_string());
        let gname = entry.gname.clone().unwrap_or(entry.gid.to_string());
        Listed {
            path: entry.path.to_string(),
            kind,
            mode: entry.mode,
            ids: format!("{}/{}", entry.uid, entry.gid),
            names: format!("{uname}/{gname}"),
            size: entry.size,
            mtime: entry.mtime,
            link,
        }
    }
}

/// The data archive of `deb`, listed by `dpkg-deb --fsys-tarfile | tar -tv`.
pub fn data(deb: &Path) -> Vec<Listed> {
    let tar = run(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb),
        None,
    )
    .stdout;
    list_tar(&tar)
}

/// The control archive of `deb`, listed by `dpkg-deb --ctrl-tarfile | tar -tv`.
pub fn control(deb: &Path) -> Vec<Listed> {
    let tar = run(
        Command::new("dpkg-deb").arg("--ctrl-tarfile").arg(deb),
        None,
    )
    .stdout;
    list_tar(&tar)
}

/// Lists a tar twice (names, then numeric ids) and merges the two.
fn list_tar(tar: &[u8]) -> Vec<Listed> {
    let tv = |extra: &[&str]| {
        let mut cmd = Command::new("tar");
        cmd.args(["-tv", "--full-time", "--utc", "-f", "-"])
            .args(extra);
        String::from_utf8(run(&mut cmd, Some(tar)).stdout).unwrap()
    };
    let named = tv(&[]);
    let numeric = tv(&["--numeric-owner"]);
    assert_eq!(named.lines().count(), numeric.lines().count());
    named
        .lines()
        .zip(numeric.lines())
        .map(|(n, i)| parse_line(n, i))
        .collect()
}

/// `-rwsr-xr-x root/root 5000 2023-11-14 22:13:20 ./usr/bin/tool`, with `-> target`
/// for symlinks and `link to target` for hard links.
fn parse_line(named: &str, numeric: &str) -> Listed {
    let (fields, rest) = split_fields(named, 5);
    let (ids, _) = split_fields(numeric, 2);
    let (path, link) = if let Some((path, target)) = rest.split_once(" -> ") {
        (path, Some(target.to_owned()))
    } else if let Some((path, target)) = rest.split_once(" link to ") {
        (path, Some(normalise(target)))
    } else {
        (rest, None)
    };
    Listed {
        path: normalise(path),
        kind: fields[0].chars().next().unwrap(),
        mode: mode_bits(fields[0]),
        ids: ids[1].to_owned(),
        names: fields[1].to_owned(),
        size: fields[2].parse().unwrap(),
        mtime: epoch(fields[3], fields[4]),
        link,
    }
}

/// The first `n` whitespace-separated fields and the rest of the line after them.
fn split_fields(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut rest = line;
    let mut out = Vec::new();
    for _ in 0..n {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    (out, rest.trim_start())
}

/// `./usr/bin/` -> `/usr/bin`, `./` -> `/`.
pub fn normalise(raw: &str) -> String {
    let trimmed = raw.trim_start_matches('.').trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `drwsr-sr-t` -> 0o7755.
fn mode_bits(text: &str) -> u16 {
    let chars: Vec<char> = text.chars().skip(1).collect();
    let mut mode = 0;
    for (i, c) in chars.iter().enumerate() {
        let bit = 1 << (8 - i);
        let special = [0o4000, 0o2000, 0o1000];
        match c {
            'r' | 'w' | 'x' => mode |= bit,
            's' | 't' => mode |= bit | special[i / 3],
            'S' | 'T' => mode |= special[i / 3],
            '-' => {}
            other => panic!("unexpected mode character {other:?} in {text}"),
        }
    }
    mode
}

/// `2023-11-14 22:13:20` (UTC) as seconds since the epoch.
fn epoch(date: &str, time: &str) -> i64 {
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]
}

#[test]
fn parses_tar_listing_lines() {
    let line = "hrwsr-sr-t root/staff 0 2023-11-14 22:13:20 ./usr/b link to ./usr/a";
    let got = parse_line(
        line,
        "hrwsr-sr-t 0/50 0 2023-11-14 22:13 ./usr/b link to ./usr/a",
    );
    assert_eq!(got.kind, 'h');
    assert_eq!(got.mode, 0o7755);
    assert_eq!(got.ids, "0/50");
    assert_eq!(got.names, "root/staff");
    assert_eq!(got.mtime, 1_700_000_000);
    assert_eq!(
        (got.path.as_str(), got.link.as_deref()),
        ("/usr/b", Some("/usr/a"))
    );
}
