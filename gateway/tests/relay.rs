//! The data path end to end: client → TLS/WebSocket → gateway → Shadowsocks node → target.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use httvps_gateway::GatewayConfig;
use httvps_proto::{ResetCode, StreamKind, TargetAddr};

const T: Duration = Duration::from_secs(30);

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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after_reset = 0;
    while let Ok(n) = written.try_recv() {
        after_reset = n;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut later = after_reset;
    while let Ok(n) = written.try_recv() {
        later = n;
    }
    assert_eq!(
        later, after_reset,
        "the target kept being read after the reset"
    );
    assert!(
        later < len / 4,
        "the upstream was drained after the reset ({later} bytes)"
    );
}

#[tokio::test]
async fn a_client_that_stops_consuming_bounds_gateway_memory_to_its_window() {
    let gw = TestGateway::start(test_config()).await;
    let len = 64 * 1024 * 1024;
    let (source, mut written) = source_server(len).await;
    let client = gw.client().await;
    let target = TargetAddr::socket(source).unwrap();
    let mut stream = client.open_with(StreamKind::Tcp, target, b"", false).await;
    stream.accepted().await.unwrap();
    let mut received = 0;
    while let Some(StreamEv::Data(d)) = stream.next(Duration::from_secs(2)).await {
        received += d.len();
    }
    // The client granted a 256 KiB stream window and consumed nothing.
    assert_eq!(received, 256 * 1024, "exactly one window was delivered");
    let stats = gw.gateway.stats().sessions();
    let peak = stats.iter().map(|s| s.peak_buffered_bytes).max().unwrap();
    assert!(
        peak <= 256 * 1024,
        "gateway held {peak} bytes for one stalled stream"
    );
    let mut target_wrote = 0;
    while let Ok(n) = written.try_recv() {
        target_wrote = n;
    }
    // What the target could write is the window plus kernel socket buffers, not 64 MiB.
    assert!(
        target_wrote < 32 * 1024 * 1024,
        "target wrote {target_wrote} bytes"
    );
    // Consuming resumes the flow.
    stream.consume(received);
    let mut more = 0;
    while more == 0 {
        if let Some(StreamEv::Data(d)) = stream.next(T).await {
            more += d.len();
        }
    }
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
    // Connecting to a dead node fails fast, so use an unroutable node address to keep opens
    // pending: 10.255.255.1 drops SYNs.
    let mut slow = dead.clone();
    let mut cfg = (*slow.config).clone();
    cfg.set_addr("10.255.255.1:9".parse::<std::net::SocketAddr>().unwrap());
    slow.config = std::sync::Arc::new(cfg);
    let gw = TestGateway::start_with_nodes(config, vec![slow.clone()], slow).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let _a = client.open(StreamKind::Tcp, echo, b"").await;
    let _b = client.open(StreamKind::Tcp, echo, b"").await;
    let mut c = client.open(StreamKind::Tcp, echo, b"").await;
    assert_eq!(c.accepted().await, Err(ResetCode::StreamLimit));
}
