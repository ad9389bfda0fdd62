//! `pibake init DIR`: a starter cluster from the shipped profiles.

use std::path::PathBuf;

use pibake::error::{Error, IoContext, Result};
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
    std::fs::write(&cluster, STARTER).at(&cluster)?;
    outln!(
        "Wrote {} and profiles/base.yaml, head.yaml, worker.yaml.",
        cluster.display()
    );
    outln!(
        "Next: put your SSH key and a password hash under `admin:`, then `pibake validate {}`.",
        cluster.display()
    );
    Ok(())
}
