//! The public listener: TCP accept → TLS → HTTP/1.1 (hyper). A valid upgrade on the secret
//! path becomes a session; every other request gets the decoy site.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::decoy::Body;
use crate::gateway::Shared;
use crate::tls::TlsSource;
use crate::{session, upgrade};

/// Initial (eagerly allocated) WebSocket read buffer of each session.
const WS_READ_BUFFER: usize = 16 * 1024;

/// Accepts connections until `stop` is cancelled. Connection and session tasks are spawned on
/// `tasks` so shutdown can wait for them.
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
                let _ = tcp.set_nodelay(true);
                let acceptor = TlsAcceptor::from(tls.config());
                let shared = shared.clone();
                let session_tasks = tasks.clone();
                tasks.spawn(serve_connection(tcp, peer, acceptor, shared, session_tasks));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    tasks: TaskTracker,
) {
    let handshake_timeout = shared.config.handshake_timeout;
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let drain = shared.drain.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let tasks = tasks.clone();
        async move { Ok::<_, Infallible>(route(req, peer, shared, tasks).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = drain.cancelled() => {
            // Finish the request in progress, then close instead of keeping the connection alive.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

async fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tasks: TaskTracker,
) -> http::Response<Body> {
    let accept = match upgrade::check(&req, &shared.config.path) {
        Ok(accept) => accept,
        Err(reason) => {
            tracing::trace!(%peer, ?reason, "not an upgrade; serving the decoy");
            return shared.decoy.respond(&req).await;
        }
    };
    if shared.drain.is_cancelled() {
        // Draining: new sessions go elsewhere; look like the plain web server meanwhile.
        return shared.decoy.not_found(false);
    }
    let echo_subprotocol = upgrade::offers_subprotocol(&req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    // tungstenite allocates its read buffer eagerly (128 KiB by default): per idle session that
    // was most of the gateway's memory (examples/sessions_bench.rs). 16 KiB still takes a
    // full-size frame in a few reads.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(shared.config.max_message_size()))
        .max_frame_size(Some(shared.config.max_message_size()));
    let session_shared = shared.clone();
    tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_config),
                )
                .await;
                session::run_session(ws, peer, session_shared).await;
            }
            Err(e) => tracing::debug!(%peer, error = %e, "upgrade failed"),
        }
    });
    upgrade::switching_protocols(&accept, shared.decoy.server_header(), echo_subprotocol)
}
