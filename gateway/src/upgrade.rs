//! The WebSocket upgrade on the secret path (SPEC §2.2). A request that fails any check is not
//! an error: the connection goes to the fallback web server like any other request.

use std::time::SystemTime;

use subtle::ConstantTimeEq;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Why a request is not a valid upgrade (for debug logs; the client never learns it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotUpgrade {
    /// Not `GET`, or not HTTP/1.1.
    Method,
    /// Another path, or a query string.
    Path,
    /// Missing or wrong `Upgrade`/`Connection` headers.
    NotWebSocket,
    /// `Sec-WebSocket-Version` other than 13.
    Version,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes.
    Key,
    /// `Sec-WebSocket-Protocol` does not list the deployment's subprotocol.
    Subprotocol,
}

/// A valid upgrade: what the 101 carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The subprotocol to echo (the deployment's, when one is configured).
    pub protocol: Option<String>,
    /// The forwarding headers, believed only from a trusted front ([`crate::front`]).
    pub forwarded: Forwarded,
}

/// The values of the forwarding headers of an upgrade, in order (bounded: a request head is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Every `X-Forwarded-For` line.
    pub forwarded_for: Vec<String>,
    /// Every `X-Real-IP` line.
    pub real_ip: Vec<String>,
}

impl Forwarded {
    fn from_headers(headers: &[httparse::Header<'_>]) -> Self {
        let lines = |name| {
            values(headers, name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        Forwarded {
            forwarded_for: lines("x-forwarded-for"),
            real_ip: lines("x-real-ip"),
        }
    }
}

/// Checks every rule of SPEC §2.2 on a parsed request head. `subprotocol`: the token the
/// client must list, if the deployment sets one.
pub fn check(
    req: &httparse::Request<'_, '_>,
    secret_path: &str,
    subprotocol: Option<&str>,
) -> Result<Upgrade, NotUpgrade> {
    if req.method != Some("GET") || req.version != Some(1) {
        return Err(NotUpgrade::Method);
    }
    let target = req.path.unwrap_or("").as_bytes();
    // Compared in constant time so timing does not reveal how much of a guess matched.
    let path_ok: bool = target.ct_eq(secret_path.as_bytes()).into();
    if !path_ok {
        return Err(NotUpgrade::Path);
    }
    let headers: &[httparse::Header<'_>] = req.headers;
    if !has_token(headers, "upgrade", "websocket") || !has_token(headers, "connection", "upgrade") {
        return Err(NotUpgrade::NotWebSocket);
    }
    let mut versions = values(headers, "sec-websocket-version");
    if versions.next().map(<[u8]>::trim_ascii) != Some(b"13") || versions.next().is_some() {
        return Err(NotUpgrade::Version);
    }
    let mut keys = values(headers, "sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.trim_ascii(),
        _ => return Err(NotUpgrade::Key),
    };
    if !is_valid_key(key) {
        return Err(NotUpgrade::Key);
    }
    let protocol = match subprotocol {
        Some(token) if has_token(headers, "sec-websocket-protocol", token) => {
            Some(token.to_owned())
        }
        Some(_) => return Err(NotUpgrade::Subprotocol),
        None => None,
    };
    Ok(Upgrade {
        accept: derive_accept_key(key),
        protocol,
        forwarded: Forwarded::from_headers(headers),
    })
}

/// The 101 response completing the handshake, without extensions (permessage-deflate stays
/// off, SPEC §2.2); headers in the order nginx sends a proxied 101.
pub fn switching_protocols(upgrade: &Upgrade, server: &str) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nServer: {server}\r\nDate: {}\r\n\
         Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n",
        httpdate::fmt_http_date(SystemTime::now()),
        upgrade.accept
    );
    if let Some(protocol) = &upgrade.protocol {
        head.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The values of every header called `name` (case-insensitive).
fn values<'h>(
    headers: &'h [httparse::Header<'_>],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Whether any of the comma-separated values of `name` equals `token` (case-insensitive).
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    values(headers, name)
        .flat_map(|v| v.split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Base64 (standard alphabet, padded) of exactly 16 bytes: 22 characters and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        // The last character before the padding carries only 2 significant bits.
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, protocol: Option<&str>, key: &str) -> String {
        let protocol = protocol.map_or(String::new(), |p| {
            format!("Sec-WebSocket-Protocol: {p}\r\n")
        });
        format!(
            "{method} {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\n{protocol}\r\n"
        )
    }

    fn checked(text: &str, subprotocol: Option<&str>) -> Result<Upgrade, NotUpgrade> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(text.as_bytes()).unwrap().is_complete());
        check(&req, "/httvps", subprotocol)
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn accepts_only_the_exact_upgrade() {
        let ok = checked(&request("GET", "/httvps", None, KEY), None).unwrap();
        assert_eq!(ok.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(ok.protocol, None, "nothing required, nothing echoed");
        let with = request("GET", "/httvps", Some("chat, x7.v1"), KEY);
        assert_eq!(
            checked(&with, Some("x7.v1")).unwrap().protocol.as_deref(),
            Some("x7.v1")
        );
        assert_eq!(
            checked(&request("GET", "/httvps", None, KEY), Some("x7.v1")),
            Err(NotUpgrade::Subprotocol)
        );
        assert_eq!(
            checked(
                &request("GET", "/httvps", Some("x7.v2"), KEY),
                Some("x7.v1")
            ),
            Err(NotUpgrade::Subprotocol)
        );
        assert_eq!(
            checked(&request("GET", "/httvps?x=1", None, KEY), None),
            Err(NotUpgrade::Path)
        );
        assert_eq!(
            checked(&request("GET", "/other", None, KEY), None),
            Err(NotUpgrade::Path)
        );
        assert_eq!(
            checked(&request("GET", "/httvps", None, "c2hvcnQ="), None),
            Err(NotUpgrade::Key)
        );
        assert_eq!(
            checked(&request("POST", "/httvps", None, KEY), None),
            Err(NotUpgrade::Method)
        );
    }

    #[test]
    fn the_101_echoes_only_a_configured_subprotocol() {
        let plain = Upgrade {
            accept: "abc=".into(),
            protocol: None,
            forwarded: Forwarded::default(),
        };
        let text = String::from_utf8(switching_protocols(&plain, "nginx")).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\nServer: nginx\r\nDate: "));
        assert!(
            text.ends_with("Sec-WebSocket-Accept: abc=\r\n\r\n"),
            "{text}"
        );
        let with = Upgrade {
            protocol: Some("x7.v1".into()),
            ..plain
        };
        let text = String::from_utf8(switching_protocols(&with, "nginx")).unwrap();
        assert!(
            text.ends_with("Sec-WebSocket-Protocol: x7.v1\r\n\r\n"),
            "{text}"
        );
    }
}
