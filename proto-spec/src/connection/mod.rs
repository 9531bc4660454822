//! The session state machine of HTTVPS/1 for both roles, free of I/O.
//!
//! The driver feeds every received binary WebSocket message to [`Connection::handle_message`],
//! sends every message [`Connection::poll_transmit`] returns, and acts on every
//! [`Connection::poll_event`]. Application calls (`open_stream`, `write`, `consume`, ...) only
//! change state and queue frames. Receiving is in `recv.rs`, the send scheduler in `send.rs`.

mod config;
mod error;
mod event;
mod recv;
mod send;
mod streams;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use config::SessionConfig;
pub use error::{ApiError, ConnectionError};
pub use event::Event;

use crate::address::TargetAddr;
use crate::codes::{ErrorCode, ResetCode};
use crate::flow::{RecvWindow, SendCredit};
use crate::frame::{
    Datagram, ErrorFrame, Extension, Frame, GoAway, Hello, HelloAck, HelloError, PingPayload,
    StreamKind, StreamOpen, StreamReset, Token, WindowUpdate,
};
use crate::limits::{Limits, MIN_MAX_FRAME_SIZE, PROTOCOL_VERSION};
use crate::stream::{Stream, StreamId, StreamState};

/// Which end of the session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens the WebSocket, says HELLO, opens streams.
    Client,
    /// Accepts the WebSocket, answers HELLO, connects stream targets.
    Server,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Client: HELLO not sent yet. Server: waiting for HELLO.
    Start,
    /// Client: HELLO sent. Server: HELLO received, the application is deciding.
    Handshaking,
    Established,
    Closed,
}

/// What the client says in its HELLO; the connection adds its versions and limits.
#[derive(Clone, Debug)]
pub struct ClientHello {
    /// The device's id.
    pub device_id: String,
    /// The device's token.
    pub device_token: Vec<u8>,
    /// Client software name.
    pub client_name: String,
    /// Client software version.
    pub client_version: String,
    /// A resume token from an earlier HELLO_ACK.
    pub resume_token: Option<Vec<u8>>,
    /// Preferred region.
    pub region: Option<String>,
    /// Handshake extensions.
    pub extensions: Vec<Extension>,
}

impl ClientHello {
    /// A HELLO with credentials only.
    pub fn new(device_id: impl Into<String>, device_token: Vec<u8>) -> Self {
        ClientHello {
            device_id: device_id.into(),
            device_token,
            client_name: String::new(),
            client_version: String::new(),
            resume_token: None,
            region: None,
            extensions: Vec::new(),
        }
    }
}

/// What the server says in its HELLO_ACK; the connection adds the version and limits.
#[derive(Clone, Debug)]
pub struct AcceptHello {
    /// The session's id.
    pub session_id: [u8; 16],
    /// The token the client may resume with.
    pub resume_token: Vec<u8>,
    /// Handshake extensions.
    pub extensions: Vec<Extension>,
}

impl AcceptHello {
    /// An acceptance without extensions.
    pub fn new(session_id: [u8; 16], resume_token: Vec<u8>) -> Self {
        AcceptHello {
            session_id,
            resume_token,
            extensions: Vec::new(),
        }
    }
}

/// Counters a driver exports as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// STREAM_DATA payload bytes sent (early data included).
    pub data_bytes_sent: u64,
    /// STREAM_DATA payload bytes received (early data included).
    pub data_bytes_received: u64,
    /// Writes cut short for lack of flow-control credit or buffer room.
    pub flow_control_stalls: u64,
    /// Outbound datagrams dropped because the queue was full.
    pub datagrams_dropped: u64,
    /// Frames for closed streams that were ignored.
    pub late_frames: u64,
}

/// One side of one HTTVPS/1 session.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: SessionConfig,
    phase: Phase,
    /// What the peer advertised it can receive (our send limits); defaults until the handshake.
    peer_limits: Limits,
    /// Server: the stream limit we advertised. Client: the one the server advertised.
    max_streams: u32,
    streams: BTreeMap<StreamId, Stream>,
    /// Highest stream id opened so far (allocated by the client, seen by the server).
    highest_stream_id: StreamId,
    session_send: SendCredit,
    session_recv: RecvWindow,
    /// Control frames, sent before any data.
    control: VecDeque<Frame>,
    datagrams: VecDeque<Datagram>,
    /// Streams with data or a FIN waiting, in round-robin order.
    ready: VecDeque<StreamId>,
    events: VecDeque<Event>,
    /// Last stream id of a GOAWAY we sent.
    goaway_sent: Option<StreamId>,
    /// Last stream id of a GOAWAY we received.
    goaway_received: Option<StreamId>,
    ping_in_flight: Option<(PingPayload, Instant)>,
    ping_counter: u64,
    rtt: Option<Duration>,
    stats: Stats,
    /// The latest time the driver gave us; the connection has no clock of its own.
    now: Instant,
}

impl Connection {
    /// A new session for `role`. A client then calls [`Connection::send_hello`]; a server waits
    /// for [`Event::HelloReceived`].
    pub fn new(role: Role, config: SessionConfig, now: Instant) -> Self {
        let session_recv = RecvWindow::new(config.limits.session_window, config.max_session_window);
        let handshake_limits = Limits {
            max_frame_size: MIN_MAX_FRAME_SIZE,
            ..Limits::default()
        };
        Connection {
            role,
            max_streams: config.max_streams,
            config,
            phase: Phase::Start,
            peer_limits: handshake_limits,
            streams: BTreeMap::new(),
            highest_stream_id: StreamId::SESSION,
            session_send: SendCredit::new(0),
            session_recv,
            control: VecDeque::new(),
            datagrams: VecDeque::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            goaway_sent: None,
            goaway_received: None,
            ping_in_flight: None,
            ping_counter: 0,
            rtt: None,
            stats: Stats::default(),
            now,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether HELLO_ACK has been sent (server) or received (client) and the session is open.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Whether the session has ended. Flush [`Connection::poll_transmit`] first: a final
    /// ERROR or HELLO_ERROR may still be queued.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The peer's advertised limits (what this side may send).
    pub fn peer_limits(&self) -> Limits {
        self.peer_limits
    }

    /// The stream limit in force (advertised by the server).
    pub fn max_streams(&self) -> u32 {
        self.max_streams
    }

    /// The latest PING round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The state of a stream, or `None` once it is gone.
    pub fn stream_state(&self, id: StreamId) -> Option<StreamState> {
        self.streams.get(&id).map(Stream::state)
    }

    /// Streams that count against the stream limit (opening, open or half closed).
    pub fn live_streams(&self) -> usize {
        self.streams.values().filter(|s| s.is_live()).count()
    }

    /// A stream's current receive window (it grows with auto-tuning).
    pub fn stream_recv_window(&self, id: StreamId) -> Option<u32> {
        self.streams.get(&id).map(|s| s.recv.window())
    }

    /// The session's current receive window (it grows with auto-tuning).
    pub fn session_recv_window(&self) -> u32 {
        self.session_recv.window()
    }

    /// Bytes `write` would accept on the stream now.
    pub fn writable_bytes(&self, id: StreamId) -> usize {
        self.streams.get(&id).map_or(0, |s| self.write_room(s))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- handshake ----

    /// Client: queues the HELLO.
    pub fn send_hello(&mut self, hello: ClientHello) -> Result<(), ApiError> {
        self.require_role(Role::Client)?;
        if self.phase != Phase::Start {
            return Err(ApiError::HandshakeState);
        }
        let frame = Hello {
            versions: vec![PROTOCOL_VERSION],
            device_id: hello.device_id,
            device_token: Token(Bytes::from(hello.device_token)),
            client_name: hello.client_name,
            client_version: hello.client_version,
            resume_token: hello
                .resume_token
                .filter(|t| !t.is_empty())
                .map(|t| Token(Bytes::from(t))),
            region: hello.region.filter(|r| !r.is_empty()),
            limits: self.config.limits,
            extensions: hello.extensions,
        };
        frame.validate().map_err(ApiError::InvalidHandshake)?;
        self.control.push_back(Frame::Hello(frame));
        self.phase = Phase::Handshaking;
        Ok(())
    }

    /// Server: accepts the HELLO received in [`Event::HelloReceived`] and queues HELLO_ACK.
    pub fn accept_hello(&mut self, accept: AcceptHello) -> Result<(), ApiError> {
        self.require_role(Role::Server)?;
        if self.phase != Phase::Handshaking {
            return Err(ApiError::HandshakeState);
        }
        let ack = HelloAck {
            version: PROTOCOL_VERSION,
            session_id: accept.session_id,
            resume_token: Token(Bytes::from(accept.resume_token)),
            max_streams: self.config.max_streams,
            limits: self.config.limits,
            heartbeat_interval_ms: duration_ms(self.config.heartbeat_interval),
            idle_timeout_ms: duration_ms(self.config.idle_timeout),
            extensions: accept.extensions,
        };
        ack.validate().map_err(ApiError::InvalidHandshake)?;
        self.control.push_back(Frame::HelloAck(ack));
        self.establish();
        Ok(())
    }

    /// Server: refuses the HELLO; the HELLO_ERROR is the last frame of the session.
    pub fn reject_hello(&mut self, error: HelloError) -> Result<(), ApiError> {
        self.require_role(Role::Server)?;
        if self.phase != Phase::Handshaking {
            return Err(ApiError::HandshakeState);
        }
        self.control.clear();
        self.control.push_back(Frame::HelloError(error));
        self.phase = Phase::Closed;
        Ok(())
    }

    fn establish(&mut self) {
        self.phase = Phase::Established;
        self.session_send = SendCredit::new(self.peer_limits.session_window);
    }

    // ---- streams ----

    // ---- session ----

    /// Queues a PING to measure the round-trip time (one at a time; a PING already in flight is
    /// replaced).
    pub fn ping(&mut self, now: Instant) -> Result<(), ApiError> {
        self.require_established()?;
        self.now = self.now.max(now);
        self.ping_counter += 1;
        let payload = PingPayload(self.ping_counter.to_be_bytes());
        self.ping_in_flight = Some((payload, now));
        self.control.push_back(Frame::Ping(payload));
        Ok(())
    }

    /// Starts draining: no new streams beyond those already opened. The session stays up for the
    /// existing streams; close it with [`Connection::close`] when they are done.
    pub fn go_away(&mut self, code: ErrorCode, reason: &str) -> Result<(), ApiError> {
        if self.phase == Phase::Closed {
            return Err(ApiError::Closed);
        }
        // A later GOAWAY may lower the last stream id, never raise it.
        let last = self.goaway_sent.map_or(self.highest_stream_id, |prev| {
            prev.min(self.highest_stream_id)
        });
        self.goaway_sent = Some(last);
        self.control.push_back(Frame::GoAway(GoAway {
            last_stream_id: last,
            code,
            reason: crate::frame::truncate_utf8(reason, crate::frame::MAX_MESSAGE_LEN).into(),
        }));
        Ok(())
    }

    /// Ends the session with an ERROR frame, the last frame sent. Control frames already queued
    /// (a GOAWAY, resets, credit) still go out before it; queued stream data and datagrams are
    /// dropped.
    pub fn close(&mut self, code: ErrorCode, message: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        self.end_with_error(code, message);
    }

    /// Whether the session is draining after a GOAWAY either way and has no live streams left,
    /// so the driver can close it.
    pub fn is_drained(&self) -> bool {
        self.phase != Phase::Closed
            && (self.goaway_sent.is_some() || self.goaway_received.is_some())
            && self.streams.is_empty()
    }

    /// Session credit the peer granted that is not yet spent on sent data.
    pub fn session_send_credit(&self) -> u64 {
        self.session_send.available()
    }

    /// Stream data written by the application and not yet transmitted, over all streams.
    pub fn queued_bytes(&self) -> usize {
        self.streams.values().map(|s| s.queued).sum()
    }

    /// Control frames waiting to be sent (PONGs, credit, resets, ...).
    pub fn queued_control_frames(&self) -> usize {
        self.control.len()
    }

    // ---- helpers ----

    fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::WrongRole(match role {
                Role::Client => "client",
                Role::Server => "server",
            }))
        }
    }

    fn require_established(&self) -> Result<(), ApiError> {
        match self.phase {
            Phase::Established => Ok(()),
            Phase::Closed => Err(ApiError::Closed),
            _ => Err(ApiError::HandshakeState),
        }
    }

    /// Ends the session because of a local decision or a peer violation.
    fn fail_with(&mut self, code: ErrorCode, message: &str) {
        self.control.clear();
        self.end_with_error(code, message);
    }

    /// Drops the streams and what they queued, queues the ERROR frame last and closes.
    fn end_with_error(&mut self, code: ErrorCode, message: &str) {
        self.datagrams.clear();
        self.ready.clear();
        self.streams.clear();
        self.control
            .push_back(Frame::Error(ErrorFrame::new(code, message)));
        self.phase = Phase::Closed;
    }
}

fn duration_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
