//! The plain-HTTP listener for a front: a web server (nginx) terminates TLS, serves its site and
//! proxies only the secret path here, over TCP or a unix socket. The client's address comes from
//! the front, in a PROXY header (`--proxy-protocol`) or forwarding headers, and only when the
//! front is in `--trusted-proxies` (unix-socket peers always are); it then feeds the per-address
//! HELLO limit, logs and metrics like a direct client's.

pub mod client_addr;
pub mod proxy_header;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListenAddr;
use crate::gateway::Shared;
use crate::listener;
use crate::GatewayError;

pub use client_addr::{Peer, TrustedProxies};

/// A bound plain listener.
#[derive(Debug)]
pub enum PlainListener {
    /// TCP.
    Tcp(TcpListener),
    /// A unix socket (its file is removed when the listener is dropped).
    Unix(UnixListener, UnixSocketFile),
}

/// Removes the socket file on drop.
#[derive(Debug)]
pub struct UnixSocketFile(PathBuf);

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl PlainListener {
    /// Binds `addr` (`None` for [`ListenAddr::Off`]). A stale socket file of an earlier run is
    /// replaced; the socket is made writable for all (a front running as another user must
    /// connect): restrict access with its directory's permissions.
    pub async fn bind(addr: &ListenAddr) -> Result<Option<PlainListener>, GatewayError> {
        match addr {
            ListenAddr::Off => Ok(None),
            ListenAddr::Tcp(addr) => TcpListener::bind(addr)
                .await
                .map(|l| Some(PlainListener::Tcp(l)))
                .map_err(|e| GatewayError::io(format!("binding the plain listener {addr}"), e)),
            ListenAddr::Unix(path) => bind_unix(path).map(Some),
        }
    }

    /// The bound address (TCP with the real port).
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            PlainListener::Tcp(l) => l.local_addr().map_or(ListenAddr::Off, ListenAddr::Tcp),
            PlainListener::Unix(_, file) => ListenAddr::Unix(file.0.clone()),
        }
    }
}

fn bind_unix(path: &Path) -> Result<PlainListener, GatewayError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let context = |what: &str| format!("{what} the plain listener's socket {}", path.display());
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(GatewayError::Config(format!(
                "--plain-listen: {} exists and is not a socket",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| GatewayError::io(context("removing"), e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| GatewayError::io(context("binding"), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| GatewayError::io(context("opening"), e))?;
    Ok(PlainListener::Unix(
        listener,
        UnixSocketFile(path.to_owned()),
    ))
}

/// Accepts connections until `stop` is cancelled; connection and session tasks go on `tasks`.
pub async fn accept_loop(
    listener: PlainListener,
    shared: Arc<Shared>,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    let trusted = Arc::new(TrustedProxies::new(shared.config.trusted_proxies.clone()));
    loop {
        let accepted = match &listener {
            PlainListener::Tcp(l) => tokio::select! {
                _ = stop.cancelled() => return,
                accepted = l.accept() => accepted.map(|(s, peer)| {
                    let _ = s.set_nodelay(true);
                    let job = serve_connection(s, Peer::Tcp(peer), trusted.clone(), shared.clone());
                    tasks.spawn(job);
                }),
            },
            PlainListener::Unix(l, _) => tokio::select! {
                _ = stop.cancelled() => return,
                accepted = l.accept() => accepted.map(|(s, _)| {
                    let job = serve_connection(s, Peer::Unix, trusted.clone(), shared.clone());
                    tasks.spawn(job);
                }),
            },
        };
        if let Err(e) = accepted {
            // EMFILE and friends: back off briefly instead of spinning.
            tracing::warn!(error = %e, "plain listener: accept failed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// One connection from the front: the PROXY header if required, then the listener's own
/// handling of the first request (upgrade on the secret path, the built-in 404 otherwise).
async fn serve_connection<S>(
    mut stream: S,
    peer: Peer,
    trusted: Arc<TrustedProxies>,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = shared.config.handshake_timeout;
    // The hop that talks to the gateway, and whether it may name the client in its headers.
    let (hop, hop_trusted) = if shared.config.proxy_protocol {
        if !trusted.trusts_peer(peer) {
            refuse(
                peer,
                "untrusted_peer",
                "PROXY header from a peer outside --trusted-proxies",
            );
            return;
        }
        match tokio::time::timeout(timeout, proxy_header::read(&mut stream)).await {
            Ok(Ok(Some(source))) => (Peer::Tcp(source), trusted.trusts(source.ip())),
            // LOCAL / UNKNOWN: the front's own connection (health checks).
            Ok(Ok(None)) => (peer, true),
            Ok(Err(e)) => {
                refuse(peer, "malformed", &e.to_string());
                return;
            }
            Err(_) => {
                refuse(peer, "timeout", "no PROXY header in time");
                return;
            }
        }
    } else {
        (peer, trusted.trusts_peer(peer))
    };
    let forwarding = hop_trusted.then_some(trusted);
    listener::serve(stream, hop.addr(), forwarding, None, shared).await;
}

fn refuse(peer: Peer, reason: &'static str, detail: &str) {
    metrics::counter!(crate::metrics::FRONT_REFUSED_TOTAL, "reason" => reason).increment(1);
    tracing::debug!(peer = %peer.addr(), reason, detail, "plain listener refused a connection");
}
