//! Flash targets: block devices found in sysfs, or regular files, and the checks that keep
//! pibake from overwriting the wrong disk.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};

/// A place an image can be written to.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The device node (`/dev/sdb`) or file.
    pub path: PathBuf,
    /// True for a block device, false for a regular file.
    pub block: bool,
    /// Bytes the target holds (for a regular file: unlimited, reported as its size).
    pub size: u64,
    /// The device's model, from sysfs, when it reports one.
    pub model: Option<String>,
    /// The device's serial number, from sysfs, when it reports one.
    pub serial: Option<String>,
    /// Whether the kernel marks the device removable (always true for a regular file).
    pub removable: bool,
    /// Mount points of filesystems on the device or its partitions.
    pub mounted: Vec<String>,
}

fn sysfs(name: &str, file: &str) -> Option<String> {
    fs::read_to_string(format!("/sys/class/block/{name}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `major:minor` of every mounted filesystem, with its mount point.
fn mounts() -> Vec<(u32, u32, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            Some((maj.parse().ok()?, min.parse().ok()?, f.get(4)?.to_string()))
        })
        .collect()
}

/// The disk (`sda`, `mmcblk0`, `loop3`) and its partitions' `major:minor` numbers.
fn disk_numbers(name: &str) -> Vec<(u32, u32)> {
    let mut names = vec![name.to_string()];
    if let Ok(rd) = fs::read_dir(format!("/sys/class/block/{name}")) {
        names.extend(
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(name)),
        );
    }
    names
        .iter()
        .filter_map(|n| {
            let (a, b) = sysfs(n, "dev")?
                .split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

fn describe_disk(name: &str, path: PathBuf) -> Target {
    let numbers = disk_numbers(name);
    let mounted = mounts()
        .into_iter()
        .filter(|(a, b, _)| numbers.contains(&(*a, *b)))
        .map(|(_, _, m)| m)
        .collect();
    Target {
        path,
        block: true,
        size: sysfs(name, "size")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            * 512,
        model: sysfs(name, "device/model"),
        serial: sysfs(name, "device/serial").or_else(|| sysfs(name, "serial")),
        removable: sysfs(name, "removable").as_deref() == Some("1"),
        mounted,
    }
}

/// Whole disks the machine has (no partitions, no RAM or compressed-RAM disks).
pub fn list() -> Vec<Target> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/block") else {
        return out;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        if n.starts_with("ram")
            || n.starts_with("zram")
            || sysfs(&n, "size").as_deref() == Some("0")
        {
            continue;
        }
        out.push(describe_disk(&n, PathBuf::from(format!("/dev/{n}"))));
    }
    out
}

/// Refuses to write `image` onto `target` when they are one file: the same path, a
/// symlink to it or a hard link of it (same device and inode, symlinks followed). A
/// regular-file target is truncated before it is written, so flashing an image onto
/// itself would zero it and then "verify" the zeros. A target that does not exist is
/// not the image; [`check`] reports it.
pub fn refuse_same(image: &Path, target: &Path) -> Result<()> {
    let (Ok(i), Ok(t)) = (fs::metadata(image), fs::metadata(target)) else {
        return Ok(());
    };
    if (i.dev(), i.ino()) != (t.dev(), t.ino()) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}: is the image being flashed, {} (the same file: device {}, inode {}); writing it would destroy the image",
        target.display(),
        image.display(),
        i.dev(),
        i.ino()
    ))
    .with_hint("give an SD card's device (`pibake flash --list` shows them), or another file to write the image into"))
}

/// Opens the facts about `path` and refuses what must not be written: anything but a
/// block device or a regular file, a device with a mounted filesystem (always), a device
/// that is not removable (unless `force`), a device smaller than `image_len`.
///
/// A path that does not exist yet becomes a new image file, as `cp` would make one,
/// unless it is under `/dev`: there it is a mistyped device, and a regular file made
/// there would fill the device filesystem instead of reaching a card.
pub fn check(path: &Path, image_len: u64, force: bool) -> Result<Target> {
    let file = |size| Target {
        path: path.to_path_buf(),
        block: false,
        size,
        model: None,
        serial: None,
        removable: true,
        mounted: Vec::new(),
    };
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.starts_with("/dev") => {
            return Ok(file(0));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                Error::invalid(format!("{}: no such device", path.display()))
                    .with_hint("`pibake flash --list` shows the SD cards this machine sees"),
            );
        }
        other => other.at(path)?,
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(file(meta.len()));
    }
    if !ft.is_block_device() {
        return Err(Error::invalid(format!(
            "{}: neither a block device nor a regular file",
            path.display()
        ))
        .with_hint("give an SD card's device, like /dev/sdb or /dev/mmcblk0, or an image file"));
    }
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    let name = fs::read_link(format!("/sys/dev/block/{major}:{minor}"))
        .ok()
        .and_then(|l| l.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: block device {major}:{minor} is not in sysfs",
                path.display()
            ))
        })?;
    if fs::metadata(format!("/sys/class/block/{name}/partition")).is_ok() {
        return Err(Error::invalid(format!(
            "{}: is a partition; flash the whole disk",
            path.display()
        )));
    }
    let t = describe_disk(&name, path.to_path_buf());
    if !t.mounted.is_empty() {
        let root = t
            .mounted
            .iter()
            .any(|m| m == "/" || m == "/boot" || m == "/boot/firmware");
        return Err(Error::invalid(format!(
            "{}: {} mounted at {}",
            path.display(),
            if root {
                "holds the running system, with filesystems"
            } else {
                "has filesystems"
            },
            t.mounted.join(", ")
        ))
        .with_hint(if root {
            "this is the machine's own disk; pick another device"
        } else {
            "unmount them first (umount ...)"
        }));
    }
    if !t.removable && !force {
        return Err(Error::invalid(format!("{}: is not a removable device", path.display()))
            .with_hint("SD card readers are removable; pass --force if you are sure this is the right disk"));
    }
    if image_len > t.size {
        return Err(Error::invalid(format!(
            "{}: holds {} bytes, the image needs {image_len}",
            path.display(),
            t.size
        ))
        .with_hint("use a larger card"));
    }
    Ok(t)
}
