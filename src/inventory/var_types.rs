//! Grammars for template variables: a profile's `var_types:` names the kind of value
//! each variable its overlays paste into files must hold (`inside_interface: interface`
//! for an nftables rule, `nfs_export: path` for /etc/exports), and every node's value is
//! checked when the inventory loads, where it was written. `vars:` stay free-form
//! otherwise; a typed one can no longer add a rule, a line or an export to the file it
//! lands in.

use serde_json::Value;

use super::net::Subnet;

/// The kinds of value a template variable may be declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum VarType {
    /// Letters, digits, `.`, `_`, `-` (1 to 64).
    Word,
    /// One line of printable text (1 to 200 characters), no control characters.
    Line,
    /// A network interface name (1 to 15 of letters, digits, `.`, `_`, `-`).
    Interface,
    /// An absolute path of letters, digits and `._+-/`, no `..` (at most 255).
    Path,
    /// An IPv4 subnet in CIDR notation (`192.168.1.0/24`).
    Subnet,
    /// A TCP or UDP port, 1 to 65535.
    Port,
    /// A systemd time span of whole numbers and units (`5min`, `1h 30min`).
    Duration,
}

const NAMES: &[(&str, VarType)] = &[
    ("word", VarType::Word),
    ("line", VarType::Line),
    ("interface", VarType::Interface),
    ("path", VarType::Path),
    ("subnet", VarType::Subnet),
    ("port", VarType::Port),
    ("duration", VarType::Duration),
];

/// systemd's time span units (systemd.time(7)), longest first within each family.
const UNITS: &[&str] = &[
    "usec", "us", "msec", "ms", "seconds", "second", "sec", "s", "minutes", "minute", "min", "m",
    "hours", "hour", "hr", "h", "days", "day", "d", "weeks", "week", "w",
];

impl TryFrom<String> for VarType {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<VarType, String> {
        VarType::parse(&s)
    }
}

impl VarType {
    /// One of the names above.
    pub fn parse(s: &str) -> std::result::Result<VarType, String> {
        NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown var type `{s}`; one of: {}", names.join(", "))
            })
    }

    /// Its name in `var_types:`.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// Checks a value against the grammar; the reason names the value.
    pub fn check(self, v: &Value) -> std::result::Result<(), String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("{v} is not a {}: give one value", self.name())),
        };
        let word = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        let ok = match self {
            VarType::Word => word(&text, 64),
            VarType::Interface => word(&text, 15),
            VarType::Line => {
                !text.is_empty()
                    && text.chars().count() <= 200
                    && !text.chars().any(char::is_control)
            }
            VarType::Path => {
                text.starts_with('/')
                    && text.len() <= 255
                    && text.split('/').all(|c| c != "..")
                    && text.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '/')
                    })
            }
            VarType::Subnet => Subnet::parse(&text).is_ok(),
            VarType::Port => text.parse::<u16>().is_ok_and(|p| p > 0),
            VarType::Duration => duration(&text),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{text}` is not a {}: {}",
                self.name(),
                self.describe()
            ))
        }
    }

    fn describe(self) -> &'static str {
        match self {
            VarType::Word => "letters, digits, `.`, `_` and `-` (at most 64)",
            VarType::Line => "one line of text with no control characters (at most 200)",
            VarType::Interface => {
                "an interface name like eth0 (letters, digits, `.`, `_`, `-`; at most 15)"
            }
            VarType::Path => "an absolute path of letters, digits and `._+-/`, without `..`",
            VarType::Subnet => "an IPv4 subnet like 192.168.1.0/24",
            VarType::Port => "a port from 1 to 65535",
            VarType::Duration => "a systemd time span like 5min or 1h 30min",
        }
    }
}

/// Whole numbers each followed by a unit (or a bare number of seconds), space-separated
/// or not: `5min`, `1h30min`, `90`.
fn duration(s: &str) -> bool {
    // The value is written as it is: checked as it is, not as a trimmed copy.
    let mut rest = s;
    if rest.is_empty() || s.len() > 64 || s.trim() != s {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if let Some(u) = UNITS.iter().find(|u| rest.starts_with(**u)) {
            rest = &rest[u.len()..];
        }
        rest = rest.trim_start();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_takes_its_values_and_refuses_the_rest() {
        let cases: &[(VarType, &[&str], &[&str])] = &[
            (VarType::Word, &["app", "a.b_c-1"], &["a b", "", "a;b"]),
            (
                VarType::Line,
                &["Served by a Pi cluster & co"],
                &["two\nlines", ""],
            ),
            (
                VarType::Interface,
                &["eth1", "br0.10"],
                &["eth1; drop", "averyveryverylongname"],
            ),
            (
                VarType::Path,
                &["/srv/share", "/cluster"],
                &["srv", "/srv/../etc", "/srv share", "/a\n/b *(rw)"],
            ),
            (
                VarType::Subnet,
                &["192.168.1.0/24"],
                &["192.168.1.0", "any"],
            ),
            (VarType::Port, &["8080", "1"], &["0", "70000", "80; rm"]),
            (
                VarType::Duration,
                &["5min", "1h 30min", "90", "2d"],
                &["soon", "5 min;", "min", " 5min", "5min\n"],
            ),
        ];
        for (ty, good, bad) in cases {
            for g in *good {
                assert_eq!(ty.check(&Value::String(g.to_string())), Ok(()), "{g}");
            }
            for b in *bad {
                assert!(
                    ty.check(&Value::String(b.to_string())).is_err(),
                    "{b} accepted as {ty:?}"
                );
            }
        }
        assert_eq!(VarType::Port.check(&serde_json::json!(8080)), Ok(()));
        assert!(VarType::Word.check(&serde_json::json!(["a"])).is_err());
    }
}
