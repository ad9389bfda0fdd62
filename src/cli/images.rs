//! `pibake images`: the Raspberry Pi OS images of the OS catalog, by the names
//! `base: { catalog: NAME }` takes.

use crate::cli::Global;
use pibake::basefetch::catalog::{self, CatalogSource, Entry};
use pibake::error::Result;
use pibake::inventory::grammar::shown;
use pibake::packages::lock::size as size_text;

/// List the OS catalog's Raspberry Pi OS images (entries whose name starts with
/// "Raspberry Pi OS"): name, release date, architecture and download size. Categories
/// that only link to another list (third-party images) are not read
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Use the copy of the catalog downloaded last instead of the network
    #[arg(long)]
    pub offline: bool,
}

/// `--catalog`: where catalog names are looked up, for every command that reads them.
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArg {
    /// The OS catalog (Raspberry Pi Imager's JSON list): an http(s) URL, downloaded and
    /// kept in the cache for --offline, or file://PATH or a path [default: Imager's own
    /// list, https://downloads.raspberrypi.com/os_list_imagingutility_v4.json]
    #[arg(long = "catalog", env = "PIBAKE_CATALOG", value_name = "URL", value_parser = CatalogSource::parse)]
    pub catalog: Option<CatalogSource>,
}

impl CatalogArg {
    /// The catalog named, else Imager's.
    pub fn source(&self) -> CatalogSource {
        self.catalog.clone().unwrap_or_default()
    }
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let cache_dir = global.cache_options().dir()?;
    let list = catalog::load(&args.catalog.source(), &cache_dir, args.offline)?;
    let shown_entries: Vec<&Entry> = list
        .entries
        .iter()
        .filter(|e| e.is_raspberry_pi_os())
        .collect();
    if list.skipped_lists > 0 {
        eprintln!(
            "note: {} categories of {} link to other lists (third-party images); they are not read",
            list.skipped_lists, list.from
        );
    }
    if global.json {
        let json: Vec<serde_json::Value> = shown_entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "release_date": e.release_date,
                    "architecture": e.architecture,
                    "download_size": e.size,
                    "url": e.url.as_str(),
                    "sha256": e.sha256,
                    "extract_sha256": e.extract_sha256,
                })
            })
            .collect();
        return crate::cli::print_json(&json);
    }
    let width = shown_entries
        .iter()
        .map(|e| shown(&e.name).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    outln!(
        "{:<width$}  {:<10}  {:<6}  DOWNLOAD",
        "NAME",
        "RELEASED",
        "ARCH"
    );
    for e in &shown_entries {
        outln!(
            "{:<width$}  {:<10}  {:<6}  {}",
            shown(&e.name),
            shown(e.release_date.as_deref().unwrap_or("?")),
            shown(e.architecture.as_deref().unwrap_or("?")),
            e.size.map_or_else(|| "?".to_string(), size_text)
        );
    }
    if shown_entries.is_empty() {
        outln!("(no Raspberry Pi OS image in {})", list.from);
    } else {
        outln!("\nuse one as `base: {{ catalog: \"NAME\" }}` in cluster.yaml");
    }
    Ok(())
}
