//! Overlay trees: `overlays/<name>/` mirrors the root filesystem; files ending in `.hbs`
//! are templates. A tree in the cluster directory wins over a shipped one of that name.
//! Nothing in a tree may point outside the root: no `..` that climbs out, no absolute
//! symlinks (they would resolve on the build host, not in the image).

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use crate::error::{Error, IoContext, Result};
use crate::inventory::shipped;

/// One entry of an overlay tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the tree, `/`-separated, no leading `/` (e.g. `etc/motd.hbs`).
    pub rel: String,
    /// Where it was read from, for messages.
    pub origin: String,
    /// What the entry is, with its content.
    pub kind: EntryKind,
}

/// What an overlay entry is: the three kinds a tree may hold.
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// A regular file (a template when its path ends in `.hbs`).
    File {
        /// The file's bytes, or the template's source.
        content: Vec<u8>,
        /// Whether it is installed with mode 0755 rather than 0644.
        executable: bool,
    },
    /// A directory.
    Dir,
    /// A symlink, with its (relative) target.
    Link(String),
}

/// The entries of overlay `name`, sorted by path.
pub fn load(cluster_dir: &Path, name: &str) -> Result<Vec<Entry>> {
    let dir = cluster_dir.join("overlays").join(name);
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(&dir, &dir, &mut out)?;
    } else {
        let prefix = format!("overlays/{name}/");
        for (path, content) in shipped::OVERLAYS
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
        {
            let rel = path[prefix.len()..].to_string();
            let executable =
                rel.ends_with(".sh") || rel.ends_with(".sh.hbs") || rel.contains("/bin/");
            out.push(Entry {
                rel,
                origin: format!("(shipped) {path}"),
                kind: EntryKind::File {
                    content: content.as_bytes().to_vec(),
                    executable,
                },
            });
        }
        if out.is_empty() {
            return Err(Error::invalid(format!(
                "no overlay `{name}`: {} does not exist and none is shipped under that name",
                dir.display()
            )));
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .at(dir)?
        .collect::<std::io::Result<_>>()
        .at(dir)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .expect("inside root")
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).at(&path)?;
        let origin = path.display().to_string();
        let kind = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).at(&path)?;
            check_link(&path, &rel, &target)?;
            EntryKind::Link(target.to_string_lossy().into_owned())
        } else if meta.is_dir() {
            walk(root, &path, out)?;
            EntryKind::Dir
        } else if meta.is_file() {
            let content = std::fs::read(&path).at(&path)?;
            EntryKind::File {
                content,
                executable: meta.permissions().mode() & 0o111 != 0,
            }
        } else {
            return Err(Error::invalid(format!(
                "{origin}: only files, directories and symlinks belong in an overlay"
            )));
        };
        out.push(Entry { rel, origin, kind });
    }
    Ok(())
}

/// A symlink target must stay inside the image's root, resolved from the link's place.
fn check_link(path: &Path, rel: &str, target: &Path) -> Result<()> {
    if target.is_absolute() {
        return Err(Error::invalid(format!(
            "{}: absolute symlink to {} would point into the build host",
            path.display(),
            target.display()
        ))
        .with_hint("use a relative target (for example ../../usr/lib/...)"));
    }
    let mut depth = rel.matches('/').count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(Error::invalid(format!(
                "{}: symlink to {} climbs out of the root",
                path.display(),
                target.display()
            )));
        }
    }
    Ok(())
}
