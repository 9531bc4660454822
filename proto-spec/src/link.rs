//! Connection links (SPEC §14): everything a client needs in one string, given to the user once
//! (as text or a QR code). The control plane writes them; the SDK reads them.
//!
//! ```text
//! httvps://DEVICE_ID:TOKEN@HOST[:PORT][/PATH][?fp=SHA256HEX&sni=NAME&proto=TOKEN&name=LABEL]
//! ```

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// The link scheme.
pub const SCHEME: &str = "httvps://";
/// The WebSocket path when a link has none.
pub const DEFAULT_PATH: &str = "/httvps";
/// Longest WebSocket subprotocol token a link may carry.
pub const MAX_SUBPROTOCOL_LEN: usize = 64;

// Userinfo and query values: escape everything that would end or split the component.
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'+');

/// A parsed connection link.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionLink {
    /// The device id sent in HELLO.
    pub device_id: String,
    /// The device token sent in HELLO.
    pub token: String,
    /// The gateway's host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The gateway's port.
    pub port: u16,
    /// The secret WebSocket path, starting with `/`.
    pub path: String,
    /// SHA-256 of the gateway's DER leaf certificate, to pin.
    pub fingerprint: Option<[u8; 32]>,
    /// TLS server name and HTTP Host to use instead of `host`.
    pub sni: Option<String>,
    /// The deployment's WebSocket subprotocol token (SPEC §2.2): offered in
    /// `Sec-WebSocket-Protocol` and required in the answer. `None`: no subprotocol at all.
    pub subprotocol: Option<String>,
    /// A display label.
    pub name: Option<String>,
}

impl fmt::Debug for ConnectionLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLink")
            .field("device_id", &self.device_id)
            .field("token", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("sni", &self.sni)
            .field("subprotocol", &self.subprotocol)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a connection link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// It does not start with `httvps://`.
    #[error("a connection link starts with httvps://")]
    Scheme,
    /// No `DEVICE_ID:TOKEN@` part.
    #[error("the link has no DEVICE_ID:TOKEN@ credentials")]
    Credentials,
    /// Empty or malformed host.
    #[error("the link has no valid host")]
    Host,
    /// A port that is not 1..=65535.
    #[error("the link's port is not a number from 1 to 65535")]
    Port,
    /// `fp` is not 64 hex digits.
    #[error("fp must be 64 hex digits (SHA-256 of the certificate)")]
    Fingerprint,
    /// `proto` is not an HTTP token of 1 to 64 characters.
    #[error(
        "proto must be a WebSocket subprotocol token: 1 to 64 letters, digits or !#$%&'*+-.^_`|~"
    )]
    Subprotocol,
    /// A percent-escape that is not UTF-8.
    #[error("the link's {0} is not valid UTF-8 after percent-decoding")]
    Encoding(&'static str),
}

fn decode(s: &str, what: &'static str) -> Result<String, LinkError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| LinkError::Encoding(what))
}

fn parse_fingerprint(hex: &str) -> Result<[u8; 32], LinkError> {
    if hex.len() != 64 {
        return Err(LinkError::Fingerprint);
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or(LinkError::Fingerprint)?, 16)
            .map_err(|_| LinkError::Fingerprint)?;
    }
    Ok(out)
}

/// Whether `token` is a valid `Sec-WebSocket-Protocol` value for a link: an HTTP token
/// (RFC 9110 `tchar`s) of 1 to [`MAX_SUBPROTOCOL_LEN`] bytes.
pub fn is_subprotocol_token(token: &str) -> bool {
    (1..=MAX_SUBPROTOCOL_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ConnectionLink {
    /// Parses a link. Unknown query parameters and any fragment are ignored.
    pub fn parse(link: &str) -> Result<Self, LinkError> {
        let rest = link.trim().strip_prefix(SCHEME).ok_or(LinkError::Scheme)?;
        let rest = rest.split('#').next().unwrap_or("");
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or(LinkError::Credentials)?;
        let (device_id, token) = userinfo.split_once(':').ok_or(LinkError::Credentials)?;
        let (device_id, token) = (decode(device_id, "device id")?, decode(token, "token")?);
        if device_id.is_empty() || token.is_empty() {
            return Err(LinkError::Credentials);
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(LinkError::Host)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(LinkError::Host);
            }
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(LinkError::Host),
            };
            (host.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@[]".contains(c)) {
            return Err(LinkError::Host);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(LinkError::Port)?,
            None => 443,
        };
        let path = if path.is_empty() || path == "/" {
            DEFAULT_PATH.to_owned()
        } else {
            path.to_owned()
        };
        let mut link = ConnectionLink {
            device_id,
            token,
            host,
            port,
            path,
            fingerprint: None,
            sni: None,
            subprotocol: None,
            name: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "fp" => link.fingerprint = Some(parse_fingerprint(value)?),
                "sni" => link.sni = Some(decode(value, "sni")?).filter(|s| !s.is_empty()),
                "proto" => {
                    let token = decode(value, "proto")?;
                    if !is_subprotocol_token(&token) {
                        return Err(LinkError::Subprotocol);
                    }
                    link.subprotocol = Some(token);
                }
                "name" => link.name = Some(decode(value, "name")?).filter(|s| !s.is_empty()),
                _ => {}
            }
        }
        Ok(link)
    }

    /// The WebSocket URL to connect to: no credentials, no query.
    pub fn websocket_url(&self) -> String {
        format!("wss://{}:{}{}", self.host_for_url(), self.port, self.path)
    }

    /// The TLS server name: `sni` when given, else the host.
    pub fn server_name(&self) -> &str {
        self.sni.as_deref().unwrap_or(&self.host)
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for ConnectionLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}:{}@{}:{}{}",
            utf8_percent_encode(&self.device_id, COMPONENT),
            utf8_percent_encode(&self.token, COMPONENT),
            self.host_for_url(),
            self.port,
            self.path
        )?;
        let mut sep = '?';
        if let Some(fp) = &self.fingerprint {
            write!(f, "{sep}fp=")?;
            for b in fp {
                write!(f, "{b:02x}")?;
            }
            sep = '&';
        }
        if let Some(sni) = &self.sni {
            write!(f, "{sep}sni={}", utf8_percent_encode(sni, COMPONENT))?;
            sep = '&';
        }
        if let Some(proto) = &self.subprotocol {
            write!(f, "{sep}proto={}", utf8_percent_encode(proto, COMPONENT))?;
            sep = '&';
        }
        if let Some(name) = &self.name {
            write!(f, "{sep}name={}", utf8_percent_encode(name, COMPONENT))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let s = "httvps://dev_7Kq2:XxxfHF8cXxxfHF8cXxxfHF8cXxxfHF8cXxxfHF8cXxw@vpn.example.com:443/s3cr3t-Qm9vdA?fp=60a3fc80cd8d087bc8168f6570269dc500863b337424a07aa71b9a104dc25c7f&sni=vpn.example.com&name=Laptop";
        let link = ConnectionLink::parse(s).unwrap();
        assert_eq!(link.device_id, "dev_7Kq2");
        assert_eq!(link.token.len(), 43);
        assert_eq!(
            (link.host.as_str(), link.port, link.path.as_str()),
            ("vpn.example.com", 443, "/s3cr3t-Qm9vdA")
        );
        assert_eq!(link.fingerprint.unwrap()[0], 0x60);
        assert_eq!(link.name.as_deref(), Some("Laptop"));
        assert_eq!(
            link.websocket_url(),
            "wss://vpn.example.com:443/s3cr3t-Qm9vdA"
        );
        assert_eq!(link.to_string(), s);
        assert!(
            !format!("{link:?}").contains("XxxfHF8c"),
            "Debug never shows the token"
        );
    }

    #[test]
    fn defaults_ipv6_and_escaping_round_trip() {
        let link = ConnectionLink::parse("httvps://d:t@[2001:db8::1]").unwrap();
        assert_eq!(
            (link.host.as_str(), link.port, link.path.as_str()),
            ("2001:db8::1", 443, "/httvps")
        );
        assert_eq!(link.websocket_url(), "wss://[2001:db8::1]:443/httvps");
        let odd = ConnectionLink {
            name: Some("Mia's phone & tablet".into()),
            device_id: "a:b@c".into(),
            ..link
        };
        assert_eq!(ConnectionLink::parse(&odd.to_string()).unwrap(), odd);
    }

    #[test]
    fn refusals_are_specific() {
        assert_eq!(
            ConnectionLink::parse("https://d:t@h"),
            Err(LinkError::Scheme)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://h:443/x"),
            Err(LinkError::Credentials)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:t@:443"),
            Err(LinkError::Host)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:t@h:0"),
            Err(LinkError::Port)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:t@h:99999"),
            Err(LinkError::Port)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:t@h?fp=abc"),
            Err(LinkError::Fingerprint)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:t@[nothex]:1"),
            Err(LinkError::Host)
        );
        assert_eq!(
            ConnectionLink::parse("httvps://d:%ff@h"),
            Err(LinkError::Encoding("token"))
        );
        for bad in ["", "a%20b", "a,b", "x/y", &"a".repeat(65)] {
            assert_eq!(
                ConnectionLink::parse(&format!("httvps://d:t@h?proto={bad}")),
                Err(LinkError::Subprotocol),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_subprotocol_token_is_optional_and_round_trips() {
        let without = ConnectionLink::parse("httvps://d:t@h/p").unwrap();
        assert_eq!(without.subprotocol, None);
        assert!(!without.to_string().contains("proto="));
        let s = "httvps://d:t@h:443/p?fp=60a3fc80cd8d087bc8168f6570269dc500863b337424a07aa71b9a104dc25c7f&sni=vpn.example.com&proto=k7Qz-x.9_ab&name=Laptop";
        let with = ConnectionLink::parse(s).unwrap();
        assert_eq!(with.subprotocol.as_deref(), Some("k7Qz-x.9_ab"));
        assert_eq!(with.to_string(), s);
        // Still never part of the URL the client requests.
        assert_eq!(with.websocket_url(), "wss://h:443/p");
        assert!(is_subprotocol_token("httvps.v1"));
        assert!(!is_subprotocol_token("a b"));
    }
}
