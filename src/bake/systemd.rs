//! `systemctl enable`, `disable` and `mask`, done offline exactly as systemctl lays links.
//!
//! A unit is found in /etc/systemd/system, /usr/lib/systemd/system or /lib/systemd/system
//! of the image (a template instance such as `getty@tty1.service` by its template file).
//! Enabling reads its `[Install]` section: `WantedBy=` and `RequiredBy=` make links in
//! `<target>.wants/` and `.requires/`, `Alias=` makes a link named after the alias, and
//! `Also=` enables the units it names. Links point at the unit file's path inside the image.

use crate::error::{Error, Result};
use pibake_ext4::{Ext4, Kind, Meta};

const ETC: &str = "/etc/systemd/system";
const SEARCH: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The `[Install]` section of a unit file.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub alias: Vec<String>,
    pub also: Vec<String>,
    pub default_instance: Option<String>,
}

pub(crate) fn parse_install(text: &str) -> Install {
    let mut out = Install::default();
    let mut in_install = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        let Some((k, v)) = line.split_once('=').filter(|_| in_install) else {
            continue;
        };
        let words = v.split_whitespace().map(str::to_string);
        match k.trim() {
            "WantedBy" => out.wanted_by.extend(words),
            "RequiredBy" => out.required_by.extend(words),
            "Alias" => out.alias.extend(words),
            "Also" => out.also.extend(words),
            "DefaultInstance" => out.default_instance = Some(v.trim().to_string()),
            _ => {}
        }
    }
    out
}

/// Where a unit's file is in the image, if it is there (not a link to /dev/null).
pub fn find_unit(fs: &Ext4, unit: &str) -> Result<Option<String>> {
    let file = match unit.split_once('@') {
        Some((prefix, rest)) if !rest.starts_with('.') => {
            let suffix = rest.rsplit_once('.').map(|(_, s)| s).unwrap_or("service");
            format!("{prefix}@.{suffix}")
        }
        _ => unit.to_string(),
    };
    for dir in SEARCH {
        let path = format!("{dir}/{file}");
        if fs.exists(&path)? && fs.stat(&path)?.kind != Kind::Dir {
            if fs.stat(&path)?.target.as_deref() == Some("/dev/null") {
                continue;
            }
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn link(fs: &mut Ext4, path: &str, target: &str) -> Result<()> {
    if let Some((dir, _)) = path.rsplit_once('/') {
        fs.mkdir_p(dir, &Meta::new(0o755, 0, 0))?;
    }
    // stat, not exists: a dangling link in the way is replaced too; the same link is
    // left as it is (enabling twice writes nothing).
    if let Some(st) = fs.try_stat(path)? {
        if st.kind == Kind::Symlink && st.target.as_deref() == Some(target) {
            return Ok(());
        }
        fs.remove(path)?;
    }
    Ok(fs.symlink(path, target, &Meta::new(0o777, 0, 0))?)
}

/// Enables `unit`; `Ok(false)` when its file is not in the image (a unit a first-boot
/// package will bring, enabled then).
pub fn enable(fs: &mut Ext4, unit: &str) -> Result<bool> {
    enable_depth(fs, unit, 0)
}

fn enable_depth(fs: &mut Ext4, unit: &str, depth: usize) -> Result<bool> {
    let Some(path) = find_unit(fs, unit)? else {
        return Ok(false);
    };
    let install = parse_install(&String::from_utf8_lossy(&fs.read(&path)?));
    let instance = match unit.split_once('@') {
        Some((_, rest)) if rest.starts_with('.') => install
            .default_instance
            .as_ref()
            .map(|i| unit.replacen("@.", &format!("@{i}."), 1)),
        _ => None,
    };
    let name = instance.as_deref().unwrap_or(unit);
    if install.wanted_by.is_empty()
        && install.required_by.is_empty()
        && install.alias.is_empty()
        && install.also.is_empty()
    {
        return Err(Error::invalid(format!(
            "unit {unit} ({path}) has no [Install] section, so it cannot be enabled"
        )));
    }
    for t in &install.wanted_by {
        link(fs, &format!("{ETC}/{t}.wants/{name}"), &path)?;
    }
    for t in &install.required_by {
        link(fs, &format!("{ETC}/{t}.requires/{name}"), &path)?;
    }
    for a in &install.alias {
        if *a != unit {
            link(fs, &format!("{ETC}/{a}"), &path)?;
        }
    }
    if depth < 8 {
        for also in &install.also {
            enable_depth(fs, also, depth + 1)?;
        }
    }
    Ok(true)
}

/// Removes every enablement link of `unit` (in any `.wants`/`.requires` directory of
/// /etc/systemd/system, and its aliases).
pub fn disable(fs: &mut Ext4, unit: &str) -> Result<()> {
    if let Some(path) = find_unit(fs, unit)? {
        let install = parse_install(&String::from_utf8_lossy(&fs.read(&path)?));
        for a in &install.alias {
            let p = format!("{ETC}/{a}");
            if fs.stat(&p).is_ok_and(|s| s.kind == Kind::Symlink) {
                fs.remove(&p)?;
            }
        }
    }
    for d in fs.read_dir(ETC)? {
        if d.name.ends_with(".wants") || d.name.ends_with(".requires") {
            let p = format!("{ETC}/{}/{unit}", d.name);
            if fs.try_stat(&p)?.is_some() {
                fs.remove(&p)?;
            }
        }
    }
    Ok(())
}

/// Masks `unit`: a link to /dev/null in /etc/systemd/system, which wins over everything.
pub fn mask(fs: &mut Ext4, unit: &str) -> Result<()> {
    disable(fs, unit)?;
    link(fs, &format!("{ETC}/{unit}"), "/dev/null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_sections_are_read() {
        let i = parse_install(
            "[Unit]\nWantedBy=not-this\n[Install]\nWantedBy=multi-user.target graphical.target\nAlias=sshd.service\nAlso=ssh.socket\n",
        );
        assert_eq!(i.wanted_by, ["multi-user.target", "graphical.target"]);
        assert_eq!(i.alias, ["sshd.service"]);
        assert_eq!(i.also, ["ssh.socket"]);
    }
}
