//! `pibake.rpi-imager-manifest`: every build lists its nodes for Raspberry Pi Imager. Each
//! entry is checked against Imager's own schema (vendored in tests/fixtures/imager, see
//! the README there) and against the files it names: sizes, sha256 of the file and of the
//! image it decompresses to (Imager refuses to write a card on a mismatch), `file://`
//! URLs of files that exist.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{Fixture, Release, pibake_build, tool};

const SCHEMA: &str = "tests/fixtures/imager/os-list-schema.json";

/// A two-node cluster (a worker and a spare) on `base`, in `dir`.
fn cluster(dir: &Path, base: &Path) -> PathBuf {
    crate::common::lan_cluster(
        dir,
        "imaged",
        &base.display().to_string(),
        &[
            "{ name: n1, role: worker }",
            "{ name: n2, role: worker, spare: true }",
        ],
    )
}

fn manifest(out: &Path) -> Value {
    let text = fs::read_to_string(out.join("pibake.rpi-imager-manifest")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    hex_of(&Sha256::digest(bytes))
}

fn hex_of(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The local path a `file://` URL names (the test paths need no percent-decoding but
/// for what tempfile never makes).
fn local(url: &Value) -> PathBuf {
    let url = url.as_str().expect("a URL string");
    let path = url.strip_prefix("file:///").expect("a file:// URL");
    assert!(
        !path.contains('%'),
        "{url}: the test's paths need no escapes"
    );
    PathBuf::from(format!("/{path}"))
}

/// `tool -dc FILE`'s output: the image a compressed file expands to.
fn decompress(tool_name: &str, file: &Path) -> Vec<u8> {
    let out = tool(tool_name).arg("-dc").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{tool_name} -dc {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Checks `value` against the schema node `schema`, as draft-07 reads the keywords Imager's
/// schema uses (`type`, `required`, `enum`, `properties`, `additionalProperties: false`,
/// `items`, `anyOf`); the failures, with the path where each is.
fn check(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(any) = schema["anyOf"].as_array() {
        let fits = any.iter().any(|s| {
            let mut e = Vec::new();
            check(s, value, at, &mut e);
            e.is_empty()
        });
        if !fits {
            let mut first = Vec::new();
            check(&any[0], value, at, &mut first);
            errors.push(format!(
                "{at}: fits no anyOf branch; as an OS entry: {first:?}"
            ));
        }
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            other => panic!("{at}: the schema uses type {other}, which this check does not know"),
        };
        if !ok {
            errors.push(format!("{at}: {value} is not of type {t}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(obj) = value.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errors.push(format!("{at}: `{r}` is missing"));
            }
        }
        for (k, v) in obj {
            match schema["properties"].get(k) {
                Some(s) => check(s, v, &format!("{at}/{k}"), errors),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: `{k}` is not allowed"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(items, v, &format!("{at}/{i}"), errors);
        }
    }
}

/// The manifest fits Imager's schema, by the walk above and, where Python's `jsonschema`
/// is installed, by a draft-07 validator too.
fn fits_the_schema(out: &Path) {
    let schema: Value = serde_json::from_str(&fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let mut errors = Vec::new();
    check(&schema, &manifest(out), "", &mut errors);
    assert!(errors.is_empty(), "against Imager's schema: {errors:#?}");
    // A second, independent reader of the schema (`bash .ci/run` installs it).
    let script = "import json,sys,jsonschema\njsonschema.Draft7Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))";
    let o = Command::new("python3")
        .args(["-c", script, SCHEMA])
        .arg(out.join("pibake.rpi-imager-manifest"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "jsonschema: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The checks every entry gets: the fields pibake sets, and the file at `url` by size and
/// sha256. Returns the raw image the entry describes (the file itself, or what it
/// decompresses to).
fn entry_matches_its_files(e: &Value, node: &str, suffix: &str) -> Vec<u8> {
    assert_eq!(e["name"], format!("pibake: {node}"));
    assert_eq!(e["init_format"], "none", "Imager must not customise {node}");
    assert_eq!(e["release_date"], "2023-11-14", "SOURCE_DATE_EPOCH's day");
    assert_eq!(e["icon"], "");
    let file = local(&e["url"]);
    assert!(
        file.to_str()
            .unwrap()
            .ends_with(&format!("/{node}{suffix}")),
        "{}",
        file.display()
    );
    let bytes = fs::read(&file).unwrap();
    assert_eq!(e["image_download_size"], bytes.len() as u64);
    assert_eq!(e["image_download_sha256"], hex(&bytes));
    let raw = match suffix {
        ".img.xz" => decompress("xz", &file),
        ".img.zst" => decompress("zstd", &file),
        _ => bytes,
    };
    assert_eq!(e["extract_size"], raw.len() as u64);
    assert_eq!(
        e["extract_sha256"],
        hex(&raw),
        "{node}: Imager would refuse"
    );
    raw
}

/// Raw, then xz with zst beside it and `--bmap`, then zst alone, each with `--sha256`
/// (which writes the manifest): each manifest fits the schema and its entries their
/// files; the image digest is the same whatever the format (the node is rebuilt with the
/// same keys), and the bmap is named.
#[test]
fn entries_name_existing_files_with_their_sizes_and_digests() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), &f.image);
    let runs: [(&str, &[&str], &str); 3] = [
        ("raw", &["--sha256"], ".img"),
        (
            "xz",
            &["--format", "zst", "--format", "xz", "--bmap", "--sha256"],
            ".img.xz",
        ),
        ("zst", &["--format", "zst", "--sha256"], ".img.zst"),
    ];
    let mut images: Vec<Vec<u8>> = Vec::new();
    for (dir, extra, suffix) in runs {
        let out = work.path().join(dir);
        pibake_build(work.path(), &cluster, &out, extra);
        fits_the_schema(&out);
        let m = manifest(&out);
        assert!(m.get("imager").is_none(), "no catalogue metadata: {m}");
        let list = m["os_list"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{m}");
        for (e, node) in list.iter().zip(["n1", "n2"]) {
            let raw = entry_matches_its_files(e, node, suffix);
            if node == "n1" {
                images.push(raw);
            }
            assert_eq!(e["architecture"], "armv8");
            assert_eq!(
                e["devices"],
                serde_json::json!(["pi5-64bit", "pi4-64bit", "pi3-64bit"])
            );
            match e.get("bmap_url") {
                Some(b) => {
                    assert!(extra.contains(&"--bmap"), "a bmap_url without --bmap");
                    assert_eq!(local(b), out.join(format!("{node}.img.bmap")));
                    assert!(local(b).is_file());
                }
                None => assert!(!extra.contains(&"--bmap"), "no bmap_url with --bmap"),
            }
        }
        let d = list[0]["description"].as_str().unwrap();
        assert!(
            d.contains("role worker") && d.contains("lan 10.7.0.10"),
            "{d}"
        );
        assert!(list[1]["description"].as_str().unwrap().contains("(spare)"));
    }
    assert!(
        images.iter().all(|i| i == &images[0]),
        "n1's image differs between formats"
    );
}

/// `--node` rebuilds one node's entry and keeps the others'; an armhf base gets Imager's
/// 32-bit names. A build without `--sha256` hashes no image in full, so it writes no
/// entry and drops the entries of the nodes it rebuilt, which no longer describe them.
#[test]
fn a_partial_build_keeps_the_other_entries_and_armhf_is_32_bit() {
    let f = Fixture::new(Release::Bullseye);
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), &f.image);
    let out = work.path().join("out");
    pibake_build(work.path(), &cluster, &out, &["--sha256"]);
    let before = manifest(&out);
    pibake_build(
        work.path(),
        &cluster,
        &out,
        &["--node", "n2", "--format", "xz", "--sha256"],
    );
    fits_the_schema(&out);
    let after = manifest(&out);
    let list = after["os_list"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{after}");
    assert_eq!(list[0], before["os_list"][0], "n1's entry was not kept");
    entry_matches_its_files(&list[1], "n2", ".img.xz");
    assert_eq!(list[1]["architecture"], "armhf");
    assert_eq!(list[1]["devices"][0], "pi5-32bit");
    assert_eq!(
        hex_of(&Sha256::digest(fs::read(out.join("n1.img")).unwrap())),
        list[0]["extract_sha256"].as_str().unwrap()
    );

    pibake_build(work.path(), &cluster, &out, &["--node", "n2"]);
    let list = manifest(&out)["os_list"].as_array().unwrap().clone();
    assert_eq!(
        list,
        vec![before["os_list"][0].clone()],
        "n2's stale entry kept"
    );
    pibake_build(work.path(), &cluster, &out, &[]);
    assert!(
        !out.join("pibake.rpi-imager-manifest").exists(),
        "a manifest of stale entries"
    );
}
