//! The fronted deployment with real components: a client → the real nginx binary (TLS, the
//! shipped site template) → the gateway's plain listener (TCP, and a unix socket) → a real
//! Shadowsocks node → a target. The gateway must see the client's address as nginx names it,
//! never nginx's own; forwarding headers and PROXY headers from untrusted peers must not count;
//! and nginx must answer the secret path without a valid upgrade exactly as a missing file.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::nginx_front::{Nginx, Upstream};
use common::*;
use futures_util::SinkExt;
use httvps_gateway::config::ListenAddr;
use httvps_gateway::front::proxy_header;
use httvps_gateway::GatewayConfig;
use httvps_proto::StreamKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(20);
/// Where the test's nginx connects to the gateway from (its `proxy_bind`): the only trusted
/// proxy, so the client (127.0.0.1) and nginx have different addresses.
const NGINX_SOURCE: &str = "127.0.0.3";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn fronted_config(plain: ListenAddr) -> GatewayConfig {
    GatewayConfig {
        listen: ListenAddr::Off,
        plain_listen: plain,
        trusted_proxies: vec![format!("{NGINX_SOURCE}/32").parse().unwrap()],
        ..test_config()
    }
}

fn plain_tcp(gw: &TestGateway) -> SocketAddr {
    match gw.gateway.plain_addr() {
        Some(ListenAddr::Tcp(addr)) => *addr,
        other => panic!("no plain TCP listener: {other:?}"),
    }
}

/// Downloads `len` bytes from a target through the session and checks their SHA-256.
async fn download(client: &TestClient, len: usize) {
    let (source, _) = source_server(len).await;
    let mut stream = client.open(StreamKind::Tcp, source, b"").await;
    stream.accepted().await.unwrap();
    let got = stream.read_to_end(T).await;
    assert_eq!(got.len(), len);
    assert_eq!(sha256(&got), sha256(&pattern(len)));
}

/// A request over TLS to nginx; the whole answer with its `Date` line removed.
/// A gateway with a plain TCP listener and nginx in front of it, connecting from
/// [`NGINX_SOURCE`].
async fn gateway_behind_nginx_over_tcp() -> (TestGateway, Nginx) {
    let gw = TestGateway::start_static(fronted_config(ListenAddr::Tcp(
        "127.0.0.1:0".parse().unwrap(),
    )))
    .await;
    let nginx = Nginx::start(
        PATH,
        Upstream::Tcp {
            gateway: plain_tcp(&gw),
            bind: NGINX_SOURCE,
        },
    )
    .await;
    (gw, nginx)
}

async fn ask(nginx: &Nginx, request: &str) -> String {
    let mut tls = tls_connect(nginx.addr, &nginx.fingerprint).await;
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn nginx_in_front_over_tcp_relays_and_the_gateway_sees_the_client() {
    let (gw, nginx) = gateway_behind_nginx_over_tcp().await;

    // client → nginx (TLS) → gateway → Shadowsocks node → target.
    let client = TestClient::try_connect_to(nginx.addr, &nginx.fingerprint, DEVICE, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("HELLO through nginx: {e:?}\n{}", nginx.error_log()));
    download(&client, 8 << 20).await;
    echo_once(&client, echo_server().await, b"through the front").await;

    // A failed HELLO counts against the client's address, not nginx's.
    let limiter = gw.gateway.hello_failures_per_ip();
    assert!(limiter.is_empty());
    let refused =
        TestClient::try_connect_to(nginx.addr, &nginx.fingerprint, DEVICE, b"wrong").await;
    assert!(refused.is_err(), "a wrong token is refused");
    assert!(limiter.contains(&ip("127.0.0.1")), "the client's address");
    assert!(!limiter.contains(&ip(NGINX_SOURCE)), "not nginx's");
    assert_eq!(limiter.len(), 1);
}

#[tokio::test]
async fn nginx_answers_the_secret_path_without_an_upgrade_as_a_missing_file() {
    let (_gw, nginx) = gateway_behind_nginx_over_tcp().await;
    let upgrade = |version: &str, protocol: &str| {
        format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Protocol: {protocol}\r\n"
        )
    };
    let cases = [
        ("GET", String::new()),
        ("HEAD", String::new()),
        ("POST", "Content-Length: 3\r\n".to_owned()),
        ("PUT", "Content-Length: 0\r\n".to_owned()),
        ("DELETE", String::new()),
        // Upgrades the gateway refuses: nginx's answer, not the gateway's.
        ("GET", upgrade("12", "httvps.v1")),
        ("GET", upgrade("13", "chat")),
        ("POST", upgrade("13", "httvps.v1")),
    ];
    for (method, headers) in &cases {
        let request = |path: &str| {
            let body = if method == &"POST" && !headers.contains("Upgrade") {
                "abc"
            } else {
                ""
            };
            format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n{body}"
            )
        };
        let secret = ask(&nginx, &request(PATH)).await;
        let missing = ask(&nginx, &request("/no-such-file-Zq3vN8xL2pR7tW1yB5cD")).await;
        assert!(secret.starts_with("HTTP/1.1 4"), "{method}: {secret}");
        assert_eq!(secret, missing, "{method} {headers:?}");
    }
    // The site itself is served, and a valid upgrade is not a 404.
    assert!(ask(
        &nginx,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .await
    .starts_with("HTTP/1.1 200 OK"));
    let ok = ask(
        &nginx,
        &format!(
            "GET {PATH} HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
            upgrade("13", "httvps.v1")
        ),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 101 "), "{ok}");
}

#[tokio::test]
async fn nginx_in_front_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gateway.sock");
    let gw = TestGateway::start_static(fronted_config(ListenAddr::Unix(socket.clone()))).await;
    let nginx = Nginx::start(PATH, Upstream::Unix(socket.clone())).await;
    let client = TestClient::try_connect_to(nginx.addr, &nginx.fingerprint, DEVICE, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("HELLO through nginx: {e:?}\n{}", nginx.error_log()));
    download(&client, 4 << 20).await;
    let limiter = gw.gateway.hello_failures_per_ip();
    let refused =
        TestClient::try_connect_to(nginx.addr, &nginx.fingerprint, DEVICE, b"wrong").await;
    assert!(refused.is_err());
    assert!(limiter.contains(&ip("127.0.0.1")), "named by nginx");
    assert_eq!(limiter.len(), 1);
    drop(gw);
}

/// A WebSocket over `stream` (after whatever the caller wrote first), a HELLO with a wrong
/// token, and the session's end.
async fn failed_hello_over(stream: TcpStream) {
    let mut request = format!("ws://localhost{PATH}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "httvps.v1".parse().unwrap());
    request
        .headers_mut()
        .insert("X-Forwarded-For", "198.51.100.9".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    ws.send(Message::Binary(hello_bytes(DEVICE, b"wrong")))
        .await
        .unwrap();
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(T, async { while ws.next().await.is_some() {} }).await;
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let gw = TestGateway::start_static(fronted_config(ListenAddr::Tcp(
        "127.0.0.1:0".parse().unwrap(),
    )))
    .await;
    let plain = plain_tcp(&gw);
    let limiter = gw.gateway.hello_failures_per_ip();
    // Untrusted peer: its X-Forwarded-For is ignored.
    failed_hello_over(connect_from("127.0.0.1", plain).await).await;
    assert!(limiter.contains(&ip("127.0.0.1")));
    assert!(!limiter.contains(&ip("198.51.100.9")));
    // Trusted peer: it names the client.
    failed_hello_over(connect_from(NGINX_SOURCE, plain).await).await;
    assert!(limiter.contains(&ip("198.51.100.9")));
    assert!(!limiter.contains(&ip(NGINX_SOURCE)));
}

#[tokio::test]
async fn proxy_protocol_v2_names_the_client_and_untrusted_headers_are_refused() {
    let gw = TestGateway::start_static(GatewayConfig {
        proxy_protocol: true,
        ..fronted_config(ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
    })
    .await;
    let plain = plain_tcp(&gw);
    let limiter = gw.gateway.hello_failures_per_ip();
    let client: SocketAddr = "203.0.113.7:40000".parse().unwrap();

    // From the trusted proxy: the PROXY header's source is the client (its X-Forwarded-For
    // is not, as 203.0.113.7 is no trusted proxy).
    let mut trusted = connect_from(NGINX_SOURCE, plain).await;
    trusted
        .write_all(&proxy_header::encode_v2(client, plain))
        .await
        .unwrap();
    failed_hello_over(trusted).await;
    assert!(limiter.contains(&client.ip()));
    assert_eq!(limiter.len(), 1);

    // From an untrusted peer: closed before any HTTP, no session, nothing counted.
    let mut untrusted = connect_from("127.0.0.1", plain).await;
    let spoofed: SocketAddr = "192.0.2.66:1".parse().unwrap();
    let mut bytes = proxy_header::encode_v2(spoofed, plain);
    bytes.extend_from_slice(
        format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let _ = untrusted.write_all(&bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(T, untrusted.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty(),
        "no answer: {}",
        String::from_utf8_lossy(&answer)
    );
    // A trusted proxy without a PROXY header is refused the same way.
    let mut bare = connect_from(NGINX_SOURCE, plain).await;
    let _ = bare
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(T, bare.read_to_end(&mut answer)).await;
    assert!(answer.is_empty());
    assert!(!limiter.contains(&spoofed.ip()));
    assert_eq!(limiter.len(), 1);
}
