//! Growing filesystems offline, checked against resize2fs.
//!
//! Each fixture is made by mkfs.ext4 with the feature set of a real image (pi-gen's
//! `^huge_file`, with and without `64bit`, `metadata_csum`, `flex_bg`, `resize_inode`,
//! `orphan_file`) and files written by mkfs itself. One copy is grown by pibake, another
//! by `resize2fs` to the same size; then `e2fsck -fn` is clean on pibake's, the counts,
//! features and backup superblocks `dumpe2fs` reports are equal to resize2fs's (where
//! bitmaps and inode tables are placed may differ), every file mkfs wrote reads back equal
//! through ext4-view, and pibake's own writer fills the new space.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{device, e2fsck_clean, open, path, tool};
use pibake_ext4::{ErrorKind, Ext4, Meta};

const MIB: u64 = 1 << 20;

/// The files mkfs puts in every fixture: name -> content.
fn tree() -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    for i in 0..40 {
        let len = (i * 7919 + 13) % (300 << 10);
        let data: Vec<u8> = (0..len).map(|j| ((j * 31 + i) % 251) as u8).collect();
        t.insert(format!("d{}/file-{i}", i % 4), data);
    }
    t.insert("big".into(), vec![0xA5; 6 << 20]);
    t
}

/// A filesystem image of `mib` MiB made by `mkfs.ext4 args` (4 KiB blocks unless they
/// say), holding `tree()`.
fn fixture(dir: &Path, name: &str, mib: u64, args: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.tree"));
    for (p, data) in tree() {
        let f = src.join(&p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    }
    let image = dir.join(format!("{name}.img"));
    let mut all = vec!["-q", "-F", "-L", "rootfs", "-d", path(&src)];
    // As for a Raspberry Pi OS root, not mke2fs's "small" type (1 KiB blocks, more
    // inodes) that it picks below 512 MiB, unless a test asks.
    if !args.contains(&"-b") {
        all.extend_from_slice(&["-T", "default", "-b", "4096"]);
    }
    all.extend_from_slice(args);
    let size = format!("{}k", mib * 1024);
    all.extend_from_slice(&[path(&image), &size]);
    run(tool("mkfs.ext4").args(&all));
    image
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What must agree between pibake's growth and resize2fs's: the header's counts and
/// features, and which blocks hold superblock backups.
fn facts(image: &Path) -> BTreeMap<String, String> {
    let text = run(tool("dumpe2fs").arg(path(image)));
    let keep = [
        "Filesystem features",
        "Block count",
        "Inode count",
        "Free blocks",
        "Free inodes",
        "Reserved block count",
        "Reserved GDT blocks",
        "Blocks per group",
        "Inodes per group",
        "Filesystem state",
    ];
    let mut out = BTreeMap::new();
    let mut backups = Vec::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':')
            && keep.contains(&k)
        {
            out.insert(k.to_string(), v.trim().to_string());
        }
        if let Some(rest) = line.trim().strip_prefix("Backup superblock at ") {
            backups.push(rest.split(',').next().unwrap().to_string());
        }
    }
    out.insert("backups".into(), backups.join(" "));
    out
}

/// Grows a copy of `image` by pibake and another by resize2fs to `mib` MiB; checks
/// both as the module doc says and returns pibake's copy.
fn grow_both(image: &Path, mib: u64) -> PathBuf {
    let ours = image.with_extension("pibake.img");
    let theirs = image.with_extension("resize2fs.img");
    for copy in [&ours, &theirs] {
        run(Command::new("cp").args(["--sparse=always", path(image), path(copy)]));
        fs::OpenOptions::new()
            .write(true)
            .open(copy)
            .unwrap()
            .set_len(mib * MIB)
            .unwrap();
    }
    let mut fs = open(&ours, true).unwrap();
    let before = fs.blocks_count();
    let growth = fs.grow(fs.device_blocks()).unwrap();
    assert_eq!(growth.old_blocks, before);
    drop(fs);
    run(tool("resize2fs")
        .env("RESIZE2FS_FORCE_LAZY_ITABLE_INIT", "1")
        .arg(path(&theirs)));
    e2fsck_clean(&ours);
    e2fsck_clean(&theirs);
    let (a, b) = (facts(&ours), facts(&theirs));
    assert_eq!(a, b, "pibake's growth (left) against resize2fs's (right)");
    assert_eq!(
        a["Block count"],
        growth.new_blocks.to_string(),
        "the growth reports what the superblock says"
    );
    read_back(&ours);
    ours
}

/// Every file mkfs wrote reads back equal through ext4-view, a second reader.
fn read_back(image: &Path) {
    let v = ext4_view::Ext4::load(Box::new(fs::File::open(image).unwrap())).unwrap();
    for (p, data) in tree() {
        assert!(v.read(format!("/{p}").as_str()).unwrap() == data, "{p}");
    }
}

/// pibake's writer fills most of the new space, and the result is still clean.
fn fill(image: &Path, bytes: u64) {
    let mut fs = open(image, true).unwrap();
    let chunk = 64 * MIB;
    let mut left = bytes;
    let mut i = 0;
    while left > 0 {
        let n = left.min(chunk);
        let data = vec![(i % 200) as u8 + 1; n as usize];
        fs.write_file(&format!("/fill-{i}"), &data, &Meta::new(0o644, 0, 0))
            .unwrap();
        left -= n;
        i += 1;
    }
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(image);
    let v = ext4_view::Ext4::load(Box::new(fs::File::open(image).unwrap())).unwrap();
    assert_eq!(v.read("/fill-0").unwrap()[..4], [1, 1, 1, 1]);
}

/// Mounts the image with the kernel's ext4 (read-only, through a loop device: the
/// oracle may use one, pibake never does) and reads a file through it. Only as root.
fn kernel_reads(image: &Path) {
    if unsafe_uid() != 0 {
        eprintln!(
            "not root: the kernel mount of {} is left out",
            image.display()
        );
        return;
    }
    let mnt = image.with_extension("mnt");
    fs::create_dir_all(&mnt).unwrap();
    run(Command::new("mount").args(["-o", "ro,loop", path(image), path(&mnt)]));
    let read = fs::read(mnt.join("big"));
    let df = Command::new("df").args(["-B1", path(&mnt)]).output();
    run(Command::new("umount").arg(path(&mnt)));
    assert_eq!(read.unwrap(), tree()["big"]);
    let df = String::from_utf8_lossy(&df.unwrap().stdout).into_owned();
    let size: u64 = df
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let len = fs::metadata(image).unwrap().len();
    assert!(
        size > len * 9 / 10,
        "the kernel sees the grown size: {size} of {len}"
    );
}

fn unsafe_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// pi-gen's root: `-O ^huge_file,^64bit` over Debian's defaults (metadata_csum, flex_bg,
/// resize_inode), from a short last group past a flex group and four backup groups.
#[test]
fn a_pi_gen_root_grows_like_resize2fs() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(dir.path(), "pigen", 300, &["-O", "^huge_file,^64bit"]);
    let grown = grow_both(&img, 2600);
    fill(&grown, 2000 * MIB);
    kernel_reads(&grown);
}

/// Past 128 groups a 32-byte-descriptor table needs a second block, taken from the
/// reserved GDT blocks; the resize inode then maps one fewer.
#[test]
fn crossing_a_descriptor_block_takes_a_reserved_gdt_block() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(dir.path(), "desc", 2112, &["-O", "^huge_file,^64bit"]);
    let grown = grow_both(&img, 17 * 1024);
    let f = facts(&grown);
    let fresh = facts(&fixture(
        dir.path(),
        "fresh",
        2112,
        &["-O", "^huge_file,^64bit"],
    ));
    let reserved = |f: &BTreeMap<String, String>| f["Reserved GDT blocks"].parse::<u32>().unwrap();
    assert_eq!(reserved(&f) + 1, reserved(&fresh));
    kernel_reads(&grown);
}

/// 64-byte descriptors (the `64bit` feature, Debian's default), to 20 GiB: three
/// descriptor blocks, many backups.
#[test]
fn a_64bit_filesystem_grows_like_resize2fs() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(dir.path(), "wide", 300, &["-O", "^huge_file"]);
    grow_both(&img, 20 * 1024);
}

/// Group checksums without metadata_csum (`uninit_bg`), and no checksums at all (no
/// uninitialised groups: the new inode tables are written as zeros), without flex_bg.
#[test]
fn filesystems_without_metadata_csum_grow() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(
        dir.path(),
        "crc16",
        200,
        &["-O", "^metadata_csum,uninit_bg"],
    );
    grow_both(&img, 1200);
    let img = fixture(
        dir.path(),
        "plain",
        200,
        &["-O", "^metadata_csum,^uninit_bg,^flex_bg,^huge_file"],
    );
    let grown = grow_both(&img, 700);
    fill(&grown, 400 * MIB);
}

/// 1 KiB blocks (the first data block is 1) and trixie's `orphan_file`.
#[test]
fn small_blocks_and_orphan_file_grow() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(dir.path(), "k1", 30, &["-b", "1024", "-O", "^huge_file"]);
    let grown = grow_both(&img, 400);
    fill(&grown, 300 * MIB);
    let img = fixture(dir.path(), "orphan", 300, &["-O", "^huge_file,orphan_file"]);
    grow_both(&img, 1500);
}

/// Refused before anything is written: a smaller size, more than the partition holds,
/// a filesystem marked with errors, and a growth that needs descriptor blocks a
/// filesystem without `resize_inode` does not keep.
#[test]
fn refusals_leave_the_image_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixture(dir.path(), "r", 100, &["-O", "^huge_file,^64bit"]);
    fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(200 * MIB)
        .unwrap();
    let before = fs::read(&img).unwrap();
    let mut fs = open(&img, true).unwrap();
    let blocks = fs.blocks_count();
    let smaller = fs.grow(blocks - 1).unwrap_err();
    assert!(
        matches!(smaller.kind(), ErrorKind::InvalidGeometry(_)),
        "{smaller}"
    );
    assert!(smaller.to_string().contains("only grows"), "{smaller}");
    let beyond = fs.grow(fs.device_blocks() + 1).unwrap_err();
    assert!(
        beyond.to_string().contains("do not fit the partition"),
        "{beyond}"
    );
    let same = fs.grow(blocks).unwrap();
    assert_eq!(same.new_blocks, same.old_blocks);
    drop(fs);
    assert!(fs::read(&img).unwrap() == before, "refusals write nothing");

    run(tool("debugfs").args(["-w", "-R", "ssv state 3", path(&img)]));
    let err = open(&img, true).err().expect("refused");
    assert!(err.to_string().contains("with errors"), "{err}");
    assert!(format!("{err:?}").contains("e2fsck"), "{err:?}");

    let img = fixture(
        dir.path(),
        "noresize",
        64,
        &["-O", "^huge_file,^64bit,^resize_inode"],
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(17 * 1024 * MIB)
        .unwrap();
    let head = |img: &Path| {
        let mut buf = vec![0u8; 64 << 20];
        std::os::unix::fs::FileExt::read_exact_at(&fs::File::open(img).unwrap(), &mut buf, 0)
            .unwrap();
        buf
    };
    let before = head(&img);
    let mut fs = Ext4::open_rw(device(&img, true)).unwrap();
    let err = fs.grow(fs.device_blocks()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("descriptor"), "{err}");
    drop(fs);
    assert!(head(&img) == before, "the refusal wrote nothing");
    // Within the one descriptor block it has, the same filesystem grows.
    let mut fs = Ext4::open_rw(device(&img, true)).unwrap();
    let g = fs.grow(8 * 1024 * 256).unwrap();
    assert_eq!(g.descriptor_blocks_added, 0);
    drop(fs);
    e2fsck_clean(&img);
}
