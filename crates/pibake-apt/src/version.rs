//! Debian version numbers and their ordering (Debian policy 5.6.12).
//!
//! Hand-written rather than using `debversion`: that crate is correct but
//! pulls `chrono`, `lazy-regex` and `num-bigint` for what is ~80 lines of
//! dpkg's `verrevcmp`. The comparison below follows dpkg exactly:
//! epochs compare numerically; upstream and revision are compared as
//! alternating non-digit and digit runs, where in non-digit runs `~` sorts
//! before everything (even the end of the string), then letters, then other
//! characters; digit runs compare numerically. A missing revision equals `0`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed, validated Debian version (`[epoch:]upstream[-revision]`).
///
/// Equality is dpkg's: `1.0` == `0:1.0` == `1.0-0`. [`Version::as_str`] keeps
/// the text as written.
#[derive(Clone)]
pub struct Version {
    text: String,
    epoch: u64,
    /// Byte range of the upstream part in `text`.
    upstream: (usize, usize),
    /// Byte range of the revision in `text` (empty if none).
    revision: (usize, usize),
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version `{text}`: {reason}")]
pub struct VersionError {
    /// The refused text.
    pub text: String,
    /// Why.
    pub reason: &'static str,
}

impl Version {
    /// Parse a version string.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |reason| VersionError {
            text: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (epoch, up_start) = match text.find(':') {
            Some(i) => {
                let e = &text[..i];
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("epoch must be a number"));
                }
                (e.parse::<u64>().map_err(|_| bad("epoch too large"))?, i + 1)
            }
            None => (0, 0),
        };
        let rest = &text[up_start..];
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => ((up_start, up_start + i), (up_start + i + 1, text.len())),
            None => ((up_start, text.len()), (text.len(), text.len())),
        };
        let up = &text[upstream.0..upstream.1];
        let rev = &text[revision.0..revision.1];
        if up.is_empty() {
            return Err(bad("empty upstream version"));
        }
        // Policy says upstream "should" start with a digit; dpkg only warns,
        // so a stray index entry must not make a whole Packages file unusable.
        if rest.contains('-') && rev.is_empty() {
            return Err(bad("empty revision"));
        }
        let ok = |s: &str, extra: &[u8]| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.~".contains(&b) || extra.contains(&b))
        };
        if !ok(up, b"-:") {
            return Err(bad("invalid character in upstream version"));
        }
        if rest[..upstream.1 - up_start].contains(':') {
            return Err(bad("`:` only allowed after the epoch"));
        }
        if !ok(rev, b"") {
            return Err(bad("invalid character in revision"));
        }
        Ok(Version {
            text: text.to_string(),
            epoch,
            upstream,
            revision,
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch (0 if absent).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The upstream part.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision (empty if absent).
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

/// dpkg's character order for non-digit runs: `~` < end < letters < others.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| verrevcmp(self.revision().as_bytes(), other.revision().as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn policy_examples() {
        let less = [
            ("1.0~rc1", "1.0"),
            ("2.0", "1:0.1"),
            ("1.0-1", "1.0-1+b1"),
            ("~~", "~~a"),
            ("~~a", "~"),
            ("~", ""),
            ("1.0~~", "1.0~"),
            ("1.0~", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0", "1.0.1"),
            ("1.2.3", "1.10"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("1.0", "1.0-1"),
            ("2.30-1", "2.30-1+deb12u1"),
            ("1:1.0", "2:0.1"),
            ("0.9", "1.0~rc1"),
        ];
        for (a, b) in less {
            if a.is_empty() || b.is_empty() {
                // `~` vs empty: compare raw per dpkg.
                assert_eq!(
                    verrevcmp(a.as_bytes(), b.as_bytes()),
                    Ordering::Less,
                    "{a} < {b}"
                );
                continue;
            }
            let (va, vb) = if a.starts_with('~') {
                (v(&format!("0{a}")), v(&format!("0{b}")))
            } else {
                (v(a), v(b))
            };
            assert!(va < vb, "{a} < {b}");
            assert!(vb > va, "{b} > {a}");
        }
    }

    #[test]
    fn equalities() {
        assert_eq!(v("1.0"), v("0:1.0"));
        assert_eq!(v("1.0"), v("1.0-0"));
        assert_eq!(v("1.01"), v("1.1"));
        assert_eq!(v("0:1.0").as_str(), "0:1.0");
        assert_eq!(v("1:2.3-4-5").revision(), "5");
        assert_eq!(v("1:2.3-4-5").upstream(), "2.3-4");
    }

    #[test]
    fn refused() {
        for bad in ["", "1.0-", ":1", "x:1", "1 0", "1.0-a_b", "1:2:3"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
