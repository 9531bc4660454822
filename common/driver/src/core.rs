//! The connection and the session-level state around it that applications act on: ending the
//! session, draining it, the timers of the handshake, idleness and the heartbeat.

use std::time::Duration;

use bytes::Bytes;
use httvps_proto::frame::HelloError;
use httvps_proto::{ApiError, Connection, ErrorCode, Event, Role};
use tokio::time::Instant;

use crate::close_code;
use crate::config::{jittered, DriverConfig, Heartbeat};
use crate::silence;

/// A deadline by which the session ends with an ERROR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// The ERROR code the session ends with at the deadline.
    pub code: ErrorCode,
    /// When.
    pub deadline: Instant,
    /// We sent the GOAWAY: the session closes as soon as no stream is left.
    pub ours: bool,
}

/// One side of a session as the loop and its application see it.
#[derive(Debug)]
pub struct Core {
    conn: Connection,
    /// Set once HELLO_ACK went out (server) or came in (client); stays set after the close.
    established_at: Option<Instant>,
    handshake_deadline: Option<Instant>,
    idle_timeout: Option<Duration>,
    idle_deadline: Option<Instant>,
    drain: Option<Drain>,
    heartbeat: Option<Heartbeat>,
    next_ping: Option<Instant>,
    /// A PING is out and its PONG is due by then.
    pong_due: Option<Instant>,
    /// The ERROR this side ended the session with (its decision, or the peer's violation).
    local_error: Option<ErrorCode>,
    /// The ERROR the peer ended the session with.
    peer_error: Option<ErrorCode>,
    /// A HELLO_ERROR ended the handshake.
    hello_refused: bool,
    /// Server: withhold ERRORs and texts from an unauthenticated peer ([`silence`]).
    silent_before_handshake: bool,
    pub(crate) quiet: silence::Quiet,
    /// The application gave up on the session: no frame, no close handshake.
    pub(crate) abandoned: bool,
    pub(crate) pong_missed: bool,
}

impl Core {
    /// A session over `conn` with the timers of `config`, starting now.
    pub fn new(conn: Connection, config: &DriverConfig) -> Self {
        let now = Instant::now();
        Core {
            handshake_deadline: config.handshake_timeout.map(|t| now + t),
            idle_timeout: config.idle_timeout.filter(|t| !t.is_zero()),
            silent_before_handshake: conn.role() == Role::Server
                && config.unauthenticated_close_delay.is_some(),
            conn,
            established_at: None,
            idle_deadline: None,
            drain: None,
            heartbeat: None,
            next_ping: None,
            pong_due: None,
            local_error: None,
            peer_error: None,
            hello_refused: false,
            quiet: silence::Quiet::default(),
            abandoned: false,
            pong_missed: false,
        }
    }

    /// The time to give the connection: tokio's clock (paused in tests) as a std `Instant`.
    pub fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    /// The connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, to queue frames on.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// When HELLO_ACK went out (server) or came in (client), if it did.
    pub fn established_at(&self) -> Option<Instant> {
        self.established_at
    }

    /// Ends the session with an ERROR frame, the last frame sent; the WebSocket Close carries
    /// its code (SPEC §2.6). Nothing happens once the connection is closed.
    pub fn end(&mut self, code: ErrorCode, message: &str) {
        if self.conn.is_closed() {
            return;
        }
        self.conn.close(code, message);
        self.local_error.get_or_insert(code);
    }

    /// Server: refuses the HELLO; the Close follows with 1008.
    pub fn reject_hello(&mut self, error: HelloError) -> Result<(), ApiError> {
        self.conn.reject_hello(error)?;
        self.hello_refused = true;
        Ok(())
    }

    /// Sends GOAWAY and lets the streams finish for at most `grace`; the session closes with
    /// ERROR `no_error` once none is left, or with `code` at the deadline. Before the handshake
    /// completed the session ends at once with `code`.
    pub fn start_drain(&mut self, code: ErrorCode, reason: &str, grace: Duration) {
        if !self.conn.is_established() {
            self.end(code, reason);
            return;
        }
        if self.drain.is_some_and(|d| d.ours) {
            return;
        }
        if self.conn.go_away(code, reason).is_ok() {
            self.drain = Some(Drain {
                code,
                deadline: Instant::now() + grace,
                ours: true,
            });
        }
    }

    /// The peer is draining (its GOAWAY came): the session ends with ERROR `code` after
    /// `grace` at the latest, whatever streams are left.
    pub fn end_after(&mut self, code: ErrorCode, grace: Duration) {
        if self.drain.is_none() {
            self.drain = Some(Drain {
                code,
                deadline: Instant::now() + grace,
                ours: false,
            });
        }
    }

    /// The drain in progress, if any.
    pub fn drain(&self) -> Option<Drain> {
        self.drain
    }

    /// Starts the client's heartbeat: a PING now, then as [`Heartbeat`] says.
    pub fn start_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
        self.next_ping = Some(Instant::now());
    }

    /// Gives up on the session at once: no more frames, no close handshake (as if the process
    /// went away; the peer sees the connection drop).
    pub fn abandon(&mut self) {
        self.abandoned = true;
    }

    /// The ERROR code this side ended the session with, if it did.
    pub fn local_error(&self) -> Option<ErrorCode> {
        self.local_error
    }

    /// The ERROR code the peer ended the session with, if it did.
    pub fn peer_error(&self) -> Option<ErrorCode> {
        self.peer_error
    }

    // ---- for the loop ----

    /// The peer's message broke the protocol: the connection queued its ERROR already.
    pub(crate) fn violated(&mut self, code: ErrorCode) {
        self.local_error.get_or_insert(code);
    }

    /// Notes what the loop itself needs from an event before the application sees it.
    pub(crate) fn observe(&mut self, event: &Event) {
        match event {
            Event::HelloReceived(_) | Event::HelloAccepted(_) => self.handshake_deadline = None,
            Event::HelloRejected(_) => {
                self.handshake_deadline = None;
                self.hello_refused = true;
            }
            Event::Pong { .. } => self.pong_due = None,
            Event::PeerError(e) => {
                self.peer_error.get_or_insert(e.code);
            }
            _ => {}
        }
    }

    /// Starts the idle timer once the handshake completed.
    pub(crate) fn note_phase(&mut self) {
        if self.established_at.is_none() && self.conn.is_established() {
            let now = Instant::now();
            self.established_at = Some(now);
            self.handshake_deadline = None;
            self.idle_deadline = self.idle_timeout.map(|t| now + t);
        }
    }

    /// A frame arrived: the idle timer starts over (SPEC §8).
    pub(crate) fn touch(&mut self) {
        if let (Some(_), Some(t)) = (self.idle_deadline, self.idle_timeout) {
            self.idle_deadline = Some(Instant::now() + t);
        }
    }

    /// Whether our drain is complete: nothing left to send and no stream left.
    pub(crate) fn drain_complete(&self, app_drained: bool) -> bool {
        self.drain.is_some_and(|d| d.ours)
            && !self.conn.is_closed()
            && self.conn.is_drained()
            && app_drained
    }

    /// The earliest timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.handshake_deadline,
            self.idle_deadline,
            self.drain.map(|d| d.deadline),
            self.pong_due,
            self.next_ping,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on the timers that are due (one per call; the others fire at once after).
    pub(crate) fn on_timer(&mut self) {
        let now = Instant::now();
        let due = |at: Option<Instant>| at.is_some_and(|at| now >= at);
        if due(self.handshake_deadline) {
            self.handshake_deadline = None;
            self.end(ErrorCode::HandshakeTimeout, "no HELLO in time");
        } else if due(self.pong_due) {
            self.pong_due = None;
            self.pong_missed = true;
        } else if due(self.idle_deadline) {
            self.idle_deadline = None;
            self.end(ErrorCode::IdleTimeout, "idle");
        } else if let Some(drain) = self.drain.filter(|d| now >= d.deadline) {
            self.drain = Some(Drain {
                deadline: now + Duration::from_secs(365 * 86_400),
                ..drain
            });
            tracing::debug!(code = %drain.code, "drain period over");
            self.end(drain.code, "drain period over");
        } else if let (true, Some(heartbeat)) = (due(self.next_ping), self.heartbeat) {
            self.next_ping = Some(now + jittered(heartbeat.interval));
            if self.pong_due.is_none() && self.conn.ping(now.into_std()).is_ok() {
                self.pong_due = Some(now + heartbeat.pong_timeout);
            }
        }
    }

    /// The next frame to send, as [`silence`] allows it.
    pub(crate) fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            let frame = self.conn.poll_transmit(Instant::now().into_std())?;
            if !self.silent_before_handshake {
                return Some(frame);
            }
            match silence::outgoing(frame, self.established_at.is_some()) {
                silence::Outgoing::Send(frame) => return Some(frame),
                silence::Outgoing::SendQuietly(frame) => {
                    self.quiet.close = true;
                    return Some(frame);
                }
                silence::Outgoing::Drop => {
                    self.quiet.close = true;
                    self.quiet.error_dropped = true;
                }
            }
        }
    }

    /// The WebSocket close code (SPEC §2.6): that of the ERROR that ended the session, the
    /// peer's (echoed) or ours; 1008 after a HELLO_ERROR; a server otherwise says 1000 once
    /// established (1008 before: a HELLO_ERROR the connection queued itself), a client nothing.
    pub(crate) fn close_code(&self) -> Option<u16> {
        if self.hello_refused {
            return Some(close_code::POLICY);
        }
        if let Some(code) = self.peer_error.or(self.local_error) {
            return Some(close_code::for_error(code));
        }
        match (self.conn.role(), self.established_at) {
            (Role::Server, Some(_)) => Some(close_code::NORMAL),
            (Role::Server, None) => Some(close_code::POLICY),
            (Role::Client, _) => None,
        }
    }
}
