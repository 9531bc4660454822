//! The gateway as TLS client of a `tls://` fallback (the local web server's own TLS listener).
//!
//! The server is on the same machine or network and is reached at an address the operator
//! configured, so its certificate is not verified (handshake signatures still are). What
//! matters is that the server sees the client's SNI and ALPN, so it picks the same server
//! block and protocol as for a direct connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use httvps_tls_verify::CertificatePolicy;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the client's own TLS handshake with the gateway asked for, offered to the fallback
/// in turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The client's SNI; without one, none is sent (the server's default server block
    /// answers, as it would directly).
    pub server_name: Option<String>,
    /// The ALPN protocol negotiated with the client; without one, none is offered.
    pub alpn: Option<Vec<u8>>,
}

impl ClientTls {
    /// What `conn` (an accepted TLS connection) negotiated.
    pub fn of(conn: &rustls::ServerConnection) -> ClientTls {
        ClientTls {
            server_name: conn.server_name().map(str::to_owned),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        }
    }
}

/// The client configuration shared by every connection to a `tls://` fallback: TLS 1.3 and
/// 1.2, session resumption (rustls's default cache), no certificate verification.
pub fn config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let config = httvps_tls_verify::client_config(provider, CertificatePolicy::Any)?;
    Ok(Arc::new(config))
}

/// A TLS handshake over `tcp` offering `client`'s SNI and ALPN.
pub async fn connect(
    config: Arc<ClientConfig>,
    tcp: TcpStream,
    client: Option<&ClientTls>,
) -> io::Result<TlsStream<TcpStream>> {
    let alpn = client.and_then(|c| c.alpn.clone());
    let config = match alpn {
        // ALPN is per configuration in rustls; a copy is cheap next to a handshake.
        Some(protocol) => {
            let mut with_alpn = (*config).clone();
            with_alpn.alpn_protocols = vec![protocol];
            Arc::new(with_alpn)
        }
        None => config,
    };
    // An IP address as server name makes rustls send no SNI.
    let no_sni = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let name = client
        .and_then(|c| c.server_name.as_deref())
        .and_then(|sni| ServerName::try_from(sni.to_owned()).ok())
        .unwrap_or(no_sni);
    TlsConnector::from(config).connect(name, tcp).await
}
