//! Stream targets: an IPv4 or IPv6 address or a domain name, plus a port. The address types use
//! the SOCKS5 numbering (1, 4, 3) so a SOCKS5 front end can pass them through unchanged.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, BytesMut};

use crate::frame::{DecodeError, Field};
use crate::reader::Reader;

const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// The longest domain name a target may carry (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;

/// A host: an IP address or a domain name that the gateway resolves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
    /// A domain name: 1 to 255 bytes of letters, digits, `-`, `_` and `.`-separated labels of at
    /// most 63 bytes each.
    Domain(String),
}

/// Where a stream (or a datagram) goes: a host and a non-zero port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetAddr {
    /// The host.
    pub addr: Address,
    /// The port; never 0 on the wire.
    pub port: u16,
}

impl TargetAddr {
    /// A target for a domain name, checked with the same rules the decoder applies.
    pub fn domain(name: impl Into<String>, port: u16) -> Result<Self, DecodeError> {
        let name = name.into();
        validate_domain(&name)?;
        if port == 0 {
            return Err(DecodeError::ZeroPort);
        }
        Ok(TargetAddr {
            addr: Address::Domain(name),
            port,
        })
    }

    /// A target for a socket address. Port 0 is not a valid target.
    pub fn socket(addr: SocketAddr) -> Result<Self, DecodeError> {
        if addr.port() == 0 {
            return Err(DecodeError::ZeroPort);
        }
        let host = match addr {
            SocketAddr::V4(v4) => Address::Ipv4(*v4.ip()),
            SocketAddr::V6(v6) => Address::Ipv6(*v6.ip()),
        };
        Ok(TargetAddr {
            addr: host,
            port: addr.port(),
        })
    }

    /// Checks the rules the decoder applies (domain syntax, non-zero port), for targets built
    /// field by field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if let Address::Domain(d) = &self.addr {
            validate_domain(d)?;
        }
        if self.port == 0 {
            return Err(DecodeError::ZeroPort);
        }
        Ok(())
    }

    /// The socket address, when the host is an IP address.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match &self.addr {
            Address::Ipv4(ip) => Some(SocketAddr::from((*ip, self.port))),
            Address::Ipv6(ip) => Some(SocketAddr::from((*ip, self.port))),
            Address::Domain(_) => None,
        }
    }

    /// Bytes this target takes on the wire.
    pub fn encoded_len(&self) -> usize {
        1 + match &self.addr {
            Address::Ipv4(_) => 4,
            Address::Ipv6(_) => 16,
            Address::Domain(d) => 1 + domain_wire(d).len(),
        } + 2
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match &self.addr {
            Address::Ipv4(ip) => {
                buf.put_u8(ATYP_IPV4);
                buf.put_slice(&ip.octets());
            }
            Address::Ipv6(ip) => {
                buf.put_u8(ATYP_IPV6);
                buf.put_slice(&ip.octets());
            }
            Address::Domain(d) => {
                let name = domain_wire(d);
                buf.put_u8(ATYP_DOMAIN);
                buf.put_u8(name.len() as u8);
                buf.put_slice(name);
            }
        }
        buf.put_u16(self.port);
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let addr = match r.u8(Field::AddressType)? {
            ATYP_IPV4 => Address::Ipv4(Ipv4Addr::from(r.fixed::<4>(Field::Address)?)),
            ATYP_IPV6 => Address::Ipv6(Ipv6Addr::from(r.fixed::<16>(Field::Address)?)),
            ATYP_DOMAIN => {
                let raw = r.bytes8(Field::Domain, 1, MAX_DOMAIN_LEN)?;
                let name = std::str::from_utf8(&raw)
                    .map_err(|_| DecodeError::BadDomain)?
                    .to_owned();
                validate_domain(&name)?;
                Address::Domain(name)
            }
            other => return Err(DecodeError::BadAddressType(other)),
        };
        let port = r.u16(Field::Port)?;
        if port == 0 {
            return Err(DecodeError::ZeroPort);
        }
        Ok(TargetAddr { addr, port })
    }
}

/// The bytes of a domain as encoded: a name built by hand past the 255-byte limit is cut so
/// the frame stays well formed (the peer then refuses the name, not the framing).
fn domain_wire(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(MAX_DOMAIN_LEN)]
}

fn validate_domain(name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || name.len() > MAX_DOMAIN_LEN {
        return Err(DecodeError::BadDomain);
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(DecodeError::BadDomain)
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Address::Ipv4(ip) => write!(f, "{ip}:{}", self.port),
            Address::Ipv6(ip) => write!(f, "[{ip}]:{}", self.port),
            Address::Domain(d) => write!(f, "{d}:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_rules() {
        assert!(TargetAddr::domain("example.com", 443).is_ok());
        assert!(TargetAddr::domain("_dns.x-y.example", 53).is_ok());
        for bad in [
            "",
            ".",
            "a..b",
            "a.",
            "-ok-but space",
            "ümlaut.de",
            &"a".repeat(64),
        ] {
            assert_eq!(
                TargetAddr::domain(bad, 80),
                Err(DecodeError::BadDomain),
                "{bad:?}"
            );
        }
        assert_eq!(
            TargetAddr::domain("ok.example", 0),
            Err(DecodeError::ZeroPort)
        );
    }

    #[test]
    fn display() {
        let v6 = TargetAddr::socket("[::1]:8080".parse().unwrap()).unwrap();
        assert_eq!(v6.to_string(), "[::1]:8080");
    }
}
