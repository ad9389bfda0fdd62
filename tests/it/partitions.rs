//! Partition tables of Pi-OS-shaped images, and the refusals for broken ones.

use crate::common::{Fixture, Release, Spec};
use pibake_image::partition::{Content, DiskId, Layout, TableKind};
use pibake_image::region::Region;

#[test]
fn finds_boot_and_root_on_every_release_layout() {
    for release in Release::ALL {
        let f = Fixture::new(release);
        let layout = Layout::read(&Region::whole(&f.image, false).unwrap()).unwrap();
        assert_eq!(layout.table, TableKind::Mbr);
        assert_eq!(layout.disk_id, DiskId::Mbr(f.spec.disk_id));
        assert_eq!(
            layout.disk_id.to_string(),
            format!("{:08x}", f.spec.disk_id)
        );
        assert_eq!(layout.boot().start, f.boot_offset, "{release:?}");
        assert_eq!(layout.boot().size, f.boot_size);
        assert_eq!(layout.boot().content, Content::Fat);
        assert_eq!(layout.boot().label.as_deref(), Some("bootfs"));
        assert_eq!(layout.boot().type_id, "0x0c");
        assert_eq!(layout.root().start, f.root_offset);
        assert_eq!(layout.root().content, Content::Ext4);
        assert_eq!(layout.root().label.as_deref(), Some("rootfs"));
        assert_eq!(layout.root().number, 2);
    }
}

#[test]
fn reads_gpt_images() {
    let f = Fixture::new(Release::Bookworm);
    // Convert the table to GPT in place (same partition extents) with sfdisk.
    let script = format!(
        "label: gpt\nlabel-id: 0C4A4B36-8B4F-4E2B-9C0A-6F3C3C4D5E6F\nstart={}, size={}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart={}, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
        f.boot_offset / 512,
        f.boot_size / 512,
        f.root_offset / 512,
        f.root_size / 512 - 34,
    );
    let mut child = crate::common::tool("sfdisk")
        .args(["--quiet", "--wipe", "never", crate::common::path(&f.image)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let layout = Layout::read(&Region::whole(&f.image, false).unwrap()).unwrap();
    assert_eq!(layout.table, TableKind::Gpt);
    assert_eq!(
        layout.disk_id,
        DiskId::Gpt("0c4a4b36-8b4f-4e2b-9c0a-6f3c3c4d5e6f".into())
    );
    assert_eq!(layout.boot().start, f.boot_offset);
    assert_eq!(layout.root().start, f.root_offset);
    assert_eq!(layout.root().content, Content::Ext4);
}

fn error_of(image: &std::path::Path) -> String {
    Layout::read(&Region::whole(image, false).unwrap())
        .unwrap_err()
        .to_string()
}

fn patch(image: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(image).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn refuses_an_image_without_a_partition_table() {
    let f = Fixture::new(Release::Bookworm);
    patch(&f.image, 510, &[0, 0]);
    let e = error_of(&f.image);
    assert!(e.contains("no partition table"), "{e}");
    assert!(
        e.contains(crate::common::path(&f.image)),
        "names the file: {e}"
    );
}

#[test]
fn refuses_overlapping_partitions() {
    let f = Fixture::new(Release::Bookworm);
    // Partition 2's entry is at 446 + 16; its start LBA at +8. Move it into partition 1.
    let inside = (f.boot_offset / 512 + 100) as u32;
    patch(&f.image, 446 + 16 + 8, &inside.to_le_bytes());
    let e = error_of(&f.image);
    assert!(e.contains("overlap"), "{e}");
    assert!(e.contains("partitions 1") && e.contains(" and 2"), "{e}");
}

/// An extended partition (whose chain of logical partitions mbrman sums unchecked) is
/// refused before it is read: Raspberry Pi OS images have primary partitions only.
#[test]
fn refuses_an_extended_partition() {
    let f = Fixture::new(Release::Bookworm);
    // Partition 2's type byte is at 446 + 16 + 4.
    patch(&f.image, 446 + 16 + 4, &[0x05]);
    let e = error_of(&f.image);
    assert!(
        e.contains("partition 2 is an extended partition (type 0x05)"),
        "{e}"
    );
    assert!(e.contains("primary partitions"), "{e}");
}

#[test]
fn refuses_a_partition_past_the_end_of_the_file() {
    let f = Fixture::new(Release::Bookworm);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&f.image)
        .unwrap();
    file.set_len(f.root_offset + f.root_size / 2).unwrap();
    let e = error_of(&f.image);
    assert!(
        e.contains("partition 2") && e.contains("past the end"),
        "{e}"
    );
    assert!(e.contains("truncated"), "hint says what to suspect: {e}");
}

#[test]
fn refuses_images_without_fat_or_ext4() {
    let f = Fixture::new(Release::Trixie);
    patch(&f.image, f.root_offset + 1024 + 56, &[0, 0]);
    let e = error_of(&f.image);
    assert!(e.contains("no ext4 partition"), "{e}");

    let g = Fixture::build(Spec::new(Release::Trixie));
    patch(&g.image, g.boot_offset + 510, &[0, 0]);
    let e = error_of(&g.image);
    assert!(e.contains("no FAT partition"), "{e}");
}

#[test]
fn refuses_a_tiny_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.img");
    std::fs::write(&p, b"not an image").unwrap();
    let e = error_of(&p);
    assert!(e.contains("too small"), "{e}");
}
