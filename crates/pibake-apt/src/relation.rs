//! Package names, dependency expressions and user package requests.
//!
//! Grammar (Debian policy 7.1): a relation field is a comma-separated list of
//! relations; each relation is `|`-separated alternatives; each alternative is
//! `name[:archqual] [(op version)] [[arch restrictions]] [<build profiles>...]`.
//! Architecture restrictions and build profiles only appear in source
//! packages; they are parsed and kept, and [`reduce`] evaluates them for a host
//! architecture and a set of active profiles (binary indices never carry them,
//! so the resolver simply sees atoms without restrictions).

use std::fmt;
use std::str::FromStr;

use crate::version::Version;

/// Why a name, relation or request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} in `{text}`")]
pub struct RelationError {
    /// The offending text.
    pub text: String,
    /// What was wrong.
    pub message: String,
}

fn rerr(text: &str, message: impl Into<String>) -> RelationError {
    RelationError {
        text: text.to_string(),
        message: message.into(),
    }
}

/// A validated Debian package name: `[a-z0-9][a-z0-9+.-]+` (policy 5.6.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

impl PackageName {
    /// Validate `s` as a package name.
    pub fn new(s: &str) -> Result<Self, RelationError> {
        let b = s.as_bytes();
        let ok_first = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.len() < 2
            || !ok_first(b[0])
            || !b[1..].iter().all(|&c| ok_first(c) || b"+.-".contains(&c))
        {
            return Err(rerr(
                s,
                "invalid package name (must match [a-z0-9][a-z0-9+.-]+)",
            ));
        }
        Ok(PackageName(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PackageName {
    type Err = RelationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PackageName::new(s)
    }
}

impl std::borrow::Borrow<str> for PackageName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Is `s` a plausible Debian architecture name (`arm64`, `armhf`, `all`, `linux-any`)?
pub fn valid_arch(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// The `:qualifier` after a package name in a relation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchQual {
    /// `:any`: any architecture, if the target is `Multi-Arch: allowed`.
    Any,
    /// `:native`: the native architecture.
    Native,
    /// `:arm64` etc.
    Arch(String),
}

impl fmt::Display for ArchQual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchQual::Any => f.write_str("any"),
            ArchQual::Native => f.write_str("native"),
            ArchQual::Arch(a) => f.write_str(a),
        }
    }
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the deprecated `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the deprecated `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Does `have` satisfy `have OP want`?
    pub fn matches(self, have: &Version, want: &Version) -> bool {
        let o = have.cmp(want);
        use std::cmp::Ordering::*;
        match self {
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Eq => o == Equal,
            Op::Ge => o != Less,
            Op::Gt => o == Greater,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        })
    }
}

/// One alternative of a relation: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    /// Package (or virtual package) name.
    pub name: PackageName,
    /// Architecture qualifier, if any.
    pub arch: Option<ArchQual>,
    /// Version constraint, if any.
    pub version: Option<(Op, Version)>,
    /// `[arch ...]` restriction list: (negated, arch wildcard). Empty = none.
    pub arch_restriction: Vec<(bool, String)>,
    /// `<profile ...>` groups: each group is a conjunction of (negated,
    /// profile); the atom applies if any group holds. Empty = none.
    pub profiles: Vec<Vec<(bool, String)>>,
}

impl Atom {
    /// Does a package at `version` satisfy this atom's version constraint?
    pub fn version_matches(&self, version: &Version) -> bool {
        match &self.version {
            None => true,
            Some((op, want)) => op.matches(version, want),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({op} {v})")?;
        }
        if !self.arch_restriction.is_empty() {
            let list: Vec<String> = self
                .arch_restriction
                .iter()
                .map(|(n, a)| format!("{}{a}", if *n { "!" } else { "" }))
                .collect();
            write!(f, " [{}]", list.join(" "))?;
        }
        for g in &self.profiles {
            let list: Vec<String> = g
                .iter()
                .map(|(n, p)| format!("{}{p}", if *n { "!" } else { "" }))
                .collect();
            write!(f, " <{}>", list.join(" "))?;
        }
        Ok(())
    }
}

/// A relation: alternatives, the first satisfiable one is preferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The `|`-separated alternatives, in order.
    pub alternatives: Vec<Atom>,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// One `Provides` entry: a virtual name and optionally the exact version
/// provided (`Provides: foo (= 1.2)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provide {
    /// The provided name.
    pub name: PackageName,
    /// The provided version, if the entry is versioned.
    pub version: Option<Version>,
}

fn parse_atom(full: &str, s: &str) -> Result<Atom, RelationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(rerr(full, "empty alternative"));
    }
    // Split off the name: up to whitespace, '(', '[', '<'.
    let name_end = s.find([' ', '\t', '\n', '(', '[', '<']).unwrap_or(s.len());
    let (name_part, mut rest) = (&s[..name_end], s[name_end..].trim_start());
    let (name, arch) = match name_part.split_once(':') {
        Some((n, a)) => {
            let q = match a {
                "any" => ArchQual::Any,
                "native" => ArchQual::Native,
                a if valid_arch(a) => ArchQual::Arch(a.to_string()),
                _ => return Err(rerr(full, format!("invalid architecture qualifier `{a}`"))),
            };
            (n, Some(q))
        }
        None => (name_part, None),
    };
    let name = PackageName::new(name).map_err(|e| rerr(full, e.message))?;
    let mut version = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = r.find(')').ok_or_else(|| rerr(full, "missing `)`"))?;
        let inner = r[..close].trim();
        rest = r[close + 1..].trim_start();
        let op_len = inner
            .find(|c: char| !"<>=".contains(c))
            .unwrap_or(inner.len());
        let op = match &inner[..op_len] {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            o => return Err(rerr(full, format!("invalid version operator `{o}`"))),
        };
        let v = Version::parse(inner[op_len..].trim()).map_err(|e| rerr(full, e.to_string()))?;
        version = Some((op, v));
    }
    let mut arch_restriction = Vec::new();
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or_else(|| rerr(full, "missing `]`"))?;
        for a in r[..close].split_whitespace() {
            let (neg, a) = match a.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, a),
            };
            if !valid_arch(a) {
                return Err(rerr(full, format!("invalid architecture `{a}`")));
            }
            arch_restriction.push((neg, a.to_string()));
        }
        rest = r[close + 1..].trim_start();
    }
    let mut profiles = Vec::new();
    while let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>').ok_or_else(|| rerr(full, "missing `>`"))?;
        let mut group = Vec::new();
        for p in r[..close].split_whitespace() {
            let (neg, p) = match p.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, p),
            };
            if !valid_arch(&p.replace('.', "")) {
                return Err(rerr(full, format!("invalid build profile `{p}`")));
            }
            group.push((neg, p.to_string()));
        }
        profiles.push(group);
        rest = r[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(rerr(full, format!("unexpected `{rest}`")));
    }
    Ok(Atom {
        name,
        arch,
        version,
        arch_restriction,
        profiles,
    })
}

/// Parse a relation field value (`Depends`, `Pre-Depends`, `Recommends`,
/// `Conflicts`, `Breaks`, ...). Empty text gives an empty list.
pub fn parse_relations(text: &str) -> Result<Vec<Relation>, RelationError> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for rel in text.split(',') {
        if rel.trim().is_empty() {
            // dpkg tolerates a trailing comma; an empty middle item too.
            continue;
        }
        let alternatives = rel
            .split('|')
            .map(|a| parse_atom(text, a))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Relation { alternatives });
    }
    Ok(out)
}

/// Parse a `Provides` field: names with optional `(= version)`.
pub fn parse_provides(text: &str) -> Result<Vec<Provide>, RelationError> {
    let mut out = Vec::new();
    for rel in parse_relations(text)? {
        if rel.alternatives.len() != 1 {
            return Err(rerr(text, "alternatives are not allowed in Provides"));
        }
        let a = rel.alternatives.into_iter().next().expect("one");
        let version = match a.version {
            None => None,
            Some((Op::Eq, v)) => Some(v),
            Some(_) => return Err(rerr(text, "only `=` versions are allowed in Provides")),
        };
        out.push(Provide {
            name: a.name,
            version,
        });
    }
    Ok(out)
}

/// Does the architecture wildcard `pattern` (`any`, `linux-any`,
/// `any-arm64`, `arm64`) match the Debian architecture `arch`? Only Linux
/// architectures are modelled (os `linux`, cpu = the arch name).
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == arch || pattern == "any" {
        return true;
    }
    match pattern.split_once('-') {
        Some(("linux", "any")) => true,
        Some(("any", cpu)) | Some(("linux", cpu)) => cpu == arch,
        _ => false,
    }
}

/// Evaluate arch restrictions and build profiles for a host architecture and
/// active build profiles, dropping atoms that do not apply and relations left
/// empty (policy 7.1 and the BuildProfileSpec).
pub fn reduce(relations: &[Relation], host_arch: &str, profiles: &[&str]) -> Vec<Relation> {
    let applies = |a: &Atom| {
        let arch_ok = if a.arch_restriction.is_empty() {
            true
        } else if a.arch_restriction.iter().all(|(neg, _)| *neg) {
            !a.arch_restriction
                .iter()
                .any(|(_, p)| arch_matches(p, host_arch))
        } else {
            a.arch_restriction
                .iter()
                .any(|(neg, p)| !neg && arch_matches(p, host_arch))
        };
        let prof_ok = a.profiles.is_empty()
            || a.profiles.iter().any(|g| {
                g.iter()
                    .all(|(neg, p)| profiles.contains(&p.as_str()) != *neg)
            });
        arch_ok && prof_ok
    };
    relations
        .iter()
        .filter_map(|r| {
            let alternatives: Vec<Atom> = r
                .alternatives
                .iter()
                .filter(|a| applies(a))
                .cloned()
                .collect();
            (!alternatives.is_empty()).then_some(Relation { alternatives })
        })
        .collect()
}

/// What a user writes in a profile to ask for a package: `name`,
/// `name:arch`, `name=version` or `name:arch=version`. Anything else (spaces,
/// shell syntax, version operators) is refused, so text from a profile can
/// never smuggle more than a package name into a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    /// The package name.
    pub name: PackageName,
    /// Requested architecture (`armhf` on an arm64 image), if any.
    pub arch: Option<String>,
    /// Exact version pin, if any.
    pub version: Option<Version>,
}

impl FromStr for PackageRequest {
    type Err = RelationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |m: &str| {
            rerr(
                s,
                format!(
                    "{m}; a package request is `name`, `name:arch`, `name=version` or `name:arch=version`"
                ),
            )
        };
        if s.is_empty() {
            return Err(bad("empty package request"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+.-:=~".contains(*c)))
        {
            return Err(bad(&format!("character {c:?} is not allowed")));
        }
        let (head, version) = match s.split_once('=') {
            Some((h, v)) => (h, Some(Version::parse(v).map_err(|e| bad(&e.to_string()))?)),
            None => (s, None),
        };
        let (name, arch) = match head.split_once(':') {
            Some((n, a)) => {
                if !valid_arch(a) || a == "any" || a == "native" || a == "all" {
                    return Err(bad(&format!("invalid architecture `{a}`")));
                }
                (n, Some(a.to_string()))
            }
            None => (head, None),
        };
        let name = PackageName::new(name).map_err(|e| bad(&e.message))?;
        Ok(PackageRequest {
            name,
            arch,
            version,
        })
    }
}

impl fmt::Display for PackageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some(v) = &self.version {
            write!(f, "={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_full_expression() {
        let r =
            parse_relations("aa (>= 1.0) | bb:any, cc [arm64], dd <!nocheck>, ee:armhf (<< 2:1~)")
                .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].alternatives.len(), 2);
        assert_eq!(r[0].alternatives[0].name.as_str(), "aa");
        assert_eq!(r[0].alternatives[0].version.as_ref().unwrap().0, Op::Ge);
        assert_eq!(r[0].alternatives[1].arch, Some(ArchQual::Any));
        assert_eq!(
            r[1].alternatives[0].arch_restriction,
            vec![(false, "arm64".into())]
        );
        assert_eq!(
            r[2].alternatives[0].profiles,
            vec![vec![(true, "nocheck".into())]]
        );
        assert_eq!(
            r[3].alternatives[0].arch,
            Some(ArchQual::Arch("armhf".into()))
        );
        assert_eq!(r[0].to_string(), "aa (>= 1.0) | bb:any");
        assert_eq!(r[3].to_string(), "ee:armhf (<< 2:1~)");
    }

    #[test]
    fn reduce_restrictions() {
        let r = parse_relations(
            "aa [amd64], bb [!amd64], cc <!nocheck>, dd [linux-any] <nocheck>, ee | ff [amd64]",
        )
        .unwrap();
        let got: Vec<String> = reduce(&r, "arm64", &[])
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(got, ["bb [!amd64]", "cc <!nocheck>", "ee"]);
        let got: Vec<String> = reduce(&r, "arm64", &["nocheck"])
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(got, ["bb [!amd64]", "dd [linux-any] <nocheck>", "ee"]);
    }

    #[test]
    fn bad_relations() {
        for t in [
            "A", "aa (>= )", "aa (~ 1)", "aa (>= 1", "aa | ", "aa bb", "aa:ANY", "a",
        ] {
            assert!(parse_relations(t).is_err(), "{t}");
        }
        assert!(parse_provides("aa (>= 1)").is_err());
        assert_eq!(parse_provides("aa (= 1), bb").unwrap().len(), 2);
    }

    #[test]
    fn names() {
        assert!(PackageName::new("libc6").is_ok());
        assert!(PackageName::new("g++").is_ok());
        for bad in ["a", "-a", "Abc", "a_b", "a b", ""] {
            assert!(PackageName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests() {
        let r: PackageRequest = "vim:armhf=2:9.0-1".parse().unwrap();
        assert_eq!(r.name.as_str(), "vim");
        assert_eq!(r.arch.as_deref(), Some("armhf"));
        assert_eq!(r.version.unwrap().as_str(), "2:9.0-1");
        for bad in [
            "vim; touch /PWNED",
            "vim (>= 1)",
            "vim=",
            "vim:",
            "-rf",
            "vim $(x)",
            "vim\n",
            "vim:any",
        ] {
            let e = bad.parse::<PackageRequest>().unwrap_err();
            assert!(e.to_string().contains("package request"), "{bad}: {e}");
        }
    }
}
