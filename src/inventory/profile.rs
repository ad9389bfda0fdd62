//! Role profiles, with inheritance (`extends:`).
//!
//! A profile is looked up in the cluster's own `profiles/` first, then among the profiles
//! shipped inside pibake. Each file in an `extends` chain is checked on its own (so errors
//! point into the right file); then the chain is merged, base first: maps merge key by
//! key, lists append (without repeats), and single values are replaced.

use std::path::Path;

use serde_json::Value;

use super::grammar::{MPI_SLOTS_VAR, NetworkStack, Timezone, check_install, mpi_slots};
use super::schema::{CmdlineDef, ConfigDef, InterfaceDef, ProfileFile};
use super::shipped;
use super::source::{Pos, Source};
use crate::error::{Error, Result};
use crate::kinds::Part;
use crate::kinds::labels::{LABELS_VAR, Labels};

/// A merged profile and where it came from.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) name: String,
    /// The files of the chain, the named profile first.
    pub sources: Vec<Source>,
    /// The chain merged into one profile (base first, `extends` removed): what the
    /// role's plans are made from.
    pub def: ProfileFile,
    pub(crate) warnings: Vec<String>,
}

const MODELS: &[&str] = &[
    "pi0", "pi0w", "pi02", "pi1", "pi2", "pi3", "pi3+", "pi4", "pi400", "pi5", "pi500", "cm3",
    "cm4", "cm5",
];

impl Profile {
    pub(crate) fn load(cluster_dir: &Path, name: &str) -> Result<Profile> {
        let mut sources = Vec::new();
        let mut values = Vec::new();
        let mut warnings = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next.take() {
            // Errors about an `extends` target point at the line that names it.
            let at_extends = |e: Error, sources: &[Source]| match sources.last() {
                Some(child) => e.place(|what| child.error_at("extends", what)),
                None => e,
            };
            if sources
                .iter()
                .any(|s: &Source| s.path.file_stem().is_some_and(|f| f == n.as_str()))
            {
                let e = Error::unplaced(format!(
                    "profile `{name}`: `extends` goes round in a circle through `{n}`"
                ));
                return Err(at_extends(e, &sources));
            }
            let source = find(cluster_dir, &n).map_err(|e| at_extends(e, &sources))?;
            let file: ProfileFile = source.parse()?;
            check(&source, &file, &mut warnings)?;
            let value: Value = serde_norway::from_str(&source.text)
                .map_err(|e| source.error(Default::default(), &e.to_string()))?;
            wifi_is_text(&source, &value)?;
            next = file.extends.clone();
            sources.push(source);
            values.push(value);
        }
        let mut merged = Value::Object(Default::default());
        for v in values.into_iter().rev() {
            merge(&mut merged, v);
        }
        if let Value::Object(m) = &mut merged {
            m.remove("extends");
        }
        let def: ProfileFile = serde_json::from_value(merged).map_err(|e| {
            Error::invalid(format!(
                "profile `{name}`: the merged chain does not fit together: {e}"
            ))
        })?;
        Ok(Profile {
            name: name.to_string(),
            sources,
            def,
            warnings,
        })
    }

    /// The role's part in the one kind of cluster its profile names (checked when the
    /// cluster loads: a profile names at most one).
    pub fn part(&self) -> Option<Part> {
        let d = &self.def;
        (d.swarm.map(Part::Swarm).into_iter())
            .chain(d.k3s.map(Part::K3s))
            .chain(d.slurm.map(Part::Slurm))
            .next()
    }

    /// The keys of the kinds the profile names (`swarm`, `k3s`, `slurm`): more than one
    /// is refused.
    pub fn kinds(&self) -> Vec<&'static str> {
        let d = &self.def;
        [
            d.swarm.map(|_| "swarm"),
            d.k3s.map(|_| "k3s"),
            d.slurm.map(|_| "slurm"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Networks this role has static addresses on, in interface order.
    pub fn networks(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .def
            .interfaces
            .values()
            .filter_map(|i| i.network.clone())
            .collect();
        v.dedup();
        v
    }

    /// An error at the interface that puts this role on `network`, in whichever file of
    /// the chain sets it.
    pub fn interface_error(&self, network: &str, what: &str) -> Error {
        let iface = self
            .def
            .interfaces
            .iter()
            .find(|(_, i)| i.network.as_deref() == Some(network))
            .map(|(n, _)| n.to_string())
            .unwrap_or_default();
        let key = format!("interfaces.{iface}.network");
        let source = self
            .sources
            .iter()
            .find(|s| s.has(&key))
            .unwrap_or(&self.sources[0]);
        source.error_at(&key, what)
    }

    /// An error at one entry of a merged list (`debs`, `files`), in whichever file of
    /// the chain lists it (lists append down the chain, so the merged index is no
    /// position): the first entry `is` accepts, else the list's key in the first file.
    pub fn entry_error(&self, list: &str, is: impl Fn(&Value) -> bool, what: &str) -> Error {
        for source in &self.sources {
            let Ok(value) = serde_norway::from_str::<Value>(&source.text) else {
                continue;
            };
            if let Some(i) = value[list].as_array().and_then(|a| a.iter().position(&is)) {
                return source.error_at(&format!("{list}.{i}"), what);
            }
        }
        self.source().error_at(list, what)
    }

    /// The first file of the chain that defines the profile's interfaces etc.
    pub fn source(&self) -> &Source {
        &self.sources[0]
    }
}

fn find(cluster_dir: &Path, name: &str) -> Result<Source> {
    let local = cluster_dir.join("profiles").join(format!("{name}.yaml"));
    if local.exists() {
        return Source::read(&local);
    }
    if let Some(text) = shipped::profile(name) {
        return Source::from_text(
            Path::new(&format!("(shipped) profiles/{name}.yaml")),
            text.to_string(),
        );
    }
    let mut known: Vec<String> = shipped::profile_names().map(str::to_string).collect();
    if let Ok(rd) = std::fs::read_dir(cluster_dir.join("profiles")) {
        known.extend(rd.filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string)));
    }
    let e = Error::unplaced(format!(
        "no profile `{name}` in {} or among the shipped ones",
        cluster_dir.join("profiles").display()
    ));
    Err(match crate::bootcfg::did_you_mean(name, &known) {
        Some(s) => e.with_hint(format!("did you mean `{s}`?")),
        None => e.with_hint(format!("profiles known: {}", known.join(", "))),
    })
}

/// Applies a profile's config.txt edits to an empty config.txt with the writer that
/// applies them at build time, so every value (each `set:`, overlay, dtparam, line and
/// section name) meets the same grammar where it was written, not at build time and
/// not field by field. Only whether an overlay exists waits for the image.
fn check_config(
    source: &Source,
    c: &ConfigDef,
    at: &str,
    section: &crate::bootcfg::Section,
) -> Result<()> {
    use crate::bootcfg::{ConfigTxt, parse_overlay};
    let mut config = ConfigTxt::parse("");
    let place = |key: String| move |e: Error| e.relocate(|what| source.error_at(&key, what));
    for (k, v) in &c.set {
        config
            .set(section, k, v)
            .map_err(place(format!("{at}.set.{k}")))?;
    }
    for (i, o) in c.overlays.iter().enumerate() {
        let (name, params) = parse_overlay(o);
        let key = format!("{at}.overlays.{i}");
        if name.is_empty() {
            return Err(source.error_at(
                &key,
                &format!("overlay `{o}` must be `name` or `name,param=value`"),
            ));
        }
        config
            .add_overlay(section, &name, &params)
            .map_err(place(key))?;
    }
    for (i, d) in c.dtparams.iter().enumerate() {
        let (name, value) = d.split_once('=').unwrap_or((d, "on"));
        config
            .set_dtparam(section, name, value)
            .map_err(place(format!("{at}.dtparams.{i}")))?;
    }
    for (i, l) in c.lines.iter().enumerate() {
        config
            .add_line(section, l)
            .map_err(place(format!("{at}.lines.{i}")))?;
    }
    for (name, sub) in &c.sections {
        let key = format!("{at}.sections.{name}");
        let inner = crate::bootcfg::Section::new(name).map_err(place(key.clone()))?;
        check_config(source, sub, &key, &inner)?;
    }
    Ok(())
}

/// The same for cmdline.txt: each word added or removed, through the writer's checks.
fn check_cmdline(source: &Source, c: &CmdlineDef) -> Result<()> {
    let mut cmdline = crate::bootcfg::Cmdline::parse("console=tty1 root=/dev/mmcblk0p2")
        .expect("a stock command line parses");
    let one_word = |key: String, t: &str| match t.is_empty() || t.contains(char::is_whitespace) {
        true => Err(source.error_at(&key, &format!("cmdline parameter `{t}` must be one word"))),
        false => Ok(key),
    };
    for (i, t) in c.add.iter().enumerate() {
        let key = one_word(format!("cmdline.add.{i}"), t)?;
        match t.split_once('=') {
            Some((k, v)) => cmdline.set(k, v),
            None => cmdline.add_flag(t),
        }
        .map_err(|e| e.relocate(|what| source.error_at(&key, what)))?;
    }
    for (i, t) in c.remove.iter().enumerate() {
        one_word(format!("cmdline.remove.{i}"), t)?;
    }
    Ok(())
}

/// Checks one file of a chain, with positions in that file.
fn check(source: &Source, p: &ProfileFile, warnings: &mut Vec<String>) -> Result<()> {
    if let Some(v) = p.vars.get(MPI_SLOTS_VAR) {
        mpi_slots(v).map_err(|why| source.error_at(&format!("vars.{MPI_SLOTS_VAR}"), &why))?;
    }
    if let Some(v) = p.vars.get(LABELS_VAR) {
        Labels::parse(v).map_err(|why| source.error_at(&format!("vars.{LABELS_VAR}"), &why))?;
    }
    if let Some(s) = &p.network_stack
        && let Err(why) = NetworkStack::parse_choice(s)
    {
        return Err(source.error_at("network_stack", &why));
    }
    if let Some(m) = &p.model
        && !MODELS.contains(&m.as_str())
    {
        return Err(source.error_at(
            "model",
            &format!("unknown model `{m}`; one of: {}", MODELS.join(", ")),
        ));
    }
    if let Some(g) = p.gpu_mem {
        if !(16..=944).contains(&g) {
            return Err(source.error_at(
                "gpu_mem",
                &format!("gpu_mem {g} is out of range: 16 to 944 MiB"),
            ));
        }
        match p.model.as_deref() {
            Some("pi5" | "pi500" | "cm5") => warnings.push(format!(
                "{}: gpu_mem has no effect on a Raspberry Pi 5",
                source.path.display()
            )),
            Some("pi0" | "pi0w" | "pi02" | "pi1" | "cm3" | "pi3" | "pi3+") if g > 256 => warnings
                .push(format!(
                    "{}: gpu_mem {g} leaves little memory on a 512 MiB/1 GiB board",
                    source.path.display()
                )),
            _ => {}
        }
    }
    // Interface names, SSIDs, passphrases and countries were parsed into their types
    // (`grammar::IfaceName`, `wifi`) as the file was read, at their own positions.
    for (name, i) in &p.interfaces {
        let at = format!("interfaces.{name}");
        check_interface(source, &at, name.as_str(), i)?;
    }
    check_config(source, &p.config, "config", &crate::bootcfg::Section::ALL)?;
    check_cmdline(source, &p.cmdline)?;
    check_units(source, p)?;
    // Each .deb lands in one directory of the image, by its file name.
    for (i, d) in p.debs.iter().enumerate() {
        if p.debs[..i].iter().any(|e| e.file_name() == d.file_name()) {
            return Err(source.error_at(
                &format!("debs.{i}"),
                &format!(
                    "a second .deb named `{}`: the image keeps them in one directory, by file name",
                    d.file_name()
                ),
            ));
        }
    }
    // Without these the kernel finds no root, or the release's first boot (resize, new
    // disk identifier) never runs.
    for (i, r) in p.cmdline.remove.iter().enumerate() {
        let key = r.split('=').next().unwrap_or(r);
        if ["root", "rootfstype", "init"].contains(&key) && !p.cmdline.allow_unbootable {
            return Err(source
                .error_at(
                    &format!("cmdline.remove.{i}"),
                    &format!("removing `{key}=` from cmdline.txt makes an image that cannot boot (or never runs its first boot)"),
                )
                .with_hint("replace it with `cmdline: { add: [...] }` instead, or say `allow_unbootable: true` if that is the point"));
        }
    }
    // Overlay names are directories under `overlays/`, never a path out of it.
    for (i, name) in p.overlays.iter().enumerate() {
        let ok = !name.is_empty()
            && name.split('/').all(|c| {
                !c.is_empty()
                    && c != "."
                    && c != ".."
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
            });
        if !ok {
            return Err(source.error_at(
                &format!("overlays.{i}"),
                &format!("`{name}` is not an overlay name: overlays are directories under `overlays/` beside the cluster file"),
            ));
        }
    }
    for (key, list) in [
        ("packages", &p.packages),
        ("packages_online", &p.packages_online),
    ] {
        for (i, name) in list.iter().enumerate() {
            if let Err(e) = name.parse::<pibake_apt::relation::PackageRequest>() {
                return Err(source.error_at(&format!("{key}.{i}"), &e.to_string()));
            }
        }
    }
    if let Some(tz) = &p.timezone {
        Timezone::parse(tz).map_err(|e| source.error_at("timezone", &e))?;
    }
    // Both land in files of `KEY=value` lines (the keyboard one quoted): one word each.
    let word = |v: &str, extra: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if let Some(l) = p.locale.as_deref().filter(|l| !word(l, "_.@-")) {
        return Err(source.error_at(
            "locale",
            &format!("`{l}` is not a locale name like en_GB.UTF-8"),
        ));
    }
    if let Some(k) = p.keyboard.as_deref().filter(|k| !word(k, "_,()+-")) {
        return Err(source.error_at(
            "keyboard",
            &format!("`{k}` is not a keyboard layout like gb or us"),
        ));
    }
    for (i, snippet) in p.firstboot.iter().enumerate() {
        if let Some(why) = shell_syntax_error(snippet) {
            return Err(source
                .error_at(
                    &format!("firstboot.{i}"),
                    &format!("this first-boot step is not valid sh: {why}"),
                )
                .with_hint("each entry is one shell step, checked with `sh -n`; fix its quoting"));
        }
    }
    Ok(())
}

/// What `sh -n` says about a first-boot step, when it finds fault; `None` when it
/// accepts the text or when the build host has no `/bin/sh` to ask (the step then runs
/// unchecked, and a failure is logged on the node and retried on the next boot).
fn shell_syntax_error(snippet: &str) -> Option<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("/bin/sh")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    // A write error means sh ended early; its status below tells what it thought.
    let _ = child.stdin.take()?.write_all(snippet.as_bytes());
    let out = child.wait_with_output().ok()?;
    if out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Some(text.trim().replace('\n', "; "))
}

fn check_interface(source: &Source, at: &str, name: &str, i: &InterfaceDef) -> Result<()> {
    if i.network.is_none() && !i.dhcp {
        return Err(source.error_at(
            at,
            &format!(
                "{name}: give `network: NAME` (static), `dhcp: true`, or both (an address \
                 on the network that the cluster's DHCP server reserves)"
            ),
        ));
    }
    let wifi = i.ssid.is_some() || i.psk.is_some();
    if wifi && (i.ssid.is_none() || i.country.is_none()) {
        return Err(source.error_at(
            at,
            &format!("{name}: Wi-Fi needs `ssid` and `country` (and `psk` unless open)"),
        ));
    }
    Ok(())
}

/// YAML reads an unquoted `12345678` as a number and `yes` as a boolean, and the merged
/// chain would then not fit the text an SSID, passphrase or country is: refused at the
/// value, asking for quotes (and never showing a passphrase).
fn wifi_is_text(source: &Source, value: &Value) -> Result<()> {
    let Some(ifaces) = value.get("interfaces").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, iface) in ifaces {
        for key in ["ssid", "psk", "country"] {
            let Some(v) = iface.get(key).filter(|v| !v.is_string() && !v.is_null()) else {
                continue;
            };
            let shown = if key == "psk" {
                "the passphrase".to_string()
            } else {
                format!("`{v}`")
            };
            return Err(source
                .error_at(
                    &format!("interfaces.{name}.{key}"),
                    &format!("`{key}:` is text, but YAML reads {shown} as a number or a boolean"),
                )
                .with_hint(format!("write it in quotes: {key}: \"...\"")));
        }
    }
    Ok(())
}

/// The unit types pibake writes and switches: units that are files in a unit directory.
const FILE_UNIT_TYPES: &[&str] = &["service", "socket", "timer", "target", "path", "mount"];

/// `services:`: names (already unit names, parsed as the file was read) of the types
/// pibake switches, and in each inline unit an `[Install]` section whose names are unit
/// names too, since enabling the unit makes links named by them.
fn check_units(source: &Source, p: &ProfileFile) -> Result<()> {
    let s = &p.services;
    let named = s
        .units
        .keys()
        .map(|u| (format!("services.units.{u}"), u))
        .chain(
            [
                ("enable", &s.enable),
                ("disable", &s.disable),
                ("mask", &s.mask),
            ]
            .into_iter()
            .flat_map(|(key, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(i, u)| (format!("services.{key}.{i}"), u))
            }),
        );
    for (at, unit) in named {
        if !FILE_UNIT_TYPES.contains(&unit.unit_type()) {
            return Err(source.error_at(
                &at,
                &format!(
                    "`{unit}` is not a unit pibake can write or switch: one of .{}",
                    FILE_UNIT_TYPES.join(", .")
                ),
            ));
        }
    }
    for (unit, text) in &s.units {
        let at = format!("services.units.{unit}");
        check_install(unit, text).map_err(|(line, why)| {
            let what = format!("unit {unit}, [Install]: {why}");
            match line_in_block(source, &at, line) {
                Some(pos) => source.error(pos, &what),
                None => source.error_at(&at, &format!("{what} (line {line} of the unit)")),
            }
        })?;
    }
    Ok(())
}

/// Where line `line` (1-based) of the text at `at` is in the file, when that text is a
/// literal block scalar (`key: |`), whose lines are the file's lines one for one after
/// the line of its `|`. (The value's recorded position is where its text starts.)
fn line_in_block(source: &Source, at: &str, line: usize) -> Option<Pos> {
    let lines: Vec<&str> = source.text.lines().collect();
    let start = source.pos(at).line;
    // The `|` is on the line before the text, blank lines between them aside.
    let header = (1..start)
        .rev()
        .take_while(|l| *l + 1 == start || lines[*l].trim().is_empty())
        .find(|l| is_literal_header(lines[*l - 1]))?;
    let target = lines.get(header + line - 1)?;
    let indent = target.len() - target.trim_start_matches(' ').len();
    Some(Pos {
        line: header + line,
        col: indent + 1,
    })
}

/// Whether a line ends with a literal block scalar's header: `key: |`, `- |-`, `: |2+`.
fn is_literal_header(line: &str) -> bool {
    let Some((before, after)) = line.trim_end().rsplit_once('|') else {
        return false;
    };
    let before = before.trim_end();
    after
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
        && (before.ends_with(':') || before.ends_with('-'))
}

/// Deep merge, `over` on top of `base`.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            for v in o {
                if !b.contains(&v) {
                    b.push(v);
                }
            }
        }
        (b, o) => *b = o,
    }
}
