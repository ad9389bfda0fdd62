//! The FAT boot partition: pibake's writes pass `fsck.fat -n` and read back through mtools.

use crate::common::{Fixture, Release};
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
