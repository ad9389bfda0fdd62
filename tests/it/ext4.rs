//! pibake's ext4 writer, judged by e2fsck and read back by debugfs and by ext4-view.
//!
//! Every edited filesystem must pass `e2fsck -fn`; contents, modes, owners and link
//! targets are read back by two readers that share no code with pibake.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{Fixture, Release, e2fsck_clean, path, tool};
use pibake_ext4::mkfs::MkfsOptions;
use pibake_ext4::{Ext4, Kind, Meta, Time};
use pibake_image::region::Region;

/// A standalone ext4 image made by mkfs.ext4 from a small tree, then `e2fsck -fyD` so
/// that its large directory is hash-indexed.
fn mkfs(dir: &Path, name: &str, size_mib: u64, args: &[&str]) -> PathBuf {
    mkfs_tuned(dir, name, size_mib, args, None)
}

/// [`mkfs`], with a `tune2fs -E` setting applied before the directories are indexed.
fn mkfs_tuned(dir: &Path, name: &str, size_mib: u64, args: &[&str], tune: Option<&str>) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    fs::create_dir_all(tree.join("etc/big")).unwrap();
    fs::write(tree.join("etc/hostname"), "raspberrypi\n").unwrap();
    for i in 0..300 {
        fs::write(
            tree.join(format!("etc/big/entry-{i:04}.conf")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let image = dir.join(format!("{name}.img"));
    let size = format!("{}M", size_mib);
    let mut all = vec!["-q", "-F", "-L", "rootfs", "-d", path(&tree)];
    all.extend_from_slice(args);
    all.extend_from_slice(&[path(&image), &size]);
    let out = tool("mkfs.ext4").args(&all).output().unwrap();
    assert!(
        out.status.success(),
        "mkfs.ext4 {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(t) = tune {
        // `ssv ...` is a debugfs superblock edit, anything else a tune2fs -E option.
        let out = if t.starts_with("ssv ") {
            tool("debugfs")
                .args(["-w", "-R", t, path(&image)])
                .output()
                .unwrap()
        } else {
            tool("tune2fs")
                .args(["-E", t, path(&image)])
                .output()
                .unwrap()
        };
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tool("e2fsck")
        .args(["-fyD", path(&image)])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    image
}

fn open_rw(image: &Path) -> Ext4 {
    let whole = Region::whole(image, true).unwrap();
    Ext4::open_rw(whole.sub(0, whole.len()).unwrap()).unwrap()
}

fn debugfs(image: &Path, request: &str) -> String {
    let out = tool("debugfs")
        .args(["-R", request, path(image)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn view(image: &Path) -> ext4_view::Ext4 {
    ext4_view::Ext4::load_from_path(image).unwrap()
}

const T: Time = Time {
    secs: 1_700_000_000,
    nanos: 123_456_789,
};

fn meta(mode: u16, uid: u32, gid: u32) -> Meta {
    Meta {
        mode,
        uid,
        gid,
        mtime: Some(T),
    }
}

/// The edits a node build makes, on one filesystem.
fn typical_edits(fs: &mut Ext4) {
    // mkfs images have these already (so they are replaced); Pi roots do not.
    fs.mkdir_p("/etc/big", &meta(0o755, 0, 0)).unwrap();
    for i in 1..=5 {
        fs.write_file(
            &format!("/etc/big/entry-{i:04}.conf"),
            b"1\n",
            &meta(0o644, 0, 0),
        )
        .unwrap();
    }
    fs.write_file("/etc/hostname", b"node-07\n", &meta(0o644, 0, 0))
        .unwrap();
    fs.write_file("/etc/pibake-secret", b"s3cret\n", &meta(0o600, 0, 0))
        .unwrap();
    fs.mkdir_p("/home/pi/.ssh", &meta(0o700, 1000, 1000))
        .unwrap();
    fs.write_file(
        "/home/pi/.ssh/authorized_keys",
        b"ssh-ed25519 AAAA test\n",
        &meta(0o600, 1000, 1000),
    )
    .unwrap();
    fs.symlink("/etc/fast-link", "/etc/hostname", &meta(0o777, 0, 0))
        .unwrap();
    let long_target = format!("/etc/{}", "long-".repeat(20));
    fs.symlink("/etc/slow-link", &long_target, &meta(0o777, 0, 0))
        .unwrap();
    fs.write_file("/etc/to-remove", &vec![7u8; 10_000], &meta(0o644, 0, 0))
        .unwrap();
    fs.remove("/etc/to-remove").unwrap();
    fs.mkdir_p("/opt/empty", &meta(0o755, 0, 0)).unwrap();
    fs.remove("/opt/empty").unwrap();
    fs.write_file(
        "/etc/big/entry-0001.conf",
        &vec![b'x'; 50_000],
        &meta(0o640, 0, 4),
    )
    .unwrap();
    fs.chmod("/etc/big/entry-0002.conf", 0o600).unwrap();
    fs.chown("/etc/big/entry-0003.conf", 1000, 1000).unwrap();
    fs.set_times("/etc/big/entry-0004.conf", T, T).unwrap();
    fs.remove("/etc/big/entry-0005.conf").unwrap();
    // Bytes above 0x7f hash differently with signed and unsigned chars.
    for i in 0..40 {
        let name = format!("/etc/big/ünïcødé-名前-{i}.conf");
        fs.write_file(&name, b"u\n", &meta(0o644, 0, 0)).unwrap();
    }
}

/// The result of [`typical_edits`], read back by debugfs and (where it reads the
/// directory hash in use) by ext4-view.
fn check_typical_edits(image: &Path) {
    e2fsck_clean(image, 0);
    let long_target = format!("/etc/{}", "long-".repeat(20));
    let cat = |p: &str| debugfs(image, &format!("cat {p}")).into_bytes();
    assert_eq!(cat("/etc/hostname"), b"node-07\n");
    assert_eq!(cat("/etc/big/entry-0001.conf"), vec![b'x'; 50_000]);
    assert_eq!(
        cat("/home/pi/.ssh/authorized_keys"),
        b"ssh-ed25519 AAAA test\n"
    );
    assert_eq!(
        cat("/etc/slow-link"),
        long_target.as_bytes(),
        "a slow symlink's block holds its target"
    );
    assert_eq!(cat("/etc/big/ünïcødé-名前-39.conf"), b"u\n");
    for gone in ["/etc/to-remove", "/opt/empty", "/etc/big/entry-0005.conf"] {
        assert!(
            debugfs(image, &format!("stat {gone}")).is_empty(),
            "{gone} still exists"
        );
    }
    let small_inodes = debugfs(image, "stats").contains("Inode size:\t          128");
    let v = view(image);
    // ext4-view knows neither the legacy hash nor 128-byte inodes; debugfs covers those.
    let unreadable = matches!(
        v.read("/etc/big/entry-0002.conf"),
        Err(ext4_view::Ext4Error::Incompatible(_) | ext4_view::Ext4Error::Corrupt(_))
    ) && small_inodes
        || matches!(
            v.read("/etc/big/entry-0002.conf"),
            Err(ext4_view::Ext4Error::Incompatible(_))
        );
    if !unreadable {
        assert_eq!(
            v.read("/etc/big/entry-0001.conf").unwrap(),
            vec![b'x'; 50_000]
        );
        assert_eq!(
            v.read_link("/etc/fast-link").unwrap().to_str().unwrap(),
            "/etc/hostname"
        );
        assert_eq!(
            v.read_link("/etc/slow-link").unwrap().to_str().unwrap(),
            long_target
        );
        assert!(!v.exists("/etc/to-remove").unwrap());
    }

    let secret = debugfs(image, "stat /etc/pibake-secret");
    assert!(secret.contains("Mode:  0600"), "{secret}");
    let ssh = debugfs(image, "stat /home/pi/.ssh");
    assert!(
        ssh.contains("Mode:  0700") && ssh.contains("User:  1000") && ssh.contains("Group:  1000"),
        "{ssh}"
    );
    let keys = debugfs(image, "stat /home/pi/.ssh/authorized_keys");
    assert!(
        keys.contains("Type: regular") && keys.contains("User:  1000"),
        "{keys}"
    );
    let mtime = if small_inodes {
        "mtime: 0x6553f100 "
    } else {
        "mtime: 0x6553f100:1d6f3454"
    };
    assert!(
        keys.contains(mtime),
        "mtime (nanoseconds where the inode has room):\n{keys}"
    );
    let big = debugfs(image, "stat /etc/big/entry-0001.conf");
    assert!(
        big.contains("Mode:  0640") && big.contains("Group:     4"),
        "{big}"
    );
    assert!(debugfs(image, "stat /etc/big/entry-0002.conf").contains("Mode:  0600"));
    assert!(debugfs(image, "stat /etc/big/entry-0003.conf").contains("User:  1000"));
    let fast = debugfs(image, "stat /etc/fast-link");
    assert!(fast.contains("Fast link dest: \"/etc/hostname\""), "{fast}");
}

#[test]
fn node_edits_pass_e2fsck_on_every_release_root() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        let whole = Region::whole(&f.image, true).unwrap();
        let mut fs = Ext4::open_rw(whole.sub(f.root_offset, f.root_size).unwrap()).unwrap();
        typical_edits(&mut fs);
        fs.commit().unwrap();
        drop(fs);
        f.assert_clean();
        let root = f.dir.path().join("root.ext4");
        let data = fs::read(&f.image).unwrap();
        fs::write(
            &root,
            &data[f.root_offset as usize..(f.root_offset + f.root_size) as usize],
        )
        .unwrap();
        check_typical_edits(&root);
    }
}

#[test]
fn every_layout_variant_takes_the_same_edits() {
    let dir = tempfile::tempdir().unwrap();
    let variants: &[(&str, &[&str], Option<&str>)] = &[
        (
            "4k-64bit",
            &["-b", "4096", "-O", "64bit,metadata_csum"],
            None,
        ),
        (
            "4k-32bit",
            &["-b", "4096", "-O", "^64bit,metadata_csum"],
            None,
        ),
        ("1k-blocks", &["-b", "1024", "-O", "^64bit"], None),
        (
            "csum-seed-orphan-file",
            &["-b", "4096", "-O", "metadata_csum_seed,orphan_file"],
            None,
        ),
        (
            "no-metadata-csum",
            &["-b", "4096", "-O", "^metadata_csum,uninit_bg"],
            None,
        ),
        (
            "no-group-csum",
            &["-b", "4096", "-O", "^metadata_csum,^uninit_bg"],
            None,
        ),
        ("tea-hash", &["-b", "4096"], Some("hash_alg=tea")),
        ("legacy-hash", &["-b", "4096"], Some("hash_alg=legacy")),
        ("unsigned-half-md4", &["-b", "4096"], Some("ssv flags 2")),
        (
            "unsigned-no-csum",
            &["-b", "4096", "-O", "^metadata_csum"],
            Some("ssv flags 2"),
        ),
        ("no-flex-bg", &["-b", "4096", "-O", "^flex_bg"], None),
        ("128-byte-inodes", &["-b", "4096", "-I", "128"], None),
        ("huge-file", &["-b", "4096", "-O", "huge_file"], None),
    ];
    for (name, args, tune) in variants {
        let image = mkfs_tuned(dir.path(), name, 64, args, *tune);
        let mut fs = open_rw(&image);
        typical_edits(&mut fs);
        fs.commit().unwrap();
        drop(fs);
        check_typical_edits(&image);
        eprintln!("{name}: ok");
    }
}

#[test]
fn thousands_of_names_grow_hash_indexed_directories_and_index_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB blocks make the index fill quickly: the root splits into a second level.
    let image = mkfs(dir.path(), "many", 96, &["-b", "1024"]);
    let mut fs = open_rw(&image);
    fs.mkdir_p("/grown", &meta(0o755, 0, 0)).unwrap();
    let names: Vec<String> = (0..4000)
        .map(|i| format!("n{i}-{}", "x".repeat(i % 23)))
        .collect();
    for (i, n) in names.iter().enumerate() {
        fs.write_file(
            &format!("/etc/big/{n}"),
            format!("{i}\n").as_bytes(),
            &meta(0o644, 0, 0),
        )
        .unwrap();
        if i % 4 == 0 {
            fs.write_file(&format!("/grown/{n}"), b"l\n", &meta(0o644, 0, 0))
                .unwrap();
        }
    }
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(&image, 0);
    let root = debugfs(&image, "htree_dump /etc/big");
    assert!(
        root.contains("Indirect levels: 1"),
        "the index should have grown a level:\n{}",
        &root[..root.len().min(600)]
    );

    let mut fs = open_rw(&image);
    for n in names.iter().step_by(2) {
        fs.remove(&format!("/etc/big/{n}")).unwrap();
    }
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(&image, 0);
    let v = view(&image);
    for (i, n) in names.iter().enumerate() {
        let p = format!("/etc/big/{n}");
        if i % 2 == 0 {
            assert!(!v.exists(p.as_str()).unwrap(), "{p}");
        } else {
            assert_eq!(
                v.read(p.as_str()).unwrap(),
                format!("{i}\n").as_bytes(),
                "{p}"
            );
        }
    }
    let grown = v.read_dir("/grown").unwrap().count();
    assert_eq!(grown, 1000 + 2);
    let flags = debugfs(&image, "stat /grown");
    assert!(
        flags.contains("Flags: 0x81000"),
        "a directory grown past one block is indexed:\n{flags}"
    );
}

#[test]
fn a_file_in_fragmented_free_space_gets_an_extent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "frag", 32, &["-b", "1024"]);
    let mut fs = open_rw(&image);
    // Fill all but 1250 blocks, then make 1-block holes by removing every other file.
    let free = fs.free_blocks();
    let filler = (free - 1250) as usize * 1024;
    fs.write_file("/filler", &vec![1u8; filler], &meta(0o644, 0, 0))
        .unwrap();
    for i in 0..1200 {
        fs.write_file(&format!("/etc/f{i}"), &[2u8; 1000], &meta(0o644, 0, 0))
            .unwrap();
    }
    for i in (0..1200).step_by(2) {
        fs.remove(&format!("/etc/f{i}")).unwrap();
    }
    let big: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
    fs.write_file("/big", &big, &meta(0o644, 0, 0)).unwrap();
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(&image, 0);
    assert_eq!(view(&image).read("/big").unwrap(), big);
    let levels = debugfs(&image, "stat /big");
    assert!(levels.contains("EXTENTS:"), "{levels}");
    // The tree has index nodes: debugfs prints their levels as "(ETB0)" / "(ETB1)".
    assert!(levels.contains("ETB"), "no extent tree blocks:\n{levels}");

    // Replacing the file frees its data and tree blocks: free space comes back exactly.
    let mut fs = open_rw(&image);
    let before = fs.free_blocks();
    fs.write_file("/big", b"small\n", &meta(0o644, 0, 0))
        .unwrap();
    assert!(
        fs.free_blocks() > before + 480,
        "{} -> {}",
        before,
        fs.free_blocks()
    );
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(&image, 0);
}

#[test]
fn the_same_edits_give_the_same_bytes_and_only_logged_ranges_change() {
    let dir = tempfile::tempdir().unwrap();
    let image = mkfs(dir.path(), "det", 64, &["-b", "4096"]);
    let base = fs::read(&image).unwrap();
    let copy = dir.path().join("copy.img");
    fs::copy(&image, &copy).unwrap();
    let mut written = Vec::new();
    for img in [&image, &copy] {
        let whole = Region::whole(img, true).unwrap();
        let mut fs = Ext4::open_rw(whole.sub(0, whole.len()).unwrap()).unwrap();
        typical_edits(&mut fs);
        fs.commit().unwrap();
        // The region's clones share one write log, so the ext4 writes show in it.
        written = whole.written();
    }
    let a = fs::read(&image).unwrap();
    assert!(a == fs::read(&copy).unwrap(), "two runs differ");
    for (i, (x, y)) in base.iter().zip(&a).enumerate() {
        if x != y {
            let i = i as u64;
            assert!(
                written.iter().any(|r| r.contains(&i)),
                "byte {i} changed outside the write log"
            );
        }
    }
}

#[test]
fn unsafe_or_unknown_filesystems_are_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], Option<&str>, &str)] = &[
        (
            "recover",
            &["-b", "4096"],
            Some("feature needs_recovery"),
            "journal needs recovery",
        ),
        (
            "orphans",
            &["-b", "4096", "-O", "orphan_file"],
            Some("feature orphan_present"),
            "orphan",
        ),
        ("quota", &["-b", "4096", "-O", "quota"], None, "quota"),
        (
            "bigalloc",
            &["-b", "4096", "-O", "bigalloc", "-C", "16384"],
            None,
            "bigalloc",
        ),
        (
            "inline",
            &["-b", "4096", "-O", "inline_data"],
            None,
            "inline_data",
        ),
        (
            "casefold",
            &["-b", "4096", "-O", "casefold"],
            None,
            "casefold",
        ),
        ("dirty", &["-b", "4096"], Some("ssv state 0"), "not clean"),
    ];
    for (name, args, tweak, expect) in cases {
        let image = mkfs(dir.path(), name, 64, args);
        if let Some(t) = tweak {
            let out = tool("debugfs")
                .args(["-w", "-R", t, path(&image)])
                .output()
                .unwrap();
            assert!(out.status.success(), "debugfs {t}");
        }
        let before = fs::read(&image).unwrap();
        let whole = Region::whole(&image, true).unwrap();
        let err = match Ext4::open_rw(whole.sub(0, whole.len()).unwrap()) {
            Ok(_) => panic!("{name}: opened for writing"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expect), "{name}: {err}");
        assert!(
            err.contains(path(&image)),
            "{name}: error does not name the image: {err}"
        );
        assert!(fs::read(&image).unwrap() == before, "{name}: image changed");
    }
}

#[test]
fn reading_sees_what_debugfs_sees() {
    let f = Fixture::new(Release::Bookworm);
    let whole = Region::whole(&f.image, false).unwrap();
    let fs = Ext4::open(whole.sub(f.root_offset, f.root_size).unwrap()).unwrap();
    let mut names: Vec<String> = fs
        .read_dir("/etc")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    let mut theirs: Vec<String> = f
        .debugfs("ls -p /etc")
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(str::to_string))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect();
    theirs.sort();
    assert_eq!(names, theirs);
    let st = fs.stat("/etc/shadow").unwrap();
    assert_eq!(st.kind, Kind::File);
    let d = f.debugfs("stat /etc/shadow");
    assert!(d.contains(&format!("Mode:  {:04o}", st.mode)), "{d}");
    assert_eq!(
        fs.read("/etc/hostname").unwrap(),
        f.debugfs("cat /etc/hostname").as_bytes()
    );
}

/// A filesystem from pibake's own mkfs.
fn pibake_mkfs(dir: &Path, name: &str, mib: u64, opts: impl FnOnce(&mut MkfsOptions)) -> PathBuf {
    let image = dir.join(format!("{name}.img"));
    fs::File::create(&image)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    let mut o = MkfsOptions::new(*b"pibake-test-uuid", 1_700_000_000);
    opts(&mut o);
    let whole = Region::whole(&image, true).unwrap();
    Ext4::mkfs(whole.sub(0, whole.len()).unwrap(), &o).unwrap();
    image
}

#[test]
fn pibake_mkfs_makes_filesystems_e2fsck_accepts_and_that_take_edits() {
    let dir = tempfile::tempdir().unwrap();
    type Tweak = Box<dyn Fn(&mut MkfsOptions)>;
    let variants: Vec<(&str, u64, Tweak)> = vec![
        ("pi-root", 160, Box::new(|_| {})),
        ("big-2g", 2048, Box::new(|_| {})),
        (
            "64bit-seed",
            96,
            Box::new(|o| {
                o.bit64 = true;
                o.csum_seed = true;
            }),
        ),
        ("1k", 48, Box::new(|o| o.block_size = 1024)),
        ("tiny", 4, Box::new(|_| {})),
    ];
    for (name, mib, opts) in variants {
        let image = pibake_mkfs(dir.path(), name, mib, |o| opts(o));
        e2fsck_clean(&image, 0);
        let stats = debugfs(&image, "stats");
        let journal = mib >= 8;
        assert_eq!(
            stats.contains("has_journal"),
            journal,
            "{name}: journal only where mke2fs makes one"
        );
        for feature in [
            "dir_index",
            "extent",
            "flex_bg",
            "metadata_csum",
            "dir_nlink",
            "extra_isize",
        ] {
            assert!(
                stats.contains(feature),
                "{name}: {feature} missing:\n{stats}"
            );
        }
        assert!(
            debugfs(&image, "stat /lost+found").contains("Mode:  0700"),
            "{name}"
        );
        let mut fs = open_rw(&image);
        typical_edits(&mut fs);
        fs.commit().unwrap();
        drop(fs);
        check_typical_edits(&image);
        eprintln!("{name}: ok");
    }
    // One UUID and one time give one filesystem, byte for byte.
    let a = fs::read(pibake_mkfs(dir.path(), "again-a", 64, |_| {})).unwrap();
    let b = fs::read(pibake_mkfs(dir.path(), "again-b", 64, |_| {})).unwrap();
    assert!(a == b, "mkfs is not deterministic");
}
