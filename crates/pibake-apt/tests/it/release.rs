use std::io::Read;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};
use sha2::{Digest, Sha256};

use pibake_apt::release::{
    Compression, Keyring, ReleaseError, VerifyOptions, check_index, decompress_index, parse_date,
    verify_inrelease,
};

fn keygen(kind: KeyType, signing_subkey: bool) -> SignedSecretKey {
    let mut b = SecretKeyParamsBuilder::default();
    b.key_type(kind.clone())
        .can_certify(true)
        .can_sign(!signing_subkey)
        .primary_user_id("Test Archive <archive@example.org>".into());
    if signing_subkey {
        b.subkey(
            SubkeyParamsBuilder::default()
                .key_type(KeyType::Ed25519Legacy)
                .can_sign(true)
                .build()
                .unwrap(),
        );
    }
    b.build().unwrap().generate(rand::thread_rng()).unwrap()
}

fn public(k: &SignedSecretKey) -> SignedPublicKey {
    k.to_public_key()
}

fn binary_ring(k: &SignedSecretKey) -> Keyring {
    Keyring::from_bytes(&public(k).to_bytes().unwrap()).unwrap()
}

fn armored_ring(k: &SignedSecretKey) -> Keyring {
    let a = public(k)
        .to_armored_string(ArmorOptions::default())
        .unwrap();
    Keyring::from_bytes(a.as_bytes()).unwrap()
}

const DATE: &str = "Sat, 10 Aug 2024 09:40:39 UTC";
const VALID_UNTIL: &str = "Sat, 17 Aug 2024 09:40:39 UTC";

fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(data, 6)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzEncoder::new(data, flate2::Compression::default())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const PACKAGES: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: arm64\nFilename: pool/main/h/hello/hello_2.10-3_arm64.deb\nSize: 1\nSHA256: abababababababababababababababababababababababababababababababab\n";

fn release_text(files: &[(&str, &[u8])]) -> String {
    let mut s = format!(
        "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\nDate: {DATE}\nValid-Until: {VALID_UNTIL}\nAcquire-By-Hash: yes\nArchitectures: amd64 arm64 armhf\nComponents: main contrib non-free-firmware\nDescription: Debian 12.6 Released 29 June 2024\nSHA256:\n"
    );
    for (p, d) in files {
        s.push_str(&format!(
            " {} {:>8} {p}\n",
            hexs(&Sha256::digest(d)),
            d.len()
        ));
    }
    s
}

fn sign(text: &str, k: &SignedSecretKey, subkey: bool) -> String {
    let msg = if subkey {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &k.secret_subkeys[0].key,
            &Password::empty(),
        )
    } else {
        CleartextSignedMessage::sign(rand::thread_rng(), text, &k.primary_key, &Password::empty())
    }
    .unwrap();
    msg.to_armored_string(ArmorOptions::default()).unwrap()
}

fn opts(days_after: i64) -> VerifyOptions {
    VerifyOptions {
        now: parse_date(DATE).unwrap() + days_after * 86400,
        check_valid_until: true,
    }
}

#[test]
fn good_signature_index_selection_and_integrity() {
    let key = keygen(KeyType::Ed25519Legacy, false);
    let packages_xz = xz(PACKAGES.as_bytes());
    let packages_gz = gz(PACKAGES.as_bytes());
    let text = release_text(&[
        ("main/binary-arm64/Packages", PACKAGES.as_bytes()),
        ("main/binary-arm64/Packages.gz", &packages_gz),
        ("main/binary-arm64/Packages.xz", &packages_xz),
        ("contrib/binary-arm64/Packages.gz", &packages_gz),
        (
            "non-free-firmware/binary-arm64/Packages",
            PACKAGES.as_bytes(),
        ),
    ]);
    let signed = sign(&text, &key, false);
    let v = verify_inrelease(signed.as_bytes(), &[binary_ring(&key)], &opts(1)).unwrap();
    assert_eq!(v.signer, format!("{:X}", key.fingerprint()));
    assert_eq!(v.signed_text, text);
    let r = &v.release;
    assert_eq!(r.codename.as_deref(), Some("bookworm"));
    assert_eq!(r.suite.as_deref(), Some("stable"));
    assert_eq!(r.date, parse_date(DATE));
    assert_eq!(r.architectures, ["amd64", "arm64", "armhf"]);
    assert_eq!(r.components, ["main", "contrib", "non-free-firmware"]);
    assert!(r.acquire_by_hash);
    assert_eq!(r.files.len(), 5);

    let e = r.index_for("main", "arm64").unwrap();
    assert_eq!(
        (e.path.as_str(), e.compression),
        ("main/binary-arm64/Packages.xz", Compression::Xz)
    );
    assert_eq!(e.size, packages_xz.len() as u64);
    assert_eq!(
        e.by_hash_path(),
        format!(
            "main/binary-arm64/by-hash/SHA256/{}",
            hexs(&Sha256::digest(&packages_xz))
        )
    );
    check_index(&e, &packages_xz).unwrap();
    assert_eq!(decompress_index(&e, &packages_xz).unwrap(), PACKAGES);

    let g = r.index_for("contrib", "arm64").unwrap();
    assert_eq!(g.compression, Compression::Gz);
    check_index(&g, &packages_gz).unwrap();
    assert_eq!(decompress_index(&g, &packages_gz).unwrap(), PACKAGES);
    let n = r.index_for("non-free-firmware", "arm64").unwrap();
    assert_eq!(n.compression, Compression::None);
    assert_eq!(decompress_index(&n, PACKAGES.as_bytes()).unwrap(), PACKAGES);
    assert!(r.index_for("main", "armhf").is_none());

    // Size mismatch, then hash mismatch, both naming the path.
    let err = check_index(&e, &packages_xz[1..]).unwrap_err().to_string();
    assert!(
        err.starts_with("main/binary-arm64/Packages.xz: size mismatch: expected"),
        "{err}"
    );
    let mut tampered = packages_xz.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = check_index(&e, &tampered).unwrap_err().to_string();
    assert!(
        err.starts_with("main/binary-arm64/Packages.xz: sha256 mismatch: expected"),
        "{err}"
    );

    // Armored keyring works too, and so does opting out of Valid-Until.
    verify_inrelease(signed.as_bytes(), &[armored_ring(&key)], &opts(1)).unwrap();
    let late = VerifyOptions {
        check_valid_until: false,
        ..opts(30)
    };
    verify_inrelease(signed.as_bytes(), &[armored_ring(&key)], &late).unwrap();
}

#[test]
fn expired_valid_until() {
    let key = keygen(KeyType::Ed25519Legacy, false);
    let signed = sign(&release_text(&[]), &key, false);
    let e = verify_inrelease(signed.as_bytes(), &[binary_ring(&key)], &opts(8)).unwrap_err();
    assert!(matches!(e, ReleaseError::Expired { .. }), "{e}");
    assert!(e.to_string().contains(VALID_UNTIL), "{e}");
}

#[test]
fn tampered_text_is_a_bad_signature() {
    let key = keygen(KeyType::Ed25519Legacy, false);
    let signed = sign(&release_text(&[]), &key, false);
    let tampered = signed.replace("Codename: bookworm", "Codename: bookwarm");
    assert_ne!(tampered, signed);
    let e = verify_inrelease(tampered.as_bytes(), &[binary_ring(&key)], &opts(1)).unwrap_err();
    match e {
        ReleaseError::BadSignature { key: k, .. } => {
            assert_eq!(k, format!("{:X}", key.fingerprint()))
        }
        e => panic!("{e}"),
    }
}

#[test]
fn wrong_key_is_named() {
    let key = keygen(KeyType::Ed25519Legacy, false);
    let other = keygen(KeyType::Ed25519Legacy, false);
    let signed = sign(&release_text(&[]), &key, false);
    let e = verify_inrelease(signed.as_bytes(), &[binary_ring(&other)], &opts(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "InRelease is signed only by unknown keys: {:X}",
            key.fingerprint()
        )
    );
}

#[test]
fn no_signature() {
    let key = keygen(KeyType::Ed25519Legacy, false);
    let ring = [binary_ring(&key)];
    let text = release_text(&[]);
    let e = verify_inrelease(text.as_bytes(), &ring, &opts(1)).unwrap_err();
    assert!(matches!(e, ReleaseError::NoSignature(_)), "{e}");
    let signed = sign(&text, &key, false);
    let cut = &signed[..signed.find("-----BEGIN PGP SIGNATURE-----").unwrap()];
    let e = verify_inrelease(cut.as_bytes(), &ring, &opts(1)).unwrap_err();
    assert!(matches!(e, ReleaseError::NoSignature(_)), "{e}");
    // Text outside the signed part is refused, not parsed.
    let prefixed = format!("Codename: evil\n{signed}");
    assert!(verify_inrelease(prefixed.as_bytes(), &ring, &opts(1)).is_err());
    let suffixed = format!("{signed}\nCodename: evil\n");
    assert!(verify_inrelease(suffixed.as_bytes(), &ring, &opts(1)).is_err());
}

#[test]
fn subkey_signature_and_multiple_signatures() {
    let trusted = keygen(KeyType::Ed25519Legacy, true);
    let untrusted = keygen(KeyType::Ed25519Legacy, false);
    let text = release_text(&[]);
    let s1 = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &text,
        &untrusted.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .signatures()[0]
        .clone();
    let s2 = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &text,
        &trusted.secret_subkeys[0].key,
        &Password::empty(),
    )
    .unwrap()
    .signatures()[0]
        .clone();
    let msg = CleartextSignedMessage::new_many(&text, |_| Ok(vec![s1, s2])).unwrap();
    let armored = msg.to_armored_string(ArmorOptions::default()).unwrap();
    assert_eq!(armored.matches("-----BEGIN PGP SIGNATURE-----").count(), 1);
    let v = verify_inrelease(armored.as_bytes(), &[binary_ring(&trusted)], &opts(1)).unwrap();
    // The subkey made the accepted signature.
    assert_eq!(
        v.signer,
        format!("{:X}", trusted.secret_subkeys[0].key.fingerprint())
    );
    assert_ne!(v.signer, format!("{:X}", trusted.fingerprint()));
    // Only the untrusted key known? Then it verifies with that one.
    verify_inrelease(armored.as_bytes(), &[binary_ring(&untrusted)], &opts(1)).unwrap();
    // Neither known: both issuers named.
    let third = keygen(KeyType::Ed25519Legacy, false);
    let e = verify_inrelease(armored.as_bytes(), &[binary_ring(&third)], &opts(1)).unwrap_err();
    match e {
        ReleaseError::UnknownKey(ids) => assert_eq!(ids.len(), 2),
        e => panic!("{e}"),
    }
    // Subkey-signed single signature via the helper.
    let single = sign(&text, &trusted, true);
    verify_inrelease(single.as_bytes(), &[armored_ring(&trusted)], &opts(1)).unwrap();
}

#[test]
fn rsa_key_and_multi_key_keyring() {
    let rsa = keygen(KeyType::Rsa(2048), false);
    let ed = keygen(KeyType::Ed25519Legacy, false);
    // A keyring file with two concatenated keys, as /usr/share/keyrings ships.
    let mut bytes = public(&ed).to_bytes().unwrap();
    bytes.extend(public(&rsa).to_bytes().unwrap());
    let ring = Keyring::from_bytes(&bytes).unwrap();
    assert_eq!(ring.fingerprints().len(), 2);
    let signed = sign(&release_text(&[]), &rsa, false);
    let v = verify_inrelease(signed.as_bytes(), std::slice::from_ref(&ring), &opts(1)).unwrap();
    assert_eq!(v.signer, format!("{:X}", rsa.fingerprint()));
    // Signed-By: <fingerprint> narrows the keyring.
    let only_ed = ring.filter(&[format!("{:X}", ed.fingerprint())]);
    assert_eq!(only_ed.fingerprints().len(), 1);
    assert!(verify_inrelease(signed.as_bytes(), &[only_ed], &opts(1)).is_err());
    assert!(Keyring::from_bytes(b"not a key").is_err());
}

/// A direct-key (or key revocation) self-signature on `k`, made at `created`
/// (Unix seconds) with an optional key expiration (seconds after key creation).
fn direct_sig(
    k: &SignedSecretKey,
    typ: pgp::packet::SignatureType,
    created: u32,
    expires_after: Option<u32>,
) -> pgp::packet::Signature {
    use pgp::packet::{SignatureConfig, Subpacket, SubpacketData};
    use pgp::types::{Duration, Timestamp};
    let mut cfg = SignatureConfig::from_key(rand::thread_rng(), &k.primary_key, typ).unwrap();
    let mut hashed = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            created,
        )))
        .unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(k.fingerprint())).unwrap(),
    ];
    if let Some(e) = expires_after {
        hashed.push(
            Subpacket::regular(SubpacketData::KeyExpirationTime(Duration::from_secs(e))).unwrap(),
        );
    }
    cfg.hashed_subpackets = hashed;
    cfg.sign_key(
        &k.primary_key,
        &Password::empty(),
        k.primary_key.public_key(),
    )
    .unwrap()
}

#[test]
fn revoked_and_expired_keys_are_refused() {
    use pgp::packet::SignatureType;
    let date = parse_date(DATE).unwrap() as u32;
    let key = keygen(KeyType::Ed25519Legacy, false);
    let signed = sign(&release_text(&[]), &key, false);
    let created = key.primary_key.public_key().created_at().as_secs();

    // Revoked (the revocation is honoured whatever its date).
    let mut revoked = public(&key);
    revoked.details.revocation_signatures.push(direct_sig(
        &key,
        SignatureType::KeyRevocation,
        created,
        None,
    ));
    let ring = Keyring::from_bytes(&revoked.to_bytes().unwrap()).unwrap();
    let e = verify_inrelease(signed.as_bytes(), &[ring], &opts(1)).unwrap_err();
    assert!(
        matches!(&e, ReleaseError::KeyNotValid { reason, .. } if reason.contains("revoked")),
        "{e}"
    );

    // Expired: a self-signature in force at the Release date gives the key a
    // lifetime ending before that date. (The key is created "now", so the
    // Release date is moved after it.)
    let later = created.max(date) + 10 * 86400;
    let mut expiring = public(&key);
    expiring.details.direct_signatures.push(direct_sig(
        &key,
        SignatureType::Key,
        later - 86400,
        Some(later - created - 3600),
    ));
    let ring = Keyring::from_bytes(&expiring.to_bytes().unwrap()).unwrap();
    let text = release_text(&[]).replace(
        &format!("Date: {DATE}\nValid-Until: {VALID_UNTIL}\n"),
        &format!("Date: {}\n", rfc2822(later as i64)),
    );
    let signed_late = sign(&text, &key, false);
    let e = verify_inrelease(
        signed_late.as_bytes(),
        std::slice::from_ref(&ring),
        &opts(1),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ReleaseError::KeyNotValid { reason, .. } if reason.contains("expired")),
        "{e}"
    );
    // The same key, a Release dated before the expiry: accepted.
    let text = text.replace(&rfc2822(later as i64), &rfc2822((later - 7200) as i64));
    let ok = sign(&text, &key, false);
    verify_inrelease(ok.as_bytes(), &[ring], &opts(1)).unwrap();
}

/// Unix seconds to `Thu, 01 Jan 1970 00:00:00 UTC` form.
fn rfc2822(t: i64) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (t.div_euclid(86400), t.rem_euclid(86400));
    // Civil from days (Howard Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = format!(
        "Mon, {d:02} {} {y} {:02}:{:02}:{:02} UTC",
        M[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    assert_eq!(parse_date(&s), Some(t));
    s
}

#[test]
fn real_debian_inrelease_with_one_of_two_keys_trusted() {
    let inrelease = include_bytes!("data/bookworm-security.InRelease");
    let ring = Keyring::from_bytes(include_bytes!(
        "data/debian-archive-bookworm-security-automatic.gpg"
    ))
    .unwrap();
    // Primary key 12/bookworm; it signs with its RSA 4096 subkey B0CA...
    assert_eq!(
        ring.fingerprints(),
        ["05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0"]
    );
    let date = parse_date("Mon, 30 Nov 2026 00:22:33 UTC").unwrap();
    let fresh = VerifyOptions {
        now: date + 3600,
        check_valid_until: true,
    };
    let v = verify_inrelease(inrelease, std::slice::from_ref(&ring), &fresh).unwrap();
    assert_eq!(v.signer, "B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8");
    let r = &v.release;
    assert_eq!(r.codename.as_deref(), Some("bookworm-security"));
    assert_eq!(r.date, Some(date));
    assert!(r.acquire_by_hash);
    assert!(r.components.contains(&"updates/main".to_string()));
    // Components says `updates/main`, but files are listed as `main/...`, which
    // is what a `bookworm-security main` source asks for.
    let e = r.index_for("main", "arm64").unwrap();
    assert_eq!(e.path, "main/binary-arm64/Packages.xz");
    assert_eq!(e.size, 382244);
    assert_eq!(e.compression, Compression::Xz);
    // A week and a day later the Release has expired.
    let stale = VerifyOptions {
        now: date + 8 * 86400,
        check_valid_until: true,
    };
    let err = verify_inrelease(inrelease, std::slice::from_ref(&ring), &stale).unwrap_err();
    assert!(matches!(err, ReleaseError::Expired { .. }), "{err}");
    // Unknown keys: both Debian signers are named.
    let other = keygen(KeyType::Ed25519Legacy, false);
    let err = verify_inrelease(inrelease, &[binary_ring(&other)], &fresh).unwrap_err();
    assert_eq!(
        err.to_string(),
        "InRelease is signed only by unknown keys: ED541312A33F1128F10B1C6C54404762BBB6E853, B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8"
    );
    // One changed byte in the signed text breaks the trusted signature.
    let text = std::str::from_utf8(inrelease).unwrap().replacen(
        "Debian 12 - Security",
        "Debian 12 - Insecure",
        1,
    );
    let err = verify_inrelease(text.as_bytes(), &[ring], &fresh).unwrap_err();
    assert!(matches!(err, ReleaseError::BadSignature { .. }), "{err}");
}

#[test]
fn one_bad_signature_among_good_ones_is_fatal() {
    let a = keygen(KeyType::Ed25519Legacy, false);
    let b = keygen(KeyType::Ed25519Legacy, false);
    let text = release_text(&[]);
    let good = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &text,
        &a.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .signatures()[0]
        .clone();
    // b's signature is over other text.
    let other = CleartextSignedMessage::sign(
        rand::thread_rng(),
        "Other: text\n",
        &b.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .signatures()[0]
        .clone();
    let msg = CleartextSignedMessage::new_many(&text, |_| Ok(vec![good, other])).unwrap();
    let armored = msg.to_armored_string(ArmorOptions::default()).unwrap();
    // Only a trusted: fine (b's signature is by an unknown key).
    verify_inrelease(armored.as_bytes(), &[binary_ring(&a)], &opts(1)).unwrap();
    // Both trusted: b's bad signature is fatal.
    let e = verify_inrelease(
        armored.as_bytes(),
        &[binary_ring(&a), binary_ring(&b)],
        &opts(1),
    )
    .unwrap_err();
    match e {
        ReleaseError::BadSignature { key, .. } => assert_eq!(key, format!("{:X}", b.fingerprint())),
        e => panic!("{e}"),
    }
}
