//! apt sources as an image has them: `/etc/apt/sources.list`,
//! `/etc/apt/sources.list.d/*.list` (one-line format) and
//! `/etc/apt/sources.list.d/*.sources` (deb822 format), per sources.list(5).
//!
//! Only `deb` entries are kept (`deb-src` is ignored). Options that would
//! weaken verification (`trusted=yes`, `allow-insecure=yes`,
//! `allow-weak=yes`, `allow-downgrade-to-insecure=yes`) are refused: pibake
//! always verifies the archive signature. Flat repositories (`suite/` with no
//! components) are refused as unsupported. Unknown options are ignored, as apt
//! ignores those it does not know.

use std::fmt;

use crate::control;
use crate::relation::valid_arch;

/// A refused sources file, naming the file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    /// The text is malformed.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// File name as given by the caller.
        file: String,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The entry is well-formed but uses something pibake does not support.
    #[error("{file}:{line}: unsupported: {message}")]
    Unsupported {
        /// File name as given by the caller.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is not supported.
        message: String,
    },
}

/// An archive base URI: `http`, `https` or `file`, no whitespace or control
/// characters. Stored without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

impl Uri {
    /// Validate an archive URI.
    pub fn new(s: &str) -> Result<Self, String> {
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "URI `{s}` contains whitespace or control characters"
            ));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!("URI `{s}` has no scheme"));
        };
        if !matches!(scheme, "http" | "https" | "file") {
            return Err(format!(
                "URI scheme `{scheme}` is not supported (only http, https, file)"
            ));
        }
        if rest.trim_matches('/').is_empty() {
            return Err(format!("URI `{s}` has no host or path"));
        }
        if rest.split('/').any(|seg| seg == "..") {
            return Err(format!("URI `{s}` contains `..`"));
        }
        Ok(Uri(s.trim_end_matches('/').to_string()))
    }

    /// The URI, without trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme (`http`, `https` or `file`).
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(s, _)| s)
    }

    /// `self/path` (path given without a leading `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}/{}", self.0, path.trim_start_matches('/'))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which keys may sign a source's `InRelease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// A keyring file path in the image (`/usr/share/keyrings/x.gpg`).
    Path(String),
    /// An armored public key block written inline in a `.sources` file.
    Inline(Vec<u8>),
    /// One or more key fingerprints (looked up in the default keyrings).
    Fingerprints(Vec<String>),
}

/// One repository to read: a (URI, suite) pair with its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Archive base URI.
    pub uri: Uri,
    /// Suite or codename (`bookworm`, `bookworm-security`).
    pub suite: String,
    /// Components (`main`, `contrib`, ...), never empty.
    pub components: Vec<String>,
    /// `arch=` / `Architectures:` restriction; empty means all configured.
    pub architectures: Vec<String>,
    /// `signed-by`; `None` means the default trusted keyrings
    /// (`/etc/apt/trusted.gpg.d/*`).
    pub signed_by: Option<SignedBy>,
    /// `check-valid-until=no` / `Check-Valid-Until: no` was given.
    pub check_valid_until: bool,
    /// File the entry came from.
    pub file: String,
    /// 1-based line of the entry (deb822: the paragraph's first line).
    pub line: usize,
}

impl Source {
    /// Does this source serve architecture `arch`?
    pub fn serves_arch(&self, arch: &str) -> bool {
        self.architectures.is_empty() || self.architectures.iter().any(|a| a == arch)
    }

    /// URL of a file under `dists/<suite>/` (e.g. `InRelease`,
    /// `main/binary-arm64/Packages.xz`).
    pub fn dist_url(&self, path: &str) -> String {
        self.uri.join(&format!("dists/{}/{}", self.suite, path))
    }
}

/// Parse one sources file. The format is chosen by the name: `*.list`
/// (including `sources.list`) is one-line, `*.sources` is deb822.
pub fn parse_sources(file: &str, text: &str) -> Result<Vec<Source>, SourcesError> {
    if file.ends_with(".list") {
        parse_one_line(file, text)
    } else if file.ends_with(".sources") {
        parse_deb822(file, text)
    } else {
        Err(SourcesError::Unsupported {
            file: file.into(),
            line: 0,
            message: "apt only reads files ending in .list or .sources".into(),
        })
    }
}

struct Ctx<'a> {
    file: &'a str,
    line: usize,
}

impl Ctx<'_> {
    fn invalid(&self, m: impl Into<String>) -> SourcesError {
        SourcesError::Invalid {
            file: self.file.into(),
            line: self.line,
            message: m.into(),
        }
    }
    fn unsupported(&self, m: impl Into<String>) -> SourcesError {
        SourcesError::Unsupported {
            file: self.file.into(),
            line: self.line,
            message: m.into(),
        }
    }
}

fn is_true(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" | "enable" => Some(true),
        "no" | "false" | "0" | "off" | "disable" => Some(false),
        _ => None,
    }
}

fn check_insecure(cx: &Ctx, key: &str, value: &str) -> Result<(), SourcesError> {
    let k = key.to_ascii_lowercase();
    if matches!(
        k.as_str(),
        "trusted" | "allow-insecure" | "allow-weak" | "allow-downgrade-to-insecure"
    ) && is_true(value) != Some(false)
    {
        return Err(cx.unsupported(format!(
            "`{key}: {value}` would skip signature checks; pibake always verifies"
        )));
    }
    Ok(())
}

fn parse_signed_by(cx: &Ctx, v: &str) -> Result<SignedBy, SourcesError> {
    let v = v.trim();
    if v.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        // deb822 encodes empty lines of the block as " ."
        let mut out = String::new();
        for l in v.lines() {
            let l = l.trim();
            out.push_str(if l == "." { "" } else { l });
            out.push('\n');
        }
        return Ok(SignedBy::Inline(out.into_bytes()));
    }
    let items: Vec<&str> = v
        .split([',', ' ', '\t', '\n'])
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(cx.invalid("empty Signed-By"));
    }
    if items.len() == 1 && items[0].starts_with('/') {
        return Ok(SignedBy::Path(items[0].to_string()));
    }
    if items.iter().all(|i| {
        let h = i.trim_end_matches('!');
        (h.len() == 40 || h.len() == 16 || h.len() == 64)
            && h.bytes().all(|b| b.is_ascii_hexdigit())
    }) {
        return Ok(SignedBy::Fingerprints(
            items
                .iter()
                .map(|s| s.trim_end_matches('!').to_uppercase())
                .collect(),
        ));
    }
    Err(cx.unsupported(format!(
        "Signed-By `{v}`: expected one absolute keyring path, fingerprints, or an inline key"
    )))
}

fn check_suite(cx: &Ctx, suite: &str, components: &[String]) -> Result<(), SourcesError> {
    if suite.ends_with('/') {
        if components.is_empty() {
            return Err(cx.unsupported(format!(
                "flat repository `{suite}` (suite ending in `/` without components)"
            )));
        }
        return Err(cx.invalid(format!(
            "suite `{suite}` ends in `/` but components are given"
        )));
    }
    if suite.is_empty()
        || suite
            .split('/')
            .any(|s| s.is_empty() || s == ".." || s == ".")
        || suite.contains('$')
        || suite.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(cx.invalid(format!("invalid suite `{suite}`")));
    }
    if components.is_empty() {
        return Err(cx.invalid(format!("suite `{suite}` has no components")));
    }
    for c in components {
        if c.split('/').any(|s| s.is_empty() || s == ".." || s == ".")
            || c.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(cx.invalid(format!("invalid component `{c}`")));
        }
    }
    Ok(())
}

fn parse_archs(cx: &Ctx, v: &str) -> Result<Vec<String>, SourcesError> {
    let mut out = Vec::new();
    for a in v.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
        if !valid_arch(a) {
            return Err(cx.invalid(format!("invalid architecture `{a}`")));
        }
        out.push(a.to_string());
    }
    Ok(out)
}

/// Parse the one-line format (`deb [options] uri suite [component...]`).
pub fn parse_one_line(file: &str, text: &str) -> Result<Vec<Source>, SourcesError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let cx = Ctx { file, line: i + 1 };
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let (typ, mut rest) = l.split_once([' ', '\t']).unwrap_or((l, ""));
        match typ {
            "deb" => {}
            "deb-src" => continue,
            t => return Err(cx.invalid(format!("unknown type `{t}` (expected deb or deb-src)"))),
        }
        rest = rest.trim_start();
        let mut src = Source {
            uri: Uri(String::new()),
            suite: String::new(),
            components: Vec::new(),
            architectures: Vec::new(),
            signed_by: None,
            check_valid_until: true,
            file: file.into(),
            line: i + 1,
        };
        if let Some(r) = rest.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| cx.invalid("missing `]` after options"))?;
            for opt in r[..close].split_whitespace() {
                let (k, v) = opt
                    .split_once('=')
                    .ok_or_else(|| cx.invalid(format!("option `{opt}` is not `key=value`")))?;
                let k = k.trim_end_matches(['+', '-']);
                check_insecure(&cx, k, v)?;
                match k {
                    "arch" => src.architectures = parse_archs(&cx, v)?,
                    "signed-by" => src.signed_by = Some(parse_signed_by(&cx, v)?),
                    "check-valid-until" => {
                        src.check_valid_until =
                            is_true(v).ok_or_else(|| cx.invalid(format!("bad boolean `{v}`")))?
                    }
                    _ => {}
                }
            }
            rest = r[close + 1..].trim_start();
        }
        let mut words = rest.split_whitespace();
        let uri = words.next().ok_or_else(|| cx.invalid("missing URI"))?;
        src.uri = Uri::new(uri).map_err(|m| cx.invalid(m))?;
        src.suite = words
            .next()
            .ok_or_else(|| cx.invalid("missing suite"))?
            .to_string();
        src.components = words.map(str::to_string).collect();
        check_suite(&cx, &src.suite, &src.components)?;
        out.push(src);
    }
    Ok(out)
}

/// Parse the deb822 format (`Types:`, `URIs:`, `Suites:`, `Components:`, ...).
pub fn parse_deb822(file: &str, text: &str) -> Result<Vec<Source>, SourcesError> {
    let paras = control::parse(text).map_err(|e| SourcesError::Invalid {
        file: file.into(),
        line: e.line,
        message: e.message,
    })?;
    let mut out = Vec::new();
    for p in paras {
        let cx = Ctx { file, line: p.line };
        let at = |name: &str| Ctx {
            file,
            line: p.line_of(name),
        };
        let words = |name: &str| -> Vec<&str> {
            p.get(name)
                .map(|v| v.split_whitespace().collect())
                .unwrap_or_default()
        };
        if let Some(e) = p.get("Enabled") {
            match is_true(e) {
                Some(false) => continue,
                Some(true) => {}
                None => return Err(at("Enabled").invalid(format!("bad boolean `{e}`"))),
            }
        }
        for f in &p.fields {
            check_insecure(&at(f.name), f.name, f.value)?;
        }
        let types = words("Types");
        if types.is_empty() {
            return Err(cx.invalid("missing Types"));
        }
        if let Some(t) = types.iter().find(|t| !matches!(**t, "deb" | "deb-src")) {
            return Err(at("Types").invalid(format!("unknown type `{t}`")));
        }
        if !types.contains(&"deb") {
            continue;
        }
        let uris = words("URIs");
        if uris.is_empty() {
            return Err(cx.invalid("missing URIs"));
        }
        let suites = words("Suites");
        if suites.is_empty() {
            return Err(cx.invalid("missing Suites"));
        }
        let components: Vec<String> = words("Components").into_iter().map(String::from).collect();
        let architectures = match p.get("Architectures") {
            Some(v) => parse_archs(&at("Architectures"), v)?,
            None => Vec::new(),
        };
        let signed_by = match p.get("Signed-By") {
            Some(v) => Some(parse_signed_by(&at("Signed-By"), v)?),
            None => None,
        };
        let check_valid_until = match p.get("Check-Valid-Until") {
            Some(v) => is_true(v)
                .ok_or_else(|| at("Check-Valid-Until").invalid(format!("bad boolean `{v}`")))?,
            None => true,
        };
        for u in &uris {
            let uri = Uri::new(u).map_err(|m| at("URIs").invalid(m))?;
            for s in &suites {
                check_suite(&at("Suites"), s, &components)?;
                out.push(Source {
                    uri: uri.clone(),
                    suite: s.to_string(),
                    components: components.clone(),
                    architectures: architectures.clone(),
                    signed_by: signed_by.clone(),
                    check_valid_until,
                    file: file.into(),
                    line: p.line,
                });
            }
        }
    }
    Ok(out)
}
