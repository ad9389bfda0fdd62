//! The image's repositories as the resolver reads them: each source's `InRelease`
//! fetched and verified against the keys the image trusts, then its `Packages`
//! indices fetched and checked against the hashes in that verified Release.
//!
//! Verified `InRelease` files are kept in the cache (by URL) and indices by their
//! digest, so `--offline` can resolve again from what an earlier build fetched.

use std::path::{Path, PathBuf};

use pibake_apt::release::VerifiedRelease;
use pibake_apt::{
    Repository, Source, VerifyOptions, check_index, decompress_index, parse_packages,
    verify_inrelease,
};
use pibake_image::digest::Sha256;

use super::cache::Store;
use super::fetch::Fetcher;
use super::image::ImageApt;
use crate::error::{Error, IoContext, Result};

/// Largest `InRelease` accepted (Debian's is about 150 KiB).
const MAX_INRELEASE: u64 = 16 << 20;
/// Largest compressed index accepted (Debian main arm64 is about 9 MiB as xz).
const MAX_INDEX: u64 = 256 << 20;

/// Every source of the image, fetched, verified and parsed, in the image's order.
pub fn repositories(
    apt: &ImageApt,
    fetcher: &Fetcher,
    store: &Store,
    cache_dir: &Path,
) -> Result<Vec<Repository>> {
    let mut repos = Vec::new();
    for source in apt
        .sources
        .iter()
        .filter(|s| s.serves_arch(&apt.native_arch))
    {
        let release = release(apt, source, fetcher, cache_dir)?;
        let mut packages = Vec::new();
        for component in &source.components {
            let Some(entry) = release.release.index_for(component, &apt.native_arch) else {
                continue;
            };
            let sha = Sha256(entry.sha256);
            let bytes = match store.read(&sha, entry.size)? {
                Some(b) => b,
                None => {
                    let path = if release.release.acquire_by_hash {
                        entry.by_hash_path()
                    } else {
                        entry.path.clone()
                    };
                    let url = source.dist_url(&path);
                    let bytes = fetcher.get(&url, MAX_INDEX)?;
                    check_index(&entry, &bytes).map_err(|e| refused(source, &url, &e))?;
                    store.put(&sha, &bytes)?;
                    bytes
                }
            };
            let text = decompress_index(&entry, &bytes).map_err(|e| refused(source, "", &e))?;
            packages.extend(
                parse_packages(&text)
                    .map_err(|e| refused(source, &source.dist_url(&entry.path), &e))?,
            );
        }
        repos.push(Repository {
            id: repository_id(source),
            packages,
        });
    }
    Ok(repos)
}

/// How the resolver and the lock name a source: `URI suite`.
pub fn repository_id(source: &Source) -> String {
    format!("{} {}", source.uri, source.suite)
}

/// The source's Release, verified: fetched fresh unless offline, else the copy an
/// earlier build verified (checked again: the keys are the image's, not the cache's).
fn release(
    apt: &ImageApt,
    source: &Source,
    fetcher: &Fetcher,
    cache_dir: &Path,
) -> Result<VerifiedRelease> {
    let url = source.dist_url("InRelease");
    let kept = kept_path(cache_dir, &url);
    let bytes = if fetcher.offline() {
        std::fs::read(&kept).map_err(|_| {
            Error::invalid(format!(
                "--offline: {url} (from the image's {}:{}) was never fetched into the cache",
                source.file, source.line
            ))
            .with_hint("build once with the network (or an `apt: { mirrors: ... }` mirror) to fill the cache")
        })?
    } else {
        fetcher.get(&url, MAX_INRELEASE)?
    };
    let keyrings = apt.keyrings(source)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let opts = VerifyOptions {
        now,
        // An offline build reuses what was verified when it was fetched; apt would
        // refuse a stale Valid-Until, but there is nothing fresher to be had.
        check_valid_until: source.check_valid_until && !fetcher.offline(),
    };
    let verified =
        verify_inrelease(&bytes, &keyrings, &opts).map_err(|e| refused(source, &url, &e))?;
    if !fetcher.offline() {
        if let Some(dir) = kept.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let tmp = kept.with_extension("part");
        std::fs::write(&tmp, &bytes).at(&tmp)?;
        std::fs::rename(&tmp, &kept).at(&kept)?;
    }
    Ok(verified)
}

/// Where a verified `InRelease` is kept: its URL with every byte that is not a plain
/// name character escaped, as apt names its lists.
fn kept_path(cache_dir: &Path, url: &str) -> PathBuf {
    let name: String = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-.~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache_dir.join("apt").join("lists").join(name)
}

/// A repository's data refused: names the repository, the file and the source line.
fn refused(source: &Source, url: &str, e: &dyn std::fmt::Display) -> Error {
    Error::invalid(format!(
        "repository {} {} (the image's {}:{}){}: {e}",
        source.uri,
        source.suite,
        source.file,
        source.line,
        if url.is_empty() {
            String::new()
        } else {
            format!(", {url}")
        }
    ))
    .with_hint("pibake installs only what the image's own keys sign; check the image's signed-by keyring, or the mirror serving this repository")
}
