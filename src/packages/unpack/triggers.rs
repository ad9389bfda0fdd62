//! dpkg's triggers, kept as dpkg keeps them (`doc/spec/triggers.txt`): interests in
//! `triggers/File` (file triggers) and `triggers/NAME` (explicit ones), and activations
//! in `triggers/Unincorp` until dpkg next starts and incorporates them.
//!
//! dpkg activates a file trigger for every archive entry whose path is an interest
//! (packages ship their directories, so `/usr/share/man` fires for any man page), and
//! a package's own `activate` directives when it is unpacked. Offline, pibake records
//! those activations in `Unincorp`; the first-boot `dpkg --configure -a` incorporates
//! them and runs `ldconfig`, `man-db` and the rest on the node.

use std::collections::BTreeMap;

use pibake_ext4::Ext4;

use super::admin::text;
use crate::error::{Error, Result};

/// Where trigger state lives.
pub const DIR: &str = "/var/lib/dpkg/triggers";

/// One package's interest in a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interest {
    /// The interested package, as dpkg names it in the files (`PKG` or `PKG:ARCH`).
    package: String,
    /// `interest-noawait`: activations do not make the activating package wait.
    noawait: bool,
}

impl Interest {
    fn line(&self) -> String {
        let opt = if self.noawait { "/noawait" } else { "" };
        format!("{}{opt}", self.package)
    }
}

/// A trigger name becomes a file name (`triggers/NAME`) and a word in `File` and
/// `Unincorp`: printable ASCII with no space, and a path only for file triggers.
fn check_name(pkg: &str, name: &str) -> Result<()> {
    let printable = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic());
    let file_name = name.starts_with('/') || (!name.contains('/') && name != "." && name != "..");
    if printable && file_name {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{pkg}: its triggers file names the trigger `{}`, which dpkg would refuse",
        name.escape_debug()
    )))
}

/// Interests and pending activations.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    /// File trigger interests in file order: (path, interest).
    file: Vec<(String, Interest)>,
    /// Explicit trigger name -> interested packages, in file order.
    explicit: BTreeMap<String, Vec<Interest>>,
    /// Explicit triggers whose interest file changed.
    explicit_changed: Vec<String>,
    /// Whether `triggers/File` changed.
    file_changed: bool,
    /// `Unincorp` as read, then each new activation: trigger -> awaiting packages
    /// (`-` for none).
    unincorp: Vec<(String, Vec<String>)>,
    unincorp_changed: bool,
}

fn parse_interest(word: &str) -> Interest {
    match word.strip_suffix("/noawait") {
        Some(p) => Interest {
            package: p.into(),
            noawait: true,
        },
        None => Interest {
            package: word.into(),
            noawait: false,
        },
    }
}

impl Triggers {
    /// Reads the base's trigger state.
    pub fn read(fs: &Ext4) -> Result<Triggers> {
        let mut t = Triggers::default();
        let file = format!("{DIR}/File");
        for line in text(fs, &file)?.unwrap_or_default().lines() {
            let Some((path, who)) = line.split_once(' ') else {
                return Err(Error::invalid(format!(
                    "the base image's {file}: `{line}` is not `PATH PACKAGE`"
                )));
            };
            t.file.push((path.into(), parse_interest(who.trim())));
        }
        for line in text(fs, &format!("{DIR}/Unincorp"))?
            .unwrap_or_default()
            .lines()
        {
            let mut words = line.split_whitespace().map(str::to_string);
            if let Some(name) = words.next() {
                t.unincorp.push((name, words.collect()));
            }
        }
        Ok(t)
    }

    /// Reads the interests of an explicit trigger from the image, once.
    fn explicit_of(&mut self, fs: &Ext4, name: &str) -> Result<&mut Vec<Interest>> {
        if !self.explicit.contains_key(name) {
            let list = text(fs, &format!("{DIR}/{name}"))?
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(parse_interest)
                .collect();
            self.explicit.insert(name.into(), list);
        }
        Ok(self.explicit.entry(name.into()).or_default())
    }

    /// Records that `activator` activated `name`: it waits for the trigger unless the
    /// interest or the activation says not to.
    fn record(&mut self, name: &str, awaiter: Option<&str>) {
        let who = awaiter.unwrap_or("-").to_string();
        self.unincorp_changed = true;
        match self.unincorp.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) if list.contains(&who) => {}
            Some((_, list)) => list.push(who),
            None => self.unincorp.push((name.into(), vec![who])),
        }
    }

    /// An archive entry at `path` (its final, diverted name) of package `pkg` was
    /// unpacked: every file interest in exactly that path fires.
    pub fn path_unpacked(&mut self, path: &str, pkg: &str) {
        let hits: Vec<bool> = self
            .file
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, i)| i.noawait)
            .collect();
        for noawait in hits {
            self.record(path, (!noawait).then_some(pkg));
        }
    }

    /// A package's `triggers` control member, applied as dpkg applies it at unpack:
    /// its `activate*` directives fire now, its interests are added afterwards (so its
    /// own files did not fire them). `pkg` is the package as the files name it.
    pub fn package_unpacked(&mut self, fs: &Ext4, pkg: &str, member: &str) -> Result<()> {
        let mut interests = Vec::new();
        for line in member.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((directive, name)) = line.split_once(char::is_whitespace) else {
                if line.is_empty() {
                    continue;
                }
                return Err(Error::invalid(format!(
                    "{pkg}: its triggers file has `{line}`, which is not `DIRECTIVE NAME`"
                )));
            };
            let name = name.trim();
            check_name(pkg, name)?;
            match directive {
                "activate" | "activate-await" => self.activate(fs, name, Some(pkg))?,
                "activate-noawait" => self.activate(fs, name, None)?,
                "interest" | "interest-await" => interests.push((name, false)),
                "interest-noawait" => interests.push((name, true)),
                other => {
                    return Err(Error::invalid(format!(
                        "{pkg}: its triggers file has the unknown directive `{other}`"
                    )));
                }
            }
        }
        for (name, noawait) in interests {
            self.add_interest(fs, name, pkg, noawait)?;
        }
        Ok(())
    }

    /// An explicit activation is recorded only when some package is interested; the
    /// activator waits when any interest awaits (dpkg drops the wait per interest when
    /// it incorporates the line).
    fn activate(&mut self, fs: &Ext4, name: &str, awaiter: Option<&str>) -> Result<()> {
        if name.starts_with('/') {
            self.path_unpacked(name, awaiter.unwrap_or("-"));
            return Ok(());
        }
        let interests = self.explicit_of(fs, name)?;
        if !interests.is_empty() {
            let any_awaits = interests.iter().any(|i| !i.noawait);
            self.record(name, awaiter.filter(|_| any_awaits));
        }
        Ok(())
    }

    fn add_interest(&mut self, fs: &Ext4, name: &str, pkg: &str, noawait: bool) -> Result<()> {
        let interest = Interest {
            package: pkg.into(),
            noawait,
        };
        if name.starts_with('/') {
            self.file.retain(|(p, i)| !(p == name && i.package == pkg));
            self.file.push((name.into(), interest));
            self.file_changed = true;
        } else {
            let list = self.explicit_of(fs, name)?;
            list.retain(|i| i.package != pkg);
            list.push(interest);
            if !self.explicit_changed.iter().any(|n| n == name) {
                self.explicit_changed.push(name.into());
            }
        }
        Ok(())
    }

    /// The files to write back: (path, content), for what changed.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.file_changed {
            let text: String = self
                .file
                .iter()
                .map(|(p, i)| format!("{p} {}\n", i.line()))
                .collect();
            out.push((format!("{DIR}/File"), text));
        }
        for name in &self.explicit_changed {
            let text: String = self.explicit[name]
                .iter()
                .map(|i| format!("{}\n", i.line()))
                .collect();
            out.push((format!("{DIR}/{name}"), text));
        }
        if self.unincorp_changed {
            let text: String = self
                .unincorp
                .iter()
                .map(|(n, who)| format!("{n} {}\n", who.join(" ")))
                .collect();
            out.push((format!("{DIR}/Unincorp"), text));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use pibake_ext4::{FileRange, Meta};

    use super::*;

    /// An e2fsprogs tool by its full path (the sbin directories may not be on `PATH`).
    fn e2fs(name: &str) -> Command {
        let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{name} is not installed"));
        Command::new(path)
    }

    /// A small ext4 image made by mkfs.ext4 from `files` (path under `/`, content).
    fn image(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("var/lib/dpkg/triggers")).unwrap();
        for (path, text) in files {
            std::fs::write(root.join(path.trim_start_matches('/')), text).unwrap();
        }
        let img = dir.path().join("root.img");
        let out = e2fs("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-b",
                "4096",
                "-O",
                "^orphan_file,^metadata_csum_seed",
            ])
            .arg("-d")
            .arg(&root)
            .arg(&img)
            .arg("8M")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, img)
    }

    fn open(img: &Path) -> Ext4 {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(img)
            .unwrap();
        Ext4::open_rw(FileRange::whole(file, "t").unwrap()).unwrap()
    }

    fn e2fsck_clean(img: &Path) {
        let out = e2fs("e2fsck").arg("-fn").arg(img).output().unwrap();
        assert!(
            out.status.success(),
            "e2fsck -fn:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Writes what `t` changed into the image, and reads the state back.
    fn write_back(img: &Path, t: &Triggers) -> Triggers {
        let mut fs = open(img);
        for (path, text) in t.files() {
            fs.write_file(&path, text.as_bytes(), &Meta::new(0o644, 0, 0))
                .unwrap();
        }
        fs.commit().unwrap();
        drop(fs);
        e2fsck_clean(img);
        Triggers::read(&open(img)).unwrap()
    }

    #[test]
    fn file_interests_and_unincorp_round_trip() {
        let (_dir, img) = image(&[
            (
                "/var/lib/dpkg/triggers/File",
                "/usr/share/man man-db\n/usr/share/icons/hicolor hicolor-icon-theme/noawait\n",
            ),
            ("/var/lib/dpkg/triggers/Unincorp", "ldconfig -\n"),
        ]);
        let mut t = Triggers::read(&open(&img)).unwrap();
        assert!(t.files().is_empty(), "nothing changed yet");
        // An await interest records the activating package, a noawait one `-`; only
        // the interest's exact path fires (the archive has the directories too).
        t.path_unpacked("/usr/share/man", "hello");
        t.path_unpacked("/usr/share/icons/hicolor", "hello");
        t.path_unpacked("/usr/share/man/man1", "hello");
        t.path_unpacked("/usr/share/man", "hello");
        let unincorp = "ldconfig -\n/usr/share/man hello\n/usr/share/icons/hicolor -\n";
        assert_eq!(
            t.files(),
            [(format!("{DIR}/Unincorp"), unincorp.to_string())]
        );

        // A package's own interests: in `File` after its activations, and read back
        // with their noawait mark.
        t.package_unpacked(
            &open(&img),
            "fonts",
            "interest-noawait /usr/share/fonts\nactivate /usr/share/man\n",
        )
        .unwrap();
        let back = write_back(&img, &t);
        assert_eq!(back.file, t.file, "File read back is the File written");
        assert_eq!(back.unincorp, t.unincorp);
        assert_eq!(
            back.file.last().unwrap(),
            &(
                "/usr/share/fonts".to_string(),
                Interest {
                    package: "fonts".into(),
                    noawait: true
                }
            )
        );
        assert_eq!(
            text(&open(&img), &format!("{DIR}/Unincorp"))
                .unwrap()
                .as_deref(),
            Some("ldconfig -\n/usr/share/man hello fonts\n/usr/share/icons/hicolor -\n")
        );
        assert_eq!(
            text(&open(&img), &format!("{DIR}/File"))
                .unwrap()
                .as_deref(),
            Some(
                "/usr/share/man man-db\n/usr/share/icons/hicolor hicolor-icon-theme/noawait\n/usr/share/fonts fonts/noawait\n"
            )
        );
        let mut again = back;
        again.path_unpacked("/usr/share/fonts", "other");
        assert_eq!(
            again.unincorp.last().unwrap(),
            &("/usr/share/fonts".to_string(), vec!["-".to_string()])
        );
    }

    #[test]
    fn explicit_activations_are_recorded_only_for_interested_packages() {
        let (_dir, img) = image(&[("/var/lib/dpkg/triggers/ldconfig", "libc-bin\n")]);
        let fs = open(&img);
        let mut t = Triggers::read(&fs).unwrap();
        t.package_unpacked(&fs, "a", "activate nobody-listens\n")
            .unwrap();
        assert!(t.files().is_empty(), "{:?}", t.files());
        t.package_unpacked(&fs, "a", "activate ldconfig # comment\n")
            .unwrap();
        t.package_unpacked(&fs, "b", "activate-noawait ldconfig\n")
            .unwrap();
        t.package_unpacked(&fs, "c", "activate-await ldconfig\n\n")
            .unwrap();
        assert_eq!(
            t.files(),
            [(format!("{DIR}/Unincorp"), "ldconfig a - c\n".to_string())]
        );
        // A new explicit interest is added to the trigger's own file.
        t.package_unpacked(&fs, "d", "interest-noawait ldconfig\ninterest my-trigger\n")
            .unwrap();
        drop(fs);
        let back = write_back(&img, &t);
        assert_eq!(back.unincorp, t.unincorp);
        let fs = open(&img);
        assert_eq!(
            text(&fs, &format!("{DIR}/ldconfig")).unwrap().as_deref(),
            Some("libc-bin\nd/noawait\n")
        );
        assert_eq!(
            text(&fs, &format!("{DIR}/my-trigger")).unwrap().as_deref(),
            Some("d\n")
        );
        assert!(!fs.exists(&format!("{DIR}/File")).unwrap());
    }

    #[test]
    fn trigger_names_dpkg_refuses_are_refused() {
        let (_dir, img) = image(&[]);
        let fs = open(&img);
        let mut t = Triggers::read(&fs).unwrap();
        for (member, word) in [
            ("activate ../x\n", "../x"),
            ("interest ..\n", ".."),
            ("activate a b\n", "a b"),
            ("interest-noawait sub/dir\n", "sub/dir"),
            ("activate\n", "activate"),
            ("frobnicate x\n", "frobnicate"),
        ] {
            let e = t.package_unpacked(&fs, "bad", member).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("bad: its triggers file") && text.contains(word),
                "{member:?}: {text}"
            );
        }
        assert!(check_name("p", "/usr/share/man").is_ok());
        assert!(check_name("p", "x\u{7f}").is_err());
        assert!(check_name("p", "").is_err());
        assert!(t.files().is_empty());
        drop(fs);
        e2fsck_clean(&img);
    }

    /// dpkg incorporates `Unincorp` interest by interest (`trk_explicit_activate_awaiter`
    /// drops the awaiter only for `/noawait` interests), so the activating package must
    /// be recorded whenever any interest awaits, not only when the first one does.
    #[test]
    fn an_explicit_activation_awaits_when_any_interest_awaits() {
        let (_dir, img) = image(&[("/var/lib/dpkg/triggers/t", "first/noawait\nsecond\n")]);
        let fs = open(&img);
        let mut t = Triggers::read(&fs).unwrap();
        t.package_unpacked(&fs, "hello", "activate t\n").unwrap();
        assert_eq!(
            t.files(),
            [(format!("{DIR}/Unincorp"), "t hello\n".to_string())]
        );
        drop(fs);
        e2fsck_clean(&img);
    }
}
