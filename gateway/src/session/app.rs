//! The gateway's side of a session loop: one [`GatewaySession`] per WebSocket, the
//! application the `httvps-driver` loop calls with protocol events, stream-task reports,
//! commands from the control plane and the directory, and its own deadlines.

use std::net::SocketAddr;
use std::sync::Arc;

use httvps_driver::{App, Core, Outcome};
use httvps_proto::{ErrorCode, Event};
use httvps_shared_state::SessionLease;
use tokio::sync::mpsc;

use super::clock::{jitter, SessionClock};
use super::context::SessionContext;
use super::credit::ReadCredit;
use super::end::Ending;
use super::gauges::Gauges;
use super::streams::StreamTable;
use crate::metrics as m;
use crate::shared::command::ControlEvent;
use crate::shared::directory::Listing;
use crate::shared::quota::QuotaAccount;
use crate::stats::SessionStatsGuard;
use crate::upstream::{SessionNode, StreamEvent};
use crate::usage::SessionUsage;

/// Reports from stream tasks waiting for the session at most; a full channel makes stream
/// tasks wait, never the session.
const STREAM_EVENT_QUEUE: usize = 256;
/// Stream reports handled per wakeup of the session before its other inputs get a turn.
const MAX_EVENTS_PER_WAKE: usize = 64;

/// What the session holds once admitted (HELLO_ACK): its places in the shared state, at the
/// control plane and in the usage reports.
#[derive(Debug, Default)]
pub(super) struct Admission {
    /// Its slot in the shared session limits.
    pub lease: Option<SessionLease>,
    /// Its place in the gateway's directory: shared events end it through this.
    pub listing: Option<Listing>,
    /// Hash of the resume token this connection issued.
    pub resume_hash: String,
    /// The session's id at the control plane (when there is one).
    pub cp_session: Option<uuid::Uuid>,
    /// The heartbeat task and its reports (when there is a control plane).
    pub control: Option<ControlHandle>,
    /// Byte counts for usage reports.
    pub usage: Option<Arc<SessionUsage>>,
    /// The byte quota it draws on, if limited.
    pub quota: Option<Arc<QuotaAccount>>,
}

/// The session's control task and its reports; dropping it stops the task.
#[derive(Debug)]
pub(super) struct ControlHandle {
    pub events: mpsc::Receiver<ControlEvent>,
    pub task: tokio::task::AbortHandle,
    /// Asks the task for a heartbeat now.
    pub check_now: Arc<tokio::sync::Notify>,
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One session of this gateway.
#[derive(Debug)]
pub(super) struct GatewaySession {
    pub ctx: Arc<SessionContext>,
    pub peer: SocketAddr,
    pub streams: StreamTable,
    /// The stream tasks' reports, from the first stream on: tokio allocates a channel's first
    /// block of 32 slots (2.3 KiB here) when the channel is made, which an idle session need
    /// not pay.
    pub events: Option<StreamEvents>,
    /// The session's node slot, from HELLO_ACK on.
    pub node: Option<Arc<SessionNode>>,
    pub device_id: Option<String>,
    /// The HELLO's span: each stream open is a trace of its own that links to it.
    pub hello_trace: httvps_telemetry::TraceLink,
    /// Its place under the gateway's `--max-sessions`, from HELLO on.
    pub gateway_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    pub admission: Admission,
    pub clock: SessionClock,
    pub ending: Ending,
    pub credit: ReadCredit,
    pub gauges: Gauges,
}

/// The channel of the stream tasks' reports.
#[derive(Debug)]
pub(super) struct StreamEvents {
    pub tx: mpsc::Sender<StreamEvent>,
    rx: mpsc::Receiver<StreamEvent>,
}

/// What wakes the session besides its WebSocket and the loop's timers.
#[derive(Debug)]
pub(super) enum Input {
    /// A stream task's report.
    Stream(StreamEvent),
    /// The control plane or the directory.
    Command(ControlEvent),
    /// One of the session's own deadlines.
    Clock,
    /// The gateway drains.
    Shutdown,
}

impl GatewaySession {
    pub fn new(ctx: Arc<SessionContext>, peer: SocketAddr, stats: SessionStatsGuard) -> Self {
        let settings = &ctx.settings;
        let clock = SessionClock::new(settings.max_lifetime + jitter(settings.max_lifetime_jitter));
        GatewaySession {
            peer,
            streams: StreamTable::default(),
            events: None,
            node: None,
            device_id: None,
            hello_trace: httvps_telemetry::TraceLink::default(),
            gateway_slot: None,
            admission: Admission::default(),
            clock,
            ending: Ending::default(),
            credit: ReadCredit::default(),
            gauges: Gauges::new(stats),
            ctx,
        }
    }

    /// A sender for a new stream task's reports (the channel is made on first use).
    pub fn events_tx(&mut self) -> mpsc::Sender<StreamEvent> {
        let events = self.events.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(STREAM_EVENT_QUEUE);
            StreamEvents { tx, rx }
        });
        events.tx.clone()
    }

    fn update_gauges(&mut self, core: &Core) {
        let queued = self.credit.queued(core.conn());
        self.gauges.update(queued, &self.streams, &self.ctx.stats);
    }
}

impl App for GatewaySession {
    type Input = Input;

    async fn next_input(&mut self) -> Input {
        let deadline = self.clock.next();
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
        tokio::select! {
            Some(event) = recv_events(&mut self.events) => Input::Stream(event),
            Some(event) = recv_control(&mut self.admission.control) => Input::Command(event),
            Some(event) = recv_listing(&mut self.admission.listing) => Input::Command(event),
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => Input::Clock,
            _ = self.ctx.drain.cancelled(), if !self.ending.shutdown_seen => Input::Shutdown,
        }
    }

    fn on_input(&mut self, core: &mut Core, input: Input) {
        match input {
            Input::Stream(event) => {
                self.on_stream_event(core, event);
                // Whatever else is ready too: one round of bookkeeping (`after_io`) for all.
                for _ in 1..MAX_EVENTS_PER_WAKE {
                    let Some(events) = self.events.as_mut() else {
                        break;
                    };
                    match events.rx.try_recv() {
                        Ok(event) => self.on_stream_event(core, event),
                        Err(_) => break,
                    }
                }
            }
            Input::Command(event) => self.on_control_event(core, event),
            Input::Clock => self.on_clock(core),
            Input::Shutdown => self.on_shutdown(core),
        }
    }

    async fn on_event(&mut self, core: &mut Core, event: Event) {
        match event {
            // Boxed: the handshake's state (device check, control-plane calls) exists only
            // while it runs, not in every session's future.
            Event::HelloReceived(hello) => Box::pin(self.on_hello(core, hello)).await,
            Event::StreamOpened(open) => self.open_stream(core, open),
            Event::StreamData { stream_id, data } => self.on_client_data(core, stream_id, data),
            Event::StreamFinished(id) => self.on_client_fin(core, id),
            Event::StreamReset { stream_id, code } => {
                tracing::debug!(stream = %stream_id, code = %code, "client reset stream");
                self.streams.remove(stream_id);
            }
            Event::Datagram(datagram) => self.on_client_datagram(core, datagram),
            Event::PeerError(error) => {
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

    fn after_io(&mut self, core: &mut Core) {
        self.credit.grant(core.conn(), &mut self.streams);
        self.update_gauges(core);
    }

    fn is_drained(&self) -> bool {
        self.streams.is_empty()
    }

    fn on_protocol_error(&mut self, code: ErrorCode, detail: &dyn std::fmt::Display) {
        metrics::counter!(m::PROTOCOL_ERRORS_TOTAL, "code" => code.name()).increment(1);
        tracing::debug!(peer = %self.peer, error = %detail, "session violation");
    }

    fn on_closing(&mut self, core: &mut Core, _outcome: &Outcome) {
        self.streams = StreamTable::default();
        // Whatever is still queued is dropped with the session.
        self.credit.written_down = core.conn().stats().data_bytes_sent;
        self.update_gauges(core);
    }
}

/// The next report of a stream task, or never before the first stream.
async fn recv_events(events: &mut Option<StreamEvents>) -> Option<StreamEvent> {
    match events {
        Some(events) => events.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next command from the gateway's directory, or never before HELLO_ACK.
async fn recv_listing(listing: &mut Option<Listing>) -> Option<ControlEvent> {
    match listing {
        Some(listing) => Some(listing.commands.recv().await),
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
