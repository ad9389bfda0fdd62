//! A role's packages unpacked into its image at build time, exactly as `dpkg --unpack`
//! would leave the root, and configured by the node's own dpkg on first boot.
//!
//! Unpacking is most of a package install (decompressing and writing every file:
//! minutes on a Pi's SD card); configuring is running maintainer scripts, which only
//! the node can do. So the build writes each package's files, its `info/` entries, its
//! status record (`install ok unpacked`) and the trigger activations dpkg would have
//! recorded, and first boot runs what dpkg never runs at configure (`preinst install`),
//! then `dpkg --configure -a`. Packages dpkg could not unpack here (see [`split`]) stay
//! `.deb`s and install on first boot. Nothing of the target runs on the build machine.

pub mod admin;
mod split;
mod stanza;
mod triggers;
mod write;

use pibake_apt::control;
use pibake_apt::index::MultiArch;
use pibake_apt::{Package, parse_control};
use pibake_deb::{ControlMember, DataEntry, Deb, EntryKind};
use pibake_ext4::{Ext4, Meta};

use crate::error::{Error, Result};
use admin::{Admin, INFO, STATUS};
pub use split::{Reason, Split, decide};

/// One package of the closure, read and checked.
pub struct Inspected {
    /// Its file name, for messages.
    pub label: String,
    /// The whole `.deb`.
    pub bytes: Vec<u8>,
    /// Its control fields, parsed.
    pub package: Package,
    /// Its `control` file as shipped (the status record is made from it).
    control_text: String,
    /// Every control member but `control`.
    members: Vec<ControlMember>,
    /// Its conffiles (absolute paths).
    pub conffiles: Vec<String>,
    /// Whether `conffiles` has lines with flags.
    pub conffile_flags: bool,
    /// Its entries that are not directories.
    pub files: Vec<String>,
    /// Its name in `info/` (`PKG`, or `PKG:ARCH` for `Multi-Arch: same`).
    pub info_name: String,
    /// Bytes of its regular files.
    pub file_bytes: u64,
    /// Its data archive's entries and contents, when read with `keep`.
    kept: Option<Vec<(DataEntry, Vec<u8>)>>,
}

impl Inspected {
    /// Reads `bytes` (the `.deb` called `label`) far enough to decide how it installs.
    /// With `keep`, its data archive's entries are kept in memory for [`unpack`].
    pub fn read(label: &str, bytes: Vec<u8>, admin: &Admin, keep: bool) -> Result<Inspected> {
        let (mut members, scan) = {
            let deb = Deb::parse(label, &bytes)?;
            (deb.control()?, scan(&deb, keep)?)
        };
        let control_at = members.iter().position(|m| m.name == "control");
        let control_text = control_at
            .map(|i| members.remove(i).data)
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| Error::invalid(format!("{label}: its control file is not UTF-8")))?
            .ok_or_else(|| Error::invalid(format!("{label}: it has no control file")))?;
        let package = parse_control(&control_text)
            .map_err(|e| Error::invalid(format!("{label}: its control file: {e}")))?;
        let (conffiles, conffile_flags) = conffiles(label, &members)?;
        let info_name = if admin.arch_qualified_info && package.multi_arch == MultiArch::Same {
            format!("{}:{}", package.name, package.architecture)
        } else {
            package.name.to_string()
        };
        Ok(Inspected {
            label: label.into(),
            bytes,
            package,
            control_text,
            members,
            conffiles,
            conffile_flags,
            files: scan.files,
            info_name,
            file_bytes: scan.bytes,
            kept: scan.kept,
        })
    }

    fn member(&self, name: &str) -> Option<&ControlMember> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// `conffiles`: absolute paths, one a line; a line with a flag word before the path
/// (`remove-on-upgrade /etc/x`) marks the package as one only dpkg installs.
fn conffiles(label: &str, members: &[ControlMember]) -> Result<(Vec<String>, bool)> {
    let Some(m) = members.iter().find(|m| m.name == "conffiles") else {
        return Ok((Vec::new(), false));
    };
    let text = std::str::from_utf8(&m.data)
        .map_err(|_| Error::invalid(format!("{label}: its conffiles is not UTF-8")))?;
    let mut paths = Vec::new();
    let mut flags = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [path] if path.starts_with('/') => paths.push(path.to_string()),
            [_, path] if path.starts_with('/') => flags = true,
            _ => {
                return Err(Error::invalid(format!(
                    "{label}: its conffiles has `{line}`, which is not an absolute path"
                )));
            }
        }
    }
    Ok((paths, flags))
}

/// What one read of the data archive yields.
struct Scan {
    /// The paths of the entries that are not directories.
    files: Vec<String>,
    /// The bytes of the regular files.
    bytes: u64,
    /// Every entry with its content, when asked to keep them.
    kept: Option<Vec<(DataEntry, Vec<u8>)>>,
}

/// Reads the data archive once: its paths, and (with `keep`) its entries, so that
/// unpacking need not decompress it a second time.
fn scan(deb: &Deb, keep: bool) -> Result<Scan> {
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut kept = keep.then(Vec::new);
    deb.each_data_entry(|e, r| -> Result<()> {
        if !matches!(e.kind, EntryKind::Dir) {
            files.push(e.path.as_str().to_string());
        }
        bytes = bytes.saturating_add(e.size);
        if let Some(k) = &mut kept {
            let mut content = Vec::new();
            r.read_to_end(&mut content)
                .map_err(|e| Error::invalid(format!("{}: {e}", deb.label())))?;
            k.push((e.clone(), content));
        }
        Ok(())
    })?;
    Ok(Scan { files, bytes, kept })
}

/// What [`unpack`] did, for the first-boot files and the build's report.
pub struct Unpacked {
    /// `PKG ARCH INFO-NAME` of each package unpacked, dependencies first: first boot
    /// runs their `preinst install` in this order.
    pub preinst_order: String,
    /// systemd units the unpacked packages ship: enabled only once configured.
    pub units: Vec<String>,
}

/// Unpacks `debs[i]` for every `i` of `split.offline` into `fs`, and records them in
/// dpkg's database as unpacked.
pub fn unpack(
    fs: &mut Ext4,
    admin: &mut Admin,
    debs: &[Inspected],
    split: &Split,
) -> Result<Unpacked> {
    // dpkg's own directories, present in every image dpkg made (not in bare test roots).
    for dir in [INFO, triggers::DIR] {
        fs.mkdir_p(dir, &Meta::new(0o755, 0, 0))?;
    }
    let mut records = Vec::new();
    let mut preinst_order = String::new();
    let mut units = Vec::new();
    let mut links = std::collections::HashSet::new();
    for &i in &split.offline {
        let d = &debs[i];
        let written = write::data(fs, admin, d, &mut links)?;
        write_info(fs, d, &written)?;
        if let Some(t) = d.member("triggers") {
            let text = std::str::from_utf8(&t.data).map_err(|_| {
                Error::invalid(format!("{}: its triggers file is not UTF-8", d.label))
            })?;
            admin.triggers.package_unpacked(fs, &d.info_name, text)?;
        }
        let para = control::parse(&d.control_text)
            .map_err(|e| Error::invalid(format!("{}: its control file: {e}", d.label)))?;
        let para = para
            .first()
            .ok_or_else(|| Error::invalid(format!("{}: an empty control file", d.label)))?;
        records.push((
            d.info_name.clone(),
            stanza::unpacked(&d.label, para, &d.conffiles)?,
        ));
        preinst_order.push_str(&format!(
            "{} {} {}\n",
            d.package.name, d.package.architecture, d.info_name
        ));
        units.extend(d.files.iter().filter_map(|p| unit_name(p)));
    }
    let root = Meta::new(0o644, 0, 0);
    fs.write_file(
        STATUS,
        stanza::merge(&admin.status, &records).as_bytes(),
        &root,
    )?;
    for (path, text) in admin.triggers.files() {
        fs.write_file(&path, text.as_bytes(), &root)?;
    }
    units.sort();
    units.dedup();
    Ok(Unpacked {
        preinst_order,
        units,
    })
}

/// A systemd unit a package ships in the unit directories, by name.
fn unit_name(path: &str) -> Option<String> {
    let name = ["/lib/systemd/system/", "/usr/lib/systemd/system/"]
        .iter()
        .find_map(|d| path.strip_prefix(d))?;
    let unit = [
        ".service", ".socket", ".timer", ".path", ".mount", ".target",
    ];
    (!name.contains('/') && unit.iter().any(|s| name.ends_with(s))).then(|| name.to_string())
}

/// `info/PKG.MEMBER` for every control member (dpkg skips names with a dot), the file
/// list, and `md5sums` made from the written files when the package ships none.
fn write_info(fs: &mut Ext4, d: &Inspected, w: &write::Written) -> Result<()> {
    let at = |what: &str| format!("{INFO}/{}.{what}", d.info_name);
    for m in d.members.iter().filter(|m| !m.name.contains('.')) {
        let mode = (m.mode & 0o7777) as u16;
        fs.write_file(&at(&m.name), &m.data, &Meta::new(mode, 0, 0))?;
    }
    let root = Meta::new(0o644, 0, 0);
    let list: String = w.list.iter().map(|p| format!("{p}\n")).collect();
    fs.write_file(&at("list"), list.as_bytes(), &root)?;
    if d.member("md5sums").is_none() {
        let sums: String = w
            .list
            .iter()
            .filter_map(|p| w.md5.get(p).map(|s| format!("{s}  {}\n", &p[1..])))
            .collect();
        fs.write_file(&at("md5sums"), sums.as_bytes(), &root)?;
    }
    Ok(())
}
