//! Per-node SSH host keys: generated once into the cluster's state directory, baked into
//! every build of that node, so a rebuilt node keeps its identity.
//!
//! Keys live at `<state>/<node>/ssh_host_{ed25519,ecdsa}_key` (directory 0700, private
//! keys 0600; private keys are never printed). In the image they go to /etc/ssh/pibake/,
//! outside the `ssh_host_*_key*` glob that every release's first-boot regeneration deletes
//! (bullseye/bookworm `regenerate_ssh_host_keys`, trixie `sshd-keygen` and cloud-init),
//! and a `HostKey` drop-in in /etc/ssh/sshd_config.d/ makes sshd use exactly them.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, EcdsaCurve, LineEnding, PrivateKey};

use crate::error::{Error, IoContext, Result};
use pibake_ext4::{Ext4, Meta};

/// Key types made for every node: ed25519, and ecdsa for older clients.
const KINDS: &[&str] = &["ed25519", "ecdsa"];

fn algorithm(kind: &str) -> Algorithm {
    match kind {
        "ecdsa" => Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
        _ => Algorithm::Ed25519,
    }
}
const IMAGE_DIR: &str = "/etc/ssh/pibake";

/// One host key pair, as OpenSSH files.
pub struct HostKey {
    /// The key type: `ed25519` or `ecdsa`.
    pub kind: &'static str,
    /// The private key, in OpenSSH's PEM-like format.
    pub private: String,
    /// The public key as one `authorized_keys`-style line, without a newline.
    pub public: String,
}

/// The node's keys from the state directory, generating the missing ones.
pub fn ensure(state: &Path, node: &str) -> Result<Vec<HostKey>> {
    let dir = state.join(node);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .at(&dir)?;
    keep_out_of_git(state)?;
    let mut out = Vec::new();
    for &kind in KINDS {
        let (private, public) = key_pair(&dir.join(format!("ssh_host_{kind}_key")), kind)?;
        out.push(HostKey {
            kind,
            private,
            public,
        });
    }
    Ok(out)
}

/// Private keys live in the state directory, and clusters are often kept in git: a
/// `.gitignore` of `*` there keeps them from being committed by accident.
fn keep_out_of_git(state: &Path) -> Result<()> {
    let path = state.join(".gitignore");
    if !path.exists() {
        std::fs::write(
            &path,
            "# Private host and cluster keys: never commit them.\n*\n",
        )
        .at(&path)?;
    }
    Ok(())
}

/// `<state>/_cluster` (0700), for the secrets the whole cluster shares; `_` keeps it
/// apart from node names.
pub(crate) fn cluster_dir(state: &Path) -> Result<PathBuf> {
    let dir = state.join("_cluster");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .at(&dir)?;
    keep_out_of_git(state)?;
    Ok(dir)
}

/// The admin's cluster key pair (`<state>/_cluster/id_ed25519`), for SSH between nodes.
pub fn cluster_user_key(state: &Path) -> Result<(String, String)> {
    key_pair(&cluster_dir(state)?.join("id_ed25519"), "ed25519")
}

/// An OpenSSH key pair kept at `path` (0600) and `path.pub`, made when missing.
pub fn key_pair(path: &Path, kind: &str) -> Result<(String, String)> {
    let private = if path.exists() {
        std::fs::read_to_string(path).at(path)?
    } else {
        let key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, algorithm(kind))
            .map_err(|e| Error::invalid(format!("generating an {kind} key: {e}")))?;
        let text = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| Error::invalid(format!("encoding a key: {e}")))?;
        write_secret(path, text.as_bytes())?;
        text.to_string()
    };
    let key = PrivateKey::from_openssh(&private).map_err(|e| {
        Error::invalid(format!(
            "{}: not an OpenSSH private key ({e})",
            path.display()
        ))
        .with_hint("delete it to have a new one generated (the identity it carries changes)")
    })?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    if !pub_path.exists() {
        std::fs::write(&pub_path, format!("{public}\n")).at(&pub_path)?;
    }
    Ok((private, public))
}

/// Writes a secret file 0600 from the start, through a temporary name.
pub(crate) fn write_secret(path: &Path, data: &[u8]) -> Result<()> {
    let tmp: PathBuf = path.with_extension("part");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .at(&tmp)?;
    f.write_all(data).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Bakes the keys into the image and points sshd at them.
pub fn bake(fs: &mut Ext4, keys: &[HostKey]) -> Result<()> {
    fs.mkdir_p(IMAGE_DIR, &Meta::new(0o755, 0, 0))?;
    let mut conf = String::from("# Written by pibake: this node's persistent host keys.\n");
    for k in keys {
        let path = format!("{IMAGE_DIR}/ssh_host_{}_key", k.kind);
        fs.write_file(&path, k.private.as_bytes(), &Meta::new(0o600, 0, 0))?;
        fs.write_file(
            &format!("{path}.pub"),
            format!("{}\n", k.public).as_bytes(),
            &Meta::new(0o644, 0, 0),
        )?;
        conf.push_str(&format!("HostKey {path}\n"));
    }
    fs.mkdir_p("/etc/ssh/sshd_config.d", &Meta::new(0o755, 0, 0))?;
    Ok(fs.write_file(
        "/etc/ssh/sshd_config.d/10-pibake-hostkeys.conf",
        conf.as_bytes(),
        &Meta::new(0o644, 0, 0),
    )?)
}
