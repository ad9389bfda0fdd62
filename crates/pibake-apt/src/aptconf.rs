//! The few apt.conf settings that change what gets installed.
//!
//! apt.conf(5) syntax: `Scope::Name "value";`, nested scopes
//! `Scope { Name "value"; };`, `//` and `/* */` comments, `#` lines
//! (`#include`/`#clear` directives and comments, ignored here), list items
//! (`"value";` inside a scope, ignored). Names are case-insensitive. Files
//! are applied in the order given (the caller passes `apt.conf.d` files in
//! name order, as apt reads them), so later files override earlier ones.
//!
//! Read: `APT::Install-Recommends` (default true) and
//! `APT::Install-Suggests` (default false; recorded, not followed by the
//! resolver). Booleans as apt's `StringToBool`: yes/true/with/on/enable/1
//! and no/false/without/off/disable/0.

/// An apt.conf syntax error, naming the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct AptConfError {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Resolution-relevant apt settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AptConfig {
    /// `APT::Install-Recommends`.
    pub install_recommends: bool,
    /// `APT::Install-Suggests` (the resolver does not follow Suggests).
    pub install_suggests: bool,
}

impl Default for AptConfig {
    fn default() -> Self {
        AptConfig {
            install_recommends: true,
            install_suggests: false,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Semi,
}

fn tokenize(file: &str, text: &str) -> Result<Vec<(Tok, usize)>, AptConfError> {
    let err = |line, m: &str| AptConfError {
        file: file.into(),
        line,
        message: m.into(),
    };
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut i, mut line) = (0, 1);
    let mut at_line_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                at_line_start = true;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' if at_line_start => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = line;
                i += 2;
                loop {
                    if i + 1 >= b.len() {
                        return Err(err(start, "unterminated /* comment"));
                    }
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    if b[i] == b'*' && b[i + 1] == b'/' {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            b'{' => {
                out.push((Tok::Open, line));
                i += 1;
            }
            b'}' => {
                out.push((Tok::Close, line));
                i += 1;
            }
            b';' => {
                out.push((Tok::Semi, line));
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\n' {
                        return Err(err(line, "unterminated string"));
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return Err(err(line, "unterminated string"));
                }
                out.push((Tok::Word(text[start..j].to_string()), line));
                i = j + 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !b" \t\r\n{};\"".contains(&b[i]) {
                    i += 1;
                }
                out.push((Tok::Word(text[start..i].to_string()), line));
            }
        }
        at_line_start = false;
    }
    Ok(out)
}

fn to_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "with" | "on" | "enable" | "1" => Some(true),
        "no" | "false" | "without" | "off" | "disable" | "0" => Some(false),
        _ => None,
    }
}

impl AptConfig {
    /// Apply one apt.conf file on top of `self`.
    pub fn apply(&mut self, file: &str, text: &str) -> Result<(), AptConfError> {
        let toks = tokenize(file, text)?;
        let err = |line, m: String| AptConfError {
            file: file.into(),
            line,
            message: m,
        };
        let mut scope: Vec<String> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let (t, line) = (&toks[i].0, toks[i].1);
            match t {
                Tok::Close => {
                    if scope.pop().is_none() {
                        return Err(err(line, "unbalanced `}`".into()));
                    }
                    i += 1;
                    if matches!(toks.get(i), Some((Tok::Semi, _))) {
                        i += 1;
                    }
                }
                Tok::Semi => i += 1,
                Tok::Open => return Err(err(line, "`{` without a name".into())),
                Tok::Word(name) => match toks.get(i + 1).map(|t| &t.0) {
                    Some(Tok::Open) => {
                        scope.push(name.clone());
                        i += 2;
                    }
                    Some(Tok::Semi) | None if !scope.is_empty() => {
                        // A list item; nothing we read is a list.
                        i += 2;
                    }
                    Some(Tok::Word(value)) => {
                        match toks.get(i + 2).map(|t| &t.0) {
                            Some(Tok::Semi) => {}
                            _ => {
                                return Err(err(
                                    line,
                                    format!("expected `;` after `{name} \"{value}\"`"),
                                ));
                            }
                        }
                        let mut full = scope.join("::");
                        if !full.is_empty() {
                            full.push_str("::");
                        }
                        full.push_str(name);
                        self.set(&full, value).map_err(|m| err(line, m))?;
                        i += 3;
                    }
                    _ => return Err(err(line, format!("expected a value after `{name}`"))),
                },
            }
        }
        if !scope.is_empty() {
            return Err(err(toks.last().map_or(1, |t| t.1), "missing `}`".into()));
        }
        Ok(())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let k = key.to_ascii_lowercase();
        let slot = match k.as_str() {
            "apt::install-recommends" => &mut self.install_recommends,
            "apt::install-suggests" => &mut self.install_suggests,
            _ => return Ok(()),
        };
        *slot = to_bool(value).ok_or_else(|| format!("`{key}`: `{value}` is not a boolean"))?;
        Ok(())
    }

    /// Read files in the given order (name order of `/etc/apt/apt.conf.d`,
    /// then `/etc/apt/apt.conf` if present, as apt does), starting from apt's
    /// defaults.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AptConfError> {
        let mut c = AptConfig::default();
        for (name, text) in files {
            c.apply(name, text)?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let c = AptConfig::from_files([("a", "APT::Install-Recommends \"false\";")]).unwrap();
        assert!(!c.install_recommends);
        let c = AptConfig::from_files([(
            "a",
            "// c\nAPT {\n  Install-Recommends \"0\"; /* x\n */\n  Install-Suggests \"1\";\n};\n",
        )])
        .unwrap();
        assert!(!c.install_recommends && c.install_suggests);
        let c = AptConfig::from_files([
            ("10no", "apt::install-recommends false;"),
            (
                "99yes",
                "#clear X\nAPT::Install-Recommends \"true\";\nDPkg::Pre-Invoke { \"echo hi\"; };",
            ),
        ])
        .unwrap();
        assert!(c.install_recommends);
    }

    #[test]
    fn errors() {
        let e = AptConfig::from_files([("f", "A {\n B \"1\"\n}")]).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("f", 2));
        let e = AptConfig::from_files([("f", "\nAPT::Install-Recommends \"maybe\";")]).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(AptConfig::from_files([("f", "A { B \"1\";")]).is_err());
    }
}
