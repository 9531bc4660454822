//! The first step of a connection on the public port: a TLS handshake, or, when the first byte
//! is not a TLS handshake record (plain HTTP sent to the HTTPS port), the raw bytes to the web
//! server's own TLS port so its answer is the real one.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::server::Acceptor;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};
use tokio_util::sync::CancellationToken;

use crate::fallback::{self, Fallback};
use crate::tls::acme;

/// The content type of a TLS handshake record: every ClientHello starts with it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Completes the TLS handshake before `deadline`. Anything else (timeout, a failed handshake,
/// a connection that is not TLS) is dealt with here and gives `None`: a timeout closes
/// without a word (nginx closes quietly during a handshake), a failed handshake has rustls's
/// alert already sent, plain bytes go to `raw_fallback` or are closed on. With `challenges`
/// (certificates from ACME), the CA's validation gets the validation certificate and every
/// other ClientHello `config`.
pub async fn accept(
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    challenges: Option<acme::Challenges>,
    deadline: Instant,
    raw_fallback: Option<&Fallback>,
    drain: &CancellationToken,
) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(_) => return None,
        Err(_) => {
            tracing::debug!(%peer, "no ClientHello in time");
            return None;
        }
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        // peek left the bytes in the socket: the web server reads them as if it had accepted.
        if let Some(raw) = raw_fallback {
            match raw.connect(None).await {
                Ok(upstream) => {
                    let end = fallback::relay(tcp, &[], upstream, drain).await;
                    tracing::trace!(%peer, ?end, "plain bytes on the TLS port relayed");
                }
                Err(e) => tracing::debug!(%peer, error = %e, "plain bytes on the TLS port"),
            }
        }
        return None;
    }
    let handshake = async {
        match challenges {
            None => TlsAcceptor::from(config).accept(tcp).await,
            Some(challenges) => {
                let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
                match challenges.config_for(start.client_hello()) {
                    Some(challenge) => {
                        tracing::debug!(%peer, "ACME TLS-ALPN-01 validation");
                        start.into_stream(challenge).await
                    }
                    None => start.into_stream(config).await,
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
