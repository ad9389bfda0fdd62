//! Values from the inventory that land in files and scripts, parsed into types.
//!
//! Text from cluster.yaml never reaches an image as it was typed: a MAC address goes
//! into dnsmasq's `dhcp-host=`, a domain into /etc/hosts, a timezone into a symlink
//! target. Each has a grammar, and a value outside it is refused where it was written
//! (the caller adds file, line and column to the reason these parsers give), so a
//! comma, a newline or a `../` can never add a field, a line or a path.

use std::fmt;

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
}
