//! One task per session: it owns the `httvps_proto::Connection` and the WebSocket, and talks to
//! one small task per stream (see [`crate::upstream`]).
//!
//! The loop waits on, at once: the WebSocket sink becoming ready for the frame pulled from
//! `poll_transmit` (the next is pulled only once the sink took it, so a client that stops
//! reading stops the session's output; its input is still read, but only a bounded number of
//! non-data messages, so it cannot grow the control queue), the next WebSocket message, reports from stream tasks (a bounded channel), the timers (handshake, idle,
//! lifetime, drain), the WebSocket ping interval and the gateway's drain signal.
//!
//! - [`handshake`]: HELLO → rate limits → device authority → HELLO_ACK or HELLO_ERROR.
//! - [`streams`]: the table of live streams and their flow-control bookkeeping.
//! - [`close`]: the WebSocket close codes of SPEC §2.6.

pub use httvps_driver::close_code as close;
pub mod control;
mod handshake;
pub use httvps_driver::silence;
pub mod streams;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use httvps_proto::frame::StreamOpen;
use httvps_proto::{Connection, ErrorCode, Event, ResetCode, Role, StreamId, StreamKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::gateway::Shared;
use crate::metrics as m;
use crate::shared::directory::Listing;
use crate::shared::quota::QuotaAccount;
use crate::shared::{unix_ms, SessionEnd};
use crate::stats::SessionStatsGuard;
use crate::upstream::tcp::TcpRelay;
use crate::upstream::udp::{OutboundDatagram, UdpRelay};
use crate::upstream::upload::UploadQueue;
use crate::upstream::{open_span, SessionNode, StreamEvent};
use crate::usage::SessionUsage;
use control::ControlEvent;
use httvps_shared_state::SessionLease;
use streams::{StreamEntry, StreamIo, StreamTable};

/// Reports from stream tasks waiting for the session at most; a full channel makes stream
/// tasks wait, never the session.
const STREAM_EVENT_QUEUE: usize = 256;
/// Datagrams from the client queued for one UDP stream's node socket; more are dropped.
const DATAGRAM_QUEUE: usize = 64;
/// Largest single read from an upstream.
const UPSTREAM_READ_CHUNK: usize = 32 * 1024;
/// Read credit is handed to a stream task in steps of at least this much (unless it has none).
const MIN_GRANT: usize = 8 * 1024;
/// Messages other than STREAM_DATA read while the sink is blocked, before reading pauses.
/// Each may queue a control frame (PONG, STREAM_RESET, ...), so this bounds that queue for a
/// client that floods without reading; STREAM_DATA is bounded by its credit instead.
const MAX_CONTROL_READS_WHILE_BLOCKED: usize = 256;
/// Stream reports handled per wakeup of the session before its other inputs get a turn.
const MAX_EVENTS_PER_WAKE: usize = 64;
/// Frames moved into the WebSocket per wakeup of the session (one flush writes them all).
const MAX_FRAMES_PER_WAKE: usize = 64;
/// How long a session past its subscription's end waits for the control plane to say a
/// renewal moved the end, before it ends with ERROR `expired`.
const EXPIRY_CONFIRM_WAIT: Duration = Duration::from_millis(900);
/// How long the close handshake may take once the session is over.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one session over an upgraded WebSocket until it ends.
pub async fn run_session<S>(ws: WebSocketStream<S>, peer: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let stats = shared.stats.register_session();
    let now = Instant::now();
    let (events_tx, events_rx) = mpsc::channel(STREAM_EVENT_QUEUE);
    let lifetime = shared.config.max_lifetime + jitter(shared.config.max_lifetime_jitter);
    let session = Session {
        conn: Connection::new(Role::Server, shared.session_config.clone(), now),
        handshake_deadline: Some(now + shared.config.handshake_timeout),
        idle_deadline: None,
        subscription_end: None,
        expiry_confirm: None,
        gateway_slot: None,
        lifetime_deadline: now + lifetime,
        drain: None,
        shutdown_seen: false,
        close_code: None,
        quiet: silence::Quiet::default(),
        peer_gone: false,
        streams: StreamTable::default(),
        events_tx,
        events_rx,
        node: None,
        device_id: None,
        cp_session: None,
        control: None,
        usage: None,
        lease: None,
        resume_hash: String::new(),
        client_goodbye: false,
        listing: None,
        quota: None,
        quota_exhausted: false,
        end_reason: None,
        established_at: None,
        hello_trace: httvps_telemetry::TraceLink::default(),
        written_down: 0,
        proto_stalls: 0,
        reported_streams: (0, 0),
        peer,
        stats,
        shared,
    };
    session.run(ws).await;
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    conn: Connection,
    streams: StreamTable,
    events_tx: mpsc::Sender<StreamEvent>,
    events_rx: mpsc::Receiver<StreamEvent>,
    /// The session's node slot, from HELLO_ACK on.
    node: Option<Arc<SessionNode>>,
    device_id: Option<String>,
    /// The session's id at the control plane (when there is one).
    cp_session: Option<uuid::Uuid>,
    /// The heartbeat task and its reports (when there is a control plane).
    control: Option<ControlHandle>,
    /// Byte counts for usage reports.
    usage: Option<Arc<SessionUsage>>,
    /// Its slot in the shared session limits, from HELLO_ACK on.
    lease: Option<SessionLease>,
    /// Hash of the resume token this connection issued.
    resume_hash: String,
    /// The client ended the session itself (Close or ERROR): its resume token goes too.
    client_goodbye: bool,
    /// The session's place in the gateway's directory: shared events end it through this.
    listing: Option<Listing>,
    /// The byte quota it draws on, if limited.
    quota: Option<Arc<QuotaAccount>>,
    quota_exhausted: bool,
    /// Why the session ended, for the control plane (`client_closed`, `idle_timeout`, ...).
    end_reason: Option<&'static str>,
    established_at: Option<Instant>,
    /// The HELLO's span: each stream open is a trace of its own that links to it.
    hello_trace: httvps_telemetry::TraceLink,
    handshake_deadline: Option<Instant>,
    idle_deadline: Option<Instant>,
    /// When the device's subscription ends (from its entitlement): the session ends then with
    /// ERROR `expired`, without waiting for a heartbeat.
    subscription_end: Option<Instant>,
    /// The end time came and the control plane was asked: the session ends with ERROR `expired`
    /// at this deadline unless the answer moves the end (a renewal).
    expiry_confirm: Option<Instant>,
    /// Its place under the gateway's `--max-sessions`, from HELLO on.
    gateway_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    lifetime_deadline: Instant,
    /// Draining after our GOAWAY: its code and when to give up on the remaining streams.
    drain: Option<(ErrorCode, Instant)>,
    shutdown_seen: bool,
    /// Set when the session decided to end: the close code for the WebSocket.
    close_code: Option<u16>,
    /// The session ends before a valid HELLO: no ERROR or text goes out and the close waits a
    /// random time ([`silence`]).
    quiet: silence::Quiet,
    /// The WebSocket is gone or the peer closed it.
    peer_gone: bool,
    /// STREAM_DATA bytes handed to `Connection::write` (minus what it sent = queued there).
    written_down: u64,
    proto_stalls: u64,
    /// Live (tcp, udp) streams last added to the gateway-wide counters.
    reported_streams: (usize, usize),
    stats: SessionStatsGuard,
}

impl Session {
    async fn run<S>(mut self, ws: WebSocketStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut sink, mut source) = ws.split();
        let mut outgoing: Option<Message> = None;
        let mut needs_flush = false;
        let mut ping_due = false;
        let mut control_reads_while_blocked = 0usize;
        let ping_every = self.shared.config.ws_ping_interval;
        // Jittered, so the pings show no exact period (SPEC §2.5).
        let mut next_ping = tokio::time::Instant::now() + silence::ping_delay(ping_every);
        let drain_signal = self.shared.drain.clone();

        loop {
            if outgoing.is_none() {
                if ping_due {
                    outgoing = Some(Message::Ping(Bytes::new()));
                    ping_due = false;
                } else if let Some(frame) = self.next_frame() {
                    outgoing = Some(Message::Binary(frame));
                } else if self.drain.is_some()
                    && !self.conn.is_closed()
                    && self.conn.is_drained()
                    && self.streams.is_empty()
                {
                    // Only once everything queued (the GOAWAY included) went out: `close`
                    // drops whatever is still queued.
                    self.end(ErrorCode::NoError, "drained");
                    continue;
                }
            }
            if self.peer_gone || (outgoing.is_none() && self.conn.is_closed()) {
                break;
            }
            let deadline = tokio::time::Instant::from_std(self.next_deadline());
            let sink_busy = outgoing.is_some() || needs_flush;
            let can_read = !self.conn.is_closed()
                && (outgoing.is_none()
                    || control_reads_while_blocked < MAX_CONTROL_READS_WHILE_BLOCKED);
            tokio::select! {
                sent = drive_sink(
                    &mut sink,
                    &mut outgoing,
                    &mut needs_flush,
                    || next_frame(&mut self.conn, &mut self.quiet, self.established_at.is_some())
                        .map(Message::Binary),
                ), if sink_busy => {
                    if sent.is_err() {
                        self.peer_gone = true;
                    }
                    control_reads_while_blocked = 0;
                }
                msg = source.next(), if can_read => {
                    // tungstenite queues Pong and Close replies; the next flush sends them.
                    needs_flush = true;
                    let is_data = matches!(&msg, Some(Ok(Message::Binary(b))) if b.first() == Some(&0x06));
                    if outgoing.is_some() && !is_data {
                        control_reads_while_blocked += 1;
                    }
                    self.on_ws_message(msg);
                }
                Some(event) = self.events_rx.recv() => {
                    self.on_stream_event(event);
                    // Whatever else is ready too: one round of bookkeeping (`after_io`) for all.
                    for _ in 1..MAX_EVENTS_PER_WAKE {
                        match self.events_rx.try_recv() {
                            Ok(event) => self.on_stream_event(event),
                            Err(_) => break,
                        }
                    }
                }
                Some(event) = recv_control(&mut self.control) => self.on_control_event(event),
                Some(event) = recv_listing(&mut self.listing) => self.on_control_event(event),
                _ = tokio::time::sleep_until(deadline) => self.on_timer(),
                _ = tokio::time::sleep_until(next_ping) => {
                    ping_due = true;
                    next_ping = tokio::time::Instant::now() + silence::ping_delay(ping_every);
                }
                _ = drain_signal.cancelled(), if !self.shutdown_seen => {
                    self.shutdown_seen = true;
                    self.start_drain(ErrorCode::ShuttingDown, self.shared.config.shutdown_grace);
                }
            }
            self.after_io().await;
        }
        self.finish(sink, source).await;
    }

    /// Processes what the last input produced: protocol events, read credit for streams,
    /// the end of a drain, statistics.
    async fn after_io(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.on_proto_event(event).await;
        }
        if self.conn.is_closed() {
            return;
        }
        self.grant_read_credit();
        self.update_stats();
    }

    /// The next frame to send, as [`silence`] allows it.
    fn next_frame(&mut self) -> Option<Bytes> {
        next_frame(
            &mut self.conn,
            &mut self.quiet,
            self.established_at.is_some(),
        )
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.handshake_deadline,
            self.idle_deadline,
            self.subscription_end,
            self.expiry_confirm,
            Some(self.lifetime_deadline),
            self.drain.map(|(_, at)| at),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.handshake_deadline.is_some_and(|at| now >= at) {
            self.handshake_deadline = None;
            self.end(ErrorCode::HandshakeTimeout, "no HELLO in time");
        } else if self.expiry_confirm.is_some_and(|at| now >= at) {
            self.expiry_confirm = None;
            self.subscription_ended();
        } else if self.subscription_end.is_some_and(|at| now >= at) {
            self.subscription_end = None;
            match &self.control {
                // A renewal may have moved the end since HELLO: ask at once, and end within
                // EXPIRY_CONFIRM_WAIT unless the answer says otherwise (or there is none).
                Some(control) => {
                    control.check_now.notify_one();
                    self.expiry_confirm = Some(now + EXPIRY_CONFIRM_WAIT);
                }
                None => self.subscription_ended(),
            }
        } else if self.idle_deadline.is_some_and(|at| now >= at) {
            self.end(ErrorCode::IdleTimeout, "idle");
        } else if self.drain.is_some_and(|(_, at)| now >= at) {
            let code = self.drain.map_or(ErrorCode::ShuttingDown, |(c, _)| c);
            self.end(code, "drain period over");
        } else if now >= self.lifetime_deadline {
            // Only once: afterwards the drain deadline governs.
            self.lifetime_deadline = now + Duration::from_secs(365 * 86_400);
            self.start_drain(ErrorCode::MaxLifetime, self.shared.config.drain_timeout);
        }
    }

    /// The control plane says when access ends now (each heartbeat, and the answer to the one
    /// asked for at the end time).
    fn access_ends(&mut self, ends_at_ms: Option<i64>) {
        let now = Instant::now();
        match ends_at_ms {
            None => {
                self.subscription_end = None;
                self.expiry_confirm = None;
            }
            Some(at) => match u64::try_from(at - unix_ms()) {
                Ok(left) if left > 0 => {
                    self.subscription_end = Some(now + Duration::from_millis(left));
                    self.expiry_confirm = None;
                }
                // Past by this gateway's clock, not yet by the control plane's: end shortly.
                _ => {
                    self.subscription_end = None;
                    self.expiry_confirm.get_or_insert(now + EXPIRY_CONFIRM_WAIT);
                }
            },
        }
    }

    /// The subscription's end time has come: ERROR `expired`, final (no resume).
    fn subscription_ended(&mut self) {
        tracing::info!(peer = %self.peer, device = self.device_id.as_deref().unwrap_or("-"), "subscription ended");
        if let Some(device) = &self.device_id {
            self.shared.authority.forget(device);
        }
        self.end_reason = Some("expired");
        self.end(ErrorCode::Expired, "the subscription has ended");
    }

    /// Sends GOAWAY and lets the streams finish for at most `grace`.
    fn start_drain(&mut self, code: ErrorCode, grace: Duration) {
        if !self.conn.is_established() {
            self.end(code, "the gateway is going away");
            return;
        }
        if self.drain.is_some() {
            return;
        }
        let reason = match code {
            ErrorCode::MaxLifetime => "maximum connection lifetime reached",
            _ => "gateway shutting down",
        };
        if self.conn.go_away(code, reason).is_ok() {
            self.drain = Some((code, Instant::now() + grace));
        }
    }

    /// Ends the session with an ERROR frame and remembers the close code.
    fn end(&mut self, code: ErrorCode, message: &str) {
        if self.conn.is_closed() {
            return;
        }
        self.conn.close(code, message);
        self.close_code = Some(close::for_error(code));
        if self.end_reason.is_none() {
            self.end_reason = Some(match code {
                ErrorCode::NoError | ErrorCode::ShuttingDown if self.shutdown_seen => "shutdown",
                ErrorCode::NoError => "drained",
                other => other.name(),
            });
        }
    }

    fn on_control_event(&mut self, event: ControlEvent) {
        match event {
            ControlEvent::AccessEnds(ends_at_ms) => self.access_ends(ends_at_ms),
            ControlEvent::End { code, reason } if reason == "resumed" => {
                self.end_reason = Some("resumed");
                if self.drain.is_some() {
                    // After our GOAWAY the client resumes on a new connection, as SPEC §9.1
                    // asks; this one still finishes its streams (until the drain deadline).
                    tracing::info!(peer = %self.peer, device = self.device_id.as_deref().unwrap_or("-"), "draining session resumed on another connection; its streams finish here");
                    return;
                }
                tracing::info!(peer = %self.peer, device = self.device_id.as_deref().unwrap_or("-"), "session resumed on another connection");
                self.end(code, "the session was resumed elsewhere");
            }
            ControlEvent::End {
                code: ErrorCode::QuotaExceeded,
                ..
            } => {
                self.exhaust_quota();
            }
            ControlEvent::End { code, reason } => {
                tracing::info!(peer = %self.peer, device = self.device_id.as_deref().unwrap_or("-"), reason = %reason, "control plane ended the session");
                if matches!(code, ErrorCode::Revoked | ErrorCode::Expired) {
                    if let Some(device) = &self.device_id {
                        self.shared.authority.forget(device);
                    }
                }
                self.control = None;
                self.end_reason = Some(match code {
                    ErrorCode::Expired => "expired",
                    _ if reason == "killed" => "killed",
                    _ => "revoked",
                });
                self.end(code, &reason);
            }
        }
    }

    /// Counts relayed bytes for usage and enforces the session's quota: once it is crossed,
    /// new opens are refused with `quota_exceeded` and the session ends with ERROR
    /// `quota_exceeded`.
    fn count_usage(&mut self, node: Option<&Arc<str>>, up: u64, down: u64) {
        if let Some(usage) = &self.usage {
            usage.add(node, up, down);
        }
        if self.quota.as_ref().is_some_and(|q| q.add(up + down)) {
            self.exhaust_quota();
        }
    }

    /// The quota is used up (here or on another gateway): new opens are refused from now on and
    /// the session ends with ERROR `quota_exceeded`.
    fn exhaust_quota(&mut self) {
        if self.quota_exhausted {
            return;
        }
        self.quota_exhausted = true;
        tracing::info!(peer = %self.peer, device = self.device_id.as_deref().unwrap_or("-"), "byte quota used up");
        self.end_reason = Some("quota_exceeded");
        self.end(ErrorCode::QuotaExceeded, "byte quota used up");
    }

    fn on_ws_message(&mut self, msg: Option<Result<Message, WsError>>) {
        let now = Instant::now();
        match msg {
            Some(Ok(Message::Binary(data))) => {
                self.touch(now);
                if let Err(e) = self.conn.handle_message(data, now) {
                    let code = e.code();
                    metrics::counter!(m::PROTOCOL_ERRORS_TOTAL, "code" => code.name()).increment(1);
                    tracing::debug!(peer = %self.peer, error = %e, "session violation");
                    self.close_code = Some(close::for_error(code));
                }
            }
            Some(Ok(Message::Text(_))) => {
                metrics::counter!(m::PROTOCOL_ERRORS_TOTAL, "code" => "protocol_error")
                    .increment(1);
                self.end(ErrorCode::ProtocolError, "text messages are not allowed");
            }
            Some(Ok(Message::Close(_))) => {
                self.client_goodbye = true;
                self.peer_gone = true;
            }
            None => self.peer_gone = true,
            Some(Ok(_)) => {} // Ping, Pong: tungstenite answers pings itself.
            Some(Err(WsError::Capacity(e))) => {
                metrics::counter!(m::PROTOCOL_ERRORS_TOTAL, "code" => "frame_size").increment(1);
                tracing::debug!(peer = %self.peer, error = %e, "oversized WebSocket message");
                self.end(ErrorCode::FrameSize, "message larger than max_frame_size");
            }
            Some(Err(WsError::Protocol(e))) => {
                tracing::debug!(peer = %self.peer, error = %e, "WebSocket protocol error");
                self.end(ErrorCode::ProtocolError, "WebSocket protocol error");
            }
            Some(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "WebSocket lost");
                self.peer_gone = true;
            }
        }
    }

    /// Any received frame resets the idle timer (SPEC §8).
    fn touch(&mut self, now: Instant) {
        if self.idle_deadline.is_some() {
            self.idle_deadline = Some(now + self.shared.config.idle_timeout);
        }
    }

    async fn on_proto_event(&mut self, event: Event) {
        match event {
            Event::HelloReceived(hello) => {
                self.handshake_deadline = None;
                self.on_hello(hello).await;
            }
            Event::StreamOpened(open) => self.open_stream(open),
            Event::StreamData { stream_id, data } => {
                let len = data.len();
                match self.streams.get_mut(stream_id) {
                    Some(entry) => {
                        entry.unconsumed += len;
                        if let StreamIo::Tcp { upload, .. } = &entry.io {
                            upload.push(data);
                        }
                    }
                    // No upstream to give it to: return the credit at once.
                    None => {
                        let _ = self.conn.consume(stream_id, len, Instant::now());
                    }
                }
            }
            Event::StreamFinished(id) => self.on_client_fin(id),
            Event::StreamReset { stream_id, code } => {
                tracing::debug!(stream = %stream_id, code = %code, "client reset stream");
                self.streams.remove(stream_id);
            }
            Event::Datagram(datagram) => {
                let node = self
                    .streams
                    .get_mut(datagram.stream_id)
                    .and_then(|e| e.node.clone());
                self.count_usage(node.as_ref(), datagram.data.len() as u64, 0);
                if let Some(entry) = self.streams.get_mut(datagram.stream_id) {
                    if let StreamIo::Udp {
                        datagrams: Some(tx),
                    } = &entry.io
                    {
                        // A full queue drops the datagram, as UDP may (SPEC §7).
                        let _ = tx.try_send(OutboundDatagram {
                            addr: datagram.addr,
                            data: datagram.data,
                        });
                    }
                }
            }
            Event::PeerError(error) => {
                self.client_goodbye = true;
                // The session ended with the peer's code: the close says the same (SPEC §2.6).
                self.close_code = Some(close::for_error(error.code));
                tracing::debug!(peer = %self.peer, code = %error.code, message = %error.message, "client ended the session");
            }
            Event::GoAway(_) => tracing::debug!(peer = %self.peer, "client is draining"),
            // Client-side events, and credit the grant logic picks up anyway.
            Event::StreamWritable(_)
            | Event::HelloAccepted(_)
            | Event::HelloRejected(_)
            | Event::StreamAccepted(_)
            | Event::Pong { .. } => {}
        }
    }

    fn on_client_fin(&mut self, id: StreamId) {
        let Some(entry) = self.streams.get_mut(id) else {
            return;
        };
        match &mut entry.io {
            StreamIo::Tcp { upload, .. } => upload.finish(),
            StreamIo::Udp { datagrams } => {
                // The client sends no more datagrams: end the stream both ways.
                *datagrams = None;
                if entry.acked {
                    let _ = self.conn.finish(id);
                }
            }
        }
    }

    fn open_stream(&mut self, open: StreamOpen) {
        let id = open.stream_id;
        let kind = open.kind;
        if self.quota_exhausted {
            self.refuse(id, kind, ResetCode::QuotaExceeded);
            return;
        }
        if self.streams.pending_opens() >= self.shared.config.max_pending_opens {
            self.refuse(id, kind, ResetCode::StreamLimit);
            return;
        }
        let Some(node) = self.node.clone() else {
            self.refuse(id, kind, ResetCode::Internal);
            return;
        };
        let upstreams = self.shared.upstreams.clone();
        let events = self.events_tx.clone();
        let early_len = open.early_data.len();
        let open_span = open_span::start(id, kind, node.session_id(), &self.hello_trace);
        let (io, task) = match kind {
            StreamKind::Tcp => {
                let upload = Arc::new(UploadQueue::default());
                let read_credit = Arc::new(Semaphore::new(0));
                let relay = TcpRelay {
                    id,
                    target: open.target.clone(),
                    early_data: open.early_data,
                    upload: upload.clone(),
                    read_credit: read_credit.clone(),
                    events,
                    upstreams,
                    node,
                    read_chunk: UPSTREAM_READ_CHUNK,
                    open_span,
                };
                let task = tokio::spawn(relay.run()).abort_handle();
                let io = StreamIo::Tcp {
                    upload,
                    read_credit,
                    granted: 0,
                    download_done: false,
                    stalled: false,
                };
                (io, task)
            }
            StreamKind::Udp => {
                let (tx, rx) = mpsc::channel(DATAGRAM_QUEUE);
                let relay = UdpRelay {
                    id,
                    target: open.target.clone(),
                    datagrams: rx,
                    events,
                    upstreams,
                    node,
                    idle_timeout: self.shared.config.udp_idle_timeout,
                    stats: self.shared.stats.clone(),
                    open_span,
                };
                let task = tokio::spawn(relay.run()).abort_handle();
                (
                    StreamIo::Udp {
                        datagrams: Some(tx),
                    },
                    task,
                )
            }
        };
        let mut entry = StreamEntry::new(open.target, io, task);
        // Early data counts as received and is consumed once written upstream.
        entry.unconsumed = early_len;
        self.streams.insert(id, entry);
    }

    fn refuse(&mut self, id: StreamId, kind: StreamKind, code: ResetCode) {
        let _ = self.conn.reset(id, code);
        self.shared
            .stats
            .streams_refused
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::STREAM_OPENS_TOTAL, "kind" => kind.name(), "result" => code.name())
            .increment(1);
    }

    fn on_stream_event(&mut self, event: StreamEvent) {
        let now = Instant::now();
        match event {
            StreamEvent::Connected { id, node } => {
                let Some(entry) = self.streams.get_mut(id) else {
                    return;
                };
                entry.acked = true;
                entry.load = Some(self.shared.state.loads.track(node.clone()));
                entry.node = Some(node);
                let kind = if entry.is_tcp() { "tcp" } else { "udp" };
                let udp_finished = matches!(entry.io, StreamIo::Udp { datagrams: None });
                if self.conn.accept_stream(id).is_err() {
                    self.streams.remove(id);
                    return;
                }
                if udp_finished {
                    let _ = self.conn.finish(id);
                }
                self.shared
                    .stats
                    .streams_accepted
                    .fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::STREAM_OPENS_TOTAL, "kind" => kind, "result" => "ok")
                    .increment(1);
            }
            StreamEvent::OpenFailed { id, code } => {
                let kind = match self.streams.remove(id) {
                    Some(e) if e.is_tcp() => StreamKind::Tcp,
                    Some(_) => StreamKind::Udp,
                    None => return,
                };
                tracing::debug!(stream = %id, code = %code, "stream refused");
                self.refuse(id, kind, code);
            }
            StreamEvent::Data { id, data } => {
                let len = data.len();
                let Some(entry) = self.streams.get_mut(id) else {
                    return;
                };
                let node = entry.node.clone();
                if let StreamIo::Tcp { granted, .. } = &mut entry.io {
                    *granted = granted.saturating_sub(len);
                }
                match self.conn.write(id, data) {
                    Ok(taken) if taken == len => {
                        self.written_down += len as u64;
                        self.stats
                            .stats()
                            .bytes_down
                            .fetch_add(len as u64, Ordering::Relaxed);
                        metrics::counter!(m::BYTES_TOTAL, "direction" => "down")
                            .increment(len as u64);
                        self.count_usage(node.as_ref(), 0, len as u64);
                    }
                    Ok(taken) => {
                        // Grants never exceed writable_bytes, so this is a bug; fail the
                        // stream rather than corrupt it.
                        tracing::error!(stream = %id, taken, len, "write took less than granted");
                        self.written_down += taken as u64;
                        self.streams.remove(id);
                        let _ = self.conn.reset(id, ResetCode::Internal);
                    }
                    Err(_) => {
                        // The client reset or finished the stream meanwhile.
                        self.streams.remove(id);
                    }
                }
            }
            StreamEvent::Eof { id } => {
                if let Some(entry) = self.streams.get_mut(id) {
                    if let StreamIo::Tcp { download_done, .. } = &mut entry.io {
                        *download_done = true;
                    }
                    let _ = self.conn.finish(id);
                }
            }
            StreamEvent::Consumed { id, bytes } => {
                let mut node = None;
                if let Some(entry) = self.streams.get_mut(id) {
                    entry.unconsumed = entry.unconsumed.saturating_sub(bytes);
                    node = entry.node.clone();
                }
                self.count_usage(node.as_ref(), bytes as u64, 0);
                let _ = self.conn.consume(id, bytes, now);
                self.stats
                    .stats()
                    .bytes_up
                    .fetch_add(bytes as u64, Ordering::Relaxed);
                metrics::counter!(m::BYTES_TOTAL, "direction" => "up").increment(bytes as u64);
            }
            StreamEvent::Datagram { id, from, data } => {
                let len = data.len() as u64;
                if let Some(entry) = self.streams.get_mut(id) {
                    let addr = from.filter(|f| *f != entry.target);
                    let node = entry.node.clone();
                    // Too large or queue full: dropped, as UDP may.
                    if self.conn.send_datagram(id, addr, data).is_ok() {
                        self.count_usage(node.as_ref(), 0, len);
                    }
                }
            }
            StreamEvent::Failed { id, code } => {
                if self.streams.remove(id).is_some() {
                    let _ = self.conn.reset(id, code);
                }
            }
            StreamEvent::Done { id } => {
                self.streams.remove(id);
            }
        }
    }

    /// Hands each TCP stream task the read credit it may use: what `Connection::write` would
    /// accept now, minus what it was already granted, within the session's share.
    fn grant_read_credit(&mut self) {
        if !self.conn.is_established() {
            return;
        }
        let queued = self
            .written_down
            .saturating_sub(self.conn.stats().data_bytes_sent) as usize;
        let (_, granted_total) = self.streams.held_bytes();
        // Session-wide bound: never hold more for the client than its session window, even
        // when every stream has stream credit left (the proto API shows no session credit).
        let session_cap = self.conn.peer_limits().session_window as usize;
        let mut session_room = session_cap.saturating_sub(queued + granted_total);
        let mut new_stalls = 0u64;
        for (id, entry) in self.streams.iter_mut() {
            if !entry.acked {
                continue;
            }
            let StreamIo::Tcp {
                read_credit,
                granted,
                download_done,
                stalled,
                ..
            } = &mut entry.io
            else {
                continue;
            };
            if *download_done {
                continue;
            }
            let writable = self.conn.writable_bytes(*id);
            let room = writable.saturating_sub(*granted).min(session_room);
            if room > 0 && (room >= MIN_GRANT || *granted == 0) {
                read_credit.add_permits(room);
                *granted += room;
                session_room -= room;
            }
            let now_stalled = *granted == 0;
            if now_stalled && !*stalled {
                new_stalls += 1;
            }
            *stalled = now_stalled;
        }
        let proto_stalls = self.conn.stats().flow_control_stalls;
        new_stalls += proto_stalls.saturating_sub(self.proto_stalls);
        self.proto_stalls = proto_stalls;
        if new_stalls > 0 {
            metrics::counter!(m::FLOW_CONTROL_STALLS_TOTAL).increment(new_stalls);
        }
    }

    fn update_stats(&mut self) {
        let queued = self
            .written_down
            .saturating_sub(self.conn.stats().data_bytes_sent) as usize;
        let (up, granted) = self.streams.held_bytes();
        let held = queued + up + granted;
        let before = self.stats.stats().buffered_bytes.load(Ordering::Relaxed);
        self.stats.stats().set_buffered(held);
        if held != before {
            metrics::gauge!(m::BUFFERED_BYTES).increment(held as f64 - before as f64);
        }
        let (tcp, udp) = self.streams.count_by_kind();
        let (old_tcp, old_udp) = self.reported_streams;
        if (tcp, udp) != (old_tcp, old_udp) {
            metrics::gauge!(m::STREAMS_ACTIVE, "kind" => "tcp")
                .increment(tcp as f64 - old_tcp as f64);
            metrics::gauge!(m::STREAMS_ACTIVE, "kind" => "udp")
                .increment(udp as f64 - old_udp as f64);
            let active = &self.shared.stats.streams_active;
            active.fetch_add(tcp + udp, Ordering::Relaxed);
            active.fetch_sub(old_tcp + old_udp, Ordering::Relaxed);
            self.reported_streams = (tcp, udp);
        }
    }

    /// Flushes the last frames, sends the WebSocket Close and waits briefly for the peer's.
    async fn finish<Tx, Rx>(mut self, mut sink: Tx, mut source: Rx)
    where
        Tx: futures_util::Sink<Message, Error = WsError> + Unpin,
        Rx: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
    {
        self.streams = StreamTable::default();
        // Whatever is still queued is dropped with the session.
        self.written_down = self.conn.stats().data_bytes_sent;
        self.update_stats();
        // `is_established` is false once the connection is closed: ask whether HELLO_ACK went out.
        let mut code = self.close_code.unwrap_or(if self.established_at.is_some() {
            close::NORMAL
        } else {
            // A HELLO_ERROR the connection queued itself (unsupported version).
            close::POLICY
        });
        let mut last_frames = Vec::new();
        while let Some(frame) = self.next_frame() {
            last_frames.push(frame);
        }
        if self.quiet.close && !self.peer_gone {
            if self.quiet.error_dropped {
                // No ERROR went out: the close code tells nothing either.
                code = close::NORMAL;
            }
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                for frame in last_frames.drain(..) {
                    if sink.feed(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                let _ = sink.flush().await;
            })
            .await;
            // Not reading meanwhile: TCP backpressure bounds what the peer can still send.
            let max = self.shared.config.unauthenticated_close_delay;
            tokio::time::sleep(silence::close_delay(max)).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            for frame in last_frames {
                if sink.feed(Message::Binary(frame)).await.is_err() {
                    return;
                }
            }
            if !self.peer_gone {
                let close = CloseFrame {
                    code: code.into(),
                    reason: "".into(),
                };
                let _ = sink.send(Message::Close(Some(close))).await;
                // Wait for the peer's Close so the TCP connection ends cleanly.
                while let Some(Ok(msg)) = source.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        })
        .await;
        if let Some(at) = self.established_at {
            metrics::gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
            tracing::info!(
                peer = %self.peer,
                device = self.device_id.as_deref().unwrap_or("-"),
                duration_ms = at.elapsed().as_millis() as u64,
                close_code = code,
                "session ended"
            );
        }
        metrics::counter!(m::SESSIONS_TOTAL, "close_code" => code.to_string()).increment(1);
        self.report_end().await;
    }

    /// Tells the control plane the session ended and hands its last byte counts to the
    /// usage reporter.
    async fn report_end(&mut self) {
        self.control = None;
        if let (Some(lease), Some(listing)) = (self.lease.take(), self.listing.take()) {
            let state = &self.shared.state;
            state.directory.remove(&lease.session_id, &listing);
            // A lost connection, a drain or a timeout keeps the resume token, so the client
            // can come back (to any gateway) as the same session; any other end is final.
            let end = match self.end_reason {
                Some("resumed") => SessionEnd::Superseded,
                None | Some("shutdown" | "drained" | "max_lifetime" | "idle_timeout")
                    if !self.client_goodbye =>
                {
                    SessionEnd::Resumable
                }
                _ => SessionEnd::Final,
            };
            state.release(&lease, &self.resume_hash, end).await;
        }
        if let (Some(reporter), Some(usage)) = (&self.shared.usage, self.usage.take()) {
            reporter.session_ended(&usage);
        }
        let (Some(cp), Some(id)) = (self.shared.control_plane.clone(), self.cp_session) else {
            return;
        };
        let reason = self.end_reason.unwrap_or("client_closed");
        let reason = httvps_contract::EndReason::parse(reason)
            .unwrap_or(httvps_contract::EndReason::UnknownError);
        if let Err(e) = cp.end_session(id, &reason).await {
            metrics::counter!(m::CONTROL_PLANE_ERRORS_TOTAL, "call" => "session_end").increment(1);
            tracing::warn!(session = %id, error = %e, "could not report the session end (the control plane reaps it as stale)");
        }
    }
}

/// The session's control task and its reports; dropping it stops the task.
#[derive(Debug)]
struct ControlHandle {
    events: mpsc::Receiver<ControlEvent>,
    task: tokio::task::AbortHandle,
    /// Asks the task for a heartbeat now.
    check_now: Arc<tokio::sync::Notify>,
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The next command from the gateway's directory, or never before HELLO_ACK.
async fn recv_listing(listing: &mut Option<Listing>) -> Option<ControlEvent> {
    match listing {
        Some(listing) => listing.commands.recv().await,
        None => std::future::pending().await,
    }
}

/// The next report of the control task, or never when there is none.
async fn recv_control(control: &mut Option<ControlHandle>) -> Option<ControlEvent> {
    match control {
        Some(handle) => handle.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Moves the waiting frame into the sink once it is ready, then, while the sink stays ready,
/// the next frames from `next` (up to [`MAX_FRAMES_PER_WAKE`]), so one flush writes them all;
/// or flushes when nothing waits. A frame is pulled from `next` only once the sink took the
/// previous one, and readiness and the send happen in one poll, so cancelling this future
/// never loses a frame: one not yet taken stays in `outgoing`.
async fn drive_sink<S>(
    sink: &mut S,
    outgoing: &mut Option<Message>,
    needs_flush: &mut bool,
    mut next: impl FnMut() -> Option<Message>,
) -> Result<(), WsError>
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    futures_util::future::poll_fn(|cx| {
        if outgoing.is_none() {
            std::task::ready!(sink.poll_flush_unpin(cx))?;
            *needs_flush = false;
            return std::task::Poll::Ready(Ok(()));
        }
        let mut sent = 0;
        while let Some(msg) = outgoing.take() {
            match sink.poll_ready_unpin(cx) {
                std::task::Poll::Ready(ready) => ready?,
                std::task::Poll::Pending => {
                    *outgoing = Some(msg);
                    if sent == 0 {
                        return std::task::Poll::Pending;
                    }
                    break;
                }
            }
            sink.start_send_unpin(msg)?;
            *needs_flush = true;
            sent += 1;
            if sent < MAX_FRAMES_PER_WAKE {
                *outgoing = next();
            }
        }
        std::task::Poll::Ready(Ok(()))
    })
    .await
}

/// The next frame `conn` has to send, as [`silence`] allows it (`established`: HELLO_ACK went
/// out); frames it withholds are skipped.
fn next_frame(
    conn: &mut Connection,
    quiet: &mut silence::Quiet,
    established: bool,
) -> Option<Bytes> {
    loop {
        let frame = conn.poll_transmit(Instant::now())?;
        match silence::outgoing(frame, established) {
            silence::Outgoing::Send(frame) => return Some(frame),
            silence::Outgoing::SendQuietly(frame) => {
                quiet.close = true;
                return Some(frame);
            }
            silence::Outgoing::Drop => {
                quiet.close = true;
                quiet.error_dropped = true;
            }
        }
    }
}

/// A random extra lifetime in `0..=max`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random::<u64>() % (max.as_millis() as u64 + 1))
}
