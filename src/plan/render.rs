//! One node's plan from the inventory, its profile and the overlay trees.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use super::firstboot::{
    DEB_DIR, FIRSTBOOT_DONE, FIRSTBOOT_RUNNER, FIRSTBOOT_RUNNER_TEXT, FIRSTBOOT_STEPS,
    FIRSTBOOT_UNIT,
};
use super::overlay::EntryKind;
use super::template::Templates;
use super::{
    ConfigEdit, Locale, Origin, Plan, PlannedDir, PlannedFile, PlannedLink, Services, UserPlan,
    network,
};
use pibake_apt::relation::PackageRequest;

use crate::error::{Error, IoContext, Result};
use crate::inventory::grammar::{UnitName, check_install};
use crate::inventory::schema::{ConfigDef, FileDef};
use crate::inventory::{Inventory, NetworkStack, Node, Timezone};

impl Plan {
    fn push_file(&mut self, f: PlannedFile) {
        self.files.retain(|old| old.path != f.path);
        self.files.push(f);
    }

    /// A generated root-owned file.
    pub fn add_file(&mut self, path: &str, mode: u16, content: String) {
        self.push_file(PlannedFile {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            secret: false,
            origin: Origin::Generated,
            from: None,
            content: content.into_bytes(),
        });
    }

    /// A generated root-owned file whose content must not be printed.
    pub fn add_secret_file(&mut self, path: &str, mode: u16, content: String) {
        self.push_file(PlannedFile {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            secret: true,
            origin: Origin::Generated,
            from: None,
            content: content.into_bytes(),
        });
    }
}

/// The plan of one node.
pub fn plan(
    inv: &Inventory,
    node: &Node,
    templates: &Templates,
    detected_stack: Option<NetworkStack>,
) -> Result<Plan> {
    let profile = &inv.profiles[&node.role];
    let def = &profile.def;
    let mut warnings = Vec::new();
    let chosen = def
        .network_stack
        .as_deref()
        .map(NetworkStack::parse_choice)
        .transpose()
        .map_err(Error::unplaced)?
        .flatten();
    let stack = match chosen.or(detected_stack) {
        Some(s) => s,
        None => {
            warnings.push("network stack not read from a base image; assuming NetworkManager (set `network_stack:` to choose)".to_string());
            NetworkStack::NetworkManager
        }
    };
    let admin = &inv.file.admin;
    let mut plan = Plan {
        node: node.name.clone(),
        role: node.role.clone(),
        profile: profile.name.clone(),
        spare: node.spare,
        hostname: node.name.clone(),
        addresses: node
            .addresses
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        network_stack: stack,
        user: UserPlan {
            name: admin.name.clone(),
            password_hash: inv.credentials.password_hash.clone(),
            password: if admin.locked { "locked" } else { "hash set" },
            ssh_keys: inv.credentials.ssh_keys.clone(),
            sudo: admin.sudo,
            node_ssh: admin.node_ssh,
        },
        dirs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
        blocks: Vec::new(),
        config_txt: Vec::new(),
        cmdline_add: def.cmdline.add.clone(),
        cmdline_remove: def.cmdline.remove.clone(),
        services: Services {
            enable: names(&def.services.enable),
            disable: names(&def.services.disable),
            mask: names(&def.services.mask),
        },
        locale: Locale {
            timezone: def
                .timezone
                .as_deref()
                .map(Timezone::parse)
                .transpose()
                .map_err(Error::unplaced)?,
            locale: def.locale.clone(),
            keyboard: def.keyboard.clone(),
        },
        packages: Vec::new(),
        artifacts: Vec::new(),
        join: None,
        time: None,
        warnings,
    };

    plan.add_file("/etc/hostname", 0o644, format!("{}\n", node.name));
    plan.add_file("/etc/hosts", 0o644, hosts(inv, node));
    let password_login = inv
        .file
        .ssh
        .password_login
        .unwrap_or(inv.credentials.ssh_keys.is_empty());
    if !password_login {
        plan.add_file(
            "/etc/ssh/sshd_config.d/20-pibake-no-password.conf",
            0o644,
            "# Written by pibake: SSH keys only (`ssh: { password_login: true }` allows passwords).\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n".into(),
        );
    }
    network::configure(inv, node, stack, &mut plan)?;

    if let Some(g) = def.gpu_mem {
        plan.config_txt.push(ConfigEdit::Set {
            section: "all".into(),
            key: "gpu_mem".into(),
            value: g.to_string(),
        });
    }
    config_edits(&def.config, "all", &mut plan.config_txt);

    // Inline units: their names and `[Install]` sections were checked when the profile
    // loaded.
    for (unit, text) in &def.services.units {
        plan.add_file(&format!("/etc/systemd/system/{unit}"), 0o644, text.clone());
    }
    firstboot(inv, def, &mut plan)?;
    for kind in inv.kinds.all() {
        kind.plan(inv, node, &mut plan)?;
    }
    if let Some(t) = &inv.time {
        t.plan(node, &mut plan);
        plan.time = Some(t.summary(node));
    }

    let ctx = templates.context(inv, node);
    for name in &def.overlays {
        for e in &templates.trees[name] {
            let path = format!("/{}", e.rel);
            match &e.kind {
                EntryKind::Dir => plan.dirs.push(PlannedDir {
                    path,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                }),
                EntryKind::Link(target) => plan.symlinks.push(PlannedLink {
                    path,
                    target: target.clone(),
                }),
                EntryKind::File {
                    content,
                    executable,
                } => {
                    // NetworkManager ignores keyfiles others can read.
                    let nm = path.starts_with("/etc/NetworkManager/system-connections/");
                    let mode = if nm {
                        0o600
                    } else if *executable {
                        0o755
                    } else {
                        0o644
                    };
                    let (path, content, origin) = match path.strip_suffix(".hbs") {
                        Some(p) => (
                            p.to_string(),
                            templates.render(&e.origin, None, &ctx)?.into_bytes(),
                            Origin::Template,
                        ),
                        None => (path, content.clone(), Origin::Overlay),
                    };
                    check_unit_file(&path, &content).map_err(|(line, why)| {
                        let rendered = if origin == Origin::Template {
                            " (as rendered)"
                        } else {
                            ""
                        };
                        Error::invalid(format!("{}:{line}{rendered}: {why}", e.origin))
                    })?;
                    plan.push_file(PlannedFile {
                        path,
                        mode,
                        uid: 0,
                        gid: 0,
                        secret: nm,
                        origin,
                        from: Some(e.origin.clone()),
                        content,
                    });
                }
            }
        }
    }
    for (path, target) in &def.symlinks {
        check_image_path(path).map_err(|e| {
            profile
                .source()
                .error_at(&format!("symlinks.{path}"), &e.to_string())
        })?;
        plan.symlinks.push(PlannedLink {
            path: path.clone(),
            target: target.clone(),
        });
    }
    for f in &def.files {
        let origin = profile.source().path.display().to_string();
        plan.push_file(
            file_entry(inv, f, templates, &ctx, &origin, "files").map_err(|e| {
                e.place(|what| profile.entry_error("files", |v| v["path"] == *f.path, what))
            })?,
        );
    }
    for (i, f) in node.files.iter().enumerate() {
        let at = format!("{}.files.{i}", node.origin);
        let origin = inv.source.path.display().to_string();
        plan.push_file(
            file_entry(inv, f, templates, &ctx, &origin, &at)
                .map_err(|e| e.place(|what| inv.source.error_at(&at, what)))?,
        );
    }
    plan.files.sort_by(|a, b| a.path.cmp(&b.path));
    plan.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    plan.dirs.dedup();
    plan.symlinks.sort_by(|a, b| a.path.cmp(&b.path));
    dedup(&mut plan.services.enable);
    dedup(&mut plan.cmdline_add);
    Ok(plan)
}

/// Unit names as the plan lists them.
fn names(units: &[UnitName]) -> Vec<String> {
    units.iter().map(|u| u.to_string()).collect()
}

/// One word of a shell command line, quoted so that `sh` reads back exactly `s`: left
/// bare when it is made of characters no shell treats specially (letters, digits and
/// `@%+=:,./_-`, as Python's `shlex.quote` does), else in single quotes, each `'` in it
/// written `'\''`. Every value from the inventory that a first-boot script names goes
/// through here, whatever its own grammar already refuses.
pub fn sh_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Words for a shell command line, each through [`sh_quote`], separated by spaces.
fn sh_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| sh_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unit file among the planned files (directly in a unit directory, named as a unit):
/// its `[Install]` section must name units only (see [`check_install`]), since enabling
/// it makes links named by them. On a refusal, the line of `content` and why.
fn check_unit_file(path: &str, content: &[u8]) -> std::result::Result<(), (usize, String)> {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return Ok(());
    };
    if !UNIT_DIRS.contains(&dir) {
        return Ok(());
    }
    let Ok(unit) = UnitName::parse(name) else {
        return Ok(());
    };
    check_install(&unit, &String::from_utf8_lossy(content))
        .map_err(|(line, why)| (line, format!("unit {unit}, [Install]: {why}")))
}

/// Where systemd finds unit files that `systemctl enable` reads.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

fn dedup(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// /etc/hosts: localhost, then every node of the cluster. A node with an address of its
/// own is named by it alone; Debian's `127.0.1.1 HOSTNAME` line is only for hosts without
/// one, and a DNS server reading this file (the portable head's dnsmasq) would hand that
/// loopback address to the other nodes.
fn hosts(inv: &Inventory, node: &Node) -> String {
    let fq = |n: &str| match inv.domain() {
        Some(d) => format!("{n}.{d} {n}"),
        None => n.to_string(),
    };
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n",
    );
    if node.addresses.is_empty() {
        s.push_str(&format!("127.0.1.1\t{}\n\n", fq(&node.name)));
    }
    s.push_str(&format!(
        "# the cluster {}, written by pibake\n",
        inv.file.cluster
    ));
    for n in &inv.nodes {
        if let Some(a) = n.addresses.values().next() {
            s.push_str(&format!("{a}\t{}\n", fq(&n.name)));
        }
    }
    s
}

fn config_edits(c: &ConfigDef, section: &str, out: &mut Vec<ConfigEdit>) {
    let s = || section.to_string();
    for (k, v) in &c.set {
        out.push(ConfigEdit::Set {
            section: s(),
            key: k.clone(),
            value: v.clone(),
        });
    }
    for o in &c.overlays {
        out.push(ConfigEdit::Overlay {
            section: s(),
            overlay: o.clone(),
        });
    }
    for p in &c.dtparams {
        out.push(ConfigEdit::Dtparam {
            section: s(),
            param: p.clone(),
        });
    }
    for l in &c.lines {
        out.push(ConfigEdit::Line {
            section: s(),
            line: l.clone(),
        });
    }
    for (name, sub) in &c.sections {
        config_edits(sub, name, out);
    }
}

/// First-boot work as steps, one file each in [`FIRSTBOOT_STEPS`], run in name order by
/// [`FIRSTBOOT_RUNNER`] from `pibake-firstboot.service`.
///
/// A step is a file of its own, so a snippet's stray quote, heredoc or `exit 0` can only
/// end that step, never swallow the next one or the runner's bookkeeping. The runner
/// owns the markers: a step that succeeds is marked done and never runs again; one that
/// fails stops the run (later steps may need it), is logged, and is retried on the next
/// boot; the unit stops running once every step is done.
/// Whether a planned file is first-boot work (`firstboot` below): made from the role's
/// profile alone, so the same in every node of the role, and written once into the
/// role's layer when it has one.
pub fn role_wide(path: &str) -> bool {
    path == FIRSTBOOT_RUNNER
        || path == format!("/etc/systemd/system/{FIRSTBOOT_UNIT}")
        || [FIRSTBOOT_STEPS, DEB_DIR].iter().any(|d| {
            path.strip_prefix(d)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

fn firstboot(
    inv: &Inventory,
    def: &crate::inventory::schema::ProfileFile,
    plan: &mut Plan,
) -> Result<()> {
    if def.packages.is_empty()
        && def.packages_online.is_empty()
        && def.debs.is_empty()
        && def.firstboot.is_empty()
    {
        return Ok(());
    }
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut debs: Vec<String> = Vec::new();
    for d in &def.debs {
        let at_entry = |what: &str| {
            inv.profiles[&plan.role].entry_error("debs", |v| v.as_str() == Some(d.path()), what)
        };
        let local = inv.source(d.path()).map_err(|e| e.place(at_entry))?;
        let content = std::fs::read(&local).at(&local)?;
        // The name as the profile wrote it (checked when it loaded), not the name of the
        // file a symlink leads to.
        let name = d.file_name();
        let path = format!("{DEB_DIR}/{name}");
        if debs.contains(&path) {
            return Err(at_entry(&format!(
                "a second .deb named `{name}` in the profile's chain: the image keeps them in one directory, by file name"
            )));
        }
        debs.push(path);
        plan.push_file(PlannedFile {
            path: format!("{DEB_DIR}/{name}"),
            mode: 0o644,
            uid: 0,
            gid: 0,
            secret: false,
            origin: Origin::Inventory,
            from: Some(local.display().to_string()),
            content,
        });
    }
    if !debs.is_empty() {
        // Absolute paths and no `--no-download`, as for the baked packages (see
        // `firstboot::packages_step`): apt then installs the files themselves.
        steps.push((
            "local-debs".into(),
            format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y {}\n",
                sh_words(&debs)
            ),
        ));
    }
    if !def.packages.is_empty() {
        // The closure itself is written at build time (`bake::apply`), its file names in
        // install order in `order`; the names are made from parsed package names,
        // versions and architectures, so they hold no spaces or shell syntax.
        steps.push(("packages".into(), super::firstboot::packages_step()));
    }
    if !def.packages_online.is_empty() {
        // Each name was checked against Debian's grammar when the profile loaded; the
        // script gets the parsed request, never the text as typed.
        let requests = def
            .packages_online
            .iter()
            .map(|p| {
                p.parse::<PackageRequest>()
                    .map_err(|e| Error::unplaced(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = requests.iter().map(|r| r.to_string()).collect();
        steps.push((
            "packages-online".into(),
            format!(
                "apt-get update\nDEBIAN_FRONTEND=noninteractive apt-get install -y {}\n",
                sh_words(&names)
            ),
        ));
    }
    steps.push(("enable-units".into(), super::firstboot::enable_units_step()));
    for (i, snippet) in def.firstboot.iter().enumerate() {
        let mut body = snippet.clone();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        steps.push((format!("snippet-{}", i + 1), body));
    }
    for (i, (name, body)) in steps.iter().enumerate() {
        plan.add_file(
            &format!("{FIRSTBOOT_STEPS}/{:02}-{name}.sh", (i + 1) * 10),
            0o755,
            format!("#!/bin/sh\n# Written by pibake: first-boot step `{name}`.\nset -eu\n{body}"),
        );
    }
    plan.add_file(FIRSTBOOT_RUNNER, 0o755, FIRSTBOOT_RUNNER_TEXT.to_string());
    // Only packages fetched on first boot need the network; everything else is local,
    // and a node on an isolated segment must not wait for a network it will never get.
    let network = if def.packages_online.is_empty() {
        ""
    } else {
        "Wants=network-online.target\nAfter=network-online.target\n"
    };
    plan.add_file(
        &format!("/etc/systemd/system/{FIRSTBOOT_UNIT}"),
        0o644,
        format!(
            "[Unit]\nDescription=pibake first-boot work (each step once; a failed step is retried on the next boot)\n{network}ConditionPathExists=!{FIRSTBOOT_DONE}\n\n[Service]\nType=oneshot\nExecStart={FIRSTBOOT_RUNNER}\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    plan.services.enable.push(FIRSTBOOT_UNIT.into());
    Ok(())
}

/// A `files:` entry: inline or from a file, maybe a template; absolute path, numeric owner.
fn file_entry(
    inv: &Inventory,
    f: &FileDef,
    templates: &Templates,
    ctx: &serde_json::Value,
    origin: &str,
    at: &str,
) -> Result<PlannedFile> {
    check_image_path(&f.path)?;
    let (uid, gid) = match &f.owner {
        None => (0, 0),
        Some(o) => {
            let o: crate::values::Owner = o.parse().map_err(Error::unplaced)?;
            (o.uid, o.gid)
        }
    };
    let mut secret_source = false;
    let raw = match (&f.content, &f.source) {
        (Some(c), None) => c.clone().into_bytes(),
        (None, Some(s)) => {
            let p = inv.source(s)?;
            // A source only its owner may read is a secret: it stays 0600 and unprinted.
            let private = std::fs::metadata(&p).at(&p)?.permissions().mode() & 0o077 == 0;
            if private && f.mode.is_none() {
                secret_source = true;
            }
            std::fs::read(&p).at(&p)?
        }
        _ => {
            return Err(Error::unplaced(format!(
                "{}: give exactly one of `content` and `source`",
                f.path
            )));
        }
    };
    let content = if f.template {
        let text = String::from_utf8(raw)
            .map_err(|_| Error::unplaced(format!("{}: a template must be UTF-8 text", f.path)))?;
        templates
            .render(&format!("{origin} ({at})"), Some(&text), ctx)?
            .into_bytes()
    } else {
        raw
    };
    check_unit_file(&f.path, &content).map_err(|(line, why)| {
        Error::unplaced(format!("{} (line {line} of its content): {why}", f.path))
    })?;
    Ok(PlannedFile {
        path: f.path.clone(),
        mode: f.mode.unwrap_or(if secret_source { 0o600 } else { 0o644 }),
        uid,
        gid,
        secret: secret_source || f.mode.is_some_and(|m| m & 0o077 == 0),
        origin: Origin::Inventory,
        from: f.source.clone(),
        content,
    })
}

/// Paths in the image are absolute and never climb out with `..`.
fn check_image_path(p: &str) -> Result<()> {
    if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.ends_with('/') {
        return Err(Error::unplaced(format!(
            "path `{p}` must be absolute, without `..`, naming a file"
        )));
    }
    Ok(())
}
