//! Shared harness of the gateway integration tests: a real Shadowsocks server in process as the
//! pool node, real TCP/UDP targets on 127.0.0.1, the gateway on a random port with a
//! self-signed certificate, and a test client built on `httvps_proto::Connection` that speaks to
//! it over real TLS (pinned to the fingerprint) and a real WebSocket.
#![allow(dead_code)]

#[path = "../../../common/test-support/echo.rs"]
mod echo;
#[allow(unused_imports)] // Not every test binary sending through the gateway echoes.
pub use echo::echo_server;
pub mod cp;
pub mod nginx;
pub mod nginx_front;
#[path = "../../../common/test-support/ports.rs"]
pub mod ports;
pub mod wait;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use httvps_driver::hello::HelloFailure;
use httvps_driver::{App, Core, DriverConfig, Outcome};
use httvps_gateway::control_plane::ControlPlaneClient;
use httvps_gateway::entitlements::EntitlementCache;
use httvps_gateway::{
    Backends, Gateway, GatewayConfig, Node, StaticAuthority, StaticNodes, TlsSource,
};
use httvps_proto::frame::{ErrorFrame, Frame, HelloError};
use httvps_proto::{
    ClientHello, Connection, Event, ResetCode, Role, SessionConfig, StreamId, StreamKind,
    TargetAddr,
};
use httvps_tls_verify::CertificatePolicy;
use rustls::pki_types::ServerName;
use shadowsocks::config::{Mode, ServerConfig};
use shadowsocks::crypto::CipherKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const DEVICE: &str = "dev-1";
pub const TOKEN: &[u8] = b"token-of-dev-1-0123456789";
pub const REVOKED_DEVICE: &str = "dev-revoked";
/// A secret path that passes the gateway's strength rules (22+ base64url characters).
pub const PATH: &str = "/s3cr3t-Zq3vN8xL2pR7tW1yB5cD9f";

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// A Shadowsocks server (TCP and UDP on the same port) running in this process.
pub async fn start_node() -> Node {
    for _ in 0..20 {
        let port = ports::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cfg =
            ServerConfig::new(addr, "node-password-1", CipherKind::CHACHA20_POLY1305).unwrap();
        cfg.set_mode(Mode::TcpAndUdp);
        let Ok(server) = shadowsocks_service::server::ServerBuilder::new(cfg.clone())
            .build()
            .await
        else {
            continue;
        };
        tokio::spawn(server.run());
        return Node {
            id: format!("node-{port}"),
            name: "test node".into(),
            config: Arc::new(cfg),
        };
    }
    panic!("no free port for the Shadowsocks node");
}

/// The address of a node of the test.
pub fn node_addr(node: &Node) -> SocketAddr {
    match node.config.addr() {
        shadowsocks::config::ServerAddr::SocketAddr(a) => *a,
        other => panic!("test nodes have socket addresses, not {other}"),
    }
}

/// A TCP forwarder to `to` that counts the connections it carries (so a test sees which node a
/// stream went through).
pub async fn counting_forwarder(
    to: SocketAddr,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count)
}

/// A node address nothing listens on (for failover tests).
pub fn dead_node() -> Node {
    let port = ports::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cfg = ServerConfig::new(addr, "x", CipherKind::CHACHA20_POLY1305).unwrap();
    cfg.set_mode(Mode::TcpAndUdp);
    Node {
        id: "dead-node".into(),
        name: "dead".into(),
        config: Arc::new(cfg),
    }
}

/// A server that greets every connection with `len` bytes of a deterministic pattern, then
/// closes. Reports through the channel how many bytes it managed to write, when done or
/// stopped. The bytes are generated as they are written, so `len` may be far larger than
/// memory (1 GiB in the slow-reader test).
pub async fn source_server(len: usize) -> (SocketAddr, mpsc::UnboundedReceiver<usize>) {
    paced_source_server(len, Duration::ZERO).await
}

/// [`source_server`] that sleeps `pause` after every 64 KiB (a transfer that takes a while).
pub async fn paced_source_server(
    len: usize,
    pause: Duration,
) -> (SocketAddr, mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut written = 0;
                while written < len {
                    let chunk = pattern_at(written, (16 * 1024).min(len - written));
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    written += chunk.len();
                    let _ = tx.send(written);
                    if !pause.is_zero() && written % (64 * 1024) == 0 {
                        tokio::time::sleep(pause).await;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, rx)
}

/// A UDP responder that answers every datagram with `b"re:" + datagram` (DNS-like).
pub async fn udp_responder() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

/// Deterministic bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    pattern_at(0, len)
}

/// Bytes `offset..offset + len` of [`pattern`].
pub fn pattern_at(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Test defaults: loopback targets allowed (the targets run on 127.0.0.1).
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        path: PATH.into(),
        allow_private_targets: true,
        connect_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
        control_plane_timeout: Duration::from_secs(3),
        usage_flush_timeout: Duration::from_secs(5),
        // The test client asks for this subprotocol and checks it is echoed.
        subprotocol: Some("httvps.v1".into()),
        // Short, so tests of bad input need not wait the default 1-10 s before the close.
        unauthenticated_close_delay: Duration::from_millis(200),
        ..GatewayConfig::default()
    }
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub node: Node,
    /// The device `client()` connects as.
    pub device: String,
    pub token: Vec<u8>,
    /// The entitlement cache (with a control plane).
    pub cache: Option<EntitlementCache>,
    /// The real control plane behind it, if any (kept alive with the gateway).
    pub cp: Option<Arc<cp::TestCp>>,
}

impl TestGateway {
    /// The main flows: a real control plane (SQLite) with a subscriber whose device `client()`
    /// uses, and an in-process Shadowsocks server registered there as the only node.
    pub async fn start(config: GatewayConfig) -> TestGateway {
        let cp = Arc::new(cp::TestCp::start().await);
        let node = start_node().await;
        cp.add_node(&node, "node-1").await;
        let sub = cp.subscriber(None, 50).await;
        let mut gw = Self::start_with_cp(config, &cp, &cp.gateway_token).await;
        gw.node = node;
        gw.device = sub.device.to_string();
        gw.token = sub.token.into_bytes();
        gw
    }

    /// A gateway on an existing control plane (nodes and devices are the caller's).
    pub async fn start_with_cp(
        config: GatewayConfig,
        cp: &Arc<cp::TestCp>,
        gateway_token: &str,
    ) -> TestGateway {
        Self::start_keeping_client(config, cp, gateway_token)
            .await
            .0
    }

    /// [`Self::start_with_cp`], and the gateway's control-plane client (to see its pool
    /// snapshot).
    pub async fn start_keeping_client(
        config: GatewayConfig,
        cp: &Arc<cp::TestCp>,
        gateway_token: &str,
    ) -> (TestGateway, Arc<ControlPlaneClient>) {
        let tls = Arc::new(TlsSource::self_signed(&["localhost".into()]).unwrap());
        let client = cp.client(gateway_token, config.control_plane_timeout);
        let cache = EntitlementCache::new(client.clone(), config.cache_limits());
        let gateway = Gateway::start_with(
            config,
            tls,
            Backends {
                authority: Arc::new(cache.clone()),
                nodes: client.clone(),
                control_plane: Some(client.clone()),
            },
        )
        .await
        .unwrap();
        let gw = TestGateway {
            gateway,
            node: dead_node(),
            device: String::new(),
            token: Vec::new(),
            cache: Some(cache),
            cp: Some(cp.clone()),
        };
        (gw, client)
    }

    /// Data-path only: the development authority and a fixed node, no control plane.
    pub async fn start_static(config: GatewayConfig) -> TestGateway {
        let node = start_node().await;
        Self::start_with_nodes(config, vec![node.clone()], node).await
    }

    pub async fn start_with_nodes(config: GatewayConfig, nodes: Vec<Node>, node: Node) -> Self {
        let tls = Arc::new(TlsSource::self_signed(&["localhost".into()]).unwrap());
        let authority = StaticAuthority::new()
            .with_device(DEVICE, TOKEN)
            .with_device("dev-2", b"token-2".to_vec())
            .with_device(REVOKED_DEVICE, b"token-r".to_vec())
            .with_revoked(REVOKED_DEVICE);
        let gateway = Gateway::start(
            config,
            tls,
            Arc::new(authority),
            Arc::new(StaticNodes::new(nodes)),
        )
        .await
        .unwrap();
        TestGateway {
            gateway,
            node,
            device: DEVICE.into(),
            token: TOKEN.to_vec(),
            cache: None,
            cp: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    pub fn fingerprint(&self) -> String {
        self.gateway.fingerprint()
    }

    pub async fn client(&self) -> TestClient {
        TestClient::connect(self, &self.device, &self.token).await
    }

    /// The bytes of a valid HELLO of this gateway's device.
    pub fn hello(&self) -> Bytes {
        hello_bytes(&self.device, &self.token)
    }
}

// ---- TLS pinned to the fingerprint ----

pub async fn tls_connect(addr: SocketAddr, fingerprint: &str) -> TlsStream<TcpStream> {
    let pin: [u8; 32] = hex::decode(fingerprint)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .expect("a gateway fingerprint is 32 bytes in hex");
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut config =
        httvps_tls_verify::client_config(provider, CertificatePolicy::Pinned(pin)).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// A raw HTTP/1.1 request over TLS; returns the whole response text (headers and body).
pub async fn http_request(gw: &TestGateway, request: &str) -> String {
    let mut tls = tls_connect(gw.addr(), &gw.fingerprint()).await;
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A WebSocket to the gateway with the httvps.v1 subprotocol.
pub async fn ws_connect(gw: &TestGateway) -> Ws {
    ws_connect_to(gw.addr(), &gw.fingerprint()).await
}

/// A WebSocket to the gateway at `addr` (certificate pinned to `fingerprint`).
pub async fn ws_connect_to(addr: SocketAddr, fingerprint: &str) -> Ws {
    let tls = tls_connect(addr, fingerprint).await;
    let mut request = format!("wss://localhost{PATH}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "httvps.v1".parse().unwrap());
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, tls, Some(config))
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "httvps.v1"
    );
    ws
}

/// The bytes of a valid HELLO.
pub fn hello_bytes(device: &str, token: &[u8]) -> Bytes {
    let mut c = Connection::new(Role::Client, SessionConfig::default(), Instant::now());
    c.send_hello(ClientHello::new(device, token.to_vec()))
        .unwrap();
    c.poll_transmit(Instant::now()).unwrap()
}

/// How a raw session ended: the last HTTVPS frame and the close code.
#[derive(Debug)]
pub struct Ending {
    pub frames: Vec<Frame>,
    pub close_code: Option<u16>,
    /// The WebSocket Close's reason text.
    pub close_reason: Option<String>,
}

impl Ending {
    pub fn error(&self) -> Option<&ErrorFrame> {
        self.frames.iter().rev().find_map(|f| match f {
            Frame::Error(e) => Some(e),
            _ => None,
        })
    }

    pub fn hello_error(&self) -> Option<&HelloError> {
        self.frames.iter().find_map(|f| match f {
            Frame::HelloError(e) => Some(e),
            _ => None,
        })
    }
}

/// Reads every frame until the server closes (with a deadline).
pub async fn read_until_close(ws: &mut Ws, within: Duration) -> Ending {
    let mut frames = Vec::new();
    let mut close_code = None;
    let mut close_reason = None;
    let _ = tokio::time::timeout(within, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if let Ok(f) = Frame::decode(b, 16 << 20) {
                        frames.push(f);
                    }
                }
                Ok(Message::Close(frame)) => {
                    close_code = frame.as_ref().map(|f| u16::from(f.code));
                    close_reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    Ending {
        frames,
        close_code,
        close_reason,
    }
}

// ---- the test client: a small driver of Connection(Role::Client) ----

/// What a stream of the test client reports.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEv {
    Accepted,
    Data(Bytes),
    Fin,
    Reset(ResetCode),
    Datagram(Option<TargetAddr>, Bytes),
}

enum Cmd {
    Open {
        kind: StreamKind,
        target: TargetAddr,
        early: Bytes,
        auto_consume: bool,
        reply: oneshot::Sender<Result<(StreamId, mpsc::UnboundedReceiver<StreamEv>), String>>,
    },
    Write(StreamId, Bytes, oneshot::Sender<()>),
    Finish(StreamId),
    Reset(StreamId),
    Consume(StreamId, usize),
    Datagram(StreamId, Option<TargetAddr>, Bytes),
    Ping,
}

/// A session, as a client sees it. A background task owns the connection and the socket.
pub struct TestClient {
    cmd: mpsc::UnboundedSender<Cmd>,
    session_events: mpsc::UnboundedReceiver<Event>,
    /// HELLO_ACK's session id.
    pub session_id: [u8; 16],
    /// HELLO_ACK's resume token.
    pub resume_token: Vec<u8>,
}

/// One stream of the test client.
pub struct ClientStream {
    pub id: StreamId,
    client: mpsc::UnboundedSender<Cmd>,
    pub events: mpsc::UnboundedReceiver<StreamEv>,
}

/// Bytes waiting for credit, and who to tell when they are all written (empty = deferred FIN).
type PendingWrite = (Bytes, Option<oneshot::Sender<()>>);

/// The test client's side of the session loop of `httvps-driver`.
struct Driver {
    cmds: mpsc::UnboundedReceiver<Cmd>,
    streams: HashMap<StreamId, (mpsc::UnboundedSender<StreamEv>, bool)>,
    /// Writes waiting for credit.
    pending: HashMap<StreamId, std::collections::VecDeque<PendingWrite>>,
    session_events: mpsc::UnboundedSender<Event>,
}

impl TestClient {
    pub async fn connect(gw: &TestGateway, device: &str, token: &[u8]) -> TestClient {
        Self::try_connect(gw, device, token).await.unwrap()
    }

    pub async fn try_connect(
        gw: &TestGateway,
        device: &str,
        token: &[u8],
    ) -> Result<TestClient, HelloError> {
        Self::try_connect_to(gw.addr(), &gw.fingerprint(), device, token).await
    }

    /// A session with the gateway at `addr` (e.g. the real binary in a child process).
    pub async fn try_connect_to(
        addr: SocketAddr,
        fingerprint: &str,
        device: &str,
        token: &[u8],
    ) -> Result<TestClient, HelloError> {
        Self::try_connect_resuming(addr, fingerprint, device, token, None).await
    }

    /// Like [`Self::try_connect_to`], presenting a resume token.
    pub async fn try_connect_resuming(
        addr: SocketAddr,
        fingerprint: &str,
        device: &str,
        token: &[u8],
        resume: Option<&[u8]>,
    ) -> Result<TestClient, HelloError> {
        let mut hello = ClientHello::new(device, token.to_vec());
        hello.resume_token = resume.map(<[u8]>::to_vec);
        Self::try_connect_with(addr, fingerprint, hello).await
    }

    /// A session opened with this HELLO (a region, a resume token, ...).
    pub async fn try_connect_with(
        addr: SocketAddr,
        fingerprint: &str,
        hello: ClientHello,
    ) -> Result<TestClient, HelloError> {
        let ws = ws_connect_to(addr, fingerprint).await;
        let (mut sink, mut source) = ws.split();
        let mut conn = Connection::new(Role::Client, SessionConfig::default(), Instant::now());
        conn.send_hello(hello).unwrap();
        let ack = match httvps_driver::hello::exchange(&mut sink, &mut source, &mut conn).await {
            Ok(ack) => ack,
            Err(HelloFailure::Rejected(e)) => return Err(e),
            Err(other) => panic!("unexpected {other}"),
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<Cmd>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let mut driver = Driver {
            cmds: cmd_rx,
            streams: HashMap::new(),
            pending: HashMap::new(),
            session_events: ev_tx,
        };
        tokio::spawn(async move {
            let config = DriverConfig::default();
            let core = Core::new(conn, &config);
            httvps_driver::run(core, &mut driver, sink, source, &config).await;
        });
        Ok(TestClient {
            cmd: cmd_tx,
            session_events: ev_rx,
            session_id: ack.session_id,
            resume_token: ack.resume_token.as_bytes().to_vec(),
        })
    }

    pub async fn open(&self, kind: StreamKind, target: SocketAddr, early: &[u8]) -> ClientStream {
        self.open_with(kind, TargetAddr::socket(target).unwrap(), early, true)
            .await
    }

    pub async fn open_with(
        &self,
        kind: StreamKind,
        target: TargetAddr,
        early: &[u8],
        auto_consume: bool,
    ) -> ClientStream {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Open {
                kind,
                target,
                early: Bytes::copy_from_slice(early),
                auto_consume,
                reply,
            })
            .unwrap();
        let (id, events) = rx.await.unwrap().unwrap();
        ClientStream {
            id,
            client: self.cmd.clone(),
            events,
        }
    }

    pub fn ping(&self) {
        let _ = self.cmd.send(Cmd::Ping);
    }

    /// The next session-level event (GOAWAY, ERROR, PONG).
    pub async fn session_event(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.session_events.recv())
            .await
            .ok()
            .flatten()
    }
}

impl ClientStream {
    /// Waits for STREAM_OPEN_ACK; `Err(code)` if reset instead.
    pub async fn accepted(&mut self) -> Result<(), ResetCode> {
        match self.next(Duration::from_secs(10)).await {
            Some(StreamEv::Accepted) => Ok(()),
            Some(StreamEv::Reset(code)) => Err(code),
            other => panic!("expected accept, got {other:?}"),
        }
    }

    pub async fn next(&mut self, within: Duration) -> Option<StreamEv> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Writes all bytes, waiting for credit as needed.
    pub async fn write(&self, data: &[u8]) {
        let (tx, rx) = oneshot::channel();
        self.client
            .send(Cmd::Write(self.id, Bytes::copy_from_slice(data), tx))
            .unwrap();
        let _ = rx.await;
    }

    /// Takes the event receiver, so one task can write while another reads.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<StreamEv> {
        std::mem::replace(&mut self.events, mpsc::unbounded_channel().1)
    }

    pub fn finish(&self) {
        let _ = self.client.send(Cmd::Finish(self.id));
    }

    pub fn reset(&self) {
        let _ = self.client.send(Cmd::Reset(self.id));
    }

    pub fn consume(&self, n: usize) {
        let _ = self.client.send(Cmd::Consume(self.id, n));
    }

    pub fn datagram(&self, addr: Option<TargetAddr>, data: &[u8]) {
        let _ = self
            .client
            .send(Cmd::Datagram(self.id, addr, Bytes::copy_from_slice(data)));
    }

    /// Reads data until FIN; panics on reset or timeout.
    pub async fn read_to_end(&mut self, within: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(StreamEv::Data(d))) => out.extend_from_slice(&d),
                Ok(Some(StreamEv::Fin)) => return out,
                Ok(Some(StreamEv::Accepted)) => {}
                other => panic!(
                    "stream {} ended with {other:?} after {} bytes",
                    self.id,
                    out.len()
                ),
            }
        }
    }
}

impl Driver {
    fn on_cmd(&mut self, conn: &mut Connection, cmd: Cmd) {
        let now = tokio::time::Instant::now().into_std();
        match cmd {
            Cmd::Open {
                kind,
                target,
                early,
                auto_consume,
                reply,
            } => {
                let result = conn
                    .open_stream(kind, target, early.clone())
                    .map_err(|e| e.to_string());
                match result {
                    Ok((id, taken)) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.streams.insert(id, (tx, auto_consume));
                        if taken < early.len() {
                            self.pending
                                .entry(id)
                                .or_default()
                                .push_back((early.slice(taken..), None));
                        }
                        let _ = reply.send(Ok((id, rx)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Cmd::Write(id, data, done) => {
                self.pending
                    .entry(id)
                    .or_default()
                    .push_back((data, Some(done)));
                self.pump(conn, id);
            }
            Cmd::Finish(id) => {
                if self.pending.get(&id).is_some_and(|q| !q.is_empty()) {
                    self.pending
                        .entry(id)
                        .or_default()
                        .push_back((Bytes::new(), None));
                } else {
                    let _ = conn.finish(id);
                }
            }
            Cmd::Reset(id) => {
                self.pending.remove(&id);
                self.streams.remove(&id);
                let _ = conn.reset(id, ResetCode::Cancel);
            }
            Cmd::Consume(id, n) => {
                let _ = conn.consume(id, n, now);
            }
            Cmd::Datagram(id, addr, data) => {
                let _ = conn.send_datagram(id, addr, data);
            }
            Cmd::Ping => {
                let _ = conn.ping(now);
            }
        }
    }

    /// Writes queued data as credit allows; an empty entry is a deferred FIN.
    fn pump(&mut self, conn: &mut Connection, id: StreamId) {
        let Some(queue) = self.pending.get_mut(&id) else {
            return;
        };
        while let Some((data, _)) = queue.front_mut() {
            if data.is_empty() {
                queue.pop_front();
                let _ = conn.finish(id);
                continue;
            }
            let Ok(n) = conn.write(id, data.clone()) else {
                queue.clear();
                return;
            };
            let _ = data.split_to(n);
            if data.is_empty() {
                if let Some((_, Some(done))) = queue.pop_front() {
                    let _ = done.send(());
                }
            } else {
                return;
            }
        }
    }

    fn handle_event(&mut self, conn: &mut Connection, event: Event) {
        let now = tokio::time::Instant::now().into_std();
        match event {
            Event::StreamAccepted(id) => {
                self.send(id, StreamEv::Accepted);
                self.pump(conn, id);
            }
            Event::StreamData { stream_id, data } => {
                let n = data.len();
                let auto = self.streams.get(&stream_id).is_some_and(|(_, a)| *a);
                self.send(stream_id, StreamEv::Data(data));
                if auto {
                    let _ = conn.consume(stream_id, n, now);
                }
            }
            Event::StreamFinished(id) => self.send(id, StreamEv::Fin),
            Event::StreamReset { stream_id, code } => {
                self.send(stream_id, StreamEv::Reset(code));
                self.streams.remove(&stream_id);
                self.pending.remove(&stream_id);
            }
            Event::StreamWritable(id) => self.pump(conn, id),
            Event::Datagram(d) => self.send(d.stream_id, StreamEv::Datagram(d.addr, d.data)),
            other => {
                let _ = self.session_events.send(other);
            }
        }
    }

    fn send(&self, id: StreamId, ev: StreamEv) {
        if let Some((tx, _)) = self.streams.get(&id) {
            let _ = tx.send(ev);
        }
    }
}

impl App for Driver {
    type Input = Option<Cmd>;

    async fn next_input(&mut self) -> Option<Cmd> {
        self.cmds.recv().await
    }

    fn on_input(&mut self, core: &mut Core, cmd: Option<Cmd>) {
        match cmd {
            Some(cmd) => self.on_cmd(core.conn_mut(), cmd),
            // The TestClient was dropped: the connection just goes, as when a device vanishes.
            None => core.abandon(),
        }
    }

    async fn on_event(&mut self, core: &mut Core, event: Event) {
        self.handle_event(core.conn_mut(), event);
    }

    fn after_io(&mut self, core: &mut Core) {
        // Session credit may have come back for any stream.
        let ids: Vec<StreamId> = self.pending.keys().copied().collect();
        for id in ids {
            self.pump(core.conn_mut(), id);
        }
    }

    fn on_closing(&mut self, _core: &mut Core, _outcome: &Outcome) {
        for (tx, _) in self.streams.values() {
            let _ = tx.send(StreamEv::Reset(ResetCode::Cancel));
        }
    }
}

/// Live sessions of a device in the control plane's database.
pub async fn live_sessions(
    cp: &cp::TestCp,
    device: uuid::Uuid,
) -> Vec<httvps_control_plane::model::Session> {
    cp.store()
        .list_sessions(&httvps_control_plane::store::SessionFilter {
            live_only: true,
            device_id: Some(device),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Echoes `payload` through a new stream of `client` and checks it comes back whole.
pub async fn echo_once(client: &TestClient, echo: SocketAddr, payload: &[u8]) {
    let mut s = client.open(StreamKind::Tcp, echo, b"").await;
    s.accepted().await.unwrap();
    s.write(payload).await;
    s.finish();
    assert_eq!(s.read_to_end(Duration::from_secs(10)).await, payload);
}
