//! SHA-256 digests as values, not hex strings.
//!
//! Digests are compared, cached and printed; keeping them as 32 bytes means a digest
//! cannot be confused with any other string, and the hex form is made in one place.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest; displayed, serialized and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Sha256 {
        use sha2::Digest;
        Sha256(sha2::Sha256::digest(data).into())
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(h: sha2::Sha256) -> Sha256 {
        use sha2::Digest;
        Sha256(h.finalize().into())
    }
}

/// Lowercase hex of any bytes.
pub fn hex(d: impl AsRef<[u8]>) -> String {
    use fmt::Write;
    d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// Why a text is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotADigest;

impl fmt::Display for NotADigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sha256 digest is 64 hex digits")
    }
}

impl std::error::Error for NotADigest {}

impl FromStr for Sha256 {
    type Err = NotADigest;

    fn from_str(s: &str) -> Result<Sha256, NotADigest> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(NotADigest);
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16).ok_or(NotADigest);
            out[i] =
                u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).map_err(|_| NotADigest)?;
        }
        Ok(Sha256(out))
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sha256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hex() {
        let d = Sha256::of(b"abc");
        assert_eq!(
            d.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Sha256>(), Ok(d));
        assert_eq!("xyz".parse::<Sha256>(), Err(NotADigest));
        assert_eq!("g".repeat(64).parse::<Sha256>(), Err(NotADigest));
    }
}
