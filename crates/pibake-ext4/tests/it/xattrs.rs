//! Extended attributes survive every edit of their inode: a file's content rewritten,
//! its mode, owner and times changed, a directory grown. They live in the inode's extra
//! space (after `i_extra_isize`) or in an external block (`i_file_acl`); pibake writes
//! neither, so what e2fsprogs put there must come back byte for byte, and the block must
//! stay counted in the inode's `i_blocks`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{debugfs, debugfs_dump, debugfs_w, e2fsck_clean, open, path, stat_field, tool};
use pibake_ext4::{Meta, Time};

/// A file capability (`cap_net_raw+ep`, version 2), as `setcap` stores it.
const CAPABILITY: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Each file or directory, with the attributes debugfs gives it: name and value.
fn attributes(value_len: usize) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let big: Vec<u8> = (0..value_len).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        // In the inode: both fit in its extra space.
        ("/usr/bin/ping", "security.capability", CAPABILITY.to_vec()),
        ("/usr/bin/ping", "user.note", b"in-inode".to_vec()),
        // Too large for the inode: an external block, next to an in-inode one.
        ("/usr/lib/big", "user.big", big.clone()),
        ("/usr/lib/big", "security.capability", CAPABILITY.to_vec()),
        // A directory with an external block, grown later.
        ("/var/lib", "user.big", big),
    ]
}

/// An image made by mkfs.ext4 (`args` add features), its files given `attributes`.
fn image_with_xattrs(dir: &Path, name: &str, args: &[&str], value_len: usize) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    for d in ["usr/bin", "usr/lib", "var/lib"] {
        fs::create_dir_all(tree.join(d)).unwrap();
    }
    fs::write(tree.join("usr/bin/ping"), b"old ping").unwrap();
    fs::write(tree.join("usr/lib/big"), vec![0x42; 100_000]).unwrap();
    let image = dir.join(format!("{name}.img"));
    let mut all = vec!["-q", "-F", "-d", path(&tree)];
    all.extend_from_slice(args);
    all.extend_from_slice(&[path(&image), "64M"]);
    let out = tool("mkfs.ext4").args(&all).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, (file, attr, value)) in attributes(value_len).into_iter().enumerate() {
        let v = dir.join(format!("{name}.value{i}"));
        fs::write(&v, value).unwrap();
        debugfs_w(&image, &format!("ea_set -f {} {file} {attr}", path(&v)));
    }
    image
}

/// Every attribute as debugfs lists it, the inode's own attribute space as
/// `inode_dump -x` shows it, and each value as `ea_get` dumps it.
fn xattrs(image: &Path, dir: &Path, value_len: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for file in ["/usr/bin/ping", "/usr/lib/big", "/var/lib"] {
        let list = debugfs(image, &format!("ea_list {file}"));
        out.push((format!("{file} list"), list.into_bytes()));
        let in_inode = debugfs(image, &format!("inode_dump -x {file}"));
        // The capability is in the inode's extra space, not in the external block.
        let capability = file != "/var/lib";
        assert_eq!(
            in_inode.contains("name = capability"),
            capability,
            "{file}: {in_inode}"
        );
        out.push((format!("{file} in-inode"), in_inode.into_bytes()));
    }
    for (i, (file, attr, want)) in attributes(value_len).into_iter().enumerate() {
        let dump = dir.join(format!("dump{i}"));
        debugfs(image, &format!("ea_get -f {} {file} {attr}", path(&dump)));
        let got = fs::read(&dump).unwrap();
        assert!(
            got == want,
            "{file} {attr}: {} bytes, not the value set",
            got.len()
        );
        out.push((format!("{file} {attr}"), got));
    }
    out
}

fn check_layout(dir: &Path, name: &str, args: &[&str], value_len: usize) {
    let image = image_with_xattrs(dir, name, args, value_len);
    e2fsck_clean(&image);
    let before = xattrs(&image, dir, value_len);
    let acl = |image: &Path| {
        ["/usr/bin/ping", "/usr/lib/big", "/var/lib"].map(|f| stat_field(image, f, "File ACL:"))
    };
    let blocks = acl(&image);
    assert_eq!(
        blocks[0], "0",
        "{name}: /usr/bin/ping has an external block"
    );
    assert!(
        blocks[1] != "0" && blocks[2] != "0",
        "{name}: user.big is not in an external block"
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let mut fs = open(&image, true).unwrap();
    fs.write_file("/usr/bin/ping", b"new ping", &Meta::new(0o755, 0, 0))
        .unwrap();
    let meta = Meta::new(0o644, 0, 0);
    fs.write_file_from("/usr/lib/big", &mut &big[..], big.len() as u64, &meta)
        .unwrap();
    for file in ["/usr/bin/ping", "/usr/lib/big", "/var/lib"] {
        fs.chmod(file, 0o4750).unwrap();
        fs.chown(file, 1000, 1000).unwrap();
        let t = Time::from_secs(1_700_000_000);
        fs.set_times(file, t, t).unwrap();
    }
    // Enough names to grow /var/lib past one block (and index it).
    for i in 0..400 {
        let meta = Meta::new(0o644, 0, 0);
        fs.write_file(&format!("/var/lib/entry-{i:04}"), b"x", &meta)
            .unwrap();
    }
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(&image);
    assert_eq!(
        xattrs(&image, dir, value_len),
        before,
        "{name}: attributes changed"
    );
    assert_eq!(acl(&image), blocks, "{name}: external blocks");
    assert!(
        debugfs_dump(&image, "/usr/lib/big") == big,
        "{name}: content"
    );
    let fs = open(&image, false).unwrap();
    assert_eq!(fs.read("/usr/bin/ping").unwrap(), b"new ping");
    let st = fs.stat("/usr/lib/big").unwrap();
    assert_eq!((st.mode, st.uid, st.gid), (0o4750, 1000, 1000));
}

#[test]
fn rewrites_and_metadata_changes_keep_extended_attributes() {
    let dir = tempfile::tempdir().unwrap();
    check_layout(dir.path(), "4k-csum", &["-b", "4096"], 3000);
    check_layout(
        dir.path(),
        "4k-no-csum",
        &["-b", "4096", "-O", "^metadata_csum,uninit_bg"],
        3000,
    );
    check_layout(dir.path(), "1k", &["-b", "1024", "-I", "256"], 900);
}
