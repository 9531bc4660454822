//! The accept loop the local proxies share: each connection is handled in a task of its own; a
//! failed accept is logged and retried after a short pause.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use httvps_sdk::Client;
use tokio::net::{TcpListener, TcpStream};

use crate::subscription::CurrentClient;

/// Accepts connections until the task is dropped; `what` names the proxy in the logs. Each
/// connection goes to the client of the moment (a subscription refresh may replace it).
pub async fn serve_each<F>(
    listener: TcpListener,
    current: CurrentClient,
    what: &'static str,
    handle: impl Fn(TcpStream, SocketAddr, Client) -> F,
) where
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let connection = handle(socket, peer, current.get());
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "{what} connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
