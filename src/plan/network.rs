//! Interface configuration, written for the network stack the image really uses.
//!
//! NetworkManager (bookworm, trixie): one keyfile per interface, root-only (0600, as NM
//! requires). dhcpcd (bullseye): a block pibake owns inside /etc/dhcpcd.conf. networkd
//! and ifupdown when a profile asks for them. Wi-Fi gets its regulatory country on the
//! kernel command line (what raspi-config does on current releases) and, for dhcpcd and
//! ifupdown, a wpa_supplicant.conf.
//!
//! Every value comes parsed from the inventory (`inventory::wifi`, `grammar`), and each
//! format has one writer: [`Keyfile`] escapes as GLib's GKeyFile does, and
//! [`wpa_ssid`]/[`wpa_psk`] quote or use the hex form, or refuse, so no value can end
//! its line or add a key, a group or a network block.

use sha2::{Digest, Sha256};

use super::{Plan, PlannedBlock};
use crate::error::Result;
use crate::inventory::schema::InterfaceDef;
use crate::inventory::wifi::{Psk, Ssid};
use crate::inventory::{Inventory, NetworkStack, Node};

/// One interface, resolved against the node's addresses.
struct Iface<'a> {
    name: &'a str,
    def: &'a InterfaceDef,
    /// `10.0.0.11/24`
    cidr: Option<String>,
    gateway: Option<String>,
    dns: Vec<String>,
    domain: Option<String>,
}

/// A stable UUID for a connection, so rebuilding a node gives the same file.
fn uuid(cluster: &str, node: &str, iface: &str) -> String {
    let h = Sha256::digest(format!("{cluster}/{node}/{iface}").as_bytes());
    let hex = pibake_image::chunks::hex(&h[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn resolve<'a>(inv: &Inventory, node: &Node, name: &'a str, def: &'a InterfaceDef) -> Iface<'a> {
    // `dhcp: true` with a `network:` is a reservation: the node's address on that network
    // is handed out by the cluster's DHCP server, so the interface itself asks for it.
    let Some(net) = def
        .network
        .as_ref()
        .filter(|_| !def.dhcp)
        .map(|n| &inv.networks[n])
    else {
        return Iface {
            name,
            def,
            cidr: None,
            gateway: None,
            dns: Vec::new(),
            domain: None,
        };
    };
    let addr = node.addresses[&net.name];
    let gateway = net
        .gateway
        .filter(|g| *g != addr && def.default_route != Some(false))
        .map(|g| g.to_string());
    Iface {
        name,
        def,
        cidr: Some(format!("{addr}/{}", net.subnet.prefix)),
        gateway,
        dns: net.dns.iter().map(|d| d.to_string()).collect(),
        domain: net.domain.as_ref().map(|d| d.to_string()),
    }
}

/// NetworkManager's wait for the network, for a node whose address comes by DHCP: it
/// keeps asking until its server answers (see `dhcp-timeout` in [`nm_keyfile`]), and a
/// node powered on with its DHCP server (the portable head, still configuring its
/// software) gets its lease minutes later. NetworkManager's wait gives up after its 60 s
/// as before, and the units that want `network-online.target` (autofs, NFS, started by
/// the first boot's configure) still start then; but it counts that as a success, so
/// the node is not left `degraded` for good by a lease that arrived late.
const NM_WAIT_ONLINE_DROPIN: &str =
    "/etc/systemd/system/NetworkManager-wait-online.service.d/pibake-dhcp.conf";
const NM_WAIT_ONLINE: &str = "# Written by pibake: this node's address comes by DHCP, asked for until its server\n# answers; not having it yet when the wait ends is no failure.\n[Service]\nSuccessExitStatus=1\n";

/// Adds the network configuration of `node` to its plan.
pub fn configure(inv: &Inventory, node: &Node, stack: NetworkStack, plan: &mut Plan) -> Result<()> {
    let profile = &inv.profiles[&node.role];
    let ifaces: Vec<Iface> = profile
        .def
        .interfaces
        .iter()
        .map(|(n, d)| resolve(inv, node, n.as_str(), d))
        .collect();
    let mut dhcpcd = String::new();
    for i in &ifaces {
        if let Some(c) = &i.def.country
            && !plan
                .cmdline_add
                .iter()
                .any(|t| t.starts_with("cfg80211.ieee80211_regdom="))
        {
            plan.cmdline_add
                .push(format!("cfg80211.ieee80211_regdom={c}"));
        }
        match stack {
            NetworkStack::NetworkManager => {
                let path = format!(
                    "/etc/NetworkManager/system-connections/pibake-{}.nmconnection",
                    i.name
                );
                plan.add_secret_file(&path, 0o600, nm_keyfile(inv, node, i));
            }
            NetworkStack::Dhcpcd => dhcpcd.push_str(&dhcpcd_block(i)),
            NetworkStack::Networkd => {
                let path = format!("/etc/systemd/network/10-pibake-{}.network", i.name);
                plan.add_file(&path, 0o644, networkd(i));
            }
            NetworkStack::Ifupdown => {
                let path = format!("/etc/network/interfaces.d/pibake-{}", i.name);
                plan.add_file(&path, 0o644, ifupdown(i));
            }
        }
    }
    if stack == NetworkStack::NetworkManager && ifaces.iter().any(|i| i.cidr.is_none()) {
        plan.add_file(NM_WAIT_ONLINE_DROPIN, 0o644, NM_WAIT_ONLINE.into());
    }
    if !dhcpcd.is_empty() {
        plan.blocks.push(PlannedBlock {
            path: "/etc/dhcpcd.conf".into(),
            content: dhcpcd,
        });
    }
    if stack == NetworkStack::Networkd && !ifaces.is_empty() {
        plan.services.enable.push("systemd-networkd.service".into());
    }
    if matches!(stack, NetworkStack::Dhcpcd | NetworkStack::Ifupdown)
        && let Some(w) = ifaces.iter().find(|i| i.def.ssid.is_some())
    {
        let conf = wpa_supplicant(w).map_err(|why| {
            // At the passphrase, in whichever file of the profile's chain sets it.
            let key = format!("interfaces.{}.psk", w.name);
            let source = profile
                .sources
                .iter()
                .find(|s| s.has(&key))
                .unwrap_or(profile.source());
            source.error_at(
                &key,
                &format!("{why} ({stack} writes it into wpa_supplicant.conf)"),
            )
        })?;
        plan.add_secret_file("/etc/wpa_supplicant/wpa_supplicant.conf", 0o600, conf);
    }
    Ok(())
}

/// A keyfile as GLib's GKeyFile writes one, which is how NetworkManager reads them:
/// groups and keys are pibake's own names (`&'static str`), and every value is escaped
/// as `g_key_file_set_string` escapes it (`\\`, `\n`, `\r`, and `\s`/`\t` for leading
/// blanks), so no value can end its line, start a group or add a key.
#[derive(Default)]
struct Keyfile(String);

impl Keyfile {
    /// Starts `[name]`, after a blank line when something came before.
    fn group(&mut self, name: &'static str) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        self.0.push('[');
        self.0.push_str(name);
        self.0.push_str("]\n");
    }

    /// `key=value`, the value escaped.
    fn set(&mut self, key: &'static str, value: &str) {
        self.line(key, &keyfile_escape(value, false));
    }

    /// `key=a;b;`, a GKeyFile string list: each item escaped, its `;` too.
    fn set_list(&mut self, key: &'static str, items: &[String]) {
        let value: String = items
            .iter()
            .map(|i| format!("{};", keyfile_escape(i, true)))
            .collect();
        self.line(key, &value);
    }

    /// An SSID as NetworkManager itself writes one (`ssid_writer` in libnm's keyfile
    /// code): printable ASCII as a string with each `;` written `\;` (so that text like
    /// `12;34;` is not read as a byte list), anything else as the list of its bytes
    /// (`67;97;102;195;169;`).
    fn set_ssid(&mut self, key: &'static str, ssid: &Ssid) {
        if ssid.is_printable_ascii() {
            self.set(key, &ssid.as_str().replace(';', "\\;"));
        } else {
            let bytes: String = ssid.as_str().bytes().map(|b| format!("{b};")).collect();
            self.line(key, &bytes);
        }
    }

    fn line(&mut self, key: &'static str, escaped: &str) {
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(escaped);
        self.0.push('\n');
    }

    fn finish(self) -> String {
        self.0
    }
}

/// A value as `g_key_file_set_string` writes it (GLib's
/// `g_key_file_parse_string_as_value`); with `separator`, a list item, whose `;` is
/// escaped too and after which blanks lead again.
fn keyfile_escape(value: &str, separator: bool) -> String {
    let mut out = String::with_capacity(value.len());
    let mut leading = true;
    for c in value.chars() {
        match c {
            ' ' if leading => out.push_str("\\s"),
            '\t' if leading => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => {
                out.push_str("\\\\");
                leading = false;
            }
            ';' if separator => {
                out.push_str("\\;");
                leading = true;
            }
            ' ' | '\t' => out.push(c),
            _ => {
                out.push(c);
                leading = false;
            }
        }
    }
    out
}

fn nm_keyfile(inv: &Inventory, node: &Node, i: &Iface) -> String {
    let mut k = Keyfile::default();
    k.group("connection");
    k.set("id", &format!("pibake-{}", i.name));
    k.set("uuid", &uuid(&inv.file.cluster, &node.name, i.name));
    k.set(
        "type",
        if i.def.ssid.is_some() {
            "wifi"
        } else {
            "ethernet"
        },
    );
    k.set("interface-name", i.name);
    k.set("autoconnect", "true");
    k.set("autoconnect-priority", "100");
    if let Some(ssid) = &i.def.ssid {
        k.group("wifi");
        k.set("mode", "infrastructure");
        k.set_ssid("ssid", ssid);
        if let Some(psk) = &i.def.psk {
            k.group("wifi-security");
            k.set("key-mgmt", "wpa-psk");
            k.set("psk", psk.expose());
        }
    } else {
        k.group("ethernet");
    }
    k.group("ipv4");
    match &i.cidr {
        // A cluster node powered on with its DHCP server (the portable head) must keep
        // asking until that server is up, not give up after NM's 45 s: no timeout.
        None => {
            k.set("method", "auto");
            k.set("dhcp-timeout", "2147483647");
        }
        Some(cidr) => {
            k.set("method", "manual");
            let addr = match &i.gateway {
                Some(g) => format!("{cidr},{g}"),
                None => cidr.clone(),
            };
            k.set("address1", &addr);
            if !i.dns.is_empty() {
                k.set_list("dns", &i.dns);
            }
            if let Some(d) = &i.domain {
                k.set_list("dns-search", std::slice::from_ref(d));
            }
            if i.gateway.is_none() {
                k.set("never-default", "true");
            }
        }
    }
    k.group("ipv6");
    k.set("method", "auto");
    k.finish()
}

fn dhcpcd_block(i: &Iface) -> String {
    let Some(cidr) = &i.cidr else {
        return String::new();
    };
    let mut s = format!("interface {}\nstatic ip_address={cidr}\n", i.name);
    match &i.gateway {
        Some(g) => s.push_str(&format!("static routers={g}\n")),
        None => s.push_str("nogateway\n"),
    }
    if !i.dns.is_empty() {
        s.push_str(&format!("static domain_name_servers={}\n", i.dns.join(" ")));
    }
    if let Some(d) = &i.domain {
        s.push_str(&format!("static domain_search={d}\n"));
    }
    s
}

fn networkd(i: &Iface) -> String {
    let mut s = format!("[Match]\nName={}\n\n[Network]\n", i.name);
    match &i.cidr {
        None => s.push_str("DHCP=yes\n"),
        Some(cidr) => {
            s.push_str(&format!("Address={cidr}\n"));
            if let Some(g) = &i.gateway {
                s.push_str(&format!("Gateway={g}\n"));
            }
            for d in &i.dns {
                s.push_str(&format!("DNS={d}\n"));
            }
            if let Some(d) = &i.domain {
                s.push_str(&format!("Domains={d}\n"));
            }
        }
    }
    s
}

fn ifupdown(i: &Iface) -> String {
    let mut s = format!("auto {0}\nallow-hotplug {0}\n", i.name);
    match &i.cidr {
        None => s.push_str(&format!("iface {} inet dhcp\n", i.name)),
        Some(cidr) => {
            s.push_str(&format!(
                "iface {} inet static\n    address {cidr}\n",
                i.name
            ));
            if let Some(g) = &i.gateway {
                s.push_str(&format!("    gateway {g}\n"));
            }
            if !i.dns.is_empty() {
                s.push_str(&format!("    dns-nameservers {}\n", i.dns.join(" ")));
            }
        }
    }
    if i.def.ssid.is_some() {
        s.push_str("    wpa-conf /etc/wpa_supplicant/wpa_supplicant.conf\n");
    }
    s
}

/// wpa_supplicant.conf with one network block. Its parser reads line by line and takes
/// a quoted value as the text between the quotes, with no escapes (and versions differ
/// on which quote ends it), so a quoted value may hold no `"` and no line break: an SSID
/// outside printable ASCII or with a `"` is written in the hex form wpa_supplicant also
/// reads, and a passphrase with a `"` (which has no such form) is refused.
fn wpa_supplicant(i: &Iface) -> std::result::Result<String, String> {
    let (Some(ssid), Some(country)) = (&i.def.ssid, &i.def.country) else {
        // The profile's check: Wi-Fi has both.
        return Err("Wi-Fi needs `ssid` and `country`".into());
    };
    let mut s = format!(
        "ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\nupdate_config=1\ncountry={country}\n\nnetwork={{\n    ssid={}\n",
        wpa_ssid(ssid)
    );
    match &i.def.psk {
        Some(p) => s.push_str(&format!("    psk={}\n", wpa_psk(p)?)),
        None => s.push_str("    key_mgmt=NONE\n"),
    }
    s.push_str("}\n");
    Ok(s)
}

/// `ssid=` of wpa_supplicant.conf: `"text"` when it is printable ASCII without `"`,
/// else the hex form (`6c6162`).
fn wpa_ssid(ssid: &Ssid) -> String {
    if ssid.is_printable_ascii() && !ssid.as_str().contains('"') {
        format!("\"{}\"", ssid.as_str())
    } else {
        pibake_image::chunks::hex(ssid.as_str().as_bytes())
    }
}

/// `psk=` of wpa_supplicant.conf: a passphrase in quotes, or the raw key as its 64 hex
/// digits unquoted; a passphrase holding `"` cannot be written (its hex form is a
/// PBKDF2 of it and the SSID, which pibake does not compute).
fn wpa_psk(psk: &Psk) -> std::result::Result<String, String> {
    if psk.is_raw_key() {
        return Ok(psk.expose().to_ascii_lowercase());
    }
    if psk.expose().contains('"') {
        return Err("the Wi-Fi passphrase (not shown) holds a `\"`, which wpa_supplicant.conf cannot quote; use another passphrase, or give the key itself as 64 hex digits (`wpa_passphrase SSID` prints it)".into());
    }
    Ok(format!("\"{}\"", psk.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyfile_values_are_escaped_as_gkeyfile_does() {
        assert_eq!(keyfile_escape("plain value", false), "plain value");
        assert_eq!(keyfile_escape("  \tlead", false), "\\s\\s\\tlead");
        assert_eq!(keyfile_escape("a b\tc ", false), "a b\tc ");
        assert_eq!(keyfile_escape("lab\nx=y\r\\", false), "lab\\nx=y\\r\\\\");
        assert_eq!(keyfile_escape("a; b", true), "a\\;\\sb");
        // No value of any key can start a line of its own.
        let mut k = Keyfile::default();
        k.group("connection");
        let hostile = "x\n[wifi-security]\npsk=evil\r\n id=2";
        k.set("id", hostile);
        k.set_list("dns", &[hostile.to_string()]);
        let text = k.finish();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.lines()
                .skip(1)
                .all(|l| l.starts_with("id=") || l.starts_with("dns="))
        );
    }

    #[test]
    fn ssids_are_written_as_networkmanager_writes_them() {
        let ssid = |s: &str| {
            let mut k = Keyfile::default();
            k.set_ssid("ssid", &Ssid::parse(s).unwrap());
            k.finish()
        };
        assert_eq!(ssid("lab"), "ssid=lab\n");
        assert_eq!(ssid("12;34;"), "ssid=12\\\\;34\\\\;\n");
        assert_eq!(ssid(" back\\slash"), "ssid=\\sback\\\\slash\n");
        assert_eq!(ssid("Café"), "ssid=67;97;102;195;169;\n");
        assert_eq!(wpa_ssid(&Ssid::parse("lab").unwrap()), "\"lab\"");
        assert_eq!(wpa_ssid(&Ssid::parse("a\"b").unwrap()), "612262");
        assert_eq!(wpa_ssid(&Ssid::parse("Café").unwrap()), "436166c3a9");
        let key = "0123456789ABCDEF".repeat(4);
        assert_eq!(
            wpa_psk(&Psk::parse(&key).unwrap()).unwrap(),
            key.to_lowercase()
        );
        assert_eq!(
            wpa_psk(&Psk::parse(" pass#word\\ ").unwrap()).unwrap(),
            "\" pass#word\\ \""
        );
        let refused = wpa_psk(&Psk::parse("pass\"word").unwrap()).unwrap_err();
        assert!(!refused.contains("pass\"word"), "{refused}");
    }
}
