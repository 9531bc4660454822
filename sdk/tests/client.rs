//! The SDK against a real gateway over real TLS and WebSocket, relaying through a real
//! Shadowsocks node in process to real TCP and UDP targets on loopback. (The device authority
//! here is the gateway's static one: the SDK is what is under test; the whole path with the
//! control plane is tested by httvps-client's end-to-end test.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httvps_gateway::{Gateway, GatewayConfig, Node, StaticAuthority, StaticNodes, TlsSource};
use httvps_sdk::{
    Client, ClientConfig, ConnectionState, Error, GatewayEndpoint, HelloErrorCode, ResetCode,
    TargetAddr, Trust,
};
use sha2::Digest;
use shadowsocks::config::{Mode, ServerConfig};
use shadowsocks::crypto::CipherKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[path = "../../common/test-support/echo.rs"]
mod echo;
use echo::echo_server;

// A strong path: the gateway refuses short or well-known ones.
const PATH: &str = "/sdk-test-Zk4o9Hq2Lw7Xc1Vb8Nm3Rt";
const DEVICE: &str = "sdk-device";
const TOKEN: &str = "sdk-device-token-0123456789";

async fn start_node() -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "sdk-node-password",
        CipherKind::CHACHA20_POLY1305,
    )
    .unwrap();
    cfg.set_mode(Mode::TcpAndUdp);
    let server = shadowsocks_service::server::ServerBuilder::new(cfg.clone())
        .build()
        .await
        .unwrap();
    tokio::spawn(server.run());
    Node {
        id: format!("node-{port}"),
        name: "sdk test node".into(),
        config: Arc::new(cfg),
    }
}

struct Harness {
    gateway: Option<Gateway>,
    tls: Arc<TlsSource>,
    node: Node,
    addr: SocketAddr,
}

fn gateway_config(listen: SocketAddr, allow_private: bool) -> GatewayConfig {
    GatewayConfig {
        listen: httvps_gateway::config::ListenAddr::Tcp(listen),
        metrics_listen: None,
        path: PATH.into(),
        allow_private_targets: allow_private,
        shutdown_grace: Duration::from_secs(2),
        ..GatewayConfig::default()
    }
}

impl Harness {
    async fn start(allow_private: bool) -> Harness {
        let tls = Arc::new(TlsSource::self_signed(&["localhost".into()]).unwrap());
        let node = start_node().await;
        let gateway = start_gateway(
            gateway_config("127.0.0.1:0".parse().unwrap(), allow_private),
            tls.clone(),
            node.clone(),
        )
        .await;
        let addr = gateway.local_addr();
        Harness {
            gateway: Some(gateway),
            tls,
            node,
            addr,
        }
    }

    fn config(&self) -> ClientConfig {
        let fp = hex_fingerprint(&self.tls.fingerprint());
        let gw = GatewayEndpoint {
            host: "127.0.0.1".into(),
            port: self.addr.port(),
            path: PATH.into(),
            server_name: Some("localhost".into()),
            trust: Trust::Pinned(fp),
            subprotocol: None,
        };
        let mut c = ClientConfig::new(gw, DEVICE, TOKEN);
        c.backoff.initial = Duration::from_millis(50);
        c.backoff.max = Duration::from_millis(500);
        c
    }

    async fn restart(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        let mut last = None;
        for _ in 0..50 {
            match Gateway::start(
                gateway_config(self.addr, true),
                self.tls.clone(),
                authority(),
                Arc::new(StaticNodes::new(vec![self.node.clone()])),
            )
            .await
            {
                Ok(g) => {
                    self.gateway = Some(g);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gateway did not restart on {}: {last:?}", self.addr);
    }
}

fn authority() -> Arc<StaticAuthority> {
    Arc::new(
        StaticAuthority::new()
            .with_device(DEVICE, TOKEN.as_bytes().to_vec())
            .with_device("revoked", b"revoked-token".to_vec())
            .with_revoked("revoked"),
    )
}

async fn start_gateway(config: GatewayConfig, tls: Arc<TlsSource>, node: Node) -> Gateway {
    Gateway::start(
        config,
        tls,
        authority(),
        Arc::new(StaticNodes::new(vec![node])),
    )
    .await
    .unwrap()
}

fn hex_fingerprint(s: &str) -> [u8; 32] {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

async fn source_server(len: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(&pattern(len)).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

fn target(addr: SocketAddr) -> TargetAddr {
    TargetAddr::socket(addr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_streams_carry_bytes_intact_both_ways_with_half_close() {
    let h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    assert_eq!(client.status().state, ConnectionState::Connected);
    let echo = echo_server().await;
    let mut stream = client.open_tcp(target(echo)).await.unwrap();
    let data = pattern(4 << 20);
    let (mut r, mut w) = tokio::io::split(&mut stream);
    let writer = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let reader = r.read_to_end(&mut back);
    let (_, n) = tokio::join!(writer, reader);
    assert_eq!(n.unwrap(), data.len());
    assert_eq!(
        sha2::Sha256::digest(&back),
        sha2::Sha256::digest(&data),
        "echoed bytes are intact after half-close"
    );

    let source = source_server(16 << 20).await;
    let mut down = client.open_tcp(target(source)).await.unwrap();
    let mut got = Vec::new();
    down.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        sha2::Sha256::digest(&got),
        sha2::Sha256::digest(pattern(16 << 20))
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_stream_always_sees_the_end() {
    // The FIN can arrive after the last byte was read, when the connection has already
    // forgotten the stream; the reader must still get its EOF (it once hung in ~1 of 20).
    let h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    let echo = echo_server().await;
    for round in 0..200 {
        let mut s = client.open_tcp(target(echo)).await.unwrap();
        let data = pattern(1000 + round);
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back))
            .await
            .unwrap_or_else(|_| panic!("round {round}: no EOF after {} bytes", back.len()))
            .unwrap();
        assert_eq!(back, data, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams_share_one_session() {
    let h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    let echo = echo_server().await;
    let mut tasks = Vec::new();
    for i in 0..32usize {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = client.open_tcp(target(echo)).await.unwrap();
            let data: Vec<u8> = pattern(256 * 1024)
                .into_iter()
                .map(|b| b ^ i as u8)
                .collect();
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            back == data
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "every stream got its own bytes back");
    }
    assert_eq!(client.status().sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_flows_carry_datagrams() {
    let h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolver = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut reply = b"answer:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from).await;
        }
    });
    let flow = client.open_udp(target(resolver)).await.unwrap();
    flow.send(None, Bytes::from_static(b"query-1")).unwrap();
    let (_, answer) = tokio::time::timeout(Duration::from_secs(5), flow.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer[..], b"answer:query-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let h = Harness::start(false).await;
    // Policy refusal of a loopback target: a stream reset with its code.
    let client = Client::connect(h.config()).await.unwrap();
    match client
        .open_tcp(TargetAddr::socket("127.0.0.1:9".parse().unwrap()).unwrap())
        .await
    {
        Err(Error::StreamReset(ResetCode::NotAllowed)) => {}
        other => panic!("expected not_allowed, got {other:?}"),
    }
    let io: std::io::Error = Error::StreamReset(ResetCode::NotAllowed).into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    // A revoked device is refused for good.
    let mut revoked = h.config();
    revoked.device_id = "revoked".into();
    revoked.device_token = "revoked-token".into();
    match Client::connect(revoked).await {
        Err(
            e @ Error::Refused {
                code: HelloErrorCode::Revoked,
                ..
            },
        ) => assert!(e.is_permanent()),
        other => panic!("expected revoked, got {other:?}"),
    }
    // A wrong pinned certificate never gets to HELLO.
    let mut pinned_wrong = h.config();
    pinned_wrong.gateways[0].trust = Trust::Pinned([7; 32]);
    match Client::connect(pinned_wrong).await {
        Err(Error::Unreachable(why)) => assert!(why.contains("TLS"), "{why}"),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_by_itself_after_a_gateway_restart() {
    let mut h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    let echo = echo_server().await;
    let mut s = client.open_tcp(target(echo)).await.unwrap();
    s.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).await.unwrap();
    drop(s);
    let mut status = client.watch_status();
    h.restart().await;
    // The old session ends (GOAWAY, then close) and a new one is made without being asked.
    let reconnected = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let st = status.borrow_and_update().clone();
            if st.sessions >= 2 && st.state == ConnectionState::Connected {
                return st;
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("reconnected within 15 s");
    assert_eq!(reconnected.sessions, 2);
    let mut s = client.open_tcp(target(echo)).await.unwrap();
    s.write_all(b"after!").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"after!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_links_configure_the_client() {
    let h = Harness::start(true).await;
    let fp = h.tls.fingerprint().replace(':', "").to_lowercase();
    let link = format!(
        "httvps://{DEVICE}:{TOKEN}@127.0.0.1:{}{PATH}?fp={fp}&sni=localhost",
        h.addr.port()
    );
    let config = ClientConfig::from_link(&link).unwrap();
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "Debug hides the token"
    );
    let client = Client::connect(config).await.unwrap();
    assert_eq!(
        client.status().gateway.as_deref(),
        Some(format!("127.0.0.1:{}", h.addr.port()).as_str())
    );
    assert!(matches!(
        ClientConfig::from_link("https://nope"),
        Err(Error::Config(_))
    ));
}

/// Time the current runtime's workers spent running tasks so far (this test's runtime only:
/// other tests run in the same process).
fn runtime_busy() -> Duration {
    let metrics = tokio::runtime::Handle::current().metrics();
    (0..metrics.num_workers())
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_uses_no_cpu_and_close_is_final() {
    let h = Harness::start(true).await;
    let client = Client::connect(h.config()).await.unwrap();
    // The session's first PING comes back: the session info changed at least once.
    let mut status = client.watch_status();
    tokio::time::timeout(Duration::from_secs(5), async {
        while status.borrow_and_update().rtt.is_none() {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("an RTT within 5 s");
    let before = runtime_busy();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = runtime_busy().saturating_sub(before);
    assert!(
        busy < Duration::from_millis(100),
        "an idle client and gateway kept the runtime busy for {busy:?} in 500 ms"
    );

    client.close().await;
    // Closed for good: no reconnect during the next half second.
    let end = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < end {
        assert_eq!(
            client.status().state,
            ConnectionState::Closed,
            "closing does not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = client.status();
    assert_eq!(
        st.state,
        ConnectionState::Closed,
        "closing does not reconnect"
    );
    assert_eq!(st.sessions, 1);
}
