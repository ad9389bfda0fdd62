//! Images with a larger root than the base's: `root_size:` in cluster.yaml or a profile,
//! and `pibake grow`. Every image is checked by e2fsck and fsck.fat, its partition table
//! read by sfdisk, its contents by debugfs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    Fixture, Release, debugfs_text as debugfs, e2fsck_clean, fsck_fat_clean, pibake, pibake_ok,
    test_key, tool,
};

const MIB: u64 = 1 << 20;

/// A cluster of a `small` role (the cluster's `root_size`) and a `big` one (its
/// profile's), on `base`.
fn cluster(dir: &Path, base: &Path, root_size: &str) -> PathBuf {
    fs::create_dir_all(dir.join("profiles")).unwrap();
    fs::write(dir.join("profiles/big.yaml"), "root_size: 1GiB\n").unwrap();
    fs::write(dir.join("profiles/small.yaml"), "gpu_mem: 16\n").unwrap();
    let text = format!(
        "cluster: roomy\nbase: {}\nroot_size: {root_size}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles:\n  big: {{}}\n  small: {{}}\nnodes:\n  - {{ name: big1, role: big }}\n  - {{ name: \"small[1-2]\", role: small }}\n",
        base.display(),
        test_key()
    );
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

/// The root partition's start and size in bytes, as sfdisk reads the table.
fn root_partition(image: &Path) -> (u64, u64) {
    let out = tool("sfdisk")
        .args(["--json", image.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["partitiontable"]["partitions"][1];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

fn build(dir: &Path, cluster: &Path, extra: &[&str]) -> String {
    crate::common::pibake_build(dir, cluster, &dir.join("out"), extra)
}

/// Each role's images get the root its profile or the cluster asks for, made once per
/// size into the cache; the filesystem fills the partition, both checkers accept every
/// image, and each node is still itself.
#[test]
fn root_size_grows_each_roles_images() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let path = cluster(work.path(), &f.image, "512MiB");
    let plan = pibake_ok(&["plan", path.to_str().unwrap()]);
    assert!(
        plan.contains(
            "role big: root partition 1.0 GiB grown from the base's 96.0 MiB, as `root_size:` asks"
        ) && plan.contains("role small: root partition 512.0 MiB grown"),
        "{plan}"
    );
    build(work.path(), &path, &[]);
    for (node, size) in [
        ("big1", 1024 * MIB),
        ("small1", 512 * MIB),
        ("small2", 512 * MIB),
    ] {
        let image = work.path().join(format!("out/{node}.img"));
        let (start, len) = root_partition(&image);
        assert_eq!((start, len), (f.root_offset, size), "{node}");
        assert_eq!(fs::metadata(&image).unwrap().len(), start + size, "{node}");
        e2fsck_clean(&image, start);
        fsck_fat_clean(&image, f.boot_offset, f.boot_size);
        assert_eq!(
            debugfs(&image, start, "cat /etc/hostname"),
            format!("{node}\n")
        );
        let stats = debugfs(&image, start, "stats");
        assert!(
            stats.contains(&format!("Block count:              {}\n", size / 4096)),
            "{node}: {stats}"
        );
    }
    let grown: Vec<_> = fs::read_dir(work.path().join("cache"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".root-") && n.ends_with(".img"))
        .collect();
    assert_eq!(grown.len(), 2, "one grown base per size: {grown:?}");
    // A node rebuilt alone, from the cached grown base, is the same image.
    let manifest = |w: &Path| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(w.join("out/manifest.json")).unwrap()).unwrap()
    };
    let before = manifest(work.path())["nodes"][1]["image"].clone();
    fs::remove_file(work.path().join("out/small1.img")).unwrap();
    build(work.path(), &path, &["--node", "small1"]);
    assert_eq!(manifest(work.path())["nodes"][1]["image"], before);
}

/// A `root_size` no larger than the base's root changes nothing; one written in
/// decimal units is refused where it is written.
#[test]
fn a_smaller_root_size_keeps_the_base_and_units_are_binary() {
    let f = Fixture::new(Release::Bookworm);
    let work = tempfile::tempdir().unwrap();
    let path = cluster(work.path(), &f.image, "64MiB");
    let plan = pibake_ok(&["plan", path.to_str().unwrap()]);
    assert!(
        plan.contains("role small: root partition 96.0 MiB as the base has it"),
        "{plan}"
    );
    build(work.path(), &path, &[]);
    let image = work.path().join("out/small1.img");
    assert_eq!(root_partition(&image), (f.root_offset, f.root_size));
    assert_eq!(
        fs::metadata(&image).unwrap().len(),
        fs::metadata(&f.image).unwrap().len()
    );

    let path = cluster(work.path(), &f.image, "4G");
    let err =
        String::from_utf8_lossy(&pibake(&["validate", path.to_str().unwrap()]).stderr).into_owned();
    assert!(
        err.contains("cluster.yaml:3:12: root_size: size `4G`") && err.contains("`4GiB`"),
        "{err}"
    );
}

/// `pibake grow` on a copy of a base: in place, the filesystem clean and its files kept;
/// a smaller size and a compressed image are refused without a write.
#[test]
fn pibake_grow_grows_a_raw_image_in_place() {
    let f = Fixture::new(Release::Trixie);
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("copy.img");
    fs::copy(&f.image, &image).unwrap();
    let hostname = debugfs(&image, f.root_offset, "cat /etc/hostname");
    let out = pibake_ok(&["grow", image.to_str().unwrap(), "--root-size", "2GiB"]);
    assert!(out.contains("96.0 MiB -> 2.0 GiB"), "{out}");
    assert_eq!(root_partition(&image), (f.root_offset, 2048 * MIB));
    e2fsck_clean(&image, f.root_offset);
    assert_eq!(
        debugfs(&image, f.root_offset, "cat /etc/hostname"),
        hostname
    );
    let before = fs::read(&f.image).unwrap();
    let err = String::from_utf8_lossy(
        &pibake(&["grow", f.image.to_str().unwrap(), "--root-size", "64MiB"]).stderr,
    )
    .into_owned();
    assert!(err.contains("only grows"), "{err}");
    assert!(
        fs::read(&f.image).unwrap() == before,
        "a refusal writes nothing"
    );
    let zst = work.path().join("base.img.zst");
    let status = std::process::Command::new("zstd")
        .args(["-q", "-o", zst.to_str().unwrap(), f.image.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let err = String::from_utf8_lossy(
        &pibake(&["grow", zst.to_str().unwrap(), "--root-size", "1GiB"]).stderr,
    )
    .into_owned();
    assert!(err.contains("changes raw images in place"), "{err}");
}
