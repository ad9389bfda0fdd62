//! `pibake.rpi-imager-manifest`: every built node as a custom OS entry of Raspberry Pi
//! Imager, in its repository format (`doc/json-schema/os-list-schema.json` in Imager's
//! source), so a card is written from Imager's own list: double-click the file, or
//! App Options > Content Repository > Use custom file, or `rpi-imager --repo FILE`.
//!
//! Imager checks what it writes against `extract_sha256`, the plain sha256 of the whole
//! decompressed image, and on a mismatch aborts without writing the card's first MiB. The
//! build's own image digest (`sha256_4m`, over 4 MiB chunk sums) is not that, so each
//! node's worker hashes its raw image once, from the base (or its role's layer) with the
//! node's pages on top, while those pages are still in memory: a full read of the image
//! per node (about 2 s for a Lite-sized image, where the rest of the node's build takes
//! a tenth of that), so it is written with `--sha256`, which reads every file in full
//! anyway. A build without it drops its nodes' old entries, which no longer describe
//! their images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest;

use super::{Built, Options, outputs::Written};
use crate::error::{Error, IoContext, Result};
use crate::inventory::Inventory;
use crate::plan::Plan;
use pibake_image::CHUNK;
use pibake_image::chunks::{NodeImage, read_chunk};
use pibake_image::digest::Sha256;
use pibake_image::region::PAGE;

/// The manifest's name in the output directory. Imager's desktop integration opens files
/// ending in `.rpi-imager-manifest` by double-click.
pub const FILE: &str = "pibake.rpi-imager-manifest";

/// What a node's entry records about its files, worked out on the node's worker.
#[derive(Debug, Clone)]
pub struct Digests {
    /// The plain sha256 of the whole raw image (`extract_sha256`).
    raw: Sha256,
    /// The file Imager is pointed at: the `.img.xz`, else the `.img.zst`, else the `.img`.
    download: PathBuf,
    /// Its plain sha256 (`image_download_sha256`).
    download_sha256: Sha256,
}

impl Digests {
    /// The digests of a node's files just written: the raw image's from `image` (or from
    /// `--sha256`'s hash of the raw file), the download's from that file.
    pub fn of(image: &NodeImage, w: &Written) -> Result<Digests> {
        let find = |suffix: &str| {
            w.files
                .iter()
                .position(|f| f.to_string_lossy().ends_with(suffix))
        };
        let known = |i: usize| w.sha256.get(i).copied().flatten();
        let raw = match find(".img").and_then(known) {
            Some(d) => d,
            None => raw_sha256(image)?,
        };
        // xz first: every Imager release reads it; zstd only since 1.7. A raw image
        // needs no decompressing but is the most bytes to read off the build disk.
        let at = [".img.xz", ".img.zst", ".img"]
            .iter()
            .find_map(|s| find(s))
            .ok_or_else(|| Error::invalid("a build wrote no image file for a node"))?;
        let download = w.files[at].clone();
        let download_sha256 = match (download.to_string_lossy().ends_with(".img"), known(at)) {
            (true, _) => raw,
            (false, Some(d)) => d,
            (false, None) => pibake_image::base::sha256_file(&download, false)?,
        };
        Ok(Digests {
            raw,
            download,
            download_sha256,
        })
    }
}

/// The plain sha256 of a node's raw image, chunk by chunk: the base (or layer) as read,
/// the node's own pages copied over it. Stops at Ctrl-C.
fn raw_sha256(image: &NodeImage) -> Result<Sha256> {
    let under = image.layer.map_or(image.base, |l| l.raw.as_path());
    let file = std::fs::File::open(under).at(under)?;
    let len = image.index.len;
    let per_chunk = CHUNK / PAGE;
    let mut h = sha2::Sha256::new();
    for i in 0..len.div_ceil(CHUNK) {
        if super::interrupted() {
            return Err(Error::Interrupted);
        }
        let mut buf = read_chunk(&file, under, len, i as usize)?;
        let first = i * per_chunk;
        for (&p, page) in image.pages.range(first..first + per_chunk) {
            let at = ((p - first) * PAGE) as usize;
            let n = page.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&page[..n]);
        }
        h.update(&buf);
    }
    Ok(Sha256::from_hasher(h))
}

/// One OS entry, the fields `anyOf[0]` of Imager's schema requires and the optional ones
/// that apply.
#[derive(Serialize)]
struct Entry {
    name: String,
    description: String,
    /// Required by the schema; empty is accepted (Imager shows no icon) and needs no
    /// file or network beside the manifest.
    icon: &'static str,
    url: String,
    extract_size: u64,
    extract_sha256: Sha256,
    image_download_size: u64,
    image_download_sha256: Sha256,
    release_date: String,
    /// `none`: Imager offers no OS customisation, which would write its own hostname,
    /// user and keys over the ones the node was built with.
    init_format: &'static str,
    devices: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    architecture: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bmap_url: Option<String>,
}

/// The top level: the entries alone. The optional `imager` object is for Imager's own
/// catalogue (an update prompt, a default OS, the device list); without it Imager shows
/// every entry whatever device is chosen.
#[derive(Serialize)]
struct Manifest {
    os_list: Vec<serde_json::Value>,
}

/// Imager's architecture name and device tags for an image of `arch` (the base's, from
/// `/bin/sh`). The tags are those Raspberry Pi's own catalogue gives Raspberry Pi OS
/// (Imager matches them against the device chosen: `pi5-64bit` on a Pi 5, ...); the Zero
/// 2 W and Pi 400 share the Pi 3's and Pi 4's tags, the Zero the Pi 1's. An unknown
/// architecture gets no tags, and no filter hides it.
fn machine(arch: Option<&str>) -> (Option<&'static str>, &'static [&'static str]) {
    match arch {
        Some("arm64") => (Some("armv8"), &["pi5-64bit", "pi4-64bit", "pi3-64bit"]),
        Some("armhf") => (
            Some("armhf"),
            &[
                "pi5-32bit",
                "pi4-32bit",
                "pi3-32bit",
                "pi2-32bit",
                "pi1-32bit",
            ],
        ),
        _ => (None, &[]),
    }
}

/// Writes the manifest into the output directory (through a temporary name). A partial
/// build (`--node`) keeps the entries of the inventory's other nodes from an earlier one.
pub fn write(
    inv: &Inventory,
    plans: &[Plan],
    built: &[Built],
    arch: Option<&str>,
    opts: &Options,
) -> Result<()> {
    let out = opts.out.canonicalize().at(&opts.out)?;
    let (architecture, devices) = machine(arch);
    let release_date = date(opts.time.unwrap_or_else(now));
    let by_node: BTreeMap<&str, &Built> = built.iter().map(|b| (b.node.as_str(), b)).collect();
    let mut entries = BTreeMap::new();
    for p in plans {
        let Some(b) = by_node.get(p.node.as_str()) else {
            continue;
        };
        let Some(d) = &b.imager else {
            continue;
        };
        let download = out.join(d.download.file_name().unwrap_or_default());
        let bmap = b
            .files
            .iter()
            .find(|f| f.to_string_lossy().ends_with(".img.bmap"));
        let entry = Entry {
            name: name(&p.node),
            description: description(inv, p),
            icon: "",
            url: file_uri(&download),
            extract_size: b.size,
            extract_sha256: d.raw,
            image_download_size: std::fs::metadata(&download).at(&download)?.len(),
            image_download_sha256: d.download_sha256,
            release_date: release_date.clone(),
            init_format: "none",
            devices,
            architecture,
            bmap_url: bmap.map(|f| file_uri(&out.join(f.file_name().unwrap_or_default()))),
        };
        let value =
            serde_json::to_value(entry).map_err(|e| Error::invalid(format!("{FILE}: {e}")))?;
        entries.insert(p.node.clone(), value);
    }
    let path = out.join(FILE);
    let mut os_list = Vec::new();
    for n in &inv.nodes {
        let rebuilt = by_node.contains_key(n.name.as_str());
        let entry = match entries.remove(&n.name) {
            Some(e) => Some(e),
            None if rebuilt => None,
            None => earlier(&path, &n.name),
        };
        os_list.extend(entry);
    }
    if os_list.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        };
    }
    let text = serde_json::to_string_pretty(&Manifest { os_list })
        .map_err(|e| Error::invalid(format!("{FILE}: {e}")))?;
    super::write_output(&path, &format!("{text}\n"))
}

/// The entry's name in Imager's list.
fn name(node: &str) -> String {
    format!("pibake: {node}")
}

/// `NODE`'s entry in the manifest an earlier build left at `path`, if any.
fn earlier(path: &Path, node: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    let old: serde_json::Value = serde_json::from_str(&text).ok()?;
    let want = name(node);
    old["os_list"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == want.as_str())
        .cloned()
}

/// What Imager shows under the name: cluster, role, addresses, and that the image is
/// written as built.
fn description(inv: &Inventory, p: &Plan) -> String {
    let addresses: Vec<String> = p
        .addresses
        .iter()
        .map(|(net, a)| format!("{net} {a}"))
        .collect();
    let mut s = format!("Cluster {}, role {}", inv.file.cluster, p.role);
    if p.spare {
        s.push_str(" (spare)");
    }
    if !addresses.is_empty() {
        s.push_str(&format!(", {}", addresses.join(", ")));
    }
    s.push_str(". Built by pibake with its own hostname, users and keys: write it as is.");
    s
}

/// A `file://` URI of an absolute path: every byte but RFC 3986's unreserved characters
/// and `/` percent-encoded, as Python's `pathlib.Path.as_uri` (which Imager's
/// `create_local_json.py` uses) does.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                s.push(b as char)
            }
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn date(unix: i64) -> String {
    let (year, month, day) = crate::values::civil_from_days(unix.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000), "2023-11-14");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(-86_400), "1969-12-31");
    }

    #[test]
    fn file_uris_encode_what_a_path_may_hold() {
        assert_eq!(
            file_uri(Path::new("/home/me/my images/n1.img.xz")),
            "file:///home/me/my%20images/n1.img.xz"
        );
        assert_eq!(file_uri(Path::new("/a/#?%é")), "file:///a/%23%3F%25%C3%A9");
    }
}
