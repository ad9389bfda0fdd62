//! IPv4 subnets: parsing, membership, and handing out addresses in order.

use std::net::Ipv4Addr;

/// `10.0.0.0/24`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a subnet like 10.0.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("prefix `/{len}` must be from /8 to /30"))?;
        let net = Subnet {
            network: addr,
            prefix,
        };
        if net.base() != u32::from(addr) {
            return Err(format!(
                "`{s}` has host bits set; the subnet is {}/{prefix}",
                Ipv4Addr::from(net.base())
            ));
        }
        Ok(net)
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }
    fn base(self) -> u32 {
        u32::from(self.network) & self.mask()
    }
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() | !self.mask())
    }
    /// Whether the two subnets share any address.
    pub fn overlaps(self, other: Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == self.base()
    }
    /// Why `a` cannot be a host's address here, if it cannot.
    pub fn refuse_host(self, a: Ipv4Addr) -> Option<String> {
        if !self.contains(a) {
            Some(format!("{a} is outside the subnet {self}"))
        } else if a == self.network {
            Some(format!("{a} is the network address of {self}"))
        } else if a == self.broadcast() {
            Some(format!("{a} is the broadcast address of {self}"))
        } else {
            None
        }
    }
    /// Host addresses from `first` to the last one, in order.
    pub fn hosts_from(self, first: Ipv4Addr) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(first)..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_know_their_hosts() {
        let n = Subnet::parse("10.0.0.0/24").unwrap();
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 0, 0, 255));
        assert!(
            n.refuse_host(Ipv4Addr::new(10, 0, 1, 1))
                .unwrap()
                .contains("outside")
        );
        assert!(
            n.refuse_host(Ipv4Addr::new(10, 0, 0, 0))
                .unwrap()
                .contains("network address")
        );
        assert!(
            n.refuse_host(Ipv4Addr::new(10, 0, 0, 255))
                .unwrap()
                .contains("broadcast")
        );
        assert_eq!(n.hosts_from(Ipv4Addr::new(10, 0, 0, 253)).count(), 2);
        assert!(
            Subnet::parse("10.0.0.1/24")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(Subnet::parse("10.0.0.0").is_err());
    }
}
