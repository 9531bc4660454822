//! Standalone mode against the real nginx binary: every connection that is not a session is
//! relayed to nginx, so a prober gets nginx's own bytes over TLS, while sessions still work
//! on the same listener.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::nginx::Nginx;
use common::*;
use httvps_gateway::config::FallbackAddr;
use httvps_gateway::GatewayConfig;
use httvps_proto::StreamKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(10);

fn standalone_config(nginx: &Nginx) -> GatewayConfig {
    GatewayConfig {
        fallback: Some(FallbackAddr::Tcp(nginx.http.to_string())),
        fallback_raw: Some(FallbackAddr::Tcp(nginx.tls.to_string())),
        ..test_config()
    }
}

/// Standalone with the recommended `tls://` fallback: nginx's own TLS listener.
fn standalone_tls_config(nginx: &Nginx) -> GatewayConfig {
    GatewayConfig {
        fallback: Some(FallbackAddr::Tls(nginx.tls.to_string())),
        ..standalone_config(nginx)
    }
}

/// How a connection ended, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// TLS close_notify (or, for plain TCP, FIN).
    Clean,
    /// FIN or reset without close_notify.
    Quiet,
    /// Still open when the test stopped waiting.
    Open,
}

async fn read_until_close<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    wait: Duration,
) -> (Vec<u8>, Close) {
    let mut out = Vec::new();
    let close = match tokio::time::timeout(wait, s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Close::Clean,
        Ok(Err(_)) => Close::Quiet,
        Err(_) => Close::Open,
    };
    (out, close)
}

/// Sends `request` over TLS and reads until the server closes (or 5 s pass).
async fn exchange(addr: SocketAddr, fingerprint: &str, request: &[u8]) -> Vec<u8> {
    exchange_closing(addr, fingerprint, request, Duration::from_secs(5))
        .await
        .0
}

async fn exchange_closing(
    addr: SocketAddr,
    fingerprint: &str,
    request: &[u8],
    wait: Duration,
) -> (Vec<u8>, Close) {
    let mut tls = tls_connect(addr, fingerprint).await;
    tls.write_all(request).await.unwrap();
    read_until_close(&mut tls, wait).await
}

/// The bytes without `Date:` header lines (they differ by the second).
fn without_date(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn probes() -> Vec<(&'static str, Vec<u8>)> {
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let big = "a".repeat(9000);
    let huge = "b".repeat(40_000);
    vec![
        ("GET /", b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("HEAD /", b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("POST /", b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec()),
        ("folder without slash", b"GET /docs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("missing file", b"GET /nothing.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("Range", b"GET /robots.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n".to_vec()),
        ("If-Modified-Since", b"GET / HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nConnection: close\r\n\r\n".to_vec()),
        ("malformed request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("lower-case method", b"get / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        ("oversized header", format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\nConnection: close\r\n\r\n").into_bytes()),
        ("keep-alive, two requests", b"GET /robots.txt HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("secret path without upgrade", format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()),
        ("secret path, wrong version", format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\n{ws}Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: httvps.v1\r\n\r\n").into_bytes()),
        ("secret path, wrong subprotocol", format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\n{ws}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n").into_bytes()),
        ("secret path, POST upgrade", format!("POST {PATH} HTTP/1.1\r\nHost: localhost\r\n{ws}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n").into_bytes()),
        ("secret path, oversized head", format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nX-Huge: {huge}\r\n\r\n").into_bytes()),
        ("another path, valid upgrade", format!("GET /chat HTTP/1.1\r\nHost: localhost\r\n{ws}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: httvps.v1\r\n\r\n").into_bytes()),
    ]
}

#[tokio::test]
async fn every_request_that_is_not_a_session_gets_nginx_s_own_bytes() {
    let nginx = Nginx::start().await;
    probes_answer_like_nginx(&nginx, standalone_config(&nginx)).await;
}

#[tokio::test]
async fn every_request_gets_nginx_s_own_bytes_through_the_tls_fallback() {
    let nginx = Nginx::start().await;
    probes_answer_like_nginx(&nginx, standalone_tls_config(&nginx)).await;
}

/// Each of [`probes`] to nginx directly and through a gateway with `config`: the same bytes
/// (but `Date`) and the same close.
async fn probes_answer_like_nginx(nginx: &Nginx, config: GatewayConfig) {
    let gw = TestGateway::start_static(config).await;
    let mut different = Vec::new();
    let wait = Duration::from_secs(5);
    for (name, request) in probes() {
        let (direct, direct_close) =
            exchange_closing(nginx.tls, &nginx.fingerprint, &request, wait).await;
        let (through, through_close) =
            exchange_closing(gw.addr(), &gw.fingerprint(), &request, wait).await;
        assert!(!direct.is_empty(), "{name}: nginx answered nothing");
        if without_date(&direct) != without_date(&through) || direct_close != through_close {
            different.push(format!(
                "{name}:\n--- nginx ({direct_close:?})\n{}\n--- gateway ({through_close:?})\n{}",
                without_date(&direct),
                without_date(&through)
            ));
        }
    }
    assert!(different.is_empty(), "{}", different.join("\n\n"));
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_nginx_s_400_page() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let plain = |addr: SocketAddr| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
        out
    };
    let direct = plain(nginx.tls).await;
    let through = plain(gw.addr()).await;
    assert!(
        String::from_utf8_lossy(&direct).contains("The plain HTTP request was sent to HTTPS port"),
        "{}",
        String::from_utf8_lossy(&direct)
    );
    assert_eq!(without_date(&direct), without_date(&through));
}

#[tokio::test]
async fn a_session_works_on_the_same_listener_as_the_relayed_site() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    let page = exchange(
        gw.addr(),
        &gw.fingerprint(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(String::from_utf8_lossy(&page).contains("Mountain Bakery"));
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"early").await;
    stream.accepted().await.unwrap();
    let data = pattern(256 * 1024);
    stream.write(&data).await;
    stream.finish();
    let echoed = stream.read_to_end(T).await;
    assert_eq!(echoed.len(), 5 + data.len());
    assert_eq!(&echoed[..5], b"early");
    assert_eq!(sha256(&echoed[5..]), sha256(&data));
}

/// A listener that accepts TCP connections and never answers (a hung web server).
/// Also returns how many connections it has accepted.
async fn silent_server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, accepted, task)
}

#[tokio::test]
async fn a_hung_or_dead_fallback_stalls_nothing_else() {
    let (hung, relayed, _task) = silent_server().await;
    let config = GatewayConfig {
        fallback: Some(FallbackAddr::Tcp(hung.to_string())),
        fallback_max_connections: 3,
        ..test_config()
    };
    let gw = TestGateway::start_static(config).await;
    // Three probes occupy every relay permit on the hung fallback.
    let mut stuck = Vec::new();
    for _ in 0..3 {
        let mut tls = tls_connect(gw.addr(), &gw.fingerprint()).await;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        stuck.push(tls);
    }
    eventually(T, "three relays hold the fallback", || async {
        relayed.load(Ordering::SeqCst) == 3
    })
    .await;
    // The next one is closed at once (busy), not queued behind them.
    let busy = tokio::time::timeout(
        T,
        exchange(
            gw.addr(),
            &gw.fingerprint(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
    )
    .await
    .expect("a busy fallback closes the connection");
    assert!(busy.is_empty(), "{}", String::from_utf8_lossy(&busy));
    // Sessions are untouched.
    let echo = echo_server().await;
    let client = tokio::time::timeout(T, gw.client()).await.unwrap();
    let mut stream = client.open(StreamKind::Tcp, echo, b"").await;
    stream.accepted().await.unwrap();
    stream.write(b"still here").await;
    stream.finish();
    assert_eq!(stream.read_to_end(T).await, b"still here");
    drop(stuck);

    // A fallback nobody listens on: the connection is closed, quickly.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let config = GatewayConfig {
        fallback: Some(FallbackAddr::Tcp(dead_addr.to_string())),
        ..test_config()
    };
    let gw = TestGateway::start_static(config).await;
    let answer = tokio::time::timeout(
        T,
        exchange(
            gw.addr(),
            &gw.fingerprint(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
    )
    .await
    .expect("a dead fallback closes the connection");
    assert!(answer.is_empty());
    let client = tokio::time::timeout(T, gw.client()).await.unwrap();
    drop(client);
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_closed_at_accept() {
    let config = GatewayConfig {
        max_connections_per_ip: 2,
        ..test_config()
    };
    let gw = TestGateway::start_static(config).await;
    let _a = TcpStream::connect(gw.addr()).await.unwrap();
    let _b = TcpStream::connect(gw.addr()).await.unwrap();
    eventually(T, "both counted", || async {
        gw.gateway.connections_open() == 2
    })
    .await;
    let mut third = TcpStream::connect(gw.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, third.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "closed at accept");
    drop(_a);
    eventually(T, "the closed one is no longer counted", || async {
        gw.gateway.connections_open() == 1
    })
    .await;
    let page = http_request(
        &gw,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        page.starts_with("HTTP/1.1 404 Not Found"),
        "a freed slot serves again: {page}"
    );
}

#[tokio::test]
async fn timeouts_close_like_nginx_s() {
    // nginx and the gateway with the same short timeouts (nginx's defaults are 60 s and 75 s).
    let nginx = Nginx::start_with("client_header_timeout 1s; keepalive_timeout 2s;").await;
    let config = GatewayConfig {
        client_header_timeout: Duration::from_secs(1),
        tls_handshake_timeout: Duration::from_secs(1),
        keepalive_timeout: Duration::from_secs(2),
        ..standalone_config(&nginx)
    };
    let gw = TestGateway::start_static(config).await;
    let wait = Duration::from_secs(6);
    let secret_start = format!("GET {}", &PATH[..3]);
    // What nginx does (checked here too): close_notify on an idle connection, a quiet close
    // on a request head that timed out midway (c->timedout in ngx_ssl_shutdown).
    let cases: [(&str, &[u8], Close); 4] = [
        ("nothing after the handshake", b"", Close::Clean),
        ("a partial request", b"GET /robots.t", Close::Quiet),
        (
            "a partial start of the secret path",
            secret_start.as_bytes(),
            Close::Quiet,
        ),
        (
            "keep-alive idle after a response",
            b"GET /robots.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
            Close::Clean,
        ),
    ];
    let mut different = Vec::new();
    for (name, request, nginx_close) in cases {
        let direct = exchange_closing(nginx.tls, &nginx.fingerprint, request, wait).await;
        let through = exchange_closing(gw.addr(), &gw.fingerprint(), request, wait).await;
        assert_eq!(direct.1, nginx_close, "{name}: nginx");
        if without_date(&direct.0) != without_date(&through.0) || direct.1 != through.1 {
            different.push(format!(
                "{name}: nginx {:?}, gateway {:?}",
                direct.1, through.1
            ));
        }
    }
    // TCP without a ClientHello: both close after the timeout, without a byte.
    for addr in [nginx.tls, gw.addr()] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let (bytes, close) = read_until_close(&mut tcp, wait).await;
        if !bytes.is_empty() || close == Close::Open {
            different.push(format!("no ClientHello to {addr}: {close:?} {bytes:?}"));
        }
    }
    assert!(different.is_empty(), "{}", different.join("\n"));
}

/// nginx's lingering close (a POST it answered before reading the whole body) ends, after
/// `lingering_timeout`, with a timed-out and so quiet close: no `close_notify`. The plain
/// fallback cannot tell that close from a normal one; through the `tls://` fallback the
/// gateway sees nginx's TLS close and mirrors it.
#[tokio::test]
async fn a_lingering_close_timeout_is_quiet_through_the_tls_fallback_like_nginx_s() {
    let nginx = Nginx::start_with("lingering_timeout 1s;").await;
    let gw = TestGateway::start_static(standalone_tls_config(&nginx)).await;
    // Content-Length 100 but 5 bytes: nginx answers 405 at once and lingers on the rest.
    let request = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nhello";
    let wait = Duration::from_secs(6);
    let direct = exchange_closing(nginx.tls, &nginx.fingerprint, request, wait).await;
    let through = exchange_closing(gw.addr(), &gw.fingerprint(), request, wait).await;
    assert!(
        direct.0.starts_with(b"HTTP/1.1 405 Not Allowed\r\n"),
        "{}",
        String::from_utf8_lossy(&direct.0)
    );
    assert_eq!(
        direct.1,
        Close::Quiet,
        "nginx closes a lingering timeout quietly"
    );
    assert_eq!(without_date(&through.0), without_date(&direct.0));
    assert_eq!(
        through.1,
        Close::Quiet,
        "the gateway mirrors nginx's quiet close"
    );
}

/// The other closes through the `tls://` fallback: nginx's `close_notify` (after
/// `Connection: close`, and after its keep-alive timeout) reaches the client as one.
#[tokio::test]
async fn nginx_s_close_notify_is_mirrored_through_the_tls_fallback() {
    let nginx = Nginx::start_with("keepalive_timeout 1s;").await;
    let gw = TestGateway::start_static(standalone_tls_config(&nginx)).await;
    let wait = Duration::from_secs(6);
    for request in [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"[..],
        &b"GET /robots.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
    ] {
        let direct = exchange_closing(nginx.tls, &nginx.fingerprint, request, wait).await;
        let through = exchange_closing(gw.addr(), &gw.fingerprint(), request, wait).await;
        assert_eq!(direct.1, Close::Clean);
        assert_eq!(without_date(&through.0), without_date(&direct.0));
        assert_eq!(through.1, Close::Clean);
    }
}

/// nginx picks its server block by SNI: the `tls://` fallback is offered the client's.
#[tokio::test]
async fn the_tls_fallback_is_offered_the_client_s_sni() {
    let nginx = Nginx::start_with("add_header X-Sni \"$ssl_server_name\" always;").await;
    let gw = TestGateway::start_static(standalone_tls_config(&nginx)).await;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let direct = exchange(nginx.tls, &nginx.fingerprint, request).await;
    let through = exchange(gw.addr(), &gw.fingerprint(), request).await;
    assert!(
        String::from_utf8_lossy(&direct).contains("\r\nX-Sni: localhost\r\n"),
        "{}",
        String::from_utf8_lossy(&direct)
    );
    assert_eq!(without_date(&through), without_date(&direct));
}

#[tokio::test]
async fn draining_closes_idle_relayed_connections_with_close_notify() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    let mut tls = tls_connect(gw.addr(), &gw.fingerprint()).await;
    tls.write_all(b"GET /robots.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The answer arrives; nginx keeps the connection alive.
    let (answer, close) = read_until_close(&mut tls, Duration::from_secs(1)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(close, Close::Open);
    let idle_before_request = tls_connect(gw.addr(), &gw.fingerprint()).await;
    let shutdown = tokio::spawn(gw.gateway.shutdown());
    let (rest, close) = read_until_close(&mut tls, T).await;
    assert!(rest.is_empty());
    assert_eq!(
        close,
        Close::Clean,
        "an idle keep-alive relay ends with close_notify"
    );
    let mut idle = idle_before_request;
    let (rest, close) = read_until_close(&mut idle, T).await;
    assert!(rest.is_empty());
    assert_eq!(close, Close::Clean, "a connection without a request too");
    // Nothing left holds the shutdown until its grace period (5 s + 3 s margin) runs out.
    tokio::time::timeout(Duration::from_secs(4), shutdown)
        .await
        .expect("shutdown waits for no idle connection")
        .unwrap();
}

/// `openssl s_client` (the real OpenSSL tool) against `addr` with `args`, sending one request
/// that the gateway answers and closes on; returns everything it printed.
async fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    use std::process::Stdio;
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-ign_eof")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let output = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("s_client ends when the gateway closes")
        .unwrap();
    drop(stdin);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The lines of `s_client` output that name the cipher and the ticket lifetimes.
fn tls_choices(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("New, ") || l.starts_with("TLS session ticket lifetime hint"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn tls_cipher_choice_and_ticket_lifetimes_match_nginx() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    // Offers in an order other than the server's: the server's (OpenSSL's) order decides, as
    // with Debian's `ssl_prefer_server_ciphers on`.
    let offers: [&[&str]; 5] = [
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305",
        ],
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384",
        ],
        &["-tls1_2"],
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
        ],
        &["-tls1_3"],
    ];
    for offer in offers {
        let direct = s_client(nginx.tls, offer).await;
        let through = s_client(gw.addr(), offer).await;
        let choices = tls_choices(&direct);
        assert!(
            choices.iter().any(|l| l.contains("lifetime hint: 300")),
            "nginx issues 300 s tickets: {direct}"
        );
        assert_eq!(
            choices,
            tls_choices(&through),
            "{offer:?}\n--- gateway\n{through}"
        );
    }
}

/// What `s_client` says about ALPN: the protocol chosen, or that the server refused.
fn alpn_outcome(output: &str) -> String {
    if output.contains("no application protocol") {
        return "refused: no application protocol".into();
    }
    output
        .lines()
        .find(|l| l.starts_with("ALPN protocol:") || l.starts_with("No ALPN negotiated"))
        .unwrap_or("no ALPN line")
        .to_owned()
}

#[tokio::test]
async fn alpn_is_negotiated_like_nginx_without_http2() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    let cases = [
        ("h2,http/1.1", "ALPN protocol: http/1.1"),
        ("http/1.0", "ALPN protocol: http/1.0"),
        ("http/1.0,http/1.1", "ALPN protocol: http/1.1"),
        ("h2", "refused: no application protocol"),
        ("spdy/3", "refused: no application protocol"),
    ];
    for (offer, nginx_outcome) in cases {
        let direct = s_client(nginx.tls, &["-alpn", offer]).await;
        let through = s_client(gw.addr(), &["-alpn", offer]).await;
        assert_eq!(alpn_outcome(&direct), nginx_outcome, "nginx, offer {offer}");
        assert_eq!(
            alpn_outcome(&direct),
            alpn_outcome(&through),
            "offer {offer}:\n--- nginx\n{direct}\n--- gateway\n{through}"
        );
    }
}

#[tokio::test]
async fn odd_sni_values_nginx_accepts_are_accepted_except_the_documented_ones() {
    let nginx = Nginx::start().await;
    let gw = TestGateway::start_static(standalone_config(&nginx)).await;
    let handshake_done =
        |output: &str| output.contains("Cipher is ") && !output.contains("Cipher is (NONE)");
    for name in [
        "under_score.example",
        "trailing.dot.example.",
        "127.0.0.1",
        "MiXeD.Example",
    ] {
        let direct = s_client(nginx.tls, &["-servername", name]).await;
        let through = s_client(gw.addr(), &["-servername", name]).await;
        assert!(handshake_done(&direct), "nginx, SNI {name}: {direct}");
        assert!(handshake_done(&through), "gateway, SNI {name}: {through}");
    }
    // rustls refuses SNI values that are not DNS names (docs/operations.md, "Standalone mode");
    // when this starts passing, that list needs updating.
    for name in ["empty..label.example", "-leading.example", "1.2.3.999"] {
        let direct = s_client(nginx.tls, &["-servername", name]).await;
        let through = s_client(gw.addr(), &["-servername", name]).await;
        assert!(handshake_done(&direct), "nginx, SNI {name}: {direct}");
        assert!(
            !handshake_done(&through) && through.contains("illegal parameter"),
            "gateway, SNI {name}: {through}"
        );
    }
}

#[tokio::test]
async fn a_session_s_connection_ends_with_close_notify() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let gw = TestGateway::start_static(test_config()).await;
    let mut ws = ws_connect(&gw).await;
    ws.send(Message::Binary(gw.hello())).await.unwrap();
    let ack = tokio::time::timeout(T, ws.next()).await.unwrap();
    assert!(matches!(ack, Some(Ok(Message::Binary(_)))), "{ack:?}");
    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(T, ws.next()).await {}
    // After the WebSocket close handshake, TLS ends with close_notify (read gives a clean EOF)
    // rather than a bare FIN (an unexpected-EOF error).
    let mut rest = Vec::new();
    let end = tokio::time::timeout(T, ws.get_mut().read_to_end(&mut rest))
        .await
        .expect("the gateway closes the connection");
    assert!(end.is_ok(), "{end:?}");
}
