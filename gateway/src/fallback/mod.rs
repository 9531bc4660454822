//! The fallback web server of standalone mode: connections that are not sessions are relayed
//! to it byte for byte, so every HTTP answer, keep-alive, timeout and error is that server's.
//!
//! A fallback that is down, slow or saturated never holds up anything else: connects have a
//! timeout, relays share a bounded number of permits, and a connection that cannot be relayed
//! is closed (what an overloaded web server does).
//!
//! A fallback at `tls://host:port` is the web server's own TLS listener: the gateway is its TLS
//! client ([`tls_client`]) with the client's SNI and ALPN, so the server picks the same server
//! block, and how the server closes (`close_notify`, or TCP ended quietly, or a reset) is seen
//! exactly and mirrored to the client. Over plain HTTP that close is guessed (one known
//! difference: nginx's lingering-close timeout).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::FallbackAddr;

pub mod tls_client;
pub use tls_client::ClientTls;

/// Read buffer of each relay direction (one TLS record's plaintext).
const RELAY_BUFFER: usize = 16 * 1024;

/// While draining, how long a relay must see no bytes (and no unanswered request) to count as
/// idle.
const DRAIN_IDLE_CHECK: Duration = Duration::from_millis(250);

/// Why a connection could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    /// Every relay permit is in use.
    #[error("all {0} fallback relays are in use")]
    Busy(usize),
    /// The fallback refused or could not be reached.
    #[error("connecting to the fallback {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// No connection within the connect timeout.
    #[error("the fallback {0} did not accept within the connect timeout")]
    Timeout(String),
    /// The TLS handshake with a `tls://` fallback failed.
    #[error("TLS handshake with the fallback {addr}: {source}")]
    Handshake {
        /// Where.
        addr: String,
        /// Why.
        source: io::Error,
    },
}

impl FallbackError {
    fn reason(&self) -> &'static str {
        match self {
            FallbackError::Busy(_) => "busy",
            FallbackError::Connect { .. } => "connect",
            FallbackError::Timeout(_) => "timeout",
            FallbackError::Handshake { .. } => "tls",
        }
    }
}

/// One fallback upstream: where it is and the relay permits it may take.
#[derive(Debug, Clone)]
pub struct Fallback {
    addr: FallbackAddr,
    /// `http` (decrypted requests) or `raw` (TCP bytes to its TLS port): the metric label.
    kind: &'static str,
    connect_timeout: Duration,
    permits: Arc<Semaphore>,
    max: usize,
    /// For a `tls://` fallback: the gateway's TLS client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Fallback {
    /// A fallback at `addr` that takes permits from `permits` (shared by all fallbacks of one
    /// gateway, `max` of them). Fails only if a `tls://` fallback's TLS client configuration
    /// cannot be built.
    pub fn new(
        addr: FallbackAddr,
        kind: &'static str,
        connect_timeout: Duration,
        permits: Arc<Semaphore>,
        max: usize,
    ) -> Result<Self, rustls::Error> {
        let tls = match addr {
            FallbackAddr::Tls(_) => Some(tls_client::config()?),
            FallbackAddr::Tcp(_) | FallbackAddr::Unix(_) => None,
        };
        Ok(Fallback {
            addr,
            kind,
            connect_timeout,
            permits,
            max,
            tls,
        })
    }

    /// Connects, or says why not (counted in `httvps_gateway_fallback_errors_total`). A
    /// `tls://` fallback is offered `client`'s SNI and ALPN (none when `None`).
    pub async fn connect(
        &self,
        client: Option<&ClientTls>,
    ) -> Result<FallbackStream, FallbackError> {
        let result = self.try_connect(client).await;
        if let Err(e) = &result {
            metrics::counter!(crate::metrics::FALLBACK_ERRORS_TOTAL,
                "fallback" => self.kind, "reason" => e.reason())
            .increment(1);
        }
        result
    }

    async fn try_connect(
        &self,
        client: Option<&ClientTls>,
    ) -> Result<FallbackStream, FallbackError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| FallbackError::Busy(self.max))?;
        let addr = || self.addr.to_string();
        let connect = async {
            let connect_err = |source| FallbackError::Connect {
                addr: addr(),
                source,
            };
            match &self.addr {
                FallbackAddr::Tcp(to) => {
                    let tcp = TcpStream::connect(to.as_str()).await.map_err(connect_err)?;
                    let _ = tcp.set_nodelay(true);
                    Ok(Upstream::Tcp(tcp))
                }
                FallbackAddr::Unix(path) => UnixStream::connect(path)
                    .await
                    .map(Upstream::Unix)
                    .map_err(connect_err),
                FallbackAddr::Tls(to) => {
                    let tcp = TcpStream::connect(to.as_str()).await.map_err(connect_err)?;
                    let _ = tcp.set_nodelay(true);
                    let handshake_err = |source| FallbackError::Handshake {
                        addr: addr(),
                        source,
                    };
                    // Built in `new` for a `tls://` address; built here only if it was not.
                    let config = match &self.tls {
                        Some(config) => config.clone(),
                        None => {
                            tls_client::config().map_err(|e| handshake_err(io::Error::other(e)))?
                        }
                    };
                    let tls = tls_client::connect(config, tcp, client)
                        .await
                        .map_err(handshake_err)?;
                    Ok(Upstream::Tls(Box::new(tls)))
                }
            }
        };
        let upstream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| FallbackError::Timeout(addr()))??;
        metrics::gauge!(crate::metrics::FALLBACK_CONNECTIONS, "fallback" => self.kind)
            .increment(1.0);
        Ok(FallbackStream {
            upstream,
            kind: self.kind,
            _permit: permit,
        })
    }
}

#[derive(Debug)]
enum Upstream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A connection to the fallback, holding its relay permit until dropped.
#[derive(Debug)]
pub struct FallbackStream {
    upstream: Upstream,
    kind: &'static str,
    _permit: OwnedSemaphorePermit,
}

impl FallbackStream {
    /// Whether the fallback's way of closing is seen exactly (TLS: `close_notify`, or not), so
    /// the relay mirrors it instead of guessing from the state of the HTTP exchange.
    pub fn close_is_exact(&self) -> bool {
        matches!(self.upstream, Upstream::Tls(_))
    }
}

impl Drop for FallbackStream {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::FALLBACK_CONNECTIONS, "fallback" => self.kind)
            .decrement(1.0);
    }
}

impl AsyncRead for FallbackStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.upstream {
            Upstream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Upstream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Upstream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for FallbackStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.upstream {
            Upstream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Upstream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Upstream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.upstream {
            Upstream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Upstream::Unix(s) => Pin::new(s).poll_flush(cx),
            Upstream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.upstream {
            Upstream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Upstream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Upstream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The fallback closed its side (a `tls://` fallback: with `close_notify`): the client got
    /// every byte and a clean close (for TLS, `close_notify`).
    FallbackClosed,
    /// A plain fallback closed while a request of the client was unanswered (it timed out
    /// reading the head or body): the client connection is dropped without `close_notify`,
    /// as nginx closes a timed-out TLS connection quietly. (A `tls://` fallback shows its
    /// quiet close itself, as [`RelayEnd::Failed`].)
    FallbackTimedOut,
    /// The client closed cleanly first; the fallback's answer was delivered to the end.
    ClientClosed,
    /// The gateway is draining and the connection was idle (no request unanswered, nothing
    /// moving): closed with `close_notify`, as nginx closes idle keep-alive connections when it
    /// shuts down gracefully.
    Drained,
    /// A read or write failed (a reset, or a TLS peer, client or `tls://` fallback, gone
    /// without `close_notify`): the client connection is dropped without a clean close, as
    /// nginx does after an error or a timeout.
    Failed,
}

/// Relays `client` and `upstream` both ways until the fallback is done, starting with `head`
/// (bytes already read from the client). The fallback decides when the connection ends: when
/// it closes, the client's side is shut down as the fallback closed (a `tls://` fallback:
/// `close_notify` only after its `close_notify`; a plain one: cleanly unless a request was
/// pending) and the relay stops; when the client closes, the fallback gets EOF and its answer
/// still goes through. Once `drain` is cancelled, the relay ends at the first idle moment.
pub async fn relay<C>(
    client: C,
    head: &[u8],
    mut upstream: FallbackStream,
    drain: &CancellationToken,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let close_is_exact = upstream.close_is_exact();
    // Whether the client sent bytes the fallback has not answered yet.
    let pending = AtomicBool::new(!head.is_empty());
    // Whether any bytes moved since the drain check last looked.
    let moved = AtomicBool::new(true);
    if upstream.write_all(head).await.is_err() {
        return RelayEnd::Failed;
    }
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let ending = {
        let down = pump(&mut upstream_read, &mut client_write, || {
            pending.store(false, Ordering::Relaxed);
            moved.store(true, Ordering::Relaxed);
        });
        let up = async {
            let copied = pump(&mut client_read, &mut upstream_write, || {
                pending.store(true, Ordering::Relaxed);
                moved.store(true, Ordering::Relaxed);
            })
            .await;
            // EOF to the fallback either way, so it finishes its answer and closes.
            let _ = upstream_write.shutdown().await;
            copied
        };
        let idle_after_drain = async {
            drain.cancelled().await;
            loop {
                moved.store(false, Ordering::Relaxed);
                tokio::time::sleep(DRAIN_IDLE_CHECK).await;
                if !moved.load(Ordering::Relaxed) && !pending.load(Ordering::Relaxed) {
                    return;
                }
            }
        };
        tokio::pin!(down, up);
        tokio::select! {
            down = &mut down => match down {
                Ok(()) if !close_is_exact && pending.load(Ordering::Relaxed) => {
                    RelayEnd::FallbackTimedOut
                }
                Ok(()) => RelayEnd::FallbackClosed,
                Err(_) => RelayEnd::Failed,
            },
            up = &mut up => match (up, down.await) {
                (Ok(()), Ok(())) => RelayEnd::ClientClosed,
                _ => RelayEnd::Failed,
            },
            _ = idle_after_drain => RelayEnd::Drained,
        }
    };
    if matches!(
        ending,
        RelayEnd::FallbackClosed | RelayEnd::ClientClosed | RelayEnd::Drained
    ) {
        let _ = client_write.shutdown().await;
    }
    ending
}

/// Copies `from` to `to` until EOF, calling `on_bytes` before each chunk is passed on.
async fn pump<R, W>(from: &mut R, to: &mut W, on_bytes: impl Fn()) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        on_bytes();
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}
