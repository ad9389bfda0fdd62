//! A typical node's root-filesystem edits on a 2 GiB root, against a plain copy of the
//! same image as the baseline (what a node build must do anyway).
//!
//! `cargo bench --bench ext4_edits`. The root is made by pibake's mkfs and filled like a
//! Raspberry Pi OS root where it matters: a hash-indexed /etc of a few hundred names,
//! /usr trees, systemd unit directories. The edits are those of a node build: hostname,
//! hosts, SSH host keys, a user's authorized_keys, network configuration, a unit and its
//! enablement symlink, templated files; about 40 in all.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use pibake_ext4::mkfs::MkfsOptions;
use pibake_ext4::{Ext4, Meta};
use pibake_image::region::Region;

const ROOT_BYTES: u64 = 2 << 30;

fn region(image: &Path) -> Region {
    let whole = Region::whole(image, true).expect("open image");
    whole.sub(0, whole.len()).expect("region")
}

fn make_base(image: &Path) {
    fs::File::create(image)
        .and_then(|f| f.set_len(ROOT_BYTES))
        .expect("create");
    let mut fs = Ext4::mkfs(
        region(image),
        &MkfsOptions::new(*b"pibake-bench-fs!", 1_700_000_000),
    )
    .expect("mkfs");
    let dir = Meta::new(0o755, 0, 0);
    let file = Meta::new(0o644, 0, 0);
    for d in [
        "/etc/ssh",
        "/etc/systemd/system/multi-user.target.wants",
        "/usr/lib/systemd/system",
        "/home",
        "/var/lib",
    ] {
        fs.mkdir_p(d, &dir).expect("mkdir");
    }
    for i in 0..300 {
        fs.write_file(
            &format!("/etc/conf-{i:03}.conf"),
            format!("setting={i}\n").as_bytes(),
            &file,
        )
        .expect("etc");
    }
    for i in 0..400 {
        fs.write_file(
            &format!("/usr/lib/systemd/system/unit-{i}.service"),
            b"[Service]\nExecStart=/bin/true\n",
            &file,
        )
        .expect("units");
    }
    for i in 0..200 {
        fs.write_file(
            &format!("/usr/lib/lib{i}.so"),
            &vec![i as u8; 300_000],
            &file,
        )
        .expect("libs");
    }
    fs.commit().expect("commit");
}

/// About 40 edits, as a node build makes them. Returns the bytes written to the image.
fn node_edits(image: &Path) -> u64 {
    let region = region(image);
    let mut fs = Ext4::open_rw(region.clone()).expect("open");
    let root = Meta::new(0o644, 0, 0);
    let secret = Meta::new(0o600, 0, 0);
    let user = Meta::new(0o700, 1000, 1000);
    fs.write_file("/etc/hostname", b"node-042\n", &root)
        .unwrap();
    fs.write_file(
        "/etc/hosts",
        b"127.0.0.1 localhost\n127.0.1.1 node-042\n10.0.0.1 head\n",
        &root,
    )
    .unwrap();
    fs.write_file("/etc/machine-id", b"", &Meta::new(0o444, 0, 0))
        .unwrap();
    for kind in ["rsa", "ecdsa", "ed25519"] {
        fs.write_file(
            &format!("/etc/ssh/ssh_host_{kind}_key"),
            &[7u8; 2600],
            &secret,
        )
        .unwrap();
        fs.write_file(
            &format!("/etc/ssh/ssh_host_{kind}_key.pub"),
            &[8u8; 560],
            &root,
        )
        .unwrap();
    }
    fs.mkdir_p("/home/pi/.ssh", &user).unwrap();
    fs.write_file(
        "/home/pi/.ssh/authorized_keys",
        &[9u8; 800],
        &Meta::new(0o600, 1000, 1000),
    )
    .unwrap();
    fs.mkdir_p(
        "/etc/NetworkManager/system-connections",
        &Meta::new(0o755, 0, 0),
    )
    .unwrap();
    fs.write_file(
        "/etc/NetworkManager/system-connections/eth0.nmconnection",
        &[1u8; 400],
        &secret,
    )
    .unwrap();
    fs.write_file(
        "/etc/NetworkManager/system-connections/usb0.nmconnection",
        &[2u8; 400],
        &secret,
    )
    .unwrap();
    fs.write_file(
        "/usr/lib/systemd/system/cluster-agent.service",
        b"[Service]\nExecStart=/usr/local/bin/agent\n",
        &root,
    )
    .unwrap();
    fs.symlink(
        "/etc/systemd/system/multi-user.target.wants/cluster-agent.service",
        "/usr/lib/systemd/system/cluster-agent.service",
        &Meta::new(0o777, 0, 0),
    )
    .unwrap();
    fs.mkdir_p("/usr/local/bin", &Meta::new(0o755, 0, 0))
        .unwrap();
    fs.write_file(
        "/usr/local/bin/agent",
        &[3u8; 1_000_000],
        &Meta::new(0o755, 0, 0),
    )
    .unwrap();
    for i in 0..20 {
        fs.write_file(
            &format!("/etc/cluster-{i:02}.conf"),
            format!("node=42\nindex={i}\n").as_bytes(),
            &root,
        )
        .unwrap();
    }
    fs.write_file("/etc/conf-007.conf", b"replaced\n", &root)
        .unwrap();
    fs.remove("/etc/conf-008.conf").unwrap();
    fs.commit().unwrap();
    // Clones of a region share its write log.
    region.written().iter().map(|r| r.end - r.start).sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    make_base(&base);
    let node = dir.path().join("node.img");
    let (mut copies, mut edits) = (Vec::new(), Vec::new());
    let mut written = 0;
    for _ in 0..7 {
        let _ = fs::remove_file(&node);
        let t = Instant::now();
        fs::copy(&base, &node).expect("copy");
        copies.push(t.elapsed());
        let t = Instant::now();
        written = node_edits(&node);
        edits.push(t.elapsed());
    }
    let (copy, edit) = (median(copies), median(edits));
    println!("root filesystem   2048 MiB (pibake mkfs, hash-indexed /etc of 300 names)");
    println!(
        "plain copy        {:8.1} ms (baseline: copying the base image)",
        copy.as_secs_f64() * 1e3
    );
    println!(
        "node edits        {:8.1} ms (40 edits + commit; target < 50 ms)",
        edit.as_secs_f64() * 1e3
    );
    println!(
        "ratio             {:8.3}x of the copy",
        edit.as_secs_f64() / copy.as_secs_f64()
    );
    println!(
        "bytes written     {:8.2} MiB (target < 4 MiB; 1 MiB of it is one file's content)",
        written as f64 / (1 << 20) as f64
    );
}
