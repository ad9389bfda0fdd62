//! How large each role's root partition is built, and why.
//!
//! A stock Raspberry Pi OS Lite root has a few hundred MiB free before its first-boot
//! growth; a role's software may not fit. The image must hold, before it is flashed,
//! what the build writes (the role's `.deb`s and release files) and what they install
//! to on first boot: that install runs before anything is sure to have grown the root
//! to the card (a card no larger than the image, a netboot root, a growth that failed).
//! So a role whose software and some headroom do not fit the base's free space gets its
//! root grown at build time; a profile or the cluster may also ask for a size
//! (`root_size:`). The image's own first-boot growth then takes it on to the card.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Plan;
use crate::error::Result;
use crate::inventory::Inventory;
use pibake_image::partition::Layout;
use pibake_image::region::Region;

const MIB: u64 = 1 << 20;
/// Free space left over after a role's software: its nodes' own files, logs, the
/// first boot's state.
pub const HEADROOM: u64 = 64 * MIB;
/// A grown root is rounded up to this, so small changes of a role's packages reuse the
/// grown base already in the cache.
const STEP: u64 = 256 * MIB;

/// The base's root partition and what each role's images get.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    /// The base's root partition, in bytes.
    pub base_size: u64,
    /// Free bytes in the base's root filesystem.
    pub base_free: u64,
    /// Per role of the plans.
    pub roles: BTreeMap<String, RoleRoom>,
}

/// One role's root partition.
#[derive(Debug, Clone, Serialize)]
pub struct RoleRoom {
    /// What the role's software takes in the root: the files the build writes plus
    /// what its packages install to.
    pub software: u64,
    /// The size `root_size:` asks for (the profile's, else the cluster's).
    pub asked: Option<u64>,
    /// The root partition the role's images get.
    pub size: u64,
    /// Why that size.
    pub reason: Reason,
}

/// Why a role's root has the size it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The base's own: everything fits.
    Base,
    /// `root_size:` asks for more than the base has.
    Asked,
    /// The software and headroom need more than the base's free space.
    Software,
}

impl RoleRoom {
    /// Whether the role's images are grown.
    pub fn grown(&self) -> bool {
        self.reason != Reason::Base
    }
}

impl Room {
    /// Measures the base's root and sizes each role of `plans`.
    pub fn measure(inv: &Inventory, plans: &[Plan], base_raw: &Path) -> Result<Room> {
        let whole = Region::whole(base_raw, false)?;
        let base_size = Layout::read(&whole)?.root().size;
        let base_free = crate::packages::root_free_bytes(base_raw)?;
        let mut roles = BTreeMap::new();
        for p in plans {
            if roles.contains_key(&p.role) {
                continue;
            }
            let asked = inv
                .profiles
                .get(&p.role)
                .and_then(|prof| prof.def.root_size)
                .or(inv.file.root_size)
                .map(|s| s.0.div_ceil(MIB) * MIB);
            roles.insert(p.role.clone(), size_role(p, asked, base_size, base_free));
        }
        Ok(Room {
            base_size,
            base_free,
            roles,
        })
    }

    /// The role's root partition size.
    pub fn size(&self, role: &str) -> u64 {
        self.roles.get(role).map_or(self.base_size, |r| r.size)
    }
}

/// Bytes a role's software takes in the root: what the build writes and what its
/// packages install to.
pub fn software_bytes(p: &Plan) -> u64 {
    p.layer_bytes() + p.packages.iter().map(|d| d.installed_size).sum::<u64>()
}

fn size_role(p: &Plan, asked: Option<u64>, base_size: u64, base_free: u64) -> RoleRoom {
    let software = software_bytes(p);
    let need = software + HEADROOM;
    // New block groups spend a few percent of what they add on their own metadata
    // (inode tables, bitmaps, backups): grow by a twentieth more, and round up.
    let for_software = (need > base_free).then(|| {
        let more = (need - base_free) + (need - base_free) / 20 + 16 * MIB;
        (base_size + more).div_ceil(STEP) * STEP
    });
    let (size, reason) = match (asked, for_software) {
        (Some(a), Some(s)) if a >= s && a > base_size => (a, Reason::Asked),
        (_, Some(s)) => (s, Reason::Software),
        (Some(a), None) if a > base_size => (a, Reason::Asked),
        _ => (base_size, Reason::Base),
    };
    RoleRoom {
        software,
        asked,
        size,
        reason,
    }
}
