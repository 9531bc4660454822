//! Target policy (SPEC §13.6): which destinations streams and datagrams may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Host names that reach cloud metadata services from inside a cloud.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Refuses loopback, private, link-local, CGNAT, metadata, unspecified, broadcast and multicast
/// destinations unless the operator allows them.
#[derive(Clone, Debug)]
pub struct TargetPolicy {
    allow_private: bool,
}

impl TargetPolicy {
    /// A policy; `allow_private` lifts every range restriction (tests, private deployments).
    pub fn new(allow_private: bool) -> Self {
        TargetPolicy { allow_private }
    }

    /// Whether restricted ranges are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether a stream may connect to this address.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_restricted(ip)
    }

    /// Whether a stream may name this host (metadata names are refused before resolution).
    pub fn allows_name(&self, name: &str) -> bool {
        if self.allow_private {
            return true;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        !METADATA_NAMES.contains(&name.as_str())
            && name != "localhost"
            && !name.ends_with(".localhost")
    }
}

/// Whether `ip` is in a range SPEC §13.6 restricts.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_restricted_v4(v4),
        IpAddr::V6(v6) => is_restricted_v6(v6),
    }
}

fn is_restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // 0.0.0.0/8
        || (a == 100 && (64..=127).contains(&b)) // 100.64.0.0/10 CGNAT
        || a >= 240 // reserved 240.0.0.0/4
}

fn is_restricted_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses are judged as IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_restricted_v4(v4);
    }
    let seg = ip.segments();
    if seg[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return is_restricted_v4(Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        ));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local, includes fd00:ec2::254
        || (seg[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_ranges() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
        ] {
            assert!(
                is_restricted(bad.parse().unwrap()),
                "{bad} should be restricted"
            );
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(
                !is_restricted(good.parse().unwrap()),
                "{good} should be allowed"
            );
        }
    }

    #[test]
    fn operator_may_allow_private_targets() {
        let strict = TargetPolicy::new(false);
        let open = TargetPolicy::new(true);
        let lo = "127.0.0.1".parse().unwrap();
        assert!(!strict.allows_ip(lo));
        assert!(open.allows_ip(lo));
        assert!(!strict.allows_name("metadata.google.internal."));
        assert!(!strict.allows_name("LOCALHOST"));
        assert!(strict.allows_name("example.com"));
    }
}
