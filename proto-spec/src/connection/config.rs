//! Settings of one side of a session. Every limit is named here with its default; nothing is a
//! literal buried in the state machine.

use std::time::Duration;

use crate::limits::Limits;

/// How one side of a session behaves. The defaults are the ones SPEC.md lists.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// What this side can receive; advertised in HELLO (client) or HELLO_ACK (server).
    pub limits: Limits,
    /// Auto-tuning may grow a stream's receive window up to this.
    pub max_stream_window: u32,
    /// Auto-tuning may grow the session's receive window up to this.
    pub max_session_window: u32,
    /// Server: streams a client may have open at once, advertised in HELLO_ACK.
    pub max_streams: u32,
    /// Server: how often the client should PING, advertised in HELLO_ACK.
    pub heartbeat_interval: Duration,
    /// Server: idle time after which the session is closed, advertised in HELLO_ACK.
    pub idle_timeout: Duration,
    /// Largest STREAM_DATA payload this side schedules at once, so one bulk stream cannot hold
    /// the shared socket for long; also capped by the peer's max frame size.
    pub send_chunk: usize,
    /// Bytes a stream may have queued for sending beyond what was transmitted; together with
    /// the peer's credit this bounds the memory one stream can hold.
    pub stream_send_buffer: usize,
    /// Outbound datagrams queued at most; the oldest is dropped beyond this.
    pub datagram_queue: usize,
    /// Control frames queued at most; a peer that makes us queue more (a PING flood while our
    /// socket is blocked) ends the session with `protocol_error`.
    pub max_queued_control_frames: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: Limits::default(),
            max_stream_window: 16 * 1024 * 1024,
            max_session_window: 64 * 1024 * 1024,
            max_streams: 256,
            heartbeat_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            send_chunk: 32 * 1024,
            stream_send_buffer: 512 * 1024,
            datagram_queue: 256,
            max_queued_control_frames: 4096,
        }
    }
}
