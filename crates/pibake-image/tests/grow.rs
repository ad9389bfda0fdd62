//! Growing the root partition's entry, checked against the tools that would otherwise do
//! it: `sfdisk` (package fdisk) makes the fixtures, resizes a copy of each as the oracle
//! the result must match byte for byte, and verifies the result; `sgdisk` (package gdisk)
//! verifies grown GPTs. `mkfs.ext4` puts a real filesystem in the root partition.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pibake_image::grow::{RootGrowth, grow_root_entry};
use pibake_image::partition::{Layout, TableKind};
use pibake_image::region::Region;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const FAT_TYPE: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E7D-3D69D8477DE4";

/// A sparse image file partitioned by `sfdisk`, laid out like Raspberry Pi OS.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    /// A `len`-byte sparse file partitioned by the sfdisk `script`, with a FAT boot sector
    /// at partition 1 and an ext4 filesystem filling partition 2.
    fn new(len: u64, script: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raspios.img");
        fs::File::create(&path)
            .and_then(|f| f.set_len(len))
            .expect("create image");
        run("sfdisk", &["--quiet", s(&path)], Some(script));
        let parts = partitions(&path);
        write_fat_boot_sector(&path, parts[0].0);
        let (root_start, root_size) = parts[1];
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-L",
                "rootfs",
                "-E",
                &format!("offset={root_start}"),
                s(&path),
                &format!("{}k", root_size / 1024),
            ],
            None,
        );
        Fixture { _dir: dir, path }
    }

    /// Raspberry Pi OS's shape: FAT at `boot_sector`, 16 MiB; ext4 after it to the end.
    fn mbr(boot_sector: u64, len: u64) -> Fixture {
        Fixture::new(
            len,
            &format!(
                "label: dos\nlabel-id: 0x5e3da0b5\nstart={boot_sector}, size={}, type=c\nstart={}, type=83\n",
                16 * MIB / SECTOR,
                boot_sector + 16 * MIB / SECTOR
            ),
        )
    }

    /// The same on GPT; `root_sectors` None fills the disk.
    fn gpt(len: u64, root_sectors: Option<u64>) -> Fixture {
        let size = root_sectors
            .map(|n| format!(", size={n}"))
            .unwrap_or_default();
        Fixture::new(
            len,
            &format!(
                "label: gpt\nstart=8192, size={}, type={FAT_TYPE}\nstart={}{size}, type={LINUX_TYPE}\n",
                16 * MIB / SECTOR,
                8192 + 16 * MIB / SECTOR
            ),
        )
    }

    fn len(&self) -> u64 {
        fs::metadata(&self.path).expect("stat image").len()
    }

    fn blocks(&self) -> u64 {
        fs::metadata(&self.path).expect("stat image").blocks()
    }

    /// A sparse copy of the image as it is now, to resize with sfdisk as the oracle.
    fn copy(&self, name: &str) -> PathBuf {
        let copy = self.path.with_file_name(name);
        run("cp", &["--sparse=always", s(&self.path), s(&copy)], None);
        copy
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs a tool to success and returns its stdout.
fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool} (is it installed?): {e}"));
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sfdisk --json`'s partition table.
fn table(path: &Path) -> Value {
    let json: Value = serde_json::from_str(&run("sfdisk", &["--json", s(path)], None))
        .expect("sfdisk --json output");
    json["partitiontable"].clone()
}

/// (start, size) in bytes of each partition, as sfdisk reads them.
fn partitions(path: &Path) -> Vec<(u64, u64)> {
    let field = |p: &Value, k: &str| p[k].as_u64().expect("sector count") * SECTOR;
    table(path)["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| (field(p, "start"), field(p, "size")))
        .collect()
}

/// What the partition probe needs to see a FAT32 boot partition.
fn write_fat_boot_sector(path: &Path, at: u64) {
    let mut boot = [0u8; 512];
    boot[11..13].copy_from_slice(&512u16.to_le_bytes());
    boot[82..87].copy_from_slice(b"FAT32");
    boot[510..512].copy_from_slice(&[0x55, 0xAA]);
    let f = fs::OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(&boot, at).expect("write boot sector");
}

fn read(path: &Path, at: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut buf, at))
        .expect("read image");
    buf
}

fn sha(path: &Path, at: u64, len: u64) -> [u8; 32] {
    Sha256::digest(read(path, at, len)).into()
}

fn whole_sha(path: &Path) -> [u8; 32] {
    Sha256::digest(fs::read(path).expect("read image")).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn layout(path: &Path) -> Layout {
    Layout::read(&Region::whole(path, false).expect("open")).expect("layout")
}

/// Grows an MBR fixture's root and checks it against sfdisk resizing a copy.
fn grow_mbr_and_check(img: &Fixture, new_size: u64) {
    let before = partitions(&img.path);
    let (root_start, root_size) = before[1];
    let (old_len, old_blocks) = (img.len(), img.blocks());
    let root_sha = sha(&img.path, root_start, root_size);
    let oracle = img.copy("oracle.img");

    let growth = grow_root_entry(&img.path, new_size).expect("grow");
    let new_len = old_len.max(root_start + new_size);
    assert_eq!(
        growth,
        RootGrowth {
            number: 2,
            start: root_start,
            old_size: root_size,
            new_size,
            old_len,
            new_len,
        }
    );
    assert_eq!(img.len(), new_len);
    assert!(
        img.blocks() <= old_blocks + 8,
        "the file stays sparse: {} blocks of 512 bytes, {old_blocks} before",
        img.blocks()
    );
    let after = table(&img.path);
    assert_eq!(after["id"], "0x5e3da0b5", "disk signature kept");
    assert_eq!(partitions(&img.path), [before[0], (root_start, new_size)]);
    assert_eq!(
        sha(&img.path, root_start, root_size),
        root_sha,
        "data untouched"
    );
    let verify = run("sfdisk", &["--verify", s(&img.path)], None);
    assert!(verify.contains("No errors detected"), "{verify}");

    fs::File::options()
        .write(true)
        .open(&oracle)
        .and_then(|f| f.set_len(new_len))
        .expect("extend oracle");
    let resize = format!(",{}", new_size / SECTOR);
    run("sfdisk", &["--quiet", "-N", "2", s(&oracle)], Some(&resize));
    // The disk signature and the four entries: all of sector 0 that is not boot code.
    assert_eq!(
        hex(&read(&img.path, 440, 72)),
        hex(&read(&oracle, 440, 72)),
        "MBR as sfdisk writes it"
    );
    assert_eq!(read(&img.path, 0, SECTOR), read(&oracle, 0, SECTOR));
    let grown = layout(&img.path);
    assert_eq!((grown.table, grown.root().size), (TableKind::Mbr, new_size));
}

#[test]
fn mbr_root_at_8192_grows_to_2_gib_as_sfdisk_would() {
    let img = Fixture::mbr(8192, 64 * MIB);
    grow_mbr_and_check(&img, 2 * GIB);
}

#[test]
fn mbr_root_at_16384_grows_past_cylinder_1023_as_sfdisk_would() {
    // 20 GiB ends past the 8 GiB a 255x63 CHS reaches: end CHS becomes FE FF FF.
    let img = Fixture::mbr(16384, 64 * MIB);
    grow_mbr_and_check(&img, 20 * GIB);
    let entry = read(&img.path, 446 + 16, 16);
    assert_eq!(entry[5..8], [0xFE, 0xFF, 0xFF]);
}

#[test]
fn mbr_root_grows_inside_the_file_without_extending_it() {
    let img = Fixture::new(
        64 * MIB,
        "label: dos\nlabel-id: 0x5e3da0b5\nstart=8192, size=32768, type=c\nstart=40960, size=32768, type=83\n",
    );
    grow_mbr_and_check(&img, 40 * MIB);
    assert_eq!(img.len(), 64 * MIB);
}

/// Grows a GPT fixture's root and checks it against sfdisk relocating the backup to the
/// end of an extended copy and resizing the root there.
fn grow_gpt_and_check(img: &Fixture, new_size: u64) -> RootGrowth {
    let before = partitions(&img.path);
    let (root_start, root_size) = before[1];
    let old_len = img.len();
    let root_sha = sha(&img.path, root_start, root_size);
    let oracle = img.copy("oracle.img");

    let growth = grow_root_entry(&img.path, new_size).expect("grow");
    let new_len = old_len.max(root_start + new_size + 33 * SECTOR);
    assert_eq!((growth.new_size, growth.new_len), (new_size, new_len));
    assert_eq!(img.len(), new_len);
    assert_eq!(partitions(&img.path), [before[0], (root_start, new_size)]);
    assert_eq!(
        sha(&img.path, root_start, root_size),
        root_sha,
        "data untouched"
    );
    let verify = run("sgdisk", &["--verify", s(&img.path)], None);
    assert!(verify.contains("No problems found"), "{verify}");

    let last = new_len / SECTOR - 1;
    let backup = read(&img.path, last * SECTOR, SECTOR);
    assert_eq!(&backup[..8], b"EFI PART");
    assert_eq!((le64(&backup, 24), le64(&backup, 32)), (last, 1));

    fs::File::options()
        .write(true)
        .open(&oracle)
        .and_then(|f| f.set_len(new_len))
        .expect("extend oracle");
    run("sfdisk", &["--relocate", "gpt-bak-std", s(&oracle)], None);
    let resize = format!(",{}", new_size / SECTOR);
    run("sfdisk", &["--quiet", "-N", "2", s(&oracle)], Some(&resize));
    let head = 34 * SECTOR;
    let tail = new_len - 33 * SECTOR;
    assert_eq!(
        read(&img.path, 0, head),
        read(&oracle, 0, head),
        "pMBR, primary"
    );
    assert_eq!(
        read(&img.path, tail, 33 * SECTOR),
        read(&oracle, tail, 33 * SECTOR),
        "backup entries and header"
    );
    let grown = layout(&img.path);
    assert_eq!((grown.table, grown.root().size), (TableKind::Gpt, new_size));
    growth
}

#[test]
fn gpt_backup_moves_to_the_new_end_and_the_old_one_is_zeroed() {
    let img = Fixture::gpt(64 * MIB, None);
    let old_blocks = img.blocks();
    let growth = grow_gpt_and_check(&img, 2 * GIB);
    assert_eq!(growth.old_len, 64 * MIB);
    assert!(
        img.blocks() <= old_blocks + 48,
        "the file stays sparse: {} blocks of 512 bytes, {old_blocks} before",
        img.blocks()
    );
    let old_backup = read(&img.path, 64 * MIB - SECTOR, SECTOR);
    assert!(old_backup.iter().all(|&b| b == 0), "stale header zeroed");
}

#[test]
fn gpt_root_grows_inside_the_file_with_the_backup_left_at_its_end() {
    let img = Fixture::gpt(64 * MIB, Some(16 * MIB / SECTOR));
    grow_gpt_and_check(&img, 32 * MIB);
    assert_eq!(img.len(), 64 * MIB);
}

/// Asserts that growing to `new_size` is refused with a message containing `says`, and
/// that the file is byte for byte and length for length what it was.
fn assert_refused(img: &Fixture, new_size: u64, says: &[&str]) {
    let (len, before) = (img.len(), whole_sha(&img.path));
    let err = grow_root_entry(&img.path, new_size)
        .expect_err("refused")
        .to_string();
    assert!(err.contains(s(&img.path)), "names the image: {err}");
    for part in says {
        assert!(err.contains(part), "{err:?} should say {part:?}");
    }
    assert_eq!(img.len(), len, "not extended");
    assert_eq!(whole_sha(&img.path), before, "nothing written");
}

#[test]
fn refuses_a_root_with_a_partition_after_it() {
    let img = Fixture::new(
        64 * MIB,
        "label: dos\nstart=8192, size=32768, type=c\nstart=40960, size=32768, type=83\nstart=73728, type=83\n",
    );
    assert_refused(&img, GIB, &["partition 3", "after the root partition 2"]);
}

#[test]
fn refuses_to_shrink_and_partial_sectors() {
    let img = Fixture::mbr(8192, 64 * MIB);
    let root = partitions(&img.path)[1].1;
    assert_refused(&img, root - SECTOR, &["pibake only grows"]);
    assert_refused(&img, GIB + 100, &["not a whole number of 512-byte sectors"]);
}

#[test]
fn refuses_an_mbr_root_past_2_tib() {
    let img = Fixture::mbr(8192, 64 * MIB);
    let start = partitions(&img.path)[1].0 / SECTOR;
    let max = (u64::from(u32::MAX) - start) * SECTOR;
    assert_refused(&img, max + SECTOR, &["MBR", "GPT", &max.to_string()]);
}

#[test]
fn refuses_a_gpt_root_past_the_largest_file() {
    let img = Fixture::gpt(64 * MIB, None);
    assert_refused(&img, i64::MAX as u64 / SECTOR * SECTOR, &["larger than"]);
}

#[test]
fn the_same_size_writes_nothing() {
    let img = Fixture::gpt(64 * MIB, None);
    let (start, size) = partitions(&img.path)[1];
    let (len, before) = (img.len(), whole_sha(&img.path));
    let growth = grow_root_entry(&img.path, size).expect("no-op");
    assert_eq!(
        growth,
        RootGrowth {
            number: 2,
            start,
            old_size: size,
            new_size: size,
            old_len: len,
            new_len: len,
        }
    );
    assert_eq!(whole_sha(&img.path), before);
}
