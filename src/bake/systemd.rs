//! `systemctl enable`, `disable` and `mask`, done offline exactly as systemctl lays links.
//!
//! A unit is found in /etc/systemd/system, /usr/lib/systemd/system or /lib/systemd/system
//! of the image (a template instance such as `getty@tty1.service` by its template file).
//! Enabling reads its `[Install]` section: `WantedBy=` and `RequiredBy=` make links in
//! `<target>.wants/` and `.requires/`, `Alias=` makes a link named after the alias, and
//! `Also=` enables the units it names. Links point at the unit file's path inside the image.
//!
//! Every link lands in /etc/systemd/system itself or in one `.wants`/`.requires`
//! directory of it: a name from an `[Install]` section (the base's, an overlay's, a
//! profile's) that is not one file name (a `/`, `..`) is refused, never followed, as is
//! a `.wants` directory that is a symlink, and a link never replaces anything but a link.

use crate::error::{Error, Result};
use crate::inventory::grammar::shown;
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

/// Whether `name` can be one entry of a directory: not empty, `.` or `..`, and without
/// `/` or NUL.
fn one_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// `/etc/systemd/system/` and `parts` (a unit name, or a `.wants`/`.requires` directory
/// and a unit name), refused unless each part is one file name: `why` says where the
/// name came from.
fn etc_path(parts: &[&str], why: &dyn Fn() -> String) -> Result<String> {
    let path = format!("{ETC}/{}", parts.join("/"));
    if !parts.iter().all(|p| one_name(p)) {
        return Err(Error::invalid(format!(
            "{}: the link {path} would not be inside {ETC}; refused",
            why()
        ))
        .with_hint(
            "[Install] names units (WantedBy=multi-user.target, Alias=name.service), never paths",
        ));
    }
    Ok(path)
}

/// Where a unit's file is in the image, if it is there (not a link to /dev/null).
pub fn find_unit(fs: &Ext4, unit: &str) -> Result<Option<String>> {
    if !one_name(unit) {
        return Err(Error::invalid(format!(
            "`{}` is not a unit name: a unit is one file of a unit directory",
            shown(unit)
        )));
    }
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

/// Links `/etc/systemd/system/<parts>` to `target` (see [`etc_path`]), replacing a link
/// there, and a file too when `over_files` (masking).
fn link(
    fs: &mut Ext4,
    parts: &[&str],
    target: &str,
    over_files: bool,
    why: &dyn Fn() -> String,
) -> Result<()> {
    let path = etc_path(parts, why)?;
    if let [dir, _] = parts {
        // A `.wants` directory that is a symlink would take the link elsewhere.
        let dir = format!("{ETC}/{dir}");
        if fs.try_stat(&dir)?.is_some_and(|st| st.kind != Kind::Dir) {
            return Err(Error::invalid(format!(
                "{}: {dir} is not a directory (a symlink?); refused, not followed",
                why()
            )));
        }
        fs.mkdir_p(&dir, &Meta::new(0o755, 0, 0))?;
    }
    // stat, not exists: a dangling link in the way is replaced too; the same link is
    // left as it is (enabling twice writes nothing). Enabling replaces only a link, as
    // `systemctl enable` does without --force: never a unit file or a directory.
    if let Some(st) = fs.try_stat(&path)? {
        if st.kind == Kind::Symlink && st.target.as_deref() == Some(target) {
            return Ok(());
        }
        if st.kind == Kind::Dir || (st.kind != Kind::Symlink && !over_files) {
            return Err(Error::invalid(format!(
                "{}: {path} is already there and is not a link; refused",
                why()
            )));
        }
        fs.remove(&path)?;
    }
    Ok(fs.symlink(&path, target, &Meta::new(0o777, 0, 0))?)
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
    let said = |key: &str, value: &str| {
        let (key, value) = (key.to_string(), value.to_string());
        let path = path.clone();
        move || format!("unit {unit} ({path}): [Install] {key}={}", shown(&value))
    };
    for t in &install.wanted_by {
        link(
            fs,
            &[&format!("{t}.wants"), name],
            &path,
            false,
            &said("WantedBy", t),
        )?;
    }
    for t in &install.required_by {
        link(
            fs,
            &[&format!("{t}.requires"), name],
            &path,
            false,
            &said("RequiredBy", t),
        )?;
    }
    for a in &install.alias {
        if *a != unit {
            link(fs, &[a], &path, false, &said("Alias", a))?;
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
            let p = etc_path(&[a], &|| {
                format!("unit {unit} ({path}): [Install] Alias={}", shown(a))
            })?;
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
    link(fs, &[unit], "/dev/null", true, &|| {
        format!("masking {unit}")
    })
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
