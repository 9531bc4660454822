//! Property tests of the frame codec: every frame type survives encode/decode unchanged, and no
//! input, however broken, makes the decoder panic.

use bytes::Bytes;
use httvps_proto::frame::StreamOpen;
use httvps_proto::frame::{
    Datagram, ErrorFrame, Extension, GoAway, Hello, HelloAck, HelloError, PingPayload, StreamData,
    StreamFin, StreamOpenAck, StreamReset, Token, WindowUpdate, FLAG_IGNORABLE,
};
use httvps_proto::{
    Address, ErrorCode, Frame, HelloErrorCode, Limits, ResetCode, StreamId, StreamKind, TargetAddr,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), range).prop_map(Bytes::from)
}

fn text(max: usize) -> impl Strategy<Value = String> {
    // Multi-byte characters exercise the byte-length limits.
    proptest::string::string_regex(&format!("[a-zA-Z0-9 ._é€-]{{0,{max}}}"))
        .expect("valid regex")
        .prop_filter("fits in bytes", move |s| s.len() <= max)
}

fn nonempty_text(max: usize) -> impl Strategy<Value = String> {
    text(max).prop_filter("non-empty", |s| !s.is_empty())
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    (1u32..=u32::MAX).prop_map(StreamId)
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        65_536u32..=0x7FFF_FFFF,
        65_536u32..=0x7FFF_FFFF,
        16_384u32..=16_777_215,
    )
        .prop_map(|(stream_window, session_window, max_frame_size)| Limits {
            stream_window,
            session_window,
            max_frame_size,
        })
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    proptest::collection::btree_map(any::<u16>(), bytes(0..=64), 0..=4).prop_map(|m| {
        m.into_iter()
            .map(|(ext_type, value)| Extension { ext_type, value })
            .collect()
    })
}

fn target() -> impl Strategy<Value = TargetAddr> {
    let host = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Address::Ipv4(o.into())),
        any::<[u8; 16]>().prop_map(|o| Address::Ipv6(o.into())),
        proptest::string::string_regex("[a-z0-9_-]{1,63}(\\.[a-z0-9-]{1,40}){0,3}")
            .expect("valid regex")
            .prop_map(Address::Domain),
    ];
    (host, 1u16..=u16::MAX).prop_map(|(addr, port)| TargetAddr { addr, port })
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        vec(any::<u16>(), 1..=16),
        nonempty_text(64),
        bytes(1..=128),
        (text(64), text(64)),
        proptest::option::of(bytes(1..=64)),
        proptest::option::of(nonempty_text(32)),
        limits(),
        extensions(),
    )
        .prop_map(
            |(versions, device_id, token, (name, version), resume, region, limits, extensions)| {
                Hello {
                    versions,
                    device_id,
                    device_token: Token(token),
                    client_name: name,
                    client_version: version,
                    resume_token: resume.map(Token),
                    region,
                    limits,
                    extensions,
                }
            },
        )
}

fn hello_ack() -> impl Strategy<Value = HelloAck> {
    (
        any::<u16>(),
        any::<[u8; 16]>(),
        bytes(1..=64),
        1u32..=u32::MAX,
        limits(),
        any::<u32>(),
        any::<u32>(),
        extensions(),
    )
        .prop_map(
            |(version, session_id, resume, max_streams, limits, hb, idle, extensions)| HelloAck {
                version,
                session_id,
                resume_token: Token(resume),
                max_streams,
                limits,
                heartbeat_interval_ms: hb,
                idle_timeout_ms: idle,
                extensions,
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        hello().prop_map(Frame::Hello),
        hello_ack().prop_map(Frame::HelloAck),
        (any::<u16>(), any::<u32>(), text(256)).prop_map(|(c, r, m)| Frame::HelloError(
            HelloError {
                code: HelloErrorCode::from(c),
                retry_after_ms: r,
                message: m
            }
        )),
        (stream_id(), target(), bytes(0..=2048)).prop_map(|(stream_id, target, early_data)| {
            Frame::StreamOpen(StreamOpen {
                stream_id,
                kind: StreamKind::Tcp,
                target,
                early_data,
            })
        }),
        (stream_id(), target()).prop_map(|(stream_id, target)| Frame::StreamOpen(StreamOpen {
            stream_id,
            kind: StreamKind::Udp,
            target,
            early_data: Bytes::new()
        })),
        stream_id().prop_map(|stream_id| Frame::StreamOpenAck(StreamOpenAck { stream_id })),
        (stream_id(), bytes(1..=4096))
            .prop_map(|(stream_id, data)| Frame::StreamData(StreamData { stream_id, data })),
        stream_id().prop_map(|stream_id| Frame::StreamFin(StreamFin { stream_id })),
        (stream_id(), any::<u16>()).prop_map(|(stream_id, c)| Frame::StreamReset(StreamReset {
            stream_id,
            code: ResetCode::from(c)
        })),
        (any::<u32>(), 1u32..=0x7FFF_FFFF).prop_map(|(id, increment)| Frame::WindowUpdate(
            WindowUpdate {
                stream_id: StreamId(id),
                increment
            }
        )),
        (stream_id(), proptest::option::of(target()), bytes(0..=2048)).prop_map(
            |(stream_id, addr, data)| Frame::Datagram(Datagram {
                stream_id,
                addr,
                data
            })
        ),
        any::<[u8; 8]>().prop_map(|p| Frame::Ping(PingPayload(p))),
        any::<[u8; 8]>().prop_map(|p| Frame::Pong(PingPayload(p))),
        (any::<u32>(), any::<u16>(), text(256)).prop_map(|(last, c, reason)| Frame::GoAway(
            GoAway {
                last_stream_id: StreamId(last),
                code: ErrorCode::from(c),
                reason
            }
        )),
        (any::<u16>(), text(256)).prop_map(|(c, message)| Frame::Error(ErrorFrame {
            code: ErrorCode::from(c),
            message
        })),
        (0x0Fu8..=0xFF, any::<u8>(), any::<u32>(), bytes(0..=256)).prop_map(
            |(frame_type, flags, id, payload)| Frame::Unknown {
                frame_type,
                flags: flags | FLAG_IGNORABLE,
                stream_id: StreamId(id),
                payload
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_round_trips(frame in frame()) {
        let wire = frame.to_bytes();
        prop_assert_eq!(wire.len(), frame.encoded_len());
        let decoded = Frame::decode(wire.clone(), 16_777_215).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&decoded, &frame);
        prop_assert_eq!(decoded.to_bytes(), wire);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(msg in vec(any::<u8>(), 0..=512), max in 0u32..=1024) {
        let _ = Frame::decode(Bytes::from(msg), max);
    }

    #[test]
    fn corrupted_frames_never_panic_and_stay_consistent(
        frame in frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..=4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = frame.to_bytes().to_vec();
        for (at, value) in flips {
            let i = at.index(wire.len());
            wire[i] = value;
        }
        let keep = cut.index(wire.len() + 1);
        wire.truncate(keep);
        // Whatever the decoder accepts must re-encode to a frame that decodes to itself.
        if let Ok(decoded) = Frame::decode(Bytes::from(wire), 16_777_215) {
            let again = Frame::decode(decoded.to_bytes(), 16_777_215);
            prop_assert_eq!(again, Ok(decoded));
        }
    }

    #[test]
    fn payloads_over_the_limit_are_refused(extra in 1usize..=64, max in 0u32..=2048) {
        let data = Bytes::from(vec![1u8; max as usize + extra]);
        let wire = Frame::StreamData(StreamData { stream_id: StreamId(1), data }).to_bytes();
        let refused = matches!(Frame::decode(wire, max), Err(httvps_proto::DecodeError::FrameTooLarge { .. }));
        prop_assert!(refused);
    }
}
