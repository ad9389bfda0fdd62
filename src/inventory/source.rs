//! YAML files with positions: every error about a value names its file, line and column.
//!
//! serde gives positions for syntax errors, wrong types and unknown keys. The checks
//! that come after deserializing (a duplicate hostname, an address outside its subnet)
//! need the position of a value found by its key path; [`Source`] records it from a
//! second, event-level parse of the same text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::bootcfg::did_you_mean;
use crate::error::{Error, IoContext, Result};

/// A position in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// A YAML file: its path, its text and where each value starts.
#[derive(Debug, Clone)]
pub struct Source {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    /// Key path (`nodes.3.address`) -> position of the value.
    positions: HashMap<String, Pos>,
    /// Where the first `*alias` is: serde's alias-expansion limits report no position.
    first_alias: Option<Pos>,
}

impl Source {
    /// Reads a cluster file or profile; anything but a regular file is refused first
    /// (unplaced: a profile's refusal belongs at the line that names it).
    pub(crate) fn read(path: &Path) -> Result<Source> {
        crate::values::input_file(path, false)?;
        let text = std::fs::read_to_string(path).at(path)?;
        Source::from_text(path, text)
    }

    pub(crate) fn from_text(path: &Path, text: String) -> Result<Source> {
        let mut rec = Recorder::default();
        Parser::new_from_str(&text)
            .load(&mut rec, true)
            .map_err(|e| {
                let m = e.marker();
                Error::invalid(format!(
                    "{}:{}:{}: {}",
                    path.display(),
                    m.line(),
                    m.col() + 1,
                    e.info()
                ))
                .with_hint("this is not valid YAML; check indentation and quoting near this place")
            })?;
        if let Some(at) = rec.second_document {
            // serde would read the first document and drop the rest without a word.
            return Err(Error::invalid(format!(
                "{}:{}:{}: a second YAML document starts here; a cluster file or profile is one document",
                path.display(),
                at.line,
                at.col
            ))
            .with_hint("remove this `---` and what follows it, or merge it into the document above"));
        }
        Ok(Source {
            path: path.to_path_buf(),
            text,
            positions: rec.positions,
            first_alias: rec.first_alias,
        })
    }

    /// Deserializes the whole file; errors carry the position serde reports, and
    /// unknown keys get a did-you-mean.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_norway::from_str(&self.text).map_err(|e| {
            let pos = e.location().map(|l| Pos {
                line: l.line(),
                col: l.column(),
            });
            let msg = e.to_string();
            // serde_norway appends " at line L column C"; the position leads instead.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let pos = self.refused_value(&msg).or(pos);
            // An expansion limit comes without a position: the aliases caused it.
            let pos = pos.or(self.first_alias);
            let err = self.error(pos.unwrap_or(Pos { line: 1, col: 1 }), &msg);
            match unknown_field_hint(&msg) {
                Some(h) => err.with_hint(h),
                None => err,
            }
        })
    }

    /// Where the value a typed field refused starts. serde places such an error (a word
    /// outside its set, a name outside its grammar) at the map that holds the field, and
    /// names that map's path (`slurm.partitions.p: max_time `soon`: ...`); the value is
    /// the first one quoted in backticks, found among that map's own entries.
    fn refused_value(&self, msg: &str) -> Option<Pos> {
        let (map, rest) = match msg.split_once(": ") {
            Some((p, r)) if !p.contains([' ', '`']) => (p, r),
            _ => ("", msg),
        };
        let value = rest.split('`').nth(1).filter(|v| !v.is_empty())?;
        let lines: Vec<&str> = self.text.lines().collect();
        let at = |pos: &Pos| -> Option<&str> {
            lines
                .get(pos.line.checked_sub(1)?)?
                .get(pos.col.checked_sub(1)?..)
        };
        let mut found: Vec<(&String, &Pos)> = self
            .positions
            .iter()
            .filter(|(k, _)| match k.strip_prefix(map) {
                Some(child) if map.is_empty() => !child.contains('.'),
                Some(child) => child.starts_with('.') && !child[1..].contains('.'),
                None => false,
            })
            .filter(|(_, p)| {
                at(p).is_some_and(|t| {
                    let t = t.trim_start_matches(['"', '\'']);
                    t.starts_with(value)
                })
            })
            .collect();
        found.sort_by_key(|(_, p)| (p.line, p.col));
        found.first().map(|(_, p)| **p)
    }

    /// Where the value at `path` (keys and sequence indexes joined by `.`) starts; the
    /// nearest enclosing value when that one is not in the file (a default).
    pub fn pos(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => {
                    return self
                        .positions
                        .get("")
                        .copied()
                        .unwrap_or(Pos { line: 1, col: 1 });
                }
            }
        }
    }

    /// Whether the file itself sets the value at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.positions.contains_key(path)
    }

    /// An input error at a position of this file.
    pub fn error(&self, pos: Pos, what: &str) -> Error {
        Error::invalid(format!(
            "{}:{}:{}: {what}",
            self.path.display(),
            pos.line,
            pos.col
        ))
    }

    /// An input error at the value of a key path.
    pub fn error_at(&self, path: &str, what: &str) -> Error {
        self.error(self.pos(path), what)
    }
}

/// "unknown field `adress`, expected one of `name`, `address`" -> "did you mean `address`?"
fn unknown_field_hint(msg: &str) -> Option<String> {
    let rest = &msg[msg.find("unknown field `")? + "unknown field `".len()..];
    let (field, rest) = rest.split_once('`')?;
    let known: Vec<String> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    match did_you_mean(field, &known) {
        Some(s) => Some(format!("did you mean `{s}`?")),
        None => Some(format!("known keys here: {}", known.join(", "))),
    }
}

/// Builds key paths from parser events.
#[derive(Default)]
struct Recorder {
    positions: HashMap<String, Pos>,
    stack: Vec<Frame>,
    documents: usize,
    second_document: Option<Pos>,
    first_alias: Option<Pos>,
}

enum Frame {
    /// A mapping: the path to it, and the key whose value comes next.
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

fn join(base: &str, part: &str) -> String {
    if base.is_empty() {
        part.to_string()
    } else {
        format!("{base}.{part}")
    }
}

impl Recorder {
    /// The path of the value that starts now, advancing the parent's state. `None` when
    /// the event is a mapping key.
    fn value_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = join(path, &next.to_string());
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    *key = Some(scalar.unwrap_or("?").to_string());
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::Scalar(v, ..) => {
                if let Some(p) = self.value_path(Some(&v)) {
                    self.positions.insert(p, pos);
                }
            }
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    self.second_document = Some(pos);
                }
            }
            Event::Alias(_) => {
                self.first_alias.get_or_insert(pos);
                if let Some(p) = self.value_path(None) {
                    self.positions.insert(p, pos);
                }
            }
            Event::MappingStart(..) => {
                let p = self.value_path(None).unwrap_or_default();
                self.positions.insert(p.clone(), pos);
                self.stack.push(Frame::Map { path: p, key: None });
            }
            Event::SequenceStart(..) => {
                let p = self.value_path(None).unwrap_or_default();
                self.positions.insert(p.clone(), pos);
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_key_paths() {
        let text =
            "cluster: c\nnodes:\n  - name: a\n    address: 10.0.0.5\n  - name: b\n".to_string();
        let s = Source::from_text(Path::new("c.yaml"), text).unwrap();
        assert_eq!(s.pos("cluster"), Pos { line: 1, col: 10 });
        assert_eq!(s.pos("nodes.0.address"), Pos { line: 4, col: 14 });
        assert_eq!(s.pos("nodes.1.name"), Pos { line: 5, col: 11 });
        // A key that is not there falls back to its enclosing value.
        assert_eq!(s.pos("nodes.1.address"), s.pos("nodes.1"));
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Node {
            name: String,
            address: Option<String>,
        }
        let s = Source::from_text(Path::new("c.yaml"), "name: a\nadress: x\n".into()).unwrap();
        let e = s.parse::<Node>().unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:2:1: unknown field `adress`"), "{e}");
        assert!(e.contains("did you mean `address`?"), "{e}");
    }
}
