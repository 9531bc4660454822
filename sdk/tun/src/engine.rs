//! The engine: the gate, the userspace TCP/IP stack (ipstack) behind it, and the loop that
//! turns the stack's flows into tunnel streams.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use httvps_sdk::{Client, ClientStatus, ConnectionState, Error, TargetAddr, TcpStream, UdpFlow};
use ipstack::{IpStack, IpStackConfig, IpStackStream, TcpConfig};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::device::ChannelDevice;
use crate::flows;
use crate::gate::{self, GatePolicy, Verdict};

/// Where flows go: the SDK's [`Client`], or anything that opens streams and flows the same way
/// (the client binary's replaceable client, a test double).
pub trait Tunnel: Send + Sync + 'static {
    fn open_tcp(&self, target: TargetAddr)
        -> impl Future<Output = Result<TcpStream, Error>> + Send;
    fn open_udp(&self, target: TargetAddr) -> impl Future<Output = Result<UdpFlow, Error>> + Send;
}

impl Tunnel for Client {
    fn open_tcp(
        &self,
        target: TargetAddr,
    ) -> impl Future<Output = Result<TcpStream, Error>> + Send {
        Client::open_tcp(self, target)
    }
    fn open_udp(&self, target: TargetAddr) -> impl Future<Output = Result<UdpFlow, Error>> + Send {
        Client::open_udp(self, target)
    }
}

/// DNS queries to `address` (port 53, UDP or TCP) go to `resolver` through the tunnel.
#[derive(Clone, Copy, Debug)]
pub struct DnsRedirect {
    pub address: IpAddr,
    pub resolver: SocketAddr,
}

/// Bounds on what the engine holds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open TCP flows; a SYN beyond it is reset.
    pub max_tcp_flows: usize,
    /// Open UDP flows (one per local address and destination); beyond it datagrams are dropped.
    pub max_udp_flows: usize,
    /// A UDP flow with no datagram either way for this long is closed.
    pub udp_idle: Duration,
    /// A TCP flow with no segment for this long is reset.
    pub tcp_idle: Duration,
    /// Packets queued between the device and the stack, each way.
    pub queue_packets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tcp_flows: 4096,
            max_udp_flows: 1024,
            udp_idle: Duration::from_secs(60),
            tcp_idle: Duration::from_secs(2 * 3600),
            queue_packets: 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The link MTU: the largest packet the device hands in or takes.
    pub mtu: u16,
    /// Carry IPv6 (the tunnel's far side must reach IPv6 targets); when false every IPv6 packet
    /// is refused.
    pub carry_ipv6: bool,
    pub dns: Option<DnsRedirect>,
    pub limits: Limits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            mtu: 1500,
            carry_ipv6: false,
            dns: None,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("MTU {0} is below the minimum of 1280")]
    Mtu(u16),
    #[error("the engine has stopped")]
    Closed,
}

/// The kill switch's input: whether a session is up. While it is not, new flows are refused
/// (TCP RST, ICMP unreachable) and nothing leaves.
#[derive(Clone, Debug, Default)]
pub struct TunnelUp(Arc<AtomicBool>);

impl TunnelUp {
    pub fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Keeps the switch in step with a client's status (until the status channel closes).
    pub fn follow(&self, mut status: watch::Receiver<ClientStatus>) -> JoinHandle<()> {
        let up = self.clone();
        tokio::spawn(async move {
            loop {
                up.set(matches!(
                    status.borrow_and_update().state,
                    ConnectionState::Connected
                ));
                if status.changed().await.is_err() {
                    up.set(false);
                    return;
                }
            }
        })
    }
}

/// A running engine; dropping it stops the stack.
#[derive(Debug)]
pub struct Engine {
    sink: PacketSink,
    up: TunnelUp,
    accept: JoinHandle<()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Engine {
    /// Starts the stack; flows go through `tunnel`, packets for the device come out of the
    /// returned source. The kill switch starts closed: set [`Engine::tunnel_up`] (or let it
    /// follow a client's status).
    pub fn start<T: Tunnel>(
        config: EngineConfig,
        tunnel: T,
    ) -> Result<(Engine, PacketSource), EngineError> {
        if config.mtu < 1280 {
            return Err(EngineError::Mtu(config.mtu));
        }
        let queue = config.limits.queue_packets.max(1);
        let (to_stack, stack_in) = mpsc::channel(queue);
        let (stack_out, from_stack) = mpsc::channel(queue);
        let mut stack_config = IpStackConfig::default();
        stack_config.mtu_unchecked(config.mtu);
        stack_config.udp_timeout(config.limits.udp_idle);
        let mut tcp = TcpConfig::default();
        tcp.timeout = config.limits.tcp_idle;
        // A full 64 KiB window (the stack has no window scaling): the default 16 KiB held a
        // single flow to a fraction of the tunnel's throughput.
        tcp.max_unacked_bytes = 64 * 1024;
        tcp.read_buffer_size = 64 * 1024;
        stack_config.with_tcp_config(tcp);
        let stack = IpStack::new(
            stack_config,
            ChannelDevice::new(stack_in, stack_out.clone()),
        );
        let up = TunnelUp::default();
        let accept = tokio::spawn(accept_flows(stack, Arc::new(tunnel), config.clone()));
        let engine = Engine {
            sink: PacketSink {
                to_stack,
                replies: stack_out,
                up: up.clone(),
                carry_ipv6: config.carry_ipv6,
            },
            up,
            accept,
        };
        Ok((engine, PacketSource { from_stack }))
    }

    /// The kill switch's input.
    pub fn tunnel_up(&self) -> &TunnelUp {
        &self.up
    }

    /// Where the device's packets go in (cheap to clone).
    pub fn sink(&self) -> PacketSink {
        self.sink.clone()
    }
}

/// Packets in: each through the gate, then into the stack.
#[derive(Clone, Debug)]
pub struct PacketSink {
    to_stack: mpsc::Sender<Vec<u8>>,
    replies: mpsc::Sender<Vec<u8>>,
    up: TunnelUp,
    carry_ipv6: bool,
}

impl PacketSink {
    fn policy(&self) -> GatePolicy {
        GatePolicy {
            tunnel_up: self.up.get(),
            carry_ipv6: self.carry_ipv6,
        }
    }

    /// One IP packet from the device; waits while the stack is behind.
    pub async fn send(&self, packet: Vec<u8>) -> Result<(), EngineError> {
        match gate::judge(&packet, self.policy()) {
            Verdict::Pass => self
                .to_stack
                .send(packet)
                .await
                .map_err(|_| EngineError::Closed),
            Verdict::Refuse(reply) => {
                self.refuse(reply);
                Ok(())
            }
        }
    }

    /// One IP packet from a callback that cannot wait: dropped when the stack is behind (TCP
    /// sends it again).
    pub fn try_send(&self, packet: Vec<u8>) -> Result<(), EngineError> {
        match gate::judge(&packet, self.policy()) {
            Verdict::Pass => match self.to_stack.try_send(packet) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(EngineError::Closed),
            },
            Verdict::Refuse(reply) => {
                self.refuse(reply);
                Ok(())
            }
        }
    }

    fn refuse(&self, reply: Option<Vec<u8>>) {
        // A refusal is best effort: with the output full it is dropped like any packet.
        if let Some(reply) = reply {
            let _ = self.replies.try_send(reply);
        }
    }
}

/// Packets out, for the device.
#[derive(Debug)]
pub struct PacketSource {
    from_stack: mpsc::Receiver<Vec<u8>>,
}

impl PacketSource {
    /// The next IP packet for the device; `None` once the engine has stopped.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.from_stack.recv().await
    }
}

/// Takes the stack's new flows and relays each through the tunnel, within the limits.
async fn accept_flows<T: Tunnel>(mut stack: IpStack, tunnel: Arc<T>, config: EngineConfig) {
    let tcp_slots = Arc::new(Semaphore::new(config.limits.max_tcp_flows));
    let udp_slots = Arc::new(Semaphore::new(config.limits.max_udp_flows));
    while let Ok(flow) = stack.accept().await {
        match flow {
            IpStackStream::Tcp(local) => {
                let Ok(slot) = tcp_slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        limit = config.limits.max_tcp_flows,
                        "TCP flow limit reached; resetting {}",
                        local.peer_addr()
                    );
                    continue;
                };
                let target = destination(local.peer_addr(), config.dns);
                let tunnel = tunnel.clone();
                tokio::spawn(async move {
                    flows::relay_tcp(tunnel.as_ref(), local, target).await;
                    drop(slot);
                });
            }
            IpStackStream::Udp(local) => {
                let Ok(slot) = udp_slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        limit = config.limits.max_udp_flows,
                        "UDP flow limit reached; dropping datagrams to {}",
                        local.peer_addr()
                    );
                    continue;
                };
                let target = destination(local.peer_addr(), config.dns);
                let tunnel = tunnel.clone();
                let idle = config.limits.udp_idle;
                tokio::spawn(async move {
                    flows::relay_udp(tunnel.as_ref(), local, target, idle).await;
                    drop(slot);
                });
            }
            // The gate lets only TCP and UDP through.
            IpStackStream::UnknownTransport(_) | IpStackStream::UnknownNetwork(_) => {}
        }
    }
}

/// Where a flow to `dst` goes: the resolver for the tunnel's DNS address, else `dst` itself.
fn destination(dst: SocketAddr, dns: Option<DnsRedirect>) -> SocketAddr {
    match dns {
        Some(dns) if dst.ip() == dns.address && dst.port() == 53 => dns.resolver,
        _ => dst,
    }
}
