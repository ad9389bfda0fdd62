//! Batches: compressed outputs that the real `xz`, `zstd` and libarchive decode to the
//! raw image,
//! pibake reading its own compressed outputs back as a base, the disk-space refusal, and
//! interrupted builds that never leave a file under a final name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Fixture, Release, example_on, pibake_fails, pibake_ok, tool};

/// The desk example with `n` workers instead of three, on `base`.
fn desk_with(n: usize, base: &Path, dir: &Path) -> PathBuf {
    let path = example_on(Path::new("examples/desk"), base, dir);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("node[1-3]", &format!("node[01-{n:02}]"));
    fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pibake build CLUSTER --out OUT` of raw and zst images, with the cache in `cache`.
fn build_raw_zst<'a>(cluster: &'a Path, out: &'a Path, cache: &'a Path) -> [&'a str; 10] {
    [
        "build",
        s(cluster),
        "--out",
        s(out),
        "--format",
        "raw",
        "--format",
        "zst",
        "--cache-dir",
        s(cache),
    ]
}

/// The names in `dir`, sorted, without the build's lock file.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".pibake.lock")
        .collect();
    v.sort();
    v
}

fn decoded(tool_name: &str, file: &Path) -> Vec<u8> {
    let out = tool(tool_name)
        .args(["-d", "-c", s(file)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool_name} -d {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The bytes of each stream of an .xz file, as `xz --robot --list` locates them.
fn xz_streams(file: &Path) -> Vec<Vec<u8>> {
    let out = tool("xz")
        .args(["--robot", "--list", "--verbose", s(file)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let data = fs::read(file).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("stream\t"))
        .map(|l| {
            let f: Vec<usize> = l
                .split('\t')
                .skip(1)
                .take(5)
                .map(|x| x.parse().unwrap())
                .collect();
            // number, blocks, compressed offset, uncompressed offset, compressed size
            data[f[2]..f[2] + f[4]].to_vec()
        })
        .collect()
}

#[test]
fn xz_and_zst_outputs_decode_to_the_raw_image_and_serve_as_a_base() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let cluster = desk_with(2, &f.image, work.path());
    let out = work.path().join("out");
    pibake_ok(&[
        "build",
        s(&cluster),
        "--out",
        s(&out),
        "--format",
        "raw",
        "--format",
        "zst",
        "--format",
        "xz",
        "--cache-dir",
        s(&cache),
    ]);
    for node in ["head", "node01", "node02"] {
        let raw = fs::read(out.join(format!("{node}.img"))).unwrap();
        for (t, ext) in [("zstd", "zst"), ("xz", "xz")] {
            let file = out.join(format!("{node}.img.{ext}"));
            assert!(
                decoded(t, &file) == raw,
                "{node}: `{t} -d` of the .{ext} is not the raw image"
            );
            // bsdcat is libarchive, the library Raspberry Pi Imager decodes images with.
            let out = tool("bsdcat").arg(&file).output().unwrap();
            assert!(
                out.status.success() && out.stdout == raw,
                "{node}: libarchive's bsdcat does not decode the .{ext} to the raw image"
            );
        }
    }
    // `xz --list` sees one stream per 4 MiB chunk, and the nodes share every stream but
    // those of the chunks they changed.
    let head_streams = xz_streams(&out.join("head.img.xz"));
    let other_streams = xz_streams(&out.join("node01.img.xz"));
    let len = fs::metadata(out.join("head.img")).unwrap().len();
    assert_eq!(head_streams.len() as u64, len.div_ceil(4 << 20));
    let same = head_streams
        .iter()
        .zip(&other_streams)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same * 2 > head_streams.len(),
        "only {same} of {} streams are shared",
        head_streams.len()
    );
    let base_xz = fs::read(out.join("head.img.xz")).unwrap();

    // pibake takes its own outputs as a base: concatenated streams and frames decode whole.
    let head = out.join("head.img");
    for ext in ["xz", "zst"] {
        let path = pibake_ok(&[
            "unpack",
            s(&out.join(format!("head.img.{ext}"))),
            "--cache-dir",
            s(&work.path().join(format!("cache-{ext}"))),
        ]);
        let unpacked = PathBuf::from(path.trim());
        assert!(
            fs::read(&unpacked).unwrap() == fs::read(&head).unwrap(),
            "pibake unpack of its own .{ext} differs from the raw image"
        );
    }

    // The same build with only compressed formats gives the same bytes, and no raw file.
    let only = work.path().join("only");
    pibake_ok(&[
        "build",
        s(&cluster),
        "--out",
        s(&only),
        "--format",
        "xz",
        "--cache-dir",
        s(&cache),
    ]);
    assert!(!only.join("head.img").exists());
    assert!(fs::read(only.join("head.img.xz")).unwrap() == base_xz);
    // verify --manifest checks a card holding the raw image against a compressed build.
    pibake_ok(&[
        "verify",
        s(&head),
        "--manifest",
        s(&only.join("manifest.json")),
        "--node",
        "head",
    ]);
}

#[test]
fn a_target_that_cannot_hold_the_outputs_is_refused_before_any_output() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let cluster = desk_with(20, &f.image, work.path());
    let small = work.path().join("small");
    fs::create_dir(&small).unwrap();
    // A filesystem of 64 MiB: a few of the fixture's images fit, 21 do not.
    let mounted = tool("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "pibake-test", s(&small)])
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root, as CI has");
    let err = pibake_fails(&[
        "build",
        s(&cluster),
        "--out",
        s(&small),
        "--cache-dir",
        s(&work.path().join("cache")),
    ]);
    let left = names(&small);
    tool("umount").arg(&small).status().unwrap();
    assert!(err.contains("21 node(s) need about"), "{err}");
    assert!(err.contains("GiB free"), "{err}");
    assert!(
        err.contains("--format zst"),
        "the hint names a way out: {err}"
    );
    assert!(left.is_empty(), "files were written: {left:?}");
}

#[test]
fn an_interrupted_build_never_leaves_a_file_under_a_final_name() {
    let f = Fixture::new(Release::Bullseye);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let cluster = desk_with(40, &f.image, work.path());
    let reference = work.path().join("reference");
    pibake_ok(&build_raw_zst(&cluster, &reference, &cache));
    let out = work.path().join("out");
    for (signal, after_ms) in [("INT", 150), ("TERM", 400), ("KILL", 250)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pibake"))
            .args(build_raw_zst(&cluster, &out, &cache))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        tool("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        if status.success() {
            // The build won the race; its outputs are checked below all the same.
        } else if signal != "KILL" {
            assert!(stderr.contains("interrupted"), "{signal}: {stderr}");
            let parts: Vec<String> = names(&out)
                .into_iter()
                .filter(|n| n.ends_with(".part"))
                .collect();
            assert!(
                parts.is_empty(),
                "{signal}: temporary files left: {parts:?}"
            );
        }
        // Whatever is under a final name is complete: byte for byte the reference build's.
        for name in names(&out) {
            if name.ends_with(".part") || !name.contains(".img") {
                continue;
            }
            assert!(
                fs::read(out.join(&name)).unwrap() == fs::read(reference.join(&name)).unwrap(),
                "{signal} after {after_ms} ms: {name} is not the complete image"
            );
        }
    }
    // A later build removes what a killed one left, and finishes the job.
    pibake_ok(&build_raw_zst(&cluster, &out, &cache));
    assert!(names(&out).iter().all(|n| !n.ends_with(".part")));
    let out_names = names(&out);
    assert_eq!(out_names, names(&reference));
    for name in out_names.iter().filter(|n| n.contains(".img")) {
        assert!(fs::read(out.join(name)).unwrap() == fs::read(reference.join(name)).unwrap());
    }
}
