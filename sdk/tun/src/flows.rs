//! One flow of the stack relayed through the tunnel: a TCP connection as an HTTVPS stream, a
//! UDP conversation (local address and destination) as an HTTVPS datagram flow.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use httvps_sdk::TargetAddr;
use ipstack::{IpStackTcpStream, IpStackUdpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::Tunnel;

/// Relay buffer each way: as much as the stack's window holds.
const TCP_BUFFER: usize = 64 * 1024;
/// How long a refused flow's close may wait for the application's acknowledgement.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The largest UDP payload the stack can hand over.
const UDP_BUFFER: usize = 65_536;

pub async fn relay_tcp<T: Tunnel>(tunnel: &T, mut local: IpStackTcpStream, target: SocketAddr) {
    let Ok(target_addr) = TargetAddr::socket(target) else {
        return;
    };
    let mut remote = match tunnel.open_tcp(target_addr).await {
        Ok(remote) => remote,
        Err(e) => {
            // The stack has accepted the connection already (its SYN-ACK went out with the
            // SYN's arrival): closing it at once is the fastest answer it can give; dropping
            // it alone would leave the application waiting.
            tracing::debug!(%target, "TCP flow refused: {e}");
            let _ = tokio::time::timeout(CLOSE_WAIT, local.shutdown()).await;
            return;
        }
    };
    match tokio::io::copy_bidirectional_with_sizes(&mut local, &mut remote, TCP_BUFFER, TCP_BUFFER)
        .await
    {
        Ok((up, down)) => tracing::debug!(%target, up, down, "TCP flow finished"),
        Err(e) => tracing::debug!(%target, "TCP flow ended: {e}"),
    }
    let _ = local.shutdown().await;
}

pub async fn relay_udp<T: Tunnel>(
    tunnel: &T,
    mut local: IpStackUdpStream,
    target: SocketAddr,
    idle: Duration,
) {
    let Ok(target_addr) = TargetAddr::socket(target) else {
        return;
    };
    let flow = match tunnel.open_udp(target_addr).await {
        Ok(flow) => flow,
        Err(e) => {
            tracing::debug!(%target, "UDP flow refused: {e}");
            return;
        }
    };
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        tokio::select! {
            read = local.read(&mut buf) => match read {
                // The stack closes an idle flow with an end of file.
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if flow.send(None, Bytes::copy_from_slice(&buf[..n])).is_err() {
                        return;
                    }
                }
            },
            received = flow.recv() => match received {
                Ok((_, datagram)) => {
                    if local.write_all(&datagram).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(%target, "UDP flow ended: {e}");
                    return;
                }
            },
            () = tokio::time::sleep(idle) => return,
        }
    }
}
