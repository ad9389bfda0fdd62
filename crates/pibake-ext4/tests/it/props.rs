//! Random operation sequences against an in-memory model.
//!
//! Each sequence runs a few hundred operations (files of 0 bytes to tens of MiB,
//! directories grown to thousands of names, symlinks fast and slow, metadata changes,
//! removals that free space for later files) on one filesystem, commits and reopens it
//! now and then, and checks the filesystem against the model every few steps through
//! pibake's reader. At the end `e2fsck -fn` must be clean, and the whole tree is read back
//! by `debugfs rdump` and by ext4-view and compared with the model.
//!
//! CI runs a fixed set of seeds. A longer run:
//! `PIBAKE_PROP_SEEDS=200 PIBAKE_PROP_STEPS=3000 cargo test --release --test ext4_props`

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::util::{device, e2fsck_clean, path, tool};
use pibake_ext4::mkfs::MkfsOptions;
use pibake_ext4::{Ext4, Kind, Meta, Time};

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        (!v.is_empty()).then(|| &v[self.below(v.len() as u64) as usize])
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    File {
        data: Vec<u8>,
        mode: u16,
        uid: u32,
        gid: u32,
        mtime: i64,
    },
    Dir {
        mode: u16,
        uid: u32,
        gid: u32,
    },
    Link {
        target: String,
    },
}

/// What the filesystem should hold: paths below the root.
type Model = BTreeMap<String, Node>;

fn children<'m>(model: &'m Model, dir: &str) -> impl Iterator<Item = &'m String> + 'm {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    model
        .keys()
        .filter(move |k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
}

fn dirs(model: &Model) -> Vec<String> {
    let mut v = vec!["/".to_string()];
    v.extend(
        model
            .iter()
            .filter(|(_, n)| matches!(n, Node::Dir { .. }))
            .map(|(k, _)| k.clone()),
    );
    v
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn data(rng: &mut Rng, len: usize) -> Vec<u8> {
    // Compressible but not constant, and different per file.
    let a = rng.next() as u8;
    let b = rng.next() as u8 | 1;
    (0..len)
        .map(|i| a.wrapping_add((i / 7) as u8).wrapping_mul(b))
        .collect()
}

fn size(rng: &mut Rng, big: bool) -> usize {
    match rng.below(100) {
        0..=9 => 0,
        10..=59 => rng.below(4096) as usize,
        60..=89 => rng.below(200_000) as usize,
        90..=97 => rng.below(2 << 20) as usize,
        _ if big => (10 << 20) + rng.below(20 << 20) as usize,
        _ => rng.below(4 << 20) as usize,
    }
}

fn name(rng: &mut Rng) -> String {
    const PARTS: &[&str] = &[
        "conf",
        "d",
        "x",
        "wpa_supplicant",
        "ñ",
        "ü",
        "日本",
        "a.b",
        "-",
        "_",
        "node",
    ];
    let mut s = String::new();
    for _ in 0..1 + rng.below(4) {
        s.push_str(rng.pick(PARTS).unwrap());
    }
    s.push_str(&rng.below(100_000).to_string());
    s
}

fn open_rw(image: &Path) -> Ext4 {
    let mut fs = Ext4::open_rw(device(image, true)).unwrap();
    fs.set_time(Time::from_secs(1_750_000_000));
    fs
}

/// Whether an edit happened: `false` when the filesystem was full (then nothing may
/// have changed), a panic on any other error.
fn done(r: pibake_ext4::Result<()>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) if matches!(e.kind(), pibake_ext4::ErrorKind::NoSpace { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

/// One random step, applied to the filesystem and the model alike.
fn step(fs: &mut Ext4, model: &mut Model, rng: &mut Rng, big: bool) {
    let dirs = dirs(model);
    let dir = rng.pick(&dirs).unwrap().clone();
    let files: Vec<String> = model
        .iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(k, _)| k.clone())
        .collect();
    match rng.below(100) {
        0..=34 => {
            let p = join(&dir, &name(rng));
            if model.contains_key(&p) {
                return;
            }
            let (mode, uid, gid, mtime) = (
                0o600 + rng.below(0o200) as u16,
                rng.below(3000) as u32,
                rng.below(3000) as u32,
                1_600_000_000 + rng.below(1 << 28) as i64,
            );
            let len = size(rng, big);
            let d = data(rng, len);
            if done(fs.write_file(
                &p,
                &d,
                &Meta {
                    mode,
                    uid,
                    gid,
                    mtime: Some(Time::from_secs(mtime)),
                },
            )) {
                model.insert(
                    p,
                    Node::File {
                        data: d,
                        mode,
                        uid,
                        gid,
                        mtime,
                    },
                );
            }
        }
        35..=44 => {
            let Some(p) = rng.pick(&files).cloned() else {
                return;
            };
            let len = size(rng, big);
            let d = data(rng, len);
            let mtime = 1_600_000_000 + rng.below(1 << 28) as i64;
            if done(fs.write_file(
                &p,
                &d,
                &Meta {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: Some(Time::from_secs(mtime)),
                },
            )) {
                model.insert(
                    p,
                    Node::File {
                        data: d,
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime,
                    },
                );
            }
        }
        45..=52 => {
            let p = join(&dir, &name(rng));
            if model.contains_key(&p) {
                return;
            }
            let (mode, uid, gid) = (
                0o700 + rng.below(0o100) as u16,
                rng.below(2000) as u32,
                rng.below(2000) as u32,
            );
            if done(fs.mkdir_p(&p, &Meta::new(mode, uid, gid))) {
                model.insert(p, Node::Dir { mode, uid, gid });
            }
        }
        53..=60 => {
            let p = join(&dir, &name(rng));
            if model.contains_key(&p) {
                return;
            }
            let target = if rng.below(2) == 0 {
                format!("/etc/{}", name(rng))
            } else {
                format!("../{}", "long/".repeat(10 + rng.below(100) as usize))
            };
            if done(fs.symlink(&p, &target, &Meta::new(0o777, 0, 0))) {
                model.insert(p, Node::Link { target });
            }
        }
        61..=64 => {
            let Some(p) = rng.pick(&files).cloned() else {
                return;
            };
            let mode = rng.below(0o7777) as u16;
            fs.chmod(&p, mode).unwrap();
            if let Some(Node::File { mode: m, .. }) = model.get_mut(&p) {
                *m = mode;
            }
        }
        65..=67 => {
            let Some(p) = rng.pick(&files).cloned() else {
                return;
            };
            let (u, g) = (rng.below(70_000) as u32, rng.below(70_000) as u32);
            fs.chown(&p, u, g).unwrap();
            if let Some(Node::File { uid, gid, .. }) = model.get_mut(&p) {
                (*uid, *gid) = (u, g);
            }
        }
        68..=69 => {
            // Grow one directory by hundreds of names: it becomes (and stays) indexed.
            let d = join(&dir, &format!("bulk{}", rng.below(1000)));
            if model.contains_key(&d) {
                return;
            }
            if !done(fs.mkdir_p(&d, &Meta::new(0o755, 0, 0))) {
                return;
            }
            model.insert(
                d.clone(),
                Node::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            );
            for i in 0..300 + rng.below(900) {
                let p = join(&d, &format!("{}-{i}", name(rng)));
                if model.contains_key(&p) {
                    continue;
                }
                let len = rng.below(64) as usize;
                let content = data(rng, len);
                if !done(fs.write_file(
                    &p,
                    &content,
                    &Meta {
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime: Some(Time::from_secs(1_700_000_000)),
                    },
                )) {
                    return;
                }
                model.insert(
                    p,
                    Node::File {
                        data: content,
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime: 1_700_000_000,
                    },
                );
            }
        }
        70..=89 => {
            // Remove a file or link, or an empty directory.
            let all: Vec<String> = model.keys().cloned().collect();
            let Some(p) = rng.pick(&all).cloned() else {
                return;
            };
            if matches!(model[&p], Node::Dir { .. }) && children(model, &p).next().is_some() {
                return;
            }
            fs.remove(&p).unwrap();
            model.remove(&p);
        }
        _ => {
            // Remove most of a directory's names, freeing space for later files.
            let names: Vec<String> = children(model, &dir)
                .filter(|p| !matches!(model[*p], Node::Dir { .. }))
                .cloned()
                .collect();
            for p in names.iter().filter(|_| rng.below(4) != 0) {
                fs.remove(p).unwrap();
                model.remove(p);
            }
        }
    }
}

/// pibake's reader sees exactly the model.
fn check_with_pibake(fs: &Ext4, model: &Model, seed: u64, at: usize) {
    for (p, n) in model {
        let st = fs
            .stat(p)
            .unwrap_or_else(|e| panic!("seed {seed} step {at}: {p}: {e}"));
        match n {
            Node::File {
                data,
                mode,
                uid,
                gid,
                mtime,
            } => {
                assert_eq!(
                    (st.kind, st.mode, st.uid, st.gid, st.mtime.secs),
                    (Kind::File, *mode, *uid, *gid, *mtime),
                    "seed {seed} step {at}: {p}"
                );
                assert!(
                    fs.read(p).unwrap() == *data,
                    "seed {seed} step {at}: {p}: content"
                );
            }
            Node::Dir { mode, uid, gid } => assert_eq!(
                (st.kind, st.mode, st.uid, st.gid),
                (Kind::Dir, *mode, *uid, *gid),
                "seed {seed} step {at}: {p}"
            ),
            Node::Link { target } => assert_eq!(
                st.target.as_deref(),
                Some(target.as_str()),
                "seed {seed} step {at}: {p}"
            ),
        }
    }
    for d in dirs(model) {
        let mut names: Vec<String> = fs
            .read_dir(&d)
            .unwrap()
            .into_iter()
            .map(|e| join(&d, &e.name))
            .collect();
        names.retain(|n| n != "/lost+found");
        names.sort();
        let want: Vec<String> = children(model, &d).cloned().collect();
        assert_eq!(names, want, "seed {seed} step {at}: listing of {d}");
    }
}

/// debugfs dumps the whole tree; the dump must be the model, modes and owners included.
fn check_with_debugfs(image: &Path, model: &Model, seed: u64) {
    let out = tempfile::tempdir().unwrap();
    let dump = out.path().join("dump");
    fs::create_dir(&dump).unwrap();
    let r = tool("debugfs")
        .args(["-R", &format!("rdump / {}", path(&dump)), path(image)])
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "debugfs rdump: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let host = |p: &str| -> PathBuf { dump.join(p.trim_start_matches('/')) };
    for (p, n) in model {
        let h = host(p);
        let meta = fs::symlink_metadata(&h)
            .unwrap_or_else(|e| panic!("seed {seed}: debugfs dump lacks {p}: {e}"));
        match n {
            Node::File {
                data,
                mode,
                uid,
                gid,
                mtime,
            } => {
                assert!(
                    fs::read(&h).unwrap() == *data,
                    "seed {seed}: {p}: content per debugfs"
                );
                // Only 0o777: the host's chown during rdump clears setuid and setgid.
                assert_eq!(
                    (
                        meta.permissions().mode() as u16 & 0o777,
                        meta.uid(),
                        meta.gid(),
                        meta.mtime()
                    ),
                    (*mode & 0o777, *uid, *gid, *mtime),
                    "seed {seed}: {p} per debugfs"
                );
            }
            Node::Dir { mode, uid, gid } => {
                assert!(meta.is_dir(), "seed {seed}: {p}");
                assert_eq!(
                    (
                        meta.permissions().mode() as u16 & 0o777,
                        meta.uid(),
                        meta.gid()
                    ),
                    (*mode & 0o777, *uid, *gid),
                    "seed {seed}: {p} per debugfs"
                );
            }
            Node::Link { target } => assert_eq!(
                fs::read_link(&h).unwrap().to_str().unwrap(),
                target,
                "seed {seed}: {p} per debugfs"
            ),
        }
    }
    let mut on_disk = 0;
    for e in walk(&dump) {
        let rel = format!("/{}", e.strip_prefix(&dump).unwrap().display());
        if rel != "/lost+found" {
            assert!(
                model.contains_key(&rel),
                "seed {seed}: {rel} exists but the model removed it"
            );
            on_disk += 1;
        }
    }
    assert_eq!(on_disk, model.len(), "seed {seed}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// ext4-view, a reader that shares no code with pibake, sees the model's contents.
fn check_with_ext4_view(image: &Path, model: &Model, seed: u64) {
    let v = ext4_view::Ext4::load(Box::new(fs::File::open(image).unwrap())).unwrap();
    for (p, n) in model {
        match n {
            Node::File {
                data,
                mode,
                uid,
                gid,
                ..
            } => {
                assert!(
                    v.read(p.as_str()).unwrap() == *data,
                    "seed {seed}: {p} per ext4-view"
                );
                let m = v.symlink_metadata(p.as_str()).unwrap();
                assert_eq!(
                    (m.mode() & 0o7777, m.uid(), m.gid()),
                    (*mode, *uid, *gid),
                    "seed {seed}: {p} per ext4-view"
                );
            }
            Node::Dir { .. } => assert!(
                v.symlink_metadata(p.as_str()).unwrap().is_dir(),
                "seed {seed}: {p}"
            ),
            Node::Link { target } => assert_eq!(
                v.read_link(p.as_str()).unwrap().to_str().unwrap(),
                target,
                "seed {seed}: {p} per ext4-view"
            ),
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one sequence on `image` (which holds the given starting tree, if any).
fn run(image: &Path, seed: u64, steps: usize, big: bool) {
    let mut rng = Rng(seed);
    let mut model = Model::new();
    let mut fs = open_rw(image);
    // The starting tree (an e2fsck-indexed /seed on mkfs.ext4 images) is part of the
    // model, so the random steps also edit a directory indexed by e2fsprogs.
    fs.mkdir_p("/seed", &Meta::new(0o755, 0, 0)).unwrap();
    let st = fs.stat("/seed").unwrap();
    model.insert(
        "/seed".into(),
        Node::Dir {
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
        },
    );
    for e in fs.read_dir("/seed").unwrap() {
        let p = join("/seed", &e.name);
        let st = fs.stat(&p).unwrap();
        let data = fs.read(&p).unwrap();
        model.insert(
            p,
            Node::File {
                data,
                mode: st.mode,
                uid: st.uid,
                gid: st.gid,
                mtime: st.mtime.secs,
            },
        );
    }
    for i in 0..steps {
        step(&mut fs, &mut model, &mut rng, big);
        if i % 25 == 24 {
            check_with_pibake(&fs, &model, seed, i);
        }
        if i % 100 == 99 {
            fs.commit().unwrap();
            fs = open_rw(image);
        }
    }
    fs.commit().unwrap();
    drop(fs);
    e2fsck_clean(image);
    check_with_debugfs(image, &model, seed);
    check_with_ext4_view(image, &model, seed);
}

/// A starting filesystem made by mkfs.ext4, with an htree directory (`/seed`) from
/// `e2fsck -fyD`.
fn mkfs_ext4(dir: &Path, name: &str, mib: u64, args: &[&str]) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    fs::create_dir_all(tree.join("seed")).unwrap();
    for i in 0..400 {
        fs::write(tree.join(format!("seed/entry-{i}")), "x").unwrap();
    }
    let image = dir.join(format!("{name}.img"));
    let mut all = vec!["-q", "-F", "-d", path(&tree)];
    all.extend_from_slice(args);
    let size = format!("{mib}M");
    all.extend_from_slice(&[path(&image), &size]);
    assert!(tool("mkfs.ext4").args(&all).status().unwrap().success());
    let r = tool("e2fsck")
        .args(["-fyD", path(&image)])
        .output()
        .unwrap();
    assert!(matches!(r.status.code(), Some(0 | 1)));
    image
}

#[test]
fn random_sequences_match_the_model_on_every_layout() {
    let seeds = env("PIBAKE_PROP_SEEDS", 1);
    let steps = env("PIBAKE_PROP_STEPS", 400) as usize;
    let dir = tempfile::tempdir().unwrap();
    let layouts: &[(&str, u64, &[&str])] = &[
        ("4k-pi", 256, &["-b", "4096", "-O", "^64bit,^huge_file"]),
        (
            "4k-64bit-seed-orphan",
            256,
            &["-b", "4096", "-O", "64bit,metadata_csum_seed,orphan_file"],
        ),
        ("1k", 192, &["-b", "1024"]),
        (
            "no-csum",
            192,
            &["-b", "4096", "-O", "^metadata_csum,uninit_bg"],
        ),
    ];
    for s in 0..seeds {
        for (i, (name, mib, args)) in layouts.iter().enumerate() {
            let seed = 1000 * s + i as u64;
            let image = mkfs_ext4(dir.path(), name, *mib, args);
            run(&image, seed, steps, *mib >= 256);
            fs::remove_file(&image).unwrap();
        }
        let image = dir.path().join("pibake-mkfs.img");
        fs::File::create(&image)
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
        Ext4::mkfs(
            device(&image, true),
            &MkfsOptions::new(*b"pibake-prop-test", 1_700_000_000),
        )
        .unwrap();
        run(&image, 1000 * s + 99, steps, true);
        fs::remove_file(&image).unwrap();
    }
}
