//! One UDP stream's task: a UDP association with the node (one socket per stream, so every
//! stream is its own NAT entry), relaying datagrams both ways until the client finishes, the
//! stream is reset, or nothing moved for the idle timeout.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httvps_proto::{ResetCode, StreamId, TargetAddr};
use shadowsocks::relay::udprelay::options::UdpSocketControlData;
use shadowsocks::relay::Address;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{target_of, SessionNode, StreamEvent, Upstreams};
use crate::stats::GatewayStats;

/// Largest datagram read from the node.
const RECV_BUFFER: usize = 64 * 1024;
/// Per-datagram destinations remembered after their policy check.
const RESOLVED_CACHE: usize = 16;

/// A datagram from the client, to the stream's target or to `addr`.
#[derive(Debug)]
pub struct OutboundDatagram {
    /// The per-datagram destination (DATAGRAM with ADDRESS), if any.
    pub addr: Option<TargetAddr>,
    /// The payload.
    pub data: Bytes,
}

/// Everything one UDP stream task needs.
#[derive(Debug)]
pub struct UdpRelay {
    /// The stream.
    pub id: StreamId,
    /// The stream's default destination.
    pub target: TargetAddr,
    /// Datagrams from the client; closed when the client finishes the stream.
    pub datagrams: mpsc::Receiver<OutboundDatagram>,
    /// Reports to the session.
    pub events: mpsc::Sender<StreamEvent>,
    /// Connector.
    pub upstreams: Arc<Upstreams>,
    /// The session's node.
    pub node: Arc<SessionNode>,
    /// Reset the stream after this long without a datagram either way.
    pub idle_timeout: Duration,
    /// Gateway counters (open NAT entries).
    pub stats: Arc<GatewayStats>,
    /// The open's span ([`super::open_span`]), ended once the association is up or refused.
    pub open_span: tracing::Span,
}

impl UdpRelay {
    /// Runs the stream to its end.
    pub async fn run(mut self) {
        let id = self.id;
        let events = self.events.clone();
        let span = std::mem::replace(&mut self.open_span, tracing::Span::none());
        let opened = async {
            let default_dest = self.upstreams.resolve(&self.target).await?;
            let (socket, node) = self.upstreams.bind_udp(&self.node).await?;
            Ok((default_dest, socket, node))
        }
        .instrument(span.clone())
        .await;
        super::open_span::finish(
            &span,
            opened
                .as_ref()
                .map(|(_, _, node)| node.id.as_str())
                .map_err(|c| *c),
        );
        drop(span);
        let (default_dest, socket, node) = match opened {
            Ok(s) => s,
            Err(code) => {
                let _ = events.send(StreamEvent::OpenFailed { id, code }).await;
                return;
            }
        };
        let _nat = NatEntry::new(self.stats.clone());
        let node: Arc<str> = Arc::from(node.id.as_str());
        if events
            .send(StreamEvent::Connected { id, node })
            .await
            .is_err()
        {
            return;
        }
        // 2022 ciphers drop replays: every packet needs a session id and a rising packet id.
        let mut control = UdpSocketControlData::default();
        control.client_session_id = rand::random::<u64>() | 1;
        let mut resolved: HashMap<TargetAddr, Address> = HashMap::new();
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            tokio::select! {
                outbound = self.datagrams.recv() => {
                    let Some(datagram) = outbound else {
                        let _ = events.send(StreamEvent::Done { id }).await;
                        return;
                    };
                    let dest = match &datagram.addr {
                        None => default_dest.clone(),
                        Some(addr) => match resolved.get(addr) {
                            Some(dest) => dest.clone(),
                            None => match self.upstreams.resolve(addr).await {
                                Ok(dest) => {
                                    if resolved.len() >= RESOLVED_CACHE {
                                        resolved.clear();
                                    }
                                    resolved.insert(addr.clone(), dest.clone());
                                    dest
                                }
                                // Forbidden or unresolvable destinations are dropped, as UDP may.
                                Err(_) => continue,
                            },
                        },
                    };
                    control.packet_id += 1;
                    if let Err(e) = socket.send_with_ctrl(&dest, &control, &datagram.data).await {
                        tracing::debug!(stream = %id, error = %e, "UDP send to node failed");
                    } else {
                        metrics::counter!(crate::metrics::DATAGRAMS_TOTAL, "direction" => "up").increment(1);
                    }
                }
                received = socket.recv(&mut buf) => {
                    match received {
                        Ok((n, from, _)) => {
                            metrics::counter!(crate::metrics::DATAGRAMS_TOTAL, "direction" => "down").increment(1);
                            let data = Bytes::copy_from_slice(&buf[..n]);
                            let from = target_of(&from);
                            if events.send(StreamEvent::Datagram { id, from, data }).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!(stream = %id, error = %e, "UDP receive from node failed"),
                    }
                }
                _ = tokio::time::sleep(self.idle_timeout) => {
                    let _ = events.send(StreamEvent::Failed { id, code: ResetCode::Timeout }).await;
                    return;
                }
            }
        }
    }
}

/// Counts an open UDP socket toward a node for as long as it lives.
#[derive(Debug)]
struct NatEntry(Arc<GatewayStats>);

impl NatEntry {
    fn new(stats: Arc<GatewayStats>) -> Self {
        stats.udp_sockets.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::UDP_SOCKETS_ACTIVE).increment(1.0);
        NatEntry(stats)
    }
}

impl Drop for NatEntry {
    fn drop(&mut self) {
        self.0.udp_sockets.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::UDP_SOCKETS_ACTIVE).decrement(1.0);
    }
}
