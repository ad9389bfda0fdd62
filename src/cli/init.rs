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
    let line = match &key {
        Some((_, k)) => k.as_str().to_string(),
        None => PLACEHOLDER.to_string(),
    };
    let text: String = STARTER
        .lines()
        .map(|l| match l.trim_start().starts_with("- ssh-ed25519 ") {
            true => format!("    - {line}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&cluster, text).at(&cluster)?;
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
