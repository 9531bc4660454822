//! HTTVPS/1 frames. Each binary WebSocket message carries exactly one frame:
//!
//! ```text
//! +--------+--------+-----------------------------------+-------------------
//! | type   | flags  | stream id (u32, big-endian)       | payload ...
//! +--------+--------+-----------------------------------+-------------------
//! ```
//!
//! The payload runs to the end of the message. One module per frame type holds its layout,
//! encoder and decoder; this module dispatches on the type byte and enforces the rules common
//! to all frames (header length, payload size, stream id zero or not, unknown types).

mod data;
mod datagram;
mod decode_error;
mod error;
mod extension;
mod go_away;
mod hello;
mod hello_ack;
mod hello_error;
mod ping;
mod stream_control;
mod stream_open;
mod window_update;

use bytes::{BufMut, Bytes, BytesMut};

pub use data::StreamData;
pub use datagram::Datagram;
pub use decode_error::{DecodeError, Field};
pub use extension::{Extension, MAX_EXTENSIONS, MAX_EXTENSION_LEN};
pub use go_away::GoAway;
pub use hello::{Hello, Token};
pub use hello_ack::HelloAck;
pub use hello_error::HelloError;
pub use ping::PingPayload;
pub use stream_control::{StreamFin, StreamOpenAck, StreamReset};
pub use stream_open::{StreamKind, StreamOpen};
pub use window_update::WindowUpdate;

use crate::limits::HEADER_LEN;
use crate::reader::Reader;
use crate::stream::StreamId;
pub use error::ErrorFrame;

/// Flag bit that lets a receiver skip a frame whose type it does not know.
pub const FLAG_IGNORABLE: u8 = 0x80;
/// The longest ERROR message, GOAWAY reason or HELLO_ERROR message, in bytes.
pub const MAX_MESSAGE_LEN: usize = 256;

/// The frame types of HTTVPS/1 and their type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Client handshake.
    Hello = 0x01,
    /// Server accepts the handshake.
    HelloAck = 0x02,
    /// Server refuses the handshake.
    HelloError = 0x03,
    /// Client opens a stream.
    StreamOpen = 0x04,
    /// Server confirms a stream's target is connected.
    StreamOpenAck = 0x05,
    /// Stream bytes.
    StreamData = 0x06,
    /// The sender will send no more bytes on the stream (half close).
    StreamFin = 0x07,
    /// Abort a stream, with a code.
    StreamReset = 0x08,
    /// Flow-control credit for a stream or (stream id 0) the session.
    WindowUpdate = 0x09,
    /// One UDP datagram of a UDP stream.
    Datagram = 0x0A,
    /// Liveness and RTT probe.
    Ping = 0x0B,
    /// Reply to PING with the same payload.
    Pong = 0x0C,
    /// Drain: no new streams above the given id.
    GoAway = 0x0D,
    /// Session-fatal error; the WebSocket closes after it.
    Error = 0x0E,
}

impl FrameType {
    /// The frame type for a type byte, if HTTVPS/1 defines one.
    pub fn from_u8(value: u8) -> Option<Self> {
        use FrameType::*;
        Some(match value {
            0x01 => Hello,
            0x02 => HelloAck,
            0x03 => HelloError,
            0x04 => StreamOpen,
            0x05 => StreamOpenAck,
            0x06 => StreamData,
            0x07 => StreamFin,
            0x08 => StreamReset,
            0x09 => WindowUpdate,
            0x0A => Datagram,
            0x0B => Ping,
            0x0C => Pong,
            0x0D => GoAway,
            0x0E => Error,
            _ => return None,
        })
    }

    /// The stable SCREAMING_SNAKE name of the spec.
    pub fn name(self) -> &'static str {
        use FrameType::*;
        match self {
            Hello => "HELLO",
            HelloAck => "HELLO_ACK",
            HelloError => "HELLO_ERROR",
            StreamOpen => "STREAM_OPEN",
            StreamOpenAck => "STREAM_OPEN_ACK",
            StreamData => "STREAM_DATA",
            StreamFin => "STREAM_FIN",
            StreamReset => "STREAM_RESET",
            WindowUpdate => "WINDOW_UPDATE",
            Datagram => "DATAGRAM",
            Ping => "PING",
            Pong => "PONG",
            GoAway => "GOAWAY",
            Error => "ERROR",
        }
    }

    /// Which stream ids the frame type may carry.
    fn stream_rule(self) -> StreamRule {
        use FrameType::*;
        match self {
            Hello | HelloAck | HelloError | Ping | Pong | GoAway | Error => StreamRule::Zero,
            StreamOpen | StreamOpenAck | StreamData | StreamFin | StreamReset | Datagram => {
                StreamRule::NonZero
            }
            WindowUpdate => StreamRule::Any,
        }
    }
}

enum StreamRule {
    Zero,
    NonZero,
    Any,
}

/// One decoded HTTVPS/1 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// HELLO.
    Hello(Hello),
    /// HELLO_ACK.
    HelloAck(HelloAck),
    /// HELLO_ERROR.
    HelloError(HelloError),
    /// STREAM_OPEN.
    StreamOpen(StreamOpen),
    /// STREAM_OPEN_ACK.
    StreamOpenAck(StreamOpenAck),
    /// STREAM_DATA.
    StreamData(StreamData),
    /// STREAM_FIN.
    StreamFin(StreamFin),
    /// STREAM_RESET.
    StreamReset(StreamReset),
    /// WINDOW_UPDATE.
    WindowUpdate(WindowUpdate),
    /// DATAGRAM.
    Datagram(Datagram),
    /// PING.
    Ping(PingPayload),
    /// PONG.
    Pong(PingPayload),
    /// GOAWAY.
    GoAway(GoAway),
    /// ERROR.
    Error(ErrorFrame),
    /// A frame of a type this version does not know, sent with [`FLAG_IGNORABLE`]: the receiver
    /// skips it. Unknown types without the flag are a decode error instead.
    Unknown {
        /// The type byte.
        frame_type: u8,
        /// The flags byte.
        flags: u8,
        /// The stream id.
        stream_id: StreamId,
        /// The payload, untouched.
        payload: Bytes,
    },
}

impl Frame {
    /// Decodes one frame from one WebSocket message. `max_payload` is the largest payload the
    /// receiver advertised (before the handshake completes, [`crate::limits::MIN_MAX_FRAME_SIZE`]).
    ///
    /// Never panics; every malformed input yields a [`DecodeError`]. Byte payloads (stream data,
    /// datagrams, tokens) are zero-copy slices of `msg`.
    pub fn decode(msg: Bytes, max_payload: u32) -> Result<Frame, DecodeError> {
        if msg.len() < HEADER_LEN {
            return Err(DecodeError::TruncatedHeader { len: msg.len() });
        }
        let type_byte = msg[0];
        let flags = msg[1];
        let stream_id = StreamId(u32::from_be_bytes([msg[2], msg[3], msg[4], msg[5]]));
        let payload_len = msg.len() - HEADER_LEN;
        if payload_len > max_payload as usize {
            return Err(DecodeError::FrameTooLarge {
                len: payload_len,
                max: max_payload,
            });
        }
        let payload = msg.slice(HEADER_LEN..);
        let Some(frame_type) = FrameType::from_u8(type_byte) else {
            if flags & FLAG_IGNORABLE != 0 {
                return Ok(Frame::Unknown {
                    frame_type: type_byte,
                    flags,
                    stream_id,
                    payload,
                });
            }
            return Err(DecodeError::UnknownFrameType(type_byte));
        };
        match (frame_type.stream_rule(), stream_id.is_session()) {
            (StreamRule::Zero, false) => return Err(DecodeError::StreamIdNotZero { frame_type }),
            (StreamRule::NonZero, true) => return Err(DecodeError::StreamIdZero { frame_type }),
            _ => {}
        }
        let mut r = Reader::new(payload);
        let frame = match frame_type {
            FrameType::Hello => Frame::Hello(Hello::decode(&mut r)?),
            FrameType::HelloAck => Frame::HelloAck(HelloAck::decode(&mut r)?),
            FrameType::HelloError => Frame::HelloError(HelloError::decode(&mut r)?),
            FrameType::StreamOpen => Frame::StreamOpen(StreamOpen::decode(stream_id, &mut r)?),
            FrameType::StreamOpenAck => Frame::StreamOpenAck(StreamOpenAck { stream_id }),
            FrameType::StreamData => Frame::StreamData(StreamData::decode(stream_id, &mut r)?),
            FrameType::StreamFin => Frame::StreamFin(StreamFin { stream_id }),
            FrameType::StreamReset => Frame::StreamReset(StreamReset::decode(stream_id, &mut r)?),
            FrameType::WindowUpdate => {
                Frame::WindowUpdate(WindowUpdate::decode(stream_id, &mut r)?)
            }
            FrameType::Datagram => Frame::Datagram(Datagram::decode(stream_id, flags, &mut r)?),
            FrameType::Ping => Frame::Ping(PingPayload::decode(frame_type, &mut r)?),
            FrameType::Pong => Frame::Pong(PingPayload::decode(frame_type, &mut r)?),
            FrameType::GoAway => Frame::GoAway(GoAway::decode(&mut r)?),
            FrameType::Error => Frame::Error(ErrorFrame::decode(&mut r)?),
        };
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes {
                frame_type,
                extra: r.remaining(),
            });
        }
        Ok(frame)
    }

    /// The frame's type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Frame::Unknown { frame_type, .. } => *frame_type,
            known => known.frame_type().map_or(0, |t| t as u8),
        }
    }

    /// The frame's type, or `None` for [`Frame::Unknown`].
    pub fn frame_type(&self) -> Option<FrameType> {
        Some(match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::HelloAck(_) => FrameType::HelloAck,
            Frame::HelloError(_) => FrameType::HelloError,
            Frame::StreamOpen(_) => FrameType::StreamOpen,
            Frame::StreamOpenAck(_) => FrameType::StreamOpenAck,
            Frame::StreamData(_) => FrameType::StreamData,
            Frame::StreamFin(_) => FrameType::StreamFin,
            Frame::StreamReset(_) => FrameType::StreamReset,
            Frame::WindowUpdate(_) => FrameType::WindowUpdate,
            Frame::Datagram(_) => FrameType::Datagram,
            Frame::Ping(_) => FrameType::Ping,
            Frame::Pong(_) => FrameType::Pong,
            Frame::GoAway(_) => FrameType::GoAway,
            Frame::Error(_) => FrameType::Error,
            Frame::Unknown { .. } => return None,
        })
    }

    /// The stream id in the header (0 for session frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::StreamOpen(f) => f.stream_id,
            Frame::StreamOpenAck(f) => f.stream_id,
            Frame::StreamData(f) => f.stream_id,
            Frame::StreamFin(f) => f.stream_id,
            Frame::StreamReset(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Datagram(f) => f.stream_id,
            Frame::Unknown { stream_id, .. } => *stream_id,
            _ => StreamId::SESSION,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            Frame::Datagram(d) => d.flags(),
            Frame::Unknown { flags, .. } => *flags,
            _ => 0,
        }
    }

    /// Payload bytes this frame encodes to.
    pub fn payload_len(&self) -> usize {
        match self {
            Frame::Hello(f) => f.payload_len(),
            Frame::HelloAck(f) => f.payload_len(),
            Frame::HelloError(f) => f.payload_len(),
            Frame::StreamOpen(f) => f.payload_len(),
            Frame::StreamOpenAck(_) | Frame::StreamFin(_) => 0,
            Frame::StreamData(f) => f.data.len(),
            Frame::StreamReset(_) => 2,
            Frame::WindowUpdate(_) => 4,
            Frame::Datagram(f) => f.payload_len(),
            Frame::Ping(_) | Frame::Pong(_) => 8,
            Frame::GoAway(f) => f.payload_len(),
            Frame::Error(f) => f.payload_len(),
            Frame::Unknown { payload, .. } => payload.len(),
        }
    }

    /// Bytes this frame encodes to, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Appends the frame's wire form to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        put_header(buf, self.type_byte(), self.flags(), self.stream_id());
        match self {
            Frame::Hello(f) => f.encode_payload(buf),
            Frame::HelloAck(f) => f.encode_payload(buf),
            Frame::HelloError(f) => f.encode_payload(buf),
            Frame::StreamOpen(f) => f.encode_payload(buf),
            Frame::StreamOpenAck(_) | Frame::StreamFin(_) => {}
            Frame::StreamData(f) => buf.put_slice(&f.data),
            Frame::StreamReset(f) => buf.put_u16(f.code.to_u16()),
            Frame::WindowUpdate(f) => buf.put_u32(f.increment),
            Frame::Datagram(f) => f.encode_payload(buf),
            Frame::Ping(p) | Frame::Pong(p) => buf.put_slice(&p.0),
            Frame::GoAway(f) => f.encode_payload(buf),
            Frame::Error(f) => f.encode_payload(buf),
            Frame::Unknown { payload, .. } => buf.put_slice(payload),
        }
    }

    /// The frame's wire form as one buffer, ready to send as a binary WebSocket message.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

pub(crate) fn put_header(buf: &mut BytesMut, frame_type: u8, flags: u8, stream_id: StreamId) {
    buf.put_u8(frame_type);
    buf.put_u8(flags);
    buf.put_u32(stream_id.0);
}

/// Bytes [`put_str8`] writes for `s`.
pub(crate) fn str8_len(s: &str) -> usize {
    1 + truncate_utf8(s, 255).len()
}

/// Bytes [`put_bytes8`] writes for `b`.
pub(crate) fn bytes8_len(b: &[u8]) -> usize {
    1 + b.len().min(255)
}

/// Writes `s` with a one-byte length prefix, cut at a character boundary to fit in 255 bytes.
/// Encoders cut every field to what its length prefix can express, so `encoded_len` always
/// matches the bytes written; whether the peer accepts the values is `validate`'s job.
pub(crate) fn put_str8(buf: &mut BytesMut, s: &str) {
    put_bytes8(buf, truncate_utf8(s, 255).as_bytes());
}

/// Writes `b` with a one-byte length prefix; bytes past 255 are not written.
pub(crate) fn put_bytes8(buf: &mut BytesMut, b: &[u8]) {
    let b = &b[..b.len().min(255)];
    buf.put_u8(b.len() as u8);
    buf.put_slice(b);
}

/// `s` cut at a character boundary to at most `max` bytes.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
