//! `config.txt`: the firmware's configuration, a list of lines under conditional sections.
//!
//! The model keeps every line of the file as written (text plus its own line ending), so
//! an unedited file renders back byte for byte: CRLF, a missing final newline, odd
//! spacing and comments all survive. Meaning is derived from the lines on demand instead
//! of being stored beside them, so it can never drift out of step with the text.
//!
//! ## Sections
//!
//! A header such as `[pi4]` opens a filter that lasts until the next header. Filters of the
//! same type replace each other (`[cm5]` after `[cm4]`), filters of different types combine
//! (`[gpio4=1]` then `[pi4]` means both), `[all]` clears them, and the text before the
//! first header is unfiltered. A line therefore belongs to [`Section::ALL`] only when no
//! filter is in force, and to `[pi4]` only when `pi4` is the *only* filter in force: a
//! `[pi4]` block that also sits under `[gpio4=1]` is not what a caller asking for `[pi4]`
//! means, so edits neither look there nor write there.
//!
//! ## Where edits go
//!
//! Replacements happen in place, wherever the section's line is. New lines go at the end
//! of the file's last block when that block is the chosen section (after its last
//! non-blank line), otherwise under a newly appended header. Appending, rather than
//! slipping a line into an earlier block, matters because the firmware lets the last value
//! win: a global setting written above a `[pi4]` block would be silently overridden there.
//! It also means pibake never assumes the file ends in `[all]` (stock files do, but
//! other tools append `[pi4]` or `[cm5]` blocks).
//!
//! ## Duplicates
//!
//! The firmware takes the last `key=` it sees, so after [`ConfigTxt::set`] a section holds
//! exactly one `key=` line: the last one is updated in place and earlier ones are removed.
//! `dtoverlay=` lines are different: one overlay may legitimately be loaded twice with
//! different parameters (two `i2c-gpio` buses), so [`ConfigTxt::add_overlay`] only
//! touches the last line of that overlay.
//!
//! Removals never delete section headers; an emptied block is harmless to the firmware
//! and deleting a header could change which filters apply to the lines after it.

use std::collections::BTreeMap;
use std::fmt;

use super::did_you_mean;
use crate::error::{Error, Result};

/// The firmware ignores characters beyond this position on a line.
const MAX_LINE: usize = 98;

/// One overlay parameter: `dr_mode=peripheral` or a bare switch such as `pcf85063a`.
pub type OverlayParam = (String, Option<String>);

/// A conditional section of config.txt: [`Section::ALL`] (no filter in force: `[all]`, or
/// the text before the first header) or one filter such as `pi4`, `cm5`, `gpio4=1` or
/// `0x12345678`, named by what goes inside the brackets.
///
/// The filter is private so that every `Section` went through [`Section::new`]'s checks:
/// a name containing `]` or a line break would corrupt the file, and a filter spelled
/// `all` would never match its own header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Section(Option<String>);

impl Section {
    /// No filter: `[all]` and the headerless top of the file.
    pub const ALL: Section = Section(None);

    /// The section for `name` (`"all"` or a filter), refusing names that cannot be written
    /// as one header line.
    pub fn new(name: &str) -> Result<Section> {
        if name == "all" {
            return Ok(Section::ALL);
        }
        if name.trim().is_empty() {
            return Err(Error::invalid("config.txt: empty section name")
                .with_hint("use a filter such as 'pi4' or 'cm5', or 'all'"));
        }
        if let Some(c) = name.chars().find(|c| matches!(c, '[' | ']' | '\n' | '\r')) {
            return Err(Error::invalid(format!(
                "config.txt: section name '{}' contains {}",
                name.escape_debug(),
                describe(c)
            ))
            .with_hint("give the filter without brackets, e.g. 'pi4'"));
        }
        Ok(Section(Some(name.to_string())))
    }

    /// The filter inside the brackets; `None` for [`Section::ALL`].
    pub fn filter(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn header(&self) -> String {
        format!("[{self}]")
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.filter().unwrap_or("all"))
    }
}

/// One `key=value` line, for an inspect summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The header the line sits under (`all` before the first header).
    pub section: String,
    /// The setting's name, left of the `=` (trimmed).
    pub key: String,
    /// Everything right of the first `=` (trimmed).
    pub value: String,
}

/// A parsed config.txt. See the module documentation for the editing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTxt {
    lines: Vec<Line>,
}

/// A line's text without its ending, and the ending itself (`""` on a last line that has
/// none), so rendering is a plain concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    eol: &'static str,
}

/// What a line means to the firmware.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    Blank,
    Comment,
    Header(&'a str),
    Setting {
        key: &'a str,
        value: &'a str,
    },
    /// Anything else (`include extra.txt`, `initramfs initrd.img followkernel`, junk).
    Other,
}

fn kind(text: &str) -> Kind<'_> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        Kind::Blank
    } else if trimmed.starts_with('#') {
        Kind::Comment
    } else if let Some(rest) = trimmed.strip_prefix('[') {
        rest.split_once(']')
            .map_or(Kind::Other, |(name, _)| Kind::Header(name))
    } else if let Some((key, value)) = trimmed.split_once('=')
        && !key.trim().is_empty()
    {
        Kind::Setting {
            key: key.trim(),
            value: value.trim(),
        }
    } else {
        Kind::Other
    }
}

/// The filters in force, by type (see [`filter_type`]).
type Filters = BTreeMap<String, String>;

/// The firmware's filter type of a header: same-type filters replace each other.
fn filter_type(name: &str) -> String {
    if name.starts_with("0x") || name.starts_with("0X") {
        return "serial".to_string();
    }
    if name.starts_with("board-type=") {
        return "model".to_string();
    }
    match name.split_once(['=', ':']) {
        Some((kind, _)) => kind.to_string(),
        None if matches!(name, "none" | "tryboot") => name.to_string(),
        None => "model".to_string(),
    }
}

fn enter(filters: &mut Filters, header: &str) {
    if header == "all" {
        filters.clear();
    } else {
        filters.insert(filter_type(header), header.to_string());
    }
}

/// Whether lines under `filters` are exactly `section`.
fn is_section(filters: &Filters, section: &Section) -> bool {
    match section.filter() {
        None => filters.is_empty(),
        Some(name) => {
            filters.len() == 1 && filters.get(&filter_type(name)).map(String::as_str) == Some(name)
        }
    }
}

impl ConfigTxt {
    /// Parses config.txt. Never fails: unknown lines are kept verbatim, because the
    /// firmware (not pibake) is the judge of what they mean.
    pub fn parse(text: &str) -> ConfigTxt {
        let lines = text
            .split_inclusive('\n')
            .map(|piece| {
                if let Some(text) = piece.strip_suffix("\r\n") {
                    Line::new(text, "\r\n")
                } else if let Some(text) = piece.strip_suffix('\n') {
                    Line::new(text, "\n")
                } else {
                    Line::new(piece, "")
                }
            })
            .collect();
        ConfigTxt { lines }
    }

    /// The file's text; identical to the parsed input if nothing was edited.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .flat_map(|l| [l.text.as_str(), l.eol])
            .collect()
    }

    /// The value of the last `key=` line in `section` (the one the firmware uses there),
    /// without surrounding blanks. Anything else after the `=` is part of the value, as it
    /// is for the firmware's string settings: `otg_mode=1 # Controller only` gives
    /// `1 # Controller only`.
    pub fn get(&self, section: &Section, key: &str) -> Option<&str> {
        self.settings_in(section)
            .filter(|(_, k, _)| *k == key)
            .last()
            .map(|(_, _, v)| v)
    }

    /// The overlays loaded by `section`'s own lines, in file order.
    pub fn overlays(&self, section: &Section) -> Vec<(String, Vec<OverlayParam>)> {
        self.settings_in(section)
            .filter(|(_, k, v)| *k == "dtoverlay" && !v.is_empty())
            .map(|(_, _, v)| parse_overlay(v))
            .collect()
    }

    /// Every `key=value` line with the header it sits under, in file order.
    pub fn all_entries(&self) -> Vec<Entry> {
        let mut section = "all";
        let mut out = Vec::new();
        for line in &self.lines {
            match kind(&line.text) {
                Kind::Header(name) => section = name,
                Kind::Setting { key, value } => out.push(Entry {
                    section: section.to_string(),
                    key: key.to_string(),
                    value: value.to_string(),
                }),
                _ => {}
            }
        }
        out
    }

    /// Makes `key=value` the only `key=` line of `section`: the last existing one is
    /// updated in place, earlier ones removed, and a missing one inserted.
    pub fn set(&mut self, section: &Section, key: &str, value: &str) -> Result<()> {
        check_plain_key(key)?;
        check_value(key, value)?;
        let text = format!("{key}={value}");
        check_length(&text)?;
        let found = self.lines_where(section, |k, _| k == key);
        match found.split_last() {
            Some((&last, earlier)) => {
                if self.value_at(last) != Some(value) {
                    self.replace(last, text);
                }
                self.remove_lines(earlier);
            }
            None => {
                let at = self.insertion_point(section);
                self.insert(at, vec![text]);
            }
        }
        Ok(())
    }

    /// Removes every `key=` line of `section`. Absent keys are fine.
    pub fn unset(&mut self, section: &Section, key: &str) -> Result<()> {
        check_plain_key(key)?;
        let found = self.lines_where(section, |k, _| k == key);
        self.remove_lines(&found);
        Ok(())
    }

    /// Loads overlay `name` with `params` in `section`.
    ///
    /// A line for that overlay with the same parameters makes this a no-op; otherwise the
    /// last line for that overlay is rewritten, or a new line inserted.
    pub fn add_overlay(
        &mut self,
        section: &Section,
        name: &str,
        params: &[OverlayParam],
    ) -> Result<()> {
        check_word("overlay name", name)?;
        for (param, value) in params {
            check_word("overlay parameter", param)?;
            if let Some(value) = value {
                check_param_value(param, value)?;
            }
        }
        let text = overlay_text(name, params);
        check_length(&text)?;
        let found = self.overlay_lines(section, name);
        let wanted = (name.to_string(), params.to_vec());
        if found
            .iter()
            .any(|&i| self.value_at(i).map(parse_overlay).as_ref() == Some(&wanted))
        {
            return Ok(());
        }
        match found.last() {
            Some(&last) => self.replace(last, text),
            None => {
                let at = self.insertion_point(section);
                self.insert(at, vec![text]);
            }
        }
        Ok(())
    }

    /// Removes every `dtoverlay=name…` line of `section`, together with the `dtparam=`
    /// lines that follow it in the same block: those configure that overlay, and left
    /// behind they would configure whatever overlay was loaded before it.
    pub fn remove_overlay(&mut self, section: &Section, name: &str) -> Result<()> {
        check_word("overlay name", name)?;
        let mut doomed = Vec::new();
        for i in self.overlay_lines(section, name) {
            doomed.push(i);
            for (j, line) in self.lines.iter().enumerate().skip(i + 1) {
                match kind(&line.text) {
                    Kind::Header(_) => break,
                    Kind::Setting {
                        key: "dtoverlay", ..
                    } => break,
                    Kind::Setting { key: "dtparam", .. } => doomed.push(j),
                    _ => {}
                }
            }
        }
        self.remove_lines(&doomed);
        Ok(())
    }

    /// Sets base device-tree parameter `name` to `value` in `section`.
    ///
    /// An existing setting is found even inside a multi-parameter line
    /// (`dtparam=i2c_arm=on,spi=on`) and changed there; earlier duplicates are removed.
    /// `dtparam=` lines that follow a `dtoverlay=` configure that overlay, not the base
    /// tree, so they are not matched, and a new line that would land in an overlay's scope
    /// is preceded by an empty `dtoverlay=`, which ends that scope.
    pub fn set_dtparam(&mut self, section: &Section, name: &str, value: &str) -> Result<()> {
        check_word("dtparam name", name)?;
        check_param_value(name, value)?;
        let found = self.base_dtparam_lines(section, name);
        let Some((&last, earlier)) = found.split_last() else {
            return self.insert_dtparam(section, format!("dtparam={name}={value}"));
        };
        let mut items = self.dtparam_items(last);
        let keep = items.iter().rposition(|(n, _)| n == name);
        if keep.and_then(|k| items.get(k)).map(|(_, v)| v.as_deref()) != Some(Some(value)) {
            let mut index = 0;
            items.retain(|(n, _)| {
                let retain = n != name || Some(index) == keep;
                index += 1;
                retain
            });
            for item in items.iter_mut().filter(|(n, _)| n == name) {
                item.1 = Some(value.to_string());
            }
            let text = dtparam_text(&items);
            check_length(&text)?;
            self.replace(last, text);
        }
        for &i in earlier.iter().rev() {
            self.drop_dtparam_item(i, name);
        }
        Ok(())
    }

    /// Removes base device-tree parameter `name` from `section`, from multi-parameter
    /// lines too. An empty `dtoverlay=` directly above a removed line is removed with it
    /// when it no longer scopes any `dtparam=`, so removing what
    /// [`ConfigTxt::set_dtparam`] added restores the file.
    pub fn remove_dtparam(&mut self, section: &Section, name: &str) -> Result<()> {
        check_word("dtparam name", name)?;
        for i in self.base_dtparam_lines(section, name).into_iter().rev() {
            self.drop_dtparam_item(i, name);
        }
        Ok(())
    }

    /// Adds a line verbatim to `section` unless that exact line (ignoring surrounding
    /// blanks) is already there. For directives the model has no verb for.
    pub fn add_line(&mut self, section: &Section, raw: &str) -> Result<()> {
        if let Some(c) = raw.chars().find(|c| matches!(c, '\n' | '\r')) {
            return Err(Error::invalid(format!(
                "config.txt: line '{}' contains {}",
                raw.escape_debug(),
                describe(c)
            ))
            .with_hint("add one line at a time"));
        }
        if raw.trim().is_empty() || raw.trim_start().starts_with('[') {
            return Err(
                Error::invalid(format!("config.txt: '{raw}' is not a directive line"))
                    .with_hint("choose the section with the section argument, not a header line"),
            );
        }
        check_length(raw)?;
        let present = self.indices_in(section).into_iter().any(|i| {
            self.lines
                .get(i)
                .is_some_and(|l| l.text.trim() == raw.trim())
        });
        if !present {
            let at = self.insertion_point(section);
            self.insert(at, vec![raw.to_string()]);
        }
        Ok(())
    }

    /// Indices of the non-header lines that belong to `section`.
    fn indices_in(&self, section: &Section) -> Vec<usize> {
        let mut filters = Filters::new();
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match kind(&line.text) {
                Kind::Header(name) => enter(&mut filters, name),
                _ if is_section(&filters, section) => out.push(i),
                _ => {}
            }
        }
        out
    }

    /// `(index, key, value)` of the settings in `section`.
    fn settings_in(&self, section: &Section) -> impl Iterator<Item = (usize, &str, &str)> {
        self.indices_in(section).into_iter().filter_map(|i| {
            let line = self.lines.get(i)?;
            match kind(&line.text) {
                Kind::Setting { key, value } => Some((i, key, value)),
                _ => None,
            }
        })
    }

    fn lines_where(&self, section: &Section, pred: impl Fn(&str, &str) -> bool) -> Vec<usize> {
        self.settings_in(section)
            .filter(|(_, k, v)| pred(k, v))
            .map(|(i, _, _)| i)
            .collect()
    }

    fn overlay_lines(&self, section: &Section, name: &str) -> Vec<usize> {
        self.lines_where(section, |k, v| {
            k == "dtoverlay" && parse_overlay(v).0 == name
        })
    }

    /// The `dtparam=` lines of `section` that set base parameter `name`, skipping those in
    /// an overlay's scope. Scope is tracked across headers: the firmware docs end it only
    /// at the next `dtoverlay=`, so assuming a header ends it would be the unsafe guess.
    fn base_dtparam_lines(&self, section: &Section, name: &str) -> Vec<usize> {
        let mine = self.indices_in(section);
        let mut overlay_open = false;
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match kind(&line.text) {
                Kind::Setting {
                    key: "dtoverlay",
                    value,
                } => overlay_open = !value.is_empty(),
                Kind::Setting {
                    key: "dtparam",
                    value,
                } if !overlay_open
                    && mine.binary_search(&i).is_ok()
                    && parse_items(value).iter().any(|(n, _)| n == name) =>
                {
                    out.push(i);
                }
                _ => {}
            }
        }
        out
    }

    fn overlay_open_before(&self, at: usize) -> bool {
        self.lines
            .iter()
            .take(at)
            .rev()
            .find_map(|l| match kind(&l.text) {
                Kind::Setting {
                    key: "dtoverlay",
                    value,
                } => Some(!value.is_empty()),
                _ => None,
            })
            .unwrap_or(false)
    }

    fn insert_dtparam(&mut self, section: &Section, text: String) -> Result<()> {
        check_length(&text)?;
        let at = self.insertion_point(section);
        let texts = if self.overlay_open_before(at) {
            vec!["dtoverlay=".to_string(), text]
        } else {
            vec![text]
        };
        self.insert(at, texts);
        Ok(())
    }

    fn dtparam_items(&self, i: usize) -> Vec<OverlayParam> {
        self.value_at(i).map(parse_items).unwrap_or_default()
    }

    /// Removes `name` from the dtparam line `i`, dropping the line (and a reset above it
    /// that no longer scopes anything) when nothing is left.
    fn drop_dtparam_item(&mut self, i: usize, name: &str) {
        let mut items = self.dtparam_items(i);
        items.retain(|(n, _)| n != name);
        if !items.is_empty() {
            self.replace(i, dtparam_text(&items));
            return;
        }
        self.remove_lines(&[i]);
        if let Some(above) = i.checked_sub(1)
            && self.value_at(above) == Some("")
            && self.key_at(above) == Some("dtoverlay")
            && !self.dtparam_follows(above)
        {
            self.remove_lines(&[above]);
        }
    }

    /// Whether a `dtparam=` line comes after `i` before the next `dtoverlay=`.
    fn dtparam_follows(&self, i: usize) -> bool {
        for line in self.lines.iter().skip(i + 1) {
            match kind(&line.text) {
                Kind::Setting {
                    key: "dtoverlay", ..
                } => return false,
                Kind::Setting { key: "dtparam", .. } => return true,
                _ => {}
            }
        }
        false
    }

    fn key_at(&self, i: usize) -> Option<&str> {
        match kind(&self.lines.get(i)?.text) {
            Kind::Setting { key, .. } => Some(key),
            _ => None,
        }
    }

    fn value_at(&self, i: usize) -> Option<&str> {
        match kind(&self.lines.get(i)?.text) {
            Kind::Setting { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Where a new line for `section` goes: after the last non-blank line of the file's
    /// final block if that block is `section`, else under a header appended here (after a
    /// blank separator line, as people write them). A filter header that would combine
    /// with other filters still in force is preceded by `[all]`.
    fn insertion_point(&mut self, section: &Section) -> usize {
        let mut filters = Filters::new();
        let mut block_start = 0;
        for (i, line) in self.lines.iter().enumerate() {
            if let Kind::Header(name) = kind(&line.text) {
                enter(&mut filters, name);
                block_start = i + 1;
            }
        }
        if is_section(&filters, section) {
            let last_content = (block_start..self.lines.len()).rev().find(|&i| {
                self.lines
                    .get(i)
                    .is_some_and(|l| kind(&l.text) != Kind::Blank)
            });
            return last_content.map_or(block_start, |i| i + 1);
        }
        let mut headers = Vec::new();
        if let Some(name) = section.filter() {
            enter(&mut filters, name);
            if !is_section(&filters, section) {
                headers.push(Section::ALL.header());
            }
        }
        headers.push(section.header());
        if self
            .lines
            .last()
            .is_some_and(|l| kind(&l.text) != Kind::Blank)
        {
            headers.insert(0, String::new());
        }
        let end = self.lines.len();
        self.insert(end, headers);
        self.lines.len()
    }

    /// Inserts `texts` as lines before index `at`, with the file's own line ending.
    fn insert(&mut self, at: usize, texts: Vec<String>) {
        let eol = self.eol();
        if at >= self.lines.len()
            && let Some(last) = self.lines.last_mut()
            && last.eol.is_empty()
        {
            last.eol = eol;
        }
        let at = at.min(self.lines.len());
        let new = texts.into_iter().map(|text| Line { text, eol });
        self.lines.splice(at..at, new);
    }

    fn replace(&mut self, i: usize, text: String) {
        if let Some(line) = self.lines.get_mut(i) {
            line.text = text;
        }
    }

    /// Removes the lines at `indices` (any order). If the file's last line goes, the new
    /// last line keeps its ending: the file then ends with a newline, which is harmless.
    fn remove_lines(&mut self, indices: &[usize]) {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for &i in sorted.iter().rev() {
            if i < self.lines.len() {
                self.lines.remove(i);
            }
        }
    }

    /// The line ending new lines get: the first one in the file, LF for a one-line file.
    fn eol(&self) -> &'static str {
        self.lines
            .iter()
            .map(|l| l.eol)
            .find(|e| !e.is_empty())
            .unwrap_or("\n")
    }
}

impl Line {
    fn new(text: &str, eol: &'static str) -> Line {
        Line {
            text: text.to_string(),
            eol,
        }
    }
}

/// Checks that overlay `name` exists as `overlays/<name>.dtbo` in the image (`available`
/// holds those names without `.dtbo`). A missing overlay is only noticed by the firmware
/// at boot, silently, so pibake refuses it while the user can still fix the typo.
pub fn check_overlay(name: &str, available: &[String]) -> Result<()> {
    if available.iter().any(|a| a == name) {
        return Ok(());
    }
    let err = Error::invalid(format!(
        "config.txt: overlay '{name}' is not in the image's overlays/ directory"
    ));
    Err(match did_you_mean(name, available) {
        Some(best) => err.with_hint(format!("did you mean '{best}'?")),
        None => err.with_hint("list the image's overlays/ directory for the names it ships"),
    })
}

/// Splits a `dtoverlay=` value into the overlay name and its parameters.
pub fn parse_overlay(value: &str) -> (String, Vec<OverlayParam>) {
    let mut parts = value.splitn(2, ',');
    let name = parts.next().unwrap_or_default().trim().to_string();
    (name, parse_items(parts.next().unwrap_or_default()))
}

/// Splits `a=b,c,d=e` into `(a, Some(b)), (c, None), (d, Some(e))`.
fn parse_items(value: &str) -> Vec<OverlayParam> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
            None => (item.to_string(), None),
        })
        .collect()
}

fn join_items(items: &[OverlayParam]) -> String {
    items
        .iter()
        .map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn overlay_text(name: &str, params: &[OverlayParam]) -> String {
    if params.is_empty() {
        format!("dtoverlay={name}")
    } else {
        format!("dtoverlay={name},{}", join_items(params))
    }
}

fn dtparam_text(items: &[OverlayParam]) -> String {
    format!("dtparam={}", join_items(items))
}

/// A key for [`ConfigTxt::set`]: one word that parses back as the same key.
/// `dtoverlay` and `dtparam` are refused there because they repeat by design and have
/// their own verbs.
fn check_plain_key(key: &str) -> Result<()> {
    check_key(key)?;
    if matches!(key, "dtoverlay" | "dtparam") {
        return Err(Error::invalid(format!(
            "config.txt: '{key}' lines are not single-valued settings"
        ))
        .with_hint("use the overlay or dtparam edits instead"));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("config.txt: empty key"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '=' | '['))
    {
        return Err(Error::invalid(format!(
            "config.txt: key '{}' contains {}",
            key.escape_debug(),
            describe(c)
        ))
        .with_hint("a key is one word such as 'gpu_mem'; give the value separately"));
    }
    if key.starts_with('#') {
        return Err(Error::invalid(format!(
            "config.txt: key '{key}' starts with '#', which makes the line a comment"
        )));
    }
    Ok(())
}

fn check_value(key: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| matches!(c, '\n' | '\r')) {
        Some(c) => Err(Error::invalid(format!(
            "config.txt: value '{}' of '{key}' contains {}",
            value.escape_debug(),
            describe(c)
        ))
        .with_hint("config.txt values are one line")),
        None => Ok(()),
    }
}

/// Overlay names and parameter names: one word without the separators of the line.
fn check_word(what: &str, word: &str) -> Result<()> {
    if word.is_empty() {
        return Err(Error::invalid(format!("config.txt: empty {what}")));
    }
    match word
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ',' | '=' | '#' | '[' | ']'))
    {
        Some(c) => Err(Error::invalid(format!(
            "config.txt: {what} '{}' contains {}",
            word.escape_debug(),
            describe(c)
        ))),
        None => Ok(()),
    }
}

fn check_param_value(name: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.is_whitespace() || *c == ',') {
        Some(c) => Err(Error::invalid(format!(
            "config.txt: value '{}' of parameter '{name}' contains {}",
            value.escape_debug(),
            describe(c)
        ))
        .with_hint("parameters are separated by commas; give each one separately")),
        None => Ok(()),
    }
}

fn check_length(text: &str) -> Result<()> {
    let len = text.chars().count();
    if len > MAX_LINE {
        return Err(Error::invalid(format!(
            "config.txt: line '{text}' is {len} characters long; the firmware ignores \
             everything after character {MAX_LINE}"
        ))
        .with_hint("move overlay parameters onto separate dtparam= lines"));
    }
    Ok(())
}

/// Names a character so an error message shows it even when it is invisible.
fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\t' => "a tab".to_string(),
        '\n' => "a line break".to_string(),
        '\r' => "a carriage return (CR)".to_string(),
        other if other.is_whitespace() => format!("the blank character U+{:04X}", u32::from(other)),
        other => format!("'{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Stock files (pi-gen stage1/00-boot-files/files/config.txt per release branch). The
    // shared reference lists their directives and order only; the comment lines are
    // reconstructed from the pi-gen files as remembered and may differ in wording, which
    // does not matter to these tests (comments are kept verbatim either way). trixie is
    // bookworm plus the June 2026 `[pi5] dtoverlay=nospi10` block; `arm_64bit=1` is left
    // out because the reference does not list it.
    const BULLSEYE: &str = include_str!("../../testdata/raspios/bullseye/config.txt");
    const BOOKWORM: &str = include_str!("../../testdata/raspios/bookworm/config.txt");
    const TRIXIE: &str = include_str!("../../testdata/raspios/trixie/config.txt");
    const STOCK: [(&str, &str); 3] = [
        ("bullseye", BULLSEYE),
        ("bookworm", BOOKWORM),
        ("trixie", TRIXIE),
    ];

    fn all() -> Section {
        Section::ALL
    }

    fn filter(name: &str) -> Section {
        Section::new(name).unwrap()
    }

    fn param(name: &str, value: &str) -> OverlayParam {
        (name.to_string(), Some(value.to_string()))
    }

    fn edited(text: &str, edit: impl Fn(&mut ConfigTxt)) -> String {
        let mut c = ConfigTxt::parse(text);
        edit(&mut c);
        c.render()
    }

    fn message<T: fmt::Debug>(result: Result<T>) -> String {
        result.unwrap_err().to_string()
    }

    /// One edit of every kind, the Cluster HAT node's among them.
    fn every_edit(c: &mut ConfigTxt) {
        c.set(&all(), "gpu_mem", "16").unwrap();
        c.set(&all(), "enable_uart", "1").unwrap();
        c.add_overlay(&all(), "dwc2", &[param("dr_mode", "peripheral")])
            .unwrap();
        c.set_dtparam(&all(), "i2c_arm", "on").unwrap();
        c.add_line(&all(), "initramfs initrd.img followkernel")
            .unwrap();
        c.set(&filter("pi4"), "arm_boost", "1").unwrap();
        c.add_overlay(&filter("pi0"), "i2c-gpio", &[param("bus", "1")])
            .unwrap();
    }

    #[test]
    fn stock_files_round_trip_byte_for_byte() {
        for (release, text) in STOCK {
            assert_eq!(ConfigTxt::parse(text).render(), text, "{release}");
        }
    }

    #[test]
    fn odd_files_round_trip_byte_for_byte() {
        for text in [
            "",
            "\n",
            "gpu_mem=16",
            "a=1\r\n[pi4]\r\nb=2\r\n",
            "a=1\r\nb=2",
            "\n\n  # indented comment\n\tgpu_mem = 16  \n[pi4] trailing\n[broken\nx\n\n",
            "otg_mode=1 # Controller only\r\n\r\n",
            "mixed=1\r\nendings=2\nlone\rcr=3\n",
        ] {
            assert_eq!(ConfigTxt::parse(text).render(), text, "{text:?}");
        }
    }

    #[test]
    fn global_setting_goes_into_the_final_all_block() {
        let out = edited(BOOKWORM, |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(out, format!("{BOOKWORM}gpu_mem=16\n"));
        assert!(out.ends_with("[cm5]\ndtoverlay=dwc2,dr_mode=host\n\n[all]\ngpu_mem=16\n"));
    }

    #[test]
    fn global_setting_never_lands_in_a_trailing_model_filter() {
        let ends_in_cm5 = BOOKWORM.strip_suffix("[all]\n").unwrap();
        let out = edited(ends_in_cm5, |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(out, format!("{ends_in_cm5}[all]\ngpu_mem=16\n"));

        let ends_in_pi4 = "arm_boost=1\n[pi4]\narm_freq=900";
        let out = edited(ends_in_pi4, |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(
            out,
            "arm_boost=1\n[pi4]\narm_freq=900\n\n[all]\ngpu_mem=16\n"
        );
    }

    #[test]
    fn headerless_file_takes_global_edits_in_place() {
        let out = edited("dtparam=audio=on\n\n", |c| {
            c.set(&all(), "gpu_mem", "16").unwrap();
        });
        assert_eq!(out, "dtparam=audio=on\ngpu_mem=16\n\n");
        let out = edited("", |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(out, "gpu_mem=16\n");
        let out = edited("", |c| c.set(&filter("pi0"), "gpu_mem", "16").unwrap());
        assert_eq!(out, "[pi0]\ngpu_mem=16\n");
    }

    #[test]
    fn filter_then_global_edits_alternate_headers_and_stay_idempotent() {
        let plan = |c: &mut ConfigTxt| {
            c.add_overlay(&filter("pi4"), "dwc2", &[param("dr_mode", "peripheral")])
                .unwrap();
            c.set(&all(), "gpu_mem", "16").unwrap();
        };
        let once = edited(BOOKWORM, plan);
        assert_eq!(
            once,
            format!("{BOOKWORM}\n[pi4]\ndtoverlay=dwc2,dr_mode=peripheral\n\n[all]\ngpu_mem=16\n")
        );
        assert_eq!(edited(&once, plan), once);
    }

    #[test]
    fn a_filter_combined_with_another_is_not_that_filter() {
        let text = "[gpio4=1]\n[pi4]\nx=1\n";
        let out = edited(text, |c| c.set(&filter("pi4"), "x", "2").unwrap());
        assert_eq!(out, "[gpio4=1]\n[pi4]\nx=1\n\n[all]\n[pi4]\nx=2\n");
        // A same-type filter replaces the previous one, so no [all] is needed.
        let out = edited("[cm5]\ny=1\n", |c| c.set(&filter("pi4"), "x", "2").unwrap());
        assert_eq!(out, "[cm5]\ny=1\n\n[pi4]\nx=2\n");
        assert_eq!(ConfigTxt::parse(text).get(&filter("pi4"), "x"), None);
    }

    #[test]
    fn set_updates_the_last_line_and_drops_earlier_duplicates() {
        let text = "gpu_mem=64\n[pi4]\ngpu_mem=76\n[all]\ngpu_mem=128\n# end\n";
        let out = edited(text, |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(out, "[pi4]\ngpu_mem=76\n[all]\ngpu_mem=16\n# end\n");
        // Already right: the line keeps its own spelling.
        let text = "gpu_mem = 16\n";
        assert_eq!(
            edited(text, |c| c.set(&all(), "gpu_mem", "16").unwrap()),
            text
        );
    }

    #[test]
    fn unset_removes_only_the_chosen_section() {
        let text = "[cm4]\notg_mode=1\n[all]\notg_mode=1\n";
        let out = edited(text, |c| c.unset(&all(), "otg_mode").unwrap());
        assert_eq!(out, "[cm4]\notg_mode=1\n[all]\n");
        assert_eq!(edited(text, |c| c.unset(&all(), "absent").unwrap()), text);
        let out = edited(BOOKWORM, |c| c.unset(&filter("cm4"), "otg_mode").unwrap());
        assert_eq!(
            out,
            BOOKWORM.replace(
                "support is not required.\notg_mode=1\n",
                "support is not required.\n"
            )
        );
    }

    #[test]
    fn cluster_hat_overlay_is_added_once_and_rewritten_on_change() {
        let out = edited(BOOKWORM, |c| {
            c.add_overlay(&all(), "dwc2", &[param("dr_mode", "peripheral")])
                .unwrap();
        });
        assert_eq!(
            out,
            format!("{BOOKWORM}dtoverlay=dwc2,dr_mode=peripheral\n")
        );
        // The [cm5] host-mode line is another section and stays.
        assert!(out.contains("[cm5]\ndtoverlay=dwc2,dr_mode=host\n"));

        let controller = format!("{BOOKWORM}dtoverlay=dwc2,dr_mode=host\n");
        let node = edited(&controller, |c| {
            c.add_overlay(&all(), "dwc2", &[param("dr_mode", "peripheral")])
                .unwrap();
        });
        assert_eq!(node, out);
    }

    #[test]
    fn removing_an_overlay_takes_its_dtparam_lines_along() {
        let text = "dtparam=audio=on\ndtoverlay=dwc2\ndtparam=dr_mode=peripheral\n# keep\ndtoverlay=vc4-kms-v3d\ndtparam=cma-128\n";
        let out = edited(text, |c| c.remove_overlay(&all(), "dwc2").unwrap());
        assert_eq!(
            out,
            "dtparam=audio=on\n# keep\ndtoverlay=vc4-kms-v3d\ndtparam=cma-128\n"
        );
    }

    #[test]
    fn dtparam_is_found_inside_multi_parameter_lines() {
        let text = "dtparam=audio=on,i2c_arm=off,spi=on\ndtoverlay=vc4-kms-v3d\n";
        let out = edited(text, |c| c.set_dtparam(&all(), "i2c_arm", "on").unwrap());
        assert_eq!(
            out,
            "dtparam=audio=on,i2c_arm=on,spi=on\ndtoverlay=vc4-kms-v3d\n"
        );
        let out = edited(text, |c| c.remove_dtparam(&all(), "i2c_arm").unwrap());
        assert_eq!(out, "dtparam=audio=on,spi=on\ndtoverlay=vc4-kms-v3d\n");
        let out = edited(BULLSEYE, |c| c.set_dtparam(&all(), "audio", "off").unwrap());
        assert_eq!(
            out,
            BULLSEYE.replace("\ndtparam=audio=on\n", "\ndtparam=audio=off\n")
        );
        let dup = "dtparam=spi=on\ndtparam=audio=on,spi=off\n";
        let out = edited(dup, |c| c.set_dtparam(&all(), "spi", "on").unwrap());
        assert_eq!(out, "dtparam=audio=on,spi=on\n");
    }

    #[test]
    fn new_base_dtparam_is_shielded_from_an_open_overlay_scope() {
        // In stock bookworm the last dtoverlay= before the final [all] is [cm5]'s dwc2: a
        // bare dtparam= there would configure dwc2 on a CM5, not the base tree.
        let out = edited(BOOKWORM, |c| {
            c.set_dtparam(&all(), "i2c_arm", "on").unwrap()
        });
        assert_eq!(out, format!("{BOOKWORM}dtoverlay=\ndtparam=i2c_arm=on\n"));
        // An overlay's own dtparam= is not the base parameter of the same name.
        let text = "dtoverlay=foo\ndtparam=spi=on\n";
        let out = edited(text, |c| c.set_dtparam(&all(), "spi", "on").unwrap());
        assert_eq!(
            out,
            "dtoverlay=foo\ndtparam=spi=on\ndtoverlay=\ndtparam=spi=on\n"
        );
        // No overlay before the insertion point: no reset line.
        let out = edited("dtparam=audio=on\n", |c| {
            c.set_dtparam(&all(), "spi", "on").unwrap();
        });
        assert_eq!(out, "dtparam=audio=on\ndtparam=spi=on\n");
    }

    #[test]
    fn add_line_is_a_no_op_when_the_line_is_there() {
        let text = "[all]\ninclude extra.txt\n";
        assert_eq!(
            edited(text, |c| c.add_line(&all(), "include extra.txt").unwrap()),
            text
        );
        let out = edited(text, |c| {
            c.add_line(&filter("pi4"), "include extra.txt").unwrap()
        });
        assert_eq!(
            out,
            "[all]\ninclude extra.txt\n\n[pi4]\ninclude extra.txt\n"
        );
    }

    #[test]
    fn every_edit_twice_equals_once() {
        for (release, text) in STOCK {
            let once = edited(text, every_edit);
            assert_ne!(once, text, "{release}");
            assert_eq!(edited(&once, every_edit), once, "{release}");
        }
        let once = edited(BOOKWORM, every_edit);
        assert_eq!(
            once,
            format!(
                "{BOOKWORM}gpu_mem=16\nenable_uart=1\ndtoverlay=dwc2,dr_mode=peripheral\n\
                 dtoverlay=\ndtparam=i2c_arm=on\ninitramfs initrd.img followkernel\n\
                 \n[pi4]\narm_boost=1\n\n[pi0]\ndtoverlay=i2c-gpio,bus=1\n"
            )
        );
    }

    #[test]
    fn remove_after_add_restores_the_original() {
        let global = |c: &mut ConfigTxt| {
            c.set(&all(), "gpu_mem", "16").unwrap();
            c.add_overlay(&all(), "dwc2", &[param("dr_mode", "peripheral")])
                .unwrap();
            c.set_dtparam(&all(), "i2c_arm", "on").unwrap();
            c.set(&all(), "enable_uart", "1").unwrap();
        };
        for (release, text) in STOCK {
            let undo = |c: &mut ConfigTxt| {
                c.unset(&all(), "enable_uart").unwrap();
                c.remove_overlay(&all(), "dwc2").unwrap();
                c.remove_dtparam(&all(), "i2c_arm").unwrap();
                c.unset(&all(), "gpu_mem").unwrap();
            };
            assert_eq!(edited(&edited(text, global), undo), text, "{release}");
        }
        // Removing in the other order restores too.
        let added = edited(TRIXIE, global);
        let out = edited(&added, |c| {
            c.remove_dtparam(&all(), "i2c_arm").unwrap();
            c.remove_overlay(&all(), "dwc2").unwrap();
            c.unset(&all(), "gpu_mem").unwrap();
            c.unset(&all(), "enable_uart").unwrap();
        });
        assert_eq!(out, TRIXIE);
    }

    #[test]
    fn crlf_files_get_crlf_lines_and_a_missing_newline_is_supplied() {
        let out = edited("a=1\r\n[pi4]\r\nb=2", |c| {
            c.set(&all(), "gpu_mem", "16").unwrap()
        });
        assert_eq!(out, "a=1\r\n[pi4]\r\nb=2\r\n\r\n[all]\r\ngpu_mem=16\r\n");
        let out = edited("a=1", |c| c.set(&all(), "gpu_mem", "16").unwrap());
        assert_eq!(out, "a=1\ngpu_mem=16\n");
    }

    #[test]
    fn queries_see_sections_and_overlays() {
        let c = ConfigTxt::parse(TRIXIE);
        assert_eq!(c.get(&all(), "camera_auto_detect"), Some("1"));
        assert_eq!(c.get(&all(), "otg_mode"), None);
        assert_eq!(c.get(&filter("cm4"), "otg_mode"), Some("1"));
        assert_eq!(
            c.overlays(&all()),
            vec![("vc4-kms-v3d".to_string(), vec![])]
        );
        assert_eq!(
            c.overlays(&filter("cm5")),
            vec![("dwc2".to_string(), vec![param("dr_mode", "host")])]
        );
        assert_eq!(
            c.overlays(&filter("pi5")),
            vec![("nospi10".to_string(), vec![])]
        );
        let entries = c.all_entries();
        assert_eq!(entries.len(), 12);
        assert_eq!(
            entries.last(),
            Some(&Entry {
                section: "pi5".to_string(),
                key: "dtoverlay".to_string(),
                value: "nospi10".to_string(),
            })
        );
        let bullseye = ConfigTxt::parse(BULLSEYE);
        assert_eq!(bullseye.get(&filter("pi4"), "arm_boost"), Some("1"));
        assert_eq!(bullseye.get(&all(), "arm_boost"), None);
    }

    /// Files glued together from config.txt fragments by a fixed pseudo-random sequence,
    /// so the properties below meet odd structure (nested filters, open overlay scopes,
    /// CRLF, no final newline) without a fuzzing dependency.
    fn generated_files() -> impl Iterator<Item = String> {
        const PIECES: [&str; 16] = [
            "[all]",
            "[pi4]",
            "[cm5]",
            "[gpio4=1]",
            "[none]",
            "gpu_mem=64",
            "gpu_mem=16",
            "dtoverlay=dwc2",
            "dtoverlay=dwc2,dr_mode=host",
            "dtoverlay=",
            "dtparam=i2c_arm=off,spi=on",
            "dtparam=audio=on",
            "# comment",
            "",
            "  enable_uart = 0 ",
            "initramfs initrd.img followkernel",
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            usize::try_from(seed >> 33).unwrap() % n
        };
        (0..500).map(move |_| {
            let eol = if next(4) == 0 { "\r\n" } else { "\n" };
            let mut text: String = (0..next(12))
                .map(|_| format!("{}{eol}", PIECES[next(PIECES.len())]))
                .collect();
            if next(3) == 0 {
                text.truncate(text.trim_end_matches(['\r', '\n']).len());
            }
            text
        })
    }

    #[test]
    fn generated_files_round_trip_and_edits_are_idempotent() {
        for text in generated_files() {
            assert_eq!(ConfigTxt::parse(&text).render(), text);
            let once = edited(&text, every_edit);
            assert_eq!(edited(&once, every_edit), once, "{text:?}");
            let c = ConfigTxt::parse(&once);
            assert_eq!(c.get(&all(), "gpu_mem"), Some("16"), "{once:?}");
            assert_eq!(c.get(&filter("pi4"), "arm_boost"), Some("1"), "{once:?}");
            assert!(
                c.overlays(&all())
                    .contains(&("dwc2".to_string(), vec![param("dr_mode", "peripheral")]))
            );
        }
    }

    #[test]
    fn check_overlay_names_the_missing_overlay_and_suggests_one() {
        let have: Vec<String> = ["dwc2", "vc4-kms-v3d", "i2c-gpio"]
            .map(String::from)
            .to_vec();
        assert!(check_overlay("dwc2", &have).is_ok());
        let err = message(check_overlay("dwc", &have));
        assert_eq!(
            err,
            "config.txt: overlay 'dwc' is not in the image's overlays/ directory\n  \
             hint: did you mean 'dwc2'?"
        );
        let err = message(check_overlay("zzzzzz", &have));
        assert!(
            err.contains("'zzzzzz'") && !err.contains("did you mean"),
            "{err}"
        );
    }

    #[test]
    fn bad_input_is_refused_and_named() {
        let mut c = ConfigTxt::parse(BOOKWORM);
        let err = message(c.set(&all(), "gpu_mem=16", "16"));
        assert!(
            err.contains("key 'gpu_mem=16'") && err.contains("'='"),
            "{err}"
        );
        let err = message(c.set(&all(), "gpu mem", "16"));
        assert!(
            err.contains("'gpu mem'") && err.contains("a space"),
            "{err}"
        );
        let err = message(c.set(&all(), "", "16"));
        assert!(err.contains("empty key"), "{err}");
        let err = message(c.set(&all(), "[pi4", "16"));
        assert!(err.contains("'['"), "{err}");
        let err = message(c.set(&all(), "gpu_mem", "16\n[pi4]"));
        assert!(
            err.contains("line break") && err.contains("gpu_mem"),
            "{err}"
        );
        let err = message(c.set(&all(), "dtoverlay", "dwc2"));
        assert!(err.contains("'dtoverlay'"), "{err}");
        let err = message(c.add_overlay(&all(), "dwc 2", &[]));
        assert!(err.contains("overlay name 'dwc 2'"), "{err}");
        let err = message(c.add_overlay(&all(), "dwc2", &[param("dr_mode", "host,x")]));
        assert!(err.contains("'host,x'"), "{err}");
        let err = message(c.set_dtparam(&all(), "i2c_arm=on", "on"));
        assert!(err.contains("'i2c_arm=on'"), "{err}");
        let err = message(c.add_line(&all(), "[pi4]"));
        assert!(err.contains("'[pi4]'"), "{err}");
        let err = message(c.add_line(&all(), "a=1\r"));
        assert!(err.contains("carriage return"), "{err}");
        let long = "x".repeat(95);
        let err = message(c.set(&all(), "key", &long));
        assert!(err.contains("99 characters"), "{err}");
        assert_eq!(c.render(), BOOKWORM, "failed edits change nothing");

        for bad in ["", "pi4]", "[pi4]", "pi\n4"] {
            let err = message(Section::new(bad));
            assert!(err.starts_with("config.txt: "), "{err}");
        }
        assert_eq!(Section::new("all").unwrap(), Section::ALL);
        assert_eq!(Section::new("pi4").unwrap().filter(), Some("pi4"));
        assert_eq!(Section::new("gpio4=1").unwrap().to_string(), "gpio4=1");
    }
}
