//! `cmdline.txt`: the kernel command line, one line of space-separated parameters.
//!
//! The file must stay a single line (the firmware reads only the first one, so anything on
//! a second line is silently lost), must not contain CR, and Raspberry Pi OS ships it with
//! one trailing LF. The model is the ordered list of tokens; rendering joins them with
//! single spaces and ends with `\n`, which reproduces every stock file byte for byte.
//!
//! Parameter names compare the way the kernel compares them: `-` and `_` are the same
//! character in a name (`modules-load` is `modules_load`), the value part is compared
//! exactly. When an edit replaces a parameter it keeps the spelling already in the file,
//! so a re-bake does not churn `modules-load` into `modules_load`.

use crate::error::{Error, Result};

/// A parsed `cmdline.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    tokens: Vec<String>,
}

impl Cmdline {
    /// Parses the file's text.
    ///
    /// CR characters and runs of blanks are normalised away (a file saved by a Windows
    /// editor still boots, and `render` repairs it): CR counts as a blank, so a stray one
    /// inside the line separates parameters rather than gluing two together. A second non-empty line is refused:
    /// the firmware would ignore it, so whatever the user meant by it would silently not
    /// happen. So is a `"` that is never closed: the kernel would take the rest of the
    /// line, and every parameter an edit appends, as one value.
    pub fn parse(text: &str) -> Result<Cmdline> {
        let mut tokens = Vec::new();
        let mut first_line = None;
        for (number, line) in (1..).zip(text.split('\n')) {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(first) = first_line {
                return Err(Error::invalid(format!(
                    "cmdline.txt must be one line, but line {number} holds parameters too \
                     (the first ones are on line {first})"
                ))
                .with_hint("join all kernel parameters into one line, separated by spaces"));
            }
            // The kernel reads an unclosed `"` to the end of the line, so every parameter
            // pibake appended would silently become part of that one value.
            if line.matches('"').count() % 2 == 1 {
                return Err(Error::invalid(format!(
                    "cmdline.txt line {number} has a `\"` that is never closed: the kernel \
                     would read everything after it as one parameter's value"
                ))
                .with_hint("close the quoted value, or remove the stray `\"`"));
            }
            first_line = Some(number);
            tokens = split_tokens(line);
        }
        Ok(Cmdline { tokens })
    }

    /// The file's new text: one line, single spaces, final LF, never a CR.
    pub fn render(&self) -> String {
        let mut out = self.tokens.join(" ");
        out.push('\n');
        out
    }

    /// The parameters, in order, as written.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The value of the last `key` parameter (the kernel lets the last one win):
    /// `None` if absent, `Some(None)` for a bare flag such as `quiet`.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.tokens
            .iter()
            .rev()
            .find(|t| same_name(name_of(t), key))
            .map(|t| t.split_once('=').map(|(_, v)| v))
    }

    /// Makes `key=value` the one and only `key` parameter.
    ///
    /// The first occurrence is replaced in place (its position can matter to whoever reads
    /// the line, and keeping it avoids churn); later duplicates are removed so the file is
    /// unambiguous. Absent keys are appended. Not for repeatable parameters like
    /// `console=`: use [`Cmdline::add_flag`] for those.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        check_name(key)?;
        check_token("value", value)?;
        match self.position(key) {
            Some(i) => {
                let written = name_of(&self.tokens[i]).to_string();
                self.tokens[i] = format!("{written}={value}");
                self.remove_after(i, key);
            }
            None => self.tokens.push(format!("{key}={value}")),
        }
        Ok(())
    }

    /// Appends `word` unless that exact token is already present.
    ///
    /// Meant for bare flags (`quiet`, `splash`) and for parameters that may legitimately
    /// repeat with different values (`console=ttyGS0` next to `console=tty1`).
    pub fn add_flag(&mut self, word: &str) -> Result<()> {
        check_token("parameter", word)?;
        if !self.tokens.iter().any(|t| t == word) {
            self.tokens.push(word.to_string());
        }
        Ok(())
    }

    /// Removes every `key` parameter, flag or `key=value`. Absent keys are fine.
    pub fn remove(&mut self, key: &str) {
        self.tokens.retain(|t| !same_name(name_of(t), key));
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.tokens.iter().position(|t| same_name(name_of(t), key))
    }

    /// Drops the occurrences of `key` after index `i`.
    fn remove_after(&mut self, i: usize, key: &str) {
        let mut index = 0;
        self.tokens.retain(|t| {
            let keep = index <= i || !same_name(name_of(t), key);
            index += 1;
            keep
        });
    }
}

/// Splits a line on blanks, keeping double-quoted stretches (the kernel's own quoting,
/// e.g. `dyndbg="file x +p"`) inside one token.
fn split_tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The parameter name of a token: everything before the first `=`.
fn name_of(token: &str) -> &str {
    token.split_once('=').map_or(token, |(name, _)| name)
}

/// The kernel's `parameq`: `-` and `_` are interchangeable in names.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || matches!((x, y), (b'-', b'_') | (b'_', b'-')))
}

/// Rejects text that would break the single line or be split into several parameters.
fn check_token(what: &str, text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::invalid(format!("cmdline.txt: empty {what}")));
    }
    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || *c == '"') {
        return Err(Error::invalid(format!(
            "cmdline.txt: {what} '{text}' contains {}",
            describe(bad)
        ))
        .with_hint(
            "kernel parameters are separated by spaces; pass one parameter without quotes",
        ));
    }
    Ok(())
}

fn check_name(key: &str) -> Result<()> {
    check_token("parameter name", key)?;
    if key.contains('=') {
        return Err(
            Error::invalid(format!("cmdline.txt: parameter name '{key}' contains '='"))
                .with_hint("give the name and the value separately"),
        );
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
        '"' => "a double quote".to_string(),
        other => format!("the blank character U+{:04X}", u32::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Stock files of each release (pi-gen stage1/00-boot-files/files/cmdline.txt), with the
    // PARTUUID placeholder filled in by a made-up disk identifier as export-image does.
    const STOCK: [(&str, &str); 3] = [
        (
            "bullseye",
            include_str!("../../testdata/raspios/bullseye/cmdline.txt"),
        ),
        (
            "bookworm",
            include_str!("../../testdata/raspios/bookworm/cmdline.txt"),
        ),
        (
            "trixie",
            include_str!("../../testdata/raspios/trixie/cmdline.txt"),
        ),
    ];

    fn parse(text: &str) -> Cmdline {
        Cmdline::parse(text).unwrap()
    }

    fn message(result: Result<impl std::fmt::Debug>) -> String {
        result.unwrap_err().to_string()
    }

    /// The Cluster HAT node edits plus the k3s/Docker memory cgroup switches.
    fn cluster_edits(c: &mut Cmdline) {
        c.set("modules-load", "dwc2,g_ether").unwrap();
        c.set("cgroup_memory", "1").unwrap();
        c.set("cgroup_enable", "memory").unwrap();
    }

    #[test]
    fn an_unclosed_quote_is_refused() {
        let ok = Cmdline::parse("quiet dyndbg=\"file x.c +p\" rootwait\n").unwrap();
        assert_eq!(ok.tokens(), ["quiet", "dyndbg=\"file x.c +p\"", "rootwait"]);
        let err = Cmdline::parse("quiet dyndbg=\"file x.c +p rootwait\n").unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    #[test]
    fn stock_files_round_trip_byte_for_byte() {
        for (release, text) in STOCK {
            assert_eq!(parse(text).render(), text, "{release}");
        }
    }

    #[test]
    fn cluster_edits_append_after_rootwait_and_are_idempotent() {
        let mut c = parse(STOCK[2].1);
        cluster_edits(&mut c);
        let once = c.render();
        assert_eq!(
            once,
            "console=serial0,115200 console=tty1 root=PARTUUID=5e3da0b5-02 rootfstype=ext4 \
             fsck.repair=yes rootwait resize modules-load=dwc2,g_ether cgroup_memory=1 \
             cgroup_enable=memory\n"
        );
        cluster_edits(&mut c);
        assert_eq!(c.render(), once);
        for (release, text) in STOCK {
            let mut c = parse(text);
            cluster_edits(&mut c);
            let once = c.render();
            cluster_edits(&mut c);
            assert_eq!(c.render(), once, "{release}");
            assert!(once.contains("rootwait"), "{release}");
            assert!(
                once.find("rootwait") < once.find("modules-load"),
                "{release}"
            );
        }
    }

    #[test]
    fn remove_after_add_restores_the_original() {
        for (release, text) in STOCK {
            let mut c = parse(text);
            cluster_edits(&mut c);
            c.add_flag("splash").unwrap();
            c.remove("modules-load");
            c.remove("cgroup_memory");
            c.remove("cgroup-enable");
            c.remove("splash");
            assert_eq!(c.render(), text, "{release}");
        }
    }

    #[test]
    fn set_replaces_in_place_and_drops_later_duplicates() {
        let mut c = parse("a=1 root=/dev/x b a=2 quiet\n");
        c.set("a", "3").unwrap();
        assert_eq!(c.render(), "a=3 root=/dev/x b quiet\n");
        c.set("root", "PARTUUID=1234-02").unwrap();
        assert_eq!(c.render(), "a=3 root=PARTUUID=1234-02 b quiet\n");
        assert_eq!(c.get("root"), Some(Some("PARTUUID=1234-02")));
        assert_eq!(c.get("quiet"), Some(None));
        assert_eq!(c.get("splash"), None);
    }

    #[test]
    fn dash_and_underscore_match_but_the_file_spelling_is_kept() {
        let mut c = parse("rootwait modules_load=dwc2\n");
        c.set("modules-load", "dwc2,g_ether").unwrap();
        assert_eq!(c.render(), "rootwait modules_load=dwc2,g_ether\n");
        assert_eq!(c.get("modules-load"), Some(Some("dwc2,g_ether")));
        // Values are not names: an underscore there is a different value.
        c.set("modules_load", "dwc_2").unwrap();
        assert_eq!(c.get("modules-load"), Some(Some("dwc_2")));
        c.remove("modules-load");
        assert_eq!(c.render(), "rootwait\n");
    }

    #[test]
    fn repeatable_parameters_are_added_as_exact_tokens() {
        let mut c = parse(STOCK[1].1);
        c.add_flag("console=ttyGS0").unwrap();
        c.add_flag("console=ttyGS0").unwrap();
        c.add_flag("quiet").unwrap();
        assert_eq!(
            c.tokens()
                .iter()
                .filter(|t| t.starts_with("console="))
                .count(),
            3
        );
        assert_eq!(c.tokens().iter().filter(|t| *t == "quiet").count(), 1);
    }

    #[test]
    fn cr_blank_runs_and_a_missing_newline_are_normalised() {
        let c = parse("console=tty1  root=/dev/mmcblk0p2\trootwait\r\n");
        assert_eq!(c.render(), "console=tty1 root=/dev/mmcblk0p2 rootwait\n");
        assert_eq!(parse("rootwait").render(), "rootwait\n");
        assert_eq!(parse("\n\nrootwait\n\n").render(), "rootwait\n");
        assert_eq!(parse("").render(), "\n");
        assert_eq!(parse("rootwait\rquiet\n").render(), "rootwait quiet\n");
    }

    #[test]
    fn quoted_values_stay_one_token() {
        let text = "rootwait dyndbg=\"file drivers/usb/* +p\" quiet\n";
        let c = parse(text);
        assert_eq!(c.tokens().len(), 3);
        assert_eq!(c.render(), text);
    }

    #[test]
    fn rendering_is_a_fixed_point_and_edits_are_idempotent_on_odd_lines() {
        const PIECES: [&str; 10] = [
            "quiet",
            "modules_load=g_ether",
            "modules-load=",
            " ",
            "\t",
            "\r",
            "a=1",
            "a=2",
            "dyndbg=\"x y\"",
            "cgroup-enable=cpu",
        ];
        let mut seed: u64 = 7;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            usize::try_from(seed >> 33).unwrap() % n
        };
        for _ in 0..300 {
            let text: String = (0..next(10))
                .map(|_| format!("{} ", PIECES[next(PIECES.len())]))
                .collect();
            let c = parse(&text);
            assert_eq!(parse(&c.render()), c, "{text:?}");
            let mut once = c.clone();
            cluster_edits(&mut once);
            let mut twice = once.clone();
            cluster_edits(&mut twice);
            assert_eq!(twice, once, "{text:?}");
            let modules = once.get("modules_load").flatten().unwrap_or_default();
            assert!(modules.split(',').any(|x| x == "dwc2"), "{text:?}");
            assert!(modules.split(',').any(|x| x == "g_ether"), "{text:?}");
            let count = once
                .tokens()
                .iter()
                .filter(|t| t.starts_with("modules"))
                .count();
            assert_eq!(count, 1, "{text:?}");
            assert_eq!(once.get("cgroup_enable"), Some(Some("memory")));
        }
    }

    #[test]
    fn a_second_line_is_refused_with_its_number() {
        let err = message(Cmdline::parse("console=tty1 rootwait\n\nquiet\n"));
        assert!(err.contains("must be one line"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = message(Cmdline::parse("rootwait\r\nquiet\r\n"));
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn bad_tokens_are_refused_and_named() {
        let mut c = parse(STOCK[0].1);
        let err = message(c.set("cgroup enable", "memory"));
        assert!(
            err.contains("'cgroup enable'") && err.contains("a space"),
            "{err}"
        );
        let err = message(c.set("a=b", "c"));
        assert!(err.contains("'a=b'") && err.contains("'='"), "{err}");
        let err = message(c.set("init", "/bin/sh\r"));
        assert!(err.contains("carriage return"), "{err}");
        let err = message(c.add_flag("\"quiet\""));
        assert!(err.contains("double quote"), "{err}");
        let err = message(c.add_flag(""));
        assert!(err.contains("empty"), "{err}");
        assert_eq!(c.render(), STOCK[0].1, "failed edits change nothing");
    }
}
