//! A plan as a person reads it: what `pibake plan` prints.

use std::fmt::Write;

use super::Plan;
use crate::inventory::schema::Sudo;

/// One plan as a person reads it.
pub fn human(p: &Plan) -> String {
    let mut s = String::new();
    let addrs: Vec<String> = p
        .addresses
        .iter()
        .map(|(n, a)| format!("{n} {a}"))
        .collect();
    let _ = writeln!(
        s,
        "node {}{} (role {}, profile {}): {}; network via {}",
        p.node,
        if p.spare { " [spare]" } else { "" },
        p.role,
        p.profile,
        if addrs.is_empty() {
            "no static address".into()
        } else {
            addrs.join(", ")
        },
        p.network_stack
    );
    let _ = writeln!(
        s,
        "  user    {} (password {}, {} ssh key(s){})",
        p.user.name,
        p.user.password,
        p.user.ssh_keys.len(),
        match p.user.sudo {
            Sudo::No => "",
            Sudo::Yes => ", sudo",
            Sudo::NoPasswd => ", sudo without password",
        }
    );
    if !p.packages.is_empty() {
        let size: u64 = p.packages.iter().map(|d| d.size).sum();
        let _ = writeln!(
            s,
            "  debs    {} package(s), {} in {} (role {}'s set in pibake.lock), installed on first boot",
            p.packages.len(),
            crate::packages::lock::size(size),
            super::PACKAGES_DIR,
            p.role
        );
    }
    for a in &p.artifacts {
        let _ = writeln!(
            s,
            "  copy    {:04o} {}  [{} {}, sha256 {}... checked at build]",
            a.mode,
            a.path,
            a.key,
            a.source.display(),
            &a.sha256.to_string()[..12],
        );
    }
    if let Some(j) = &p.join {
        let _ = writeln!(s, "  {:<7} {}", j.system(), j.summary());
    }
    if let Some(t) = &p.time {
        let _ = writeln!(s, "  time    {t}");
    }
    for d in &p.dirs {
        let _ = writeln!(s, "  dir     {:04o} {}:{} {}", d.mode, d.uid, d.gid, d.path);
    }
    for f in &p.files {
        let origin = format!("{:?}", f.origin).to_lowercase();
        let what = match (&f.from, f.secret) {
            (_, true) => format!("{origin}, secret: content not shown"),
            (Some(from), _) => format!("{origin} from {from}"),
            (None, _) => origin,
        };
        let _ = writeln!(
            s,
            "  file    {:04o} {}:{} {:>7} {}  [{what}]",
            f.mode,
            f.uid,
            f.gid,
            f.content.len(),
            f.path
        );
    }
    for l in &p.symlinks {
        let _ = writeln!(s, "  link    {} -> {}", l.path, l.target);
    }
    for b in &p.blocks {
        let _ = writeln!(
            s,
            "  block   {} ({} lines between pibake markers)",
            b.path,
            b.content.lines().count()
        );
    }
    for e in &p.config_txt {
        let _ = writeln!(s, "  config  + {e}");
    }
    for t in &p.cmdline_add {
        let _ = writeln!(s, "  cmdline + {t}");
    }
    for t in &p.cmdline_remove {
        let _ = writeln!(s, "  cmdline - {t}");
    }
    for (verb, units) in [
        ("enable", &p.services.enable),
        ("disable", &p.services.disable),
        ("mask", &p.services.mask),
    ] {
        if !units.is_empty() {
            let _ = writeln!(s, "  service {verb} {}", units.join(" "));
        }
    }
    let tz = p.locale.timezone.as_ref().map(|t| t.to_string());
    for (k, v) in [
        ("timezone", &tz),
        ("locale", &p.locale.locale),
        ("keyboard", &p.locale.keyboard),
    ] {
        if let Some(v) = v {
            let _ = writeln!(s, "  {k:<7} {v}");
        }
    }
    for w in &p.warnings {
        let _ = writeln!(s, "  warning {w}");
    }
    s
}
