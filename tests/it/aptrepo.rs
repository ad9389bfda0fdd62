//! A signed apt repository made at test time: real `.deb`s built by `dpkg-deb`, a
//! `Packages.xz` listing them, a `Release` with its hashes, clearsigned into `InRelease`
//! with a key made for the run; and a base image whose apt setup points at it and
//! trusts that key.

use std::fs;
use std::io::Read;
use std::path::Path;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedSecretKey,
};
use pgp::types::Password;
use sha2::{Digest, Sha256};

use crate::common::{Fixture, tool};

/// One package of the repository.
pub struct Deb {
    pub name: String,
    pub version: String,
    pub control: String,
    pub bytes: Vec<u8>,
}

impl Deb {
    /// A real `.deb` (arm64) holding one file, `/usr/share/pibake-test/<name>`.
    pub fn build(name: &str, version: &str, extra_control: &str) -> Deb {
        Deb::build_with(
            name,
            version,
            extra_control,
            format!("{name} {version}\n").as_bytes(),
        )
    }

    /// The same, with `payload` as that file's contents (stored uncompressed).
    pub fn build_with(name: &str, version: &str, extra_control: &str, payload: &[u8]) -> Deb {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        fs::create_dir_all(root.join("usr/share/pibake-test")).unwrap();
        fs::write(root.join("usr/share/pibake-test").join(name), payload).unwrap();
        let control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: arm64\nMaintainer: Test <test@example.org>\n{extra_control}Description: pibake test package\n"
        );
        fs::write(root.join("DEBIAN/control"), &control).unwrap();
        let bytes = dpkg_deb_build(&root);
        Deb {
            name: name.into(),
            version: version.into(),
            control,
            bytes,
        }
    }

    pub fn pool_path(&self) -> String {
        format!(
            "pool/main/{}/{}/{}_{}_arm64.deb",
            &self.name[..1],
            self.name,
            self.name,
            self.version
        )
    }
}

pub fn keygen() -> SignedSecretKey {
    let mut b = SecretKeyParamsBuilder::default();
    b.key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Test Archive <archive@example.org>".into());
    b.build().unwrap().generate(rand::thread_rng()).unwrap()
}

pub fn armored_public(k: &SignedSecretKey) -> String {
    k.to_public_key()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The repository's files under `/debian/`, as (URL path, bytes), signed by `key`.
pub fn files(debs: &[&Deb], key: &SignedSecretKey) -> Vec<(String, Vec<u8>)> {
    let mut packages = String::new();
    let mut out = Vec::new();
    for d in debs {
        packages.push_str(&d.control);
        packages.push_str(&format!(
            "Installed-Size: 4\nFilename: {}\nSize: {}\nSHA256: {}\n\n",
            d.pool_path(),
            d.bytes.len(),
            hex(&Sha256::digest(&d.bytes))
        ));
        out.push((format!("/debian/{}", d.pool_path()), d.bytes.clone()));
    }
    let mut xz = Vec::new();
    liblzma::read::XzEncoder::new(packages.as_bytes(), 6)
        .read_to_end(&mut xz)
        .unwrap();
    let date = "Tue, 01 Dec 2026 00:00:00 UTC";
    let release = format!(
        "Origin: Test\nLabel: Test\nSuite: stable\nCodename: bookworm\nDate: {date}\nArchitectures: arm64\nComponents: main\nSHA256:\n {} {} main/binary-arm64/Packages.xz\n",
        hex(&Sha256::digest(&xz)),
        xz.len()
    );
    let signed = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &release,
        &key.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap();
    out.push((
        "/debian/dists/bookworm/InRelease".into(),
        signed.into_bytes(),
    ));
    out.push((
        "/debian/dists/bookworm/main/binary-arm64/Packages.xz".into(),
        xz,
    ));
    out
}

/// Gives the fixture's root an apt setup: `sources.list` with `sources`, the key
/// `keyring` in `trusted.gpg.d`, and a dpkg status with `dpkg` and `base-files`.
pub fn install_apt(f: &Fixture, sources: &str, keyring: &str) {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let status = "Package: dpkg\nStatus: install ok installed\nPriority: required\nEssential: yes\nArchitecture: arm64\nVersion: 1.21.22\n\nPackage: base-files\nStatus: install ok installed\nEssential: yes\nArchitecture: arm64\nVersion: 12.4\n\n";
    let cmds = format!(
        "mkdir /etc/apt\nmkdir /etc/apt/trusted.gpg.d\nmkdir /etc/apt/sources.list.d\nmkdir /var\nmkdir /var/lib\nmkdir /var/lib/dpkg\nrm /etc/apt/sources.list\nwrite {} /etc/apt/sources.list\nwrite {} /etc/apt/trusted.gpg.d/test.asc\nrm /var/lib/dpkg/status\nwrite {} /var/lib/dpkg/status\n",
        put("sources", sources),
        put("key", keyring),
        put("status", status)
    );
    let script = put("cmds", &cmds);
    let out = tool("debugfs")
        .args(["-w", "-f", &script, &f.ext4_target()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.assert_clean();
}

/// The `.deb` dpkg-deb builds from `root` (its `DEBIAN/` and files), owned by root,
/// uncompressed.
pub fn dpkg_deb_build(root: &Path) -> Vec<u8> {
    let out = root.with_extension("deb");
    let st = tool("dpkg-deb")
        .args(["--root-owner-group", "-Znone", "--build"])
        .arg(root)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    fs::read(out).unwrap()
}
