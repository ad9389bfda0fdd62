//! Small values that several layers parse: a numeric owner (`UID:GID`, as profiles and
//! `pibake fs` take it) and the build clock (`SOURCE_DATE_EPOCH`).
//!
//! Owners are numeric on purpose: a name means nothing until it is looked up in the
//! image's own passwd, and the build host's users are not the image's.

use std::fmt;
use std::str::FromStr;

/// A file's owner and group, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    /// The owning user's ID.
    pub uid: u32,
    /// The owning group's ID.
    pub gid: u32,
}

impl FromStr for Owner {
    type Err = String;

    fn from_str(s: &str) -> Result<Owner, String> {
        let bad = || format!("`{s}` is not a numeric owner UID:GID (e.g. 1000:1000)");
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        Ok(Owner {
            uid: u.parse().map_err(|_| bad())?,
            gid: g.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds clock, when it is set to a number: the
/// time every output of a build is stamped with.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_two_numbers() {
        assert_eq!(
            "1000:100".parse(),
            Ok(Owner {
                uid: 1000,
                gid: 100
            })
        );
        for bad in ["pi:pi", "1000", "1000:", ":1", "-1:0", "1:2:3"] {
            assert!(bad.parse::<Owner>().is_err(), "{bad}");
        }
    }
}
