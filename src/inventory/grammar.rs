//! Values from the inventory that land in files and scripts, parsed into types.
//!
//! Text from cluster.yaml never reaches an image as it was typed: a MAC address goes
//! into dnsmasq's `dhcp-host=`, a domain into /etc/hosts, a timezone into a symlink
//! target. Each has a grammar, and a value outside it is refused where it was written
//! (the caller adds file, line and column to the reason these parsers give), so a
//! comma, a newline or a `../` can never add a field, a line or a path.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// An Ethernet MAC address of one device: unicast, not all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Six two-digit hex octets separated by `:` or `-` (`b8:27:eb:12:34:56`).
    pub fn parse(s: &str) -> Result<MacAddr, String> {
        let bad = || format!("`{s}` is not a MAC address like b8:27:eb:12:34:56");
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(&parts) {
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if out[0] & 1 == 1 {
            return Err(format!(
                "`{s}` is a multicast or broadcast address, not one device's"
            ));
        }
        if out == [0; 6] {
            return Err(format!("`{s}` is the all-zero address, not one device's"));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A DNS domain of RFC 1123 labels (`cluster.lan`), kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    /// Labels of 1 to 63 letters, digits and inner hyphens, joined by dots; 253 bytes
    /// at most.
    pub fn parse(s: &str) -> Result<Domain, String> {
        let bad = |why: &str| {
            format!(
                "domain `{s}` {why}; use labels of letters, digits and inner `-` joined by `.` (like cluster.lan)"
            )
        };
        if s.is_empty() || s.len() > 253 {
            return Err(bad("must be 1 to 253 characters"));
        }
        for label in s.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("has an empty label or one over 63 characters"));
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(bad("has a character outside letters, digits and `-`"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("has a label that starts or ends with `-`"));
            }
        }
        Ok(Domain(s.to_ascii_lowercase()))
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tz database zone name (`Europe/London`, `UTC`): the image's
/// `/usr/share/zoneinfo/<name>` must exist, which the build checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Timezone(String);

impl Timezone {
    /// One to three `/`-separated parts of letters, digits, `_`, `+` and `-`, none of
    /// them `.` or `..`: a name inside zoneinfo, never a path out of it.
    pub fn parse(s: &str) -> Result<Timezone, String> {
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
                && p.starts_with(|c: char| c.is_ascii_alphanumeric())
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 3 || !parts.iter().all(|p| part_ok(p)) {
            return Err(format!(
                "timezone `{s}` is not a zone name like Europe/London or UTC"
            ));
        }
        Ok(Timezone(s.to_string()))
    }

    /// The zone name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The software that configures a node's interfaces, and so decides which files the
/// plan writes for them. Shown and written under the names profiles use
/// (`networkmanager`, `dhcpcd`, `networkd`, `ifupdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkStack {
    /// NetworkManager (bookworm, trixie): one keyfile per interface.
    NetworkManager,
    /// dhcpcd (bullseye): a block pibake owns inside `/etc/dhcpcd.conf`.
    Dhcpcd,
    /// systemd-networkd: one `.network` file per interface.
    Networkd,
    /// ifupdown (`networking.service`): one file per interface in
    /// `/etc/network/interfaces.d`.
    Ifupdown,
}

impl NetworkStack {
    /// Every stack, in the order `inspect` looks for their units.
    pub const ALL: [NetworkStack; 4] = [
        NetworkStack::NetworkManager,
        NetworkStack::Dhcpcd,
        NetworkStack::Networkd,
        NetworkStack::Ifupdown,
    ];

    /// The name profiles, plans and manifests use.
    pub fn name(self) -> &'static str {
        match self {
            NetworkStack::NetworkManager => "networkmanager",
            NetworkStack::Dhcpcd => "dhcpcd",
            NetworkStack::Networkd => "networkd",
            NetworkStack::Ifupdown => "ifupdown",
        }
    }

    /// A profile's `network_stack:`: a stack's name, or `auto`, which is `None`: the
    /// stack the base image really uses, read from it when the plan is made.
    pub fn parse_choice(s: &str) -> Result<Option<NetworkStack>, String> {
        if s == "auto" {
            return Ok(None);
        }
        NetworkStack::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = NetworkStack::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown network stack `{s}`; one of: auto, {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for NetworkStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for NetworkStack {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The template variable that gives a node's MPI slots (`mpi_slots: 4` for a Pi 3's four
/// cores), read by the MPI hostfile pibake writes. Without it a hostfile line has no
/// `slots=` and Open MPI counts the node's cores itself.
pub const MPI_SLOTS_VAR: &str = "mpi_slots";

/// A `mpi_slots` value: a whole number of ranks per node, 1 to 1024.
pub fn mpi_slots(v: &serde_json::Value) -> Result<u32, String> {
    v.as_u64()
        .filter(|k| (1..=1024).contains(k))
        .and_then(|k| u32::try_from(k).ok())
        .ok_or_else(|| {
            format!("`{MPI_SLOTS_VAR}: {v}` is not a number of MPI slots from 1 to 1024 (the cores a node runs ranks on)")
        })
}

/// `s` for a message: as written, but with control characters (a line break, a tab)
/// escaped, so a refusal shows where the value would have split a line.
pub fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Deserializes a string through `parse`: a value outside its grammar fails at its own
/// position in the YAML (serde_norway marks the scalar), never later in a file it lands in.
pub(crate) fn parsed<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Parsed<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for Parsed<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Parsed { expecting, parse })
}

/// `impl Deserialize` through the type's `parse`.
macro_rules! deserialize_by_parse {
    ($ty:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::inventory::grammar::parsed(d, $expecting, <$ty>::parse)
            }
        }
    };
}
pub(crate) use deserialize_by_parse;

/// The unit types systemd knows (systemd.unit(5)), the suffix of every unit name.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// A systemd unit name (`apache2.service`, `getty@tty1.service`, `getty@.service`):
/// systemd's own grammar, so it is always one file name inside a unit directory, never
/// a path (no `/`, and never `.` or `..`, since it ends in `.TYPE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    /// A non-empty prefix of letters, digits and `:_.\-@` (not starting with `@`), a
    /// `.`, and one of systemd's unit types; 255 bytes at most.
    pub fn parse(s: &str) -> Result<UnitName, String> {
        let bad = |why: &str| {
            format!(
                "`{}` is not a unit name (like apache2.service): {why}",
                shown(s)
            )
        };
        if s.is_empty() || s.len() > 255 {
            return Err(bad("it must be 1 to 255 characters"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":_.@-\\".contains(*c)))
        {
            return Err(bad(&format!(
                "`{}` is outside systemd's letters, digits and `:_.@-\\`",
                shown(&c.to_string())
            )));
        }
        let Some((prefix, suffix)) = s.rsplit_once('.') else {
            return Err(bad("it has no `.TYPE` ending"));
        };
        if !UNIT_TYPES.contains(&suffix) {
            return Err(bad(&format!(
                "`.{suffix}` is not a unit type ({})",
                UNIT_TYPES.join(", ")
            )));
        }
        if prefix.is_empty() || prefix.starts_with('@') {
            return Err(bad("the name before `.TYPE` is empty"));
        }
        Ok(UnitName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its type (`service`, `target`, ...).
    pub fn unit_type(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(_, t)| t)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_by_parse!(UnitName, "a systemd unit name like apache2.service");

/// The `[Install]` settings whose values systemctl turns into link names in
/// /etc/systemd/system: each word a unit name.
const INSTALL_UNIT_LISTS: &[&str] = &["WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also"];

/// Checks the `[Install]` section of the unit file `unit` (its text): every value of
/// `WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Alias=` and `Also=` is a unit name (an
/// alias one of the unit's own type), and `DefaultInstance=` an instance name, since
/// enabling the unit makes links named by them. The section is read as pibake's offline
/// `systemctl enable` reads it (`bake::systemd`). On a refusal: the 1-based line of the
/// text, and why.
pub fn check_install(unit: &UnitName, text: &str) -> Result<(), (usize, String)> {
    let mut in_install = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = |why: String| Err((i + 1, why));
        if line.ends_with('\\') {
            return at(format!(
                "`{}`: a line continued with `\\` in [Install]; give each setting on one line",
                shown(line)
            ));
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if INSTALL_UNIT_LISTS.contains(&key) {
            for word in value.split_whitespace() {
                let name =
                    UnitName::parse(word).map_err(|why| (i + 1, format!("{key}=: {why}")))?;
                if key == "Alias" && name.unit_type() != unit.unit_type() {
                    return at(format!(
                        "Alias=: `{name}` is not a .{} unit like {unit} (an alias has the unit's own type)",
                        unit.unit_type()
                    ));
                }
            }
        } else if key == "DefaultInstance" {
            let v = value.trim();
            let ok = !v.is_empty()
                && v.len() <= 255
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
            if !ok {
                return at(format!(
                    "DefaultInstance=: `{}` is not an instance name (letters, digits and `:_.@-\\`)",
                    shown(v)
                ));
            }
        }
    }
    Ok(())
}

/// A network interface name (`eth0`, `wlan0`, `br0.10`): 1 to 15 letters, digits, `.`,
/// `_` and `-`, as the kernel's IFNAMSIZ allows; it lands in keyfiles, unit files and
/// file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceName(String);

impl IfaceName {
    /// Letters, digits, `.`, `_`, `-`; 1 to 15 of them; not `.` or `..`.
    pub fn parse(s: &str) -> Result<IfaceName, String> {
        let ok = (1..=15).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && s != "."
            && s != "..";
        if !ok {
            return Err(format!(
                "`{}` is not an interface name (1 to 15 letters, digits, `.`, `_`, `-`, like eth0)",
                shown(s)
            ));
        }
        Ok(IfaceName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_by_parse!(IfaceName, "an interface name like eth0");

/// A path on the admin's own machine that ssh_config names (`admin: identity_file:`):
/// ssh_config can quote spaces but has no way to write a `"` or a line break, so those
/// are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPath(String);

impl ClientPath {
    /// Any non-empty path without `"` or control characters.
    pub fn parse(s: &str) -> Result<ClientPath, String> {
        if s.is_empty() || s.contains('"') || s.chars().any(char::is_control) {
            return Err(format!(
                "`{}` cannot be written into ssh_config (empty, or holds a `\"` or a control character)",
                shown(s)
            ));
        }
        Ok(ClientPath(s.to_string()))
    }

    /// The path as given.
    pub fn as_path(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

deserialize_by_parse!(ClientPath, "a path to a private key file");

/// A profile's `debs:` entry: a `.deb` file on the build machine (a path relative to the
/// cluster file), whose file name is what the image and the first-boot `apt-get` line
/// get. The name keeps to a file-name alphabet of Debian's package file names
/// (`hello_2.10-3_arm64.deb`): letters, digits and `._+~:-`, so it holds no `/`, space,
/// quote, `;`, `$` or line break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDeb {
    path: String,
    name: String,
}

impl LocalDeb {
    /// A relative or absolute path whose last part is a `.deb` file name as above,
    /// starting with a letter or digit, 255 bytes at most.
    pub fn parse(s: &str) -> Result<LocalDeb, String> {
        let name = s.rsplit('/').next().unwrap_or(s);
        let bad = |why: &str| {
            format!(
                "`{}`: {why}; a .deb file name is letters, digits and `._+~:-` (like hello_2.10-3_arm64.deb)",
                shown(s)
            )
        };
        if s.contains(char::is_control) {
            return Err(bad("the path holds a control character"));
        }
        if !name.ends_with(".deb") || name.len() <= 4 || name.len() > 255 {
            return Err(bad("the file name must end in `.deb`"));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(bad("the file name must start with a letter or digit"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._+~:-".contains(*c)))
        {
            return Err(bad(&format!(
                "the file name holds `{}`",
                shown(&c.to_string())
            )));
        }
        Ok(LocalDeb {
            path: s.to_string(),
            name: name.to_string(),
        })
    }

    /// The path as written (relative to the cluster file).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file name, as the image gets it.
    pub fn file_name(&self) -> &str {
        &self.name
    }
}

deserialize_by_parse!(LocalDeb, "a .deb file's path");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_stacks() {
        for k in NetworkStack::ALL {
            assert_eq!(NetworkStack::parse_choice(&k.to_string()), Ok(Some(k)));
        }
        assert_eq!(NetworkStack::parse_choice("auto"), Ok(None));
        assert_eq!(
            NetworkStack::parse_choice("netplan").unwrap_err(),
            "unknown network stack `netplan`; one of: auto, networkmanager, dhcpcd, networkd, ifupdown"
        );
        assert!(NetworkStack::parse_choice("NetworkManager").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(
            MacAddr::parse("B8-27-EB-01-02-03").unwrap().to_string(),
            "b8:27:eb:01:02:03"
        );
        for bad in [
            "not-a-mac,set:evil",
            "b8:27:eb:01:02",
            "b8:27:eb:01:02:03:04",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "b8:27:eb:01:02:3",
            "b8:27:eb:01:02:0g",
        ] {
            assert!(MacAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(
            Domain::parse("Bramble.LAN").unwrap().as_str(),
            "bramble.lan"
        );
        assert!(Domain::parse("a-1.b2").is_ok());
        for bad in [
            "bad domain_",
            "",
            "a..b",
            "-a.b",
            "a-.b",
            "a.b\nevil",
            &"x".repeat(64),
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timezones() {
        for good in [
            "UTC",
            "Europe/London",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+2",
        ] {
            assert!(Timezone::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "../../../etc/shadow",
            "/etc/shadow",
            "Europe/",
            "Europe/../x",
            "a b",
            ".x",
        ] {
            assert!(Timezone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_names_follow_systemd() {
        for good in [
            "apache2.service",
            "getty@tty1.service",
            "getty@.service",
            "multi-user.target",
            "sys-subsystem-net-devices-wlan0.device",
            "dev-disk-by\\x2dlabel-data.swap",
            "..service",
        ] {
            assert_eq!(UnitName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "../../../usr/bin/sudo",
            "/etc/passwd.service",
            "a/b.service",
            "apache2",
            "apache2.conf",
            ".service",
            "@x.service",
            "a b.service",
            "a\n.service",
            "..",
        ] {
            assert!(UnitName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UnitName::parse(&format!("{}.service", "a".repeat(250))).is_err());
    }

    #[test]
    fn install_sections_name_units_only() {
        let unit = UnitName::parse("site.service").unwrap();
        let good = "[Unit]\nDescription=x\n# Alias=../x\n[Service]\nExecStart=/bin/true\nAlias=/not/install\n[Install]\nWantedBy=multi-user.target graphical.target\nRequiredBy=a.target\nUpheldBy=b.target\nAlias=web.service\nAlso=site.socket\n; WantedBy=../comment\n";
        assert_eq!(check_install(&unit, good), Ok(()));
        let tmpl = UnitName::parse("agent@.service").unwrap();
        assert_eq!(
            check_install(&tmpl, "[Install]\nDefaultInstance=eth0\n"),
            Ok(())
        );
        for (text, line, says) in [
            (
                "[Install]\nAlias=../../../usr/bin/sudo\n",
                2,
                "Alias=: `../../../usr/bin/sudo` is not a unit name",
            ),
            (
                "[Unit]\n\n[Install]\nWantedBy=/etc/x.target\n",
                4,
                "WantedBy=:",
            ),
            (
                "[Install]\nWantedBy=multi-user.target ../../x.target\n",
                2,
                "WantedBy=:",
            ),
            ("[Install]\n  RequiredBy = ..\n", 2, "RequiredBy=:"),
            ("[Install]\nUpheldBy=x/y.target\n", 2, "UpheldBy=:"),
            ("[Install]\nAlso=../../etc/shadow\n", 2, "Also=:"),
            ("[Install]\nAlias=sudo.target\n", 2, "not a .service unit"),
            (
                "[Install]\nDefaultInstance=../../x\n",
                2,
                "DefaultInstance=:",
            ),
            (
                "[Install]\nWantedBy=multi-user.target \\\n  ../../x\n",
                2,
                "continued",
            ),
            (
                "[Install]\nWantedBy=\"multi-user.target\"\n",
                2,
                "WantedBy=:",
            ),
        ] {
            let (l, why) = check_install(&unit, text).unwrap_err();
            assert_eq!(l, line, "{text:?}: {why}");
            assert!(why.contains(says), "{text:?}: {why}");
        }
    }

    #[test]
    fn interface_names_are_one_word() {
        for good in ["eth0", "wlan0", "br0.10", "usb_0-a"] {
            assert!(IfaceName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "eth0\ninterface-name=evil",
            "a/b",
            "..",
            "averyveryverylongname",
            "eth 0",
        ] {
            assert!(IfaceName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deb_file_names_keep_to_a_safe_alphabet() {
        for (good, name) in [
            ("hello_2.10-3_arm64.deb", "hello_2.10-3_arm64.deb"),
            (
                "debs/my-tool_1.0+b1~rc1_all.deb",
                "my-tool_1.0+b1~rc1_all.deb",
            ),
            ("../shared/tool.deb", "tool.deb"),
            ("x/libfoo_1:2.0_armhf.deb", "libfoo_1:2.0_armhf.deb"),
        ] {
            let d = LocalDeb::parse(good).unwrap();
            assert_eq!((d.path(), d.file_name()), (good, name));
        }
        for bad in [
            "my pkg;reboot.deb",
            "debs/a\nb.deb",
            "debs/x'y.deb",
            "debs/x\"y.deb",
            "debs/$(reboot).deb",
            "debs/-rf.deb",
            "debs/.deb",
            "debs/tool.tar",
            "debs/",
            "a\nb/tool.deb",
        ] {
            assert!(LocalDeb::parse(bad).is_err(), "{bad:?}");
        }
    }
}
