//! The SDK's side of a session loop: opens for the handles, the handles' queued work (data,
//! credit, FINs, cancels) moved into the connection, and what arrives delivered to them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use httvps_driver::{App, Core, Ended, Outcome};
use httvps_proto::{ErrorCode, Event, ResetCode, StreamId, StreamKind, TargetAddr};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Command, Opened, SessionInfo, SessionShared};
use crate::error::Error;
use crate::stream::{wake, StreamFailure, StreamSlot, STREAM_OUTBOX};
use crate::udp::UdpSlot;

/// A stream waiting for STREAM_OPEN_ACK.
enum Slot {
    Tcp(Arc<StreamSlot>),
    Udp(Arc<UdpSlot>),
}

/// What wakes the session besides the WebSocket and its timers.
pub(crate) enum Input {
    /// A command from a handle; `None` once no handle is left.
    Command(Option<Command>),
    /// A stream handle queued work.
    HandleWork,
}

/// The client's application of the session loop.
pub(crate) struct ClientSession {
    shared: Arc<SessionShared>,
    info: watch::Sender<SessionInfo>,
    commands: mpsc::Receiver<Command>,
    /// No handle is left (the client dropped it, e.g. at GOAWAY): the session runs on for its
    /// streams and ends once they have.
    detached: bool,
    tcp: HashMap<StreamId, Arc<StreamSlot>>,
    udp: HashMap<StreamId, Arc<UdpSlot>>,
    /// Opens waiting for STREAM_OPEN_ACK.
    opening: HashMap<StreamId, (oneshot::Sender<Result<Opened, Error>>, Slot)>,
    udp_queue: usize,
    /// How long the streams of a draining session (GOAWAY received) may run at most.
    drain_timeout: Duration,
}

impl ClientSession {
    pub(crate) fn new(
        shared: Arc<SessionShared>,
        info: watch::Sender<SessionInfo>,
        commands: mpsc::Receiver<Command>,
        udp_queue: usize,
        drain_timeout: Duration,
    ) -> Self {
        ClientSession {
            shared,
            info,
            commands,
            detached: false,
            tcp: HashMap::new(),
            udp: HashMap::new(),
            opening: HashMap::new(),
            udp_queue,
            drain_timeout,
        }
    }

    fn open(
        &mut self,
        core: &mut Core,
        kind: StreamKind,
        target: TargetAddr,
        reply: oneshot::Sender<Result<Opened, Error>>,
    ) {
        if self.info.borrow().draining {
            let _ = reply.send(Err(Error::StreamReset(ResetCode::GoingAway)));
            return;
        }
        match core.conn_mut().open_stream(kind, target, Bytes::new()) {
            Ok((id, _)) => {
                let slot = match kind {
                    StreamKind::Tcp => Slot::Tcp(Arc::new(StreamSlot::default())),
                    StreamKind::Udp => {
                        let slot = Arc::new(UdpSlot::default());
                        slot.lock().max_queue = self.udp_queue;
                        Slot::Udp(slot)
                    }
                };
                self.opening.insert(id, (reply, slot));
            }
            Err(httvps_proto::ApiError::StreamLimit(_)) => {
                let _ = reply.send(Err(Error::StreamReset(ResetCode::StreamLimit)));
            }
            Err(httvps_proto::ApiError::GoingAway) => {
                let _ = reply.send(Err(Error::StreamReset(ResetCode::GoingAway)));
            }
            Err(e) => {
                let _ = reply.send(Err(Error::SessionEnded {
                    code: ErrorCode::Internal,
                    message: e.to_string(),
                }));
            }
        }
    }

    /// Moves what the stream handles queued (data, credit, FINs, cancels) into the connection.
    fn apply_handle_work(&mut self, core: &mut Core) {
        let mut dirty = self.shared.take_dirty();
        dirty.sort_unstable();
        dirty.dedup();
        let now = core.now();
        for id in dirty {
            if let Some(slot) = self.tcp.get(&id).cloned() {
                self.apply_tcp(core, id, &slot, now);
            } else if let Some(slot) = self.udp.get(&id).cloned() {
                self.apply_udp(core, id, &slot);
            }
        }
    }

    fn apply_tcp(&mut self, core: &mut Core, id: StreamId, slot: &StreamSlot, now: Instant) {
        let conn = core.conn_mut();
        let mut inner = slot.lock();
        if inner.cancel_requested {
            drop(inner);
            let _ = conn.reset(id, ResetCode::Cancel);
            self.tcp.remove(&id);
            return;
        }
        if inner.consumed > 0 {
            let n = std::mem::take(&mut inner.consumed);
            let _ = conn.consume(id, n, now);
        }
        while let Some(front) = inner.outbox.front().cloned() {
            let taken = conn.write(id, front.clone()).unwrap_or(0);
            inner.outbox_len -= taken;
            if taken < front.len() {
                if let Some(f) = inner.outbox.front_mut() {
                    let _ = f.split_to(taken);
                }
                break;
            }
            inner.outbox.pop_front();
        }
        if inner.fin_requested && inner.outbox.is_empty() && !inner.fin_sent {
            inner.fin_sent = true;
            let _ = conn.finish(id);
        }
        if inner.outbox_len < STREAM_OUTBOX {
            wake(&mut inner.write_waker);
        }
        // Gone from the connection: both sides finished and everything was read, or the
        // gateway reset it. The slot goes only once the reader has been told which: the
        // StreamFinished or StreamReset event may still be queued, and without the slot it
        // would be lost, leaving the reader waiting for ever.
        if conn.stream_state(id).is_none() && (inner.eof || inner.failure.is_some()) {
            drop(inner);
            self.tcp.remove(&id);
        }
    }

    fn apply_udp(&mut self, core: &mut Core, id: StreamId, slot: &UdpSlot) {
        let mut inner = slot.lock();
        if inner.closed_by_app {
            drop(inner);
            let _ = core.conn_mut().reset(id, ResetCode::Cancel);
            self.udp.remove(&id);
            return;
        }
        while let Some((addr, data)) = inner.outbox.pop_front() {
            if let Err(e) = core.conn_mut().send_datagram(id, addr, data) {
                tracing::debug!(error = %e, "datagram not sent");
            }
        }
    }

    fn accepted(&mut self, core: &mut Core, id: StreamId) {
        let Some((reply, slot)) = self.opening.remove(&id) else {
            return;
        };
        let opened = match slot {
            Slot::Tcp(s) => {
                self.tcp.insert(id, s.clone());
                Opened::Tcp(id, s)
            }
            Slot::Udp(s) => {
                self.udp.insert(id, s.clone());
                Opened::Udp(id, s)
            }
        };
        if reply.send(Ok(opened)).is_err() {
            // The opener gave up (timeout): abandon the stream.
            let _ = core.conn_mut().reset(id, ResetCode::Cancel);
            self.tcp.remove(&id);
            self.udp.remove(&id);
        }
    }

    fn on_reset(&mut self, stream_id: StreamId, code: ResetCode) {
        if let Some((reply, _)) = self.opening.remove(&stream_id) {
            let _ = reply.send(Err(Error::StreamReset(code)));
        }
        if let Some(slot) = self.tcp.remove(&stream_id) {
            slot.fail(StreamFailure::Reset(code));
        }
        if let Some(slot) = self.udp.remove(&stream_id) {
            slot.fail(StreamFailure::Reset(code));
        }
    }

    fn fail_all(&mut self, why: &str) {
        for (_, (reply, _)) in self.opening.drain() {
            let _ = reply.send(Err(Error::SessionEnded {
                code: ErrorCode::Internal,
                message: why.to_owned(),
            }));
        }
        for (_, slot) in self.tcp.drain() {
            slot.fail(StreamFailure::SessionEnded(why.to_owned()));
        }
        for (_, slot) in self.udp.drain() {
            slot.fail(StreamFailure::SessionEnded(why.to_owned()));
        }
    }
}

impl App for ClientSession {
    type Input = Input;

    async fn next_input(&mut self) -> Input {
        tokio::select! {
            cmd = self.commands.recv(), if !self.detached => Input::Command(cmd),
            _ = self.shared.notified() => Input::HandleWork,
        }
    }

    fn on_input(&mut self, core: &mut Core, input: Input) {
        match input {
            Input::Command(Some(Command::Open {
                kind,
                target,
                reply,
            })) => self.open(core, kind, target, reply),
            Input::Command(Some(Command::Close)) => core.end(ErrorCode::NoError, "client closed"),
            Input::Command(None) => self.detached = true,
            // `after_io` picks it up.
            Input::HandleWork => {}
        }
    }

    async fn on_event(&mut self, core: &mut Core, event: Event) {
        match event {
            Event::StreamAccepted(id) => self.accepted(core, id),
            Event::StreamData { stream_id, data } => {
                if let Some(slot) = self.tcp.get(&stream_id) {
                    let mut inner = slot.lock();
                    inner.recv.push_back(data);
                    wake(&mut inner.read_waker);
                } else {
                    let now = core.now();
                    let _ = core.conn_mut().consume(stream_id, data.len(), now);
                }
            }
            Event::StreamFinished(id) => {
                if let Some(slot) = self.tcp.get(&id) {
                    let mut inner = slot.lock();
                    inner.eof = true;
                    wake(&mut inner.read_waker);
                }
                if core.conn().stream_state(id).is_none() {
                    // Our FIN went out and everything was read already: nothing is left.
                    self.tcp.remove(&id);
                }
            }
            Event::StreamReset { stream_id, code } => self.on_reset(stream_id, code),
            Event::StreamWritable(id) => {
                // Credit came back: move what waits in the handle into the connection.
                if let Some(slot) = self.tcp.get(&id).cloned() {
                    let now = core.now();
                    self.apply_tcp(core, id, &slot, now);
                }
            }
            Event::Datagram(d) => {
                if let Some(slot) = self.udp.get(&d.stream_id) {
                    slot.deliver(d.addr, d.data);
                }
            }
            Event::Pong { rtt } => self.info.send_modify(|i| i.rtt = Some(rtt)),
            Event::GoAway(g) => {
                tracing::info!(code = %g.code, reason = %g.reason, "the gateway is draining this session");
                self.info.send_modify(|i| i.draining = true);
                // The streams still running at the deadline are aborted.
                core.end_after(ErrorCode::NoError, self.drain_timeout);
            }
            Event::PeerError(e) => self.info.send_modify(|i| {
                i.end_code = Some(e.code);
                i.end_message = Some(e.message.clone()).filter(|m| !m.is_empty());
            }),
            Event::HelloReceived(_)
            | Event::HelloAccepted(_)
            | Event::HelloRejected(_)
            | Event::StreamOpened(_) => {}
        }
    }

    fn after_io(&mut self, core: &mut Core) {
        self.apply_handle_work(core);
        let no_streams = self.tcp.is_empty() && self.udp.is_empty() && self.opening.is_empty();
        if self.shared.close_requested() || (self.detached && no_streams) {
            core.end(ErrorCode::NoError, "client closed");
        }
    }

    fn on_protocol_error(&mut self, code: ErrorCode, detail: &dyn std::fmt::Display) {
        tracing::warn!(code = %code, error = %detail, "protocol violation by the gateway");
    }

    fn on_closing(&mut self, _core: &mut Core, outcome: &Outcome) {
        let why = match (&outcome.ended, outcome.peer_error) {
            (_, Some(code)) => format!("the gateway ended the session: {code}"),
            (Ended::CloseReceived | Ended::Eof, None) => {
                "the gateway closed the connection".to_owned()
            }
            (Ended::Lost(e), None) => format!("connection error: {e}"),
            (Ended::PongMissed, None) => "the gateway stopped answering PINGs".to_owned(),
            (Ended::Closed | Ended::Abandoned, None) => "the session was closed".to_owned(),
        };
        self.fail_all(&why);
        self.info.send_modify(|i| {
            i.ended = Some(why.clone());
            i.end_code = outcome.peer_error.or(i.end_code);
        });
    }
}
