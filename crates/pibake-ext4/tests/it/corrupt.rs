//! Damaged filesystems give errors that name the inode or block, never a panic, and a
//! refused write leaves the image as it was.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::util::{debugfs_w, open, path, tool};
use pibake_ext4::Meta;

fn mkfs(dir: &Path, name: &str, features: &str) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "raspberrypi\n").unwrap();
    fs::write(tree.join("etc/big"), vec![b'b'; 100_000]).unwrap();
    let image = dir.join(format!("{name}.img"));
    let ok = tool("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-b",
            "4096",
            "-O",
            features,
            "-d",
            path(&tree),
            path(&image),
            "32M",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    image
}

/// The first block of a file or directory, as debugfs reports it.
fn first_block(image: &Path, file: &str) -> u64 {
    let out = tool("debugfs")
        .args(["-R", &format!("blocks {file}"), path(image)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Reading `file` fails with a message containing `expect`; writing next to it fails
/// too, and the image bytes do not change.
fn refused(image: &Path, file: &str, expect: &str) {
    let before = fs::read(image).unwrap();
    let read = open(image, false).and_then(|fs| fs.read(file));
    let err = read.expect_err("a damaged file was read").to_string();
    assert!(err.contains(expect), "{file}: {err}");
    assert!(
        err.contains(path(image)),
        "error does not name the image: {err}"
    );
    if let Ok(mut fs) = open(image, true) {
        let write = fs.write_file(file, b"new\n", &Meta::new(0o644, 0, 0));
        assert!(write.is_err(), "{file}: replacing a damaged file succeeded");
    }
    assert!(
        fs::read(image).unwrap() == before,
        "{file}: the image changed"
    );
}

#[test]
fn a_bad_inode_checksum_names_the_inode() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "csum", "metadata_csum");
    let out = tool("debugfs")
        .args(["-R", "stat /etc/hostname", path(&image)])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    let ino: u32 = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    debugfs_w(&image, "sif /etc/hostname checksum 0x1234");
    refused(
        &image,
        "/etc/hostname",
        &format!("inode {ino}: checksum mismatch"),
    );
}

#[test]
fn an_extent_outside_the_filesystem_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "extent", "^metadata_csum");
    // i_block word 5 is the first extent's start block.
    debugfs_w(&image, "sif /etc/big block[5] 0x7fffffff");
    refused(&image, "/etc/big", "extent past the end of the filesystem");
}

#[test]
fn an_extent_tree_with_a_bad_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "header", "^metadata_csum");
    // i_block word 0 holds the magic and the entry count; claim 5 entries in a 4-slot root.
    debugfs_w(&image, "sif /etc/big block[0] 0x0005f30a");
    refused(&image, "/etc/big", "extent tree");
}

#[test]
fn a_directory_block_that_lies_about_lengths_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "dirent", "^metadata_csum");
    let block = first_block(&image, "/etc");
    // The first record's rec_len (bytes 4-5) becomes 3: not a multiple of 4, too short.
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .write_all_at(&[3, 0], block * 4096 + 4)
        .unwrap();
    refused(
        &image,
        "/etc/hostname",
        "directory record at byte 0 has length 3",
    );
}

#[test]
fn a_damaged_directory_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "dircsum", "metadata_csum");
    let block = first_block(&image, "/etc");
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .write_all_at(&[0xAA], block * 4096 + 4096 - 1)
        .unwrap();
    refused(&image, "/etc/hostname", "directory block checksum mismatch");
}

#[test]
fn garbage_is_not_a_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("garbage.img");
    fs::write(&image, vec![0x5Au8; 1 << 20]).unwrap();
    let err = open(&image, false)
        .err()
        .expect("garbage opened")
        .to_string();
    assert!(
        err.contains("no ext4 superblock") && err.contains("garbage.img"),
        "{err}"
    );
}

/// Superblock fields the writer relies on are checked when the filesystem is opened:
/// values e2fsck rejects are refused as a damaged superblock, not trusted.
#[test]
fn superblock_fields_that_e2fsck_rejects_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (field, value, expect) in [
        ("first_ino", "0", "first non-reserved inode 0"),
        ("log_groups_per_flex", "60", "log2 groups per flex group 60"),
    ] {
        let image = mkfs(dir.path(), field, "metadata_csum");
        debugfs_w(&image, &format!("ssv {field} {value}"));
        let fsck = tool("e2fsck").args(["-fn", path(&image)]).output().unwrap();
        assert!(!fsck.status.success(), "e2fsck accepts {field} {value}");
        let err = open(&image, false).err().expect("opened");
        assert!(
            matches!(
                err.kind(),
                pibake_ext4::ErrorKind::Corrupt {
                    structure: pibake_ext4::Structure::Superblock,
                    ..
                }
            ),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(expect), "{err}");
    }
}
