//! Two connections wired back to back in memory: every rule of the state machine runs in
//! microseconds, without sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::frame::{StreamData, StreamOpenAck};

struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
}

fn target() -> TargetAddr {
    TargetAddr::domain("example.com", 443).unwrap()
}

impl Pair {
    fn new(client_cfg: SessionConfig, server_cfg: SessionConfig) -> Self {
        let now = Instant::now();
        let mut pair = Pair {
            client: Connection::new(Role::Client, client_cfg, now),
            server: Connection::new(Role::Server, server_cfg, now),
            now,
        };
        pair.client
            .send_hello(ClientHello::new("dev-1", b"token".to_vec()))
            .unwrap();
        pair.flush_to_server();
        match pair.server.poll_event() {
            Some(Event::HelloReceived(h)) => assert_eq!(h.device_id, "dev-1"),
            other => panic!("expected HELLO, got {other:?}"),
        }
        pair.server
            .accept_hello(AcceptHello::new([1; 16], b"resume".to_vec()))
            .unwrap();
        pair.flush_to_client();
        assert!(matches!(
            pair.client.poll_event(),
            Some(Event::HelloAccepted(_))
        ));
        pair
    }

    fn default() -> Self {
        Pair::new(SessionConfig::default(), SessionConfig::default())
    }

    /// Moves every queued client message to the server; returns how many.
    fn flush_to_server(&mut self) -> usize {
        let mut n = 0;
        while let Some(msg) = self.client.poll_transmit(self.now) {
            self.server.handle_message(msg, self.now).unwrap();
            n += 1;
        }
        n
    }

    fn flush_to_client(&mut self) -> usize {
        let mut n = 0;
        while let Some(msg) = self.server.poll_transmit(self.now) {
            self.client.handle_message(msg, self.now).unwrap();
            n += 1;
        }
        n
    }

    fn settle(&mut self) {
        while self.flush_to_server() + self.flush_to_client() > 0 {}
    }

    fn open_accepted(&mut self, kind: StreamKind) -> StreamId {
        let (id, _) = self
            .client
            .open_stream(kind, target(), Bytes::new())
            .unwrap();
        self.flush_to_server();
        let Some(Event::StreamOpened(open)) = self.server.poll_event() else {
            panic!("no open")
        };
        assert_eq!(open.stream_id, id);
        self.server.accept_stream(id).unwrap();
        self.flush_to_client();
        assert_eq!(self.client.poll_event(), Some(Event::StreamAccepted(id)));
        id
    }
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn data_of(events: &[Event], id: StreamId) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StreamData { stream_id, data } if *stream_id == id => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn handshake_negotiates_limits_both_ways() {
    let client_cfg = SessionConfig {
        limits: Limits {
            stream_window: 100_000,
            session_window: 300_000,
            max_frame_size: 20_000,
        },
        ..SessionConfig::default()
    };
    let server_cfg = SessionConfig {
        max_streams: 7,
        ..SessionConfig::default()
    };
    let p = Pair::new(client_cfg, server_cfg);
    assert!(p.client.is_established() && p.server.is_established());
    assert_eq!(p.server.peer_limits().max_frame_size, 20_000);
    assert_eq!(p.server.peer_limits().stream_window, 100_000);
    assert_eq!(p.client.max_streams(), 7);
    assert_eq!(p.client.peer_limits(), Limits::default());
}

#[test]
fn unsupported_version_is_refused_with_hello_error() {
    let now = Instant::now();
    let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
    let hello = Hello {
        versions: vec![2, 3],
        device_id: "d".into(),
        device_token: Token(Bytes::from_static(b"t")),
        client_name: String::new(),
        client_version: String::new(),
        resume_token: None,
        region: None,
        limits: Limits::default(),
        extensions: vec![],
    };
    server.handle_frame(Frame::Hello(hello), now).unwrap();
    let msg = server.poll_transmit(now).unwrap();
    let Frame::HelloError(err) = Frame::decode(msg, u32::MAX).unwrap() else {
        panic!()
    };
    assert_eq!(err.code, crate::codes::HelloErrorCode::UnsupportedVersion);
    assert!(server.is_closed());
    assert!(server.poll_event().is_none());
}

#[test]
fn rejected_hello_reaches_the_client_and_closes_both() {
    let now = Instant::now();
    let mut client = Connection::new(Role::Client, SessionConfig::default(), now);
    let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
    client
        .send_hello(ClientHello::new("d", b"wrong".to_vec()))
        .unwrap();
    server
        .handle_message(client.poll_transmit(now).unwrap(), now)
        .unwrap();
    server.poll_event();
    let refusal = HelloError::new(crate::codes::HelloErrorCode::Revoked, 0, "device revoked");
    server.reject_hello(refusal.clone()).unwrap();
    client
        .handle_message(server.poll_transmit(now).unwrap(), now)
        .unwrap();
    assert_eq!(client.poll_event(), Some(Event::HelloRejected(refusal)));
    assert!(client.is_closed() && server.is_closed());
    assert_eq!(
        client.open_stream(StreamKind::Tcp, target(), Bytes::new()),
        Err(ApiError::Closed)
    );
}

#[test]
fn frames_before_the_handshake_end_the_session() {
    let now = Instant::now();
    let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
    let open = Frame::StreamOpen(StreamOpen {
        stream_id: StreamId(1),
        kind: StreamKind::Tcp,
        target: target(),
        early_data: Bytes::new(),
    });
    let err = server.handle_message(open.to_bytes(), now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProtocolError);
    let Frame::Error(e) = Frame::decode(server.poll_transmit(now).unwrap(), u32::MAX).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::ProtocolError);
    assert!(
        server.poll_transmit(now).is_none(),
        "ERROR is the last frame"
    );
    assert_eq!(
        server.handle_message(open.to_bytes(), now),
        Err(ConnectionError::Closed)
    );
}

#[test]
fn handshake_frames_are_limited_to_the_minimum_frame_size() {
    let now = Instant::now();
    let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
    let mut msg = vec![FrameTypeByte::HELLO, 0, 0, 0, 0, 0];
    msg.resize(6 + 16_385, 0);
    let err = server.handle_message(Bytes::from(msg), now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::FrameSize);
}

struct FrameTypeByte;
impl FrameTypeByte {
    const HELLO: u8 = 0x01;
}

#[test]
fn stream_round_trip_with_early_data_and_half_close() {
    let mut p = Pair::default();
    let (id, taken) = p
        .client
        .open_stream(
            StreamKind::Tcp,
            target(),
            Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
        )
        .unwrap();
    assert_eq!((id, taken), (StreamId(1), 18));
    p.flush_to_server();
    let Some(Event::StreamOpened(open)) = p.server.poll_event() else {
        panic!()
    };
    assert_eq!(&open.early_data[..], b"GET / HTTP/1.1\r\n\r\n");
    p.server.consume(id, open.early_data.len(), p.now).unwrap();
    p.server.accept_stream(id).unwrap();
    assert_eq!(
        p.server
            .write(id, Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\nhi"))
            .unwrap(),
        21
    );
    p.server.finish(id).unwrap();
    assert_eq!(p.server.stream_state(id), Some(StreamState::Open));
    p.flush_to_client();
    let ev = events(&mut p.client);
    assert_eq!(ev[0], Event::StreamAccepted(id));
    assert_eq!(data_of(&ev, id), b"HTTP/1.1 200 OK\r\n\r\nhi");
    assert_eq!(ev.last(), Some(&Event::StreamFinished(id)));
    assert_eq!(
        p.server.stream_state(id),
        Some(StreamState::HalfClosedLocal)
    );
    assert_eq!(
        p.client.stream_state(id),
        Some(StreamState::HalfClosedRemote)
    );
    // The client may still send after the server's FIN.
    p.client.write(id, Bytes::from_static(b"more")).unwrap();
    p.client.finish(id).unwrap();
    p.flush_to_server();
    let ev = events(&mut p.server);
    assert_eq!(data_of(&ev, id), b"more");
    assert_eq!(ev.last(), Some(&Event::StreamFinished(id)));
    p.client.consume(id, 21, p.now).unwrap();
    p.server.consume(id, 4, p.now).unwrap();
    assert_eq!(
        p.client.stream_state(id),
        None,
        "both FINs and all data consumed: gone"
    );
    assert_eq!(p.server.stream_state(id), None);
    assert_eq!(
        p.client.write(id, Bytes::from_static(b"x")),
        Err(ApiError::UnknownStream(id))
    );
}

#[test]
fn writer_never_exceeds_credit_and_resumes_after_window_update() {
    let client_cfg = SessionConfig {
        limits: Limits {
            stream_window: 65_536,
            session_window: 1 << 20,
            max_frame_size: 16_384,
        },
        ..SessionConfig::default()
    };
    let mut p = Pair::new(client_cfg, SessionConfig::default());
    let id = p.open_accepted(StreamKind::Tcp);
    let big = Bytes::from(vec![7u8; 200_000]);
    let taken = p.server.write(id, big.clone()).unwrap();
    assert_eq!(taken, 65_536, "only the client's stream window");
    assert_eq!(p.server.write(id, big.slice(taken..)).unwrap(), 0);
    assert_eq!(p.server.stats().flow_control_stalls, 2);
    p.flush_to_client();
    let ev = events(&mut p.client);
    let got = data_of(&ev, id);
    assert_eq!(got.len(), 65_536);
    assert!(ev.iter().all(|e| match e {
        Event::StreamData { data, .. } => data.len() <= 16_384,
        _ => true,
    }));
    // Reading half the window grants credit again.
    p.client.consume(id, 32_768, p.now).unwrap();
    p.flush_to_server();
    assert_eq!(events(&mut p.server), vec![Event::StreamWritable(id)]);
    assert_eq!(p.server.writable_bytes(id), 32_768);
}

#[test]
fn data_beyond_the_window_is_a_flow_control_error() {
    let client_cfg = SessionConfig {
        limits: Limits {
            stream_window: 65_536,
            session_window: 1 << 20,
            max_frame_size: 1 << 20,
        },
        ..SessionConfig::default()
    };
    let mut p = Pair::new(client_cfg, SessionConfig::default());
    let id = p.open_accepted(StreamKind::Tcp);
    let too_much = Frame::StreamData(StreamData {
        stream_id: id,
        data: Bytes::from(vec![0u8; 65_537]),
    });
    let err = p
        .client
        .handle_message(too_much.to_bytes(), p.now)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FlowControl);
    assert!(p.client.is_closed());
    assert!(events(&mut p.client)
        .iter()
        .all(|e| !matches!(e, Event::StreamData { .. })));
}

#[test]
fn session_window_is_shared_by_all_streams() {
    let client_cfg = SessionConfig {
        limits: Limits {
            stream_window: 100_000,
            session_window: 150_000,
            max_frame_size: 16_384,
        },
        ..SessionConfig::default()
    };
    let mut p = Pair::new(client_cfg, SessionConfig::default());
    let a = p.open_accepted(StreamKind::Tcp);
    let b = p.open_accepted(StreamKind::Tcp);
    p.server.write(a, Bytes::from(vec![1u8; 100_000])).unwrap();
    p.server.write(b, Bytes::from(vec![2u8; 100_000])).unwrap();
    p.flush_to_client();
    let ev = events(&mut p.client);
    assert_eq!(data_of(&ev, a).len() + data_of(&ev, b).len(), 150_000);
    // Consuming returns session credit and the rest flows.
    p.client.consume(a, data_of(&ev, a).len(), p.now).unwrap();
    p.client.consume(b, data_of(&ev, b).len(), p.now).unwrap();
    p.settle();
    let ev = events(&mut p.client);
    assert_eq!(data_of(&ev, a).len() + data_of(&ev, b).len(), 50_000);
}

#[test]
fn streams_are_scheduled_round_robin_in_chunks() {
    let mut p = Pair::default();
    let a = p.open_accepted(StreamKind::Tcp);
    let b = p.open_accepted(StreamKind::Tcp);
    p.server.write(a, Bytes::from(vec![1u8; 200_000])).unwrap();
    p.server.write(b, Bytes::from(vec![2u8; 64_000])).unwrap();
    let mut order = Vec::new();
    while let Some(msg) = p.server.poll_transmit(p.now) {
        if let Frame::StreamData(d) = Frame::decode(msg, u32::MAX).unwrap() {
            assert!(d.data.len() <= 32 * 1024);
            order.push(d.stream_id);
        }
    }
    // b's two chunks interleave with a's instead of waiting behind all of a.
    assert_eq!(&order[..4], &[a, b, a, b]);
}

#[test]
fn streams_share_the_link_by_bytes_whatever_their_write_sizes() {
    let mut p = Pair::default();
    let small = p.open_accepted(StreamKind::Tcp);
    let large = p.open_accepted(StreamKind::Tcp);
    // The same bytes queued as 200 writes of 1000 on one stream and one write on the other.
    for _ in 0..200 {
        assert_eq!(
            p.server.write(small, Bytes::from(vec![1u8; 1000])).unwrap(),
            1000
        );
    }
    assert_eq!(
        p.server
            .write(large, Bytes::from(vec![2u8; 200_000]))
            .unwrap(),
        200_000
    );
    let quantum = 32 * 1024;
    let (mut sent_small, mut sent_large) = (0usize, 0usize);
    // Until one of them is done, neither gets ahead of the other by more than one quantum.
    while sent_small < 200_000 && sent_large < 200_000 {
        let msg = p.server.poll_transmit(p.now).expect("data is queued");
        if let Frame::StreamData(d) = Frame::decode(msg, u32::MAX).unwrap() {
            assert!(d.data.len() <= quantum);
            if d.stream_id == small {
                sent_small += d.data.len();
            } else {
                sent_large += d.data.len();
            }
        }
        assert!(
            sent_small.abs_diff(sent_large) <= quantum,
            "small {sent_small} large {sent_large}"
        );
    }
    assert!(sent_small >= 200_000 - quantum && sent_large >= 200_000 - quantum);
}

#[test]
fn datagrams_go_before_bulk_data_and_drop_when_the_queue_is_full() {
    let server_cfg = SessionConfig {
        datagram_queue: 2,
        ..SessionConfig::default()
    };
    let mut p = Pair::new(SessionConfig::default(), server_cfg);
    let tcp = p.open_accepted(StreamKind::Tcp);
    let udp = p.open_accepted(StreamKind::Udp);
    p.server
        .write(tcp, Bytes::from(vec![0u8; 100_000]))
        .unwrap();
    for i in 0..3u8 {
        p.server
            .send_datagram(udp, None, Bytes::from(vec![i]))
            .unwrap();
    }
    assert_eq!(p.server.stats().datagrams_dropped, 1);
    let first = Frame::decode(p.server.poll_transmit(p.now).unwrap(), u32::MAX).unwrap();
    let Frame::Datagram(d) = first else {
        panic!("datagram first, got {first:?}")
    };
    assert_eq!(&d.data[..], &[1], "the oldest datagram was dropped");
    assert_eq!(
        p.server.write(udp, Bytes::from_static(b"x")),
        Err(ApiError::WrongKind(udp))
    );
    assert_eq!(
        p.server.send_datagram(tcp, None, Bytes::new()),
        Err(ApiError::WrongKind(tcp))
    );
}

#[test]
fn udp_stream_carries_datagrams_with_addresses() {
    let mut p = Pair::default();
    let udp = p.open_accepted(StreamKind::Udp);
    let dns = TargetAddr::socket("127.0.0.1:53".parse().unwrap()).unwrap();
    p.client
        .send_datagram(udp, Some(dns.clone()), Bytes::from_static(b"query"))
        .unwrap();
    p.flush_to_server();
    let Some(Event::Datagram(d)) = p.server.poll_event() else {
        panic!()
    };
    assert_eq!((d.addr, &d.data[..]), (Some(dns), &b"query"[..]));
    let huge = Bytes::from(vec![0u8; 40_000]);
    assert!(matches!(
        p.client.send_datagram(udp, None, huge),
        Err(ApiError::DatagramTooLarge { .. })
    ));
}

#[test]
fn reused_and_unopened_stream_ids_are_stream_id_errors() {
    let mut p = Pair::default();
    let id = p.open_accepted(StreamKind::Tcp);
    let reopen = Frame::StreamOpen(StreamOpen {
        stream_id: id,
        kind: StreamKind::Tcp,
        target: target(),
        early_data: Bytes::new(),
    });
    assert_eq!(
        p.server
            .handle_message(reopen.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::StreamId
    );

    let mut p = Pair::default();
    let never = Frame::StreamData(StreamData {
        stream_id: StreamId(9),
        data: Bytes::from_static(b"x"),
    });
    assert_eq!(
        p.server
            .handle_message(never.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::StreamId
    );
}

#[test]
fn late_frames_after_reset_are_ignored_and_return_session_credit() {
    let client_cfg = SessionConfig {
        limits: Limits {
            stream_window: 65_536,
            session_window: 65_536,
            max_frame_size: 65_536,
        },
        ..SessionConfig::default()
    };
    let mut p = Pair::new(client_cfg, SessionConfig::default());
    let id = p.open_accepted(StreamKind::Tcp);
    p.server.write(id, Bytes::from(vec![0u8; 40_000])).unwrap();
    p.client.reset(id, ResetCode::Cancel).unwrap();
    // The server's data crosses the client's RESET on the wire.
    p.flush_to_client();
    assert!(
        events(&mut p.client).is_empty(),
        "no data delivered on a reset stream"
    );
    assert_eq!(p.client.stats().late_frames, 2);
    p.flush_to_server();
    assert_eq!(
        events(&mut p.server),
        vec![Event::StreamReset {
            stream_id: id,
            code: ResetCode::Cancel
        }]
    );
    // The session credit those late bytes used came back under the usual half-window policy:
    // the first 32 KiB chunk crossed the threshold and was announced, the 7232-byte tail waits
    // for more consumption. Without the release the new stream could get only 25536 bytes.
    let id2 = p.open_accepted(StreamKind::Tcp);
    assert_eq!(
        p.server.write(id2, Bytes::from(vec![0u8; 65_536])).unwrap(),
        65_536
    );
    p.flush_to_client();
    assert_eq!(
        data_of(&events(&mut p.client), id2).len(),
        65_536 - 40_000 + 32_768
    );
}

#[test]
fn reset_stops_queued_data_at_once() {
    let mut p = Pair::default();
    let id = p.open_accepted(StreamKind::Tcp);
    p.server.write(id, Bytes::from(vec![0u8; 200_000])).unwrap();
    p.server.reset(id, ResetCode::ConnectionReset).unwrap();
    let frames: Vec<Frame> = std::iter::from_fn(|| p.server.poll_transmit(p.now))
        .map(|m| Frame::decode(m, u32::MAX).unwrap())
        .collect();
    assert_eq!(
        frames,
        vec![Frame::StreamReset(StreamReset {
            stream_id: id,
            code: ResetCode::ConnectionReset
        })]
    );
}

#[test]
fn stream_limit_and_goaway_refuse_new_streams_but_not_old_ones() {
    let server_cfg = SessionConfig {
        max_streams: 2,
        ..SessionConfig::default()
    };
    let mut p = Pair::new(SessionConfig::default(), server_cfg);
    let a = p.open_accepted(StreamKind::Tcp);
    let _b = p.open_accepted(StreamKind::Tcp);
    assert_eq!(
        p.client
            .open_stream(StreamKind::Tcp, target(), Bytes::new()),
        Err(ApiError::StreamLimit(2))
    );
    // A client that ignores the limit gets a stream-level refusal; the session lives.
    let extra = Frame::StreamOpen(StreamOpen {
        stream_id: StreamId(3),
        kind: StreamKind::Tcp,
        target: target(),
        early_data: Bytes::new(),
    });
    p.server.handle_message(extra.to_bytes(), p.now).unwrap();
    let msg = p.server.poll_transmit(p.now).unwrap();
    assert_eq!(
        Frame::decode(msg, u32::MAX).unwrap(),
        Frame::StreamReset(StreamReset {
            stream_id: StreamId(3),
            code: ResetCode::StreamLimit
        })
    );

    let mut p = Pair::default();
    let a2 = p.open_accepted(StreamKind::Tcp);
    p.server
        .go_away(ErrorCode::ShuttingDown, "restarting")
        .unwrap();
    p.flush_to_client();
    assert!(matches!(p.client.poll_event(), Some(Event::GoAway(g)) if g.last_stream_id == a2));
    assert_eq!(
        p.client
            .open_stream(StreamKind::Tcp, target(), Bytes::new()),
        Err(ApiError::GoingAway)
    );
    p.server
        .write(a2, Bytes::from_static(b"still served"))
        .unwrap();
    p.flush_to_client();
    assert_eq!(data_of(&events(&mut p.client), a2), b"still served");
    let _ = a;
}

#[test]
fn goaway_resets_streams_above_the_last_id_on_the_client() {
    let mut p = Pair::default();
    let a = p.open_accepted(StreamKind::Tcp);
    let (b, _) = p
        .client
        .open_stream(StreamKind::Tcp, target(), Bytes::new())
        .unwrap();
    // The server's GOAWAY was sent before it saw b.
    let goaway = Frame::GoAway(GoAway {
        last_stream_id: a,
        code: ErrorCode::ShuttingDown,
        reason: String::new(),
    });
    p.client.handle_message(goaway.to_bytes(), p.now).unwrap();
    assert_eq!(
        p.client.poll_event(),
        Some(Event::StreamReset {
            stream_id: b,
            code: ResetCode::GoingAway
        })
    );
    assert!(p.client.stream_state(a).is_some());
}

#[test]
fn ping_measures_rtt() {
    let mut p = Pair::default();
    p.client.ping(p.now).unwrap();
    p.flush_to_server();
    p.now += Duration::from_millis(40);
    p.flush_to_client();
    assert_eq!(
        p.client.poll_event(),
        Some(Event::Pong {
            rtt: Duration::from_millis(40)
        })
    );
    assert_eq!(p.client.rtt(), Some(Duration::from_millis(40)));
}

#[test]
fn receive_window_grows_toward_the_bandwidth_delay_product() {
    let mut p = Pair::default();
    p.client.ping(p.now).unwrap();
    p.flush_to_server();
    p.now += Duration::from_millis(50);
    p.flush_to_client();
    p.client.poll_event();
    let id = p.open_accepted(StreamKind::Tcp);
    let start = p.client.stream_recv_window(id).unwrap();
    // The application reads everything at once, faster than two RTTs per window.
    for _ in 0..8 {
        let n = p.server.writable_bytes(id);
        p.server.write(id, Bytes::from(vec![0u8; n])).unwrap();
        p.flush_to_client();
        let got = data_of(&events(&mut p.client), id).len();
        p.client.consume(id, got, p.now).unwrap();
        p.flush_to_server();
        p.now += Duration::from_millis(1);
    }
    let end = p.client.stream_recv_window(id).unwrap();
    assert!(end >= start * 4, "window grew from {start} to {end}");
    assert!(p.client.session_recv_window() > DEFAULT_SESSION_WINDOW_FOR_TEST);
}

const DEFAULT_SESSION_WINDOW_FOR_TEST: u32 = crate::limits::DEFAULT_SESSION_WINDOW;

#[test]
fn peer_roles_are_enforced() {
    let mut p = Pair::default();
    let id = p.open_accepted(StreamKind::Tcp);
    let ack = Frame::StreamOpenAck(StreamOpenAck { stream_id: id });
    assert_eq!(
        p.server
            .handle_message(ack.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::ProtocolError
    );
    let mut p = Pair::default();
    let open = Frame::StreamOpen(StreamOpen {
        stream_id: StreamId(1),
        kind: StreamKind::Tcp,
        target: target(),
        early_data: Bytes::new(),
    });
    assert_eq!(
        p.client
            .handle_message(open.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::ProtocolError
    );
    assert_eq!(
        p.server
            .open_stream(StreamKind::Tcp, target(), Bytes::new()),
        Err(ApiError::WrongRole("client"))
    );
}

#[test]
fn data_after_fin_and_data_before_ack_are_violations() {
    let mut p = Pair::default();
    let id = p.open_accepted(StreamKind::Tcp);
    p.client.finish(id).unwrap();
    p.flush_to_server();
    let late = Frame::StreamData(StreamData {
        stream_id: id,
        data: Bytes::from_static(b"x"),
    });
    assert_eq!(
        p.server
            .handle_message(late.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::ProtocolError
    );

    let mut p = Pair::default();
    let (id, _) = p
        .client
        .open_stream(StreamKind::Tcp, target(), Bytes::new())
        .unwrap();
    let early = Frame::StreamData(StreamData {
        stream_id: id,
        data: Bytes::from_static(b"x"),
    });
    assert_eq!(
        p.client
            .handle_message(early.to_bytes(), p.now)
            .unwrap_err()
            .code(),
        ErrorCode::ProtocolError
    );
}

#[test]
fn ignorable_unknown_frames_are_skipped_and_peer_error_closes() {
    let mut p = Pair::default();
    let unknown = Frame::Unknown {
        frame_type: 0x42,
        flags: crate::frame::FLAG_IGNORABLE,
        stream_id: StreamId(0),
        payload: Bytes::from_static(b"future"),
    };
    p.server.handle_message(unknown.to_bytes(), p.now).unwrap();
    assert!(p.server.poll_event().is_none());
    let err = Frame::Error(ErrorFrame::new(ErrorCode::Revoked, "device revoked"));
    p.client.handle_message(err.to_bytes(), p.now).unwrap();
    assert!(
        matches!(p.client.poll_event(), Some(Event::PeerError(e)) if e.code == ErrorCode::Revoked)
    );
    assert!(p.client.is_closed());
}

#[test]
fn close_keeps_a_queued_goaway_and_drained_is_false_once_closed() {
    let mut p = Pair::default();
    p.server.go_away(ErrorCode::ShuttingDown, "bye").unwrap();
    assert!(p.server.is_drained());
    p.server.close(ErrorCode::ShuttingDown, "done");
    assert!(
        !p.server.is_drained(),
        "a closed session is not 'drained and waiting'"
    );
    let frames: Vec<Frame> = std::iter::from_fn(|| p.server.poll_transmit(p.now))
        .map(|m| Frame::decode(m, u32::MAX).unwrap())
        .collect();
    assert!(matches!(frames[0], Frame::GoAway(_)));
    assert!(matches!(frames.last(), Some(Frame::Error(_))));
}

#[test]
fn a_ping_flood_is_bounded() {
    let cfg = SessionConfig {
        max_queued_control_frames: 8,
        ..SessionConfig::default()
    };
    let mut p = Pair::new(SessionConfig::default(), cfg);
    let ping = Frame::Ping(PingPayload([0; 8])).to_bytes();
    for _ in 0..8 {
        p.server.handle_message(ping.clone(), p.now).unwrap();
    }
    let err = p.server.handle_message(ping, p.now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProtocolError);
}

#[test]
fn a_stream_open_after_the_clients_own_goaway_is_refused_with_going_away() {
    let mut p = Pair::default();
    let a = p.open_accepted(StreamKind::Tcp);
    p.client.go_away(ErrorCode::NoError, "leaving").unwrap();
    p.flush_to_server();
    assert!(matches!(p.server.poll_event(), Some(Event::GoAway(g)) if g.last_stream_id == a));
    // SPEC §9.1: the client opens no further streams on this session ...
    assert_eq!(
        p.client
            .open_stream(StreamKind::Tcp, target(), Bytes::new()),
        Err(ApiError::GoingAway)
    );
    // ... and a STREAM_OPEN it sends anyway is refused like one after the server's GOAWAY:
    // STREAM_RESET `going_away`, the session and the streams it has carry on.
    let late = Frame::StreamOpen(StreamOpen {
        stream_id: StreamId(a.0 + 1),
        kind: StreamKind::Tcp,
        target: target(),
        early_data: Bytes::from_static(b"early"),
    });
    p.server.handle_message(late.to_bytes(), p.now).unwrap();
    let msg = p.server.poll_transmit(p.now).unwrap();
    assert_eq!(
        Frame::decode(msg, u32::MAX).unwrap(),
        Frame::StreamReset(StreamReset {
            stream_id: StreamId(a.0 + 1),
            code: ResetCode::GoingAway
        })
    );
    p.server
        .write(a, Bytes::from_static(b"still served"))
        .unwrap();
    p.flush_to_client();
    assert_eq!(data_of(&events(&mut p.client), a), b"still served");
}
