//! Paths inside the target root, normalised once so that every later comparison (hard
//! link targets, conffiles, the writer's own lookups) compares like with like.

use std::fmt;

use crate::error::ErrorKind;

/// Longest file name a Linux filesystem stores (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// An absolute, normalised path inside the target root, as dpkg records it in its file
/// lists: `./usr/bin/x`, `usr/bin/x` and `/usr/bin/x` are all `/usr/bin/x`; `./` and
/// `.` are the root, `/`.
///
/// Normalising drops leading `/` and `./` (as dpkg does), repeated and trailing `/`,
/// and `.` components (which name the directory they are in). A `..` component is
/// refused, not resolved: it is never legitimate in a package and resolving it is how
/// archives write outside their root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DebPath(String);

/// Why a name from an archive is not a usable [`DebPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path is not UTF-8, which pibake does not write")]
    NotUtf8,
    #[error("the path has a `..` component, which would leave the target root")]
    DotDot,
    #[error("a path component is longer than {NAME_MAX} bytes, more than a filesystem stores")]
    TooLong,
}

impl PathError {
    /// How a package with this path is refused.
    pub fn kind(self) -> ErrorKind {
        match self {
            PathError::Empty | PathError::Nul => ErrorKind::Malformed,
            PathError::DotDot => ErrorKind::Unsafe,
            PathError::NotUtf8 | PathError::TooLong => ErrorKind::Unsupported,
        }
    }
}

impl DebPath {
    /// Normalises a name as it appears in a tar header or a control file.
    pub fn parse(raw: &[u8]) -> Result<DebPath, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let text = std::str::from_utf8(raw).map_err(|_| PathError::NotUtf8)?;
        let mut path = String::with_capacity(text.len().saturating_add(1));
        for part in text.split('/') {
            match part {
                "" | "." => continue,
                ".." => return Err(PathError::DotDot),
                _ if part.len() > NAME_MAX => return Err(PathError::TooLong),
                _ => {
                    path.push('/');
                    path.push_str(part);
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(DebPath(path))
    }

    /// The path as text, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the target root itself, `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The directory holding this path; `None` for the root.
    pub fn parent(&self) -> Option<DebPath> {
        let (head, _) = self.0.rsplit_once('/')?;
        match head {
            "" if self.is_root() => None,
            "" => Some(DebPath("/".to_owned())),
            _ => Some(DebPath(head.to_owned())),
        }
    }
}

impl fmt::Display for DebPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        DebPath::parse(raw.as_bytes()).map(|p| p.0)
    }

    #[test]
    fn normalises_like_dpkg() {
        for (raw, want) in [
            ("./usr/bin/x", "/usr/bin/x"),
            ("usr/bin/x", "/usr/bin/x"),
            ("/usr/bin/x", "/usr/bin/x"),
            ("./usr//lib/./a/", "/usr/lib/a"),
            ("./", "/"),
            (".", "/"),
            ("/", "/"),
        ] {
            assert_eq!(norm(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refuses_escapes_and_odd_names() {
        assert_eq!(norm("../etc/passwd"), Err(PathError::DotDot));
        assert_eq!(norm("./usr/../../etc"), Err(PathError::DotDot));
        assert_eq!(norm(""), Err(PathError::Empty));
        assert_eq!(norm("a\0b"), Err(PathError::Nul));
        assert_eq!(DebPath::parse(b"./\xff"), Err(PathError::NotUtf8));
        assert_eq!(
            norm(&format!("./{}", "x".repeat(256))),
            Err(PathError::TooLong)
        );
        assert!(norm(&format!("./{}", "x".repeat(255))).is_ok());
    }

    #[test]
    fn parents_walk_up_to_the_root() {
        let path = DebPath::parse(b"./usr/bin/x").unwrap();
        let parents: Vec<String> = std::iter::successors(path.parent(), DebPath::parent)
            .map(|p| p.to_string())
            .collect();
        assert_eq!(parents, ["/usr/bin", "/usr", "/"]);
        assert!(DebPath::parse(b"./").unwrap().is_root());
    }
}
