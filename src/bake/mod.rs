//! `pibake build`: each node's plan applied to the base image, written out as files.
//!
//! The base is read, never written. Each node's plan is applied to an overlay of the
//! cached raw base (its writes kept in memory as pages, see `image::region`); the node's
//! files (raw, compressed, bmap) are then made from the base plus those pages, under
//! temporary names, and renamed when all of them are complete. What the image does by
//! itself on first boot is described in the README ("What a built node does on first
//! boot").

mod apply;
pub mod hostkeys;
mod imager;
mod lock;
mod outputs;
pub mod preflight;
mod progress;
pub mod software;
pub mod systemd;
mod under;
pub mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use apply::BootFiles;

use crate::error::{Error, IoContext, Result};
use crate::exports;
use crate::inspect::{Report, inspect};
use crate::inventory::Inventory;
use crate::kinds::{Kind, Secret};
use crate::packages::{self, cache::Store};
use crate::plan::room::Room;
use crate::plan::{Plan, plans};
use pibake_image::base::{self, CacheOptions};
use pibake_image::chunks::{Layer, NodeImage};
use pibake_image::codec::Codec;
use pibake_image::digest::Sha256;
use pibake_image::partition::DiskId;
use pibake_image::region::Region;
use under::{Bases, Under};

/// Releases whose first-boot mechanics pibake knows (see the reference notes).
const RELEASES: &[&str] = &["bullseye", "bookworm", "trixie"];
/// Memory the build may use, whatever the node count: jobs are capped to stay under it.
const MEMORY_BUDGET: u64 = 512 << 20;

/// How `build` runs and what it writes; the command line's flags, and what the tests set.
pub struct Options {
    /// The output directory: each node's image files, `manifest.json`, `known_hosts`
    /// and `ssh_config`.
    pub out: PathBuf,
    /// Per-node host keys live here (`<cluster dir>/.pibake/state` by default).
    pub state: PathBuf,
    /// Where the decoded base and the fetched packages are cached (`--cache-dir`).
    pub cache: CacheOptions,
    /// Timestamp for everything the build writes: `SOURCE_DATE_EPOCH`, else the base
    /// root filesystem's last write time (so rebuilds are byte-identical).
    pub time: Option<i64>,
    /// Nodes built at once; 0 means one per core.
    pub jobs: usize,
    /// Write `<node>.img.bmap` beside each raw image.
    pub bmap: bool,
    /// What to write per node: raw `.img`, `.img.zst`, `.img.xz`, in any combination.
    pub formats: Vec<OutputFormat>,
    /// Also record each file's plain sha256 in the manifest, and the raw image's in
    /// `pibake.rpi-imager-manifest` (reads every file in full).
    pub sha256: bool,
    /// Progress bars on stderr (drawn only when it is a terminal).
    pub progress: bool,
    /// Build even with credentials everyone knows (the examples' key, a hash of
    /// "raspberry"): for throw-away test clusters only.
    pub allow_example_credentials: bool,
    /// How role packages are resolved and fetched (`--offline`, `--update-packages`).
    pub packages: packages::Settings,
}

/// An output format of `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum OutputFormat {
    /// A raw, sparse `.img` (a reflink clone of the base where the filesystem can)
    Raw,
    /// `.img.zst` made from the base's zstd frames, recompressing only changed chunks
    Zst,
    /// `.img.xz` made from the base's xz streams, recompressing only changed chunks
    Xz,
}

impl OutputFormat {
    fn codec(self) -> Option<Codec> {
        match self {
            OutputFormat::Raw => None,
            OutputFormat::Zst => Some(Codec::Zstd),
            OutputFormat::Xz => Some(Codec::Xz),
        }
    }
}

/// One built node.
#[derive(Debug, serde::Serialize)]
pub struct Built {
    /// The node's name.
    pub node: String,
    /// The first of its files (the raw image when one was asked for).
    pub image: PathBuf,
    /// Every file written for the node: the raw image first when asked for, then the
    /// compressed ones, the `.bmap` last.
    pub files: Vec<PathBuf>,
    #[serde(skip)]
    sha256: Vec<Option<Sha256>>,
    /// The image's own disk identifier: an MBR signature derived from cluster and node,
    /// or the base's GPT GUID; `root=PARTUUID=` and fstab name it.
    #[serde(serialize_with = "as_text")]
    pub disk_id: DiskId,
    /// The raw image's size in bytes, whatever the format.
    pub size: u64,
    /// The raw image's digest over per-4 MiB sums (see `image::chunks`), whatever the
    /// format, as 64 hex digits; `pibake verify --manifest` checks a card against it.
    pub sha256_4m: Sha256,
    /// Bytes of the image the plan wrote (whole 4 KiB pages).
    pub bytes_changed: u64,
    /// The plain digests Raspberry Pi Imager's manifest records (with `--sha256`).
    #[serde(skip)]
    imager: Option<imager::Digests>,
}

/// A value as its `Display` text, the way manifests and `--json` show disk identifiers.
fn as_text<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Asks running builds to stop: hashing or decoding the base stops at its next read, no
/// further node starts, and nodes in progress remove their temporary files instead of
/// renaming them. Safe to call from a signal handler. The flag is the image layer's, so
/// its long reads see it too.
pub fn interrupt() {
    base::interrupt();
}

fn interrupted() -> bool {
    base::interrupted()
}

/// The base image as a local file, once the credentials are known not to be everyone's:
/// a path, or a URL or catalog entry downloaded (or found) in the cache first.
fn base_to_build_from(inv: &Inventory, opts: &Options, cache_dir: &Path) -> Result<PathBuf> {
    if let Some(why) = inv.credentials.known()
        && !opts.allow_example_credentials
    {
        return Err(inv
            .source
            .error_at("admin", &format!("refusing to build with known credentials: {why}"))
            .with_hint("put your own public key in `ssh_keys` (and a hash of your own password, or `locked: true`); `--allow-example-credentials` builds anyway, for throw-away test clusters"));
    }
    let fetch = crate::basefetch::Fetch {
        cache_dir,
        offline: opts.packages.offline,
        progress: opts.cache.progress,
    };
    let Some(base_path) = crate::basefetch::local_base(inv, &fetch)? else {
        return Err(inv
            .source
            .error_at("cluster", "no `base:` image to build from"));
    };
    if !base_path.exists() {
        return Err(inv
            .source
            .error_at(
                "base",
                &format!("the base image {} does not exist", base_path.display()),
            )
            .with_hint("download a Raspberry Pi OS image there, or let pibake fetch one: `base: { catalog: NAME }` with a name `pibake images` lists, or `base: { url: URL, sha256: DIGEST }`; `pibake demo` makes a small test base"));
    }
    Ok(base_path)
}

/// Builds the named nodes (all when empty) into `opts.out`.
pub fn build(inv: &Inventory, nodes: &[String], opts: &Options) -> Result<Vec<Built>> {
    let cache_dir = opts.cache.dir()?;
    let base_path = base_to_build_from(inv, opts, &cache_dir)?;
    // Hashing and decoding a base take minutes: Ctrl-C stops them with an error, which
    // is the interruption, whatever the read it broke says.
    let stopped = |e: pibake_image::Error| match interrupted() {
        true => Error::Interrupted,
        false => e.into(),
    };
    let base = base::prepare(&base_path, &opts.cache).map_err(stopped)?;
    let base_sha = base.source_sha256().map_err(stopped)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = inspect(&base.raw)?;
    check_release(&report, &base_path)?;
    let mut all = plans(inv, nodes, report.network.active)?;
    preflight::check(inv, &all, &base.raw)?;
    let resolved = packages::resolve(inv, &base.raw, &cache_dir, &opts.packages, true)?;
    if resolved.base_changed {
        eprintln!("pibake: {}", packages::BASE_CHANGED);
    }
    resolved.fetch(inv, &cache_dir, &opts.packages)?;
    resolved.attach(&mut all);
    let room = Room::measure(inv, &all, &base.raw)?;
    let store = Store::new(&cache_dir);
    // Held until the build returns: no other build writes these directories meanwhile.
    let _locks = (
        lock::lock(
            &opts.state,
            "state directory",
            "wait for that build to finish: builds of one cluster share its state directory (the nodes' host keys and secrets), so they run one at a time",
        )?,
        lock::lock(
            &opts.out,
            "output directory",
            "wait for that build to finish, or build into another `--out`",
        )?,
    );
    let bases = Bases::prepare(&base.raw, &base_sha, room, &cache_dir, opts, cores)?;
    for p in &all {
        for f in bases.for_role(&p.role).out.files(&p.node) {
            // Left by an earlier build that was killed: never a final name, safe to drop.
            let _ = std::fs::remove_file(outputs::part_name(&f));
        }
    }
    check_space(&bases, &all, opts)?;
    let layers = role_layers(&all, &bases, &store, opts)?;
    let per_job = bases
        .all()
        .map(|u| u.out.memory_per_job())
        .max()
        .unwrap_or(1);
    let jobs = match opts.jobs {
        0 => cores,
        n => n,
    }
    .min((MEMORY_BUDGET / per_job) as usize)
    .clamp(1, all.len().max(1));

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
    // Each kind's secret, made once into the state directory.
    let mut secrets = Vec::new();
    for kind in inv.kinds.all() {
        if let Some(s) = kind.secret(&opts.state)? {
            secrets.push((kind, s));
        }
    }
    let bars = progress::Bars::new(opts.progress, all.len(), jobs);
    // Each worker takes the next node; results come back in plan order, whatever the
    // timing, and a node whose worker panicked is reported by name, never dropped.
    let results = pibake_image::pool::run(all.len(), jobs, |w, i| {
        let plan = &all[i];
        if interrupted() {
            return Err(Error::Interrupted);
        }
        let node = Node {
            plan,
            keys: &keys[&plan.node],
            known_hosts: &known_hosts,
            cluster_key: cluster_key.as_ref(),
            secrets: &secrets,
        };
        let layer = layers.get(plan.role.as_str());
        let r = build_node(
            inv,
            &node,
            (bases.for_role(&plan.role), layer),
            &report,
            opts,
            &|stage| bars.stage(w, &plan.node, stage),
        );
        bars.done(w, &plan.node, r.is_ok());
        r
    });
    bars.finish();
    let mut built = Vec::new();
    let mut failed = Vec::new();
    for (plan, r) in all.iter().zip(results) {
        let r = r.unwrap_or_else(|lost| {
            Err(Error::WorkerLost {
                node: plan.node.clone(),
                message: lost.message,
            })
        });
        match r {
            Ok(b) => built.push(b),
            Err(e) => failed.push(format!("{}: {e}", plan.node)),
        }
    }
    if interrupted() {
        return Err(Error::Interrupted);
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
    imager::write(inv, &all, &built, report.os.arch.as_deref(), opts)?;
    Ok(built)
}

/// Refuses to start when the output directory's filesystem cannot hold every node's
/// files (counting the space that files being replaced will give back).
fn check_space(bases: &Bases, all: &[Plan], opts: &Options) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut per_node = 0;
    let mut nodes = 0;
    for p in all {
        let under = bases.for_role(&p.role);
        per_node = per_node.max(under.out.bytes_per_node(&under.raw)?);
        nodes += under.out.bytes_per_node(&under.raw)?;
    }
    // A node's packages are data of its own in each of its files (`.deb`s do not
    // compress), on top of what a plan otherwise changes.
    let packages: u64 = all.iter().map(Plan::layer_bytes).sum();
    // Each role with packages also has its layer beside the outputs while the build runs.
    let layers = all
        .iter()
        .filter(|p| p.has_layer())
        .map(|p| p.role.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    let need = nodes + per_node * layers + packages * opts.formats.len() as u64;
    let replaced: u64 = all
        .iter()
        .flat_map(|p| bases.for_role(&p.role).out.files(&p.node))
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.blocks() * 512)
        .sum();
    let free = outputs::free_space(&opts.out)? + replaced;
    if need <= free {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(Error::invalid(format!(
        "{}: {} node(s) need about {:.2} GiB ({:.2} GiB each) and its filesystem has {:.2} GiB free",
        opts.out.display(),
        all.len(),
        gib(need),
        gib(per_node),
        gib(free)
    ))
    .with_hint(
        "free some space, build fewer nodes at a time (--node), write compressed images (--format zst), or build onto a filesystem with reflinks (btrfs, XFS), where raw images share the base's blocks",
    ))
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

/// What the admin's own machine uses next to the images: `known_hosts` and `ssh_config`,
/// the Ansible inventory (`inventory.yml`, `group_vars/`) and the MPI hostfile.
fn write_client_files(inv: &Inventory, known_hosts: &str, opts: &Options) -> Result<()> {
    let out = opts.out.canonicalize().at(&opts.out)?;
    let kh = out.join("known_hosts");
    write_output(&kh, known_hosts)?;
    write_output(
        &out.join("ssh_config"),
        &exports::ssh_config(inv, &out, &kh)?,
    )?;
    write_output(
        &out.join("inventory.yml"),
        &exports::ansible_inventory(inv)?,
    )?;
    let vars = out.join("group_vars");
    std::fs::create_dir_all(&vars).at(&vars)?;
    for (name, text) in exports::group_vars(inv)? {
        write_output(&vars.join(name), &text)?;
    }
    write_output(&out.join("hostfile"), &exports::mpi_hostfile(inv))
}

/// Writes a file of the output directory through a temporary name, so that whatever is
/// under the final name is complete.
fn write_output(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// `manifest.json` in the output directory: what was built from what, reproducibly (no
/// times, no paths outside the output directory but the base's name).
fn write_manifest(
    inv: &Inventory,
    plans: &[Plan],
    built: &[Built],
    (base, base_sha): (&Path, &Sha256),
    keys: &BTreeMap<String, Vec<hostkeys::HostKey>>,
    opts: &Options,
) -> Result<()> {
    let by_node: BTreeMap<&str, &Built> = built.iter().map(|b| (b.node.as_str(), b)).collect();
    let nodes: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| {
            let b = by_node.get(p.node.as_str()).ok_or_else(|| Error::WorkerLost {
                node: p.node.clone(),
                message: "no image was recorded for it".into(),
            })?;
            let files = b
                .files
                .iter()
                .zip(&b.sha256)
                .map(|(path, sha)| {
                    let size = std::fs::metadata(path).at(path)?.len();
                    let mut f = serde_json::json!({ "file": path.file_name().map(|n| n.to_string_lossy().into_owned()), "size": size });
                    if let Some(sha) = sha {
                        f["sha256"] = sha.to_string().into();
                    }
                    Ok(f)
                })
                .collect::<Result<Vec<_>>>()?;
            let image = serde_json::json!({ "size": b.size, "sha256_4m": b.sha256_4m });
            let fingerprints: Vec<serde_json::Value> = keys[&p.node]
                .iter()
                .map(|k| {
                    let fp = ssh_key::PublicKey::from_openssh(&k.public).map(|pk| pk.fingerprint(ssh_key::HashAlg::Sha256).to_string()).unwrap_or_default();
                    serde_json::json!({ "type": k.kind, "fingerprint": fp })
                })
                .collect();
            Ok(serde_json::json!({
                "node": p.node, "role": p.role, "disk_id": b.disk_id.to_string(), "image": image, "files": files,
                "host_keys": fingerprints,
                "packages": p.packages,
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
    write_output(&path, &format!("{text}\n"))
}

/// What one node's image gets besides its plan: its host keys, the cluster's
/// known_hosts, and the admin's cluster key pair when nodes trust each other.
struct Node<'a> {
    plan: &'a Plan,
    keys: &'a [hostkeys::HostKey],
    known_hosts: &'a str,
    cluster_key: Option<&'a (String, String)>,
    /// The secrets of the kinds of cluster the nodes form (k3s's token, munge's key).
    secrets: &'a [(&'a dyn Kind, Secret)],
}

/// Each role's packages written once over the base, as the layer its nodes are built
/// over (see `chunks::Layer`): 151 nodes of a role then share one copy of the work of
/// unpacking, hashing and compressing its packages, and on a filesystem with reflinks
/// one copy of their blocks.
fn role_layers<'p>(
    all: &'p [Plan],
    bases: &Bases,
    store: &Store,
    opts: &Options,
) -> Result<BTreeMap<&'p str, Layer>> {
    let mut layers = BTreeMap::new();
    for p in all.iter().filter(|p| p.has_layer()) {
        if layers.contains_key(p.role.as_str()) {
            continue;
        }
        let under = bases.for_role(&p.role);
        let (whole, overlay) = Region::overlay(&under.raw)?;
        if let Some(sw) = apply::role_layer(&whole, p, store, opts.time)? {
            eprintln!("pibake: role {}: {}", p.role, sw.summary());
        }
        drop(whole);
        let layer = Layer::make(
            &under.raw,
            &under.out.index,
            overlay.take_pages(),
            &under.out.codecs(),
            &under.out.layer_path(&p.role),
        )?;
        layers.insert(p.role.as_str(), layer);
    }
    Ok(layers)
}

fn build_node(
    inv: &Inventory,
    node: &Node,
    (under, layer): (&Under, Option<&Layer>),
    report: &Report,
    opts: &Options,
    stage: &dyn Fn(&'static str),
) -> Result<Built> {
    stage("applying the plan");
    let (whole, overlay) = Region::overlay(layer.map_or(&under.raw, |l| &l.raw))?;
    let disk_id = apply::apply(inv, node, &whole, report, opts.time)?;
    drop(whole);
    let image = NodeImage {
        base: &under.raw,
        index: &under.out.index,
        layer,
        pages: overlay.take_pages(),
    };
    stage("writing files");
    let w = under.out.write(&node.plan.node, &image)?;
    // A full read of the image per node: only when asked for (`--sha256`).
    let imager = match opts.sha256 {
        true => Some(imager::Digests::of(&image, &w)?),
        false => None,
    };
    Ok(Built {
        node: node.plan.node.clone(),
        image: w.files[0].clone(),
        files: w.files,
        sha256: w.sha256,
        disk_id,
        size: w.size,
        sha256_4m: w.digest,
        bytes_changed: w.bytes_written,
        imager,
    })
}
