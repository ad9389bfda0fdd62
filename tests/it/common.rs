//! Test fixtures: small images laid out like Raspberry Pi OS, generated at test time.
//!
//! No binary images are committed. Each fixture is built the way pi-gen builds real ones
//! (MBR with two primary partitions, FAT32 `bootfs`, ext4 `rootfs` with the release's
//! features), using the independent tools that are also the tests' oracles: `sfdisk`,
//! `mkfs.vfat` + `mcopy`, `mkfs.ext4 -d` and `e2fsck -fyD` (which hash-indexes large
//! directories, as the kernel does when pi-gen fills a mounted root).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

pub const SECTOR: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Bullseye,
    Bookworm,
    Trixie,
}

impl Release {
    pub const ALL: [Release; 3] = [Release::Bullseye, Release::Bookworm, Release::Trixie];

    pub fn codename(self) -> &'static str {
        match self {
            Release::Bullseye => "bullseye",
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }

    /// The `mkfs.ext4 -O` feature edits pi-gen's build host ends up with for this release.
    fn ext4_features(self) -> &'static str {
        match self {
            Release::Bullseye => "^huge_file,^orphan_file,^64bit,^metadata_csum_seed",
            Release::Bookworm => "^huge_file,^64bit,^orphan_file,^metadata_csum_seed",
            Release::Trixie => "^huge_file,^64bit,metadata_csum_seed,orphan_file",
        }
    }

    /// Where the boot partition starts: 4 MiB before the 2025 re-alignment, 8 MiB after.
    fn boot_start_sector(self) -> u64 {
        match self {
            Release::Bullseye => 8192,
            _ => 16384,
        }
    }

    pub fn boot_mount(self) -> &'static str {
        match self {
            Release::Bullseye => "/boot",
            _ => "/boot/firmware",
        }
    }

    pub fn arch(self) -> &'static str {
        match self {
            Release::Bullseye => "armhf",
            _ => "arm64",
        }
    }
}

/// How to build a fixture; [`Spec::new`] gives the release's stock shape.
#[derive(Debug, Clone)]
pub struct Spec {
    pub release: Release,
    pub ext4_features: String,
    pub boot_start_sector: u64,
    pub boot_mib: u64,
    pub root_mib: u64,
    pub disk_id: u32,
}

impl Spec {
    pub fn new(release: Release) -> Spec {
        Spec {
            release,
            ext4_features: release.ext4_features().to_string(),
            boot_start_sector: release.boot_start_sector(),
            boot_mib: 64,
            root_mib: 96,
            disk_id: 0x5e3da0b5,
        }
    }
}

/// A generated image and where its parts are.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub image: PathBuf,
    pub spec: Spec,
    pub boot_offset: u64,
    pub boot_size: u64,
    pub root_offset: u64,
    pub root_size: u64,
}

impl Fixture {
    pub fn new(release: Release) -> Fixture {
        Fixture::build(Spec::new(release))
    }

    pub fn build(spec: Spec) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir
            .path()
            .join(format!("raspios-{}.img", spec.release.codename()));
        let boot_offset = spec.boot_start_sector * SECTOR;
        let boot_size = spec.boot_mib << 20;
        let root_offset = boot_offset + boot_size;
        let root_size = spec.root_mib << 20;
        let f = Fixture {
            image,
            boot_offset,
            boot_size,
            root_offset,
            root_size,
            spec,
            dir,
        };
        f.lay_out();
        f
    }

    fn lay_out(&self) {
        let s = &self.spec;
        let total = self.root_offset + self.root_size;
        fs::File::create(&self.image)
            .and_then(|f| f.set_len(total))
            .expect("create image");
        let table = format!(
            "label: dos\nlabel-id: 0x{:08x}\nstart={}, size={}, type=c\nstart={}, size={}, type=83\n",
            s.disk_id,
            s.boot_start_sector,
            self.boot_size / SECTOR,
            self.root_offset / SECTOR,
            self.root_size / SECTOR
        );
        run_stdin("sfdisk", &["--quiet", path(&self.image)], &table);

        let boot = self.dir.path().join("bootfs");
        write_boot_tree(&boot, s);
        run(
            "mkfs.vfat",
            &[
                "-F",
                "32",
                "-s",
                "1",
                "-n",
                "bootfs",
                "--offset",
                &s.boot_start_sector.to_string(),
                path(&self.image),
                &(self.boot_size / 1024).to_string(),
            ],
        );
        let mut args = vec!["-s".to_string(), "-i".to_string(), self.fat_target()];
        for e in sorted_entries(&boot) {
            args.push(e.display().to_string());
        }
        args.push("::/".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("mcopy", &args);

        let root = self.dir.path().join("rootfs");
        write_root_tree(&root, s);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-L",
                "rootfs",
                "-b",
                "4096",
                "-I",
                "256",
                "-O",
                &s.ext4_features,
                "-E",
                &format!("offset={}", self.root_offset),
                "-d",
                path(&root),
                path(&self.image),
                &format!("{}k", self.root_size / 1024),
            ],
        );
        // Hash-index large directories the way a kernel-filled root has them.
        let status = Command::new("e2fsck")
            .args(["-fyD", &self.ext4_target()])
            .output()
            .expect("run e2fsck");
        assert!(
            matches!(status.status.code(), Some(0) | Some(1)),
            "e2fsck -fyD failed: {}",
            String::from_utf8_lossy(&status.stdout)
        );
        let etc = self.debugfs("stat /etc");
        assert!(
            etc.contains("Flags: 0x81000") || etc.contains("Flags: 0x1000"),
            "/etc must be hash-indexed like a real root:\n{etc}"
        );
        self.assert_clean();
    }

    /// `IMG@@OFFSET`, the mtools way to address the boot partition.
    pub fn fat_target(&self) -> String {
        format!("{}@@{}", self.image.display(), self.boot_offset)
    }

    /// `IMG?offset=N`, the e2fsprogs way to address the root partition.
    pub fn ext4_target(&self) -> String {
        format!("{}?offset={}", self.image.display(), self.root_offset)
    }

    /// Both filesystems pass their own checker, read-only.
    pub fn assert_clean(&self) {
        e2fsck_clean(&self.image, self.root_offset);
        fsck_fat_clean(&self.image, self.boot_offset, self.boot_size);
    }

    /// A file of the boot partition, read by mtools.
    pub fn mtype(&self, file: &str) -> Vec<u8> {
        let out = tool("mcopy")
            .args(["-n", "-i", &self.fat_target(), &format!("::/{file}"), "-"])
            .output()
            .expect("mcopy");
        assert!(
            out.status.success(),
            "mcopy {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A debugfs request against the root partition, e.g. `cat /etc/hostname`.
    pub fn debugfs(&self, request: &str) -> String {
        let out = tool("debugfs")
            .args(["-R", request, &self.ext4_target()])
            .output()
            .expect("debugfs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `e2fsck -fn` exits 0 on the ext4 filesystem at `offset`.
pub fn e2fsck_clean(image: &Path, offset: u64) {
    let out = tool("e2fsck")
        .args(["-fn", &format!("{}?offset={offset}", image.display())])
        .output()
        .expect("e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fsck.fat -n` exits 0 on the FAT filesystem at `offset`. fsck.fat takes no offset,
/// so the partition is copied out first.
pub fn fsck_fat_clean(image: &Path, offset: u64, size: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("boot.part");
    let mut data = vec![0u8; size as usize];
    std::os::unix::fs::FileExt::read_exact_at(
        &fs::File::open(image).expect("open image"),
        &mut data,
        offset,
    )
    .expect("read the boot partition");
    fs::write(&part, &data).expect("write part");
    let out = tool("fsck.fat")
        .args(["-n", path(&part)])
        .output()
        .expect("fsck.fat");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fsck.fat -n is not clean:\n{text}");
    assert!(
        !text.contains("differences between boot sector") && !text.contains("Dirty bit"),
        "fsck.fat -n warns:\n{text}"
    );
}

/// A command from e2fsprogs, dosfstools, mtools or fdisk; fails loudly when missing.
pub fn tool(name: &str) -> Command {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    let Some(p) = found else {
        panic!("{name} is not installed: apt-get install -y e2fsprogs dosfstools mtools fdisk");
    };
    let mut c = Command::new(p);
    c.env("MTOOLS_SKIP_CHECK", "1");
    c
}

fn run(name: &str, args: &[&str]) {
    let out = tool(name).args(args).output().expect(name);
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_stdin(name: &str, args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = tool(name)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(name);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect(name);
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn put(root: &Path, rel: &str, content: &[u8], mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(&p, content).expect("write");
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    symlink(target, &p).expect("symlink");
}

fn chown(root: &Path, rel: &str, uid: u32, gid: u32) {
    std::os::unix::fs::chown(root.join(rel), Some(uid), Some(gid))
        .expect("chown (the fixtures are built as root, as in CI)");
}

/// The release's stock config.txt (from `testdata/raspios/`).
pub fn stock_config_txt(release: Release) -> &'static str {
    match release {
        Release::Bullseye => include_str!("../../testdata/raspios/bullseye/config.txt"),
        Release::Bookworm => include_str!("../../testdata/raspios/bookworm/config.txt"),
        Release::Trixie => include_str!("../../testdata/raspios/trixie/config.txt"),
    }
}

/// The release's stock cmdline.txt, with `root=PARTUUID=` naming `disk_id`.
pub fn stock_cmdline(release: Release, disk_id: u32) -> String {
    let stock = match release {
        Release::Bullseye => include_str!("../../testdata/raspios/bullseye/cmdline.txt"),
        Release::Bookworm => include_str!("../../testdata/raspios/bookworm/cmdline.txt"),
        Release::Trixie => include_str!("../../testdata/raspios/trixie/cmdline.txt"),
    };
    stock.replace("5e3da0b5", &format!("{disk_id:08x}"))
}

fn write_boot_tree(boot: &Path, s: &Spec) {
    let r = s.release;
    put(boot, "config.txt", stock_config_txt(r).as_bytes(), 0o644);
    put(
        boot,
        "cmdline.txt",
        stock_cmdline(r, s.disk_id).as_bytes(),
        0o644,
    );
    put(
        boot,
        "issue.txt",
        b"Raspberry Pi reference 2025-05-13\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 0123456789abcdef, stage2\n",
        0o644,
    );
    let kernel = if r.arch() == "arm64" {
        "kernel8.img"
    } else {
        "kernel7l.img"
    };
    put(boot, kernel, &vec![0x4b; 256 * 1024], 0o644);
    put(
        boot,
        "bcm2711-rpi-4-b.dtb",
        &[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 0x40],
        0o644,
    );
    put(
        boot,
        "bcm2712-rpi-cm5-cm5io.dtb",
        &[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 0x40],
        0o644,
    );
    for o in [
        "dwc2",
        "vc4-kms-v3d",
        "vc4-kms-v3d-pi4",
        "i2c-gpio",
        "disable-bt",
        "nospi10",
        "gpio-shutdown",
    ] {
        put(
            boot,
            &format!("overlays/{o}.dtbo"),
            &[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 0x20],
            0o644,
        );
    }
    put(
        boot,
        "overlays/README",
        b"Name:   dwc2\nInfo:   Selects the dwc2 USB controller driver\n",
        0o644,
    );
    if r == Release::Trixie {
        put(
            boot,
            "meta-data",
            b"dsmode: local\ninstance_id: rpios-image\n",
            0o644,
        );
        put(boot, "user-data", b"#cloud-config\n", 0o644);
        put(
            boot,
            "network-config",
            b"# network-config\n#network:\n#  version: 2\n",
            0o644,
        );
    }
}

fn elf_header(arch: &str) -> Vec<u8> {
    // A 64-byte ELF header is all `inspect` reads to tell armhf from arm64.
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    let (class, machine) = if arch == "arm64" {
        (2, 0xB7u16)
    } else {
        (1, 0x28u16)
    };
    h[4] = class;
    h[5] = 1; // little-endian
    h[6] = 1;
    h[16] = 3; // ET_DYN
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

fn write_root_tree(root: &Path, s: &Spec) {
    let r = s.release;
    let code = r.codename();
    let (version, id) = match r {
        Release::Bullseye => ("11", "raspbian"),
        Release::Bookworm => ("12", "debian"),
        Release::Trixie => ("13", "debian"),
    };
    fs::create_dir_all(root).expect("mkdir root");
    for d in [
        "usr/bin", "usr/sbin", "usr/lib", "proc", "sys", "dev", "run", "tmp", "var/lib", "boot",
    ] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    link(root, "bin", "usr/bin");
    link(root, "sbin", "usr/sbin");
    link(root, "lib", "usr/lib");
    put(root, "usr/bin/dash", &elf_header(r.arch()), 0o755);
    link(root, "usr/bin/sh", "dash");
    put(
        root,
        "usr/lib/os-release",
        format!(
            "PRETTY_NAME=\"{} GNU/Linux {version} ({code})\"\nNAME=\"{} GNU/Linux\"\nVERSION_ID=\"{version}\"\nVERSION=\"{version} ({code})\"\nVERSION_CODENAME={code}\nID={id}\nID_LIKE=debian\nHOME_URL=\"https://www.debian.org/\"\n",
            if id == "raspbian" { "Raspbian" } else { "Debian" },
            if id == "raspbian" { "Raspbian" } else { "Debian" },
        )
        .as_bytes(),
        0o644,
    );
    link(root, "etc/os-release", "../usr/lib/os-release");
    put(
        root,
        "etc/rpi-issue",
        b"Raspberry Pi reference 2025-05-13\n",
        0o644,
    );
    put(root, "etc/hostname", b"raspberrypi\n", 0o644);
    put(
        root,
        "etc/hosts",
        b"127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n127.0.1.1\t\traspberrypi\n",
        0o644,
    );
    let fstab = format!(
        "proc            /proc           proc    defaults          0       0\nPARTUUID={id:08x}-01  {boot}  vfat    defaults          0       2\nPARTUUID={id:08x}-02  /               ext4    defaults,noatime  0       1\n",
        id = s.disk_id,
        boot = r.boot_mount()
    );
    put(root, "etc/fstab", fstab.as_bytes(), 0o644);
    put(
        root,
        "etc/machine-id",
        if r == Release::Trixie {
            b"uninitialized\n"
        } else {
            b""
        },
        0o444,
    );
    put(
        root,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
        0o644,
    );
    put(root, "etc/shadow", b"root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nsshd:!:19000::::::\npi:!:19000:0:99999:7:::\n", 0o640);
    chown(root, "etc/shadow", 0, 42);
    put(
        root,
        "etc/group",
        b"root:x:0:\nadm:x:4:pi\nsudo:x:27:pi\nshadow:x:42:\nusers:x:100:pi\npi:x:1000:\n",
        0o644,
    );
    put(
        root,
        "etc/gshadow",
        b"root:*::\nadm:*::pi\nsudo:*::pi\nshadow:*::\nusers:*::pi\npi:!::\n",
        0o640,
    );
    chown(root, "etc/gshadow", 0, 42);
    put(root, "home/pi/.bashrc", b"# ~/.bashrc\n", 0o644);
    // A few of tzdata's zones, as real images carry them all.
    for zone in ["Etc/UTC", "Europe/London", "America/New_York"] {
        put(
            root,
            &format!("usr/share/zoneinfo/{zone}"),
            b"TZif2\n",
            0o644,
        );
    }
    chown(root, "home/pi/.bashrc", 1000, 1000);
    chown(root, "home/pi", 1000, 1000);
    fs::set_permissions(root.join("home/pi"), fs::Permissions::from_mode(0o700)).expect("chmod");
    put(
        root,
        "etc/sudoers.d/010_pi-nopasswd",
        b"pi ALL=(ALL) NOPASSWD: ALL\n",
        0o440,
    );
    put(
        root,
        "etc/ssh/sshd_config",
        b"Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem\tsftp\t/usr/lib/openssh/sftp-server\n",
        0o644,
    );
    fs::create_dir_all(root.join("etc/ssh/sshd_config.d")).expect("mkdir");

    // Units: vendor files, and the enablement symlinks that tell which stack is active.
    let unit_dir = if r == Release::Trixie {
        "/usr/lib/systemd/system"
    } else {
        "/lib/systemd/system"
    };
    let mut units = vec![
        "ssh.service",
        "NetworkManager.service",
        "systemd-networkd.service",
        "getty@.service",
    ];
    let mut wanted = vec!["NetworkManager.service"];
    match r {
        Release::Bullseye => {
            units.extend(["dhcpcd.service", "regenerate_ssh_host_keys.service"]);
            wanted = vec!["dhcpcd.service"];
        }
        Release::Bookworm => {
            units.extend(["regenerate_ssh_host_keys.service", "userconfig.service"])
        }
        Release::Trixie => units.extend([
            "rpi-resize.service",
            "sshd-keygen.service",
            "cloud-init.service",
        ]),
    }
    for u in &units {
        put(
            root,
            &format!("usr/lib/systemd/system/{u}"),
            format!("[Unit]\nDescription={u}\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n").as_bytes(),
            0o644,
        );
    }
    for u in wanted {
        link(
            root,
            &format!("etc/systemd/system/multi-user.target.wants/{u}"),
            &format!("{unit_dir}/{u}"),
        );
    }
    link(root, "etc/systemd/network/99-default.link", "/dev/null");
    put(
        root,
        "etc/NetworkManager/NetworkManager.conf",
        b"[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n",
        0o644,
    );
    fs::create_dir_all(root.join("etc/NetworkManager/system-connections")).expect("mkdir");
    match r {
        Release::Bullseye => put(
            root,
            "etc/dhcpcd.conf",
            b"hostname\nclientid\npersistent\noption rapid_commit\nslaac private\n",
            0o644,
        ),
        Release::Trixie => {
            put(
                root,
                "etc/cloud/cloud.cfg",
                b"datasource_list: [ NoCloud, None ]\n",
                0o644,
            );
            put(
                root,
                "usr/lib/netplan/00-network-manager-all.yaml",
                b"network:\n  version: 2\n  renderer: NetworkManager\n",
                0o600,
            );
            put(root, "usr/sbin/netplan", &elf_header(r.arch()), 0o755);
        }
        Release::Bookworm => {}
    }
    if r != Release::Bullseye {
        put(root, "boot/firmware/.keep", b"", 0o644);
        put(root, "boot/config.txt", b"DO NOT EDIT THIS FILE\n\nThe file you are looking for has moved to /boot/firmware/config.txt\n", 0o644);
    }
    // Enough entries that /etc and /etc/alternatives span several blocks and get indexed.
    for i in 0..160 {
        put(
            root,
            &format!("etc/pibake-fixture-{i:03}.conf"),
            format!("# {i}\n").as_bytes(),
            0o644,
        );
    }
    for i in 0..400 {
        link(
            root,
            &format!("etc/alternatives/tool-with-a-long-name-{i:04}"),
            &format!("/usr/bin/dash-{i}"),
        );
    }
}

/// Runs the pibake binary, with `SOURCE_DATE_EPOCH` fixed so its outputs are reproducible.
pub fn pibake(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run pibake")
}

/// Standard output of a pibake run that must succeed.
pub fn pibake_ok(args: &[&str]) -> String {
    let out = pibake(args);
    assert!(
        out.status.success(),
        "pibake {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a pibake run that must fail.
pub fn pibake_fails(args: &[&str]) -> String {
    let out = pibake(args);
    assert!(!out.status.success(), "pibake {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A public key made for this test run (the examples' placeholder key is refused by
/// `build`); its private half is thrown away.
pub fn test_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let k = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .expect("key");
        k.public_key().to_openssh().expect("encode") + " test@pibake"
    })
}

/// A shipped example copied into `dir` (its profiles and overlays too), its cluster file
/// with `base:` pointing at `base` and the admin's placeholder key replaced by
/// [`test_key`].
pub fn example_on(example: &Path, base: &Path, dir: &Path) -> PathBuf {
    copy_tree(example, dir);
    let text: String = fs::read_to_string(example.join("cluster.yaml"))
        .expect("example cluster")
        .lines()
        .map(|l| {
            if l.starts_with("base:") {
                format!("base: {}\n", base.display())
            } else if l.trim_start().starts_with("- ssh-ed25519 ") {
                format!("    - {}\n", test_key())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.join("cluster.yaml");
    fs::write(&path, stand_ins(dir, &text)).expect("write cluster");
    path
}

/// The user's own files an example names (`k3s: { binary: { path, sha256 } }`), which
/// a checkout cannot ship: a stand-in of a few bytes at each path, its sha256 in place of
/// the example's placeholder.
pub fn stand_ins(dir: &Path, text: &str) -> String {
    text.lines()
        .map(|l| {
            let Some((head, rest)) = l.split_once("{ path: ") else {
                return format!("{l}\n");
            };
            let (file, _) = rest.split_once(", sha256:").expect("path, then sha256");
            let content = format!("stand-in for {file}\n");
            let at = dir.join(file);
            fs::create_dir_all(at.parent().unwrap()).expect("mkdir");
            fs::write(&at, &content).expect("write stand-in");
            let sum = sha2::Sha256::digest(content.as_bytes());
            let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
            format!("{head}{{ path: {file}, sha256: \"{hex}\" }}\n")
        })
        .collect()
}

/// Copies the directory `from` into `to` (an example's own profiles and overlays).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read example") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// The image bmaptool writes to `dest` from `image` (raw or compressed) with `bmap`,
/// checking every range's checksum as it copies; a failure is the test's.
pub fn bmaptool_copy(bmap: &Path, image: &Path, dest: &Path) -> Vec<u8> {
    let out = tool("bmaptool")
        .args(["copy", "--bmap"])
        .args([bmap, image, dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bmaptool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dest).unwrap()
}

/// The build options the library-level tests use: outputs, state and cache under `dir`,
/// raw images only, no progress bars.
pub fn build_options(dir: &Path) -> pibake::bake::Options {
    pibake::bake::Options {
        out: dir.join("out"),
        state: dir.join("state"),
        cache: pibake_image::base::CacheOptions {
            dir: Some(dir.join("cache")),
            progress: false,
        },
        time: None,
        jobs: 0,
        bmap: false,
        formats: vec![pibake::bake::OutputFormat::Raw],
        sha256: false,
        progress: false,
        allow_example_credentials: false,
        packages: Default::default(),
    }
}

/// A debugfs request against the root partition at `root_offset` of a built image, its
/// output as text.
pub fn debugfs_text(image: &Path, root_offset: u64, request: &str) -> String {
    let out = tool("debugfs")
        .args([
            "-R",
            request,
            &format!("{}?offset={root_offset}", image.display()),
        ])
        .output()
        .expect("debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The plan's first-boot runner and steps (everything under /usr/local/lib/pibake/)
/// written below `root`, to run them on the build machine.
pub fn write_firstboot_files(plan: &pibake::plan::Plan, root: &Path) {
    for f in plan
        .files
        .iter()
        .filter(|f| f.path.starts_with("/usr/local/lib/pibake/"))
    {
        let p = root.join(f.path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        fs::write(&p, &f.content).expect("write a first-boot file");
    }
}

/// `pibake build CLUSTER --out OUT EXTRA...` with its cache in `work/cache`; its stdout.
pub fn pibake_build(work: &Path, cluster: &Path, out: &Path, extra: &[&str]) -> String {
    let o = pibake_build_run(work, cluster, out, extra);
    assert!(
        o.status.success(),
        "pibake build: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The same build, as it came out (for builds that must fail).
pub fn pibake_build_run(
    work: &Path,
    cluster: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let cache = work.join("cache");
    let mut args = vec![
        "--cache-dir",
        path(&cache),
        "build",
        path(cluster),
        "--out",
        path(out),
    ];
    args.extend_from_slice(extra);
    pibake(&args)
}

/// A cluster `name` on one network, `lan` (10.7.0.0/24, addresses from .10), whose
/// `worker` role has eth0 on it over the shipped `base` profile, and whose admin logs in
/// with the run's test key only: `base` is the YAML after `base: `, `nodes` the entries
/// under `nodes:`, one per line.
pub fn lan_cluster(dir: &Path, name: &str, base: &str, nodes: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(
        dir.join("profiles/worker.yaml"),
        "extends: base\ninterfaces:\n  eth0: { network: lan }\n",
    )
    .unwrap();
    let nodes: String = nodes.iter().map(|n| format!("  - {n}\n")).collect();
    let text = format!(
        "cluster: {name}\nbase: {base}\nnetworks:\n  lan: {{ subnet: 10.7.0.0/24, gateway: 10.7.0.1, first: 10.7.0.10 }}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles: {{ worker: {{}} }}\nnodes:\n{nodes}",
        test_key()
    );
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, text).unwrap();
    path
}
