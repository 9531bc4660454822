//! The public listener (standalone mode): TCP accept → TLS → the first request head, read raw.
//! A valid upgrade on the secret path becomes a session; every other connection is relayed,
//! decrypted, to the fallback web server for the rest of its life, so what a prober sees is
//! that server's behaviour and not the gateway's (issue 12).
//!
//! [`serve`] takes any byte stream with a client address, so other listeners (a plain-HTTP
//! listener behind a front) reuse it.

pub mod builtin;
pub mod first_request;
pub mod limits;
pub mod reclaim;
pub mod tls_accept;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fallback;
use crate::front::TrustedProxies;
use crate::gateway::Shared;
use crate::session;
use crate::tls::TlsSource;
use crate::upgrade;
use first_request::{FirstRequest, SessionRequest};

/// WebSocket read buffer of each session while a frame comes in (tungstenite reads at most this
/// much per call); between frames it is released (vendor/tungstenite/HTTVPS-PATCH.md).
const WS_READ_BUFFER: usize = 4 * 1024;

/// Longest wait for the TLS `close_notify` (and FIN) to go out after a session ended.
const SESSION_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until `stop` is cancelled. Connection tasks (and the sessions they
/// become) are spawned on `tasks` so shutdown can wait for them.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<TlsSource>,
    shared: Arc<Shared>,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let permit = match shared.connection_limits.try_acquire(peer.ip()) {
                    Ok(permit) => permit,
                    Err(refused) => {
                        metrics::counter!(crate::metrics::CONNECTIONS_REFUSED_TOTAL,
                            "reason" => refused.label())
                        .increment(1);
                        tracing::debug!(%peer, reason = refused.label(), "connection refused");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let deadline = Instant::now() + shared.config.tls_handshake_timeout;
                let config = tls.config();
                let challenges = tls.challenges();
                let shared = shared.clone();
                tasks.spawn(async move {
                    let raw = shared.fallback_raw.as_ref();
                    let drain = &shared.drain;
                    // Boxed, as every transient step of a connection: a task's future is one
                    // allocation the size of its largest state, kept for the task's whole
                    // life, so steps inlined here would cost every idle session their buffers.
                    let accepted = Box::pin(tls_accept::accept(
                        tcp, peer, config, challenges, deadline, raw, drain,
                    ));
                    if let Some(tls) = accepted.await {
                        let client_tls = fallback::ClientTls::of(tls.get_ref().1);
                        // Boxed: the TLS connection state is large, and each step that takes
                        // the stream by value would otherwise hold its own copy in the future.
                        serve(Box::new(tls), peer, None, Some(client_tls), shared).await;
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one connection whose bytes are HTTP (decrypted TLS, or plain behind a front) from
/// the client at `peer`: a session if its first request is the upgrade, otherwise the
/// fallback's (or, without one, the built-in) answers until the connection ends. With
/// `forwarding` (a trusted front), the upgrade's forwarding headers name the session's client.
/// `client_tls` (the gateway's own TLS listener) is offered to a `tls://` fallback.
pub async fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    forwarding: Option<Arc<TrustedProxies>>,
    client_tls: Option<fallback::ClientTls>,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &shared.config;
    let session_request = SessionRequest::new(&config.path, config.subprotocol.as_deref());
    let mut buffered = Vec::new();
    loop {
        let deadline = Instant::now() + config.client_header_timeout;
        let first = Box::pin(first_request::read(
            &mut stream,
            buffered,
            &session_request,
            deadline,
            &shared.drain,
        ))
        .await;
        let other = match first {
            FirstRequest::Upgrade {
                upgrade,
                buffered,
                head_len,
            } => {
                if shared.drain.is_cancelled() {
                    // Draining: new sessions go elsewhere; the web server answers meanwhile.
                    buffered
                } else {
                    let client = forwarding
                        .and_then(|trusted| trusted.client_from_headers(&upgrade.forwarded))
                        .map_or(peer, |ip| SocketAddr::new(ip, 0));
                    start_session(stream, client, &shared, &upgrade, &buffered[head_len..]).await;
                    return;
                }
            }
            FirstRequest::Other(bytes) => bytes,
            FirstRequest::Closed => {
                // The client sent close_notify, or the gateway is draining and nothing had
                // arrived: close_notify, as nginx does in both cases.
                let _ = stream.shutdown().await;
                return;
            }
            FirstRequest::TimedOut { partial } => {
                tracing::debug!(%peer, partial, "no request head in time");
                if !partial {
                    // nginx: a connection idle from the start gets close_notify; one whose
                    // header timed out midway is closed quietly (c->timedout).
                    let _ = stream.shutdown().await;
                }
                return;
            }
            FirstRequest::Failed => return,
        };
        let Some(http_fallback) = &shared.fallback else {
            match Box::pin(builtin::answer(&mut stream, other, config, deadline)).await {
                builtin::After::KeepAlive(rest) if !rest.is_empty() => buffered = rest,
                builtin::After::KeepAlive(_) => {
                    match Box::pin(builtin::next_request(&mut stream, config, &shared.drain)).await
                    {
                        Some(next) => buffered = next,
                        None => return,
                    }
                }
                builtin::After::Closed => return,
            }
            continue;
        };
        match Box::pin(http_fallback.connect(client_tls.as_ref())).await {
            Ok(upstream) => {
                let end = Box::pin(fallback::relay(stream, &other, upstream, &shared.drain)).await;
                tracing::trace!(%peer, ?end, "relayed to the fallback");
            }
            Err(e) => {
                // Counted in httvps_gateway_fallback_errors_total; logged only at debug, as
                // clients decide how often this happens.
                tracing::debug!(%peer, error = %e, "fallback unavailable; closing the connection");
                let _ = stream.shutdown().await;
            }
        }
        return;
    }
}

async fn start_session<S>(
    mut stream: S,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    upgrade: &upgrade::Upgrade,
    early: &[u8],
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let response = upgrade::switching_protocols(upgrade, &shared.config.server_header);
    if stream.write_all(&response).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    // tungstenite allocates its read buffer eagerly (128 KiB by default): per idle session that
    // was most of the gateway's memory (examples/sessions_bench.rs). 4 KiB until the first
    // frame (the HELLO) is read; then only while a frame comes in.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(shared.config.max_message_size()))
        .max_frame_size(Some(shared.config.max_message_size()));
    let (stream, back) = reclaim::Reclaimable::new(stream);
    let ws =
        WebSocketStream::from_partially_read(stream, early.to_vec(), Role::Server, Some(ws_config))
            .await;
    // Boxed: the session's state exists only while it runs, not in the connection's future.
    Box::pin(session::run_session(ws, peer, shared.sessions.clone())).await;
    // The session dropped the WebSocket after its close handshake: end TLS cleanly, as nginx
    // ends a proxied WebSocket.
    if let Ok(Ok(mut stream)) = tokio::time::timeout(SESSION_SHUTDOWN_TIMEOUT, back).await {
        let _ = tokio::time::timeout(SESSION_SHUTDOWN_TIMEOUT, stream.shutdown()).await;
    }
}
