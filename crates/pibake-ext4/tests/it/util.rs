//! What the tests share: the e2fsprogs oracles and opening an image file.

use std::path::Path;
use std::process::Command;

use pibake_ext4::{Ext4, FileRange, Result};

/// A command from e2fsprogs; fails loudly when missing.
pub fn tool(name: &str) -> Command {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    let Some(p) = found else {
        panic!("{name} is not installed: apt-get install -y e2fsprogs");
    };
    Command::new(p)
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `e2fsck -fn` exits 0 on the filesystem image.
pub fn e2fsck_clean(image: &Path) {
    let out = tool("e2fsck")
        .args(["-fn", path(image)])
        .output()
        .expect("e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole image file as a device, labelled with its path as errors name it.
pub fn device(image: &Path, writable: bool) -> FileRange {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .open(image)
        .expect("open image");
    FileRange::whole(file, path(image)).expect("image size")
}

/// Runs one debugfs request, read-only or with `-w`; its output when it succeeds.
fn run_debugfs(image: &Path, writable: bool, request: &str) -> String {
    let mut cmd = tool("debugfs");
    if writable {
        cmd.arg("-w");
    }
    let out = cmd
        .args(["-R", request, path(image)])
        .output()
        .expect("debugfs");
    // debugfs exits 0 when a request fails and says why on stderr, after its banner.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaint = stderr.lines().any(|l| !l.starts_with("debugfs "));
    assert!(
        out.status.success() && !complaint,
        "debugfs {request}: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `debugfs -R request` prints about the image.
pub fn debugfs(image: &Path, request: &str) -> String {
    run_debugfs(image, false, request)
}

/// `debugfs -w -R request`: an edit by e2fsprogs itself.
pub fn debugfs_w(image: &Path, request: &str) {
    run_debugfs(image, true, request);
}

/// The value after `field` (`"Links:"`, `"File ACL:"`, ...) in `debugfs stat`'s report.
pub fn stat_field(image: &Path, file: &str, field: &str) -> String {
    let stat = debugfs(image, &format!("stat {file}"));
    let at = stat
        .find(field)
        .unwrap_or_else(|| panic!("no {field} in the stat of {file}:\n{stat}"));
    stat[at + field.len()..]
        .split_whitespace()
        .next()
        .expect("a value after the field")
        .to_string()
}

/// A file's content as `debugfs dump` writes it out.
pub fn debugfs_dump(image: &Path, file: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("dump");
    debugfs(image, &format!("dump {file} {}", path(&out)));
    std::fs::read(&out).unwrap_or_else(|e| panic!("debugfs dump {file}: {e}"))
}

/// Opens the filesystem that fills `image`, for writing or not.
pub fn open(image: &Path, rw: bool) -> Result<Ext4> {
    if rw {
        Ext4::open_rw(device(image, true))
    } else {
        Ext4::open(device(image, false))
    }
}
