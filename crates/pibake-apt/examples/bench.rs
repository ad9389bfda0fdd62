//! Times parsing a generated Debian-main-sized `Packages` index (60,000
//! paragraphs, ~50 MB) and resolving a ~50-package closure in it.
//!
//! `CARGO_TARGET_DIR=/work/target-apt cargo run --release --example bench`

use std::time::Instant;

use pibake_apt::resolve::{Repository, ResolveInput, resolve};
use pibake_apt::{PackageRequest, parse_packages};

fn generate(n: usize) -> String {
    let mut s = String::with_capacity(n * 900);
    let long = "This is a long description line of a typical Debian package, wrapped as usual.\n"
        .repeat(4);
    let long: String = long.lines().map(|l| format!(" {l}\n")).collect();
    for i in 0..n {
        let deps: Vec<String> = [i / 2, i / 3, i / 5]
            .iter()
            .filter(|&&d| d < i)
            .map(|d| format!("pkg{d} (>= 1.0)"))
            .collect();
        s.push_str(&format!(
            "Package: pkg{i}\nSource: src{}\nVersion: 1.{i}-1+deb12u1\nInstalled-Size: 1234\nMaintainer: Someone <someone@example.org>\nArchitecture: arm64\nMulti-Arch: same\n",
            i / 3
        ));
        if !deps.is_empty() {
            s.push_str(&format!(
                "Depends: {} | alt{i}, libc6 (>= 2.36)\n",
                deps.join(", ")
            ));
        }
        s.push_str(&format!(
            "Provides: virt{i} (= 1.0)\nDescription: package number {i}\n{long}Homepage: https://example.org/{i}\nDescription-md5: 0123456789abcdef0123456789abcdef\nTag: devel::library, role::shared-lib\nSection: libs\nPriority: optional\nFilename: pool/main/p/pkg{i}/pkg{i}_1.{i}-1_arm64.deb\nSize: 123456\nSHA256: {}\n\n",
            "0f".repeat(32)
        ));
    }
    s.push_str(&format!(
        "Package: libc6\nVersion: 2.36-9\nArchitecture: arm64\nFilename: pool/main/g/glibc/libc6_2.36-9_arm64.deb\nSize: 1\nSHA256: {}\n",
        "0f".repeat(32)
    ));
    s
}

fn main() {
    let text = generate(60_000);
    let t = Instant::now();
    let packages = parse_packages(&text).expect("parse");
    let parse = t.elapsed();
    let n = packages.len();
    let repos = [Repository {
        id: "generated".into(),
        packages,
    }];
    let t = Instant::now();
    let req: PackageRequest = "pkg2000".parse().expect("request");
    let r = resolve(
        &[req],
        ResolveInput {
            repositories: &repos,
            installed: &[],
            native_arch: "arm64",
            install_recommends: true,
        },
    )
    .expect("resolve");
    let res = t.elapsed();
    println!(
        "parsed {n} paragraphs ({:.1} MB) in {parse:?}; resolved {} packages in {res:?}",
        text.len() as f64 / 1e6,
        r.packages.len()
    );
}
