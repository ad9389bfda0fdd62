//! Integration tests for pibake-apt (one binary, several modules).

mod index;
mod perf;
mod release;
mod resolve;
mod sources;

/// A Packages paragraph: `Package`, `Version`, then `extra` lines
/// (`Architecture: arm64` unless given), with download fields filled in.
pub fn para(name: &str, version: &str, extra: &str) -> String {
    let mut s = format!("Package: {name}\nVersion: {version}\n");
    if !extra.contains("Architecture:") {
        s.push_str("Architecture: arm64\n");
    }
    for l in extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
        s.push_str(l);
        s.push('\n');
    }
    let arch = extra
        .lines()
        .find_map(|l| l.trim().strip_prefix("Architecture: "))
        .unwrap_or("arm64");
    s.push_str(&format!(
        "Filename: pool/main/{}/{name}/{name}_{}_{arch}.deb\nSize: 1000\nSHA256: {}\nInstalled-Size: 10\n\n",
        &name[..1],
        version.replace(':', "%3a"),
        "ab".repeat(32)
    ));
    s
}
