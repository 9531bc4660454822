//! Upstreams: stream targets reached through Shadowsocks pool nodes.
//!
//! - [`nodes`]: the [`Node`] type and the [`NodeSource`] seam (control plane or a fixed list).
//! - [`policy`]: which targets are allowed.
//! - [`session_node`]: the node a session's streams share (single-flight assignment).
//! - [`tcp`] and [`udp`]: the per-stream tasks that own the upstream sockets.
//!
//! Domain targets are resolved **here**, on the gateway, when the target policy is in force:
//! every resolved address is checked and the node is given the checked IP literal, so a name
//! cannot re-resolve to a forbidden address behind our back (DNS rebinding). When the operator
//! allows private targets the name goes to the node unresolved, which then resolves it itself.

pub mod nodes;
pub mod open_span;
pub mod policy;
pub mod prewarm;
pub mod session_node;
pub mod tcp;
pub mod udp;
pub mod upload;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use httvps_proto::{Address as ProtoHost, ResetCode, StreamId, TargetAddr};
use shadowsocks::context::SharedContext;
use shadowsocks::net::UdpSocket as ShadowUdpSocket;
use shadowsocks::relay::tcprelay::proxy_stream::ProxyClientStream;
use shadowsocks::relay::udprelay::ProxySocket;
use shadowsocks::relay::Address;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

pub use nodes::{AssignRequest, NoNode, Node, NodeSource, StaticNodes};
pub use policy::TargetPolicy;
pub use prewarm::Prewarm;
pub use session_node::SessionNode;

/// A TCP connection to a target through a node (over a fresh or pre-warmed TCP connection).
pub type NodeStream = ProxyClientStream<TcpStream>;

/// The node id streams of the development `direct` upstream are counted under.
pub const DIRECT_NODE_ID: &str = "direct";

/// A stream's upstream connection: through a node, or (development only) straight to the target.
#[derive(Debug)]
pub enum UpstreamStream {
    /// Through a Shadowsocks node (always, in production).
    Node(Box<NodeStream>),
    /// `--dev-direct-upstream`: no node.
    Direct(TcpStream),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Node(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            UpstreamStream::Direct(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Node(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            UpstreamStream::Direct(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Node(s) => Pin::new(s.as_mut()).poll_flush(cx),
            UpstreamStream::Direct(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Node(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            UpstreamStream::Direct(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
/// A UDP association with a node.
pub type NodeSocket = ProxySocket<ShadowUdpSocket>;

/// What a stream task tells its session.
#[derive(Debug)]
pub enum StreamEvent {
    /// The target is connected (tcp) or the node association is ready (udp): send
    /// STREAM_OPEN_ACK.
    Connected {
        /// The stream.
        id: StreamId,
        /// The node it goes through (for usage per node).
        node: Arc<str>,
    },
    /// The stream could not be opened: send STREAM_RESET with this code.
    OpenFailed {
        /// The stream.
        id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// Bytes read from the upstream, within the credit granted.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes.
        data: Bytes,
    },
    /// The upstream closed its side: send STREAM_FIN.
    Eof {
        /// The stream.
        id: StreamId,
    },
    /// Client bytes were written upstream: return their credit.
    Consumed {
        /// The stream.
        id: StreamId,
        /// How many.
        bytes: usize,
    },
    /// A datagram from the node.
    Datagram {
        /// The stream.
        id: StreamId,
        /// Where it came from.
        from: Option<TargetAddr>,
        /// Its payload.
        data: Bytes,
    },
    /// The upstream failed after opening: send STREAM_RESET with this code.
    Failed {
        /// The stream.
        id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// Both directions finished normally; the task has ended.
    Done {
        /// The stream.
        id: StreamId,
    },
}

/// How long a local name resolution may take before the stream is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a stream needs to reach its target: the Shadowsocks context (created once), the
/// node source, the target policy and the connect timeout.
#[derive(Debug)]
pub struct Upstreams {
    ss: SharedContext,
    nodes: Arc<dyn NodeSource>,
    policy: TargetPolicy,
    connect_timeout: Duration,
    prewarm: Prewarm,
    /// Development only (`--dev-direct-upstream`): connect targets without a node.
    direct: bool,
}

impl Upstreams {
    /// Creates the shared Shadowsocks client context; no pre-warmed connections, no direct
    /// upstream.
    pub fn new(
        nodes: Arc<dyn NodeSource>,
        policy: TargetPolicy,
        connect_timeout: Duration,
    ) -> Self {
        Upstreams {
            ss: shadowsocks::context::Context::new_shared(shadowsocks::config::ServerType::Local),
            nodes,
            policy,
            connect_timeout,
            prewarm: Prewarm::new(0, Duration::ZERO, connect_timeout),
            direct: false,
        }
    }

    /// Uses this pool of pre-warmed node connections.
    pub fn with_prewarm(mut self, prewarm: Prewarm) -> Self {
        self.prewarm = prewarm;
        self
    }

    /// Development only: TCP streams connect to their targets directly, without a node (UDP
    /// streams are refused with `node_unavailable`). Never on in production or in the tests that
    /// prove the gateway.
    pub fn with_dev_direct_upstream(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// Whether the development `direct` upstream is on.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Where sessions get their nodes.
    pub fn nodes(&self) -> &Arc<dyn NodeSource> {
        &self.nodes
    }

    /// The pool of pre-warmed node connections.
    pub fn prewarm(&self) -> &Prewarm {
        &self.prewarm
    }

    /// The target policy.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// Applies the target policy and turns the target into the address given to the node.
    pub async fn resolve(&self, target: &TargetAddr) -> Result<Address, ResetCode> {
        match &target.addr {
            ProtoHost::Ipv4(ip) => self.literal(SocketAddr::new((*ip).into(), target.port)),
            ProtoHost::Ipv6(ip) => self.literal(SocketAddr::new((*ip).into(), target.port)),
            ProtoHost::Domain(name) => {
                if !self.policy.allows_name(name) {
                    return Err(ResetCode::NotAllowed);
                }
                if let Ok(ip) = name.parse::<std::net::IpAddr>() {
                    return self.literal(SocketAddr::new(ip, target.port));
                }
                if self.policy.allows_private() {
                    return Ok(Address::DomainNameAddress(name.clone(), target.port));
                }
                let lookup = tokio::net::lookup_host((name.as_str(), target.port));
                let addrs: Vec<SocketAddr> =
                    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                        Ok(Ok(addrs)) => addrs.collect(),
                        Ok(Err(_)) => return Err(ResetCode::NameNotResolved),
                        Err(_) => return Err(ResetCode::Timeout),
                    };
                if addrs.is_empty() {
                    return Err(ResetCode::NameNotResolved);
                }
                // Every address must pass: a name that also points inside is refused outright.
                if addrs.iter().any(|a| !self.policy.allows_ip(a.ip())) {
                    return Err(ResetCode::NotAllowed);
                }
                Ok(Address::SocketAddress(addrs[0]))
            }
        }
    }

    fn literal(&self, addr: SocketAddr) -> Result<Address, ResetCode> {
        if self.policy.allows_ip(addr.ip()) {
            Ok(Address::SocketAddress(addr))
        } else {
            Err(ResetCode::NotAllowed)
        }
    }

    /// Connects to `target` through the session's node and sends the Shadowsocks header with
    /// `early_data` in the same write. A node that fails is reported and the connection tried
    /// once more on another node. Returns the stream and the id of the node it goes through.
    pub async fn connect_tcp(
        &self,
        session: &Arc<SessionNode>,
        target: &Address,
        early_data: &[u8],
    ) -> Result<(UpstreamStream, Arc<str>), ResetCode> {
        if self.direct {
            return self.connect_direct(target, early_data).await;
        }
        let mut exclude = Vec::new();
        let mut last = ResetCode::NodeUnavailable;
        for _attempt in 0..2 {
            let node = self.node_for(session, &exclude).await?;
            let started = Instant::now();
            let mut attempt = Err(io::Error::other("not tried"));
            // A pre-warmed connection the node closed meanwhile fails here; the open then
            // connects afresh on the same node before it counts as a node failure.
            if let Some(tcp) = self.prewarm.take(&node) {
                attempt = self.open_on(&node, tcp, target, early_data).await;
            }
            let attempt = match attempt {
                Ok(stream) => Ok(Ok(stream)),
                Err(_) => {
                    tokio::time::timeout(self.connect_timeout, async {
                        let tcp = prewarm::connect_node(&node.config).await?;
                        self.open_on(&node, tcp, target, early_data).await
                    })
                    .await
                }
            };
            match attempt {
                Ok(Ok(stream)) => {
                    metrics::histogram!(crate::metrics::NODE_CONNECT_SECONDS, "node" => node.id.clone())
                        .record(started.elapsed().as_secs_f64());
                    let id: Arc<str> = Arc::from(node.id.as_str());
                    return Ok((UpstreamStream::Node(Box::new(stream)), id));
                }
                Ok(Err(e)) => {
                    tracing::warn!(node = %node.id, error = %e, "connecting through node failed");
                    last = ResetCode::NodeUnavailable;
                }
                Err(_) => {
                    tracing::warn!(node = %node.id, "connecting through node timed out");
                    last = ResetCode::Timeout;
                }
            }
            self.node_failed(session, &node).await;
            exclude.push(node.id);
        }
        Err(last)
    }

    /// Wraps a TCP connection to `node` and sends the Shadowsocks header (with the early data).
    async fn open_on(
        &self,
        node: &Node,
        tcp: TcpStream,
        target: &Address,
        early_data: &[u8],
    ) -> io::Result<NodeStream> {
        let mut stream =
            NodeStream::from_stream(self.ss.clone(), tcp, &node.config, target.clone());
        // Nothing goes out before the first write; an empty write sends the header alone so
        // the node starts connecting the target at once.
        if early_data.is_empty() {
            let _ = stream.write(&[]).await?;
        } else {
            stream.write_all(early_data).await?;
        }
        stream.flush().await?;
        Ok(stream)
    }

    /// `--dev-direct-upstream`: the target straight from the gateway, no node.
    async fn connect_direct(
        &self,
        target: &Address,
        early_data: &[u8],
    ) -> Result<(UpstreamStream, Arc<str>), ResetCode> {
        let attempt = tokio::time::timeout(self.connect_timeout, async {
            let mut tcp = match target {
                Address::SocketAddress(addr) => TcpStream::connect(addr).await?,
                Address::DomainNameAddress(host, port) => {
                    TcpStream::connect((host.as_str(), *port)).await?
                }
            };
            tcp.set_nodelay(true)?;
            tcp.write_all(early_data).await?;
            Ok::<_, io::Error>(tcp)
        })
        .await;
        match attempt {
            Ok(Ok(tcp)) => Ok((UpstreamStream::Direct(tcp), Arc::from(DIRECT_NODE_ID))),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(ResetCode::Refused),
            Ok(Err(_)) => Err(ResetCode::Unreachable),
            Err(_) => Err(ResetCode::Timeout),
        }
    }

    /// Opens a UDP association with the session's node (with one failover, as for TCP).
    pub async fn bind_udp(
        &self,
        session: &Arc<SessionNode>,
    ) -> Result<(NodeSocket, Node), ResetCode> {
        if self.direct {
            tracing::warn!("UDP streams need a node; the development direct upstream has none");
            return Err(ResetCode::NodeUnavailable);
        }
        let mut exclude = Vec::new();
        for _attempt in 0..2 {
            let node = self.node_for(session, &exclude).await?;
            let bind = NodeSocket::connect(self.ss.clone(), &node.config);
            match tokio::time::timeout(self.connect_timeout, bind).await {
                Ok(Ok(socket)) => return Ok((socket, node)),
                Ok(Err(e)) => tracing::warn!(node = %node.id, error = %e, "UDP association failed"),
                Err(_) => tracing::warn!(node = %node.id, "UDP association timed out"),
            }
            self.node_failed(session, &node).await;
            exclude.push(node.id);
        }
        Err(ResetCode::NodeUnavailable)
    }

    async fn node_for(
        &self,
        session: &Arc<SessionNode>,
        exclude: &[String],
    ) -> Result<Node, ResetCode> {
        session.node(&self.nodes, exclude).await
    }

    async fn node_failed(&self, session: &SessionNode, node: &Node) {
        metrics::counter!(crate::metrics::NODE_FAILURES_TOTAL, "node" => node.id.clone())
            .increment(1);
        self.nodes.report_failure(&node.id).await;
        session.failed(&node.id);
    }
}

/// The HTTVPS target for an address a node reported.
pub fn target_of(addr: &Address) -> Option<TargetAddr> {
    match addr {
        Address::SocketAddress(sa) => TargetAddr::socket(*sa).ok(),
        Address::DomainNameAddress(name, port) => TargetAddr::domain(name.clone(), *port).ok(),
    }
}
