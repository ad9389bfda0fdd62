//! `base:` by URL or by OS-catalog name: downloads resume, are checked by their sha256
//! and kept once per digest; `--offline` uses the cache alone; `pibake images` lists the
//! catalog's Raspberry Pi OS images; a cluster built from a URL base checks out.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::{Fixture, Release, e2fsck_clean, path, pibake, pibake_ok};
use crate::httpd::Httpd;
use pibake::basefetch::{Fetch, Wanted, download};
use pibake::inventory::baseref::HttpUrl;
use pibake_image::Sha256;

/// Bytes that do not repeat, so a resumed download joined at the wrong place shows.
fn body(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn wanted(server: &Httpd, at: &str, sha256: Sha256) -> Wanted {
    Wanted {
        url: HttpUrl::parse(&server.url(at)).unwrap(),
        sha256,
        size: None,
        by: "cluster.yaml",
    }
}

fn online(cache: &Path) -> Fetch<'_> {
    Fetch {
        cache_dir: cache,
        offline: false,
        progress: false,
    }
}

/// Nothing left beside the final name: no `.part`.
fn only_final(path: &Path) {
    let names: Vec<String> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [path.file_name().unwrap().to_string_lossy()]);
}

#[test]
fn a_cut_download_resumes_from_the_bytes_it_has() {
    let data = body(300_000);
    let server = Httpd::start([("/img/os.img.xz", data.clone())]);
    server.cut_after("/img/os.img.xz", 70_000);
    let cache = tempfile::tempdir().unwrap();
    let w = wanted(&server, "/img/os.img.xz", Sha256::of(&data));
    let got = download(&w, &online(cache.path())).unwrap();
    assert_eq!(server.requests("/img/os.img.xz"), [None, Some(70_000)]);
    assert_eq!(fs::read(&got).unwrap(), data);
    assert_eq!(
        got,
        cache
            .path()
            .join("bases")
            .join(Sha256::of(&data).to_string())
            .join("os.img.xz")
    );
    only_final(&got);
    // Cached with the right digest: found again with no request at all.
    let again = download(&w, &online(cache.path())).unwrap();
    assert_eq!(again, got);
    assert_eq!(server.total_requests(), 2);
}

#[test]
fn a_server_that_ignores_ranges_sends_it_all_again() {
    let data = body(200_000);
    let server = Httpd::start([("/os.img", data.clone())]);
    server.ignore_ranges();
    server.cut_after("/os.img", 50_000);
    let cache = tempfile::tempdir().unwrap();
    let w = wanted(&server, "/os.img", Sha256::of(&data));
    let got = download(&w, &online(cache.path())).unwrap();
    assert_eq!(server.requests("/os.img"), [None, Some(50_000)]);
    assert_eq!(fs::read(&got).unwrap(), data);
    only_final(&got);
}

#[test]
fn a_wrong_digest_is_refused_naming_both_and_nothing_is_kept() {
    let data = body(10_000);
    let server = Httpd::start([("/os.img.xz", data.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let expected = Sha256::of(b"another file");
    let w = wanted(&server, "/os.img.xz", expected);
    let err = download(&w, &online(cache.path())).unwrap_err().to_string();
    for part in [
        expected.to_string(),
        Sha256::of(&data).to_string(),
        server.url("/os.img.xz"),
    ] {
        assert!(err.contains(&part), "{part} not in: {err}");
    }
    let dir = cache.path().join("bases").join(expected.to_string());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "left in {dir:?}");
}

#[test]
fn offline_uses_the_cache_alone() {
    let data = body(5_000);
    let server = Httpd::start([("/os.img", data.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let w = wanted(&server, "/os.img", Sha256::of(&data));
    let offline = Fetch {
        offline: true,
        ..online(cache.path())
    };
    let err = download(&w, &offline).unwrap_err().to_string();
    assert!(err.contains("not in the cache"), "{err}");
    assert!(err.contains("without --offline"), "{err}");
    assert_eq!(server.total_requests(), 0);
    let got = download(&w, &online(cache.path())).unwrap();
    assert_eq!(server.total_requests(), 1);
    assert_eq!(download(&w, &offline).unwrap(), got);
    assert_eq!(server.total_requests(), 1);
}

/// Imager's list, in its real format: OS entries at the top and in nested categories, a
/// category linking to another list, an entry that is not Raspberry Pi OS, and Imager's
/// own non-download entry.
fn os_list(url: &str, sha256: &Sha256, size: usize) -> String {
    format!(
        r#"{{
  "imager": {{ "latest_version": "2.0.0", "url": "https://www.raspberrypi.com/software/" }},
  "os_list": [
    {{ "name": "Raspberry Pi OS (64-bit)", "description": "desktop", "icon": "https://h/i.png",
       "url": "https://downloads.example/raspios_arm64/2024-11-19-raspios-bookworm-arm64.img.xz",
       "extract_size": 6148849664, "extract_sha256": "{e}", "image_download_size": 1178523748,
       "image_download_sha256": "{e}", "release_date": "2024-11-19", "init_format": "systemd",
       "devices": ["pi5-64bit", "pi4-64bit"] }},
    {{ "name": "Raspberry Pi OS (other)", "description": "other images", "icon": "https://h/i.png",
       "subitems": [
         {{ "name": "Raspberry Pi OS Lite (64-bit)", "description": "no desktop", "icon": "https://h/i.png",
            "url": "{url}", "extract_size": 1000, "extract_sha256": "{e}",
            "image_download_size": {size}, "image_download_sha256": "{sha256}",
            "release_date": "2024-11-19", "init_format": "systemd", "devices": ["pi4-64bit"],
            "architecture": "armv8" }},
         {{ "name": "Legacy", "description": "older", "subitems": [
            {{ "name": "Raspberry Pi OS Lite (Legacy, 32-bit)", "description": "bullseye",
               "url": "https://downloads.example/raspios_oldstable_lite_armhf/lite.img.xz",
               "extract_size": 1, "extract_sha256": "{e}", "image_download_size": 380000000,
               "image_download_sha256": "{e}", "release_date": "2024-10-22",
               "init_format": "systemd", "devices": ["pi3-32bit"] }} ] }} ] }},
    {{ "name": "Other general-purpose OS", "description": "third parties",
       "subitems_url": "https://downloads.example/other.json" }},
    {{ "name": "Ubuntu Server 24.04 LTS (64-bit)", "description": "not Pi OS",
       "url": "https://cdimage.example/ubuntu-arm64.img.xz", "extract_size": 1,
       "extract_sha256": "{e}", "image_download_size": 1, "image_download_sha256": "{e}",
       "release_date": "2024-04-25", "init_format": "cloudinit", "devices": ["pi5-64bit"] }},
    {{ "name": "Erase", "description": "format the card", "icon": "https://h/e.png",
       "url": "internal://format", "release_date": "", "extract_size": 0 }}
  ]
}}"#,
        e = "e".repeat(64)
    )
}

#[test]
fn images_lists_the_catalogs_raspberry_pi_os_and_keeps_a_copy_for_offline() {
    let list = os_list("https://h/lite.img.xz", &Sha256::of(b"x"), 456_000_000);
    let server = Httpd::start([("/os_list.json", list.into_bytes())]);
    let cache = tempfile::tempdir().unwrap();
    let args = |offline: bool| {
        let mut a = vec![
            "--cache-dir".to_string(),
            path(cache.path()).to_string(),
            "images".into(),
            "--catalog".into(),
            server.url("/os_list.json"),
        ];
        if offline {
            a.push("--offline".into());
        }
        a
    };
    let run = |offline| {
        let a = args(offline);
        pibake_ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let text = run(false);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{text}");
    for (name, date, arch, size) in [
        ("Raspberry Pi OS (64-bit)", "2024-11-19", "arm64", "1.1 GiB"),
        (
            "Raspberry Pi OS Lite (64-bit)",
            "2024-11-19",
            "armv8",
            "434.9 MiB",
        ),
        (
            "Raspberry Pi OS Lite (Legacy, 32-bit)",
            "2024-10-22",
            "armhf",
            "362.4 MiB",
        ),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        let words: Vec<&str> = line[name.len()..].split_whitespace().collect();
        let expected: Vec<&str> = [date, arch].into_iter().chain(size.split(' ')).collect();
        assert_eq!(words, expected, "{line}");
    }
    assert!(
        !text.contains("Ubuntu") && !text.contains("Erase"),
        "{text}"
    );
    assert_eq!(server.total_requests(), 1);
    assert_eq!(run(true), text);
    assert_eq!(
        server.total_requests(),
        1,
        "--offline downloaded the catalog"
    );
    let mut json_args = vec!["--json".to_string()];
    json_args.extend(args(true));
    let json: serde_json::Value = serde_json::from_str(&pibake_ok(
        &json_args.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[1]["url"], "https://h/lite.img.xz");
    assert_eq!(json[1]["sha256"], Sha256::of(b"x").to_string());
}

/// A one-node cluster on `base` (the YAML after `base: `).
fn cluster(dir: &Path, base: &str) -> PathBuf {
    crate::common::lan_cluster(dir, "fetched", base, &["{ name: w1, role: worker }"])
}

/// A fixture base, xz-compressed as Raspberry Pi OS is published.
fn xz_base(f: &Fixture) -> Vec<u8> {
    let mut xz = Vec::new();
    liblzma::read::XzEncoder::new(fs::File::open(&f.image).unwrap(), 1)
        .read_to_end(&mut xz)
        .unwrap();
    xz
}

#[test]
fn a_cluster_builds_from_a_url_base_and_plans_offline_from_the_cache() {
    let f = Fixture::new(Release::Bookworm);
    let xz = xz_base(&f);
    let (sum, half) = (Sha256::of(&xz), xz.len() as u64 / 2);
    let server = Httpd::start([("/raspios/lite.img.xz", xz)]);
    server.cut_after("/raspios/lite.img.xz", half as usize);
    let work = tempfile::tempdir().unwrap();
    let url = server.url("/raspios/lite.img.xz");
    let path = cluster(
        work.path(),
        &format!("{{ url: \"{url}\", sha256: \"{sum}\" }}"),
    );
    let out = work.path().join("out");
    let cache = work.path().join("cache");
    // Not cached yet: --offline says so and asks for nothing.
    let o = pibake(&[
        "--cache-dir",
        crate::common::path(&cache),
        "plan",
        crate::common::path(&path),
        "--offline",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cluster.yaml:2:7:"),
        "{err}"
    );
    assert!(err.contains("not in the cache"), "{err}");
    assert_eq!(server.total_requests(), 0);
    crate::common::pibake_build(work.path(), &path, &out, &[]);
    assert_eq!(server.requests("/raspios/lite.img.xz"), [None, Some(half)]);
    e2fsck_clean(&out.join("w1.img"), f.root_offset);
    let validated = pibake_ok(&[
        "--cache-dir",
        crate::common::path(&cache),
        "validate",
        crate::common::path(&path),
    ]);
    assert!(validated.contains("cached at"), "{validated}");
    // Cached: plan --offline reads the base from the cache, with no request.
    let plan = pibake_ok(&[
        "--cache-dir",
        crate::common::path(&cache),
        "plan",
        crate::common::path(&path),
        "--offline",
    ]);
    assert!(plan.contains("w1"), "{plan}");
    assert_eq!(server.total_requests(), 2);
}

#[test]
fn a_catalog_name_resolves_through_the_catalog_and_typos_get_a_did_you_mean() {
    let f = Fixture::new(Release::Bookworm);
    let xz = xz_base(&f);
    let server = Httpd::start(Vec::<(&str, Vec<u8>)>::new());
    let url = server.url("/lite.img.xz");
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("os_list.json");
    fs::write(&list, os_list(&url, &Sha256::of(&xz), xz.len())).unwrap();
    server.put("/lite.img.xz", xz);
    let cache = work.path().join("cache");
    let plan = |cluster: &Path| {
        pibake(&[
            "--cache-dir",
            path(&cache),
            "plan",
            path(cluster),
            "--catalog",
            &format!("file://{}", list.display()),
        ])
    };
    let typo = cluster(
        work.path(),
        "{ catalog: \"Raspberry Pi OS Lite (64 bit)\" }",
    );
    let o = plan(&typo);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a misspelt name was accepted");
    assert!(
        err.contains("cluster.yaml:2:7: no image `Raspberry Pi OS Lite (64 bit)`"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `Raspberry Pi OS Lite (64-bit)`?"),
        "{err}"
    );
    assert!(err.contains("pibake images"), "{err}");
    assert_eq!(server.total_requests(), 0);
    let good = cluster(
        work.path(),
        "{ catalog: \"Raspberry Pi OS Lite (64-bit)\" }",
    );
    let o = plan(&good);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.requests("/lite.img.xz"), [None]);
}

#[test]
fn bad_base_values_are_refused_where_they_were_written() {
    let work = tempfile::tempdir().unwrap();
    let digest = "a".repeat(64);
    for (base, says) in [
        (
            format!("{{ url: ftp://x/os.img, sha256: {digest} }}"),
            "cluster.yaml:2:14: base.url: `ftp://x/os.img` is not an http:// or https:// URL",
        ),
        (
            format!(
                "{{ url: \"https://h/os.img\", sha256: {} }}",
                "a".repeat(63)
            ),
            "cluster.yaml:2:42: base.sha256: sha256 `aaaa",
        ),
        (
            format!("{{ url: \"https://h/os.img\", sha256: {digest}, mirror: x }}"),
            "unknown field `mirror`",
        ),
        (
            "{ url: \"https://h/os.img\" }".to_string(),
            "needs the file's `sha256:`",
        ),
    ] {
        let path = cluster(work.path(), &base);
        let err = pibake::inventory::Inventory::load(&path)
            .expect_err("bad base accepted")
            .to_string()
            .replace(&format!("{}/", work.path().display()), "");
        assert!(err.contains(says), "{base}: {err}");
        assert!(err.contains("cluster.yaml:2:"), "{base}: {err}");
    }
}
