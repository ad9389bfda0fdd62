//! The apt file store and its fetcher against a local HTTP server: parallel downloads,
//! resumed and restarted downloads, corruption in the cache and on the wire, offline
//! builds and mirror rules.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use pibake::packages::cache::{Fetched, Store, Wanted};
use pibake::packages::fetch::Fetcher;
use pibake_image::digest::Sha256;

use crate::httpd::Httpd;

/// `len` bytes that differ for every `seed` and do not repeat in short periods.
fn blob(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn wanted(name: &str, url: String, bytes: &[u8]) -> Wanted {
    Wanted {
        name: name.to_string(),
        url,
        sha256: Sha256::of(bytes),
        size: bytes.len() as u64,
    }
}

fn online() -> Fetcher {
    Fetcher::new(&BTreeMap::new(), false)
}

fn offline() -> Fetcher {
    Fetcher::new(&BTreeMap::new(), true)
}

/// Everything left in the store's directory, by name.
fn listing(cache: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache.join("apt/sha256"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn several_files_download_in_parallel_verified_and_are_then_reused() {
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("/debian/pool/p{i}.deb"),
                blob(i, 100_000 + i as usize * 37_123),
            )
        })
        .collect();
    let server = Httpd::start(files.iter().map(|(p, b)| (p.as_str(), b.clone())));
    let want: Vec<Wanted> = files
        .iter()
        .map(|(p, b)| wanted(p, server.url(p), b))
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    let got = store.ensure(&want, &online(), 4, false).unwrap();
    let total: u64 = want.iter().map(|w| w.size).sum();
    assert_eq!(
        got,
        Fetched {
            files: 6,
            bytes: total
        }
    );
    for ((_, bytes), w) in files.iter().zip(&want) {
        let path = store.path(&w.sha256);
        assert_eq!(
            path,
            cache.path().join("apt/sha256").join(w.sha256.to_string())
        );
        assert_eq!(&fs::read(&path).unwrap(), bytes);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    assert_eq!(listing(cache.path()).len(), 6, "no part left behind");
    let again = store.ensure(&want, &online(), 4, false).unwrap();
    assert_eq!(again, Fetched::default());
    assert_eq!(server.total_requests(), 6);
}

#[test]
fn an_interrupted_download_resumes_with_a_range() {
    let bytes = blob(7, 1_000_000);
    let server = Httpd::start([("/a.deb", bytes.clone())]);
    server.cut_after("/a.deb", 400_000);
    let want = [wanted("a 1.0 arm64", server.url("/a.deb"), &bytes)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    let err = store
        .ensure(&want, &online(), 2, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&server.url("/a.deb")), "{err}");
    assert!(err.contains("--offline"), "{err}");
    let part = cache
        .path()
        .join(format!("apt/sha256/{}.part", want[0].sha256));
    let had = fs::metadata(&part).unwrap().len();
    assert!(had > 0 && had <= 400_000, "part holds {had} bytes");
    assert!(!store.path(&want[0].sha256).exists());

    let got = store.ensure(&want, &online(), 2, false).unwrap();
    assert_eq!(server.requests("/a.deb"), [None, Some(had)]);
    assert_eq!(
        got,
        Fetched {
            files: 1,
            bytes: bytes.len() as u64 - had
        }
    );
    assert!(got.bytes < bytes.len() as u64);
    assert_eq!(fs::read(store.path(&want[0].sha256)).unwrap(), bytes);
    assert!(!part.exists());
}

#[test]
fn a_server_ignoring_ranges_still_ends_with_the_right_file() {
    let bytes = blob(8, 500_000);
    let server = Httpd::start([("/b.deb", bytes.clone())]);
    server.ignore_ranges();
    server.cut_after("/b.deb", 200_000);
    let want = [wanted("b 2.0 arm64", server.url("/b.deb"), &bytes)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    assert!(store.ensure(&want, &online(), 1, false).is_err());
    let got = store.ensure(&want, &online(), 1, false).unwrap();
    let asked = server.requests("/b.deb");
    assert_eq!(asked.len(), 2);
    assert!(matches!(asked[1], Some(n) if n > 0), "{asked:?}");
    assert_eq!(
        got,
        Fetched {
            files: 1,
            bytes: bytes.len() as u64
        }
    );
    assert_eq!(fs::read(store.path(&want[0].sha256)).unwrap(), bytes);
}

#[test]
fn a_stale_part_is_fetched_again_from_scratch_once() {
    let bytes = blob(9, 300_000);
    let server = Httpd::start([("/c.deb", bytes.clone())]);
    let want = [wanted("c 3.0 arm64", server.url("/c.deb"), &bytes)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    fs::create_dir_all(cache.path().join("apt/sha256")).unwrap();
    let part = cache
        .path()
        .join(format!("apt/sha256/{}.part", want[0].sha256));
    fs::write(&part, blob(10, 1000)).unwrap();
    let got = store.ensure(&want, &online(), 1, false).unwrap();
    assert_eq!(server.requests("/c.deb"), [Some(1000), None]);
    assert_eq!(got.files, 1);
    assert_eq!(fs::read(store.path(&want[0].sha256)).unwrap(), bytes);
}

#[test]
fn a_corrupted_cached_file_is_detected_and_fetched_again() {
    let bytes = blob(11, 200_000);
    let server = Httpd::start([("/d.deb", bytes.clone())]);
    let want = [wanted("d 4.0 arm64", server.url("/d.deb"), &bytes)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    store.ensure(&want, &online(), 1, false).unwrap();
    let path = store.path(&want[0].sha256);
    let mut damaged = bytes.clone();
    damaged[123_456] ^= 0x20;
    fs::write(&path, &damaged).unwrap();
    let got = store.ensure(&want, &online(), 1, false).unwrap();
    assert_eq!(
        got,
        Fetched {
            files: 1,
            bytes: bytes.len() as u64
        }
    );
    assert_eq!(server.requests("/d.deb"), [None, None]);
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn read_and_put_verify_what_the_store_holds() {
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    let index = b"Package: a\nVersion: 1\n".to_vec();
    let sha = Sha256::of(&index);
    let size = index.len() as u64;
    assert_eq!(store.read(&sha, size).unwrap(), None);
    let path = store.put(&sha, &index).unwrap();
    assert_eq!(path, store.path(&sha));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(store.read(&sha, size).unwrap(), Some(index.clone()));
    let mut damaged = index.clone();
    damaged[0] = b'p';
    fs::write(&path, &damaged).unwrap();
    assert_eq!(store.read(&sha, size).unwrap(), None);
    assert!(!path.exists(), "a corrupt file is removed");
    assert_eq!(listing(cache.path()), Vec::<String>::new());
}

#[test]
fn a_sha_mismatch_from_the_server_names_the_package_and_leaves_nothing() {
    let promised = blob(12, 50_000);
    let served = blob(13, 50_000);
    let server = Httpd::start([("/e.deb", served.clone())]);
    let want = [wanted("e 5.0 arm64", server.url("/e.deb"), &promised)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    let err = store
        .ensure(&want, &online(), 1, false)
        .unwrap_err()
        .to_string();
    for part in [
        "e 5.0 arm64".to_string(),
        server.url("/e.deb"),
        Sha256::of(&promised).to_string(),
        Sha256::of(&served).to_string(),
    ] {
        assert!(err.contains(&part), "{part} missing from: {err}");
    }
    assert_eq!(
        server.requests("/e.deb"),
        [None],
        "no retry of a fresh download"
    );
    assert_eq!(listing(cache.path()), Vec::<String>::new());
}

#[test]
fn offline_with_everything_cached_makes_no_requests() {
    let bytes = blob(14, 10_000);
    let server = Httpd::start([("/f.deb", bytes.clone())]);
    let want = [wanted("f 6.0 arm64", server.url("/f.deb"), &bytes)];
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    store.ensure(&want, &online(), 1, false).unwrap();
    assert_eq!(server.total_requests(), 1);
    let got = store.ensure(&want, &offline(), 1, false).unwrap();
    assert_eq!(got, Fetched::default());
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn offline_with_something_missing_names_it_and_makes_no_requests() {
    let (have, lack) = (blob(15, 10_000), blob(16, 10_000));
    let server = Httpd::start([("/g.deb", have.clone()), ("/h.deb", lack.clone())]);
    let g = wanted("g 7.0 arm64", server.url("/g.deb"), &have);
    let h = wanted("h 8.0 arm64", server.url("/h.deb"), &lack);
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    store
        .ensure(std::slice::from_ref(&g), &online(), 1, false)
        .unwrap();
    let err = store
        .ensure(&[g, h], &offline(), 2, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("h 8.0 arm64"), "{err}");
    assert!(!err.contains("g 7.0 arm64"), "{err}");
    assert!(err.contains("fill the cache"), "{err}");
    assert_eq!(server.total_requests(), 1);
    let fetcher = offline();
    let err = fetcher
        .get(&server.url("/h.deb"), 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&server.url("/h.deb")) && err.contains("not in the cache"),
        "{err}"
    );
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn mirror_rules_rewrite_requests_at_path_boundaries_only() {
    let (main, security) = (blob(17, 20_000), blob(18, 20_000));
    let mirror = Httpd::start([("/mirror/debian/pool/i.deb", main.clone())]);
    let origin = Httpd::start([
        ("/debian/pool/i.deb", blob(19, 20_000)),
        ("/debian-security/pool/j.deb", security.clone()),
    ]);
    let rules = BTreeMap::from([(origin.url("/debian"), mirror.url("/mirror/debian"))]);
    let fetcher = Fetcher::new(&rules, false);
    let i = wanted("i 9.0 arm64", origin.url("/debian/pool/i.deb"), &main);
    let j = wanted(
        "j 10.0 arm64",
        origin.url("/debian-security/pool/j.deb"),
        &security,
    );
    assert_eq!(
        fetcher.url_for(&i.url),
        mirror.url("/mirror/debian/pool/i.deb")
    );
    assert_eq!(fetcher.url_for(&j.url), j.url);
    let cache = tempfile::tempdir().unwrap();
    let store = Store::new(cache.path());
    let got = store.ensure(&[i, j], &fetcher, 2, false).unwrap();
    assert_eq!(got.files, 2);
    assert_eq!(mirror.requests("/mirror/debian/pool/i.deb"), [None]);
    assert!(origin.requests("/debian/pool/i.deb").is_empty());
    assert_eq!(origin.requests("/debian-security/pool/j.deb"), [None]);
}

#[test]
fn fetch_errors_name_the_url_its_mirror_and_what_to_do() {
    // A port nothing listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rules = BTreeMap::from([(
        "http://deb.example/debian".to_string(),
        format!("http://{dead}/debian"),
    )]);
    let fetcher = Fetcher::new(&rules, false);
    let err = fetcher
        .get(
            "http://deb.example/debian/dists/bookworm/InRelease",
            1 << 20,
        )
        .unwrap_err()
        .to_string();
    for part in [
        format!("http://{dead}/debian/dists/bookworm/InRelease"),
        "mirror of http://deb.example/debian/dists/bookworm/InRelease".to_string(),
        "--offline".to_string(),
        "\"http://deb.example/debian\": \"http://your-mirror/...\"".to_string(),
    ] {
        assert!(err.contains(&part), "{part} missing from: {err}");
    }

    let server = Httpd::start([("/k", b"0123456789".to_vec())]);
    let err = online()
        .get(&server.url("/missing"), 100)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&server.url("/missing")) && err.contains("HTTP 404"),
        "{err}"
    );
    assert_eq!(online().get(&server.url("/k"), 10).unwrap(), b"0123456789");
    let err = online().get(&server.url("/k"), 9).unwrap_err().to_string();
    assert!(err.contains("larger than the 9 bytes"), "{err}");
    let err = online()
        .get("file:///srv/debian/dists/x", 10)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unsupported") && err.contains("file:///srv/debian/dists/x"),
        "{err}"
    );
}
