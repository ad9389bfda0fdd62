//! The admin account, made offline the way `userconf` and `cancel-rename` would.
//!
//! Raspberry Pi OS images carry a first user (UID 1000, `pi`) with no usable password and
//! a first-boot wizard that asks for one. The build renames that user completely
//! (passwd, shadow, group, gshadow, subuid, subgid, sudoers, the home directory), sets the
//! password hash (or `*`: no password login), writes `authorized_keys` (0700 `.ssh`,
//! 0600 file, owned by the user; with `node_ssh`, also the cluster key pair so the nodes
//! trust each other) and turns the wizard off (`userconfig.service` disabled,
//! its sshd banner removed, `getty@tty1` enabled) so the node boots into a usable system.

use super::systemd;
use crate::error::{Error, Result};
use crate::inventory::schema::Sudo;
use crate::plan::UserPlan;
use pibake_ext4::{Ext4, Meta};

const UID: u32 = 1000;

/// Rewrites the lines of a colon-separated file.
fn edit_lines(text: &str, mut f: impl FnMut(Vec<String>) -> Option<Vec<String>>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let fields: Vec<String> = line.split(':').map(str::to_string).collect();
        if let Some(fields) = f(fields) {
            out.push_str(&fields.join(":"));
            out.push('\n');
        }
    }
    out
}

/// A file of the image with its mode and owner, to be written back the same way.
fn read_keep(fs: &Ext4, path: &str) -> Result<Option<(String, Meta)>> {
    if !fs.exists(path)? {
        return Ok(None);
    }
    let st = fs.stat(path)?;
    Ok(Some((
        String::from_utf8_lossy(&fs.read(path)?).into_owned(),
        Meta::new(st.mode, st.uid, st.gid),
    )))
}

fn write_keep(fs: &mut Ext4, path: &str, text: &str, meta: Meta) -> Result<()> {
    Ok(fs.write_file(path, text.as_bytes(), &meta)?)
}

/// Renames a name in a comma-separated member list.
fn rename_member(list: &str, old: &str, new: &str) -> String {
    list.split(',')
        .filter(|m| !m.is_empty())
        .map(|m| if m == old { new } else { m })
        .collect::<Vec<_>>()
        .join(",")
}

/// Refuses an admin name that another account or group of the image already has
/// (`root`, `daemon`, `sudo`, ...): renaming the first user to it would give the image
/// two entries of one name.
fn refuse_taken_name(fs: &Ext4, passwd: &str, old: &str, new: &str) -> Result<()> {
    if new == old {
        return Ok(());
    }
    let holder = |text: &str| {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&new))
            .map(|f| f.get(2).copied().unwrap_or("?").to_string())
    };
    let what = match holder(passwd) {
        Some(uid) => Some(format!("a user of the image (UID {uid})")),
        None => match read_keep(fs, "/etc/group")? {
            // The first user's own group (named `old`) is renamed with it; any group
            // already named `new` is another one.
            Some((group, _)) => {
                holder(&group).map(|gid| format!("a group of the image (GID {gid})"))
            }
            None => None,
        },
    };
    match what {
        Some(what) => Err(Error::invalid(format!(
            "admin name `{new}` is already {what}; the image's first user `{old}` cannot take it"
        ))
        .with_hint("choose another `admin.name`, for example `admin`")),
        None => Ok(()),
    }
}

/// The image's `/etc/passwd`, its metadata and its first user (UID 1000), which becomes
/// the admin `new`: refused when there is none, or when another account or group of
/// the image is already named `new`. Reads only, so `validate` asks it too.
pub fn first_user(fs: &Ext4, new: &str) -> Result<(String, Meta, String)> {
    let (passwd, meta) = read_keep(fs, "/etc/passwd")?.ok_or_else(|| {
        Error::invalid("the image has no /etc/passwd; is it a Raspberry Pi OS root?")
    })?;
    let old = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2) == Some(&"1000")).then(|| f[0].to_string())
    });
    let Some(old) = old else {
        return Err(Error::unsupported(format!(
            "the image has no first user (UID {UID}) to turn into `{new}`; pibake renames the image's own user rather than adding one"
        )));
    };
    refuse_taken_name(fs, &passwd, &old, new)?;
    Ok((passwd, meta, old))
}

/// Applies the admin account; `days` is the build date in days since 1970 (shadow's
/// last-change field).
/// `cluster_key`: the admin's cluster key pair (private, public) when nodes trust each other.
pub fn apply(
    fs: &mut Ext4,
    user: &UserPlan,
    days: i64,
    cluster_key: Option<&(String, String)>,
) -> Result<()> {
    let new = user.name.as_str();
    let (passwd, pmeta, old) = first_user(fs, new)?;
    let home = format!("/home/{new}");
    write_keep(
        fs,
        "/etc/passwd",
        &edit_lines(&passwd, |mut f| {
            if f.len() >= 7 && f[0] == old {
                f[0] = new.to_string();
                f[5] = home.clone();
            }
            Some(f)
        }),
        pmeta,
    )?;
    let hash = user
        .password_hash
        .as_ref()
        .map_or("*", |h| h.as_str())
        .to_string();
    if let Some((shadow, meta)) = read_keep(fs, "/etc/shadow")? {
        write_keep(
            fs,
            "/etc/shadow",
            &edit_lines(&shadow, |mut f| {
                if f.len() >= 3 && f[0] == old {
                    f[0] = new.to_string();
                    f[1] = hash.clone();
                    f[2] = days.to_string();
                }
                Some(f)
            }),
            meta,
        )?;
    }
    for (path, members) in [("/etc/group", 3), ("/etc/gshadow", 3)] {
        if let Some((text, meta)) = read_keep(fs, path)? {
            write_keep(
                fs,
                path,
                &edit_lines(&text, |mut f| {
                    if f.len() > members {
                        if f[0] == old {
                            f[0] = new.to_string();
                        }
                        f[members] = rename_member(&f[members], &old, new);
                        if f[0] == "sudo" {
                            let mut m: Vec<String> = f[members]
                                .split(',')
                                .filter(|x| !x.is_empty() && *x != new)
                                .map(str::to_string)
                                .collect();
                            if user.sudo != Sudo::No {
                                m.push(new.to_string());
                            }
                            f[members] = m.join(",");
                        }
                    }
                    Some(f)
                }),
                meta,
            )?;
        }
    }
    for path in ["/etc/subuid", "/etc/subgid"] {
        if let Some((text, meta)) = read_keep(fs, path)? {
            write_keep(
                fs,
                path,
                &edit_lines(&text, |mut f| {
                    if f.first() == Some(&old) {
                        f[0] = new.to_string();
                    }
                    Some(f)
                }),
                meta,
            )?;
        }
    }
    let sudoers = "/etc/sudoers.d/010_pi-nopasswd";
    let image_nopasswd = fs.try_stat(sudoers)?.is_some();
    if let Some((text, meta)) = read_keep(fs, sudoers)? {
        if user.sudo != Sudo::No {
            let text: String = text
                .lines()
                .map(|l| match l.strip_prefix(&format!("{old} ")) {
                    Some(rest) => format!("{new} {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            write_keep(fs, sudoers, &text, meta)?;
        } else {
            fs.remove(sudoers)?;
        }
    }
    // A key-only admin has no password to give sudo. Images since 2026-04 ship without
    // pi-gen's NOPASSWD drop-in, so such an admin gets one of its own, as does one whose
    // profile says `sudo: nopasswd`. The name is checked against useradd's grammar, so
    // the line is sudoers syntax by construction.
    let nopasswd = match user.sudo {
        Sudo::No => false,
        Sudo::Yes => user.password_hash.is_none(),
        Sudo::NoPasswd => true,
    };
    if nopasswd && !image_nopasswd {
        fs.mkdir_p("/etc/sudoers.d", &Meta::new(0o755, 0, 0))?;
        fs.write_file(
            "/etc/sudoers.d/010_pibake-nopasswd",
            format!("# Written by pibake: {new} logs in with SSH keys only.\n{new} ALL=(ALL) NOPASSWD: ALL\n").as_bytes(),
            &Meta::new(0o440, 0, 0),
        )?;
    }
    if old != new && fs.exists(&format!("/home/{old}"))? {
        fs.rename(&format!("/home/{old}"), &home)?;
    }
    if !fs.exists(&home)? {
        fs.mkdir_p(&home, &Meta::new(0o700, UID, UID))?;
    }
    fs.mkdir_p(&format!("{home}/.ssh"), &Meta::new(0o700, UID, UID))?;
    let mut keys: String = user.ssh_keys.iter().map(|k| format!("{k}\n")).collect();
    if let Some((private, public)) = cluster_key {
        fs.write_file(
            &format!("{home}/.ssh/id_ed25519"),
            private.as_bytes(),
            &Meta::new(0o600, UID, UID),
        )?;
        fs.write_file(
            &format!("{home}/.ssh/id_ed25519.pub"),
            format!("{public}\n").as_bytes(),
            &Meta::new(0o644, UID, UID),
        )?;
        keys.push_str(&format!("{public}\n"));
    }
    fs.write_file(
        &format!("{home}/.ssh/authorized_keys"),
        keys.as_bytes(),
        &Meta::new(0o600, UID, UID),
    )?;

    // The first-boot rename wizard would otherwise take over tty8 and ask again.
    systemd::disable(fs, "userconfig.service")?;
    for p in [
        "/etc/ssh/sshd_config.d/rename_user.conf",
        "/var/lib/userconf-pi/autologin",
    ] {
        if fs.try_stat(p)?.is_some() {
            fs.remove(p)?;
        }
    }
    systemd::enable(fs, "getty@tty1.service")?;
    Ok(())
}

/// A system account and its group, as `adduser --system --group` makes them: the
/// image's own if it has one of that name, else the lowest ID from 100 to 999 free as
/// both a UID and a GID, with no login and no home. Returns its UID and GID.
pub fn system_account(fs: &mut Ext4, name: &str) -> Result<(u32, u32)> {
    let (passwd, pmeta) = read_keep(fs, "/etc/passwd")?.ok_or_else(|| {
        Error::invalid("the image has no /etc/passwd; is it a Raspberry Pi OS root?")
    })?;
    let (group, gmeta) = read_keep(fs, "/etc/group")?.ok_or_else(|| {
        Error::invalid("the image has no /etc/group; is it a Raspberry Pi OS root?")
    })?;
    let ids = |text: &str| -> Vec<(String, u32, u32)> {
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let id = f.get(2)?.parse().ok()?;
                let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
                Some((f[0].to_string(), id, gid))
            })
            .collect()
    };
    let users = ids(&passwd);
    if let Some((_, uid, gid)) = users.iter().find(|(n, _, _)| n == name) {
        return Ok((*uid, *gid));
    }
    let groups = ids(&group);
    let taken =
        |id: u32| users.iter().any(|(_, u, _)| *u == id) || groups.iter().any(|(_, g, _)| *g == id);
    let id = (100..1000).find(|&id| !taken(id)).ok_or_else(|| {
        Error::unsupported(format!(
            "the image has no free system ID (100-999) for the `{name}` account"
        ))
    })?;
    write_keep(
        fs,
        "/etc/passwd",
        &format!("{passwd}{name}:x:{id}:{id}::/nonexistent:/usr/sbin/nologin\n"),
        pmeta,
    )?;
    write_keep(fs, "/etc/group", &format!("{group}{name}:x:{id}:\n"), gmeta)?;
    for (path, line) in [
        ("/etc/shadow", format!("{name}:!:::::::\n")),
        ("/etc/gshadow", format!("{name}:!::\n")),
    ] {
        if let Some((text, meta)) = read_keep(fs, path)? {
            write_keep(fs, path, &format!("{text}{line}"), meta)?;
        }
    }
    Ok((id, id))
}
