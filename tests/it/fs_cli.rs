//! `pibake fs` edits both partitions of an image from outside; debugfs and mtools read
//! the results back, and both checkers stay clean.

use std::process::Command;

use crate::common::{Fixture, Release, path, pibake_fails, pibake_ok};

#[test]
fn root_edits_read_back_through_debugfs() {
    let f = Fixture::new(Release::Bookworm);
    let img = path(&f.image);
    let local = f.dir.path().join("motd");
    std::fs::write(&local, "welcome to node-01\n").unwrap();
    let motd = path(&local);

    pibake_ok(&[
        "fs",
        "put",
        img,
        motd,
        "/etc/motd",
        "--mode",
        "0640",
        "--owner",
        "1000:27",
    ]);
    pibake_ok(&[
        "fs",
        "mkdir",
        img,
        "/opt/cluster/bin",
        "--mode",
        "0750",
        "--owner",
        "1000:1000",
    ]);
    pibake_ok(&["fs", "ln", "-s", img, "/etc/motd", "/opt/cluster/motd"]);
    pibake_ok(&["fs", "chmod", img, "4755", "/opt/cluster/bin"]);
    pibake_ok(&["fs", "chown", img, "0:4", "/etc/hostname"]);
    pibake_ok(&["fs", "put", img, motd, "/etc/doomed"]);
    pibake_ok(&["fs", "rm", img, "/etc/doomed"]);
    f.assert_clean();

    assert_eq!(f.debugfs("cat /etc/motd"), "welcome to node-01\n");
    let st = f.debugfs("stat /etc/motd");
    assert!(
        st.contains("Mode:  0640") && st.contains("User:  1000") && st.contains("Group:    27"),
        "{st}"
    );
    assert!(
        st.contains("mtime: 0x6553f100"),
        "SOURCE_DATE_EPOCH stamps the file:\n{st}"
    );
    let bin = f.debugfs("stat /opt/cluster/bin");
    assert!(
        bin.contains("Mode:  04755") && bin.contains("User:  1000"),
        "{bin}"
    );
    assert!(
        f.debugfs("stat /opt/cluster/motd")
            .contains("Fast link dest: \"/etc/motd\"")
    );
    assert!(f.debugfs("stat /etc/hostname").contains("Group:     4"));
    assert!(
        f.debugfs("stat /etc/doomed").is_empty(),
        "removed file still there"
    );

    // Reading back through pibake agrees with debugfs.
    assert_eq!(
        pibake_ok(&["fs", "cat", img, "/etc/hostname"]),
        f.debugfs("cat /etc/hostname")
    );
    let ls = pibake_ok(&["fs", "ls", "-l", img, "/opt/cluster"]);
    assert!(
        ls.contains("l0777     0:0") && ls.contains("motd -> /etc/motd"),
        "{ls}"
    );
    assert!(ls.contains("d4755  1000:1000"), "{ls}");
    let json: serde_json::Value =
        serde_json::from_str(&pibake_ok(&["--json", "fs", "stat", img, "/etc/motd"])).unwrap();
    assert_eq!(json["mode"], 0o640);
    assert_eq!(json["uid"], 1000);
}

#[test]
fn boot_edits_read_back_through_mtools() {
    let f = Fixture::new(Release::Trixie);
    let img = path(&f.image);
    let local = f.dir.path().join("userconf.txt");
    std::fs::write(&local, "pi:$y$j9T$abc\n").unwrap();

    pibake_ok(&["fs", "put", img, path(&local), "boot:/userconf.txt"]);
    pibake_ok(&["fs", "mkdir", img, "boot:/pibake/keys"]);
    pibake_ok(&[
        "fs",
        "put",
        img,
        path(&local),
        "boot:/pibake/keys/long-file-name.conf",
    ]);
    pibake_ok(&["fs", "rm", img, "boot:/issue.txt"]);
    f.assert_clean();
    assert_eq!(f.mtype("userconf.txt"), b"pi:$y$j9T$abc\n");
    assert_eq!(
        f.mtype("pibake/keys/long-file-name.conf"),
        b"pi:$y$j9T$abc\n"
    );
    assert!(pibake_ok(&["fs", "ls", img, "boot:/overlays"]).contains(".dtbo"));
    assert!(!pibake_ok(&["fs", "ls", img, "boot:/"]).contains("issue.txt"));
    assert_eq!(
        pibake_ok(&["fs", "cat", img, "boot:/config.txt"]).as_bytes(),
        f.mtype("config.txt")
    );
}

#[test]
fn bad_requests_are_refused_and_leave_the_image_alone() {
    let f = Fixture::new(Release::Bullseye);
    let img = path(&f.image);
    let before = std::fs::read(&f.image).unwrap();
    let local = f.dir.path().join("x");
    std::fs::write(&local, "x").unwrap();
    let x = path(&local);

    assert!(
        pibake_fails(&["fs", "chown", img, "1000:1000", "boot:/config.txt"])
            .contains("boot:/config.txt: the boot partition is FAT: it has no owners")
    );
    assert!(
        pibake_fails(&["fs", "put", img, x, "boot:/x", "--mode", "0600"])
            .contains("no permissions")
    );
    assert!(
        pibake_fails(&["fs", "ln", "-s", img, "/x", "boot:/link"]).contains("no symbolic links")
    );
    assert!(
        pibake_fails(&["fs", "put", img, x, "/etc/x", "--owner", "pi"])
            .contains("`pi` is not a numeric owner UID:GID")
    );
    assert!(
        pibake_fails(&["fs", "chmod", img, "999", "/etc/hostname"])
            .contains("`999` is not an octal mode")
    );
    assert!(
        pibake_fails(&["fs", "rm", img, "/etc/nope"])
            .contains("/etc/nope: no such file or directory")
    );
    // Endless or oversized sources are refused before a byte is read (this read
    // /dev/zero until memory ran out before).
    assert!(
        pibake_fails(&["fs", "put", img, "/dev/zero", "/etc/zero"])
            .contains("/dev/zero: not a regular file")
    );
    let big = f.dir.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    assert!(pibake_fails(&["fs", "put", img, path(&big), "boot:/big"]).contains("cannot fit in a"));
    assert!(
        pibake_fails(&["fs", "cat", img, "etc/hostname"])
            .contains("paths inside an image are absolute")
    );
    assert!(pibake_fails(&["fs", "ln", img, "/a", "/b"]).contains("--symbolic"));
    assert!(
        std::fs::read(&f.image).unwrap() == before,
        "a refused edit changed the image"
    );

    // Edits need a raw image; a compressed one is read but not written.
    let zst = f.dir.path().join("base.img.zst");
    let out = Command::new("zstd")
        .args(["-q", "-o", path(&zst), img])
        .status()
        .unwrap();
    assert!(out.success());
    let cache = f.dir.path().join("cache");
    let cached = ["--cache-dir", path(&cache)];
    assert_eq!(
        pibake_ok(&[&cached[..], &["fs", "cat", path(&zst), "/etc/hostname"]].concat()),
        f.debugfs("cat /etc/hostname")
    );
    let err = pibake_fails(&[&cached[..], &["fs", "put", path(&zst), x, "/etc/x"]].concat());
    assert!(
        err.contains("is compressed") && err.contains("pibake unpack"),
        "{err}"
    );
}
