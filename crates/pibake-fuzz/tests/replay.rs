//! Replays every committed corpus in `fuzz/corpus/TARGET/` through its harness, as an
//! ordinary test on stable: the seeds, and every crash the fuzzer once found (kept there
//! once fixed), stay fixed without libFuzzer or nightly.

use std::path::PathBuf;

/// Feeds every file of `fuzz/corpus/<target>/` to `harness`; the directory must hold one.
fn replay(target: &str, harness: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{target}: {}", file.display());
        harness(&data);
    }
}

#[test]
fn partition() {
    replay("partition", pibake_fuzz::partition);
}

#[test]
fn fat() {
    replay("fat", pibake_fuzz::fat);
}

#[test]
fn ext4() {
    replay("ext4", pibake_fuzz::ext4);
}

#[test]
fn config_txt() {
    replay("config_txt", pibake_fuzz::config_txt);
}

#[test]
fn cmdline() {
    replay("cmdline", pibake_fuzz::cmdline);
}

#[test]
fn inventory() {
    replay("inventory", pibake_fuzz::inventory);
}

#[test]
fn bmap() {
    replay("bmap", pibake_fuzz::bmap);
}

#[test]
fn decoders() {
    replay("decoders", pibake_fuzz::decoders);
}

#[test]
fn apt() {
    replay("apt", pibake_fuzz::apt);
}

#[test]
fn deb() {
    replay("deb", pibake_fuzz::deb);
}

#[test]
fn lock() {
    replay("lock", pibake_fuzz::lock);
}
