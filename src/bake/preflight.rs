//! What only the base image can check, asked before anything is written: the boot
//! partition's edits against its own config.txt, cmdline.txt and overlays, each
//! timezone against its tzdata, the admin's name against its accounts. `build` asks
//! first, so a value the image refuses stops it before the first node; `validate` asks
//! whenever the base is there, so such a value fails there too, not only at build.

use std::path::Path;

use super::{BootFiles, apply::check_zone, users};
use crate::error::{Error, Result};
use crate::fs::fat::Fat;
use crate::inventory::Inventory;
use crate::plan::Plan;
use pibake_image::partition::Layout;
use pibake_image::region::Region;

/// Checks every plan against the decoded base image `raw` (read-only).
pub fn check(inv: &Inventory, plans: &[Plan], raw: &Path) -> Result<()> {
    let root = crate::packages::open_root(raw)?;
    users::first_user(&root, &inv.file.admin.name)
        .map_err(|e| e.relocate(|what| inv.source.error_at("admin.name", what)))?;
    let boot = boot_files(raw)?;
    let mut zones_checked = Vec::new();
    for p in plans {
        // At the profile file of the chain that says it.
        let at = |key: &str, e: Error| {
            let profile = &inv.profiles[&p.role];
            let source = profile
                .sources
                .iter()
                .find(|s| s.has(key))
                .unwrap_or(&profile.sources[0]);
            e.relocate(|what| source.error_at(key, what))
        };
        boot.edited(p).map_err(|e| at("config", e))?;
        let Some(tz) = &p.locale.timezone else {
            continue;
        };
        if !zones_checked.contains(&tz.as_str()) {
            check_zone(&root, tz.as_str()).map_err(|e| at("timezone", e))?;
            zones_checked.push(tz.as_str());
        }
    }
    Ok(())
}

/// The base's config.txt, cmdline.txt and overlay names.
pub fn boot_files(raw: &Path) -> Result<BootFiles> {
    let whole = Region::whole(raw, false)?;
    let layout = Layout::read(&whole)?;
    BootFiles::read(&Fat::open(
        whole.sub(layout.boot().start, layout.boot().size)?,
    )?)
}
