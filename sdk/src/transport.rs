//! TCP, then TLS (pinned or web PKI), then the WebSocket upgrade, with the deployment's
//! subprotocol token when the link carries one (SPEC §2.2). Credentials never go into the URL;
//! they go into HELLO.

use std::sync::Arc;

use httvps_tls_verify::CertificatePolicy;
use rustls::pki_types::ServerName;
use rustls::CipherSuite;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use crate::config::{GatewayEndpoint, Trust};
use crate::error::Error;

/// The WebSocket over TLS over TCP that carries one session.
pub(crate) type Ws = WebSocketStream<TlsStream<BufReader<TcpStream>>>;

/// Bytes read from the socket at once under TLS. rustls asks for 4 KiB per read, so a 16 KiB
/// record took four or five read calls; a buffer below it makes that one call per 64 KiB.
const TCP_READ_BUFFER: usize = 64 * 1024;
/// tungstenite zero-fills this much of its buffer before every read (128 KiB by default) while
/// a read yields what TLS has decrypted, often one 16 KiB record: most of the filling was wasted
/// (8 % of the client's CPU in a download). A frame of 32 KiB still takes two reads.
const WS_READ_BUFFER: usize = 32 * 1024;

fn tls_config(trust: &Trust) -> Result<rustls::ClientConfig, Error> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // AES-128-GCM first, as browsers offer it (rustls starts with AES-256-GCM): the server
    // follows the client's order, and AES-128 costs less per byte for the same AEAD.
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    let tls_error = |e: rustls::Error| Error::Config(format!("TLS: {e}"));
    let mut config = match trust {
        Trust::WebPki => {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .map_err(tls_error)?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        Trust::Pinned(fingerprint) => {
            httvps_tls_verify::client_config(provider, CertificatePolicy::Pinned(*fingerprint))
                .map_err(tls_error)?
        }
    };
    // Look like a browser speaking HTTP/1.1 before the upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Connects to the gateway and completes the WebSocket upgrade.
pub(crate) async fn connect(gateway: &GatewayEndpoint, max_message: usize) -> Result<Ws, Error> {
    let unreachable = |what: &str, e: &dyn std::fmt::Display| {
        Error::Unreachable(format!("{gateway}: {what}: {e}"))
    };
    let tcp = TcpStream::connect((gateway.host.as_str(), gateway.port))
        .await
        .map_err(|e| unreachable("TCP", &e))?;
    let _ = tcp.set_nodelay(true);
    let connector = TlsConnector::from(Arc::new(tls_config(&gateway.trust)?));
    let name = ServerName::try_from(gateway.server_name().to_owned())
        .map_err(|e| Error::Config(format!("server name {:?}: {e}", gateway.server_name())))?;
    let tls = connector
        .connect(name, BufReader::with_capacity(TCP_READ_BUFFER, tcp))
        .await
        .map_err(|e| unreachable("TLS", &e))?;
    let host = if gateway.server_name().contains(':') {
        format!("[{}]", gateway.server_name())
    } else {
        gateway.server_name().to_owned()
    };
    let url = format!("wss://{host}:{}{}", gateway.port, gateway.path);
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::Config(format!("gateway URL: {e}")))?;
    if let Some(token) = &gateway.subprotocol {
        let value = HeaderValue::from_str(token)
            .map_err(|_| Error::Config(format!("subprotocol {token:?} is not a header value")))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, tls, Some(ws_config))
        .await
        .map_err(|e| unreachable("WebSocket upgrade", &e))?;
    check_subprotocol(
        gateway.subprotocol.as_deref(),
        response.headers().get("Sec-WebSocket-Protocol"),
    )
    .map_err(|why| Error::Unreachable(format!("{gateway}: {why}")))?;
    Ok(ws)
}

/// The 101 must echo exactly the token offered, or carry none when none was offered.
fn check_subprotocol(offered: Option<&str>, echoed: Option<&HeaderValue>) -> Result<(), String> {
    match (offered, echoed) {
        (None, None) => Ok(()),
        (Some(token), Some(echo)) if echo.as_bytes() == token.as_bytes() => Ok(()),
        (Some(token), _) => Err(format!("the server did not agree to subprotocol {token}")),
        (None, Some(_)) => Err("the server chose a subprotocol none was offered for".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echoed_subprotocol_must_match_the_offer() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(check_subprotocol(None, None).is_ok());
        assert!(check_subprotocol(Some("k7Qz"), Some(&v("k7Qz"))).is_ok());
        assert!(check_subprotocol(Some("k7Qz"), None).is_err());
        assert!(check_subprotocol(Some("k7Qz"), Some(&v("httvps.v1"))).is_err());
        assert!(check_subprotocol(None, Some(&v("httvps.v1"))).is_err());
    }

    #[test]
    fn aes_128_gcm_is_offered_first() {
        let config = tls_config(&Trust::Pinned([0; 32])).unwrap();
        let suites: Vec<CipherSuite> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(suites[0], CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert!(suites.contains(&CipherSuite::TLS13_AES_256_GCM_SHA384));
        assert!(suites.contains(&CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    }
}
