//! One build at a time per output directory and per state directory.
//!
//! Two builds into one `--out` would rename each other's half-made files into place,
//! and two key generations into one state directory would hand nodes different keys
//! than the manifest records. Each build therefore holds an exclusive lock on
//! `.pibake.lock` in both directories for its whole run; a second build is refused,
//! naming the process that holds it. The lock file stays (deleting it would let two
//! builds lock two different files); the lock itself ends with the process, however it
//! ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// A held directory lock; released when dropped or when the process ends.
pub struct DirLock {
    _file: File,
}

/// Locks `dir` (created if missing) for this build; `what` names it in the refusal and
/// `hint` says what to do about another build holding it.
pub fn lock(dir: &Path, what: &str, hint: &str) -> Result<DirLock> {
    std::fs::create_dir_all(dir).at(dir)?;
    let path = dir.join(".pibake.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another pibake build".to_string(),
                pid => format!("another pibake build (process {pid})"),
            };
            return Err(Error::invalid(format!(
                "{}: the {what} is in use by {holder}",
                dir.display()
            ))
            .with_hint(hint));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    // Who holds it, for the next build's message.
    file.set_len(0).at(&path)?;
    file.rewind().at(&path)?;
    writeln!(file, "{}", std::process::id()).at(&path)?;
    Ok(DirLock { _file: file })
}
