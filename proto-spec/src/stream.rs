//! Stream ids and the per-stream state of the connection state machine.

use std::fmt;

/// A stream id. The client allocates them, starting at 1 and strictly increasing; 0 names the
/// session itself (session frames, session WINDOW_UPDATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The session pseudo-stream, id 0.
    pub const SESSION: StreamId = StreamId(0);

    /// Whether this is id 0.
    pub fn is_session(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a stream is in its life, seen from one side (see the state table in SPEC.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// STREAM_OPEN sent (client) or received (server); no STREAM_OPEN_ACK yet. Data may already
    /// flow from the client within its credit.
    Opening,
    /// Both directions open.
    Open,
    /// This side sent STREAM_FIN; the peer may still send.
    HalfClosedLocal,
    /// The peer sent STREAM_FIN; this side may still send.
    HalfClosedRemote,
    /// Both FINs exchanged, or a STREAM_RESET sent or received. The id is never used again.
    Closed,
}

use std::collections::VecDeque;

use bytes::Bytes;

use crate::flow::{RecvWindow, SendCredit};
use crate::frame::StreamKind;

/// One stream's bookkeeping inside a [`crate::Connection`].
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) kind: StreamKind,
    /// STREAM_OPEN_ACK sent (server) or received (client).
    pub(crate) accepted: bool,
    /// Stream credit not yet reserved by `write` (writes reserve it; transmission spends the
    /// session credit).
    pub(crate) send_credit: SendCredit,
    pub(crate) send_queue: VecDeque<Bytes>,
    pub(crate) queued: usize,
    /// `finish` was called; STREAM_FIN goes out once the queue drains.
    pub(crate) fin_queued: bool,
    pub(crate) fin_sent: bool,
    pub(crate) fin_received: bool,
    /// A `write` was cut short; report `StreamWritable` when it can take more.
    pub(crate) write_blocked: bool,
    /// Bytes left of its current turn in the send scheduler (0: its next turn starts afresh).
    pub(crate) deficit: usize,
    pub(crate) recv: RecvWindow,
}

impl Stream {
    pub(crate) fn new(
        kind: StreamKind,
        send_credit: u32,
        recv_window: u32,
        max_recv_window: u32,
    ) -> Self {
        Stream {
            kind,
            accepted: false,
            send_credit: SendCredit::new(send_credit),
            send_queue: VecDeque::new(),
            queued: 0,
            fin_queued: false,
            fin_sent: false,
            fin_received: false,
            write_blocked: false,
            deficit: 0,
            recv: RecvWindow::new(recv_window, max_recv_window),
        }
    }

    pub(crate) fn state(&self) -> StreamState {
        match (self.fin_sent, self.fin_received) {
            (true, true) => StreamState::Closed,
            (true, false) => StreamState::HalfClosedLocal,
            (false, true) => StreamState::HalfClosedRemote,
            (false, false) if self.accepted => StreamState::Open,
            (false, false) => StreamState::Opening,
        }
    }

    /// Whether the stream still counts against the session's stream limit.
    pub(crate) fn is_live(&self) -> bool {
        self.state() != StreamState::Closed
    }

    /// Whether nothing is left to do: both sides finished and every received byte consumed.
    pub(crate) fn is_drained(&self) -> bool {
        self.fin_sent && self.fin_received && self.recv.unconsumed() == 0
    }

    /// Whether the local side may still queue data.
    pub(crate) fn can_write(&self) -> bool {
        !self.fin_queued && !self.fin_sent
    }
}
