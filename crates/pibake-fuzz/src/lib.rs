//! Fuzz harnesses for every pibake parser that reads bytes it did not write: partition
//! tables, the FAT boot partition, the ext4 root, `config.txt` and `cmdline.txt`, the
//! cluster inventory, `pibake.lock`, bmap files, compressed base images, apt's network
//! data, and `.deb` packages.
//!
//! One function per target, `NAME(data: &[u8])`. Each feeds the bytes to the real parser
//! and then walks everything the parsed result offers, so damage that parsing lets
//! through is met too. Any `Err` is a fine answer; a panic, an arithmetic overflow, a
//! loop that does not end or an allocation out of proportion to the input is a finding.
//! Where a parser documents a property (a file renders back byte for byte, an edit is
//! idempotent, versions are totally ordered), the harness asserts it, so a broken
//! promise is a finding too.
//!
//! The functions are driven by libFuzzer from `fuzz/` at the repository root (nightly,
//! `cargo +nightly fuzz run TARGET`), and `tests/replay.rs` replays the committed corpora
//! in `fuzz/corpus/TARGET/` as ordinary tests on stable.

#![warn(missing_docs)]

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use pibake::bootcfg::{Cmdline, ConfigTxt, Section};
use pibake::fs::fat::Fat;
use pibake::inventory::Inventory;
use pibake::packages::lock::Lock;
use pibake_apt::relation::{self, PackageRequest};
use pibake_apt::release::{self, Compression, IndexEntry};
use pibake_apt::{AptConfig, Keyring, Release, VerifyOptions, Version, control};
use pibake_ext4::{Ext4, Kind, Meta};
use pibake_image::base;
use pibake_image::bmap;
use pibake_image::partition::{Content, Layout};
use pibake_image::region::Region;

/// Most directory entries a walk visits, so a directory that (through damage) contains
/// itself costs a bounded time: the parsers must not loop, the harness must not either.
const WALK_BUDGET: usize = 2000;

/// Deepest directory a walk descends into.
const WALK_DEPTH: usize = 16;

/// Names of one ext4 directory a walk looks up, spread over the whole listing.
const PER_DIR: usize = 32;

/// Output a decoder may produce before the harness calls it a bomb.
const DECODE_LIMIT: u64 = 16 << 20;

thread_local! {
    /// An unlinked scratch file per thread, rewritten for every input: the image layer
    /// reads through [`Region`], which is backed by a file.
    static SCRATCH: Arc<File> = Arc::new(tempfile::tempfile().expect("a scratch file"));

    /// A scratch directory per thread, for the parsers that read files by path.
    static SCRATCH_DIR: tempfile::TempDir = {
        let dir = tempfile::tempdir().expect("a scratch directory");
        std::fs::create_dir(dir.path().join("profiles")).expect("profiles/ made");
        dir
    };
}

/// `rel` in this thread's scratch directory.
fn scratch(rel: &str) -> PathBuf {
    SCRATCH_DIR.with(|dir| dir.path().join(rel))
}

/// `data` as the whole of an image file.
fn image_of(data: &[u8]) -> Region {
    SCRATCH.with(|file| {
        file.set_len(0).expect("scratch file truncates");
        file.write_all_at(data, 0)
            .expect("scratch file takes the input");
        Region::new(file.clone(), "fuzz.img", 0, data.len() as u64)
    })
}

/// Partition tables (`pibake_image::partition::Layout::read`): MBR through `mbrman`, and
/// GPT behind a protective MBR through `gpt`, then the bounds and overlap checks and the
/// probe of each partition's first bytes for a FAT boot sector or an ext4 superblock.
/// Every base image goes through this before anything else reads it, and a table that
/// passes decides where every later write lands, so the harness also asserts what
/// `Layout::read` promises: each partition lies inside the file, none overlap, and the
/// boot and root partitions are a FAT one and an ext4 one.
pub fn partition(data: &[u8]) {
    let image = image_of(data);
    let Ok(layout) = Layout::read(&image) else {
        return;
    };
    let _ = (layout.table.name(), layout.disk_id.to_string());
    for (i, p) in layout.partitions.iter().enumerate() {
        assert!(
            image.sub(p.start, p.size).is_ok(),
            "partition {} outside the image",
            p.number
        );
        for q in &layout.partitions[i + 1..] {
            assert!(
                p.start + p.size <= q.start || q.start + q.size <= p.start,
                "partitions {} and {} overlap",
                p.number,
                q.number
            );
        }
        let _ = (p.content.name(), p.label.as_deref(), p.type_id.as_str());
    }
    assert_eq!(layout.boot().content, Content::Fat);
    assert_eq!(layout.root().content, Content::Ext4);
}

/// The FAT boot partition (`pibake::fs::fat::Fat`, over `fatfs` plus pibake's own raw
/// directory repair): opens `data` as a partition, lists every directory and reads every
/// file, parses `config.txt` and `cmdline.txt` when present, then makes the edits a bake
/// makes (a new directory, which goes through the raw FAT walk of `fix_new_dir`, a new
/// file, a removal) and closes the filesystem. The boot partition comes from a
/// downloaded image, so a damaged or hostile one must give errors, not hang or panic.
pub fn fat(data: &[u8]) {
    let Ok(mut fat) = Fat::open(image_of(data)) else {
        return;
    };
    let mut budget = WALK_BUDGET;
    let mut todo = vec![(String::new(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        let Ok(entries) = fat.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let path = format!("{dir}/{}", e.name);
            let _ = fat.exists(&path);
            if e.is_dir {
                if depth < WALK_DEPTH {
                    todo.push((path, depth + 1));
                }
            } else {
                let _ = fat.read(&path);
            }
        }
    }
    if let Ok(bytes) = fat.read("config.txt") {
        config_txt(&bytes);
    }
    if let Ok(bytes) = fat.read("cmdline.txt") {
        cmdline(&bytes);
    }
    let _ = fat.mkdir_p("overlays/pibake-fuzz/deeper");
    let _ = fat.write(
        "overlays/pibake-fuzz/deeper/new.dtbo",
        b"written by the fuzzer",
    );
    let _ = fat.write("ssh", b"");
    let _ = fat.remove("cmdline.txt");
    let _ = fat.close();
}

/// The ext4 images the `ext4` target patches, decompressed once: with `metadata_csum`
/// as Raspberry Pi OS makes them, and without (see `seed/make-ext4-seed.sh`).
fn ext4_seed(checksummed: bool) -> &'static [u8] {
    static WITH: OnceLock<Vec<u8>> = OnceLock::new();
    static WITHOUT: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, packed): (_, &[u8]) = if checksummed {
        (&WITH, include_bytes!("../seed/ext4.img.zst"))
    } else {
        (&WITHOUT, include_bytes!("../seed/ext4-nocsum.img.zst"))
    };
    cell.get_or_init(|| zstd::decode_all(packed).expect("the seed decodes"))
}

/// The ext4 reader and editor (`pibake_ext4::Ext4`): superblock, group descriptors and
/// bitmaps, inodes, extent trees, linear and hash-indexed directories, symlinks.
///
/// Raw images are too large for libFuzzer to mutate into anything mkfs-shaped, so the
/// input patches a small real image instead. Its first byte picks the image: odd, the
/// one with `metadata_csum`; even, the one without, where a patch is not simply caught
/// by a checksum and reaches the structure it damages. The rest is a list of patches:
/// an offset (`u32` little-endian, taken modulo the image length), a length byte and that
/// many bytes, cut at the image's end. The patched image is opened read-only and walked
/// whole: every directory listed, and up to 32 names of each (spread over the listing)
/// stat'ed, looked up (names in `/big` go through its htree) and, for files and
/// symlinks, read; a name that is not there is looked up too. When the walk gets through, the image
/// is opened again for writing and given a file in the indexed directory, a new
/// directory, a symlink, a removal and a chmod, then committed: writes follow pointers
/// the image supplied.
pub fn ext4(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let mut image = ext4_seed(pick & 1 == 1).to_vec();
    let len = image.len();
    while let [a, b, c, d, n, tail @ ..] = rest {
        let at = u32::from_le_bytes([*a, *b, *c, *d]) as usize % len;
        let n = usize::from(*n).min(tail.len()).min(len - at);
        image[at..at + n].copy_from_slice(&tail[..n]);
        rest = &tail[n..];
    }
    let Ok(fs) = Ext4::open(image.clone()) else {
        return;
    };
    let _ = (fs.block_size(), fs.free_blocks());
    if walk_ext4(&fs).is_none() {
        return;
    }
    let Ok(mut fs) = Ext4::open_rw(image) else {
        return;
    };
    let _ = fs.write_file("/big/pibake-fuzz", b"new\n", &Meta::new(0o644, 0, 0));
    let _ = fs.mkdir_p("/tree/a/new/dir", &Meta::new(0o755, 0, 0));
    let _ = fs.symlink("/etc/link", "../big/f007", &Meta::new(0o777, 0, 0));
    let _ = fs.remove("/big/f100");
    let _ = fs.chmod("/etc/hostname", 0o600);
    let _ = fs.commit();
}

/// Lists, stats and reads everything under `/`; `None` when the root cannot be read.
fn walk_ext4(fs: &Ext4) -> Option<()> {
    fs.read_dir("/").ok()?;
    let mut budget = WALK_BUDGET;
    let mut seen = HashSet::new();
    let mut todo = vec![("/".to_string(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        let _ = fs.exists(&format!("{dir}/pibake-fuzz-absent"));
        // Every name of a big directory costs a lookup from the root; a sample spread
        // over the listing still reaches every leaf of an htree, at a fraction of it.
        let step = entries.len().div_ceil(PER_DIR).max(1);
        for e in entries.into_iter().step_by(step) {
            if budget == 0 {
                return Some(());
            }
            budget -= 1;
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
            let Ok(stat) = fs.stat(&path) else {
                continue;
            };
            match stat.kind {
                Kind::Dir if depth < WALK_DEPTH && seen.insert(stat.ino) => {
                    todo.push((path, depth + 1));
                }
                Kind::File | Kind::Symlink => {
                    let _ = fs.read(&path);
                    let _ = fs.exists(&path);
                }
                _ => {}
            }
        }
    }
    Some(())
}

/// `config.txt` (`pibake::bootcfg::ConfigTxt`), the firmware's configuration as read
/// from a base image. Asserts what the model promises: parsing never fails and renders
/// back byte for byte; after `set`, `get` answers the value set; and the edits a bake
/// makes are idempotent (applying them to the rendered result changes nothing). Every
/// section the file names is queried and edited, not only `[all]`; removals run too.
pub fn config_txt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ConfigTxt::parse(text);
    assert_eq!(parsed.render(), text, "config.txt does not render back");
    let entries = parsed.all_entries();
    let mut sections = vec![Section::ALL];
    for e in &entries {
        if let Ok(s) = Section::new(&e.section)
            && !sections.contains(&s)
            && sections.len() < 4
        {
            sections.push(s);
        }
    }
    for s in &sections {
        let _ = parsed.overlays(s);
        for e in entries.iter().take(16) {
            let _ = parsed.get(s, &e.key);
        }
    }
    let keys: Vec<&str> = entries
        .iter()
        .map(|e| e.key.as_str())
        .filter(|k| !matches!(*k, "gpu_mem" | "dtoverlay" | "dtparam"))
        .take(4)
        .collect();
    // The edits a bake makes (`bake::apply`): set, overlay, dtparam, line.
    let bake = |cfg: &mut ConfigTxt| {
        for s in &sections {
            if cfg.set(s, "gpu_mem", "16").is_ok() {
                assert_eq!(cfg.get(s, "gpu_mem"), Some("16"), "set then get in [{s}]");
            }
            for key in &keys {
                let _ = cfg.set(s, key, "1");
            }
            let dwc2 = [("dr_mode".to_string(), Some("peripheral".to_string()))];
            let _ = cfg.add_overlay(s, "dwc2", &dwc2);
            let _ = cfg.set_dtparam(s, "i2c_arm", "on");
            let _ = cfg.add_line(s, "include extra.txt");
        }
    };
    let mut once = parsed.clone();
    bake(&mut once);
    let once = once.render();
    let mut twice = ConfigTxt::parse(&once);
    bake(&mut twice);
    assert_eq!(twice.render(), once, "config.txt edits are not idempotent");
    // Removals are not part of a bake; they only have to keep the file parseable.
    let mut removed = twice;
    for s in &sections {
        let _ = removed.remove_dtparam(s, "audio");
        let _ = removed.remove_overlay(s, "vc4-kms-v3d");
        let _ = removed.unset(s, "camera_auto_detect");
    }
    let _ = ConfigTxt::parse(&removed.render()).all_entries();
}

/// `cmdline.txt` (`pibake::bootcfg::Cmdline`), the kernel command line as read from a
/// base image. Asserts that what `render` writes parses back to the same parameters,
/// and that the edits a bake makes (removals, settings and flags, also on the names the
/// file itself uses) are idempotent.
pub fn cmdline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = Cmdline::parse(text) else {
        return;
    };
    let rendered = parsed.render();
    let again = Cmdline::parse(&rendered).expect("a rendered cmdline.txt parses");
    assert_eq!(again, parsed, "cmdline.txt does not parse back as rendered");
    let names: Vec<String> = parsed
        .tokens()
        .iter()
        .take(4)
        .map(|t| t.split_once('=').map_or(t.as_str(), |(n, _)| n).to_string())
        .collect();
    for n in &names {
        let _ = parsed.get(n);
    }
    // The edits a bake makes (`bake::apply`): removals, then settings and flags.
    let bake = |c: &mut Cmdline| {
        c.remove("splash");
        let _ = c.set("console", "serial0,115200");
        let _ = c.add_flag("quiet");
        let _ = c.add_flag("modules-load=dwc2,g_ether");
        for n in &names {
            let _ = c.set(n, "1");
        }
    };
    let mut once = parsed.clone();
    bake(&mut once);
    let once = once.render();
    let mut twice = Cmdline::parse(&once).expect("an edited cmdline.txt parses");
    bake(&mut twice);
    assert_eq!(twice.render(), once, "cmdline.txt edits are not idempotent");
}

/// Rewrites the scratch cluster directory: `cluster.yaml`, and `profiles/fuzz.yaml`
/// when `profile` is given; returns the cluster file's path.
fn cluster_dir(cluster: &str, profile: Option<&str>) -> PathBuf {
    let path = scratch("cluster.yaml");
    std::fs::write(&path, cluster).expect("cluster.yaml written");
    let local = scratch("profiles/fuzz.yaml");
    match profile {
        Some(p) => std::fs::write(&local, p).expect("profile written"),
        None => {
            let _ = std::fs::remove_file(&local);
        }
    }
    path
}

/// The cluster inventory (`pibake::inventory::Inventory::load`): `cluster.yaml` and the
/// role profiles it uses, YAML through `serde_norway` and `yaml-rust2`, then every check
/// loading makes (hostnames and ranges, subnets and addresses, MACs, credentials,
/// `extends` chains). The input is the cluster file, optionally followed by a NUL and a
/// profile that the cluster can use as `profile: fuzz`; it is written to a scratch
/// directory because loading reads files. Inventories are user input, often copied from
/// elsewhere: a bad one must be an error with a position. The loaded inventory is then
/// walked: every node selected by name and by role, every profile's networks.
pub fn inventory(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cluster, profile) = match text.split_once('\0') {
        Some((c, p)) => (c, Some(p)),
        None => (text, None),
    };
    let Ok(inv) = Inventory::load(&cluster_dir(cluster, profile)) else {
        return;
    };
    let _ = (inv.domain(), inv.credentials.known(), inv.warnings.len());
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    assert_eq!(
        inv.select(&names).map(|s| s.len()).ok(),
        Some(names.len()),
        "every node selects by its name"
    );
    for (role, profile) in &inv.profiles {
        let _ = inv.select(&[format!("role:{role}")]);
        for net in profile.networks() {
            let _ = profile.interface_error(&net, "fuzz");
        }
        let _ = profile.source();
    }
    let _ = inv.select(&["pibake-fuzz-absent".to_string()]);
}

/// `pibake.lock` (`pibake::packages::lock::Lock::read`): a file people commit, merge and
/// sometimes edit by hand, whose every entry names a download and its digest. A lock
/// that reads must write back as text that reads as the same lock (the record a build
/// checks the role's requests against is the one it wrote).
pub fn lock(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = scratch("pibake.lock");
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let Ok(lock) = Lock::read(&path) else {
        return;
    };
    let written = lock.to_text().expect("a lock that reads writes");
    std::fs::write(&path, &written).expect("scratch file");
    let again = Lock::read(&path).expect("a written lock reads");
    assert_eq!(again, lock, "the lock changed through its own text");
}

/// bmap files (`pibake_image::bmap::parse` and `bmap::verify`), which `flash` reads
/// beside an image, possibly one made by other tools. The ranges parsed are checked
/// against a small scratch image, so the arithmetic between the bmap's block numbers and
/// the image's real size runs too.
pub fn bmap(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ranges) = bmap::parse(text, Path::new("fuzz.bmap")) {
        for (r, sum) in &ranges {
            let _ = (r.start, r.end, sum.to_string());
        }
    }
    let (img, map) = (scratch("fuzz.img"), scratch("fuzz.bmap"));
    std::fs::write(&img, [0u8; 8192]).expect("scratch image written");
    std::fs::write(&map, text).expect("scratch bmap written");
    let _ = bmap::verify(&img, &map);
}

/// Base image decoders (`pibake_image::base::decode_bytes`, the in-memory twin of the
/// cache's decode): format sniffing, then xz (multi-threaded liblzma, concatenated
/// streams), zstd (concatenated frames), gzip (multiple members) or zip (exactly one
/// `.img`), with the checks for trailing data. Downloads are the least trusted input
/// pibake has; output is capped at 16 MiB, so a decompression bomb is an error, not a
/// memory blow-up.
pub fn decoders(data: &[u8]) {
    if let Ok((format, out)) = base::decode_bytes(data, Path::new("fuzz.img.xz"), DECODE_LIMIT) {
        assert!(
            out.len() as u64 <= DECODE_LIMIT,
            "{} output over the limit",
            format.name()
        );
    }
}

/// apt's network data (`pibake_apt`): deb822 paragraphs, `Packages` and dpkg `status`,
/// `Release` (with its dates and `SHA256` list, and the index decompression it leads
/// to), clearsigned `InRelease` (verified against no key: the cleartext and signature
/// parsing still run), keyrings, `sources.list` and `.sources`, `apt.conf`, versions,
/// relations, `Provides` and package requests. All of it arrives from mirrors or from
/// the image, and pibake reads it before any signature has been checked or trusted.
/// Versions found in the input are compared pairwise and in triples: the order must be
/// total (antisymmetric, transitive) and agree with equality; relations render back to
/// text that parses to the same relations.
pub fn apt(data: &[u8]) {
    let _ = Keyring::from_bytes(data);
    let opts = VerifyOptions {
        now: 1_700_000_000,
        check_valid_until: true,
    };
    let _ = pibake_apt::verify_inrelease(data, &[], &opts);
    for compression in [Compression::Xz, Compression::Gz, Compression::None] {
        let entry = IndexEntry {
            path: "main/binary-arm64/Packages".to_string(),
            size: data.len() as u64,
            sha256: [0; 32],
            compression,
        };
        let _ = pibake_apt::check_index(&entry, data);
        if data.len() <= 4096 {
            let _ = pibake_apt::decompress_index(&entry, data);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(paragraphs) = control::parse(text) {
        for p in &paragraphs {
            let _ = p.to_string();
            for f in &p.fields {
                let _ = (p.get(f.name), p.line_of(f.name), f.lines().count());
            }
        }
    }
    for packages in [
        pibake_apt::parse_packages(text),
        pibake_apt::parse_status(text),
    ]
    .into_iter()
    .flatten()
    {
        for p in &packages {
            for r in p.depends.iter().chain(&p.pre_depends).chain(&p.recommends) {
                relation_round_trip(r);
            }
            let _ = (
                p.version.epoch(),
                p.version.upstream(),
                p.version.revision(),
            );
        }
    }
    if let Ok(r) = Release::parse(text) {
        for entry in &r.files {
            let _ = entry.by_hash_path();
        }
        let _ = r.index_for("main", "arm64");
    }
    for name in ["fuzz.list", "fuzz.sources"] {
        for s in pibake_apt::parse_sources(name, text).into_iter().flatten() {
            let _ = (
                s.serves_arch("arm64"),
                s.dist_url("InRelease"),
                s.uri.scheme(),
            );
            if let Some(pibake_apt::sources::SignedBy::Inline(key)) = &s.signed_by {
                let _ = Keyring::from_bytes(key);
            }
        }
    }
    let _ = AptConfig::from_files([("fuzz.conf", text)]);
    for line in text.lines().take(64) {
        let _ = release::parse_date(line);
        if let Ok(rels) = relation::parse_relations(line) {
            for r in &rels {
                relation_round_trip(r);
            }
            let _ = relation::reduce(&rels, "arm64", &["nocheck"]);
        }
        let _ = relation::parse_provides(line);
    }
    let words = text.split(|c: char| c.is_whitespace() || ",()|<>[]".contains(c));
    let mut versions = Vec::new();
    for w in words.filter(|w| !w.is_empty()).take(64) {
        if let Ok(req) = w.parse::<PackageRequest>() {
            let again: PackageRequest = req.to_string().parse().expect("a request renders back");
            assert_eq!(again, req, "package request round trip");
        }
        if let Ok(v) = Version::parse(w) {
            assert_eq!(v.to_string(), w);
            versions.push(v);
        }
    }
    versions_are_ordered(&versions);
}

/// A relation renders to text that parses back to the same relation.
fn relation_round_trip(r: &pibake_apt::Relation) {
    let text = r.to_string();
    let again = relation::parse_relations(&text).expect("a rendered relation parses");
    assert_eq!(
        again.as_slice(),
        std::slice::from_ref(r),
        "relation round trip: {text}"
    );
}

/// Version order is total: antisymmetric, consistent with `==`, and transitive.
fn versions_are_ordered(vs: &[Version]) {
    for a in vs {
        for b in vs {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} vs {b}");
            assert_eq!(a == b, a.cmp(b).is_eq(), "{a} vs {b}");
        }
    }
    for a in vs.iter().take(16) {
        for b in vs.iter().take(16) {
            for c in vs.iter().take(16) {
                if a <= b && b <= c {
                    assert!(a <= c, "{a} <= {b} <= {c}, but not {a} <= {c}");
                }
            }
        }
    }
}

/// A `.deb` (`pibake_deb`): the ar container, the control archive (every member, the
/// `control` file parsed by `pibake_apt::parse_control`) and the data archive, each
/// entry's content read to its end, whatever the compression. Packages come from
/// mirrors and caches, and pibake writes what they hold into images.
pub fn deb(data: &[u8]) {
    let Ok(deb) = pibake_deb::Deb::parse("fuzz.deb", data) else {
        return;
    };
    if let Ok(members) = deb.control() {
        for m in members.iter().filter(|m| m.name == "control") {
            if let Ok(text) = std::str::from_utf8(&m.data) {
                let _ = pibake_apt::parse_control(text);
            }
        }
    }
    let _ = deb.each_data_entry(|e, r| -> Result<(), pibake_deb::DebError> {
        assert!(!e.path.as_str().split('/').any(|c| c == ".."), "{}", e.path);
        let _ = std::io::copy(r, &mut std::io::sink());
        Ok(())
    });
}
