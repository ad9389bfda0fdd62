//! Small values that several layers parse: a numeric owner (`UID:GID`, as profiles and
//! `pibake fs` take it), a size (`root_size: 4GiB`) and the build clock
//! (`SOURCE_DATE_EPOCH`); and the one check every input path passes before it is opened
//! ([`input_file`]).
//!
//! Owners are numeric on purpose: a name means nothing until it is looked up in the
//! image's own passwd, and the build host's users are not the image's.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::Error;

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

/// A size in bytes, written as a whole number with a binary unit (`512MiB`, `4GiB`,
/// `1TiB`) or as bytes. Decimal units (`4GB`, `4G`) are refused rather than guessed:
/// 4 GB and 4 GiB differ by 7%, and on an SD card that is the difference between fitting
/// and not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let text = s.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            "TiB" => 40,
            other => {
                return Err(format!(
                    "size `{s}`: unit `{other}` is not one of B, KiB, MiB, GiB, TiB (write `4GiB`, not `4G` or `4GB`)"
                ));
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .map(ByteSize)
            .ok_or_else(|| format!("size `{s}` is not a whole number with a unit (e.g. `4GiB`)"))
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        // A visitor, not an untagged enum: the YAML reader then keeps the value's
        // position for the error.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as `4GiB`")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Refuses an input path (from the inventory or the command line) that is not a regular
/// file, or with `block_ok` a block device, before it is opened: a FIFO blocks, a device
/// like `/dev/zero` never ends (see [`pibake_image::base::check_input`], the one place
/// the rule lives). The refusal is unplaced, so a caller that knows the inventory line
/// the path came from puts it there ([`Error::place`]); the file's metadata otherwise.
pub fn input_file(path: &Path, block_ok: bool) -> crate::Result<std::fs::Metadata> {
    pibake_image::base::check_input(path, block_ok).map_err(|e| match e {
        pibake_image::Error::Invalid { what, hint } => Error::Unplaced { what, hint },
        pibake_image::Error::Io { path, source } => Error::Io { path, source },
        other => other.into(),
    })
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds clock, when it is set to a number: the
/// time every output of a build is stamped with.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`), for dates written without a time library: FAT
/// timestamps and the Imager manifest's release date.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
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

    #[test]
    fn sizes_take_binary_units_only() {
        assert_eq!("4GiB".parse(), Ok(ByteSize(4 << 30)));
        assert_eq!("512 MiB".parse(), Ok(ByteSize(512 << 20)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        for bad in ["4G", "4GB", "4.5GiB", "-1GiB", "GiB", "", "99999999999TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
