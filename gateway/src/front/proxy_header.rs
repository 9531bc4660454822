//! The PROXY protocol header (versions 1 and 2, as HAProxy specifies them) that a front such as
//! HAProxy, a cloud load balancer or Caddy puts before the HTTP bytes to name the client's
//! address. Read exactly, byte for byte, so nothing after it is consumed; bounded in size (the
//! caller bounds the time).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-byte signature of a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 header, CRLF included (the specification's bound).
pub const V1_MAX_LEN: usize = 107;
/// Longest version 2 address block plus TLVs accepted (the protocol allows 65535; fronts send a
/// few hundred bytes at most).
pub const V2_MAX_LEN: usize = 4096;

/// Why a PROXY header is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// Neither a version 1 nor a version 2 header.
    #[error("no PROXY protocol header")]
    Missing,
    /// A header that breaks the specification.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// Longer than this gateway accepts.
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    /// The connection failed or ended inside the header.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one PROXY header from the start of `stream`: `Some(source)` for a proxied TCP
/// connection, `None` where the header carries no client address (v2 LOCAL, such as a load
/// balancer's health check; v1 UNKNOWN; v2 UNSPEC or unix families).
pub async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    // 12 bytes tell the versions apart and never overrun: a v1 header is at least 15 bytes.
    let mut start = [0u8; 12];
    stream.read_exact(&mut start).await?;
    if start == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await?;
        let len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if len > V2_MAX_LEN {
            return Err(ProxyHeaderError::TooLong(16 + V2_MAX_LEN));
        }
        let mut block = vec![0u8; len];
        stream.read_exact(&mut block).await?;
        return parse_v2(fixed[0], fixed[1], &block);
    }
    if !start.starts_with(b"PROXY ") {
        return Err(ProxyHeaderError::Missing);
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX_LEN {
            return Err(ProxyHeaderError::TooLong(V1_MAX_LEN));
        }
        line.push(stream.read_u8().await?);
    }
    parse_v1(&line)
}

/// A version 2 header after its signature: version/command, family/protocol and the block.
pub fn parse_v2(
    version_command: u8,
    family: u8,
    block: &[u8],
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    if version_command >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed("version is not 2"));
    }
    match version_command & 0x0f {
        0 => return Ok(None), // LOCAL: the proxy's own connection.
        1 => {}
        _ => return Err(ProxyHeaderError::Malformed("unknown command")),
    }
    let short = ProxyHeaderError::Malformed("address block shorter than its family");
    match family >> 4 {
        // AF_INET: source, destination, source port, destination port.
        1 => {
            let b: &[u8; 12] = block
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Ok(Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([b[8], b[9]]),
            )))
        }
        // AF_INET6.
        2 => {
            let b: &[u8; 36] = block
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[..16]);
            let ip = Ipv6Addr::from(octets);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be_bytes([b[32], b[33]]),
            )))
        }
        // AF_UNSPEC and AF_UNIX carry no IP address.
        0 | 3 => Ok(None),
        _ => Err(ProxyHeaderError::Malformed("unknown address family")),
    }
}

/// A whole version 1 line, CRLF included.
pub fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let text = std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.strip_suffix("\r\n"))
        .ok_or(ProxyHeaderError::Malformed(
            "v1 line is not ASCII ending in CRLF",
        ))?;
    let mut parts = text.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(ProxyHeaderError::Missing);
    }
    let family = parts.next();
    if family == Some("UNKNOWN") {
        return Ok(None);
    }
    let fields: Vec<&str> = parts.collect();
    let [source, _destination, source_port, _destination_port] = fields[..] else {
        return Err(ProxyHeaderError::Malformed("v1 needs four fields"));
    };
    let ip: IpAddr = source
        .parse()
        .map_err(|_| ProxyHeaderError::Malformed("v1 source address"))?;
    let port: u16 = source_port
        .parse()
        .map_err(|_| ProxyHeaderError::Malformed("v1 source port"))?;
    match (family, ip) {
        (Some("TCP4"), IpAddr::V4(_)) | (Some("TCP6"), IpAddr::V6(_)) => {
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyHeaderError::Malformed(
            "v1 family does not match the address",
        )),
    }
}

/// A version 2 PROXY header for a TCP connection from `source` to `destination` (used by the
/// tests; fronts write their own).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                IpAddr::V6(ip) => ip,
            };
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let result = read(&mut cursor).await;
        let mut rest = Vec::new();
        cursor.read_to_end(&mut rest).await.unwrap();
        (result, rest)
    }

    #[tokio::test]
    async fn v2_names_the_source_and_leaves_the_request() {
        let source: SocketAddr = "203.0.113.7:51000".parse().unwrap();
        let mut bytes = encode_v2(source, "10.0.0.2:80".parse().unwrap());
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (result, rest) = read_all(&bytes).await;
        assert_eq!(result.unwrap(), Some(source));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");

        let source6: SocketAddr = "[2001:db8::7]:443".parse().unwrap();
        let bytes = encode_v2(source6, "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(read_all(&bytes).await.0.unwrap(), Some(source6));
    }

    #[tokio::test]
    async fn v2_local_tlvs_and_limits() {
        // LOCAL with an UNSPEC block and a TLV: no client address.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x03, 0x04, 0x00, 0x00]);
        local.extend_from_slice(b"rest");
        let (result, rest) = read_all(&local).await;
        assert_eq!(result.unwrap(), None);
        assert_eq!(rest, b"rest");
        // Declared longer than accepted.
        let mut long = V2_SIGNATURE.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(
            read_all(&long).await.0,
            Err(ProxyHeaderError::TooLong(_))
        ));
        // Version 1 in the version nibble, a family block too short, a truncated header.
        assert!(parse_v2(0x11, 0x11, &[0; 12]).is_err());
        assert!(parse_v2(0x21, 0x11, &[0; 11]).is_err());
        assert!(parse_v2(0x21, 0x21, &[0; 12]).is_err());
        let mut cut = V2_SIGNATURE.to_vec();
        cut.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c, 1, 2]);
        assert!(matches!(
            read_all(&cut).await.0,
            Err(ProxyHeaderError::Io(_))
        ));
    }

    #[tokio::test]
    async fn v1_lines() {
        let (result, rest) = read_all(b"PROXY TCP4 198.51.100.22 10.0.0.2 35646 80\r\nGET /").await;
        assert_eq!(
            result.unwrap(),
            Some("198.51.100.22:35646".parse().unwrap())
        );
        assert_eq!(rest, b"GET /");
        let (result, _) = read_all(b"PROXY TCP6 2001:db8::9 ::1 1 2\r\n").await;
        assert_eq!(result.unwrap(), Some("[2001:db8::9]:1".parse().unwrap()));
        assert_eq!(read_all(b"PROXY UNKNOWN\r\n").await.0.unwrap(), None);
        for bad in [
            &b"PROXY TCP4 198.51.100.22 10.0.0.2 35646\r\n"[..],
            b"PROXY TCP6 198.51.100.22 10.0.0.2 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
        ] {
            assert!(matches!(
                read_all(bad).await.0,
                Err(ProxyHeaderError::Malformed(_))
            ));
        }
        let endless = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            read_all(&endless).await.0,
            Err(ProxyHeaderError::TooLong(V1_MAX_LEN))
        ));
        assert!(matches!(
            read_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.0,
            Err(ProxyHeaderError::Missing)
        ));
    }
}
