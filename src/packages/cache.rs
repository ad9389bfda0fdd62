//! A content-addressed store of downloaded apt files, shared by every node and cluster.
//!
//! Apt's indices name every file by its sha256, so the cache does too: a file is stored
//! under `<cache>/apt/sha256/<hex>` and nowhere else, whichever mirror, suite or cluster
//! it came from. A name is then a promise about the content, which makes the cache safe
//! to share and to trust offline: a file is only ever renamed to its final name after
//! its size and digest were checked, and a file found there is checked again before it
//! is used (a disk, a user or an earlier bug may have changed it). Downloads go to
//! `<hex>.part` first and resume from it, because a `.deb` can be large and the network
//! a lab's.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pibake_image::digest::Sha256;
use pibake_image::pool;

use super::fetch::Fetcher;
use crate::error::{Error, IoContext, Result};

/// Files are not secret: the same packages anyone can download.
const MODE: u32 = 0o644;

/// How many missing packages an offline error names before it only counts the rest.
const NAMED: usize = 10;

/// One file a build needs, as an apt index describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// What the file is, for messages: `apache2 2.4.62-1~deb12u2 arm64`.
    pub name: String,
    /// Where it is downloaded from, before mirror rules.
    pub url: String,
    /// Its digest, which is also its name in the store.
    pub sha256: Sha256,
    /// Its length in bytes.
    pub size: u64,
}

/// What [`Store::ensure`] downloaded, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Files downloaded (and verified) by this call.
    pub files: usize,
    /// Bytes received over the network, resumed parts and retries included.
    pub bytes: u64,
}

/// The store under one cache directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `cache_dir` (beside the base cache): files in
    /// `cache_dir/apt/sha256/`.
    pub fn new(cache_dir: &Path) -> Store {
        Store {
            dir: cache_dir.join("apt").join("sha256"),
        }
    }

    /// Where the file with digest `sha` is stored (lowercase hex name).
    pub fn path(&self, sha: &Sha256) -> PathBuf {
        self.dir.join(sha.to_string())
    }

    /// Makes every wanted file present and verified. A file already there is checked
    /// (size, then digest) and removed when wrong; a missing one is downloaded into
    /// `<hex>.part`, resuming a shorter part a previous run left, checked, and renamed
    /// to its final name. A digest or size mismatch removes the part and is an error
    /// (after one retry from scratch when the download was resumed, since the stale
    /// prefix may be the culprit). Up to `jobs` downloads run at once; after the first
    /// failure no new one starts. One progress bar over the bytes still to fetch is
    /// drawn when `progress` is true and stderr is a terminal. Offline, any missing
    /// file is an error naming the missing packages.
    pub fn ensure(
        &self,
        wanted: &[Wanted],
        fetcher: &Fetcher,
        jobs: usize,
        progress: bool,
    ) -> Result<Fetched> {
        let mut seen = BTreeSet::new();
        let unique: Vec<&Wanted> = wanted.iter().filter(|w| seen.insert(w.sha256)).collect();
        let checked = pool::run(unique.len(), jobs, |_, i| {
            self.present(
                &self.path(&unique[i].sha256),
                unique[i].size,
                &unique[i].sha256,
            )
        });
        let mut missing = Vec::new();
        for (w, r) in unique.iter().zip(checked) {
            if !r.map_err(|l| lost(w, l))?? {
                missing.push(*w);
            }
        }
        if missing.is_empty() {
            return Ok(Fetched::default());
        }
        if fetcher.offline() {
            return Err(self.offline_error(&missing));
        }
        fs::create_dir_all(&self.dir).at(&self.dir)?;
        let total = missing
            .iter()
            .map(|w| w.size - self.resumable(w).unwrap_or(0))
            .sum();
        let bar = if progress && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("fetching {} files", missing.len()));
        let bytes = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let tick = |n: u64| {
            bytes.fetch_add(n, Ordering::Relaxed);
            bar.inc(n);
        };
        let done = pool::run(missing.len(), jobs, |_, i| {
            if failed.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let r = self.download(missing[i], fetcher, &tick);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            r.map(|()| true)
        });
        bar.finish_and_clear();
        let mut files = 0;
        for (w, r) in missing.iter().zip(done) {
            if r.map_err(|l| lost(w, l))?? {
                files += 1;
            }
        }
        Ok(Fetched {
            files,
            bytes: bytes.into_inner(),
        })
    }

    /// The contents of a present, verified file (for small files such as `Packages`
    /// indices); `None` when it is absent, or was present but corrupt (it is removed).
    pub fn read(&self, sha: &Sha256, size: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path(sha);
        if !self.sized(&path, size)? {
            return Ok(None);
        }
        let bytes = fs::read(&path).at(&path)?;
        if Sha256::of(&bytes) != *sha {
            fs::remove_file(&path).at(&path)?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes`, whose digest `sha` the caller has already verified (written to
    /// `<hex>.part`, then renamed). Returns the file's path.
    pub fn put(&self, sha: &Sha256, bytes: &[u8]) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir).at(&self.dir)?;
        let part = self.part(sha);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(MODE)
            .open(&part)
            .at(&part)?;
        file.write_all(bytes).at(&part)?;
        file.sync_all().at(&part)?;
        drop(file);
        self.finish(&part, sha)
    }

    fn part(&self, sha: &Sha256) -> PathBuf {
        self.dir.join(format!("{sha}.part"))
    }

    /// True when `path` holds exactly `size` bytes with digest `sha`; a wrong file is
    /// removed.
    fn present(&self, path: &Path, size: u64, sha: &Sha256) -> Result<bool> {
        if !self.sized(path, size)? {
            return Ok(false);
        }
        let mut file = File::open(path).at(path)?;
        if digest(&mut file).at(path)? != *sha {
            fs::remove_file(path).at(path)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// True when `path` is a file of `size` bytes; one of another size is removed.
    fn sized(&self, path: &Path, size: u64) -> Result<bool> {
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
            Ok(m) if m.is_file() && m.len() == size => Ok(true),
            Ok(_) => {
                fs::remove_file(path).at(path)?;
                Ok(false)
            }
        }
    }

    /// The bytes of `w` a previous run's part already holds, when it can be resumed.
    fn resumable(&self, w: &Wanted) -> Option<u64> {
        let have = fs::metadata(self.part(&w.sha256)).ok()?.len();
        (have < w.size).then_some(have)
    }

    /// Downloads `w` into its part, verifies it and gives it its final name.
    fn download(&self, w: &Wanted, fetcher: &Fetcher, progress: &dyn Fn(u64)) -> Result<()> {
        let part = self.part(&w.sha256);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(MODE)
            .open(&part)
            .at(&part)?;
        let offset = self.resumable(w).unwrap_or(0);
        let mut mismatch = self.attempt(w, fetcher, &mut file, &part, offset, progress)?;
        if mismatch.is_some() && offset > 0 {
            mismatch = self.attempt(w, fetcher, &mut file, &part, 0, progress)?;
        }
        drop(file);
        if let Some(e) = mismatch {
            fs::remove_file(&part).at(&part)?;
            return Err(e);
        }
        self.finish(&part, &w.sha256).map(drop)
    }

    /// One download of `w` into `file` from byte `offset` on; the mismatch error when
    /// what arrived is not what the index promised.
    fn attempt(
        &self,
        w: &Wanted,
        fetcher: &Fetcher,
        file: &mut File,
        part: &Path,
        offset: u64,
        progress: &dyn Fn(u64),
    ) -> Result<Option<Error>> {
        let len = fetcher.get_to(&w.url, file, offset, w.size, progress)?;
        file.sync_all().at(part)?;
        file.seek(SeekFrom::Start(0)).at(part)?;
        let actual = digest(file).at(part)?;
        if len == w.size && actual == w.sha256 {
            return Ok(None);
        }
        let to = fetcher.url_for(&w.url);
        Ok(Some(Error::Fetch {
            original: (to != w.url).then(|| w.url.clone()),
            url: to,
            message: format!(
                "{}: got {len} bytes with sha256 {actual}, expected {} bytes with sha256 {}",
                w.name, w.size, w.sha256
            ),
            hint: Some(format!(
                "the file served is not the one pibake.lock records: if the lock was edited by hand, restore it (or resolve the package again with `--update-packages={}`); if not, the repository, a mirror or a proxy serves a replaced or damaged copy: try again later, or another mirror",
                w.name.split(' ').next().unwrap_or(&w.name)
            )),
        }))
    }

    /// Gives a verified part its final name, readable by all.
    fn finish(&self, part: &Path, sha: &Sha256) -> Result<PathBuf> {
        fs::set_permissions(part, fs::Permissions::from_mode(MODE)).at(part)?;
        let path = self.path(sha);
        fs::rename(part, &path).at(&path)?;
        Ok(path)
    }

    fn offline_error(&self, missing: &[&Wanted]) -> Error {
        let mut names: Vec<String> = missing.iter().take(NAMED).map(|w| w.name.clone()).collect();
        if missing.len() > NAMED {
            names.push(format!("and {} more", missing.len() - NAMED));
        }
        Error::invalid(format!(
            "--offline, and {} package file{} not in the cache ({}): {}",
            missing.len(),
            if missing.len() == 1 { " is" } else { "s are" },
            self.dir.display(),
            names.join(", ")
        ))
        .with_hint("build once with the network (or a reachable mirror in cluster.yaml: `apt: { mirrors: ... }`) to fill the cache")
    }
}

/// The sha256 of everything `r` yields, read in chunks (never all in memory).
fn digest(r: &mut impl Read) -> std::io::Result<Sha256> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(Sha256::from_hasher(hasher)),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A worker that panicked on `w`: a bug in pibake, reported as such.
fn lost(w: &Wanted, l: pool::Lost) -> Error {
    Error::WorkerLost {
        node: w.name.clone(),
        message: l.message,
    }
}
