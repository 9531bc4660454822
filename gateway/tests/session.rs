//! Session rules over the real listener: camouflage, handshake, bad input, timeouts, drain.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::SinkExt;
use httvps_gateway::GatewayConfig;
use httvps_proto::frame::Frame;
use httvps_proto::{ErrorCode, Event, HelloErrorCode, StreamKind};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);

fn upgrade_request(path: &str, protocol: Option<&str>) -> String {
    let protocol = protocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}Connection: close\r\n\r\n"
    )
}

/// The response with the Date header removed (it changes between requests).
fn without_date(response: &str) -> String {
    response
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn without_a_fallback_anything_but_a_valid_upgrade_gets_the_built_in_404() {
    let gw = TestGateway::start(test_config()).await;
    let plain = http_request(
        &gw,
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 404 Not Found"), "{plain}");
    assert!(!plain.to_ascii_lowercase().contains("sec-websocket"));
    assert!(plain.contains("\r\nServer: nginx\r\n"), "{plain}");
    for request in [
        upgrade_request("/wrong", Some("httvps.v1")),
        upgrade_request(PATH, Some("chat")),
        upgrade_request(&format!("{PATH}?q=1"), Some("httvps.v1")),
        format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        format!("POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    ] {
        let response = http_request(&gw, &request).await;
        let path = request.split(' ').nth(1).unwrap();
        let reference = http_request(
            &gw,
            &format!("GET {path}-not-here HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(without_date(&response), without_date(&reference), "{request}");
    }
}

#[tokio::test]
async fn failed_hellos_are_rate_limited_per_device() {
    let config = GatewayConfig {
        hello_failures_per_device: 2,
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    for _ in 0..2 {
        let err = TestClient::try_connect(&gw, "dev-2", b"bad")
            .await
            .err()
            .unwrap();
        assert_eq!(err.code, HelloErrorCode::AuthFailed);
    }
    let err = TestClient::try_connect(&gw, "dev-2", b"token-2")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, HelloErrorCode::RateLimited);
    assert!(err.retry_after_ms > 0);
    // Another device from the same address is not affected yet.
    gw.client().await;
}

#[tokio::test]
async fn hello_timeout_closes_silently_after_a_random_delay() {
    let config = GatewayConfig {
        handshake_timeout: Duration::from_millis(300),
        unauthenticated_close_delay: Duration::from_secs(2),
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let started = std::time::Instant::now();
    let mut ws = ws_connect(&gw).await;
    let ending = read_until_close(&mut ws, T).await;
    let took = started.elapsed();
    // SPEC §4.1: no ERROR (no text) before a valid HELLO; a plain close after the timeout
    // plus 10-100 % of the configured delay.
    assert!(ending.frames.is_empty(), "{:?}", ending.frames);
    assert_eq!(ending.close_code, Some(1000));
    assert_eq!(ending.close_reason.as_deref(), Some(""));
    assert!(
        took >= Duration::from_millis(300 + 200),
        "closed after {took:?}"
    );
    assert!(
        took < Duration::from_millis(300 + 2000 + 1500),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn an_unauthenticated_peer_gets_codes_but_no_text() {
    let config = GatewayConfig {
        unauthenticated_close_delay: Duration::from_secs(2),
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    // A wrong token: HELLO_ERROR auth_failed, without its message, and a late close.
    let mut ws = ws_connect(&gw).await;
    let started = std::time::Instant::now();
    ws.send(Message::Binary(hello_bytes(&gw.device, b"wrong-token")))
        .await
        .unwrap();
    let ending = read_until_close(&mut ws, T).await;
    let refusal = ending.hello_error().expect("a HELLO_ERROR");
    assert_eq!(refusal.code, HelloErrorCode::AuthFailed);
    assert_eq!(refusal.message, "", "no text for an unauthenticated peer");
    assert_eq!(ending.close_code, Some(1008));
    assert_eq!(ending.close_reason.as_deref(), Some(""));
    assert!(started.elapsed() >= Duration::from_millis(200));
    // An unsupported version list: the code, no "supported versions" text.
    let mut ws = ws_connect(&gw).await;
    let mut hello = hello_bytes(&gw.device, &gw.token).to_vec();
    hello[8] = 0x63; // versions [0x0063]
    ws.send(Message::Binary(hello.into())).await.unwrap();
    let ending = read_until_close(&mut ws, T).await;
    let refusal = ending.hello_error().expect("a HELLO_ERROR");
    assert_eq!(refusal.code, HelloErrorCode::UnsupportedVersion);
    assert_eq!(refusal.message, "");
    // A text message before HELLO: nothing at all, a plain close.
    let mut ws = ws_connect(&gw).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    let ending = read_until_close(&mut ws, T).await;
    assert!(ending.frames.is_empty(), "{:?}", ending.frames);
    assert_eq!(ending.close_code, Some(1000));
    assert_eq!(ending.close_reason.as_deref(), Some(""));
}

#[tokio::test]
async fn idle_session_ends_with_idle_timeout() {
    let config = GatewayConfig {
        idle_timeout: Duration::from_millis(400),
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let mut client = gw.client().await;
    match client.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::IdleTimeout),
        other => panic!("expected ERROR idle_timeout, got {other:?}"),
    }
}

/// Sends `messages` after a valid HELLO (or instead of it) and checks the ERROR code, while
/// a second, healthy session on the same gateway keeps relaying.
async fn expect_error(
    gw: &TestGateway,
    hello_first: bool,
    messages: Vec<Message>,
    code: ErrorCode,
    close: u16,
) {
    let healthy = gw.client().await;
    let echo = echo_server().await;
    let mut ws = ws_connect(gw).await;
    if hello_first {
        ws.send(Message::Binary(gw.hello())).await.unwrap();
    }
    for m in messages {
        if ws.send(m).await.is_err() {
            break;
        }
    }
    let ending = read_until_close(&mut ws, T).await;
    if hello_first {
        assert_eq!(
            ending.error().map(|e| e.code),
            Some(code),
            "frames: {:?}",
            ending.frames
        );
        assert_eq!(ending.close_code, Some(close));
    } else {
        // Before a valid HELLO: no ERROR, no text, a plain close (SPEC §4.1).
        assert!(ending.frames.is_empty(), "frames: {:?}", ending.frames);
        assert_eq!(ending.close_code, Some(1000));
    }
    assert_eq!(ending.close_reason.as_deref(), Some(""));
    let mut s = healthy.open(StreamKind::Tcp, echo, b"still here").await;
    s.accepted().await.unwrap();
    s.finish();
    assert_eq!(s.read_to_end(T).await, b"still here");
}

fn raw(bytes: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(bytes))
}

#[tokio::test]
async fn bad_input_gets_its_error_code_and_other_sessions_are_untouched() {
    let gw = TestGateway::start(test_config()).await;
    // Garbage before HELLO: unknown frame type.
    expect_error(
        &gw,
        false,
        vec![raw(b"\xff\x00garbage")],
        ErrorCode::UnknownFrame,
        1002,
    )
    .await;
    // Truncated header.
    expect_error(
        &gw,
        true,
        vec![raw(&[0x0b, 0, 0, 0])],
        ErrorCode::ProtocolError,
        1002,
    )
    .await;
    // Data before HELLO.
    expect_error(
        &gw,
        false,
        vec![raw(&[0x06, 0, 0, 0, 0, 1, 0x41])],
        ErrorCode::ProtocolError,
        1002,
    )
    .await;
    // Text message.
    expect_error(
        &gw,
        true,
        vec![Message::Text("hello".into())],
        ErrorCode::ProtocolError,
        1002,
    )
    .await;
    // Oversize frame within the WebSocket limit but above max_frame_size before the handshake.
    let mut big = vec![0x06, 0, 0, 0, 0, 1];
    big.resize(6 + 20_000, 0x41);
    expect_error(&gw, false, vec![raw(&big)], ErrorCode::FrameSize, 1002).await;
    // Oversize WebSocket message, refused by the WebSocket layer before buffering.
    let mut huge = vec![0x06, 0, 0, 0, 0, 1];
    huge.resize(6 + 1_000_000, 0x41);
    expect_error(&gw, true, vec![raw(&huge)], ErrorCode::FrameSize, 1002).await;
    // Stream frame on stream 0.
    expect_error(
        &gw,
        true,
        vec![raw(&[0x06, 0, 0, 0, 0, 0, 0x41])],
        ErrorCode::StreamId,
        1002,
    )
    .await;
    // Reused stream id.
    let open = |id: u8| raw(&[0x04, 0, 0, 0, 0, id, 0x01, 0x01, 127, 0, 0, 1, 0, 9]);
    expect_error(&gw, true, vec![open(5), open(5)], ErrorCode::StreamId, 1002).await;
    // Data on a stream never opened.
    expect_error(
        &gw,
        true,
        vec![raw(&[0x06, 0, 0, 0, 0, 9, 0x41])],
        ErrorCode::StreamId,
        1002,
    )
    .await;
    // Data beyond credit (256 KiB stream window; 9 frames of 32 KiB).
    let mut flood = vec![open(1)];
    let mut data = vec![0x06, 0, 0, 0, 0, 1];
    data.resize(6 + 32_768, 0x42);
    flood.extend((0..9).map(|_| raw(&data)));
    expect_error(&gw, true, flood, ErrorCode::FlowControl, 1002).await;
}

#[tokio::test]
async fn a_flood_of_opens_is_refused_per_stream_not_per_session() {
    let config = GatewayConfig {
        max_streams: 4,
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut accepted = Vec::new();
    for _ in 0..4 {
        let mut s = client.open(StreamKind::Tcp, echo, b"").await;
        s.accepted().await.unwrap();
        accepted.push(s);
    }
    // The client library itself refuses beyond max_streams, so speak raw for the fifth.
    let mut ws = ws_connect(&gw).await;
    ws.send(Message::Binary(gw.hello())).await.unwrap();
    for id in 1..=6u8 {
        ws.send(raw(&[
            0x04, 0, 0, 0, 0, id, 0x01, 0x01, 10, 255, 255, 1, 0, 9,
        ]))
        .await
        .unwrap();
    }
    let mut limited = 0;
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        use futures_util::StreamExt;
        while let Some(Ok(Message::Binary(b))) = ws.next().await {
            if let Ok(Frame::StreamReset(r)) = Frame::decode(b, 1 << 20) {
                if r.code == httvps_proto::ResetCode::StreamLimit {
                    limited += 1;
                    if limited == 2 {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert_eq!(limited, 2, "opens 5 and 6 exceed max_streams 4");
}

#[tokio::test]
async fn shutdown_sends_goaway_and_lets_streams_finish() {
    let gw = TestGateway::start(test_config()).await;
    let echo = echo_server().await;
    let mut client = gw.client().await;
    let mut stream = client.open(StreamKind::Tcp, echo, b"").await;
    stream.accepted().await.unwrap();
    let TestGateway { gateway, .. } = gw;
    let shutdown = tokio::spawn(gateway.shutdown());
    match client.session_event(T).await {
        Some(Event::GoAway(g)) => assert_eq!(g.code, ErrorCode::ShuttingDown),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    // The stream opened before the GOAWAY still works and completes.
    stream.write(b"in flight").await;
    stream.finish();
    assert_eq!(stream.read_to_end(T).await, b"in flight");
    match client.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::NoError),
        other => panic!("expected ERROR no_error after the drain, got {other:?}"),
    }
    tokio::time::timeout(T, shutdown).await.unwrap().unwrap();
}

#[tokio::test]
async fn max_lifetime_sends_goaway_max_lifetime() {
    let config = GatewayConfig {
        max_lifetime: Duration::from_millis(300),
        max_lifetime_jitter: Duration::ZERO,
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let mut client = gw.client().await;
    match client.session_event(T).await {
        Some(Event::GoAway(g)) => assert_eq!(g.code, ErrorCode::MaxLifetime),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    // No streams: the drain completes at once.
    match client.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::NoError),
        other => panic!("expected ERROR no_error, got {other:?}"),
    }
}

/// Reads WebSocket messages until `n` HTTVPS frames arrived (or the connection ended).
async fn read_frames(ws: &mut Ws, n: usize) -> Vec<Frame> {
    use futures_util::StreamExt;
    let mut frames = Vec::new();
    let _ = tokio::time::timeout(T, async {
        while frames.len() < n {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => frames.push(Frame::decode(b, 1 << 24).unwrap()),
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    frames
}

#[tokio::test]
async fn a_peers_no_error_error_gets_close_code_1000() {
    let gw = TestGateway::start(test_config()).await;
    let mut ws = ws_connect(&gw).await;
    ws.send(Message::Binary(gw.hello())).await.unwrap();
    assert!(matches!(
        read_frames(&mut ws, 1).await[..],
        [Frame::HelloAck(_)]
    ));
    let bye = Frame::Error(httvps_proto::frame::ErrorFrame::new(
        ErrorCode::NoError,
        "bye",
    ));
    ws.send(Message::Binary(bye.to_bytes())).await.unwrap();
    let ending = read_until_close(&mut ws, T).await;
    // SPEC §2.6: the session ended with `no_error`, and the receiver of ERROR answers no ERROR.
    assert!(ending.error().is_none(), "{:?}", ending.frames);
    assert_eq!(ending.close_code, Some(1000));
    assert_eq!(ending.close_reason.as_deref(), Some(""));
}

#[tokio::test]
async fn frames_right_behind_hello_are_handled_after_the_hello_ack() {
    let gw = TestGateway::start(test_config()).await;
    let mut ws = ws_connect(&gw).await;
    let ping = Frame::Ping(httvps_proto::frame::PingPayload(*b"12345678"));
    // SPEC §4.1 item 1: a client must not do this; the reference server reads the next message
    // only once it has answered HELLO, so the PING is handled as if sent after HELLO_ACK.
    ws.feed(Message::Binary(gw.hello())).await.unwrap();
    ws.feed(Message::Binary(ping.to_bytes())).await.unwrap();
    ws.flush().await.unwrap();
    let frames = read_frames(&mut ws, 2).await;
    assert!(matches!(frames[0], Frame::HelloAck(_)), "{frames:?}");
    assert_eq!(
        frames[1],
        Frame::Pong(httvps_proto::frame::PingPayload(*b"12345678"))
    );
}

/// A raw WebSocket frame from the client: `first` is FIN/RSV/opcode, masked unless `unmasked`.
fn raw_ws_frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![first];
    if unmasked {
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
    } else {
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    out
}

#[tokio::test]
async fn websocket_level_errors_end_the_session_with_protocol_error() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start(test_config()).await;
    let ping = Frame::Ping(httvps_proto::frame::PingPayload(*b"abcdefgh")).to_bytes();
    let cases = [
        ("unmasked frame", raw_ws_frame(0x82, &ping, true)),
        (
            "RSV1 bit without an extension",
            raw_ws_frame(0xC2, &ping, false),
        ),
        ("reserved opcode 0x3", raw_ws_frame(0x83, &ping, false)),
    ];
    for (what, bytes) in &cases {
        // After the handshake: ERROR protocol_error, then close 1002 (SPEC §2.4).
        let mut ws = ws_connect(&gw).await;
        ws.send(Message::Binary(gw.hello())).await.unwrap();
        assert!(matches!(
            read_frames(&mut ws, 1).await[..],
            [Frame::HelloAck(_)]
        ));
        ws.get_mut().write_all(bytes).await.unwrap();
        ws.get_mut().flush().await.unwrap();
        let ending = read_until_close(&mut ws, T).await;
        assert_eq!(
            ending.error().map(|e| e.code),
            Some(ErrorCode::ProtocolError),
            "{what}: {:?}",
            ending.frames
        );
        assert_eq!(ending.close_code, Some(1002), "{what}");
        assert_eq!(ending.close_reason.as_deref(), Some(""), "{what}");
        // Before HELLO: nothing, a plain close (SPEC §4.1 item 8).
        let mut ws = ws_connect(&gw).await;
        ws.get_mut().write_all(bytes).await.unwrap();
        ws.get_mut().flush().await.unwrap();
        let ending = read_until_close(&mut ws, T).await;
        assert!(ending.frames.is_empty(), "{what}: {:?}", ending.frames);
        assert_eq!(ending.close_code, Some(1000), "{what}");
        assert_eq!(ending.close_reason.as_deref(), Some(""), "{what}");
    }
}
