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
//! first header is unfiltered. A line therefore belongs to [`Section::All`] only when no
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

/// A conditional section of config.txt, named by what goes inside the brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Section {
    /// No filter in force: `[all]`, or the text before the first header.
    All,
    /// A filter such as `pi4`, `cm5`, `gpio4=1` or `0x12345678`.
    Filter(String),
}

impl Section {
    /// The section for `name` (`"all"` or a filter), refusing names that cannot be written
    /// as one header line.
    pub fn new(name: &str) -> Result<Section> {
        if name == "all" {
            return Ok(Section::All);
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
        Ok(Section::Filter(name.to_string()))
    }

    fn header(&self) -> String {
        format!("[{self}]")
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::All => f.write_str("all"),
            Section::Filter(name) => f.write_str(name),
        }
    }
}

/// One `key=value` line, for an inspect summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The header the line sits under (`all` before the first header).
    pub section: String,
    pub key: String,
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
    match section {
        Section::All => filters.is_empty(),
        Section::Filter(name) => {
            filters.len() == 1 && filters.get(&filter_type(name)) == Some(name)
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

    /// The value of the last `key=` line in `section` (the one the firmware uses there).
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
            self.replace(last, dtparam_text(&items));
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
            .filter_map(|l| match kind(&l.text) {
                Kind::Setting {
                    key: "dtoverlay",
                    value,
                } => Some(!value.is_empty()),
                _ => None,
            })
            .last()
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
        if let Section::Filter(name) = section {
            enter(&mut filters, name);
            if !is_section(&filters, section) {
                headers.push(Section::All.header());
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
fn parse_overlay(value: &str) -> (String, Vec<OverlayParam>) {
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
