//! Packages pibake must refuse, each with an error naming the package and the culprit.

use std::io;

use pibake_deb::{Deb, DebError, ErrorKind};

use crate::craft::{self, Raw, ar, control_tar, deb_with_data, tar};
use crate::fixture::{build, full_tree, small_tree};
use crate::roundtrip::entries;

const LABEL: &str = "crafted_1.0_all.deb";

/// Parses, reads the control files and walks the data: the first refusal on the way.
fn read(bytes: &[u8]) -> Result<(), DebError> {
    let deb = Deb::parse(LABEL, bytes)?;
    deb.control()?;
    entries(&deb).map(drop)
}

/// Asserts `bytes` is refused with `kind` and a message holding every one of `needles`.
fn refused(bytes: &[u8], kind: ErrorKind, needles: &[&str]) -> String {
    let err = read(bytes).expect_err("the package was accepted");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{LABEL}: ")),
        "no label: {message}"
    );
    assert_eq!(err.label(), LABEL);
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} does not mention {needle:?}"
        );
    }
    assert_eq!(err.kind(), kind, "{message}");
    message
}

/// Where a member's header starts in a package.
fn offset_of(bytes: &[u8], name: &str) -> usize {
    bytes
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .unwrap()
}

#[test]
fn not_an_ar_archive() {
    refused(
        b"PK\x03\x04 certainly not a deb",
        ErrorKind::Malformed,
        &["no `!<arch>` magic at byte 0"],
    );
    refused(b"", ErrorKind::Malformed, &["byte 0"]);
    refused(
        b"!<arch>\n",
        ErrorKind::Malformed,
        &["no `debian-binary` member"],
    );
}

#[test]
fn truncated_ar_member_and_header() {
    let deb = build(small_tree, "gzip", true).bytes;
    let at = offset_of(&deb, "data.tar.gz");
    let cut = &deb[..deb.len() - 10];
    refused(
        cut,
        ErrorKind::Malformed,
        &[&format!("member `data.tar.gz` at byte {at} is truncated")],
    );
    refused(
        &deb[..at + 30],
        ErrorKind::Malformed,
        &[&format!("truncated member header at byte {at}")],
    );
}

#[test]
fn xz_data_cut_in_the_middle() {
    let deb = build(full_tree, "xz", true).bytes;
    let data = &craft::ar_members(&deb)[2].1;
    let cut = craft::replace_member(&deb, "data.tar.xz", "data.tar.xz", &data[..data.len() / 2]);
    let at = offset_of(&cut, "data.tar.xz");
    refused(
        &cut,
        ErrorKind::Malformed,
        &[&format!("data.tar.xz at byte {at}: ")],
    );
}

#[test]
fn plain_data_cut_inside_a_file_is_not_a_short_file() {
    let deb = build(full_tree, "none", true).bytes;
    let data = &craft::ar_members(&deb)[2].1;
    let cut = craft::replace_member(&deb, "data.tar", "data.tar", &data[..data.len() / 2]);
    refused(
        &cut,
        ErrorKind::Malformed,
        &[
            "data.tar at byte",
            "`/usr/share/fixture/big` ends",
            "bytes early",
        ],
    );
    // A visitor that swallows the read error still sees the walk fail.
    let parsed = Deb::parse(LABEL, &cut).unwrap();
    let walk = parsed.each_data_entry(|_, body| {
        let _ = io::copy(body, &mut io::sink());
        Ok::<(), DebError>(())
    });
    assert!(walk.unwrap_err().to_string().contains("bytes early"));
}

#[test]
fn members_out_of_order() {
    let control = control_tar();
    let data = tar(&[Raw::dir("./")]);
    let swapped = ar(&[
        ("debian-binary", b"2.0\n"),
        ("data.tar", &data),
        ("control.tar", &control),
    ]);
    refused(
        &swapped,
        ErrorKind::Malformed,
        &["member `data.tar` at byte 72 comes before the control member"],
    );
    let late = ar(&[
        ("control.tar", &control),
        ("debian-binary", b"2.0\n"),
        ("data.tar", &data),
    ]);
    refused(
        &late,
        ErrorKind::Malformed,
        &["first member is `control.tar` at byte 8, not `debian-binary`"],
    );
    let twice = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control),
        ("data.tar", &data),
        ("data.tar", &data),
    ]);
    refused(
        &twice,
        ErrorKind::Malformed,
        &["second archive member `data.tar`"],
    );
    let missing = ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control)]);
    refused(&missing, ErrorKind::Malformed, &["no data member"]);
}

#[test]
fn unknown_and_unsupported_members() {
    let control = control_tar();
    let data = tar(&[Raw::dir("./")]);
    let extra = ar(&[
        ("debian-binary", b"2.0\n"),
        ("extra", b"?"),
        ("control.tar", &control),
        ("data.tar", &data),
    ]);
    refused(
        &extra,
        ErrorKind::Malformed,
        &["unknown member `extra` at byte 72"],
    );
    let bz2 = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control),
        ("data.tar.bz2", b"BZh9"),
    ]);
    refused(
        &bz2,
        ErrorKind::Unsupported,
        &["member `data.tar.bz2`", "bzip2 compression"],
    );
    let lzma = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.lzma", b"]"),
        ("data.tar", &data),
    ]);
    refused(
        &lzma,
        ErrorKind::Unsupported,
        &["member `control.tar.lzma` at byte 72", "lzma compression"],
    );
    let empty = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control),
        ("data.tar", b""),
    ]);
    refused(
        &empty,
        ErrorKind::Malformed,
        &["member `data.tar`", "is empty"],
    );
}

#[test]
fn format_versions() {
    let control = control_tar();
    let data = tar(&[Raw::dir("./")]);
    let with = |version: &[u8]| {
        ar(&[
            ("debian-binary", version),
            ("control.tar", &control),
            ("data.tar", &data),
        ])
    };
    assert!(read(&with(b"2.0\n")).is_ok());
    assert!(read(&with(b"2.1\nextra line\n")).is_ok());
    refused(
        &with(b"3.0\n"),
        ErrorKind::Unsupported,
        &["format version `3.0`"],
    );
    refused(
        &with(b"2.0"),
        ErrorKind::Malformed,
        &["debian-binary at byte 8", "does not end in a newline"],
    );
    refused(
        &with(b"!<arch>\n"),
        ErrorKind::Malformed,
        &["malformed format version"],
    );
}

#[test]
fn paths_leaving_the_root() {
    for path in ["../etc/passwd", "./usr/../../etc/passwd", "usr/lib/.."] {
        let data = tar(&[Raw::dir("./"), Raw::file(path, b"root::0:0:::\n")]);
        refused(
            &deb_with_data(&data),
            ErrorKind::Unsafe,
            &["data.tar at byte", &format!("`{path}`"), "`..`"],
        );
    }
    let data = tar(&[
        Raw::file("./usr/a", b"x"),
        Raw::link("./usr/b", b'1', "../../etc/shadow"),
    ]);
    refused(
        &deb_with_data(&data),
        ErrorKind::Unsafe,
        &["hard link `/usr/b` to `../../etc/shadow`"],
    );
}

#[test]
fn device_nodes_and_fifos() {
    for (flag, what) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "FIFO"),
    ] {
        let data = tar(&[
            Raw::dir("./"),
            Raw::dir("./dev/"),
            Raw::special("./dev/foo", flag),
        ]);
        let message = refused(
            &deb_with_data(&data),
            ErrorKind::Unsupported,
            &[&format!("`/dev/foo` is a {what}")],
        );
        assert!(
            message.contains("install it on first boot instead"),
            "{message}"
        );
    }
    for (flag, what) in [
        (b'7', "contiguous file"),
        (b'g', "PAX global header"),
        (b'Z', "tar entry of unknown type `Z`"),
    ] {
        let data = tar(&[Raw::special("./odd", flag)]);
        refused(
            &deb_with_data(&data),
            ErrorKind::Malformed,
            &[&format!("`/odd` is a {what}")],
        );
    }
}

#[test]
fn hard_links_to_nothing_earlier() {
    let cases: [&[Raw<'_>]; 3] = [
        &[Raw::dir("./"), Raw::link("./usr/b", b'1', "./usr/a")],
        &[
            Raw::link("./usr/b", b'1', "./usr/a"),
            Raw::file("./usr/a", b"later"),
        ],
        &[Raw::dir("./usr/a/"), Raw::link("./usr/b", b'1', "./usr/a")],
    ];
    for entries in cases {
        refused(
            &deb_with_data(&tar(entries)),
            ErrorKind::Unsafe,
            &["hard link `/usr/b` points to `/usr/a`"],
        );
    }
    let fine = tar(&[
        Raw::file("usr/a", b"data"),
        Raw::link("./usr/b", b'1', "/usr/a"),
    ]);
    assert!(read(&deb_with_data(&fine)).is_ok());
}

#[test]
fn the_root_stays_a_directory() {
    for root in [Raw::file(".", b""), Raw::link("./", b'2', "/tmp")] {
        refused(
            &deb_with_data(&tar(&[root])),
            ErrorKind::Unsafe,
            &["the root `/` is a"],
        );
    }
}

#[test]
fn symlinks_need_a_target() {
    let data = tar(&[Raw::link("./usr/l", b'2', "")]);
    refused(
        &deb_with_data(&data),
        ErrorKind::Malformed,
        &["symlink `/usr/l` has an empty target"],
    );
}

#[test]
fn sizes_that_disagree_with_the_kind_or_the_archive() {
    let mut dir = Raw::dir("./usr/");
    dir.size = Some(512);
    dir.data = &[0; 512];
    refused(
        &deb_with_data(&tar(&[dir])),
        ErrorKind::Malformed,
        &["`/usr` is a directory but declares 512 bytes"],
    );
    // A size field beyond the end of the archive: the body is cut short.
    let mut file = Raw::file("./usr/f", b"abc");
    file.size = Some(4096);
    let mut data = tar(&[file]);
    data.truncate(1024);
    refused(
        &deb_with_data(&data),
        ErrorKind::Malformed,
        &["`/usr/f` ends", "bytes early"],
    );
}

#[test]
fn trailing_garbage_after_the_archive() {
    for (compression, name) in [
        ("xz", "data.tar.xz"),
        ("gzip", "data.tar.gz"),
        ("zstd", "data.tar.zst"),
    ] {
        let deb = build(small_tree, compression, true).bytes;
        let mut data = craft::ar_members(&deb)[2].1.clone();
        data.extend(b"garbage after the stream");
        let bad = craft::replace_member(&deb, name, name, &data);
        let at = offset_of(&bad, name);
        refused(
            &bad,
            ErrorKind::Malformed,
            &[&format!("{name} at byte {at}: ")],
        );
    }
    let mut data = tar(&[Raw::file("./a", b"a")]);
    data.extend(b"a second archive, perhaps");
    refused(
        &deb_with_data(&data),
        ErrorKind::Malformed,
        &["data.tar at byte", "non-zero bytes after the end"],
    );
}

#[test]
fn control_archive_holds_plain_top_level_files_only() {
    let data = tar(&[Raw::dir("./")]);
    let with = |control: &[u8]| {
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", control),
            ("data.tar", &data),
        ])
    };
    let control = tar(&[Raw::file("./control", b"P"), Raw::dir("./scripts/")]);
    refused(
        &with(&control),
        ErrorKind::Malformed,
        &["control.tar at byte 72", "`./scripts/` is a directory"],
    );
    let control = tar(&[
        Raw::file("./control", b"P"),
        Raw::link("./postinst", b'2', "/bin/sh"),
    ]);
    refused(
        &with(&control),
        ErrorKind::Malformed,
        &["`./postinst` is a symlink"],
    );
    let control = tar(&[Raw::file("./control", b"P"), Raw::file("./sub/x", b"")]);
    refused(
        &with(&control),
        ErrorKind::Malformed,
        &["`./sub/x` is not a plain top-level control file name"],
    );
    let control = tar(&[Raw::file("./md5sums", b"")]);
    refused(
        &with(&control),
        ErrorKind::Malformed,
        &["control.tar at byte 72: no `control` file"],
    );
    let control = tar(&[Raw::file("./control", b"P"), Raw::file("control", b"Q")]);
    refused(
        &with(&control),
        ErrorKind::Malformed,
        &["`control` appears twice"],
    );
}

#[test]
fn body_errors_carry_the_package_error() {
    let mut file = Raw::file("./usr/f", b"abc");
    file.size = Some(4096);
    let mut data = tar(&[file]);
    data.truncate(1024);
    let deb = deb_with_data(&data);
    let parsed = Deb::parse(LABEL, &deb).unwrap();
    let walk = parsed.each_data_entry(|_, body| {
        let error = body.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        Err(crate::roundtrip::deb_error(error))
    });
    let message = walk.unwrap_err().to_string();
    let at = offset_of(&deb, "data.tar");
    assert!(
        message.starts_with(&format!("{LABEL}: data.tar at byte {at}: `/usr/f` ends")),
        "{message}"
    );
}
