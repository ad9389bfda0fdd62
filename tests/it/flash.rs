//! `pibake flash` and `pibake verify` on regular files and loop devices.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{pibake_fails, pibake_ok};

/// A node image from the demo: sparse, with data scattered over its partitions.
fn node_image(dir: &Path) -> PathBuf {
    pibake_ok(&["demo", dir.to_str().unwrap()]);
    dir.join("images/web01.img")
}

/// Bytes of data in a pibake image, counted independently: its non-zero 4 KiB blocks
/// (pibake writes images sparsely, every all-zero block a hole).
fn data_bytes(p: &Path) -> u64 {
    let data = fs::read(p).unwrap();
    data.chunks(4096)
        .filter(|c| c.iter().any(|&b| b != 0))
        .count() as u64
        * 4096
}

/// A loop device over a fresh file of `bytes`, detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path, bytes: u64) -> Loop {
        fs::File::create(file).unwrap().set_len(bytes).unwrap();
        let out = crate::common::tool("losetup")
            .args(["--find", "--show", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = crate::common::tool("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn flashing_a_file_writes_only_the_data_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = node_image(dir.path());
    let a = dir.path().join("card-a.img");
    let b = dir.path().join("card-b.img");
    fs::write(&a, vec![0xAAu8; 1 << 20]).unwrap(); // old content must not survive
    // `b` does not exist yet: flash makes it, as cp would.
    let log = dir.path().join("flash.log");
    let out = pibake_ok(&[
        "--json",
        "flash",
        image.to_str().unwrap(),
        "--device",
        a.to_str().unwrap(),
        "--device",
        b.to_str().unwrap(),
        "--yes",
        "--log",
        log.to_str().unwrap(),
    ]);
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 2, "two targets at once");
    for (r, target) in reports.as_array().unwrap().iter().zip([&a, &b]) {
        assert_eq!(r["verified"], true);
        assert_eq!(
            r["written"].as_u64().unwrap(),
            data_bytes(&image),
            "bytes written are the image's data"
        );
        assert!(
            fs::read(target).unwrap() == fs::read(&image).unwrap(),
            "{} differs from the image",
            target.display()
        );
    }
    let log = fs::read_to_string(&log).unwrap();
    assert_eq!(log.lines().count(), 2);
    // Under /dev a missing path is a mistyped card, never a new file.
    let err = pibake_fails(&[
        "flash",
        image.to_str().unwrap(),
        "--device",
        "/dev/pibake-no-such-card",
        "--yes",
    ]);
    assert!(
        err.contains("/dev/pibake-no-such-card: no such device"),
        "{err}"
    );
    assert!(!Path::new("/dev/pibake-no-such-card").exists());
    assert!(log.contains("\"verified\":true") && log.contains("\"image_sha256\":"));

    // A byte damaged after writing is caught, and named.
    let data_at = 75_497_472 + 1024 + 56; // in the root's superblock
    let f = fs::OpenOptions::new().write(true).open(&a).unwrap();
    f.write_all_at(&[0xFF], data_at).unwrap();
    let err = pibake_fails(&[
        "verify",
        a.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
    ]);
    assert!(err.contains(&format!("byte {data_at} differs")), "{err}");
    assert!(
        pibake_ok(&[
            "verify",
            b.to_str().unwrap(),
            "--image",
            image.to_str().unwrap()
        ])
        .contains("matches")
    );

    // Garbage where the image has a hole: a verified card equals the image byte for
    // byte, so it is caught; `--data-only` compares the data ranges alone.
    let src = fs::File::open(&image).unwrap();
    let len = src.metadata().unwrap().len();
    let ranges = pibake_image::sparse::data_ranges(&src, len).unwrap();
    let gap = ranges[0].end;
    assert!(gap < len && !ranges.iter().any(|r| r.contains(&gap)));
    let f = fs::OpenOptions::new().write(true).open(&b).unwrap();
    f.write_all_at(&[0x5A], gap).unwrap();
    let (b_s, img) = (b.to_str().unwrap(), image.to_str().unwrap());
    let err = pibake_fails(&["verify", b_s, "--image", img]);
    assert!(err.contains(&format!("byte {gap} differs")), "{err}");
    assert!(pibake_ok(&["verify", b_s, "--image", img, "--data-only"]).contains("matches"));
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = node_image(dir.path());
    let img = image.to_str().unwrap();
    assert!(
        pibake_fails(&["flash", img, "--device", "/dev/null", "--yes"])
            .contains("neither a block device nor a regular file")
    );
    assert!(
        pibake_fails(&[
            "flash",
            img,
            "--device",
            dir.path().to_str().unwrap(),
            "--yes"
        ])
        .contains("neither a block device nor a regular file")
    );
    let file = dir.path().join("target.img");
    fs::File::create(&file).unwrap();
    let err = pibake_fails(&["flash", img, "--device", file.to_str().unwrap()]);
    assert!(
        err.contains("not confirmed") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        0,
        "an unconfirmed flash wrote"
    );

    // A loop device is not removable: refused unless forced; forced, too small is refused.
    let small = Loop::new(&dir.path().join("small.bin"), 64 << 20);
    assert!(
        pibake_fails(&["flash", img, "--device", &small.0, "--yes"])
            .contains("is not a removable device")
    );
    let err = pibake_fails(&["flash", img, "--device", &small.0, "--yes", "--force"]);
    assert!(
        err.contains("holds 67108864 bytes, the image needs"),
        "{err}"
    );

    // A device with a mounted filesystem is refused even when forced.
    let mounted = Loop::new(&dir.path().join("mounted.bin"), 300 << 20);
    assert!(
        crate::common::tool("mkfs.ext4")
            .args(["-q", &mounted.0])
            .status()
            .unwrap()
            .success()
    );
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    assert!(
        Command::new("mount")
            .args([&mounted.0, mnt.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let err = pibake_fails(&["flash", img, "--device", &mounted.0, "--yes", "--force"]);
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(
        err.contains("has filesystems mounted at") && err.contains("mnt"),
        "{err}"
    );
}

#[test]
fn flashing_a_block_device_zeroes_what_the_image_does_not_carry() {
    let dir = tempfile::tempdir().unwrap();
    let image = node_image(dir.path());
    let len = fs::metadata(&image).unwrap().len();
    let backing = dir.path().join("card.bin");
    let dev = Loop::new(&backing, len + (16 << 20));
    // Old data everywhere, as on a used card.
    fs::write(&backing, vec![0x5Au8; (len + (16 << 20)) as usize]).unwrap();
    pibake_ok(&[
        "flash",
        image.to_str().unwrap(),
        "--device",
        &dev.0,
        "--yes",
        "--force",
        "--log",
        dir.path().join("log").to_str().unwrap(),
    ]);
    let mut on_card = vec![0u8; len as usize];
    fs::File::open(&dev.0)
        .unwrap()
        .read_exact_at(&mut on_card, 0)
        .unwrap();
    assert!(
        on_card == fs::read(&image).unwrap(),
        "the card does not hold the image (zero ranges must be zero)"
    );
    crate::common::e2fsck_clean(Path::new(&dev.0), 75_497_472);
}

#[test]
fn flashing_a_node_from_its_cluster_builds_it_first() {
    let dir = tempfile::tempdir().unwrap();
    pibake_ok(&["demo", dir.path().to_str().unwrap()]);
    let cluster = dir.path().join("web-cluster/cluster.yaml");
    let card = dir.path().join("card.img");
    fs::File::create(&card).unwrap();
    // The demo's base has no apt sources: its packages are left to first boot.
    pibake_ok(&[
        "flash",
        "--online-packages",
        cluster.to_str().unwrap(),
        "--node",
        "web02",
        "--device",
        card.to_str().unwrap(),
        "--yes",
    ]);
    let built = dir.path().join("web-cluster/images/web02.img");
    assert!(fs::read(&card).unwrap() == fs::read(&built).unwrap());
    let log = fs::read_to_string(dir.path().join("web-cluster/.pibake/state/flash.log")).unwrap();
    assert!(log.contains("\"node\":\"web02\""), "{log}");
}

/// An image is never flashed onto itself, by any name: the same path, a symlink to it, a
/// hard link of it, or a node's own output image given as the card. Nothing is written
/// (a regular-file target is truncated first, so the image would become zeros).
#[test]
fn an_image_is_never_flashed_onto_itself() {
    let dir = tempfile::tempdir().unwrap();
    let image = node_image(dir.path());
    let before = fs::read(&image).unwrap();
    let img = image.to_str().unwrap();
    let link = dir.path().join("link.img");
    std::os::unix::fs::symlink(&image, &link).unwrap();
    let hard = dir.path().join("hard.img");
    fs::hard_link(&image, &hard).unwrap();
    for target in [&image, &link, &hard] {
        let t = target.to_str().unwrap();
        let err = pibake_fails(&["flash", img, "--device", t, "--yes"]);
        assert!(
            err.contains(&format!(
                "{t}: is the image being flashed, {img} (the same file"
            )) && err.contains("hint: give an SD card's device"),
            "{err}"
        );
    }
    // The other way round: the image through a link, the target by its own name.
    let err = pibake_fails(&["flash", hard.to_str().unwrap(), "--device", img, "--yes"]);
    assert!(err.contains("is the image being flashed"), "{err}");

    // A node's own image as the card, or another node's of the same run.
    let cluster = dir.path().join("web-cluster/cluster.yaml");
    let (c, images) = (cluster.to_str().unwrap(), dir.path().join("images"));
    let web02 = images.join("web02.img");
    let web02_before = fs::read(&web02).unwrap();
    let card = dir.path().join("card.img");
    fs::File::create(&card).unwrap();
    let card_link = dir.path().join("card-link.img");
    std::os::unix::fs::symlink(&card, &card_link).unwrap();
    let (out, w2, card) = (
        images.to_str().unwrap(),
        web02.to_str().unwrap(),
        card.to_str().unwrap(),
    );
    let flash = ["flash", "--online-packages", c, "--out", out, "--yes"];
    for extra in [
        vec!["--node", "web01", "--device", img],
        vec![
            "--node", "web01", "--node", "web02", "--device", card, "--device", w2,
        ],
    ] {
        let args: Vec<&str> = flash.iter().copied().chain(extra).collect();
        let err = pibake_fails(&args);
        assert!(err.contains("is the image being flashed"), "{err}");
    }
    assert_eq!(fs::metadata(card).unwrap().len(), 0, "a refused run wrote");
    // One card given twice, under two names.
    let err = pibake_fails(&[
        "flash",
        c,
        "--out",
        out,
        "--node",
        "web01",
        "--node",
        "web02",
        "--device",
        card,
        "--device",
        card_link.to_str().unwrap(),
        "--yes",
    ]);
    assert!(err.contains("given twice as --device"), "{err}");
    assert!(
        fs::read(&image).unwrap() == before && fs::read(&web02).unwrap() == web02_before,
        "an image was written"
    );
}
