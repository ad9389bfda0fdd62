//! What each node's image is built over: the base, or the base with its root grown for
//! roles that need more room (see `plan::room`).
//!
//! A grown base is made once per size into the cache, as pibake makes every change: a
//! clone of the base (a reflink where the filesystem can, else a sparse copy), its file
//! extended, its root partition's entry rewritten and its ext4 grown in-process
//! (`pibake_image::grow`). Its chunk sums and compressed frames are then cached like the
//! base's, so every role and build of that size shares them, and a node's outputs cost
//! what they cost over the plain base.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Options;
use super::outputs::Outputs;
use crate::error::{Error, IoContext, Result};
use crate::packages::lock::size as size_text;
use crate::plan::room::{HEADROOM, Room};
use pibake_image::digest::Sha256;
use pibake_image::sparse::clone_or_copy;

/// One image nodes are built over, with what their outputs are made from.
pub struct Under {
    /// The raw image.
    pub raw: PathBuf,
    /// Its chunk sums and frames.
    pub out: Outputs,
}

/// Every image a build's nodes are built over, by root partition size.
pub struct Bases {
    by_size: BTreeMap<u64, Under>,
    room: Room,
}

impl Bases {
    /// The base, and each grown base the roles of `room` need, made when missing.
    pub fn prepare(
        base_raw: &Path,
        base_sha: &Sha256,
        room: Room,
        cache_dir: &Path,
        opts: &Options,
        jobs: usize,
    ) -> Result<Bases> {
        let mut by_size = BTreeMap::new();
        for r in room.roles.values() {
            if by_size.contains_key(&r.size) {
                continue;
            }
            let (raw, key) = if r.grown() {
                let raw = grown(base_raw, base_sha, r.size, cache_dir)?;
                let key = Sha256::of(format!("{base_sha} root {}", r.size).as_bytes());
                (raw, key)
            } else {
                (base_raw.to_path_buf(), *base_sha)
            };
            let out = Outputs::prepare(&raw, &key, cache_dir, opts, jobs)?;
            by_size.insert(r.size, Under { raw, out });
        }
        let bases = Bases { by_size, room };
        bases.check_fits()?;
        Ok(bases)
    }

    /// What the nodes of `role` are built over.
    pub fn for_role(&self, role: &str) -> &Under {
        // Every role of the plans was sized, and its size prepared.
        &self.by_size[&self.room.size(role)]
    }

    /// Every image nodes are built over.
    pub fn all(&self) -> impl Iterator<Item = &Under> {
        self.by_size.values()
    }

    /// Refuses a role whose software and headroom do not fit its root as built: an
    /// asked size too small for it, or a growth that came out short.
    fn check_fits(&self) -> Result<()> {
        for (role, r) in &self.room.roles {
            let raw = &self.for_role(role).raw;
            let free = crate::packages::root_free_bytes(raw)?;
            if r.software + HEADROOM > free {
                return Err(Error::invalid(format!(
                    "role {role}: its software needs {} in the root (plus {} of headroom) and its root of {} has {} free",
                    size_text(r.software),
                    size_text(HEADROOM),
                    size_text(r.size),
                    size_text(free)
                ))
                .with_hint("set a larger `root_size:` in the role's profile or cluster.yaml, or leave it out so pibake sizes the root itself"));
            }
        }
        Ok(())
    }
}

/// The base grown to a root partition of `size` bytes, from the cache or made now
/// (under a temporary name, renamed when complete).
fn grown(base_raw: &Path, base_sha: &Sha256, size: u64, cache_dir: &Path) -> Result<PathBuf> {
    let path = cache_dir.join(format!("{base_sha}.root-{size}.img"));
    if path.exists() {
        return Ok(path);
    }
    let part = cache_dir.join(format!(
        ".{base_sha}.root-{size}.{}.part",
        std::process::id()
    ));
    let made = clone_or_copy(base_raw, &part)
        .map_err(Error::from)
        .and_then(|()| Ok(pibake_image::grow::grow_image(&part, size)?));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &path).at(&path)?;
    Ok(path)
}
