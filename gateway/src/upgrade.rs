//! The WebSocket upgrade on the secret path (SPEC §2.2). A request that fails any check is not
//! an error: the listener answers it like any other request to the decoy site.

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use httvps_proto::SUBPROTOCOL;
use subtle::ConstantTimeEq;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::decoy::Body;

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
    /// `Sec-WebSocket-Protocol` is present and does not list `httvps.v1`.
    Subprotocol,
}

/// Checks every rule of SPEC §2.2 and returns the `Sec-WebSocket-Accept` value.
pub fn check<B>(req: &Request<B>, secret_path: &str) -> Result<String, NotUpgrade> {
    if req.method() != Method::GET || req.version() != Version::HTTP_11 {
        return Err(NotUpgrade::Method);
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or("", |pq| pq.as_str())
        .as_bytes();
    // Compared in constant time so response timing does not reveal how much of a guess matched.
    let path_ok: bool = target.ct_eq(secret_path.as_bytes()).into();
    if !path_ok {
        return Err(NotUpgrade::Path);
    }
    let headers = req.headers();
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(NotUpgrade::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        != Some("13")
    {
        return Err(NotUpgrade::Version);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.as_bytes().trim_ascii(),
        _ => return Err(NotUpgrade::Key),
    };
    if !is_valid_key(key) {
        return Err(NotUpgrade::Key);
    }
    // A client whose link carries no subprotocol token offers none (SPEC §2.2).
    if offers_subprotocol(req) && !has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL) {
        return Err(NotUpgrade::Subprotocol);
    }
    Ok(derive_accept_key(key))
}

/// Whether the request carries `Sec-WebSocket-Protocol` at all.
pub fn offers_subprotocol<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL)
}

/// The 101 response completing the handshake, without extensions (permessage-deflate stays
/// off, SPEC §2.2); it echoes the subprotocol only to a client that offered it.
pub fn switching_protocols(accept: &str, server: &str, echo_subprotocol: bool) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(server) {
        headers.insert(header::SERVER, v);
    }
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = header::HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if echo_subprotocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// Whether any of the comma-separated values of `name` equals `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
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

    fn request(path: &str, protocol: Option<&str>) -> Request<()> {
        let mut b = Request::builder()
            .method("GET")
            .uri(path)
            .header("Host", "example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13");
        if let Some(p) = protocol {
            b = b.header("Sec-WebSocket-Protocol", p);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn accepts_only_the_exact_upgrade() {
        let ok = check(&request("/httvps", Some("chat, httvps.v1")), "/httvps");
        assert_eq!(ok.as_deref(), Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(
            check(&request("/httvps?x=1", Some("httvps.v1")), "/httvps"),
            Err(NotUpgrade::Path)
        );
        assert_eq!(
            check(&request("/other", Some("httvps.v1")), "/httvps"),
            Err(NotUpgrade::Path)
        );
        // No subprotocol offered: accepted, and none is echoed.
        assert!(check(&request("/httvps", None), "/httvps").is_ok());
        assert!(!offers_subprotocol(&request("/httvps", None)));
        let response = switching_protocols("x", "nginx", false);
        assert!(!response
            .headers()
            .contains_key(header::SEC_WEBSOCKET_PROTOCOL));
        assert_eq!(
            check(&request("/httvps", Some("httvps.v2")), "/httvps"),
            Err(NotUpgrade::Subprotocol)
        );
        let mut bad_key = request("/httvps", Some("httvps.v1"));
        bad_key
            .headers_mut()
            .insert("Sec-WebSocket-Key", "c2hvcnQ=".parse().unwrap());
        assert_eq!(check(&bad_key, "/httvps"), Err(NotUpgrade::Key));
        let mut post = request("/httvps", Some("httvps.v1"));
        *post.method_mut() = Method::POST;
        assert_eq!(check(&post, "/httvps"), Err(NotUpgrade::Method));
    }
}
