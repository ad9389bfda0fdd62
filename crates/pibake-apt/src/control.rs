//! A zero-copy deb822 paragraph parser, used for `Release`, `Packages`,
//! `/var/lib/dpkg/status` and `.sources` files.
//!
//! Why hand-written: the crates.io options were checked (December 2026).
//! `deb822-lossless` builds a `rowan` syntax tree (and pulls `regex`), which is
//! built for editing, not for reading a 50 MB `Packages` file quickly;
//! `debian-control` sits on top of it. `deb822-fast` is light but copies every
//! field into a `String` and its errors carry no line number, which we need
//! so that a bad file is reported as `file:line`. Reading deb822 is ~150 lines,
//! so this module borrows slices of the input and records line numbers.
//!
//! Rules (Debian policy 5.1): a paragraph is a run of non-blank lines; lines
//! with only spaces/tabs also separate paragraphs; a field is `Name: value`,
//! continued by lines starting with a space or tab; field names are compared
//! case-insensitively; lines starting with `#` are comments (as apt accepts in
//! `.sources`); a duplicate field in one paragraph is an error (an ambiguous
//! signed file is refused rather than guessed at). `\r\n` endings are accepted.

use std::fmt;

/// A parse error, with the 1-based line where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ControlError {
    /// 1-based line number in the parsed text.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// One `Name: value` field. `value` is the raw text after the colon, with
/// leading/trailing whitespace of the whole value removed; for multi-line
/// fields it still contains the `\n` and the continuation lines' indentation
/// (use [`Field::lines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name as written.
    pub name: &'a str,
    /// Raw value.
    pub value: &'a str,
    /// 1-based line of the field name.
    pub line: usize,
}

impl<'a> Field<'a> {
    /// The value split into lines, each with surrounding whitespace and any
    /// `\r` removed. Since the value is trimmed, a field whose value starts
    /// on the next line (`SHA256:` in Release) yields that line first.
    pub fn lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.value
            .split('\n')
            .map(|l| l.trim_end_matches('\r').trim())
    }
}

/// A deb822 paragraph: an ordered list of fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph<'a> {
    /// Fields in file order.
    pub fields: Vec<Field<'a>>,
    /// 1-based line where the paragraph starts.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The value of the field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.value)
    }

    /// The line of field `name`, or the paragraph's first line.
    pub fn line_of(&self, name: &str) -> usize {
        self.field(name).map_or(self.line, |f| f.line)
    }
}

impl fmt::Display for Paragraph<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for field in &self.fields {
            writeln!(f, "{}: {}", field.name, field.value)?;
        }
        Ok(())
    }
}

/// Iterator over the paragraphs of a text; see [`paragraphs`].
pub struct Paragraphs<'a> {
    rest: &'a str,
    line: usize,
    failed: bool,
}

/// Iterate over the paragraphs of `text`, lazily (no allocation beyond each
/// paragraph's field list). Stops after the first error.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        rest: text,
        line: 0,
        failed: false,
    }
}

/// Parse all paragraphs of `text`.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    paragraphs(text).collect()
}

impl<'a> Paragraphs<'a> {
    /// Next raw line (without `\n`), advancing the line counter.
    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        self.line += 1;
        let (l, rest) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(l)
    }

    fn peek_line(&self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        Some(match self.rest.find('\n') {
            Some(i) => &self.rest[..i],
            None => self.rest,
        })
    }

    fn err(&mut self, message: String) -> Option<Result<Paragraph<'a>, ControlError>> {
        self.failed = true;
        Some(Err(ControlError {
            line: self.line,
            message,
        }))
    }
}

fn is_blank(l: &str) -> bool {
    l.bytes().all(|b| b == b' ' || b == b'\t' || b == b'\r')
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Skip separators and comments before the paragraph.
        while let Some(l) = self.peek_line() {
            if is_blank(l) || l.starts_with('#') {
                self.next_line();
            } else {
                break;
            }
        }
        let mut para = Paragraph {
            fields: Vec::with_capacity(24),
            line: self.line + 1,
        };
        while let Some(l) = self.peek_line() {
            if is_blank(l) {
                break;
            }
            // Position of this line's start inside the original text is not
            // needed: values are sliced from `self.rest` before advancing.
            let start = self.rest;
            self.next_line();
            if l.starts_with('#') {
                continue;
            }
            if l.starts_with([' ', '\t']) {
                return self.err("continuation line outside of a field".into());
            }
            let Some(colon) = l.find(':') else {
                return self.err(format!("expected `Name: value`, found `{}`", l.trim_end()));
            };
            let name = &l[..colon];
            if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return self.err(format!("invalid field name `{name}`"));
            }
            if para.field(name).is_some() {
                return self.err(format!("duplicate field `{name}`"));
            }
            let field_line = self.line;
            // The value runs from after the colon through all continuation lines.
            let mut end = l.len();
            let mut consumed = l.len();
            while let Some(next) = self.peek_line() {
                if next.starts_with([' ', '\t']) && !is_blank(next) {
                    self.next_line();
                    consumed += 1 + next.len();
                    end = consumed;
                } else {
                    // A comment line ends the value (it is then skipped by the
                    // outer loop); anything else starts the next field.
                    break;
                }
            }
            let value = start[colon + 1..end].trim_matches([' ', '\t', '\r', '\n']);
            para.fields.push(Field {
                name,
                value,
                line: field_line,
            });
        }
        if para.fields.is_empty() {
            // Only comments until end of input.
            self.peek_line()?;
        }
        Some(Ok(para))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_continuations_and_case() {
        let t = "Package: a\nDescription: short\n long line\n .\n more\n\n\n# c\nPACKAGE: b\r\nVersion: 1\r\n";
        let ps = parse(t).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        let d = ps[0].field("Description").unwrap();
        assert_eq!(
            d.lines().collect::<Vec<_>>(),
            ["short", "long line", ".", "more"]
        );
        assert_eq!(ps[1].get("Package"), Some("b"));
        assert_eq!(ps[1].get("version"), Some("1"));
        assert_eq!(ps[1].line, 9);
        assert_eq!(ps[1].line_of("Version"), 10);
    }

    #[test]
    fn errors_have_lines() {
        let e = parse("A: 1\nB 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse(" x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("A: 1\n\nB: 1\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("duplicate"));
    }

    #[test]
    fn whitespace_only_line_separates() {
        let ps = parse("A: 1\n \t\nA: 2\n").unwrap();
        assert_eq!(ps.len(), 2);
    }
}
