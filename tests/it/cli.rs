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
