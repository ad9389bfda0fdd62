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

/// Opens the filesystem that fills `image`, for writing or not.
pub fn open(image: &Path, rw: bool) -> Result<Ext4> {
    if rw {
        Ext4::open_rw(device(image, true))
    } else {
        Ext4::open(device(image, false))
    }
}
