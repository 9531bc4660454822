//! The data path end to end: client → TLS/WebSocket → gateway → Shadowsocks node → target.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::wait::{holds_for, settled};
use common::*;
use httvps_gateway::GatewayConfig;
use httvps_proto::{ResetCode, StreamKind, TargetAddr};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(30);
/// How long a count must stay unchanged to count as settled.
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn bytes_arrive_intact_both_ways_through_the_node() {
    let gw = TestGateway::start(test_config()).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"").await;
    stream.accepted().await.unwrap();
    let data = pattern(4 * 1024 * 1024 + 123);
    let writer = {
        let data = data.clone();
        async move {
            stream.write(&data).await;
            stream.finish();
            stream.read_to_end(T).await
        }
    };
    let echoed = writer.await;
    assert_eq!(echoed.len(), data.len());
    assert_eq!(sha256(&echoed), sha256(&data));
}

#[tokio::test]
async fn download_of_several_mib_is_intact() {
    let gw = TestGateway::start(test_config()).await;
    let len = 8 * 1024 * 1024;
    let (source, _) = source_server(len).await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, source, b"").await;
    stream.accepted().await.unwrap();
    let got = stream.read_to_end(T).await;
    assert_eq!(got.len(), len);
    assert_eq!(sha256(&got), sha256(&pattern(len)));
}

#[tokio::test]
async fn many_concurrent_streams_each_get_their_own_bytes() {
    let gw = TestGateway::start(test_config()).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut tasks = Vec::new();
    for i in 0..48usize {
        let mut stream = client.open(StreamKind::Tcp, echo, b"").await;
        tasks.push(tokio::spawn(async move {
            stream.accepted().await.unwrap();
            let data: Vec<u8> = pattern(64 * 1024 + i * 977)
                .iter()
                .map(|b| b ^ i as u8)
                .collect();
            stream.write(&data).await;
            stream.finish();
            let got = stream.read_to_end(T).await;
            assert_eq!(sha256(&got), sha256(&data), "stream {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(gw.gateway.stats().streams_accepted.load(Ordering::Relaxed) >= 48);
}

#[tokio::test]
async fn early_data_rides_with_the_open_and_half_close_keeps_the_other_way() {
    let gw = TestGateway::start(test_config()).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"GET / early").await;
    stream.accepted().await.unwrap();
    // Our FIN half-closes the target's write side; the echo server still answers everything
    // it got, then closes: the gateway must deliver all of it, then FIN.
    stream.finish();
    let got = stream.read_to_end(T).await;
    assert_eq!(got, b"GET / early");
}

#[tokio::test]
async fn reset_stops_reading_the_upstream_at_once() {
    let gw = TestGateway::start(test_config()).await;
    let len = 256 * 1024 * 1024;
    let (source, mut written) = source_server(len).await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, source, b"").await;
    stream.accepted().await.unwrap();
    // Read a little, then reset.
    let mut got = 0;
    while got < 512 * 1024 {
        if let Some(StreamEv::Data(d)) = stream.next(T).await {
            got += d.len();
        }
    }
    stream.reset();
    let mut last = 0;
    let later = writes_stop(&mut written, &mut last).await;
    assert!(
        later < len / 4,
        "the upstream was drained after the reset ({later} bytes)"
    );
}

/// The last count a source server reported (bytes it managed to write so far).
/// Waits for the target's writes to settle, checks they stay settled and that nothing more was
/// written; returns how many bytes it wrote.
async fn writes_stop(
    written: &mut tokio::sync::mpsc::UnboundedReceiver<usize>,
    last: &mut usize,
) -> usize {
    let after_reset = settled(T, QUIET, "the target's writes after the reset", || {
        latest(written, last)
    })
    .await;
    holds_for(Duration::from_millis(700), "no more writes", || {
        let now = latest(written, last);
        async move { now == after_reset }
    })
    .await;
    let later = latest(written, last);
    assert_eq!(
        later, after_reset,
        "the target kept being read after the reset"
    );
    later
}

fn latest(written: &mut tokio::sync::mpsc::UnboundedReceiver<usize>, last: &mut usize) -> usize {
    while let Ok(n) = written.try_recv() {
        *last = n;
    }
    *last
}

/// The stalled session among the gateway's sessions: it received nothing from its client.
fn stalled_session(gw: &TestGateway) -> httvps_gateway::SessionStatsSnapshot {
    let sessions = gw.gateway.stats().sessions();
    let stalled: Vec<_> = sessions
        .into_iter()
        .filter(|s| s.bytes_up == 0 && s.bytes_down > 0)
        .collect();
    assert_eq!(stalled.len(), 1, "one session only downloads");
    stalled[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_of_a_1_gib_download_holds_one_window_while_another_session_relays() {
    const GIB: usize = 1 << 30;
    const WINDOW: usize = 256 * 1024; // the client's initial stream window (SessionConfig)
    let gw = TestGateway::start(test_config()).await;
    let (source, mut written) = source_server(GIB).await;
    let echo = echo_server().await;
    let slow = gw.client().await;
    let target = TargetAddr::socket(source).unwrap();
    let mut stream = slow.open_with(StreamKind::Tcp, target, b"", false).await;
    stream.accepted().await.unwrap();

    // The client reads what arrives but never consumes: exactly one window comes.
    let mut received = Vec::new();
    while let Some(StreamEv::Data(d)) = stream.next(Duration::from_secs(1)).await {
        received.extend_from_slice(&d);
    }
    assert_eq!(received.len(), WINDOW, "exactly one window was delivered");

    // Meanwhile another session on the same gateway keeps relaying, and the stalled session's
    // buffered bytes stay within its window the whole time.
    let other = gw.client().await;
    let mut last = 0;
    let target_stalled_at = latest(&mut written, &mut last);
    for round in 0..16usize {
        let data = pattern_at(round * 1000, 256 * 1024);
        let mut s = other.open(StreamKind::Tcp, echo, b"").await;
        s.accepted().await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), async {
            s.write(&data).await;
            s.finish();
            s.read_to_end(T).await
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the other session stalled"));
        assert_eq!(sha256(&echoed), sha256(&data), "round {round}");
        let stalled = stalled_session(&gw);
        assert!(
            stalled.buffered_bytes <= WINDOW && stalled.peak_buffered_bytes <= WINDOW,
            "the gateway held {stalled:?} for a stream with a {WINDOW} byte window"
        );
        assert_eq!(
            stalled.bytes_down, WINDOW as u64,
            "nothing beyond the window"
        );
    }
    // The target is blocked by TCP backpressure: it wrote the window plus socket buffers,
    // nowhere near the GiB, and writes nothing more while the client does not read.
    let target_wrote = latest(&mut written, &mut last);
    assert!(
        target_wrote < 32 * 1024 * 1024,
        "target wrote {target_wrote} bytes"
    );
    assert!(
        target_wrote >= target_stalled_at && target_wrote - target_stalled_at < 8 * 1024 * 1024,
        "the target kept being read while the client was stalled ({target_stalled_at} → {target_wrote})"
    );

    assert_eq!(received, pattern(WINDOW));
    // The client resumes: a bounded amount more arrives, in order, intact.
    const MORE: usize = 8 * 1024 * 1024;
    stream.consume(received.len());
    let mut offset = received.len();
    while offset < WINDOW + MORE {
        match stream.next(T).await {
            Some(StreamEv::Data(d)) => {
                assert_eq!(&d[..], &pattern_at(offset, d.len())[..], "at {offset}");
                offset += d.len();
                stream.consume(d.len());
            }
            other => panic!("after {offset} bytes: {other:?}"),
        }
    }
    let peak = stalled_session(&gw).peak_buffered_bytes;
    assert!(
        peak <= 16 * 1024 * 1024,
        "held {peak} bytes, more than the client's largest stream window"
    );

    // Cancel: the upstream is no longer read.
    stream.reset();
    let after_reset = writes_stop(&mut written, &mut last).await;
    assert!(
        after_reset < offset + 64 * 1024 * 1024,
        "{after_reset} bytes left the target for {offset} delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_opens_take_pre_warmed_node_connections_which_refill_and_expire() {
    let config = GatewayConfig {
        node_prewarm: 2,
        node_prewarm_idle_timeout: Duration::from_millis(1500),
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let prewarm = gw.gateway.upstreams().prewarm();
    let echo = echo_server().await;
    let client = gw.client().await;
    let idle_becomes = |n: usize| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while prewarm.idle_connections() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "idle never became {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let echo_once = |payload: Vec<u8>| {
        let client = &client;
        async move {
            let mut s = client.open(StreamKind::Tcp, echo, b"").await;
            s.accepted().await.unwrap();
            s.write(&payload).await;
            s.finish();
            assert_eq!(sha256(&s.read_to_end(T).await), sha256(&payload));
        }
    };
    // The first stream to a node connects afresh; the pool fills behind it, up to its cap.
    echo_once(pattern(10_000)).await;
    assert_eq!(prewarm.stats().misses.load(Ordering::Relaxed), 1);
    assert_eq!(prewarm.stats().hits.load(Ordering::Relaxed), 0);
    idle_becomes(2).await;
    // Later streams take a pre-warmed connection (the header goes on it), and it is refilled.
    for i in 0..4u64 {
        echo_once(pattern_at(i as usize, 100_000)).await;
        assert_eq!(prewarm.stats().hits.load(Ordering::Relaxed), i + 1);
        idle_becomes(2).await;
    }
    assert_eq!(prewarm.stats().misses.load(Ordering::Relaxed), 1);
    // Unused, they are closed after the idle timeout and not refilled.
    idle_becomes(0).await;
    assert!(prewarm.stats().expired.load(Ordering::Relaxed) >= 2);
    holds_for(
        Duration::from_millis(500),
        "no refill after the expiry",
        || async { prewarm.idle_connections() == 0 },
    )
    .await;
    assert_eq!(prewarm.idle_connections(), 0);
}

#[tokio::test]
async fn udp_datagrams_round_trip_like_dns() {
    let gw = TestGateway::start(test_config()).await;
    let resolver = udp_responder().await;
    let other = udp_responder().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Udp, resolver, b"").await;
    stream.accepted().await.unwrap();
    for i in 0..5u8 {
        stream.datagram(None, &[b'q', i]);
        match stream.next(T).await {
            Some(StreamEv::Datagram(None, data)) => {
                assert_eq!(&data[..], &[b'r', b'e', b':', b'q', i])
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }
    // A per-datagram destination: the reply carries its source address.
    stream.datagram(Some(TargetAddr::socket(other).unwrap()), b"x");
    match stream.next(T).await {
        Some(StreamEv::Datagram(Some(from), data)) => {
            assert_eq!(from, TargetAddr::socket(other).unwrap());
            assert_eq!(&data[..], b"re:x");
        }
        other => panic!("expected a reply with address, got {other:?}"),
    }
    assert_eq!(gw.gateway.stats().udp_sockets.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn restricted_targets_are_refused_with_not_allowed() {
    let config = GatewayConfig {
        allow_private_targets: false,
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let client = gw.client().await;
    for target in [
        "127.0.0.1:80",
        "10.0.0.1:80",
        "169.254.169.254:80",
        "[::ffff:127.0.0.1]:22",
        "[fd00:ec2::254]:80",
    ] {
        let mut s = client
            .open(StreamKind::Tcp, target.parse().unwrap(), b"x")
            .await;
        assert_eq!(s.accepted().await, Err(ResetCode::NotAllowed), "{target}");
    }
    let meta = TargetAddr::domain("metadata.google.internal", 80).unwrap();
    let mut s = client.open_with(StreamKind::Tcp, meta, b"", true).await;
    assert_eq!(s.accepted().await, Err(ResetCode::NotAllowed));
    let local = TargetAddr::domain("localhost", 80).unwrap();
    let mut s = client.open_with(StreamKind::Udp, local, b"", true).await;
    assert_eq!(s.accepted().await, Err(ResetCode::NotAllowed));
    // The session is still fine afterwards.
    client.ping();
}

#[tokio::test]
async fn a_failed_node_is_skipped_and_the_stream_retried_on_another() {
    let node = start_node().await;
    let gw =
        TestGateway::start_with_nodes(test_config(), vec![dead_node(), node.clone()], node).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"ping").await;
    stream.accepted().await.unwrap();
    stream.finish();
    assert_eq!(stream.read_to_end(T).await, b"ping");
}

#[tokio::test]
async fn no_working_node_resets_with_node_unavailable() {
    let dead = dead_node();
    let gw = TestGateway::start_with_nodes(test_config(), vec![dead.clone()], dead).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"").await;
    assert_eq!(stream.accepted().await, Err(ResetCode::NodeUnavailable));
}

#[tokio::test]
async fn pending_opens_beyond_the_limit_get_stream_limit() {
    let config = GatewayConfig {
        max_pending_opens: 2,
        ..test_config()
    };
    let dead = dead_node();
    // Connecting to a dead node fails fast, so keep opens pending with a node whose accept
    // queue is full: the kernel then drops further SYNs and connects hang. (An "unroutable"
    // address is no such guarantee: some networks answer for it.)
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let full_addr = full.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(full_addr)).await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let mut slow = dead.clone();
    let mut cfg = (*slow.config).clone();
    cfg.set_addr(full_addr);
    slow.config = std::sync::Arc::new(cfg);
    let gw = TestGateway::start_with_nodes(config, vec![slow.clone()], slow).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let _a = client.open(StreamKind::Tcp, echo, b"").await;
    let _b = client.open(StreamKind::Tcp, echo, b"").await;
    let mut c = client.open(StreamKind::Tcp, echo, b"").await;
    assert_eq!(c.accepted().await, Err(ResetCode::StreamLimit));
}

#[tokio::test]
async fn an_empty_datagram_is_no_error_and_the_flow_goes_on() {
    let gw = TestGateway::start(test_config()).await;
    let responder = udp_responder().await;
    let client = gw.client().await;
    let mut stream = client.open(StreamKind::Udp, responder, b"").await;
    stream.accepted().await.unwrap();
    // SPEC §7: a DATAGRAM without data is a valid zero-length UDP datagram, not an error. The
    // gateway hands it to the node like any other; on this path (gateway -> Shadowsocks node) it
    // does not reach the target, which UDP allows, and the stream and session carry on.
    stream.datagram(None, b"");
    stream.datagram(None, b"after");
    match stream.next(T).await {
        Some(StreamEv::Datagram(None, data)) => assert_eq!(&data[..], b"re:after"),
        other => panic!("expected the reply to the next datagram, got {other:?}"),
    }
    client.ping();
}

#[tokio::test]
async fn stream_open_ack_means_accepted_and_a_refused_target_ends_the_stream_afterwards() {
    let gw = TestGateway::start(test_config()).await;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = gw.client().await;
    let mut stream = client
        .open(StreamKind::Tcp, closed, b"GET / HTTP/1.0\r\n\r\n")
        .await;
    // SPEC §3.9: the ACK says the stream was accepted (policy passed, a path through a node is
    // open), not that the target connected: the node learns of the refusal only afterwards.
    stream.accepted().await.unwrap();
    match stream.next(T).await {
        Some(StreamEv::Fin) | Some(StreamEv::Reset(_)) => {}
        other => panic!("expected the stream to end without data, got {other:?}"),
    }
}
