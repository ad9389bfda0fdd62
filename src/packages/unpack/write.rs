//! One package's data archive written into the root as `dpkg --unpack` leaves it:
//! diversions and status overrides applied, path filters honoured, conffiles as
//! `PATH.dpkg-new`, existing directories (and the base's usr-merge symlinks to them)
//! left as they are, owners by the image's own user and group names.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use md5::{Digest, Md5};
use pibake_deb::{DataEntry, Deb, EntryKind};
use pibake_ext4::{Ext4, Kind, Meta, Time};

use super::Inspected;
use super::admin::Admin;
use crate::error::{Error, Result};

/// What unpacking one package leaves to record in dpkg's database.
pub struct Written {
    /// Every path of the archive, as `info/PKG.list` lists it.
    pub list: Vec<String>,
    /// MD5 of each regular file written, by path, for a package without `md5sums`
    /// (empty for one that ships them).
    pub md5: BTreeMap<String, String>,
}

/// Writes `deb`'s data into `fs`. `links` holds the symlinks the package set made so
/// far: no later entry, of this package or another, is written through one.
pub fn data(
    fs: &mut Ext4,
    admin: &mut Admin,
    deb: &Inspected,
    links: &mut HashSet<String>,
) -> Result<Written> {
    let mut w = Writer {
        fs,
        admin,
        deb,
        links,
        out: Written {
            list: Vec::new(),
            md5: BTreeMap::new(),
        },
    };
    match &deb.kept {
        Some(entries) => {
            for (e, content) in entries {
                w.entry(e, &mut content.as_slice())?;
            }
        }
        None => {
            let parsed = Deb::parse(&deb.label, &deb.bytes).map_err(deb_err)?;
            parsed.each_data_entry(|e: &DataEntry, r: &mut dyn Read| w.entry(e, r))?;
        }
    }
    Ok(w.out)
}

/// A `.deb` that cannot be read, or that pibake will not write, is refused by name,
/// with what to do for its kind of trouble.
fn deb_err(e: pibake_deb::DebError) -> Error {
    let hint = match e.kind() {
        pibake_deb::ErrorKind::Malformed => {
            "the file is damaged: remove it from pibake's cache (`CACHE/apt/sha256/`) and build again; if the repository serves it so, it cannot be installed from there"
        }
        pibake_deb::ErrorKind::Unsafe | pibake_deb::ErrorKind::Unsupported => {
            "pibake does not unpack this package: leave it out of `packages:`, or, if you trust it, have dpkg install it on first boot (`packages_online:`, or the `.deb` in `debs:`)"
        }
    };
    Error::invalid(e.to_string()).with_hint(hint)
}

impl From<pibake_deb::DebError> for Error {
    fn from(e: pibake_deb::DebError) -> Error {
        deb_err(e)
    }
}

struct Writer<'a> {
    fs: &'a mut Ext4,
    admin: &'a mut Admin,
    deb: &'a Inspected,
    /// Symlinks this package set made: nothing is written through them.
    links: &'a mut HashSet<String>,
    out: Written,
}

impl Writer<'_> {
    fn entry(&mut self, e: &DataEntry, r: &mut dyn Read) -> Result<()> {
        let path = e.path.as_str();
        self.out.list.push(if e.path.is_root() {
            "/.".into()
        } else {
            path.into()
        });
        if e.path.is_root() {
            return Ok(());
        }
        self.refuse_through_links(path)?;
        let usename = self.divert(path);
        self.admin
            .triggers
            .path_unpacked(&usename, &self.deb.info_name);
        let dir_or_link = matches!(e.kind, EntryKind::Dir | EntryKind::Symlink { .. });
        if self.admin.filtered(path, dir_or_link) {
            return Ok(());
        }
        let meta = self.meta(e);
        match &e.kind {
            EntryKind::Dir => self.dir(&usename, &meta),
            EntryKind::File => self.file(path, r, e.size, &meta),
            EntryKind::Symlink { target } => {
                self.replace_non_dir(&usename)?;
                self.fs.symlink(&usename, target, &meta)?;
                self.links.insert(path.to_string());
                Ok(())
            }
            EntryKind::HardLink { target } => {
                let from = self.final_name(target.as_str());
                self.fs.link(&from, &self.final_name(path))?;
                if let Some(sum) = self.out.md5.get(target.as_str()).cloned() {
                    self.out.md5.insert(path.to_string(), sum);
                }
                Ok(())
            }
        }
    }

    /// An archive may not write through a symlink it made itself (`x -> ../../etc`,
    /// then `x/passwd`); the base's own symlinks (`/lib -> usr/lib`) are followed.
    fn refuse_through_links(&self, path: &str) -> Result<()> {
        let mut at = path;
        while let Some(i) = at.rfind('/') {
            at = &at[..i];
            if self.links.contains(at) {
                return Err(Error::invalid(format!(
                    "{}: `{path}` is written through the symlink `{at}` that the package set made; dpkg would follow it wherever it points, pibake refuses",
                    self.deb.label
                )));
            }
        }
        Ok(())
    }

    /// Where dpkg puts `path`: elsewhere when another package diverts it.
    fn divert(&self, path: &str) -> String {
        match self.admin.diversions.get(path) {
            Some(d) if d.by != self.deb.package.name.as_str() => d.to.clone(),
            _ => path.to_string(),
        }
    }

    /// The name a regular file of the archive has on disk until configure.
    fn final_name(&self, path: &str) -> String {
        let used = self.divert(path);
        if self.deb.conffiles.iter().any(|c| c == path) {
            format!("{used}.dpkg-new")
        } else {
            used
        }
    }

    /// Owner by the tar's names where the image knows them (as dpkg resolves them in
    /// the target), else its numbers; a status override wins.
    fn meta(&self, e: &DataEntry) -> Meta {
        let by_name = |name: &Option<String>, db: &std::collections::HashMap<String, u32>| {
            name.as_ref().and_then(|n| db.get(n).copied())
        };
        let mut meta = Meta {
            mode: e.mode,
            uid: by_name(&e.uname, &self.admin.users).unwrap_or(e.uid),
            gid: by_name(&e.gname, &self.admin.groups).unwrap_or(e.gid),
            mtime: Some(Time::from_secs(e.mtime)),
        };
        if let Some(o) = self.admin.overrides.get(e.path.as_str()) {
            meta.mode = o.mode;
            meta.uid = o.uid;
            meta.gid = o.gid;
        }
        meta
    }

    /// A directory already there (or a symlink to one) stays as it is.
    fn dir(&mut self, path: &str, meta: &Meta) -> Result<()> {
        match self.fs.try_stat(path)? {
            Some(s) if s.kind == Kind::Dir => Ok(()),
            Some(s) if s.kind == Kind::Symlink && self.fs.read_dir(path).is_ok() => Ok(()),
            Some(_) => Err(Error::invalid(format!(
                "{}: `{path}` is a directory in the package but something else in the image",
                self.deb.label
            ))),
            None => Ok(self.fs.mkdir_p(path, meta)?),
        }
    }

    fn file(&mut self, path: &str, r: &mut dyn Read, len: u64, meta: &Meta) -> Result<()> {
        let target = self.final_name(path);
        self.replace_non_dir(&target)?;
        if self.deb.member("md5sums").is_some() {
            return Ok(self.fs.write_file_from(&target, r, len, meta)?);
        }
        let mut hashing = HashingReader {
            inner: r,
            md5: Md5::new(),
        };
        self.fs.write_file_from(&target, &mut hashing, len, meta)?;
        let sum = hashing.md5.finalize();
        let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
        self.out.md5.insert(path.to_string(), hex);
        Ok(())
    }

    /// dpkg replaces a file or symlink that no package owns (the split sent packages
    /// that overwrite an owned one to first boot); a directory is never replaced.
    fn replace_non_dir(&mut self, path: &str) -> Result<()> {
        match self.fs.try_stat(path)? {
            Some(s) if s.kind == Kind::Dir => Err(Error::invalid(format!(
                "{}: `{path}` is a directory in the image, and the package ships something else there",
                self.deb.label
            ))),
            Some(_) => Ok(self.fs.remove(path)?),
            None => Ok(()),
        }
    }
}

/// Hashes what passes through, for `md5sums` of packages that ship none.
struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    md5: Md5,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}
