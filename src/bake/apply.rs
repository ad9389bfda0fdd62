//! Applying a node's plan to its image: the root filesystem through the ext4 writer,
//! config.txt and cmdline.txt through the FAT layer, and a disk identifier of its own in
//! the MBR, `root=PARTUUID=` and fstab.

use sha2::{Digest, Sha256};

use super::{Node, hostkeys, software, systemd, users};
use crate::bootcfg::{Cmdline, ConfigTxt, Section, check_overlay, parse_overlay};
use crate::error::{Error, IoContext, Result};
use crate::fs::fat::Fat;
use crate::inspect::Report;
use crate::inventory::Inventory;
use crate::packages::cache::Store;
use crate::plan::firstboot::ENABLE_AFTER_INSTALL;
use crate::plan::{ConfigEdit, Plan, role_wide};
use pibake_ext4::{Ext4, Kind, Meta, Time};
use pibake_image::partition::{DiskId, Layout};
use pibake_image::region::Region;

const MARK_BEGIN: &str = "# >>> pibake: managed block, rewritten on every build";
const MARK_END: &str = "# <<< pibake";

/// Applies the node's plan to `whole` (the image); returns the disk identifier it has.
///
/// An MBR image gets a disk signature of its own (derived from cluster and node), written
/// to the MBR and to every `PARTUUID=` that names it; a GPT image keeps its GUID.
pub fn apply(
    inv: &Inventory,
    node: &Node,
    whole: &Region,
    report: &Report,
    time: Option<i64>,
) -> Result<DiskId> {
    let plan = node.plan;
    let layout = Layout::read(whole)?;
    let renamed = match &layout.disk_id {
        DiskId::Mbr(old) => Some((*old, disk_id(inv, &plan.node))),
        DiskId::Gpt(_) => None,
    };
    let partuuid = |id: u32| format!("PARTUUID={id:08x}-");

    let (mut fs, time) = open_root(whole, &layout, time)?;
    apply_root(&mut fs, node, report, time)?;
    if let Some((old, new)) = renamed {
        replace_in(&mut fs, "/etc/fstab", &partuuid(old), &partuuid(new))?;
    }
    fs.commit()?;

    let boot = layout.boot();
    apply_boot(
        whole.sub(boot.start, boot.size)?,
        plan,
        renamed.map(|(old, new)| (partuuid(old), partuuid(new))),
    )?;
    match renamed {
        Some((_, new)) => {
            whole.clone().write_all_at(440, &new.to_le_bytes())?;
            Ok(DiskId::Mbr(new))
        }
        None => Ok(layout.disk_id),
    }
}

/// The node's disk identifier: derived from cluster and node, so rebuilds agree.
fn disk_id(inv: &Inventory, node: &str) -> u32 {
    let h = Sha256::digest(format!("{}/{node}", inv.file.cluster).as_bytes());
    u32::from_le_bytes([h[0], h[1], h[2], h[3]]).max(1)
}

/// The image's root filesystem for writing, its clock set to the build's time (`time`,
/// else the root directory's own mtime, so rebuilds agree); with that time.
fn open_root(whole: &Region, layout: &Layout, time: Option<i64>) -> Result<(Ext4, i64)> {
    let root = layout.root();
    let mut fs = Ext4::open_rw(whole.sub(root.start, root.size)?)?;
    let time = time.unwrap_or_else(|| fs.stat("/").map(|s| s.mtime.secs).unwrap_or(0));
    fs.set_time(Time::from_secs(time));
    Ok((fs, time))
}

/// Rewrites a text file of the root in place, keeping its mode and owner.
fn replace_in(fs: &mut Ext4, path: &str, from: &str, to: &str) -> Result<()> {
    if !fs.exists(path)? {
        return Ok(());
    }
    let st = fs.stat(path)?;
    let text = String::from_utf8_lossy(&fs.read(path)?).replace(from, to);
    Ok(fs.write_file(path, text.as_bytes(), &Meta::new(st.mode, st.uid, st.gid))?)
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(d, _)| if d.is_empty() { "/" } else { d })
        .unwrap_or("/")
}

/// What every step of the root's recipe sees: the node, the base's report, the build
/// clock.
struct Ctx<'a> {
    node: &'a Node<'a>,
    report: &'a Report,
    time: i64,
}

/// One step of baking a node's root filesystem, named by its function.
type Step = fn(&mut Ext4, &Ctx) -> Result<()>;

/// The root's recipe, in order. Adding a stage of baking is one line here and one
/// function below; each step reads the node's context and edits the filesystem. (The
/// role's packages are not a step: they are written once per role, into the layer every
/// node of the role is built over; see `packages_layer`.)
const ROOT_STEPS: &[Step] = &[
    plan_files,
    admin_user,
    host_keys,
    known_hosts,
    locale,
    cloud_init,
    cluster_secrets,
    services,
];

fn apply_root(fs: &mut Ext4, node: &Node, report: &Report, time: i64) -> Result<()> {
    let ctx = Ctx { node, report, time };
    ROOT_STEPS.iter().try_for_each(|step| step(fs, &ctx))
}

/// The admin user: renamed or created, password, keys, sudo (see `users`).
fn admin_user(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    let days = c.time.div_euclid(86_400);
    users::apply(fs, &c.node.plan.user, days, c.node.cluster_key)
}

/// The node's own SSH host keys, kept in the cluster's state (see `hostkeys`).
fn host_keys(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    hostkeys::bake(fs, c.node.keys)
}

const DIR: Meta = Meta {
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: None,
};

/// The plan's directories, files, symlinks and managed blocks.
fn plan_files(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    let plan = c.node.plan;
    for d in &plan.dirs {
        fs.mkdir_p(&d.path, &Meta::new(d.mode, d.uid, d.gid))?;
    }
    for f in &plan.files {
        write_unless_same(fs, &f.path, &f.content, &Meta::new(f.mode, f.uid, f.gid))?;
    }
    for l in &plan.symlinks {
        fs.mkdir_p(parent(&l.path), &DIR)?;
        fs.symlink(&l.path, &l.target, &Meta::new(0o777, 0, 0))?;
    }
    for b in &plan.blocks {
        managed_block(fs, &b.path, &b.content)?;
    }
    Ok(())
}

/// The files that hold the secrets of the clusters the node forms (k3s's config with
/// its token, munge's key), written by each kind from its secret.
fn cluster_secrets(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    for (kind, secret) in c.node.secrets {
        kind.bake_secret(fs, c.node.plan, secret)?;
    }
    Ok(())
}

/// The whole cluster's host keys, so every node knows every other.
fn known_hosts(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    fs.mkdir_p("/etc/ssh", &DIR)?;
    Ok(fs.write_file(
        "/etc/ssh/ssh_known_hosts",
        c.node.known_hosts.as_bytes(),
        &Meta::new(0o644, 0, 0),
    )?)
}

/// Writes what every node of a role shares into the root of `whole` (an overlay of the
/// base that becomes the role's layer): its packages, with the order first boot installs
/// them in (see `plan::render`), the user's files it names (k3s's), its first-boot work
/// and its units. `plan` is any node's
/// of the role; those parts come from the role's profile alone, so every node's plan
/// has them alike, and the node's own build finds them already written (see
/// `write_unless_same`). Without them in the layer each node would write its own copy,
/// and hash and compress the layer's chunks they land in. The cache verified every
/// package when the build fetched it.
pub fn role_layer(
    whole: &Region,
    plan: &Plan,
    store: &Store,
    time: Option<i64>,
) -> Result<Option<software::RoleSoftware>> {
    let (mut fs, _) = open_root(whole, &Layout::read(whole)?, time)?;
    let software = if plan.packages.is_empty() {
        None
    } else {
        Some(software::write(&mut fs, plan, store)?)
    };
    write_artifacts(&mut fs, plan)?;
    for f in plan.files.iter().filter(|f| role_wide(&f.path)) {
        write_unless_same(
            &mut fs,
            &f.path,
            &f.content,
            &Meta::new(f.mode, f.uid, f.gid),
        )?;
    }
    switch_units(&mut fs, plan)?;
    fs.commit()?;
    Ok(software)
}

/// The user's files (k3s's), each checked against its sha256 as it is read: a file that
/// changed since it was named fails here, before any node's image is written.
fn write_artifacts(fs: &mut Ext4, plan: &Plan) -> Result<()> {
    for a in &plan.artifacts {
        let bytes = std::fs::read(&a.source)
            .at(&a.source)
            .map_err(|e| e.with_hint(format!("`{}` in the cluster file names it", a.key)))?;
        let got = pibake_image::digest::Sha256::of(&bytes);
        if got != a.sha256 {
            return Err(Error::invalid(format!(
                "{}: its sha256 is {got}, and `{}.sha256` in the cluster file says {}",
                a.source.display(),
                a.key,
                a.sha256
            ))
            .with_hint("put the release's published sha256 there, and the file it belongs to"));
        }
        fs.mkdir_p(parent(&a.path), &DIR)?;
        fs.write_file(&a.path, &bytes, &Meta::new(a.mode, 0, 0))?;
    }
    Ok(())
}

/// Writes a file unless the root already holds it exactly so (the role's layer wrote
/// it, or the base ships it): an identical rewrite would only move its blocks, and each
/// page a node touches is one its image must hash, compress and write.
fn write_unless_same(fs: &mut Ext4, path: &str, content: &[u8], meta: &Meta) -> Result<()> {
    if let Some(st) = fs.try_stat(path)? {
        let same = st.kind == Kind::File
            && (st.mode, st.uid, st.gid) == (meta.mode & 0o7777, meta.uid, meta.gid)
            && st.size == content.len() as u64
            && meta.mtime.is_none_or(|t| t == st.mtime)
            && fs.read(path)? == content;
        if same {
            return Ok(());
        }
    }
    fs.mkdir_p(parent(path), &DIR)?;
    Ok(fs.write_file(path, content, meta)?)
}

/// Trixie: keep cloud-init from replacing the baked network, hostname and keys.
fn cloud_init(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    if !c.report.network.also.iter().any(|a| a == "cloud-init") {
        return Ok(());
    }
    fs.mkdir_p("/etc/cloud/cloud.cfg.d", &DIR)?;
    Ok(fs.write_file(
        "/etc/cloud/cloud.cfg.d/99-pibake.cfg",
        b"# Written by pibake: the image was configured offline.\nnetwork: {config: disabled}\npreserve_hostname: true\nmanage_etc_hosts: false\nssh_deletekeys: false\n",
        &Meta::new(0o644, 0, 0),
    )?)
}

/// The node's units (see `switch_units`).
fn services(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    switch_units(fs, c.node.plan)
}

/// Units enabled, disabled and masked offline; those a first-boot package brings, or
/// an unpacked package not yet configured, are listed to be enabled after the install.
fn switch_units(fs: &mut Ext4, plan: &Plan) -> Result<()> {
    let mut deferred = Vec::new();
    let unconfigured = software::package_units(fs)?;
    for u in &plan.services.enable {
        if unconfigured.contains(u) {
            deferred.push(u.clone());
            continue;
        }
        // A unit whose file the plan writes but that is not there yet (in a role's
        // layer, which holds only what the role's nodes share) is enabled with the node.
        let planned = || {
            let path = format!("/etc/systemd/system/{u}");
            plan.files.iter().any(|f| f.path == path)
        };
        if !systemd::enable(fs, u)? && !planned() {
            deferred.push(u.clone());
        }
    }
    for u in &plan.services.disable {
        systemd::disable(fs, u)?;
    }
    for u in &plan.services.mask {
        systemd::mask(fs, u)?;
    }
    if deferred.is_empty() {
        return Ok(());
    }
    if !plan
        .files
        .iter()
        .any(|f| f.path == crate::plan::firstboot::FIRSTBOOT_RUNNER)
    {
        return Err(Error::invalid(format!(
            "node {}: unit(s) {} are not in the image and no first-boot package brings them",
            plan.node,
            deferred.join(", ")
        ))
        .with_hint("add the package that ships them to the profile's `packages:`"));
    }
    write_unless_same(
        fs,
        ENABLE_AFTER_INSTALL,
        format!("{}\n", deferred.join("\n")).as_bytes(),
        &Meta::new(0o644, 0, 0),
    )
}

/// Replaces pibake's block in a file (or appends it), never duplicating it.
fn managed_block(fs: &mut Ext4, path: &str, content: &str) -> Result<()> {
    let (text, meta) = if fs.exists(path)? {
        let st = fs.stat(path)?;
        (
            String::from_utf8_lossy(&fs.read(path)?).into_owned(),
            Meta::new(st.mode, st.uid, st.gid),
        )
    } else {
        (String::new(), Meta::new(0o644, 0, 0))
    };
    let mut kept = String::new();
    let mut inside = false;
    for line in text.lines() {
        match line {
            MARK_BEGIN => inside = true,
            MARK_END => inside = false,
            _ if !inside => {
                kept.push_str(line);
                kept.push('\n');
            }
            _ => {}
        }
    }
    if !kept.is_empty() && !kept.ends_with("\n\n") {
        kept.push('\n');
    }
    kept.push_str(&format!("{MARK_BEGIN}\n{content}{MARK_END}\n"));
    Ok(fs.write_file(path, kept.as_bytes(), &meta)?)
}

/// Refuses a timezone the image's tzdata does not have: `/etc/localtime` would point
/// at nothing.
pub(crate) fn check_zone(fs: &Ext4, tz: &str) -> Result<()> {
    const ZONEINFO: &str = "/usr/share/zoneinfo";
    if fs.try_stat(&format!("{ZONEINFO}/{tz}"))?.is_some() {
        return Ok(());
    }
    let mut known = Vec::new();
    if fs.try_stat(ZONEINFO)?.is_some() {
        for area in fs.read_dir(ZONEINFO)? {
            match area.kind {
                Some(Kind::Dir) => {
                    for z in fs.read_dir(&format!("{ZONEINFO}/{}", area.name))? {
                        known.push(format!("{}/{}", area.name, z.name));
                    }
                }
                _ => known.push(area.name),
            }
        }
    }
    let e = Error::invalid(format!("timezone `{tz}`: the image has no {ZONEINFO}/{tz}"));
    Err(match crate::bootcfg::did_you_mean(tz, &known) {
        Some(s) => e.with_hint(format!("did you mean `{s}`?")),
        None if known.is_empty() => e.with_hint("the image has no tzdata; leave `timezone:` out"),
        None => e.with_hint("use a zone name from the tz database, like Europe/London"),
    })
}

/// Timezone, locale and keyboard, as raspi-config leaves them.
fn locale(fs: &mut Ext4, c: &Ctx) -> Result<()> {
    let plan = c.node.plan;
    let file = Meta::new(0o644, 0, 0);
    if let Some(tz) = &plan.locale.timezone {
        check_zone(fs, tz.as_str())?;
        fs.write_file("/etc/timezone", format!("{tz}\n").as_bytes(), &file)?;
        if fs.try_stat("/etc/localtime")?.is_some() {
            fs.remove("/etc/localtime")?;
        }
        fs.symlink(
            "/etc/localtime",
            &format!("/usr/share/zoneinfo/{tz}"),
            &Meta::new(0o777, 0, 0),
        )?;
    }
    if let Some(l) = &plan.locale.locale {
        fs.mkdir_p("/etc/default", &Meta::new(0o755, 0, 0))?;
        fs.write_file(
            "/etc/default/locale",
            format!("LANG={l}\n").as_bytes(),
            &file,
        )?;
    }
    if let Some(k) = &plan.locale.keyboard {
        fs.mkdir_p("/etc/default", &Meta::new(0o755, 0, 0))?;
        fs.write_file(
            "/etc/default/keyboard",
            format!("XKBMODEL=\"pc105\"\nXKBLAYOUT=\"{k}\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\n\nBACKSPACE=\"guess\"\n").as_bytes(),
            &file,
        )?;
    }
    Ok(())
}

/// config.txt and cmdline.txt edits, and the new disk identifier in `root=`.
/// `partuuids`: the `PARTUUID=xxxxxxxx-` prefix to replace in cmdline.txt, and its new value.
fn apply_boot(region: Region, plan: &Plan, partuuids: Option<(String, String)>) -> Result<()> {
    let mut fat = Fat::open(region)?;
    let boot = BootFiles::read(&fat)?;
    let (config, mut cmdline) = boot.edited(plan)?;
    if let Some((old, new)) = partuuids {
        cmdline = cmdline.replace(&old, &new);
    }
    fat.write("/config.txt", config.as_bytes())?;
    fat.write("/cmdline.txt", cmdline.as_bytes())?;
    fat.close()
}

/// The boot partition's files a plan edits, and the overlays it may name.
pub struct BootFiles {
    /// `/config.txt` of the boot partition, as text (invalid UTF-8 replaced).
    pub config: String,
    /// `/cmdline.txt` of the boot partition, as text.
    pub cmdline: String,
    pub(crate) overlays: Vec<String>,
}

impl BootFiles {
    /// Reads config.txt, cmdline.txt and the names in `/overlays` (without `.dtbo`;
    /// none when the directory is missing) from a boot partition.
    pub fn read(fat: &Fat) -> Result<BootFiles> {
        let overlays = fat
            .read_dir("/overlays")
            .map(|v| {
                v.into_iter()
                    .filter_map(|e| e.name.strip_suffix(".dtbo").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(BootFiles {
            config: String::from_utf8_lossy(&fat.read("/config.txt")?).into_owned(),
            cmdline: String::from_utf8_lossy(&fat.read("/cmdline.txt")?).into_owned(),
            overlays,
        })
    }

    /// config.txt and cmdline.txt with the plan's edits, overlays checked.
    pub fn edited(&self, plan: &Plan) -> Result<(String, String)> {
        let mut config = ConfigTxt::parse(&self.config);
        // The config.txt writer's messages name config.txt themselves.
        let edit = |e: Error| Error::invalid(format!("node {}: {e}", plan.node));
        for e in &plan.config_txt {
            let section = |s: &str| Section::new(s).map_err(edit);
            match e {
                ConfigEdit::Set {
                    section: s,
                    key,
                    value,
                } => config.set(&section(s)?, key, value),
                ConfigEdit::Overlay {
                    section: s,
                    overlay,
                } => {
                    let (name, params) = parse_overlay(overlay);
                    check_overlay(&name, &self.overlays).map_err(edit)?;
                    config.add_overlay(&section(s)?, &name, &params)
                }
                ConfigEdit::Dtparam { section: s, param } => {
                    let (name, value) = param.split_once('=').unwrap_or((param, "on"));
                    config.set_dtparam(&section(s)?, name, value)
                }
                ConfigEdit::Line { section: s, line } => config.add_line(&section(s)?, line),
            }
            .map_err(edit)?;
        }
        let mut cmdline = Cmdline::parse(&self.cmdline)
            .map_err(|e| Error::invalid(format!("boot partition cmdline.txt: {e}")))?;
        for t in &plan.cmdline_remove {
            cmdline.remove(t);
        }
        for t in &plan.cmdline_add {
            match t.split_once('=') {
                Some((k, v)) => cmdline.set(k, v),
                None => cmdline.add_flag(t),
            }
            .map_err(|e| Error::invalid(format!("node {}: cmdline.txt: {e}", plan.node)))?;
        }
        Ok((config.render(), cmdline.render()))
    }
}
