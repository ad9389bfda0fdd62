//! `pibake build`: each node's plan applied to a copy of the base image.
//!
//! The base is read, never written: each node starts as a sparse copy of the cached raw
//! base under a temporary name in the output directory, gets its plan (root filesystem
//! through the ext4 writer, config.txt and cmdline.txt through the FAT layer, a disk
//! identifier of its own in the MBR) and appears under its final name only when all of it
//! succeeded. What the image does by itself on first boot is described in the README
//! ("What a built node does on first boot").

pub mod hostkeys;
pub mod systemd;
pub mod users;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bootcfg::{Cmdline, ConfigTxt, Section, check_overlay, parse_overlay};
use crate::error::{Error, IoContext, Result};
use crate::fs::ext4::{Ext4, Meta, Time};
use crate::fs::fat::Fat;
use crate::image::base::{self, CacheOptions};
use crate::image::frames::BaseFrames;
use crate::image::partition::Layout;
use crate::image::region::Region;
use crate::image::sparse::clone_or_copy;
use crate::inspect::{Report, inspect, stack_name};
use crate::inventory::Inventory;
use crate::plan::{ConfigEdit, Plan, plans};

/// Releases whose first-boot mechanics pibake knows (see the reference notes).
const RELEASES: &[&str] = &["bullseye", "bookworm", "trixie"];
/// Where units that first-boot packages bring are listed, to be enabled after install.
const ENABLE_AFTER_INSTALL: &str = "/var/lib/pibake/enable-after-install";
const MARK_BEGIN: &str = "# >>> pibake: managed block, rewritten on every build";
const MARK_END: &str = "# <<< pibake";

pub struct Options {
    pub out: PathBuf,
    /// Per-node host keys live here (`<cluster dir>/.pibake/state` by default).
    pub state: PathBuf,
    pub cache: CacheOptions,
    /// Timestamp for everything the build writes: `SOURCE_DATE_EPOCH`, else the base
    /// root filesystem's last write time (so rebuilds are byte-identical).
    pub time: Option<i64>,
    /// Nodes built at once; 0 means one per core.
    pub jobs: usize,
    /// Write `<node>.img.bmap` beside each raw image.
    pub bmap: bool,
    /// What to write per node: raw `.img`, `.img.zst`, or both.
    pub formats: Vec<OutputFormat>,
}

/// An output format of `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum OutputFormat {
    /// A raw, sparse `.img`
    Raw,
    /// `.img.zst` made from the base's zstd frames, recompressing only changed chunks
    Zst,
}

/// One built node.
#[derive(Debug, serde::Serialize)]
pub struct Built {
    pub node: String,
    pub image: PathBuf,
    pub disk_id: String,
    /// sha256 of the finished image file.
    pub sha256: String,
}

/// Builds the named nodes (all when empty) into `opts.out`.
pub fn build(inv: &Inventory, nodes: &[String], opts: &Options) -> Result<Vec<Built>> {
    let base_path = match &inv.file.base {
        Some(b) => inv.dir.join(b),
        None => {
            return Err(inv
                .source
                .error_at("cluster", "no `base:` image to build from"));
        }
    };
    if !base_path.exists() {
        return Err(inv.source.error_at(
            "base",
            &format!("the base image {} does not exist", base_path.display()),
        ));
    }
    let base = base::prepare(&base_path, &opts.cache)?;
    let base_sha = base.source_sha256()?;
    let jobs = match opts.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let frames = if opts.formats.contains(&OutputFormat::Zst) {
        Some(BaseFrames::prepare(
            &base.raw,
            &base_sha,
            &opts.cache.dir()?,
            jobs,
        )?)
    } else {
        None
    };
    let report = inspect(&base.raw)?;
    check_release(&report, &base_path)?;
    let stack = stack_name(&report.network.stack).map(str::to_string);
    let all = plans(inv, nodes, stack.as_deref())?;
    std::fs::create_dir_all(&opts.out).at(&opts.out)?;

    // Every node's keys first: each image carries the whole cluster's known_hosts.
    let mut keys = BTreeMap::new();
    for n in &inv.nodes {
        keys.insert(n.name.clone(), hostkeys::ensure(&opts.state, &n.name)?);
    }
    let known_hosts = known_hosts(inv, &keys);
    let cluster_key = if inv.file.admin.node_ssh {
        Some(hostkeys::cluster_user_key(&opts.state)?)
    } else {
        None
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let jobs = jobs.min(all.len().max(1));
    // Each worker takes the next node; results land in plan order, whatever the timing.
    let mut results: Vec<(usize, Result<Built>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(plan) = all.get(i) else { break done };
                        let node = Node {
                            plan,
                            keys: &keys[&plan.node],
                            known_hosts: &known_hosts,
                            cluster_key: cluster_key.as_ref(),
                        };
                        done.push((
                            i,
                            build_node(inv, &node, &base.raw, &report, frames.as_ref(), opts),
                        ));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut built = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in results {
        match r {
            Ok(b) => built.push(b),
            Err(e) => failed.push(format!("{}: {e}", all[i].node)),
        }
    }
    if !failed.is_empty() {
        return Err(Error::invalid(format!(
            "{} of {} node(s) failed (the others were built):\n  {}",
            failed.len(),
            all.len(),
            failed.join("\n  ")
        )));
    }
    write_client_files(inv, &known_hosts, opts)?;
    write_manifest(inv, &all, &built, (&base_path, &base_sha), &keys, opts)?;
    Ok(built)
}

fn check_release(r: &Report, path: &Path) -> Result<()> {
    match r.os.codename.as_deref() {
        Some(c) if RELEASES.contains(&c) => Ok(()),
        Some(c) => Err(Error::unsupported(format!(
            "{}: release `{c}` is not one pibake knows ({})",
            path.display(),
            RELEASES.join(", ")
        ))
        .with_hint(
            "its first-boot mechanics may differ; use a bullseye, bookworm or trixie image",
        )),
        None => Err(Error::invalid(format!(
            "{}: no VERSION_CODENAME in the root's os-release; not a Raspberry Pi OS image",
            path.display()
        ))),
    }
}

/// `known_hosts` lines for every node: name, fqdn and addresses, each key type.
fn known_hosts(inv: &Inventory, keys: &BTreeMap<String, Vec<hostkeys::HostKey>>) -> String {
    let mut s = String::new();
    for n in &inv.nodes {
        let mut names = vec![n.name.clone()];
        if let Some(d) = inv.domain() {
            names.push(format!("{}.{d}", n.name));
        }
        names.extend(n.addresses.values().map(|a| a.to_string()));
        for k in &keys[&n.name] {
            s.push_str(&format!("{} {}\n", names.join(","), k.public));
        }
    }
    s
}

/// `known_hosts` and `ssh_config` for the admin's own machine, next to the images.
fn write_client_files(inv: &Inventory, known_hosts: &str, opts: &Options) -> Result<()> {
    let out = opts.out.canonicalize().at(&opts.out)?;
    let kh = out.join("known_hosts");
    std::fs::write(&kh, known_hosts).at(&kh)?;
    let mut cfg = format!("# ssh -F {} NODE\n", out.join("ssh_config").display());
    for n in &inv.nodes {
        if let Some(a) = n.addresses.values().next() {
            cfg.push_str(&format!(
                "Host {}\n    HostName {a}\n    User {}\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n",
                n.name,
                inv.file.admin.name,
                kh.display()
            ));
        }
    }
    let path = out.join("ssh_config");
    std::fs::write(&path, cfg).at(&path)
}

/// `manifest.json` in the output directory: what was built from what, reproducibly (no
/// times, no paths outside the output directory but the base's name).
fn write_manifest(
    inv: &Inventory,
    plans: &[Plan],
    built: &[Built],
    (base, base_sha): (&Path, &str),
    keys: &BTreeMap<String, Vec<hostkeys::HostKey>>,
    opts: &Options,
) -> Result<()> {
    let nodes: Vec<serde_json::Value> = plans
        .iter()
        .zip(built)
        .map(|(p, b)| {
            let file = |path: &Path| -> Result<serde_json::Value> {
                let size = std::fs::metadata(path).at(path)?.len();
                Ok(serde_json::json!({ "file": path.file_name().map(|n| n.to_string_lossy().into_owned()), "size": size }))
            };
            let mut image = file(&b.image)?;
            image["sha256"] = b.sha256.clone().into();
            let bmap_path = b.image.with_extension("img.bmap");
            let bmap = if opts.bmap { Some(file(&bmap_path)?) } else { None };
            let fingerprints: Vec<serde_json::Value> = keys[&p.node]
                .iter()
                .map(|k| {
                    let fp = ssh_key::PublicKey::from_openssh(&k.public).map(|pk| pk.fingerprint(ssh_key::HashAlg::Sha256).to_string()).unwrap_or_default();
                    serde_json::json!({ "type": k.kind, "fingerprint": fp })
                })
                .collect();
            Ok(serde_json::json!({
                "node": p.node, "role": p.role, "disk_id": b.disk_id, "image": image, "bmap": bmap,
                "host_keys": fingerprints,
                "changes": {
                    "files": p.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
                    "dirs": p.dirs.iter().map(|d| &d.path).collect::<Vec<_>>(),
                    "symlinks": p.symlinks.iter().map(|l| &l.path).collect::<Vec<_>>(),
                    "blocks": p.blocks.iter().map(|l| &l.path).collect::<Vec<_>>(),
                    "config_txt": p.config_txt.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                    "cmdline_add": p.cmdline_add, "cmdline_remove": p.cmdline_remove,
                    "services": p.services, "user": p.user.name,
                },
            }))
        })
        .collect::<Result<_>>()?;
    // A partial build (`--node`) keeps the other nodes' entries of an earlier manifest.
    let path = opts.out.join("manifest.json");
    let earlier: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| m["nodes"].as_array().cloned())
        .unwrap_or_default();
    let mut nodes: Vec<serde_json::Value> = earlier
        .into_iter()
        .filter(|e| !plans.iter().any(|p| e["node"] == p.node.as_str()))
        .chain(nodes)
        .collect();
    let order = |v: &serde_json::Value| {
        inv.nodes
            .iter()
            .position(|n| v["node"] == n.name.as_str())
            .unwrap_or(usize::MAX)
    };
    nodes.sort_by_key(order);
    let manifest = serde_json::json!({
        "pibake": env!("CARGO_PKG_VERSION"),
        "cluster": inv.file.cluster,
        "base": { "file": base.file_name().map(|n| n.to_string_lossy().into_owned()), "sha256": base_sha },
        "nodes": nodes,
    });
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::invalid(format!("manifest: {e}")))?;
    let tmp = opts.out.join(".manifest.json.part");
    std::fs::write(&tmp, format!("{text}\n")).at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// The node's disk identifier: derived from cluster and node, so rebuilds agree.
fn disk_id(inv: &Inventory, node: &str) -> u32 {
    let h = Sha256::digest(format!("{}/{node}", inv.file.cluster).as_bytes());
    u32::from_le_bytes([h[0], h[1], h[2], h[3]]).max(1)
}

/// What one node's image gets besides its plan: its host keys, the cluster's
/// known_hosts, and the admin's cluster key pair when nodes trust each other.
struct Node<'a> {
    plan: &'a Plan,
    keys: &'a [hostkeys::HostKey],
    known_hosts: &'a str,
    cluster_key: Option<&'a (String, String)>,
}

fn build_node(
    inv: &Inventory,
    node: &Node,
    base: &Path,
    report: &Report,
    frames: Option<&BaseFrames>,
    opts: &Options,
) -> Result<Built> {
    let plan = node.plan;
    let image = opts.out.join(format!("{}.img", plan.node));
    let part = opts.out.join(format!(".{}.img.part", plan.node));
    let result = (|| {
        clone_or_copy(base, &part)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
            .at(&part)?;
        let len = file.metadata().at(&part)?.len();
        let whole = Region::new(Arc::new(file), &part, 0, len);
        let layout = Layout::read(&whole)?;
        let old_id = layout.disk_id.to_string();
        let new_id = format!("{:08x}", disk_id(inv, &plan.node));
        let gpt = old_id.len() != 8;

        let root = layout.root();
        let mut fs = Ext4::open_rw(whole.sub(root.start, root.size)?)?;
        let time = opts.time.unwrap_or_else(|| fs_time(&fs));
        fs.set_time(Time::from_secs(time));
        apply_root(&mut fs, node, report, time)?;
        if !gpt {
            replace_in(
                &mut fs,
                "/etc/fstab",
                &format!("PARTUUID={old_id}-"),
                &format!("PARTUUID={new_id}-"),
            )?;
        }
        fs.commit()?;

        let boot = layout.boot();
        apply_boot(
            whole.sub(boot.start, boot.size)?,
            plan,
            (!gpt).then_some((&old_id, &new_id)),
        )?;
        if !gpt {
            let mut w = whole.clone();
            w.write_all_at(
                440,
                &u32::from_str_radix(&new_id, 16).expect("hex").to_le_bytes(),
            )?;
        }
        File::open(&part).and_then(|f| f.sync_all()).at(&part)?;
        let zst = image.with_extension("img.zst");
        if let Some(frames) = frames {
            frames.write_node(&part, &whole.written(), &zst)?;
        }
        let primary = if opts.formats.contains(&OutputFormat::Raw) {
            if opts.bmap {
                let tmp = opts.out.join(format!(".{}.img.bmap.part", plan.node));
                std::fs::write(&tmp, crate::image::bmap::make(&part)?).at(&tmp)?;
                std::fs::rename(&tmp, image.with_extension("img.bmap")).at(&image)?;
            }
            std::fs::rename(&part, &image).at(&image)?;
            image.clone()
        } else {
            std::fs::remove_file(&part).at(&part)?;
            zst
        };
        Ok(Built {
            node: plan.node.clone(),
            sha256: base::sha256_file(&primary, false)?,
            image: primary,
            disk_id: if gpt { old_id } else { new_id },
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn fs_time(fs: &Ext4) -> i64 {
    fs.stat("/").map(|s| s.mtime.secs).unwrap_or(0)
}

/// Rewrites a text file of the root in place, keeping its mode and owner.
fn replace_in(fs: &mut Ext4, path: &str, from: &str, to: &str) -> Result<()> {
    if !fs.exists(path)? {
        return Ok(());
    }
    let st = fs.stat(path)?;
    let text = String::from_utf8_lossy(&fs.read(path)?).replace(from, to);
    fs.write_file(path, text.as_bytes(), &Meta::new(st.mode, st.uid, st.gid))
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(d, _)| if d.is_empty() { "/" } else { d })
        .unwrap_or("/")
}

fn apply_root(fs: &mut Ext4, node: &Node, report: &Report, time: i64) -> Result<()> {
    let plan = node.plan;
    let dir = Meta::new(0o755, 0, 0);
    for d in &plan.dirs {
        fs.mkdir_p(&d.path, &Meta::new(d.mode, d.uid, d.gid))?;
    }
    for f in &plan.files {
        fs.mkdir_p(parent(&f.path), &dir)?;
        fs.write_file(&f.path, &f.content, &Meta::new(f.mode, f.uid, f.gid))?;
    }
    for l in &plan.symlinks {
        fs.mkdir_p(parent(&l.path), &dir)?;
        fs.symlink(&l.path, &l.target, &Meta::new(0o777, 0, 0))?;
    }
    for b in &plan.blocks {
        managed_block(fs, &b.path, &b.content)?;
    }
    users::apply(fs, &plan.user, time.div_euclid(86_400), node.cluster_key)?;
    hostkeys::bake(fs, node.keys)?;
    fs.mkdir_p("/etc/ssh", &dir)?;
    fs.write_file(
        "/etc/ssh/ssh_known_hosts",
        node.known_hosts.as_bytes(),
        &Meta::new(0o644, 0, 0),
    )?;
    locale(fs, plan)?;
    if report.network.also.iter().any(|a| a == "cloud-init") {
        // Trixie: keep cloud-init from replacing the baked network, hostname and keys.
        fs.mkdir_p("/etc/cloud/cloud.cfg.d", &dir)?;
        fs.write_file(
            "/etc/cloud/cloud.cfg.d/99-pibake.cfg",
            b"# Written by pibake: the image was configured offline.\nnetwork: {config: disabled}\npreserve_hostname: true\nmanage_etc_hosts: false\nssh_deletekeys: false\n",
            &Meta::new(0o644, 0, 0),
        )?;
    }
    let mut deferred = Vec::new();
    for u in &plan.services.enable {
        if !systemd::enable(fs, u)? {
            deferred.push(u.clone());
        }
    }
    for u in &plan.services.disable {
        systemd::disable(fs, u)?;
    }
    for u in &plan.services.mask {
        systemd::mask(fs, u)?;
    }
    if !deferred.is_empty() {
        if !plan
            .files
            .iter()
            .any(|f| f.path == crate::plan::render::FIRSTBOOT_SCRIPT)
        {
            return Err(Error::invalid(format!(
                "node {}: unit(s) {} are not in the image and no first-boot package brings them",
                plan.node,
                deferred.join(", ")
            ))
            .with_hint("add the package that ships them to the profile's `packages:`"));
        }
        fs.mkdir_p(parent(ENABLE_AFTER_INSTALL), &dir)?;
        fs.write_file(
            ENABLE_AFTER_INSTALL,
            format!("{}\n", deferred.join("\n")).as_bytes(),
            &Meta::new(0o644, 0, 0),
        )?;
    }
    Ok(())
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
    fs.write_file(path, kept.as_bytes(), &meta)
}

/// Timezone, locale and keyboard, as raspi-config leaves them.
fn locale(fs: &mut Ext4, plan: &Plan) -> Result<()> {
    let file = Meta::new(0o644, 0, 0);
    if let Some(tz) = &plan.locale.timezone {
        fs.write_file("/etc/timezone", format!("{tz}\n").as_bytes(), &file)?;
        if fs.stat("/etc/localtime").is_ok() {
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
fn apply_boot(region: Region, plan: &Plan, ids: Option<(&String, &String)>) -> Result<()> {
    let mut fat = Fat::open(region)?;
    let boot = BootFiles::read(&fat)?;
    let (config, mut cmdline) = boot.edited(plan)?;
    if let Some((old, new)) = ids {
        cmdline = cmdline.replace(&format!("PARTUUID={old}-"), &format!("PARTUUID={new}-"));
    }
    fat.write("/config.txt", config.as_bytes())?;
    fat.write("/cmdline.txt", cmdline.as_bytes())?;
    fat.close()
}

/// The boot partition's files a plan edits, and the overlays it may name.
pub struct BootFiles {
    pub config: String,
    pub cmdline: String,
    pub overlays: Vec<String>,
}

impl BootFiles {
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
        let edit = |e: Error| Error::invalid(format!("node {}: config.txt: {e}", plan.node));
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
