//! Packages assembled byte by byte, for the shapes no well-behaved tool writes.

/// An `ar` archive of `members`, names written as given (append `/` for GNU style).
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100_644,
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend(header.as_bytes());
        out.extend(*data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// The members of an `ar` archive, read independently of the crate under test.
pub fn ar_members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(bytes.starts_with(b"!<arch>\n"));
    let mut pos = 8;
    let mut members = Vec::new();
    while pos < bytes.len() {
        let header = &bytes[pos..pos + 60];
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: usize = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .unwrap();
        members.push((name, bytes[pos + 60..pos + 60 + size].to_vec()));
        pos += 60 + size + size % 2;
    }
    members
}

/// The same package with the member called `name` replaced by `data` under `new_name`.
pub fn replace_member(deb: &[u8], name: &str, new_name: &str, data: &[u8]) -> Vec<u8> {
    let members = ar_members(deb);
    assert!(members.iter().any(|(n, _)| n == name), "no member {name}");
    let rebuilt: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, d)| {
            if n == name {
                (new_name, data)
            } else {
                (n.as_str(), d.as_slice())
            }
        })
        .collect();
    ar(&rebuilt)
}

/// One tar entry, written by hand so nothing normalises or refuses it.
pub struct Raw<'a> {
    pub path: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub link: &'a [u8],
    pub data: &'a [u8],
    /// The size field, when it should disagree with `data`.
    pub size: Option<u64>,
}

impl<'a> Raw<'a> {
    pub fn file(path: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw {
            path: path.as_bytes(),
            typeflag: b'0',
            mode: 0o644,
            link: b"",
            data,
            size: None,
        }
    }

    pub fn dir(path: &'a str) -> Raw<'a> {
        Raw {
            path: path.as_bytes(),
            typeflag: b'5',
            mode: 0o755,
            link: b"",
            data: b"",
            size: None,
        }
    }

    pub fn link(path: &'a str, typeflag: u8, target: &'a str) -> Raw<'a> {
        Raw {
            path: path.as_bytes(),
            typeflag,
            mode: 0o777,
            link: target.as_bytes(),
            data: b"",
            size: None,
        }
    }

    pub fn special(path: &'a str, typeflag: u8) -> Raw<'a> {
        Raw {
            path: path.as_bytes(),
            typeflag,
            mode: 0o644,
            link: b"",
            data: b"",
            size: None,
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// A GNU-format tar of `entries`, ended by two zero blocks.
pub fn tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut h = [0u8; 512];
        h[..entry.path.len()].copy_from_slice(entry.path);
        octal(&mut h[100..108], entry.mode.into());
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(
            &mut h[124..136],
            entry.size.unwrap_or(entry.data.len() as u64),
        );
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = entry.typeflag;
        h[157..157 + entry.link.len()].copy_from_slice(entry.link);
        h[257..265].copy_from_slice(b"ustar  \0");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend(h);
        out.extend(entry.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend([0u8; 1024]);
    out
}

/// A minimal valid control archive (uncompressed).
pub fn control_tar() -> Vec<u8> {
    tar(&[
        Raw::dir("./"),
        Raw::file("./control", b"Package: crafted\nVersion: 1\n"),
    ])
}

/// A package of `control.tar` and an uncompressed `data.tar`.
pub fn deb_with_data(data_tar: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control_tar()),
        ("data.tar", data_tar),
    ])
}
