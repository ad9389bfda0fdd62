//! Interface configuration, written for the network stack the image really uses.
//!
//! NetworkManager (bookworm, trixie): one keyfile per interface, root-only (0600, as NM
//! requires). dhcpcd (bullseye): a block pibake owns inside /etc/dhcpcd.conf. networkd
//! and ifupdown when a profile asks for them. Wi-Fi gets its regulatory country on the
//! kernel command line (what raspi-config does on current releases) and, for dhcpcd and
//! ifupdown, a wpa_supplicant.conf.

use sha2::{Digest, Sha256};

use super::{Plan, PlannedBlock};
use crate::inventory::schema::InterfaceDef;
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

/// Adds the network configuration of `node` to its plan.
pub fn configure(inv: &Inventory, node: &Node, stack: NetworkStack, plan: &mut Plan) {
    let profile = &inv.profiles[&node.role];
    let ifaces: Vec<Iface> = profile
        .def
        .interfaces
        .iter()
        .map(|(n, d)| resolve(inv, node, n, d))
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
        plan.add_secret_file(
            "/etc/wpa_supplicant/wpa_supplicant.conf",
            0o600,
            wpa_supplicant(w),
        );
    }
}

fn nm_keyfile(inv: &Inventory, node: &Node, i: &Iface) -> String {
    let id = format!("pibake-{}", i.name);
    let wifi = i.def.ssid.is_some();
    let mut s = format!(
        "[connection]\nid={id}\nuuid={}\ntype={}\ninterface-name={}\nautoconnect=true\nautoconnect-priority=100\n\n",
        uuid(&inv.file.cluster, &node.name, i.name),
        if wifi { "wifi" } else { "ethernet" },
        i.name
    );
    if let Some(ssid) = &i.def.ssid {
        s.push_str(&format!("[wifi]\nmode=infrastructure\nssid={ssid}\n\n"));
        if let Some(psk) = &i.def.psk {
            s.push_str(&format!("[wifi-security]\nkey-mgmt=wpa-psk\npsk={psk}\n\n"));
        }
    } else {
        s.push_str("[ethernet]\n\n");
    }
    match &i.cidr {
        // A cluster node powered on with its DHCP server (the portable head) must keep
        // asking until that server is up, not give up after NM's 45 s: no timeout.
        None => s.push_str("[ipv4]\nmethod=auto\ndhcp-timeout=2147483647\n\n"),
        Some(cidr) => {
            let addr = match &i.gateway {
                Some(g) => format!("{cidr},{g}"),
                None => cidr.clone(),
            };
            s.push_str(&format!("[ipv4]\nmethod=manual\naddress1={addr}\n"));
            if !i.dns.is_empty() {
                s.push_str(&format!("dns={};\n", i.dns.join(";")));
            }
            if let Some(d) = &i.domain {
                s.push_str(&format!("dns-search={d};\n"));
            }
            if i.gateway.is_none() {
                s.push_str("never-default=true\n");
            }
            s.push('\n');
        }
    }
    s.push_str("[ipv6]\nmethod=auto\n");
    s
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

fn wpa_supplicant(i: &Iface) -> String {
    let mut s = format!(
        "ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\nupdate_config=1\ncountry={}\n\nnetwork={{\n    ssid=\"{}\"\n",
        i.def.country.as_deref().unwrap_or("GB"),
        i.def.ssid.as_deref().unwrap_or_default()
    );
    match &i.def.psk {
        Some(p) => s.push_str(&format!("    psk=\"{p}\"\n")),
        None => s.push_str("    key_mgmt=NONE\n"),
    }
    s.push_str("}\n");
    s
}
