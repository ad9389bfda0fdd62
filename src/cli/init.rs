//! `pibake init DIR`: a starter cluster from the shipped profiles.

use std::path::PathBuf;

use pibake::error::{Error, IoContext, Result};
use pibake::inventory::credentials::SshKey;
use pibake::inventory::shipped;

/// Write a starter cluster (cluster.yaml and editable copies of the profiles it uses)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the new cluster (created if missing)
    pub dir: PathBuf,
}

const STARTER: &str = include_str!("../../examples/desk/cluster.yaml");

pub fn run(args: &Args) -> Result<()> {
    let cluster = args.dir.join("cluster.yaml");
    if cluster.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; pibake init never overwrites",
            cluster.display()
        )));
    }
    let profiles = args.dir.join("profiles");
    std::fs::create_dir_all(&profiles).at(&profiles)?;
    for name in ["base", "head", "worker"] {
        let path = profiles.join(format!("{name}.yaml"));
        if !path.exists() {
            let text = shipped::profile(name).expect("shipped starter profiles");
            std::fs::write(&path, text).at(&path)?;
        }
    }
    // No credentials anyone knows: the user's own public key, or a placeholder that
    // `validate` refuses until it is replaced.
    let key = own_public_key();
    std::fs::write(&cluster, starter(key.as_ref())).at(&cluster)?;
    outln!(
        "Wrote {} and profiles/base.yaml, head.yaml, worker.yaml.",
        cluster.display()
    );
    match key {
        Some((path, _)) => outln!(
            "The admin logs in with your key {} (password login locked).",
            path.display()
        ),
        None => outln!(
            "No ~/.ssh/*.pub found: replace {PLACEHOLDER} under `admin: ssh_keys:` with your public key."
        ),
    }
    outln!("Next: `pibake validate {}`.", cluster.display());
    Ok(())
}

/// The starter cluster with the admin's key line and the comment above it: the user's
/// own key, or the placeholder and what to put there.
fn starter(key: Option<&(PathBuf, SshKey)>) -> String {
    match key {
        Some((path, k)) => with_admin_key(
            STARTER,
            &format!("Key-only login with your key {}.", path.display()),
            k.as_str(),
            None,
        ),
        None => with_admin_key(
            STARTER,
            "Key-only login. Put your own public key in place of the line below\n  # (`pibake validate` refuses it until then).",
            PLACEHOLDER,
            None,
        ),
    }
}

/// A shipped example's cluster.yaml with its placeholder admin key replaced by `key`,
/// the comment about the placeholder by `comment`, and `identity_file:` (ssh_config's
/// private key, relative to the cluster file) added when given: the example's own
/// comment would call any key put there "a placeholder nobody holds".
pub fn with_admin_key(example: &str, comment: &str, key: &str, identity: Option<&str>) -> String {
    let mut out = String::new();
    for l in example.lines() {
        let t = l.trim_start();
        if t.starts_with("# Key-only login") {
            out.push_str(&format!("  # {comment}\n"));
        } else if t.starts_with("# put your own public key there") {
            continue;
        } else if t.starts_with("base:") && example == STARTER {
            out.push_str(STARTER_BASE);
        } else if t.starts_with("- ssh-ed25519 ") {
            out.push_str(&format!("    - {key}\n"));
            if let Some(i) = identity {
                out.push_str(&format!("  identity_file: {i}\n"));
            }
        } else {
            out.push_str(&format!("{l}\n"));
        }
    }
    out
}

/// The starter's base: the example names a file nobody has yet; a new cluster names the
/// image by its catalog entry, downloaded and checked by the first `plan` or `build`.
const STARTER_BASE: &str = "# Raspberry Pi OS Lite from Raspberry Pi's OS catalog, downloaded and checked on the first\n# `pibake plan` or `build` (`pibake images` lists the others). A local image works too:\n# `base: 2025-05-13-raspios-bookworm-arm64-lite.img.xz`, relative to this file.\nbase: { catalog: \"Raspberry Pi OS Lite (64-bit)\" }\n";

/// What `init` writes where no key of the user's was found; not a key, so refused.
const PLACEHOLDER: &str = "REPLACE-WITH-YOUR-SSH-PUBLIC-KEY";

/// `~/.ssh/id_ed25519.pub`, else the first `~/.ssh/*.pub` by name, when it is a key.
fn own_public_key() -> Option<(PathBuf, SshKey)> {
    let ssh = dirs::home_dir()?.join(".ssh");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&ssh)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    candidates.sort_by_key(|p| (!p.ends_with("id_ed25519.pub"), p.clone()));
    candidates.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let key = SshKey::parse(text.lines().next()?).ok()?;
        Some((p, key))
    })
}
