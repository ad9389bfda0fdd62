//! Role profiles, with inheritance (`extends:`).
//!
//! A profile is looked up in the cluster's own `profiles/` first, then among the profiles
//! shipped inside pibake. Each file in an `extends` chain is checked on its own (so errors
//! point into the right file); then the chain is merged, base first: maps merge key by
//! key, lists append (without repeats), and single values are replaced.

use std::path::Path;

use serde_json::Value;

use super::grammar::{MPI_SLOTS_VAR, NetworkStack, Timezone, mpi_slots};
use super::orchestrator::{K3sPart, LABELS_VAR, Labels, SwarmPart};
use super::schema::{InterfaceDef, ProfileFile};
use super::shipped;
use super::source::Source;
use super::var_types::VarType;
use crate::error::{Error, Result};

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
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let key = format!("interfaces.{iface}.network");
        let source = self
            .sources
            .iter()
            .find(|s| s.has(&key))
            .unwrap_or(&self.sources[0]);
        source.error_at(&key, what)
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

/// Checks one file of a chain, with positions in that file.
fn check(source: &Source, p: &ProfileFile, warnings: &mut Vec<String>) -> Result<()> {
    if let Some(v) = p.vars.get(MPI_SLOTS_VAR) {
        mpi_slots(v).map_err(|why| source.error_at(&format!("vars.{MPI_SLOTS_VAR}"), &why))?;
    }
    if let Some(v) = p.vars.get(LABELS_VAR) {
        Labels::parse(v).map_err(|why| source.error_at(&format!("vars.{LABELS_VAR}"), &why))?;
    }
    for (var, ty) in &p.var_types {
        VarType::parse(ty).map_err(|why| source.error_at(&format!("var_types.{var}"), &why))?;
    }
    if let Some(s) = &p.swarm {
        SwarmPart::parse(s).map_err(|why| source.error_at("swarm", &why))?;
    }
    if let Some(s) = &p.k3s {
        K3sPart::parse(s).map_err(|why| source.error_at("k3s", &why))?;
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
    for (name, i) in &p.interfaces {
        let at = format!("interfaces.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
            || name.is_empty()
            || name.len() > 15
        {
            return Err(source.error_at(&at, &format!("`{name}` is not an interface name")));
        }
        check_interface(source, &at, name, i)?;
    }
    for (i, o) in p
        .config
        .overlays
        .iter()
        .chain(p.config.sections.values().flat_map(|s| &s.overlays))
        .enumerate()
    {
        if o.is_empty() || o.contains(char::is_whitespace) || o.starts_with(',') {
            return Err(source.error_at(
                &format!("config.overlays.{i}"),
                &format!("overlay `{o}` must be `name` or `name,param=value`"),
            ));
        }
    }
    for (i, d) in p.config.dtparams.iter().enumerate() {
        if d.contains(char::is_whitespace) || d.is_empty() {
            return Err(source.error_at(
                &format!("config.dtparams.{i}"),
                &format!("dtparam `{d}` must be `name` or `name=value`"),
            ));
        }
    }
    for (i, t) in p.cmdline.add.iter().chain(&p.cmdline.remove).enumerate() {
        if t.is_empty() || t.contains(char::is_whitespace) {
            return Err(source.error_at(
                &format!("cmdline.add.{i}"),
                &format!("cmdline parameter `{t}` must be one word"),
            ));
        }
    }
    for unit in p
        .services
        .units
        .keys()
        .chain(&p.services.enable)
        .chain(&p.services.disable)
        .chain(&p.services.mask)
    {
        let ok = [
            ".service", ".socket", ".timer", ".target", ".path", ".mount",
        ]
        .iter()
        .any(|s| unit.ends_with(s))
            && unit
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
        if !ok {
            return Err(source.error_at(
                "services",
                &format!("`{unit}` is not a unit name (like apache2.service)"),
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
    if wifi {
        if i.ssid.is_none() || i.country.is_none() {
            return Err(source.error_at(
                at,
                &format!("{name}: Wi-Fi needs `ssid` and `country` (and `psk` unless open)"),
            ));
        }
        if let Some(psk) = &i.psk
            && !(8..=63).contains(&psk.len())
        {
            return Err(source.error_at(
                &format!("{at}.psk"),
                "a WPA passphrase is 8 to 63 characters",
            ));
        }
        if let Some(c) = &i.country
            && (c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()))
        {
            return Err(source.error_at(
                &format!("{at}.country"),
                &format!("`{c}` is not a two-letter country code like GB"),
            ));
        }
    }
    Ok(())
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
