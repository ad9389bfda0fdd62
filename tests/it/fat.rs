//! The FAT boot partition: pibake's writes pass `fsck.fat -n` and read back through mtools.

use crate::common::{Fixture, Release, tool};
use pibake::fs::fat::Fat;
use pibake_image::partition::Layout;
use pibake_image::region::Region;

fn open_boot(f: &Fixture) -> Fat {
    let image = Region::whole(&f.image, true).unwrap();
    let layout = Layout::read(&image).unwrap();
    let boot = layout.boot();
    Fat::open(image.sub(boot.start, boot.size).unwrap()).unwrap()
}

/// A config.txt bigger than one cluster, so replacing it reallocates the chain.
fn long_config() -> Vec<u8> {
    let mut s = String::from("# rewritten by the test\n");
    for i in 0..200 {
        s.push_str(&format!("dtparam=test_param_{i}=on\n"));
    }
    s.into_bytes()
}

fn edit(fat: &mut Fat) {
    fat.write("/config.txt", &long_config()).unwrap();
    fat.write("/overlays/pibake-cluster-hat-gadget.dtbo", &[7u8; 3000])
        .unwrap();
    fat.mkdir_p("/pibake/nested/deeper").unwrap();
    fat.write("/pibake/nested/deeper/a-long-file-name.txt", b"hello\n")
        .unwrap();
    fat.mkdir_p("/pibake/nested").unwrap(); // exists: no-op
    fat.remove("/overlays/gpio-shutdown.dtbo").unwrap();
}

#[test]
fn reads_what_mtools_wrote() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        let fat = open_boot(&f);
        assert_eq!(fat.read("/config.txt").unwrap(), f.mtype("config.txt"));
        assert_eq!(fat.read("cmdline.txt").unwrap(), f.mtype("cmdline.txt"));
        let overlays: Vec<String> = fat
            .read_dir("/overlays")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            overlays.contains(&"vc4-kms-v3d-pi4.dtbo".to_string()),
            "{overlays:?}"
        );
        assert!(fat.exists("/bcm2712-rpi-cm5-cm5io.dtb").unwrap());
        assert!(!fat.exists("/nope.txt").unwrap());
        let e = fat.read("/nope.txt").unwrap_err().to_string();
        assert!(e.contains("nope.txt") && e.contains("no such file"), "{e}");
    }
}

#[test]
fn writes_pass_fsck_fat_and_read_back_through_mtools() {
    let f = Fixture::new(Release::Trixie);
    let mut fat = open_boot(&f);
    edit(&mut fat);
    fat.close().unwrap();
    f.assert_clean();
    assert_eq!(f.mtype("config.txt"), long_config());
    assert_eq!(
        f.mtype("overlays/pibake-cluster-hat-gadget.dtbo"),
        vec![7u8; 3000]
    );
    assert_eq!(
        f.mtype("pibake/nested/deeper/a-long-file-name.txt"),
        b"hello\n"
    );
    let listing = crate::common::tool("mdir")
        .args(["-b", "-i", &f.fat_target(), "::/overlays"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("pibake-cluster-hat-gadget.dtbo"),
        "{listing}"
    );
    assert!(!listing.contains("gpio-shutdown.dtbo"), "{listing}");
    // Untouched files are still intact.
    assert_eq!(
        f.mtype("overlays/dwc2.dtbo"),
        open_boot(&f).read("/overlays/dwc2.dtbo").unwrap()
    );
}

#[test]
fn the_same_edits_give_the_same_bytes() {
    let f = Fixture::new(Release::Bookworm);
    let copy = f.dir.path().join("copy.img");
    std::fs::copy(&f.image, &copy).unwrap();
    for image in [&f.image, &copy] {
        let region = Region::whole(image, true).unwrap();
        let mut fat = Fat::open(region.sub(f.boot_offset, f.boot_size).unwrap()).unwrap();
        edit(&mut fat);
        fat.close().unwrap();
    }
    let (a, b) = (
        std::fs::read(&f.image).unwrap(),
        std::fs::read(&copy).unwrap(),
    );
    assert!(a == b, "two runs of the same edits on the same base differ");
}

#[test]
fn refuses_paths_that_leave_the_partition_and_files_in_the_way() {
    let f = Fixture::new(Release::Bookworm);
    let mut fat = open_boot(&f);
    assert!(fat.write("/../x", b"").is_err());
    let e = fat.mkdir_p("/config.txt/sub").unwrap_err().to_string();
    assert!(e.contains("is a file"), "{e}");
    fat.close().unwrap();
    f.assert_clean();
}

/// A file whose directory entry says 4 GiB over a cluster chain that loops on itself is
/// refused as damage, not read round and round into memory (a fuzz finding).
#[test]
fn a_looping_cluster_chain_is_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("boot.img");
    let ok = |c: &mut std::process::Command| assert!(c.status().unwrap().success());
    ok(tool("mkfs.vfat")
        .args(["-F", "16", "-C"])
        .arg(&img)
        .arg("16384"));
    std::fs::write(dir.path().join("loop.txt"), b"hello\n").unwrap();
    ok(tool("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(dir.path().join("loop.txt"))
        .arg("::/loop.txt"));
    let mut b = std::fs::read(&img).unwrap();
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let (bps, reserved, fats, per_fat) = (
        u16_at(&b, 11),
        u16_at(&b, 14),
        b[16] as usize,
        u16_at(&b, 22),
    );
    let root = (reserved + fats * per_fat) * bps;
    let entry = (root..root + 512 * 32)
        .step_by(32)
        .find(|&e| &b[e..e + 11] == b"LOOP    TXT")
        .expect("the file's directory entry");
    let cluster = u16_at(&b, entry + 26);
    b[entry + 28..entry + 32].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    for f in 0..fats {
        let at = (reserved + f * per_fat) * bps + cluster * 2;
        b[at..at + 2].copy_from_slice(&(cluster as u16).to_le_bytes());
    }
    std::fs::write(&img, &b).unwrap();
    let fat = Fat::open(Region::whole(&img, false).unwrap()).unwrap();
    let e = fat.read("/loop.txt").unwrap_err().to_string();
    assert!(e.contains("/loop.txt") && e.contains("loops"), "{e}");
}
