//! The session loop: one task that waits on, at once, the WebSocket sink taking the next frame,
//! the next WebSocket message, the application's inputs and the timers.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream, StreamExt};
use httvps_proto::ErrorCode;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::app::App;
use crate::closing::close_handshake;
use crate::config::{jittered, DriverConfig};
use crate::core::Core;
use crate::sink::drive_sink;
use crate::ws_input;

/// Messages other than STREAM_DATA read while the sink is blocked, before reading pauses.
/// Each may queue a control frame (PONG, STREAM_RESET, ...), so this bounds that queue for a
/// peer that floods without reading; STREAM_DATA is bounded by its credit instead.
const MAX_CONTROL_READS_WHILE_BLOCKED: usize = 256;
/// The wait when no timer is set.
const FAR: Duration = Duration::from_secs(3600);

/// Why the loop stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The connection is closed (an ERROR or HELLO_ERROR went out or came in) and its last
    /// frames are written.
    Closed,
    /// The peer sent a WebSocket Close.
    CloseReceived,
    /// The WebSocket ended without a Close.
    Eof,
    /// Reading or writing the WebSocket failed.
    Lost(String),
    /// Our PING went unanswered past the heartbeat's deadline.
    PongMissed,
    /// The application gave up on the session ([`Core::abandon`]).
    Abandoned,
}

impl Ended {
    /// Whether the peer can no longer take a Close from us.
    pub fn peer_gone(&self) -> bool {
        matches!(self, Ended::CloseReceived | Ended::Eof | Ended::Lost(_))
    }
}

/// How a session ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Why the loop stopped.
    pub ended: Ended,
    /// The ERROR code this side ended the session with.
    pub local_error: Option<ErrorCode>,
    /// The ERROR code the peer ended it with.
    pub peer_error: Option<ErrorCode>,
    /// The WebSocket close code sent (or that would have been, had the peer still listened).
    pub close_code: Option<u16>,
    /// When the handshake completed, if it did.
    pub established_at: Option<Instant>,
}

/// Runs one session until it ends, then the close handshake. `sink` and `source` are the two
/// halves of the WebSocket (or a [`crate::QueuedSink`] in front of the writing half).
pub async fn run<A, Tx, Rx>(
    mut core: Core,
    app: &mut A,
    mut sink: Tx,
    mut source: Rx,
    config: &DriverConfig,
) -> Outcome
where
    A: App,
    Tx: Sink<Message, Error = WsError> + Unpin,
    Rx: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut outgoing: Option<Message> = None;
    let mut needs_flush = false;
    let mut ws_ping_due = false;
    let mut control_reads_while_blocked = 0usize;
    let mut next_ws_ping = config
        .ws_ping_interval
        .map(|every| Instant::now() + jittered(every));
    let mut ended: Option<Ended> = None;
    loop {
        process(&mut core, app).await;
        if core.abandoned {
            ended = Some(Ended::Abandoned);
        } else if core.pong_missed {
            ended.get_or_insert(Ended::PongMissed);
        }
        if outgoing.is_none() && ended.is_none() {
            if ws_ping_due {
                outgoing = Some(Message::Ping(Bytes::new()));
                ws_ping_due = false;
            } else if let Some(frame) = core.next_frame() {
                outgoing = Some(Message::Binary(frame));
            } else if core.drain_complete(app.is_drained()) {
                // Only once everything queued (the GOAWAY included) went out: `end` drops
                // whatever is still queued.
                core.end(ErrorCode::NoError, "drained");
                continue;
            }
        }
        if ended.is_none() && outgoing.is_none() && core.conn().is_closed() {
            ended = Some(Ended::Closed);
        }
        if ended.is_some() {
            break;
        }
        let deadline = core.next_deadline().unwrap_or_else(|| Instant::now() + FAR);
        let ping_at = next_ws_ping.unwrap_or_else(|| Instant::now() + FAR);
        let sink_busy = outgoing.is_some() || needs_flush;
        let can_read = !core.conn().is_closed()
            && (outgoing.is_none()
                || control_reads_while_blocked < MAX_CONTROL_READS_WHILE_BLOCKED);
        tokio::select! {
            sent = drive_sink(
                &mut sink,
                &mut outgoing,
                &mut needs_flush,
                || core.next_frame().map(Message::Binary),
            ), if sink_busy => {
                if let Err(e) = sent {
                    ended = Some(Ended::Lost(e.to_string()));
                }
                control_reads_while_blocked = 0;
            }
            msg = source.next(), if can_read => {
                // tungstenite queues Pong and Close replies; the next flush sends them.
                needs_flush = true;
                if outgoing.is_some() && !ws_input::is_stream_data(&msg) {
                    control_reads_while_blocked += 1;
                }
                if let Some(end) = ws_input::on_message(&mut core, app, msg) {
                    ended = Some(end);
                }
            }
            input = app.next_input() => app.on_input(&mut core, input),
            _ = tokio::time::sleep_until(deadline) => core.on_timer(),
            _ = tokio::time::sleep_until(ping_at), if next_ws_ping.is_some() => {
                ws_ping_due = true;
                next_ws_ping = config.ws_ping_interval.map(|every| Instant::now() + jittered(every));
            }
        }
    }
    let ended = ended.unwrap_or(Ended::Closed);
    let outcome = Outcome {
        local_error: core.local_error(),
        peer_error: core.peer_error(),
        close_code: core.close_code(),
        established_at: core.established_at(),
        ended,
    };
    app.on_closing(&mut core, &outcome);
    // Boxed: its timers and last frames exist only at the end, not in every idle session's
    // future.
    Box::pin(close_handshake(&mut core, sink, source, outcome, config)).await
}

/// Hands what the last input produced to the application: protocol events, then its
/// bookkeeping.
async fn process<A: App>(core: &mut Core, app: &mut A) {
    while let Some(event) = core.conn_mut().poll_event() {
        core.observe(&event);
        app.on_event(core, event).await;
        core.note_phase();
    }
    core.note_phase();
    if !core.conn().is_closed() {
        app.after_io(core);
        // Work the application moved into the connection may have produced events.
        while let Some(event) = core.conn_mut().poll_event() {
            core.observe(&event);
            app.on_event(core, event).await;
        }
    }
}
