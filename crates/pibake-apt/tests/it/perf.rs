//! A generated index of Debian main's size: parse it and resolve a closure.
//! No timing is asserted (see `examples/bench.rs` for a release-mode timing).

use pibake_apt::resolve::{Repository, ResolveInput, resolve};
use pibake_apt::{PackageRequest, parse_packages};

/// `n` paragraphs; package `pkgN` depends on a few lower-numbered ones.
pub fn generate(n: usize) -> String {
    let mut s = String::with_capacity(n * 700);
    for i in 0..n {
        let deps: Vec<String> = [i / 2, i / 3, i / 5]
            .iter()
            .filter(|&&d| d < i)
            .map(|d| format!("pkg{d} (>= 1.0)"))
            .collect();
        s.push_str(&format!(
            "Package: pkg{i}\nSource: src{s}\nVersion: 1.{i}-1+deb12u1\nInstalled-Size: 1234\nMaintainer: Someone <someone@example.org>\nArchitecture: arm64\nMulti-Arch: same\n",
            s = i / 3
        ));
        if !deps.is_empty() {
            s.push_str(&format!(
                "Depends: {} | alt{i}, libc6 (>= 2.36)\n",
                deps.join(", ")
            ));
        }
        s.push_str(&format!(
            "Provides: virt{i} (= 1.0)\nDescription: package number {i}\nHomepage: https://example.org/{i}\nDescription-md5: 0123456789abcdef0123456789abcdef\nTag: devel::library, role::shared-lib\nSection: libs\nPriority: optional\nFilename: pool/main/p/pkg{i}/pkg{i}_1.{i}-1_arm64.deb\nSize: 123456\nSHA256: {}\n\n",
            "0f".repeat(32)
        ));
    }
    s.push_str(&format!(
        "Package: libc6\nVersion: 2.36-9\nArchitecture: arm64\nFilename: pool/main/g/glibc/libc6_2.36-9_arm64.deb\nSize: 1\nSHA256: {}\n",
        "0f".repeat(32)
    ));
    s
}

#[test]
fn sixty_thousand_paragraphs() {
    let text = generate(60_000);
    let pkgs = parse_packages(&text).unwrap();
    assert_eq!(pkgs.len(), 60_001);
    let repos = [Repository {
        id: "gen".into(),
        packages: pkgs,
    }];
    let r = resolve(
        &["pkg2000".parse::<PackageRequest>().unwrap()],
        ResolveInput {
            repositories: &repos,
            installed: &[],
            native_arch: "arm64",
            install_recommends: true,
        },
    )
    .unwrap();
    // pkg2000 plus its dependency closure and libc6.
    assert_eq!(r.packages.len(), 52);
    assert_eq!(r.packages.last().unwrap().name.as_str(), "pkg2000");
    // pkg0 has no dependencies and is reached first.
    assert_eq!(r.packages[0].name.as_str(), "pkg0");
    assert!(r.packages.iter().any(|p| p.name.as_str() == "libc6"));
}
