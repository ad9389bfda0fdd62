//! Base images in every published form decode to the same bytes, sparsely, once; damaged
//! downloads are clear errors that leave nothing in the cache.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Fixture, Release, path, tool};
use pibake_image::base::{CacheOptions, Format, prepare};
use sha2::{Digest, Sha256};

fn cache(dir: &Path) -> CacheOptions {
    CacheOptions {
        dir: Some(dir.to_path_buf()),
        progress: false,
    }
}

/// Compresses `image` with the format's own command-line tool (an independent encoder).
fn compress(image: &Path, format: Format, out_dir: &Path) -> PathBuf {
    let name = image.file_name().unwrap().to_str().unwrap();
    let (out, mut cmd) = match format {
        Format::Xz => {
            let mut c = tool("xz");
            c.args(["-T0", "-1", "-k", "-c", path(image)]);
            (out_dir.join(format!("{name}.xz")), c)
        }
        Format::Zstd => {
            let mut c = tool("zstd");
            c.args(["-q", "-c", path(image)]);
            (out_dir.join(format!("{name}.zst")), c)
        }
        Format::Gzip => {
            let mut c = tool("gzip");
            c.args(["-1", "-c", path(image)]);
            (out_dir.join(format!("{name}.gz")), c)
        }
        Format::Zip => {
            let out = out_dir.join(format!("{name}.zip"));
            let mut c = tool("zip");
            c.current_dir(image.parent().unwrap())
                .args(["-q", "-1", path(&out), name]);
            (out, c)
        }
        Format::Raw => unreachable!(),
    };
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{cmd:?}");
    if format != Format::Zip {
        fs::write(&out, output.stdout).unwrap();
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_format_decodes_to_the_same_sparse_image_once() {
    let f = Fixture::new(Release::Bookworm);
    let original = fs::read(&f.image).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");

    let raw = prepare(&f.image, &cache(&cache_dir)).unwrap();
    assert_eq!(raw.format, Format::Raw);
    assert_eq!(raw.raw, f.image, "a raw image is used in place, not copied");

    for format in [Format::Xz, Format::Zstd, Format::Gzip, Format::Zip] {
        let compressed = compress(&f.image, format, work.path());
        assert_eq!(Format::detect(&compressed).unwrap(), format);

        let first = prepare(&compressed, &cache(&cache_dir)).unwrap();
        assert!(!first.reused, "{format:?}");
        let key = sha256_hex(&fs::read(&compressed).unwrap());
        assert_eq!(
            first.raw,
            cache_dir.join(format!("{key}.img")),
            "{format:?}"
        );
        let decoded = fs::read(&first.raw).unwrap();
        assert!(decoded == original, "{format:?}: decoded bytes differ");
        let meta = fs::metadata(&first.raw).unwrap();
        assert!(
            meta.blocks() * 512 < meta.len() / 2,
            "{format:?}: {} of {} bytes allocated, zero runs should be holes",
            meta.blocks() * 512,
            meta.len()
        );

        let again = prepare(&compressed, &cache(&cache_dir)).unwrap();
        assert!(again.reused, "{format:?}: the second run decodes again");
        assert_eq!(again.raw, first.raw);
    }
    let leftovers: Vec<_> = fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".img"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The error text, and the cache left with no entry and no temporary file.
fn refused(input: &Path, cache_dir: &Path) -> String {
    let err = prepare(input, &cache(cache_dir)).unwrap_err().to_string();
    let left: Vec<_> = fs::read_dir(cache_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "cache not clean after a failure: {left:?}");
    assert!(
        err.contains(input.to_str().unwrap()),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn damaged_downloads_are_clear_errors_and_never_cached() {
    let f = Fixture::new(Release::Trixie);
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");

    let xz = compress(&f.image, Format::Xz, work.path());
    let mut bytes = fs::read(&xz).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let corrupt = work.path().join("corrupt.img.xz");
    fs::write(&corrupt, &bytes).unwrap();
    let err = refused(&corrupt, &cache_dir);
    assert!(err.contains("xz data is truncated or corrupt"), "{err}");
    assert!(err.contains("download the image again"), "{err}");

    for (format, name) in [(Format::Zstd, "cut.img.zst"), (Format::Gzip, "cut.img.gz")] {
        let full = fs::read(compress(&f.image, format, work.path())).unwrap();
        let cut = work.path().join(name);
        fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
        let err = refused(&cut, &cache_dir);
        assert!(err.contains("truncated or corrupt"), "{format:?}: {err}");
    }

    let xz_full = fs::read(&xz).unwrap();
    let cut_xz = work.path().join("cut.img.xz");
    fs::write(&cut_xz, &xz_full[..xz_full.len() - 100]).unwrap();
    assert!(refused(&cut_xz, &cache_dir).contains("truncated or corrupt"));

    let garbage = work.path().join("trailing.img.xz");
    fs::write(&garbage, [xz_full.as_slice(), b"not xz"].concat()).unwrap();
    assert!(refused(&garbage, &cache_dir).contains("after the end"));
}

#[test]
fn a_zip_must_hold_exactly_one_image() {
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    for name in ["a.img", "b.img", "README.txt"] {
        fs::write(work.path().join(name), format!("{name}\n")).unwrap();
    }
    let zip = |out: &str, members: &[&str]| {
        let status = Command::new("zip")
            .current_dir(work.path())
            .args(["-q", out])
            .args(members)
            .status()
            .unwrap();
        assert!(status.success());
        work.path().join(out)
    };
    let two = zip("two.zip", &["a.img", "b.img", "README.txt"]);
    let err = refused(&two, &cache_dir);
    assert!(
        err.contains("exactly one .img file, it holds 2 (a.img, b.img)"),
        "{err}"
    );

    let none = zip("none.zip", &["README.txt"]);
    assert!(refused(&none, &cache_dir).contains("it holds 0"));
}

#[test]
fn an_empty_stream_is_not_an_image() {
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let empty = work.path().join("empty.img");
    fs::write(&empty, b"").unwrap();
    let gz = compress(&empty, Format::Gzip, work.path());
    assert!(refused(&gz, &cache_dir).contains("empty file, not a disk image"));
}
