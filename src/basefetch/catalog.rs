//! Raspberry Pi's OS catalog: the list Raspberry Pi Imager offers, read so that
//! `base: { catalog: NAME }` and `pibake images` use the same URLs and digests.
//!
//! The list is JSON (`{ "imager": {...}, "os_list": [...] }`); an entry is an OS (`name`,
//! `url`, `image_download_sha256`, `image_download_size`, `extract_sha256`,
//! `release_date`, `architecture`, ...) or a category holding `subitems`, nested to any
//! depth. Categories that only point at another list (`subitems_url`, third-party
//! images) are not followed: pibake reads one file, and Raspberry Pi OS is in it. An
//! entry pibake cannot download and check (no http(s) URL or no sha256, like Imager's
//! "Erase") is left out. A downloaded list is kept in the cache, for `--offline`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::bootcfg::did_you_mean;
use crate::error::{Error, IoContext, Result};
use crate::inventory::baseref::{CatalogName, HttpUrl};
use crate::inventory::grammar::shown;
use crate::packages::fetch::Fetcher;
use pibake_image::Sha256;

/// Raspberry Pi Imager's own OS list (its `OSLIST_URL`).
pub const IMAGER_OS_LIST: &str = "https://downloads.raspberrypi.com/os_list_imagingutility_v4.json";

/// The largest catalog read; Imager's is well under a megabyte.
const CATALOG_LIMIT: u64 = 32 << 20;

/// Nesting deeper than this is not a catalog anyone writes; it is not followed.
const MAX_DEPTH: usize = 16;

/// Where the catalog is read from: a URL (downloaded, a copy kept in the cache) or a
/// local file (`file://PATH` or a plain path), read as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSource {
    /// An http(s) URL.
    Http(HttpUrl),
    /// A file on this machine.
    File(PathBuf),
}

impl Default for CatalogSource {
    fn default() -> CatalogSource {
        CatalogSource::Http(HttpUrl::parse(IMAGER_OS_LIST).expect("Imager's URL is a URL"))
    }
}

impl CatalogSource {
    /// An http(s) URL, `file://PATH`, or a plain path.
    pub fn parse(s: &str) -> std::result::Result<CatalogSource, String> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return HttpUrl::parse(s).map(CatalogSource::Http);
        }
        let path = match s.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("file://") => &s[7..],
            _ if s.contains("://") => {
                return Err(format!(
                    "`{}`: a catalog is an http(s):// URL, a file:// URL or a path",
                    shown(s)
                ));
            }
            _ => s,
        };
        if path.is_empty() {
            return Err("the catalog's path is empty".into());
        }
        Ok(CatalogSource::File(PathBuf::from(path)))
    }
}

impl fmt::Display for CatalogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogSource::Http(u) => write!(f, "{u}"),
            CatalogSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One image of the catalog that pibake can download and check.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name, as the catalog gives it.
    pub name: String,
    /// Where the (compressed) image is downloaded from.
    pub url: HttpUrl,
    /// sha256 of the file at `url`: the download is checked against it.
    pub sha256: Sha256,
    /// Bytes of the file at `url`, when the catalog says.
    pub size: Option<u64>,
    /// sha256 of the decoded image, when the catalog says.
    pub extract_sha256: Option<Sha256>,
    /// The release date, as the catalog writes it (`2024-11-19`).
    pub release_date: Option<String>,
    /// The catalog's `architecture`, else `arm64` or `armhf` when the URL says so.
    pub architecture: Option<String>,
}

impl Entry {
    /// Whether `pibake images` lists it: its name starts with "Raspberry Pi OS".
    pub fn is_raspberry_pi_os(&self) -> bool {
        self.name.starts_with("Raspberry Pi OS")
    }
}

/// The catalog's images, in its order (categories flattened).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Where it was read from, for messages.
    pub from: String,
    /// Every image pibake can download and check.
    pub entries: Vec<Entry>,
    /// Categories that point at another list (`subitems_url`), not followed.
    pub skipped_lists: usize,
}

impl Catalog {
    /// Reads Imager's JSON; `from` names it in errors.
    pub fn parse(text: &[u8], from: &str) -> Result<Catalog> {
        let json: Value = serde_json::from_slice(text)
            .map_err(|e| Error::invalid(format!("the OS catalog {from} is not JSON: {e}")))?;
        let list = json
            .get("os_list")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the OS catalog {from} has no `os_list`: not a Raspberry Pi Imager OS list"
                ))
                .with_hint(format!("the default catalog is {IMAGER_OS_LIST}"))
            })?;
        let mut out = Catalog {
            from: from.to_string(),
            ..Catalog::default()
        };
        out.walk(list, 0);
        Ok(out)
    }

    fn walk(&mut self, items: &[Value], depth: usize) {
        for obj in items.iter().filter_map(Value::as_object) {
            if let Some(sub) = obj.get("subitems").and_then(Value::as_array) {
                if depth < MAX_DEPTH {
                    self.walk(sub, depth + 1);
                }
            } else if obj.contains_key("subitems_url") {
                self.skipped_lists += 1;
            } else if let Some(e) = entry(obj) {
                self.entries.push(e);
            }
        }
    }

    /// The image named `name` (case does not matter). Refusals are unplaced, for the
    /// caller to put at `base:`'s line.
    pub fn find(&self, name: &CatalogName) -> Result<&Entry> {
        let wanted = name.as_str().to_lowercase();
        let hits: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.name.to_lowercase() == wanted)
            .collect();
        match hits.first() {
            Some(first) if hits.iter().all(|e| e.sha256 == first.sha256) => Ok(first),
            Some(_) => Err(Error::unplaced(format!(
                "`{name}` names {} different images in the OS catalog {}",
                hits.len(),
                self.from
            ))
            .with_hint("name the one you mean as `base: { url: URL, sha256: DIGEST }`; `pibake images --json` shows each one's URL and sha256")),
            None => {
                let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
                let hint = match did_you_mean(name.as_str(), &names) {
                    Some(n) => format!(
                        "did you mean `{}`? `pibake images` lists the catalog's Raspberry Pi OS images",
                        shown(&n)
                    ),
                    None => "`pibake images` lists the catalog's Raspberry Pi OS images".into(),
                };
                Err(Error::unplaced(format!(
                    "no image `{name}` in the OS catalog {}",
                    self.from
                ))
                .with_hint(hint))
            }
        }
    }
}

/// An OS entry pibake can use: a name, an http(s) URL and a sha256; `None` otherwise.
fn entry(obj: &Map<String, Value>) -> Option<Entry> {
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    let url = HttpUrl::parse(text("url")?).ok()?;
    let architecture = text("architecture").map(str::to_string).or_else(|| {
        ["arm64", "armhf"]
            .into_iter()
            .find(|a| url.as_str().contains(a))
            .map(str::to_string)
    });
    Some(Entry {
        name: text("name")?.to_string(),
        sha256: text("image_download_sha256")?.parse().ok()?,
        size: obj.get("image_download_size").and_then(Value::as_u64),
        extract_sha256: text("extract_sha256").and_then(|s| s.parse().ok()),
        release_date: text("release_date").map(str::to_string),
        architecture,
        url,
    })
}

/// The catalog from `source`: a local file as it is; a URL downloaded now (its copy in
/// the cache replaced), or with `offline` the copy last downloaded.
pub fn load(source: &CatalogSource, cache_dir: &Path, offline: bool) -> Result<Catalog> {
    let url = match source {
        CatalogSource::File(path) => return read_file(path),
        CatalogSource::Http(url) => url,
    };
    let copy = cached_copy(url, cache_dir);
    if offline {
        return match copy.is_file() {
            true => read_file(&copy),
            false => Err(Error::invalid(format!(
                "the OS catalog {url} is not in the cache ({}), and --offline forbids downloading it",
                copy.display()
            ))
            .with_hint("run `pibake images` once with the network to keep a copy, or point --catalog (PIBAKE_CATALOG) at a local copy of the list")),
        };
    }
    let body = Fetcher::new(&BTreeMap::new(), false)
        .get(url.as_str(), CATALOG_LIMIT)
        .map_err(|e| {
            e.with_hint("check the URL (--catalog, PIBAKE_CATALOG); `--offline` uses the copy downloaded last")
        })?;
    let catalog = Catalog::parse(&body, url.as_str())?;
    let dir = copy.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(dir).at(dir)?;
    let part = copy.with_extension(format!("json.part-{}", std::process::id()));
    std::fs::write(&part, &body).at(&part)?;
    std::fs::rename(&part, &copy).at(&copy)?;
    Ok(catalog)
}

/// The catalog without any download: a local file, or the cached copy of a URL's;
/// `None` when there is no copy.
pub fn cached(source: &CatalogSource, cache_dir: &Path) -> Option<Result<Catalog>> {
    match source {
        CatalogSource::File(path) => Some(read_file(path)),
        CatalogSource::Http(url) => {
            let copy = cached_copy(url, cache_dir);
            copy.is_file().then(|| read_file(&copy))
        }
    }
}

/// Where the copy of the catalog at `url` is kept: one file per URL.
fn cached_copy(url: &HttpUrl, cache_dir: &Path) -> PathBuf {
    let key = Sha256::of(url.as_str().as_bytes()).to_string();
    cache_dir
        .join("catalog")
        .join(format!("{}.json", &key[..16]))
}

fn read_file(path: &Path) -> Result<Catalog> {
    crate::values::input_file(path, false).map_err(|e| e.place(|what| Error::invalid(what)))?;
    let text = std::fs::read(path).at(path)?;
    Catalog::parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{ "imager": {}, "os_list": [
        { "name": "Raspberry Pi OS (64-bit)", "url": "https://h/a_arm64.img.xz",
          "image_download_sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "image_download_size": 1000, "release_date": "2024-11-19" },
        { "name": "Other", "subitems": [
            { "name": "Raspberry Pi OS Lite (32-bit)", "url": "https://h/b_armhf.img.xz",
              "image_download_sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" } ] },
        { "name": "Third party", "subitems_url": "https://h/more.json" },
        { "name": "Erase", "url": "internal://format" } ] }"#;

    #[test]
    fn categories_flatten_and_unusable_entries_are_left_out() {
        let c = Catalog::parse(LIST.as_bytes(), "test").unwrap();
        let names: Vec<&str> = c.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["Raspberry Pi OS (64-bit)", "Raspberry Pi OS Lite (32-bit)"]
        );
        assert_eq!(c.skipped_lists, 1);
        assert_eq!(c.entries[0].architecture.as_deref(), Some("arm64"));
        assert_eq!(c.entries[1].architecture.as_deref(), Some("armhf"));
        let lite = CatalogName::parse("raspberry pi os lite (32-BIT)").unwrap();
        assert_eq!(c.find(&lite).unwrap().size, None);
        let typo = CatalogName::parse("Raspberry Pi OS Lite (32 bit)").unwrap();
        let e = c.find(&typo).unwrap_err().to_string();
        assert!(
            e.contains("did you mean `Raspberry Pi OS Lite (32-bit)`"),
            "{e}"
        );
    }

    #[test]
    fn sources_are_urls_or_paths() {
        assert!(matches!(
            CatalogSource::parse("https://h/x.json"),
            Ok(CatalogSource::Http(_))
        ));
        assert_eq!(
            CatalogSource::parse("file:///tmp/x.json"),
            Ok(CatalogSource::File("/tmp/x.json".into()))
        );
        assert_eq!(
            CatalogSource::parse("list.json"),
            Ok(CatalogSource::File("list.json".into()))
        );
        assert!(CatalogSource::parse("ftp://h/x").is_err());
        assert!(CatalogSource::parse("file://").is_err());
    }
}
