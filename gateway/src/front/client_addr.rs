//! Which address a request comes from when the gateway sits behind a front: the front's own
//! address unless the front is trusted, and then the address it names, in a PROXY header or in
//! `X-Forwarded-For` (the rightmost hop that is not itself a trusted proxy) or `X-Real-IP`.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::upgrade::Forwarded;

/// Hops of `X-Forwarded-For` examined at most, from the right.
const MAX_HOPS: usize = 32;

/// The direct peer of a plain-listener connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A unix-socket peer (a front on the same host: trusted).
    Unix,
}

impl Peer {
    /// The address used for this peer when nothing names the client: a unix-socket peer has
    /// none, so it is `0.0.0.0:0`.
    pub fn addr(self) -> SocketAddr {
        match self {
            Peer::Tcp(addr) => addr,
            Peer::Unix => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

/// The `--trusted-proxies` networks.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts these networks (and unix-socket peers).
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies { nets }
    }

    /// Whether the peer may name the client's address.
    pub fn trusts_peer(&self, peer: Peer) -> bool {
        match peer {
            Peer::Unix => true,
            Peer::Tcp(addr) => self.trusts(addr.ip()),
        }
    }

    /// Whether an address is in a trusted network (IPv4-mapped IPv6 counts as IPv4).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client named by the forwarding headers of a request from a trusted hop: the
    /// rightmost `X-Forwarded-For` entry that is not a trusted proxy (the leftmost if all
    /// are), else `X-Real-IP`. `None` when neither names a valid address.
    pub fn client_from_headers(&self, headers: &Forwarded) -> Option<IpAddr> {
        let forwarded: Vec<&str> = headers
            .forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        if !forwarded.is_empty() {
            let mut nearest_trusted = None;
            for hop in forwarded.iter().rev().take(MAX_HOPS) {
                // An entry that is not an address ends the chain: what lies left of it cannot
                // be attributed to anyone trusted.
                let ip = parse_hop(hop)?;
                if !self.trusts(ip) {
                    return Some(ip.to_canonical());
                }
                nearest_trusted = Some(ip.to_canonical());
            }
            return nearest_trusted;
        }
        match headers.real_ip.as_slice() {
            [value] => parse_hop(value.trim()).map(|ip| ip.to_canonical()),
            _ => None,
        }
    }
}

/// `IP`, `IPv4:port` or `[IPv6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> Forwarded {
        let mut forwarded = Forwarded::default();
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "x-forwarded-for" => forwarded.forwarded_for.push((*value).to_owned()),
                "x-real-ip" => forwarded.real_ip.push((*value).to_owned()),
                other => panic!("{other}"),
            }
        }
        forwarded
    }

    #[test]
    fn peers_are_trusted_by_network_and_unix_sockets_always() {
        let t = trusted(&["10.0.0.0/8", "::1/128"]);
        assert!(t.trusts_peer(Peer::Unix));
        assert!(t.trusts_peer(Peer::Tcp("10.1.2.3:4".parse().unwrap())));
        assert!(t.trusts_peer(Peer::Tcp("[::ffff:10.1.2.3]:4".parse().unwrap())));
        assert!(t.trusts_peer(Peer::Tcp("[::1]:4".parse().unwrap())));
        assert!(!t.trusts_peer(Peer::Tcp("192.0.2.1:4".parse().unwrap())));
        assert!(!TrustedProxies::default().trusts_peer(Peer::Tcp("10.1.2.3:4".parse().unwrap())));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8"]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A client spoofing a hop to the left does not matter.
        let h = headers(&[("X-Forwarded-For", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(t.client_from_headers(&h), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("X-Forwarded-For", "1.1.1.1"),
            ("X-Forwarded-For", "203.0.113.9:5555, 10.0.0.5"),
        ]);
        assert_eq!(t.client_from_headers(&h), ip("203.0.113.9"));
        let h = headers(&[("X-Forwarded-For", "[2001:db8::5]:1, 10.0.0.5")]);
        assert_eq!(t.client_from_headers(&h), ip("2001:db8::5"));
        // Only trusted hops: the leftmost.
        let h = headers(&[("X-Forwarded-For", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(t.client_from_headers(&h), ip("10.9.9.9"));
        // Garbage right of any client: no address from the headers.
        let h = headers(&[("X-Forwarded-For", "203.0.113.9, unknown")]);
        assert_eq!(t.client_from_headers(&h), None);
        // X-Real-IP when there is no X-Forwarded-For; two of them are ambiguous.
        let h = headers(&[("X-Real-IP", "198.51.100.4")]);
        assert_eq!(t.client_from_headers(&h), ip("198.51.100.4"));
        let h = headers(&[("X-Real-IP", "198.51.100.4"), ("X-Real-IP", "1.1.1.1")]);
        assert_eq!(t.client_from_headers(&h), None);
        assert_eq!(t.client_from_headers(&Forwarded::default()), None);
    }
}
