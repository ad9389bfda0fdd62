use pibake_apt::sources::{SignedBy, SourcesError, parse_sources};

#[test]
fn bookworm_one_line() {
    let main = "# Debian\ndeb http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware\n\
deb http://deb.debian.org/debian-security/ bookworm-security main contrib non-free non-free-firmware\n\
deb http://deb.debian.org/debian bookworm-updates main contrib non-free non-free-firmware\n\
# Uncomment deb-src lines below then 'apt-get update' to enable 'apt-get source'\n\
#deb-src http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware\n\
deb-src http://deb.debian.org/debian bookworm main\n";
    let s = parse_sources("/etc/apt/sources.list", main).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].uri.as_str(), "http://deb.debian.org/debian");
    assert_eq!(s[0].suite, "bookworm");
    assert_eq!(
        s[0].components,
        ["main", "contrib", "non-free", "non-free-firmware"]
    );
    assert_eq!(s[0].signed_by, None);
    assert_eq!(s[1].uri.as_str(), "http://deb.debian.org/debian-security");
    assert_eq!(s[1].suite, "bookworm-security");
    assert_eq!(
        s[1].dist_url("InRelease"),
        "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease"
    );
    assert_eq!(
        (s[2].file.as_str(), s[2].line),
        ("/etc/apt/sources.list", 4)
    );

    let raspi = parse_sources(
        "/etc/apt/sources.list.d/raspi.list",
        "deb http://archive.raspberrypi.com/debian/ bookworm main\n# Uncomment line below then 'apt-get update' to enable 'apt-get source'\n#deb-src http://archive.raspberrypi.com/debian/ bookworm main\n",
    )
    .unwrap();
    assert_eq!(raspi.len(), 1);
    assert_eq!(
        raspi[0].uri.as_str(),
        "http://archive.raspberrypi.com/debian"
    );
    assert_eq!(raspi[0].signed_by, None);

    let opts = parse_sources(
        "x.list",
        "deb [arch=arm64,armhf signed-by=/usr/share/keyrings/x.gpg check-valid-until=no] https://example.org/debian bookworm main contrib non-free-firmware\n",
    )
    .unwrap();
    assert_eq!(opts[0].architectures, ["arm64", "armhf"]);
    assert_eq!(
        opts[0].signed_by,
        Some(SignedBy::Path("/usr/share/keyrings/x.gpg".into()))
    );
    assert!(!opts[0].check_valid_until);
    assert!(opts[0].serves_arch("armhf") && !opts[0].serves_arch("amd64"));
}

#[test]
fn trixie_deb822() {
    let debian = "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: trixie trixie-updates\nComponents: main contrib non-free non-free-firmware\nSigned-By: /usr/share/keyrings/debian-archive-keyring.pgp\n\n\
Types: deb\nURIs: http://deb.debian.org/debian-security/\nSuites: trixie-security\nComponents: main contrib non-free non-free-firmware\nSigned-By: /usr/share/keyrings/debian-archive-keyring.pgp\n\n\
Types: deb-src\nURIs: http://deb.debian.org/debian/\nSuites: trixie\nComponents: main\n\n\
Enabled: no\nTypes: deb\nURIs: http://example.org/\nSuites: trixie\nComponents: main\n";
    let s = parse_sources("/etc/apt/sources.list.d/debian.sources", debian).unwrap();
    let got: Vec<(String, String, usize)> = s
        .iter()
        .map(|s| (s.uri.to_string(), s.suite.clone(), s.line))
        .collect();
    assert_eq!(
        got,
        [
            ("http://deb.debian.org/debian".into(), "trixie".into(), 1),
            (
                "http://deb.debian.org/debian".into(),
                "trixie-updates".into(),
                1
            ),
            (
                "http://deb.debian.org/debian-security".into(),
                "trixie-security".into(),
                7
            )
        ]
    );
    assert_eq!(
        s[0].signed_by,
        Some(SignedBy::Path(
            "/usr/share/keyrings/debian-archive-keyring.pgp".into()
        ))
    );

    let raspi = "Types: deb\nURIs: http://archive.raspberrypi.com/debian/\nSuites: trixie\nComponents: main\nArchitectures: arm64 armhf\nSigned-By: /usr/share/keyrings/raspberrypi-archive-keyring.pgp\n";
    let s = parse_sources("/etc/apt/sources.list.d/raspi.sources", raspi).unwrap();
    assert_eq!(s[0].architectures, ["arm64", "armhf"]);

    let inline = "Types: deb\nURIs: https://example.org/apt\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEZabc\n =abcd\n -----END PGP PUBLIC KEY BLOCK-----\n";
    let s = parse_sources("ex.sources", inline).unwrap();
    assert_eq!(
        s[0].signed_by,
        Some(SignedBy::Inline(
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZabc\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n".to_vec()
        ))
    );
}

fn err(file: &str, text: &str) -> String {
    parse_sources(file, text).unwrap_err().to_string()
}

#[test]
fn bad_input_names_file_and_line() {
    assert_eq!(
        err(
            "a.list",
            "deb http://x/debian bookworm main\ndeb ftp://x/debian bookworm main\n"
        ),
        "a.list:2: URI scheme `ftp` is not supported (only http, https, file)"
    );
    assert_eq!(
        err("a.list", "\n\ndebx http://x/ bookworm main"),
        "a.list:3: unknown type `debx` (expected deb or deb-src)"
    );
    assert_eq!(
        err("a.list", "deb http://x/ bookworm"),
        "a.list:1: suite `bookworm` has no components"
    );
    assert_eq!(
        err("a.list", "deb [arch=arm64 http://x/ bookworm main"),
        "a.list:1: missing `]` after options"
    );
    assert!(
        err("a.list", "deb [trusted=yes] http://x/ bookworm main")
            .starts_with("a.list:1: unsupported: `trusted: yes`")
    );
    assert_eq!(
        err("a.list", "deb http://x/ ./ \n"),
        "a.list:1: unsupported: flat repository `./` (suite ending in `/` without components)"
    );
    assert!(matches!(
        parse_sources("a.list", "deb http://x/ ./"),
        Err(SourcesError::Unsupported { .. })
    ));
    assert_eq!(
        err("a.list", "deb http://x/ ../../etc main"),
        "a.list:1: invalid suite `../../etc`"
    );
    assert_eq!(
        err(
            "d.sources",
            "Types: deb\nURIs: http://x/\nSuites: s\nComponents: main\n\nTypes: deb\nURIs: http://x/\nComponents: main\n"
        ),
        "d.sources:6: missing Suites"
    );
    assert_eq!(
        err(
            "d.sources",
            "Types: deb\nURIs: http://x/\nSuites: s\nComponents: main\nEnabled: maybe\n"
        ),
        "d.sources:5: bad boolean `maybe`"
    );
    assert_eq!(
        err(
            "d.sources",
            "Types: deb\nURIs: http://x/\n  junk line without colon\nbroken\n"
        ),
        "d.sources:4: expected `Name: value`, found `broken`"
    );
    assert!(
        err(
            "d.sources",
            "Types: deb\nURIs: http://x/\nSuites: s\nComponents: main\nTrusted: yes\n"
        )
        .starts_with("d.sources:5: unsupported")
    );
    assert!(err("x.conf", "").contains("unsupported"));
}
