//! `base:` in cluster.yaml, the image every node starts from: a file beside the cluster,
//! a download named by its URL and sha256, or an entry of Raspberry Pi's OS catalog.
//!
//! The three forms are told apart once, when the file is read: a string is a path, a map
//! is `{ url, sha256 }` or `{ catalog }`. A URL or digest outside its grammar is refused
//! at its own line and column, before anything is downloaded.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::grammar::{deserialize_by_parse, parsed, shown};
use pibake_image::Sha256;

/// Where the base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// A local file, relative to the cluster file's directory.
    Path(PathBuf),
    /// A download, checked against `sha256` (of the file the URL serves, compressed or
    /// not) before it is used.
    Url {
        /// Where to download it from.
        url: HttpUrl,
        /// The digest the downloaded file must have.
        sha256: Sha256,
    },
    /// An entry of the OS catalog by name (`Raspberry Pi OS Lite (64-bit)`); its URL and
    /// digest come from the catalog.
    Catalog(CatalogName),
}

impl BaseRef {
    /// Text naming the base for messages: the path, the URL, or the catalog name.
    pub fn describe(&self) -> String {
        match self {
            BaseRef::Path(p) => p.display().to_string(),
            BaseRef::Url { url, .. } => url.to_string(),
            BaseRef::Catalog(name) => format!("`{name}` from the OS catalog"),
        }
    }
}

/// An `http://` or `https://` URL of printable ASCII: no space, control character or
/// non-ASCII letter, so it is one word in any message or request line, and no user
/// name or password (they would be printed in every message naming the URL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// A URL of scheme `http` or `https` with a host, 2048 characters at most.
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let rest = ["http://", "https://"]
            .iter()
            .find_map(|p| {
                s.get(..p.len())
                    .filter(|h| h.eq_ignore_ascii_case(p))
                    .map(|_| &s[p.len()..])
            })
            .ok_or_else(|| format!("`{}` is not an http:// or https:// URL", shown(s)))?;
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "URL `{}` holds `{}`; a URL is printable ASCII without spaces (percent-encode the rest)",
                shown(s),
                shown(&c.to_string())
            ));
        }
        if s.len() > 2048 {
            return Err(format!("URL `{}` is longer than 2048 characters", &s[..64]));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(format!("URL `{s}` has no host"));
        }
        if authority.contains('@') {
            return Err(format!(
                "URL `{s}` holds a user name or password; pibake would print it in every message"
            ));
        }
        Ok(HttpUrl(s.to_string()))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment of the URL's path, as a file name for the download: only
    /// letters, digits and `._+-~` kept, never empty or hidden (`base.img` then).
    pub fn file_name(&self) -> String {
        let after_scheme = self.0.split_once("://").map_or("", |(_, r)| r);
        let path = after_scheme.split(['?', '#']).next().unwrap_or("");
        let last = path.rsplit('/').next().unwrap_or("");
        let name: String = last
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._+-~".contains(*c))
            .collect();
        if name.is_empty() || name.starts_with('.') || path.find('/').is_none() {
            "base.img".to_string()
        } else {
            name
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_by_parse!(HttpUrl, "an http:// or https:// URL");

/// A name to look up in the OS catalog: 1 to 200 characters, none of them control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogName(String);

impl CatalogName {
    /// Non-empty printable text (spaces and parentheses allowed, as catalog names have).
    pub fn parse(s: &str) -> Result<CatalogName, String> {
        if s.trim().is_empty() || s.chars().count() > 200 {
            return Err(format!(
                "catalog name `{}` must be 1 to 200 characters, as `pibake images` lists them",
                shown(s)
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!(
                "catalog name `{}` holds the control character `{}`",
                shown(s),
                shown(&c.to_string())
            ));
        }
        Ok(CatalogName(s.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CatalogName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_by_parse!(CatalogName, "a name from `pibake images`");

/// A sha256 written in cluster.yaml: exactly 64 hex digits, either case.
pub fn parse_sha256(s: &str) -> Result<Sha256, String> {
    s.parse().map_err(|_| {
        format!(
            "sha256 `{}` is {} characters; a sha256 is exactly 64 hex digits",
            shown(s),
            s.chars().count()
        )
    })
}

fn sha256_field<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Sha256>, D::Error> {
    parsed(d, "64 hex digits", parse_sha256).map(Some)
}

/// The map form of `base:`, before its keys are checked to make one of the two forms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseMap {
    url: Option<HttpUrl>,
    #[serde(default, deserialize_with = "sha256_field")]
    sha256: Option<Sha256>,
    catalog: Option<CatalogName>,
}

impl BaseMap {
    fn into_ref(self) -> Result<BaseRef, &'static str> {
        match self {
            BaseMap {
                url: Some(url),
                sha256: Some(sha256),
                catalog: None,
            } => Ok(BaseRef::Url { url, sha256 }),
            BaseMap {
                url: None,
                sha256: None,
                catalog: Some(name),
            } => Ok(BaseRef::Catalog(name)),
            BaseMap { url: Some(_), .. } if self.catalog.is_none() => Err(
                "`base: { url }` needs the file's `sha256:` too (64 hex digits, as published beside the image)",
            ),
            _ => Err(
                "`base:` is a path, `{ url: URL, sha256: DIGEST }` or `{ catalog: NAME }` (one of the two maps, not both)",
            ),
        }
    }
}

impl<'de> Deserialize<'de> for BaseRef {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<BaseRef, D::Error> {
        struct Base;
        impl<'de> Visitor<'de> for Base {
            type Value = BaseRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path, `{ url: URL, sha256: DIGEST }` or `{ catalog: NAME }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BaseRef, E> {
                if v.is_empty() || v.chars().any(char::is_control) {
                    return Err(E::custom(format!(
                        "base path `{}` is empty or holds a control character",
                        shown(v)
                    )));
                }
                Ok(BaseRef::Path(PathBuf::from(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BaseRef, A::Error> {
                BaseMap::deserialize(de::value::MapAccessDeserializer::new(map))?
                    .into_ref()
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(Base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_and_one_word() {
        assert!(HttpUrl::parse("https://downloads.raspberrypi.com/x.img.xz").is_ok());
        assert!(HttpUrl::parse("HTTP://h/x").is_ok());
        for bad in [
            "ftp://x/y",
            "http://",
            "http:///x",
            "https://h/a b",
            "https://h/a\nb",
            "https://h/ä",
            "https://user:pw@h/x",
            "h/x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn file_names_come_from_the_last_segment() {
        let name = |u: &str| HttpUrl::parse(u).unwrap().file_name();
        assert_eq!(name("https://h/a/b/os.img.xz?x=1"), "os.img.xz");
        assert_eq!(name("https://h/a/"), "base.img");
        assert_eq!(name("https://h"), "base.img");
        assert_eq!(name("https://h/..%2f"), "base.img");
        assert_eq!(name("https://h/%2e%2e"), "2e2e");
    }

    #[test]
    fn digests_are_64_hex_digits_kept_lowercase() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_sha256(&upper).unwrap().to_string(), "ab".repeat(32));
        assert!(
            parse_sha256(&"a".repeat(63))
                .unwrap_err()
                .contains("63 characters")
        );
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }

    #[test]
    fn names_are_printable() {
        assert!(CatalogName::parse("Raspberry Pi OS Lite (64-bit)").is_ok());
        assert!(CatalogName::parse(" ").is_err());
        assert!(CatalogName::parse("a\tb").is_err());
    }
}
