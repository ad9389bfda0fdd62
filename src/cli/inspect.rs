//! `pibake inspect IMAGE`: what an image is, read from the image itself.

use std::path::PathBuf;

use crate::cli::{Global, print_json};
use pibake::error::Result;
use pibake::inspect::{Report, inspect};
use pibake_image::base;

/// Show an image's partitions, release, network stack, boot configuration and first-boot state
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Raspberry Pi OS image (.img, .img.xz, .img.zst, .img.gz or .zip)
    pub image: PathBuf,
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    let base = base::prepare(&args.image, &global.cache_options())?;
    let mut report = inspect(&base.raw)?;
    report.image = args.image.display().to_string();
    if global.json {
        return print_json(&report);
    }
    out!("{}", human(&report));
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn or_unknown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unknown")
}

/// The report as a person reads it: most important first, one fact per line.
pub fn human(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: &str| s.push_str(&format!("{k:<14}{v}\n"));
    line("image", &format!("{} ({})", r.image, mib(r.size)));
    line(
        "os",
        &format!(
            "{} [{}], {}",
            or_unknown(&r.os.pretty_name),
            or_unknown(&r.os.codename),
            or_unknown(&r.os.arch)
        ),
    );
    if let Some(issue) = &r.os.issue {
        line("issue", issue);
    }
    line(
        "disk",
        &format!("{} table, identifier {}", r.table.name(), r.disk_id),
    );
    for p in &r.partitions {
        line(
            &format!("  p{}", p.number),
            &format!(
                "{:<7} {:<8} start {} ({}), size {}, type {}",
                p.content.name(),
                p.label.as_deref().unwrap_or("-"),
                p.start,
                mib(p.start),
                mib(p.size),
                p.type_id
            ),
        );
    }
    line("hostname", or_unknown(&r.hostname));
    line("users", &r.users.join(", "));
    let also = if r.network.also.is_empty() {
        String::new()
    } else {
        format!(" (also: {})", r.network.also.join(", "))
    };
    line("network", &format!("{}{also}", r.network.stack));
    line("boot mount", or_unknown(&r.boot.mount));
    line("cmdline", &r.boot.cmdline);
    line("config.txt", &r.boot.config.join("\n              "));
    let fb = &r.first_boot;
    line(
        "first boot",
        &format!(
            "machine-id {}, trigger {}, ssh {}, {} host key(s)",
            fb.machine_id,
            fb.trigger.as_deref().unwrap_or("none"),
            if fb.ssh_enabled {
                "enabled"
            } else {
                "disabled"
            },
            fb.ssh_host_keys
        ),
    );
    for w in &r.warnings {
        line("warning", w);
    }
    s
}
