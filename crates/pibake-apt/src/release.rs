//! `InRelease`: OpenPGP clearsigned verification, `Release` parsing, index
//! selection, integrity checks and decompression.
//!
//! # What is checked (see [`verify_inrelease`])
//! 1. The file is exactly one clearsigned message (no text before the
//!    `BEGIN PGP SIGNED MESSAGE` line or after the signature block; rPGP
//!    enforces both), with at least one signature.
//! 2. Each signature's issuer (fingerprint or key id subpacket) is looked up
//!    among the primary keys and subkeys of the given keyrings. Signatures by
//!    keys not in the keyrings are ignored, but if *no* signature is by a
//!    known key the error names every issuer.
//! 3. The signature verifies over the signed text with that key, with a
//!    digest other than MD5, SHA-1 or RIPEMD-160 (apt refuses those too).
//! 4. The key was valid at the reference time (the Release `Date`, or the
//!    signature's creation time when `Date` is missing): the primary key has a
//!    valid self-signature, has no valid revocation (of any date: a revoked
//!    key could otherwise sign a backdated Release), and is not expired at
//!    that time per the self-signature in force then; a signing subkey
//!    additionally has a valid binding signature with the signing flag and a
//!    valid embedded back signature, no valid subkey revocation, and is not
//!    expired per its binding. The signature itself must not have expired at
//!    that time. (Expiry is judged at the Release's own `Date`, which the
//!    signer chooses; the `Valid-Until` check below is what stops an old or
//!    backdated Release from being replayed.)
//! 5. One signature passing 1-4 is enough (Debian signs with several keys,
//!    and a keyring usually trusts only some of them), but, as in apt, any
//!    signature by a trusted key that fails to verify makes the file bad.
//!    Weak-digest signatures are ignored, and are an error only when no
//!    other signature is good.
//! 6. `Valid-Until`, if present, must not be before the caller's `now`
//!    (unless the caller opts out, like `check-valid-until=no`).
//!
//! Only the text covered by the signature (as rPGP reconstructs it: dash
//! escapes removed, trailing whitespace trimmed, as the OpenPGP cleartext
//! framework defines the hashed text) is parsed as the Release paragraph.

use std::io::Read;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};
use sha2::{Digest, Sha256};

use crate::control;
use crate::index::parse_sha256;

/// Anything that makes an `InRelease` or an index unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// A keyring file could not be read.
    #[error("keyring: {0}")]
    Keyring(String),
    /// The file is not a clearsigned message or carries no signature.
    #[error("InRelease is not signed: {0}")]
    NoSignature(String),
    /// The OpenPGP structure could not be parsed.
    #[error("InRelease: malformed OpenPGP data: {0}")]
    Malformed(String),
    /// No signature was made by a key in the trusted keyrings.
    #[error("InRelease is signed only by unknown keys: {}", .0.join(", "))]
    UnknownKey(Vec<String>),
    /// A signature by a trusted key does not verify (tampered text, weak digest).
    #[error("InRelease: bad signature by key {key}: {reason}")]
    BadSignature {
        /// Fingerprint of the key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The signing key was revoked or expired at the reference time.
    #[error("InRelease: key {key} is not valid: {reason}")]
    KeyNotValid {
        /// Fingerprint of the key (subkey if a subkey signed).
        key: String,
        /// Why.
        reason: String,
    },
    /// `Valid-Until` is in the past.
    #[error("Release expired: Valid-Until {valid_until} is before now ({now})")]
    Expired {
        /// The `Valid-Until` value as written.
        valid_until: String,
        /// Caller's now, as Unix seconds.
        now: i64,
    },
    /// The signed text is not a valid Release paragraph.
    #[error("Release: {0}")]
    Parse(String),
    /// A fetched file does not match the Release's size or hash.
    #[error("{path}: {what} mismatch: expected {expected}, got {got}")]
    Integrity {
        /// Index path as listed in Release.
        path: String,
        /// `size` or `sha256`.
        what: &'static str,
        /// Expected value.
        expected: String,
        /// Actual value.
        got: String,
    },
    /// Decompression failed or exceeded the size limit.
    #[error("{path}: decompression failed: {reason}")]
    Decompress {
        /// Index path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A set of OpenPGP public keys (one keyring file, binary or armored).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn fpr_of(k: &impl KeyDetails) -> String {
    format!("{:X}", k.fingerprint())
}

impl Keyring {
    /// Read a keyring: binary (`.gpg`, concatenated transferable public keys
    /// as in `/usr/share/keyrings`) or armored (`.asc`, one or more
    /// `PUBLIC KEY BLOCK`s). Keys rPGP cannot parse (e.g. obsolete
    /// algorithms) are skipped; a keyring with no usable key is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReleaseError> {
        const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        let text = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| t.contains(BEGIN));
        if let Some(text) = text {
            for (i, _) in text.match_indices(BEGIN) {
                match SignedPublicKey::from_armor_many(&text.as_bytes()[i..]) {
                    Ok((iter, _)) => {
                        for k in iter {
                            match k {
                                Ok(k) => keys.push(k),
                                Err(e) => skipped.push(e.to_string()),
                            }
                        }
                    }
                    Err(e) => skipped.push(e.to_string()),
                }
            }
        } else {
            let iter = SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| ReleaseError::Keyring(e.to_string()))?;
            for k in iter {
                match k {
                    Ok(k) => keys.push(k),
                    Err(e) => skipped.push(e.to_string()),
                }
            }
        }
        if keys.is_empty() {
            return Err(ReleaseError::Keyring(format!(
                "no usable public key ({})",
                if skipped.is_empty() {
                    "empty".to_string()
                } else {
                    skipped.join("; ")
                }
            )));
        }
        Ok(Keyring { keys })
    }

    /// Fingerprints (upper-case hex) of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr_of(&k.primary_key)).collect()
    }

    /// Keep only keys whose primary or subkey fingerprint (or 16-digit key
    /// id) is in `wanted` (for `Signed-By: <fingerprints>`).
    pub fn filter(&self, wanted: &[String]) -> Keyring {
        let hit = |f: String, id: String| {
            wanted
                .iter()
                .any(|w| w.eq_ignore_ascii_case(&f) || w.eq_ignore_ascii_case(&id))
        };
        let keys = self
            .keys
            .iter()
            .filter(|k| {
                hit(
                    fpr_of(&k.primary_key),
                    hex(k.primary_key.legacy_key_id().as_ref()),
                ) || k
                    .public_subkeys
                    .iter()
                    .any(|s| hit(fpr_of(&s.key), hex(s.key.legacy_key_id().as_ref())))
            })
            .cloned()
            .collect();
        Keyring { keys }
    }
}

/// Caller's settings for [`verify_inrelease`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// The current time, Unix seconds.
    pub now: i64,
    /// Refuse a Release whose `Valid-Until` is before `now` (default apt behaviour).
    pub check_valid_until: bool,
}

/// Which key component made a signature.
enum Component<'a> {
    Primary,
    Sub(&'a SignedPublicSubKey),
}

fn issuers(sig: &Signature) -> Vec<String> {
    let mut v: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    if v.is_empty() {
        v = sig
            .issuer_key_id()
            .iter()
            .map(|k| hex(k.as_ref()))
            .collect();
    }
    v
}

fn find_key<'a>(
    keyrings: &'a [Keyring],
    sig: &Signature,
) -> Option<(&'a SignedPublicKey, Component<'a>)> {
    let fprs: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    let ids: Vec<String> = sig
        .issuer_key_id()
        .iter()
        .map(|k| hex(k.as_ref()))
        .collect();
    let matches = |k: &dyn KeyDetails| {
        let f = format!("{:X}", k.fingerprint());
        let id = hex(k.legacy_key_id().as_ref());
        fprs.contains(&f) || (fprs.is_empty() && ids.contains(&id))
    };
    for ring in keyrings {
        for key in &ring.keys {
            if matches(&key.primary_key) {
                return Some((key, Component::Primary));
            }
            for sub in &key.public_subkeys {
                if matches(&sub.key) {
                    return Some((key, Component::Sub(sub)));
                }
            }
        }
    }
    None
}

fn secs(t: Option<pgp::types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.as_secs() as i64)
}

fn expired(created: i64, exp: Option<pgp::types::Duration>, at: i64) -> bool {
    match exp.map(|d| d.as_secs()) {
        None | Some(0) => false,
        Some(d) => at >= created + d as i64,
    }
}

/// The self-signature in force at `at`: the latest one made at or before
/// `at`, else (keys whose self-signatures were all refreshed after an old
/// Release's date) the earliest one.
fn pick_selfsig<'s>(sigs: &[&'s Signature], at: i64) -> Option<&'s Signature> {
    sigs.iter()
        .copied()
        .filter(|s| secs(s.created()) <= at)
        .max_by_key(|s| secs(s.created()))
        .or_else(|| sigs.iter().copied().min_by_key(|s| secs(s.created())))
}

/// Is the key (and the signing component) valid at time `at`?
fn check_key(key: &SignedPublicKey, comp: &Component, at: i64) -> Result<(), String> {
    let primary = &key.primary_key;
    for rev in &key.details.revocation_signatures {
        // Any valid revocation counts, whatever its date: a compromised key
        // could otherwise sign a backdated Release.
        if rev.verify_key(primary).is_ok() {
            return Err("primary key is revoked".into());
        }
    }
    // Latest valid self-signature (user id certifications or direct key signatures).
    let mut selfsigs: Vec<&Signature> = Vec::new();
    for u in &key.details.users {
        for s in &u.signatures {
            if s.is_certification()
                && s.typ() != Some(SignatureType::CertRevocation)
                && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
            {
                selfsigs.push(s);
            }
        }
    }
    for s in &key.details.direct_signatures {
        if s.verify_key(primary).is_ok() {
            selfsigs.push(s);
        }
    }
    let latest = pick_selfsig(&selfsigs, at).ok_or("primary key has no valid self-signature")?;
    let pcreated = primary.created_at().as_secs() as i64;
    if expired(pcreated, latest.key_expiration_time(), at) {
        return Err("primary key is expired".into());
    }
    if let Component::Sub(sub) = comp {
        let mut bindings = Vec::new();
        for s in &sub.signatures {
            if s.verify_subkey_binding(primary, &sub.key).is_err() {
                continue;
            }
            match s.typ() {
                Some(SignatureType::SubkeyRevocation) => {
                    return Err("subkey is revoked".into());
                }
                Some(SignatureType::SubkeyBinding) => bindings.push(s),
                _ => {}
            }
        }
        let b = pick_selfsig(&bindings, at).ok_or("subkey has no valid binding signature")?;
        if !b.key_flags().sign() {
            return Err("subkey is not signing-capable".into());
        }
        let back_ok = b
            .embedded_signature()
            .is_some_and(|bs| bs.verify_primary_key_binding(&sub.key, primary).is_ok());
        if !back_ok {
            return Err("signing subkey has no valid back signature".into());
        }
        if expired(
            sub.key.created_at().as_secs() as i64,
            b.key_expiration_time(),
            at,
        ) {
            return Err("subkey is expired".into());
        }
    }
    Ok(())
}

/// A Release that passed [`verify_inrelease`].
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    /// The parsed Release.
    pub release: Release,
    /// Fingerprint of the (sub)key whose signature was accepted.
    pub signer: String,
    /// The signed text (with `\n` line endings) that was parsed.
    pub signed_text: String,
}

/// Verify an `InRelease` file against trusted keyrings and parse its signed
/// text; see the module doc for exactly what is checked.
pub fn verify_inrelease(
    inrelease: &[u8],
    keyrings: &[Keyring],
    opts: &VerifyOptions,
) -> Result<VerifiedRelease, ReleaseError> {
    let text =
        std::str::from_utf8(inrelease).map_err(|_| ReleaseError::Malformed("not UTF-8".into()))?;
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(ReleaseError::NoSignature(
            "does not start with `-----BEGIN PGP SIGNED MESSAGE-----`".into(),
        ));
    }
    if !text.contains("-----BEGIN PGP SIGNATURE-----") {
        return Err(ReleaseError::NoSignature("no signature block".into()));
    }
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| ReleaseError::Malformed(e.to_string()))?;
    if msg.signatures().is_empty() {
        return Err(ReleaseError::NoSignature("signature block is empty".into()));
    }
    let signed = msg.signed_text();
    let mut unknown = Vec::new();
    let mut bad = None;
    let mut weak_sig = None;
    let mut good = Vec::new();
    for sig in msg.signatures() {
        let Some((key, comp)) = find_key(keyrings, sig) else {
            unknown.extend(issuers(sig));
            continue;
        };
        let (fpr, res) = match &comp {
            Component::Primary => (
                fpr_of(&key.primary_key),
                sig.verify(&key.primary_key, signed.as_bytes()),
            ),
            Component::Sub(s) => (fpr_of(&s.key), sig.verify(&s.key, signed.as_bytes())),
        };
        let weak = matches!(
            sig.hash_alg(),
            Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) | None
        );
        match res {
            Ok(()) if weak => {
                weak_sig.get_or_insert((fpr, "weak digest algorithm".to_string()));
            }
            Ok(()) => good.push((sig, key, comp, fpr)),
            Err(e) => {
                bad.get_or_insert((fpr, e.to_string()));
            }
        }
    }
    // Like apt, a signature by a trusted key that does not verify is fatal
    // even when another one does; a weak-digest one is only ignored.
    if let Some((key, reason)) = bad {
        return Err(ReleaseError::BadSignature { key, reason });
    }
    if good.is_empty() {
        return Err(match weak_sig {
            Some((key, reason)) => ReleaseError::BadSignature { key, reason },
            None => ReleaseError::UnknownKey(unknown),
        });
    }
    let lf = signed.replace("\r\n", "\n");
    let release = Release::parse(&lf)?;
    let mut invalid = None;
    let mut signer = None;
    for (sig, key, comp, fpr) in &good {
        let at = release.date.unwrap_or_else(|| secs(sig.created()));
        if expired(secs(sig.created()), sig.signature_expiration_time(), at) {
            invalid.get_or_insert((fpr.clone(), "signature is expired".to_string()));
            continue;
        }
        match check_key(key, comp, at) {
            Ok(()) => {
                signer = Some(fpr.clone());
                break;
            }
            Err(reason) => {
                invalid.get_or_insert((fpr.clone(), reason));
            }
        }
    }
    let Some(signer) = signer else {
        let (key, reason) = invalid.expect("a reason for every rejected signature");
        return Err(ReleaseError::KeyNotValid { key, reason });
    };
    if opts.check_valid_until
        && let (Some(vu), Some(text)) = (release.valid_until, &release.valid_until_text)
        && vu < opts.now
    {
        return Err(ReleaseError::Expired {
            valid_until: text.clone(),
            now: opts.now,
        });
    }
    Ok(VerifiedRelease {
        release,
        signer,
        signed_text: lf,
    })
}

/// Compression of an index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.xz`
    Xz,
    /// `.gz`
    Gz,
    /// uncompressed
    None,
}

/// One file listed in the Release `SHA256` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Path relative to `dists/<suite>/` (`main/binary-arm64/Packages.xz`).
    pub path: String,
    /// Expected size in bytes.
    pub size: u64,
    /// Expected SHA-256.
    pub sha256: [u8; 32],
    /// Compression implied by the file name.
    pub compression: Compression,
}

impl IndexEntry {
    /// The `by-hash` path (`main/binary-arm64/by-hash/SHA256/<hex>`), to be
    /// used when the Release says `Acquire-By-Hash: yes`.
    pub fn by_hash_path(&self) -> String {
        let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
        let h: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        if dir.is_empty() {
            format!("by-hash/SHA256/{h}")
        } else {
            format!("{dir}/by-hash/SHA256/{h}")
        }
    }
}

/// A parsed Release paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Origin:`
    pub origin: Option<String>,
    /// `Label:`
    pub label: Option<String>,
    /// `Suite:`
    pub suite: Option<String>,
    /// `Codename:`
    pub codename: Option<String>,
    /// `Date:` as Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until:` as Unix seconds.
    pub valid_until: Option<i64>,
    /// `Valid-Until:` as written.
    pub valid_until_text: Option<String>,
    /// `Architectures:`
    pub architectures: Vec<String>,
    /// `Components:`
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`
    pub acquire_by_hash: bool,
    /// The `SHA256:` file list.
    pub files: Vec<IndexEntry>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parse an RFC 2822 date as used in Release files
/// (`Sat, 10 Aug 2024 09:40:39 UTC`, zone `UTC`, `GMT`, `Z` or `+hhmm`)
/// into Unix seconds.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.split_once(',').map_or(s, |(_, r)| r).trim();
    let w: Vec<&str> = s.split_whitespace().collect();
    if w.len() < 4 {
        return None;
    }
    let day: i64 = w[0].parse().ok()?;
    let month = MONTHS.iter().position(|m| w[1].eq_ignore_ascii_case(m))? as i64 + 1;
    let year: i64 = w[2].parse().ok()?;
    let hms: Vec<i64> = w[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // In range, every field keeps the arithmetic below far from overflow.
    let (hour, min, sec) = (
        hms[0],
        hms.get(1).copied()?,
        hms.get(2).copied().unwrap_or(0),
    );
    if hms.len() > 3
        || !(1..=31).contains(&day)
        || !(0..=9999).contains(&year)
        || !(0..=23).contains(&hour)
        || !(0..=59).contains(&min)
        || !(0..=60).contains(&sec)
    {
        return None;
    }
    let offset = match w.get(4).copied() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().ok()?;
            let o = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -o } else { o }
        }
        Some(_) => return None,
    };
    // Days from civil (Howard Hinnant).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hour * 3600 + min * 60 + sec - offset)
}

impl Release {
    /// Parse a Release paragraph (the signed text of an InRelease). This
    /// verifies nothing: use [`verify_inrelease`] on fetched files.
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let paras = control::parse(text).map_err(|e| ReleaseError::Parse(e.to_string()))?;
        if paras.len() != 1 {
            return Err(ReleaseError::Parse(format!(
                "expected one paragraph, found {}",
                paras.len()
            )));
        }
        let p = &paras[0];
        let s = |n: &str| p.get(n).map(str::to_string);
        let list = |n: &str| -> Vec<String> {
            p.get(n)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let date_of = |n: &str| -> Result<Option<i64>, ReleaseError> {
            p.get(n)
                .map(|v| {
                    parse_date(v).ok_or_else(|| {
                        ReleaseError::Parse(format!("line {}: bad {n} `{v}`", p.line_of(n)))
                    })
                })
                .transpose()
        };
        let mut files = Vec::new();
        if let Some(f) = p.field("SHA256") {
            // The value starts on the line after `SHA256:`.
            for (i, l) in f.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                let bad = || {
                    ReleaseError::Parse(format!("line {}: bad SHA256 entry `{l}`", f.line + 1 + i))
                };
                let w: Vec<&str> = l.split_whitespace().collect();
                if w.len() != 3 {
                    return Err(bad());
                }
                let sha256 = parse_sha256(w[0]).ok_or_else(bad)?;
                let size = w[1].parse().map_err(|_| bad())?;
                let path = w[2].to_string();
                if path.starts_with('/') || path.split('/').any(|x| x == ".." || x.is_empty()) {
                    return Err(bad());
                }
                let compression = if path.ends_with(".xz") {
                    Compression::Xz
                } else if path.ends_with(".gz") {
                    Compression::Gz
                } else {
                    Compression::None
                };
                files.push(IndexEntry {
                    path,
                    size,
                    sha256,
                    compression,
                });
            }
        }
        Ok(Release {
            origin: s("Origin"),
            label: s("Label"),
            suite: s("Suite"),
            codename: s("Codename"),
            date: date_of("Date")?,
            valid_until: date_of("Valid-Until")?,
            valid_until_text: s("Valid-Until"),
            architectures: list("Architectures"),
            components: list("Components"),
            acquire_by_hash: p
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
        })
    }

    /// The `Packages` index for `component` and `arch`
    /// (`main/binary-arm64/Packages.xz`, else `.gz`, else uncompressed).
    pub fn index_for(&self, component: &str, arch: &str) -> Option<IndexEntry> {
        let base = format!("{component}/binary-{arch}/Packages");
        [".xz", ".gz", ""].iter().find_map(|ext| {
            let want = format!("{base}{ext}");
            self.files.iter().find(|f| f.path == want).cloned()
        })
    }
}

/// Check fetched bytes against a Release entry (size first, then SHA-256).
pub fn check_index(entry: &IndexEntry, bytes: &[u8]) -> Result<(), ReleaseError> {
    if bytes.len() as u64 != entry.size {
        return Err(ReleaseError::Integrity {
            path: entry.path.clone(),
            what: "size",
            expected: entry.size.to_string(),
            got: bytes.len().to_string(),
        });
    }
    let got: [u8; 32] = Sha256::digest(bytes).into();
    if got != entry.sha256 {
        let h = |b: &[u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        return Err(ReleaseError::Integrity {
            path: entry.path.clone(),
            what: "sha256",
            expected: h(&entry.sha256),
            got: h(&got),
        });
    }
    Ok(())
}

/// Largest decompressed index accepted (Debian main arm64 is ~50 MB).
pub const MAX_INDEX_SIZE: u64 = 1 << 30;

/// Decompress an index (checked with [`check_index`] first) to text.
pub fn decompress_index(entry: &IndexEntry, bytes: &[u8]) -> Result<String, ReleaseError> {
    let fail = |reason: String| ReleaseError::Decompress {
        path: entry.path.clone(),
        reason,
    };
    let mut out = Vec::new();
    let r: Box<dyn Read + '_> = match entry.compression {
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(bytes)),
        Compression::Gz => Box::new(flate2::read::GzDecoder::new(bytes)),
        Compression::None => Box::new(bytes),
    };
    r.take(MAX_INDEX_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(|e| fail(e.to_string()))?;
    if out.len() as u64 > MAX_INDEX_SIZE {
        return Err(fail(format!("larger than {MAX_INDEX_SIZE} bytes")));
    }
    String::from_utf8(out).map_err(|_| fail("not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Sat, 10 Aug 2024 09:40:39 UTC"),
            Some(1723282839)
        );
        assert_eq!(
            parse_date("Sat, 10 Aug 2024 11:40:39 +0200"),
            Some(1723282839)
        );
        assert_eq!(parse_date("garbage"), None);
    }
}
