//! `pibake fs`: the e2tools and mtools of Raspberry Pi images, without root or mounts.
//!
//! Paths name a partition: `boot:/config.txt` is on the FAT boot partition; `/etc/hostname`
//! (or `root:/etc/hostname`) is on the ext4 root. Reading works on any base form (a
//! compressed one is decoded into the cache first); writing needs a raw `.img`, which is
//! edited in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::cli::{Global, print_json};
use pibake::error::{Error, IoContext, Result};
use pibake::fs::fat::Fat;
use pibake_ext4::{Ext4, Kind, Meta, Time};
use pibake_image::base::{self, Format};
use pibake_image::partition::Layout;
use pibake_image::region::Region;

/// Read and edit files inside an image's partitions (boot:/path or /path on the root)
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub op: Op,
}

#[derive(Debug, Subcommand)]
pub enum Op {
    /// List a directory
    Ls {
        image: PathBuf,
        path: String,
        /// Type, mode, owner and size of each entry
        #[arg(short = 'l')]
        long: bool,
    },
    /// Write a file's bytes to standard output
    Cat { image: PathBuf, path: String },
    /// Type, mode, owner, size, times and link target of a path
    Stat { image: PathBuf, path: String },
    /// Copy a local file into the image (created or replaced)
    Put {
        image: PathBuf,
        local: PathBuf,
        path: String,
        /// Permission bits, octal [default: 0644]
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u16>,
        /// Numeric owner [default: 0:0]
        #[arg(long, value_parser = parse_owner, value_name = "UID:GID")]
        owner: Option<(u32, u32)>,
    },
    /// Make a directory and any missing parents
    Mkdir {
        image: PathBuf,
        path: String,
        /// Permission bits, octal [default: 0755]
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u16>,
        /// Numeric owner [default: 0:0]
        #[arg(long, value_parser = parse_owner, value_name = "UID:GID")]
        owner: Option<(u32, u32)>,
    },
    /// Make a symbolic link: `ln -s TARGET PATH` (hard links are not supported)
    Ln {
        /// Required: only symbolic links are made
        #[arg(short = 's', long = "symbolic", required = true)]
        symbolic: bool,
        image: PathBuf,
        target: String,
        path: String,
        #[arg(long, default_value = "0:0", value_parser = parse_owner, value_name = "UID:GID")]
        owner: (u32, u32),
    },
    /// Remove a file, a symlink or an empty directory
    Rm { image: PathBuf, path: String },
    /// Change permission bits (octal)
    Chmod {
        image: PathBuf,
        #[arg(value_parser = parse_mode)]
        mode: u16,
        path: String,
    },
    /// Change the numeric owner
    Chown {
        image: PathBuf,
        #[arg(value_parser = parse_owner, value_name = "UID:GID")]
        owner: (u32, u32),
        path: String,
    },
}

fn parse_mode(s: &str) -> std::result::Result<u16, String> {
    u16::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("`{s}` is not an octal mode from 0 to 7777 (e.g. 0644)"))
}

fn parse_owner(s: &str) -> std::result::Result<(u32, u32), String> {
    let o: pibake::values::Owner = s.parse()?;
    Ok((o.uid, o.gid))
}

/// Which partition a path is on.
enum Target<'a> {
    Boot(&'a str),
    Root(&'a str),
}

fn target(path: &str) -> Result<Target<'_>> {
    let t = if let Some(p) = path.strip_prefix("boot:") {
        Target::Boot(p)
    } else {
        Target::Root(path.strip_prefix("root:").unwrap_or(path))
    };
    let (Target::Boot(p) | Target::Root(p)) = t;
    if !p.starts_with('/') {
        return Err(Error::invalid(format!(
            "`{path}`: paths inside an image are absolute: /etc/hostname, root:/etc/hostname or boot:/config.txt"
        )));
    }
    Ok(t)
}

/// The partition region of `image` for `t`; writable edits need a raw image.
fn partition(image: &Path, global: &Global, t: &Target, writable: bool) -> Result<Region> {
    let raw = if writable {
        if Format::detect(image)? != Format::Raw {
            return Err(Error::invalid(format!(
                "{}: is compressed; pibake edits raw images in place",
                image.display()
            ))
            .with_hint(
                "`pibake unpack IMAGE` prints the decoded image; copy it and edit the copy",
            ));
        }
        image.to_path_buf()
    } else {
        base::prepare(image, &global.cache_options())?.raw
    };
    let whole = Region::whole(&raw, writable)?;
    let layout = Layout::read(&whole)?;
    let p = match t {
        Target::Boot(_) => layout.boot(),
        Target::Root(_) => layout.root(),
    };
    Ok(whole.sub(p.start, p.size)?)
}

fn fat_refuses(path: &str, what: &str) -> Error {
    Error::invalid(format!(
        "boot:{path}: the boot partition is FAT: it has no {what}"
    ))
}

/// The time stamped on edits: `SOURCE_DATE_EPOCH` when set, for reproducible images.
fn source_date() -> Option<Time> {
    pibake::values::source_date_epoch().map(Time::from_secs)
}

pub fn run(args: &Args, global: &Global) -> Result<()> {
    match &args.op {
        Op::Ls { image, path, long } => ls(image, path, *long, global),
        Op::Cat { image, path } => {
            let t = target(path)?;
            let region = partition(image, global, &t, false)?;
            let data = match t {
                Target::Boot(p) => Fat::open(region)?.read(p)?,
                Target::Root(p) => Ext4::open(region)?.read(p)?,
            };
            std::io::stdout().write_all(&data).at("standard output")
        }
        Op::Stat { image, path } => stat(image, path, global),
        Op::Put {
            image,
            local,
            path,
            mode,
            owner,
        } => {
            // Refused before anything is read: a device or pipe (`/dev/zero`) has no
            // end, and a file larger than the partition cannot fit in it.
            let meta = std::fs::metadata(local).at(local)?;
            if !meta.is_file() {
                return Err(Error::invalid(format!(
                    "{}: not a regular file; `fs put` copies files",
                    local.display()
                )));
            }
            let room = partition(image, global, &target(path)?, false)?.len();
            if meta.len() > room {
                return Err(Error::invalid(format!(
                    "{}: {} bytes cannot fit in a {room}-byte partition",
                    local.display(),
                    meta.len()
                )));
            }
            let data = std::fs::read(local).at(local)?;
            let mtime = source_date().or_else(|| {
                let m = std::fs::metadata(local).ok()?.modified().ok()?;
                let secs = m.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
                Some(Time::from_secs(secs as i64))
            });
            edit(
                image,
                path,
                global,
                |p| {
                    let mut fat = p.fat(*mode, *owner)?;
                    fat.write(p.path, &data)?;
                    fat.close()
                },
                |p, fs| {
                    let (uid, gid) = owner.unwrap_or((0, 0));
                    Ok(fs.write_file(
                        p,
                        &data,
                        &Meta {
                            mode: mode.unwrap_or(0o644),
                            uid,
                            gid,
                            mtime,
                        },
                    )?)
                },
            )
        }
        Op::Mkdir {
            image,
            path,
            mode,
            owner,
        } => edit(
            image,
            path,
            global,
            |p| {
                let mut fat = p.fat(*mode, *owner)?;
                fat.mkdir_p(p.path)?;
                fat.close()
            },
            |p, fs| {
                let (uid, gid) = owner.unwrap_or((0, 0));
                Ok(fs.mkdir_p(
                    p,
                    &Meta {
                        mode: mode.unwrap_or(0o755),
                        uid,
                        gid,
                        mtime: source_date(),
                    },
                )?)
            },
        ),
        Op::Ln {
            symbolic: _,
            image,
            target: to,
            path,
            owner,
        } => edit(
            image,
            path,
            global,
            |p| Err(fat_refuses(p.path, "symbolic links")),
            |p, fs| {
                Ok(fs.symlink(
                    p,
                    to,
                    &Meta {
                        mode: 0o777,
                        uid: owner.0,
                        gid: owner.1,
                        mtime: source_date(),
                    },
                )?)
            },
        ),
        Op::Rm { image, path } => edit(
            image,
            path,
            global,
            |p| {
                let mut fat = p.fat(None, None)?;
                fat.remove(p.path)?;
                fat.close()
            },
            |p, fs| Ok(fs.remove(p)?),
        ),
        Op::Chmod { image, mode, path } => edit(
            image,
            path,
            global,
            |p| Err(fat_refuses(p.path, "permissions")),
            |p, fs| Ok(fs.chmod(p, *mode)?),
        ),
        Op::Chown { image, owner, path } => edit(
            image,
            path,
            global,
            |p| Err(fat_refuses(p.path, "owners")),
            |p, fs| Ok(fs.chown(p, owner.0, owner.1)?),
        ),
    }
}

/// A boot-partition edit's context: the partition and the path inside it.
struct BootEdit<'a> {
    region: Region,
    path: &'a str,
}

impl BootEdit<'_> {
    /// Opens the FAT partition, refusing a mode or owner, which FAT cannot hold.
    fn fat(&self, mode: Option<u16>, owner: Option<(u32, u32)>) -> Result<Fat> {
        if mode.is_some() {
            return Err(fat_refuses(self.path, "permissions (drop --mode)"));
        }
        if owner.is_some() {
            return Err(fat_refuses(self.path, "owners (drop --owner)"));
        }
        Fat::open(self.region.clone())
    }
}

/// Opens the right partition of a raw image for writing, applies one edit, and writes it.
fn edit(
    image: &Path,
    path: &str,
    global: &Global,
    on_boot: impl FnOnce(&BootEdit) -> Result<()>,
    on_root: impl FnOnce(&str, &mut Ext4) -> Result<()>,
) -> Result<()> {
    let t = target(path)?;
    let region = partition(image, global, &t, true)?;
    match t {
        Target::Boot(p) => on_boot(&BootEdit { region, path: p }),
        Target::Root(p) => {
            let mut fs = Ext4::open_rw(region)?;
            if let Some(t) = source_date() {
                fs.set_time(t);
            }
            on_root(p, &mut fs)?;
            fs.commit()?;
            Ok(())
        }
    }
}

fn ls(image: &Path, path: &str, long: bool, global: &Global) -> Result<()> {
    let t = target(path)?;
    let region = partition(image, global, &t, false)?;
    let mut out = String::new();
    match t {
        Target::Boot(p) => {
            let mut entries = Fat::open(region)?.read_dir(p)?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                if long {
                    let kind = if e.is_dir { "d" } else { "-" };
                    out.push_str(&format!("{kind} {:>10} {}\n", e.size, e.name));
                } else {
                    out.push_str(&format!("{}\n", e.name));
                }
            }
        }
        Target::Root(p) => {
            let fs = Ext4::open(region)?;
            let mut entries = fs.read_dir(p)?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                if !long {
                    out.push_str(&format!("{}\n", e.name));
                    continue;
                }
                let full = format!("{}/{}", p.trim_end_matches('/'), e.name);
                let st = fs.stat(&full)?;
                let link = st.target.map(|t| format!(" -> {t}")).unwrap_or_default();
                out.push_str(&format!(
                    "{}{:04o} {:>5}:{:<5} {:>10} {}{link}\n",
                    kind_char(st.kind),
                    st.mode,
                    st.uid,
                    st.gid,
                    st.size,
                    e.name
                ));
            }
        }
    }
    out!("{out}");
    Ok(())
}

fn kind_char(k: Kind) -> char {
    match k {
        Kind::File => '-',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::CharDevice => 'c',
        Kind::BlockDevice => 'b',
        Kind::Fifo => 'p',
        Kind::Socket => 's',
    }
}

fn stat(image: &Path, path: &str, global: &Global) -> Result<()> {
    let t = target(path)?;
    let region = partition(image, global, &t, false)?;
    match t {
        Target::Boot(p) => {
            let fat = Fat::open(region)?;
            let (parent, name) = p.trim_end_matches('/').rsplit_once('/').unwrap_or(("", p));
            let parent = if parent.is_empty() { "/" } else { parent };
            let entry = fat
                .read_dir(parent)?
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| Error::invalid(format!("boot:{p}: no such file or directory")))?;
            if global.json {
                return print_json(&serde_json::json!({
                    "path": p, "kind": if entry.is_dir { "dir" } else { "file" }, "size": entry.size
                }));
            }
            outln!(
                "path     boot:{p}\nkind     {}\nsize     {}",
                if entry.is_dir { "dir" } else { "file" },
                entry.size
            );
        }
        Target::Root(p) => {
            let st = Ext4::open(region)?.stat(p)?;
            if global.json {
                return print_json(&st);
            }
            outln!("path     {p}");
            outln!("kind     {:?}", st.kind);
            outln!("inode    {}", st.ino);
            outln!("mode     {:04o}", st.mode);
            outln!("owner    {}:{}", st.uid, st.gid);
            outln!("size     {}", st.size);
            outln!("links    {}", st.links);
            outln!("mtime    {}.{:09}", st.mtime.secs, st.mtime.nanos);
            if let Some(t) = st.target {
                outln!("target   {t}");
            }
        }
    }
    Ok(())
}
