//! The command line as a shell uses it: output into a pipe that closes early.

use std::io::Read;
use std::process::{Command, Stdio};

/// Reads one byte of the command's output, closes the pipe, and expects a quiet exit 0
/// (as `pibake plan ... | head -1` needs), not a panic.
fn closed_early(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {:?}\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // The BitScope plans are megabytes: far more than a pipe buffer holds.
    closed_early(&["plan", "examples/bitscope-module/cluster.yaml"]);
    closed_early(&["plan", "--json", "examples/bitscope-module/cluster.yaml"]);
}

/// The cache directory may come from `PIBAKE_CACHE_DIR`; a usage line printed while it
/// is set must not show `--cache-dir` as though it were required.
#[test]
fn the_usage_line_shows_only_what_is_required() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pibake"))
        .arg("build")
        .env("PIBAKE_CACHE_DIR", "/tmp/pibake-usage-test")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let usage = err
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .expect("a usage line");
    assert_eq!(usage, "Usage: pibake build <CLUSTER>", "{err}");
}
