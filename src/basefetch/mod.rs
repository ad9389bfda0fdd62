//! The base image as a local file: `base:`'s path as it is, or a download into the
//! cache, from a URL or from the OS catalog ([`catalog`]).
//!
//! A download is kept once per digest, as `CACHE/bases/SHA256/FILE` (FILE the last
//! segment of the URL). It is written to `FILE.part`, resumed from where it stopped
//! (HTTP `Range`, through [`Fetcher::get_to`]) by a later attempt or run, and renamed to
//! its final name only once its sha256 is the one asked for: a file under the final name
//! is always a checked one, so a cached base needs no network and no second hashing.
//! Ctrl-C (`pibake_image::base::interrupt`) stops a download within a fraction of a
//! second; its `.part` stays, to be resumed.

pub mod catalog;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::inventory::Inventory;
use crate::inventory::baseref::{BaseRef, HttpUrl};
use crate::packages::fetch::Fetcher;
use pibake_image::Sha256;
use pibake_image::base::{interrupted, sha256_file};

/// The largest download of a base whose size nobody announced.
const MAX_BASE: u64 = 64 << 30;

/// Attempts at one download in one run while each brings more bytes (a connection
/// cut halfway is resumed at once).
const ATTEMPTS: usize = 5;

/// How the base is obtained: where the cache is, whether the network may be used.
#[derive(Debug, Clone, Copy)]
pub struct Fetch<'a> {
    /// pibake's cache directory (`--cache-dir`).
    pub cache_dir: &'a Path,
    /// `--offline`: the cache alone; a base not in it is an error saying what to run.
    pub offline: bool,
    /// A progress bar while downloading and hashing.
    pub progress: bool,
}

/// A file to download: where from, and the digest (and size, when known) it must have.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Where the file is served.
    pub url: HttpUrl,
    /// Its sha256.
    pub sha256: Sha256,
    /// Its length, when known (a catalog entry's `image_download_size`).
    pub size: Option<u64>,
    /// Who vouches for `sha256`, for a mismatch's message ("cluster.yaml").
    pub by: &'static str,
}

/// The base image of `inv` as a local file, downloaded into the cache first when it is a
/// URL or a catalog entry; `None` when cluster.yaml names no base. Refusals are placed
/// at `base:`'s line.
pub fn local_base(inv: &Inventory, how: &Fetch) -> Result<Option<PathBuf>> {
    let at = |e: Error| e.place(|what| inv.source.error_at("base", what));
    let wanted = match &inv.file.base {
        None => return Ok(None),
        Some(BaseRef::Path(p)) => return Ok(Some(inv.dir.join(p))),
        Some(BaseRef::Url { url, sha256 }) => Wanted {
            url: url.clone(),
            sha256: *sha256,
            size: None,
            by: "cluster.yaml",
        },
        Some(BaseRef::Catalog(name)) => {
            let list = catalog::load(&inv.catalog, how.cache_dir, how.offline)?;
            let entry = list.find(name).map_err(at)?;
            Wanted {
                url: entry.url.clone(),
                sha256: entry.sha256,
                size: entry.size,
                by: "the OS catalog",
            }
        }
    };
    download(&wanted, how).map(Some).map_err(at)
}

/// Where the download of `url` is kept once checked against `sha256`.
pub fn cache_path(url: &HttpUrl, sha256: &Sha256, cache_dir: &Path) -> PathBuf {
    cache_dir
        .join("bases")
        .join(sha256.to_string())
        .join(url.file_name())
}

/// The base as a local file when it is there without any download: a path that exists,
/// or a URL or catalog entry already in the cache.
pub fn present_base(inv: &Inventory, cache_dir: &Path) -> Option<PathBuf> {
    let path = match inv.file.base.as_ref()? {
        BaseRef::Path(p) => inv.dir.join(p),
        BaseRef::Url { url, sha256 } => cache_path(url, sha256, cache_dir),
        BaseRef::Catalog(name) => {
            let list = catalog::cached(&inv.catalog, cache_dir)?.ok()?;
            let e = list.find(name).ok()?;
            cache_path(&e.url, &e.sha256, cache_dir)
        }
    };
    path.is_file().then_some(path)
}

/// What `validate` says of a base it must not download: where it is cached, or why it
/// cannot tell. `None` for a path (validate checks those itself).
pub fn cache_status(inv: &Inventory, cache_dir: &Path) -> Option<String> {
    let (url, sha256) = match inv.file.base.as_ref()? {
        BaseRef::Path(_) => return None,
        BaseRef::Url { url, sha256 } => (url.clone(), *sha256),
        BaseRef::Catalog(name) => match catalog::cached(&inv.catalog, cache_dir) {
            None => {
                return Some(format!(
                    "base `{name}`: the OS catalog {} is not cached yet; `pibake images` reads it",
                    inv.catalog
                ));
            }
            Some(Err(e)) => return Some(format!("base `{name}`: {e}")),
            Some(Ok(list)) => match list.find(name) {
                Ok(e) => (e.url.clone(), e.sha256),
                Err(e) => return Some(format!("base: {e}")),
            },
        },
    };
    let path = cache_path(&url, &sha256, cache_dir);
    Some(match path.is_file() {
        true => format!("base {url}: cached at {}", path.display()),
        false => {
            format!("base {url}: not downloaded yet; `pibake plan` or `pibake build` downloads it")
        }
    })
}

/// `w` as a checked file in the cache: there already (no network), or downloaded now.
/// Refusals of the file itself are unplaced.
pub fn download(w: &Wanted, how: &Fetch) -> Result<PathBuf> {
    let path = cache_path(&w.url, &w.sha256, how.cache_dir);
    if path.is_file() {
        return Ok(path);
    }
    let dir = path.parent().unwrap_or(how.cache_dir);
    if how.offline {
        return Err(Error::unplaced(format!(
            "the base {} is not in the cache ({}), and --offline forbids downloading it",
            w.url,
            dir.display()
        ))
        .with_hint("run the same command once without --offline to download it (or copy the file there under its URL's name)"));
    }
    std::fs::create_dir_all(dir).at(dir)?;
    let part = path.with_file_name(format!("{}.part", w.url.file_name()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&part)
        .at(&part)?;
    // One download per file at a time; a filesystem without locks downloads unlocked.
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        return Err(Error::invalid(format!(
            "{} is being downloaded by another pibake",
            part.display()
        ))
        .with_hint("wait for it to finish, then run this again"));
    }
    // A `.part` as long as the catalog says the file is was complete when its run
    // stopped: only its digest is left to check.
    let file = match w.size == Some(file.metadata().at(&part)?.len()) {
        true => file,
        false => transfer(w, file, how)?,
    };
    let got = sha256_file(&part, how.progress).map_err(|e| match interrupted() {
        true => Error::Interrupted,
        false => e.into(),
    })?;
    if got != w.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::unplaced(format!(
            "the base downloaded from {} has sha256 {got}, but {} expects {}; the download was deleted",
            w.url, w.by, w.sha256
        ))
        .with_hint("check the URL and the sha256 published beside the image: the file at the URL may have been replaced"));
    }
    file.sync_all().at(&part)?;
    std::fs::rename(&part, &path).at(&path)?;
    Ok(path)
}

/// Runs the download on its own thread and waits for it, checking for Ctrl-C between
/// chunks of waiting: the network read itself cannot be interrupted, but the command can
/// stop without it (the `.part` file stays, to be resumed). Returns the file, still
/// locked, once the body is complete.
fn transfer(w: &Wanted, file: File, how: &Fetch) -> Result<File> {
    let bar = bar(how.progress, w.size);
    let (tx, rx) = mpsc::channel();
    let (url, limit, shown) = (w.url.to_string(), w.size.unwrap_or(MAX_BASE), bar.clone());
    std::thread::spawn(move || {
        let mut file = file;
        let result = attempts(&url, &mut file, limit, &shown);
        let _ = tx.send(result.map(|_| file));
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => {
                bar.finish_and_clear();
                return result.map_err(|e| {
                    e.with_hint("check the URL; run the command again and a download cut short resumes where it stopped")
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) if interrupted() => {
                bar.abandon();
                return Err(Error::Interrupted);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::WorkerLost {
                    node: "the base download".into(),
                    message: format!(
                        "the download of {url} stopped without an answer",
                        url = w.url
                    ),
                });
            }
        }
    }
}

/// Downloads `url` into `file` from its current length on, again while each attempt
/// brings more bytes (a connection cut halfway).
fn attempts(url: &str, file: &mut File, limit: u64, bar: &indicatif::ProgressBar) -> Result<u64> {
    let fetcher = Fetcher::new(&BTreeMap::new(), false);
    let length = |f: &File| f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tries = 0;
    loop {
        let offset = length(file);
        bar.set_position(offset);
        match fetcher.get_to(url, file, offset, limit, &|n| bar.inc(n)) {
            Ok(n) => return Ok(n),
            Err(e) => {
                tries += 1;
                if tries >= ATTEMPTS || length(file) <= offset {
                    return Err(e);
                }
            }
        }
    }
}

fn bar(progress: bool, size: Option<u64>) -> indicatif::ProgressBar {
    if !progress {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "{msg:>11} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (
            indicatif::ProgressBar::no_length(),
            "{msg:>11} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("downloading");
    bar
}
