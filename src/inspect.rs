//! What an image is: read, never assumed.
//!
//! `pibake inspect` and the build both need the same facts about a base image: where
//! its partitions are, which release and architecture it is, which network stack is
//! really active (from enabled units, not installed packages: bullseye has both dhcpcd and
//! NetworkManager installed), where the boot partition is mounted, and how first boot
//! will behave. This module reads them from the image and nothing else.

use serde::Serialize;

use crate::bootcfg::{Cmdline, ConfigTxt};
use crate::error::{Error, Result};
use crate::fs::fat::Fat;
use crate::inventory::NetworkStack;
use pibake_ext4::Ext4;
use pibake_image::partition::{Layout, Partition};
use pibake_image::region::Region;

/// Everything `inspect` reports about an image.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The image's path, as given.
    pub image: String,
    /// Size of the image file in bytes.
    pub size: u64,
    /// The partition table's kind (MBR or GPT).
    pub table: pibake_image::partition::TableKind,
    /// The disk identifier that `PARTUUID=`s are derived from.
    pub disk_id: String,
    /// The partitions, in table order.
    pub partitions: Vec<Partition>,
    /// Release and architecture of the root filesystem.
    pub os: Os,
    /// The boot partition: where it is mounted and what it configures.
    pub boot: Boot,
    /// The network stack that will configure interfaces.
    pub network: Network,
    /// First line of `/etc/hostname`, if the file exists.
    pub hostname: Option<String>,
    /// Accounts with a UID from 1000 up (the image's default user, if any).
    pub users: Vec<String>,
    /// How the image will behave on its first boot.
    pub first_boot: FirstBoot,
    /// Inconsistencies worth a user's attention (e.g. `root=` not matching the disk).
    pub warnings: Vec<String>,
}

/// The release an image runs, from `/etc/os-release` and the binaries themselves.
#[derive(Debug, Serialize)]
pub struct Os {
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub pretty_name: Option<String>,
    /// `VERSION_CODENAME`: bullseye, bookworm, trixie, ...
    pub codename: Option<String>,
    /// armhf or arm64, from the ELF header of `/bin/sh`.
    pub arch: Option<String>,
    /// First line of `issue.txt` on the boot partition ("Raspberry Pi reference ...").
    pub issue: Option<String>,
}

/// The boot partition as the image will use it.
#[derive(Debug, Serialize)]
pub struct Boot {
    /// Where the root's fstab mounts the FAT partition: `/boot` or `/boot/firmware`.
    pub mount: Option<String>,
    /// Effective config.txt settings as `[section] key=value`.
    pub config: Vec<String>,
    /// The kernel command line from `cmdline.txt`, as one line.
    pub cmdline: String,
}

/// Who configures the network, judged from enabled units.
#[derive(Debug, Serialize)]
pub struct Network {
    /// The active stack as a person reads it: NetworkManager, dhcpcd, systemd-networkd,
    /// ifupdown, several joined by ` + `, or none.
    pub stack: String,
    /// The stack a plan writes for: the first active one; `None` when no stack's unit
    /// is enabled.
    #[serde(skip)]
    pub active: Option<NetworkStack>,
    /// Other first-boot actors that can rewrite network config (cloud-init, netplan).
    pub also: Vec<String>,
}

/// The state that decides what happens on first boot.
#[derive(Debug, Serialize)]
pub struct FirstBoot {
    /// `empty`, `uninitialized` (systemd first-boot semantics), `missing` or `set`.
    pub machine_id: String,
    /// The first-boot trigger on the kernel command line, if any.
    pub trigger: Option<String>,
    /// Whether sshd will start: an enabled unit, or an `ssh`/`ssh.txt` flag on the boot
    /// partition.
    pub ssh_enabled: bool,
    /// How many `ssh_host_*_key` files the image already holds.
    pub ssh_host_keys: usize,
}

/// Reads the report for the image at `path` (opened read-only).
pub fn inspect(path: &std::path::Path) -> Result<Report> {
    let image = Region::whole(path, false)?;
    let layout = Layout::read(&image)?;
    let boot_part = layout.boot();
    let root_part = layout.root();
    let fat = Fat::open(image.sub(boot_part.start, boot_part.size)?)?;
    let root = Ext4::open(image.sub(root_part.start, root_part.size)?)?;

    let config = ConfigTxt::parse(&text(&fat.read("/config.txt")?));
    let cmdline_text = text(&fat.read("/cmdline.txt")?);
    let cmdline = Cmdline::parse(&cmdline_text).map_err(|e| {
        Error::invalid(format!(
            "{}: boot partition cmdline.txt: {e}",
            path.display()
        ))
    })?;
    let issue = if fat.exists("/issue.txt")? {
        first_line(&text(&fat.read("/issue.txt")?))
    } else {
        None
    };

    let os_release = read_opt(&root, "/etc/os-release")?.unwrap_or_default();
    let fstab = read_opt(&root, "/etc/fstab")?.unwrap_or_default();
    let mut warnings = Vec::new();
    check_partuuids(&layout, &cmdline, &fstab, &mut warnings);

    Ok(Report {
        image: path.display().to_string(),
        size: image.len(),
        table: layout.table,
        disk_id: layout.disk_id.to_string(),
        partitions: layout.partitions.clone(),
        os: Os {
            pretty_name: shell_var(&os_release, "PRETTY_NAME"),
            codename: shell_var(&os_release, "VERSION_CODENAME"),
            arch: arch(&root)?,
            issue,
        },
        boot: Boot {
            mount: boot_mount(&fstab),
            config: config
                .all_entries()
                .into_iter()
                .map(|e| format!("[{}] {}={}", e.section, e.key, e.value))
                .collect(),
            cmdline: cmdline.render().trim_end().to_string(),
        },
        network: network(&root)?,
        hostname: read_opt(&root, "/etc/hostname")?.and_then(|h| first_line(&h)),
        users: users(&read_opt(&root, "/etc/passwd")?.unwrap_or_default()),
        first_boot: FirstBoot {
            machine_id: match read_opt(&root, "/etc/machine-id")? {
                None => "missing".into(),
                Some(m) if m.trim().is_empty() => "empty".into(),
                Some(m) if m.trim() == "uninitialized" => "uninitialized".into(),
                Some(_) => "set".into(),
            },
            trigger: first_boot_trigger(&cmdline),
            ssh_enabled: enabled_units(&root)?
                .iter()
                .any(|u| u == "ssh.service" || u == "sshd.service")
                || fat.exists("/ssh")?
                || fat.exists("/ssh.txt")?,
            ssh_host_keys: ["/etc/ssh", "/etc/ssh/pibake"]
                .iter()
                .filter_map(|d| root.read_dir(d).ok())
                .flatten()
                .filter(|e| e.name.starts_with("ssh_host_") && e.name.ends_with("_key"))
                .count(),
        },
        warnings,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn first_line(s: &str) -> Option<String> {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// A file of the root, or `None` when it does not exist.
fn read_opt(root: &Ext4, path: &str) -> Result<Option<String>> {
    if !root.exists(path)? {
        return Ok(None);
    }
    Ok(Some(text(&root.read(path)?)))
}

/// `KEY=value` or `KEY="value"` from an os-release style file.
fn shell_var(file: &str, key: &str) -> Option<String> {
    file.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

/// The ELF machine of `/bin/sh` (following the image's own symlinks).
fn arch(root: &Ext4) -> Result<Option<String>> {
    if !root.exists("/bin/sh")? {
        return Ok(None);
    }
    let head = root.read("/bin/sh")?;
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Ok(None);
    }
    Ok(match u16::from_le_bytes([head[18], head[19]]) {
        0xB7 => Some("arm64".into()),
        0x28 => Some("armhf".into()),
        0x3E => Some("amd64".into()),
        other => Some(format!("elf-machine-0x{other:x}")),
    })
}

fn boot_mount(fstab: &str) -> Option<String> {
    fstab.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && !f[0].starts_with('#') && f[2] == "vfat").then(|| f[1].to_string())
    })
}

fn users(passwd: &str) -> Vec<String> {
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            ((1000..65534).contains(&uid)).then(|| f[0].to_string())
        })
        .collect()
}

/// Units enabled for the default boot, from the `.wants` symlinks systemd follows.
fn enabled_units(root: &Ext4) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for dir in [
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/network-online.target.wants",
        "/etc/systemd/system/sockets.target.wants",
    ] {
        if root.exists(dir)? {
            out.extend(root.read_dir(dir)?.into_iter().map(|e| e.name));
        }
    }
    Ok(out)
}

/// The network stack that will configure interfaces, by enabled units (section 4.2 of the
/// reference: check symlinks, not packages).
fn network(root: &Ext4) -> Result<Network> {
    let units = enabled_units(root)?;
    let stacks: Vec<NetworkStack> = NetworkStack::ALL
        .into_iter()
        .filter(|s| units.iter().any(|u| u == unit(*s)))
        .collect();
    let mut also = Vec::new();
    if root.exists("/etc/cloud/cloud.cfg")? && !root.exists("/etc/cloud/cloud-init.disabled")? {
        also.push("cloud-init".to_string());
    }
    if root.exists("/usr/sbin/netplan")? {
        also.push("netplan".to_string());
    }
    let labels: Vec<&str> = stacks.iter().map(|s| label(*s)).collect();
    Ok(Network {
        stack: if labels.is_empty() {
            "none".into()
        } else {
            labels.join(" + ")
        },
        active: stacks.first().copied(),
        also,
    })
}

/// The unit whose enablement says a stack is active.
fn unit(stack: NetworkStack) -> &'static str {
    match stack {
        NetworkStack::NetworkManager => "NetworkManager.service",
        NetworkStack::Dhcpcd => "dhcpcd.service",
        NetworkStack::Networkd => "systemd-networkd.service",
        NetworkStack::Ifupdown => "networking.service",
    }
}

/// A stack as `inspect` shows it: the software's own name.
fn label(stack: NetworkStack) -> &'static str {
    match stack {
        NetworkStack::NetworkManager => "NetworkManager",
        NetworkStack::Dhcpcd => "dhcpcd",
        NetworkStack::Networkd => "systemd-networkd",
        NetworkStack::Ifupdown => "ifupdown",
    }
}

fn first_boot_trigger(cmdline: &Cmdline) -> Option<String> {
    if let Some(Some(init)) = cmdline.get("init") {
        return Some(format!("init={init}"));
    }
    cmdline.get("resize").map(|_| "resize".to_string())
}

/// `root=PARTUUID=` and fstab should name this disk; say so when they do not.
fn check_partuuids(layout: &Layout, cmdline: &Cmdline, fstab: &str, warnings: &mut Vec<String>) {
    let id = layout.disk_id.to_string();
    if !matches!(cmdline.get("root"), Some(Some(_))) {
        warnings
            .push("cmdline.txt has no root=: the kernel will not find the root filesystem".into());
    }
    if let Some(Some(root)) = cmdline.get("root")
        && let Some(uuid) = root.strip_prefix("PARTUUID=")
        && !uuid.starts_with(&id)
    {
        warnings.push(format!(
            "cmdline.txt root=PARTUUID={uuid} does not match the disk identifier {id}"
        ));
    }
    for line in fstab.lines() {
        if let Some(uuid) = line.trim_start().strip_prefix("PARTUUID=") {
            let uuid = uuid.split_whitespace().next().unwrap_or("");
            if !uuid.starts_with(&id) {
                warnings.push(format!(
                    "/etc/fstab PARTUUID={uuid} does not match the disk identifier {id}"
                ));
            }
        }
    }
}
