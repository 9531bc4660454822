//! One session: the handshake, then a task that owns the `httvps_proto::Connection` and moves
//! frames between it, the WebSocket and the stream handles.
//!
//! The WebSocket's writing half runs in its own task behind a bounded channel, so the driver
//! keeps reading (and granting credit) while a slow socket drains: a session never deadlocks
//! with both ends blocked on sending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use httvps_proto::frame::HelloAck;
use httvps_proto::{
    ClientHello, Connection, ErrorCode, Event, ResetCode, Role, StreamId, StreamKind, TargetAddr,
};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{ClientConfig, GatewayEndpoint};
use crate::error::Error;
use crate::stream::{wake, StreamFailure, StreamSlot, TcpStream, STREAM_OUTBOX};
use crate::transport::{self, Ws};
use crate::udp::{UdpFlow, UdpSlot};

/// Frames queued toward the WebSocket writer at most.
const WRITER_QUEUE: usize = 64;

/// What stream handles share with their session's driver.
#[derive(Debug, Default)]
pub(crate) struct SessionShared {
    notify: Notify,
    dirty: Mutex<Vec<StreamId>>,
    /// The client asked to end the session (also one it no longer holds a handle to).
    close_requested: AtomicBool,
}

impl SessionShared {
    /// A stream has work for the driver (data to send, credit to return, a FIN, a cancel).
    pub(crate) fn mark_dirty(&self, id: StreamId) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
        self.notify.notify_one();
    }

    /// Ends the session (its streams are aborted), also once no handle is left.
    pub(crate) fn request_close(&self) {
        self.close_requested.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    fn take_dirty(&self) -> Vec<StreamId> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a session looks like from outside.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionInfo {
    pub rtt: Option<Duration>,
    /// The gateway sent GOAWAY: open new streams elsewhere.
    pub draining: bool,
    /// Why the session ended, once it has.
    pub ended: Option<String>,
    /// The ERROR code that ended it, if the gateway sent one.
    pub end_code: Option<ErrorCode>,
}

enum Command {
    Open {
        kind: StreamKind,
        target: TargetAddr,
        reply: oneshot::Sender<Result<Opened, Error>>,
    },
    Close,
}

enum Opened {
    Tcp(StreamId, Arc<StreamSlot>),
    Udp(StreamId, Arc<UdpSlot>),
}

/// A handle on a running session.
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<SessionShared>,
    pub info: watch::Receiver<SessionInfo>,
    pub ack: Arc<HelloAck>,
    open_timeout: Duration,
}

/// A session the client no longer opens streams on (it drains): it keeps serving its streams
/// without a handle, and this still lets [`crate::Client::close`] end it.
#[derive(Debug, Clone)]
pub(crate) struct DrainingSession(std::sync::Weak<SessionShared>);

impl DrainingSession {
    /// Whether the session is still running.
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Ends the session if it still runs.
    pub fn close(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.request_close();
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Open { kind, target, .. } => write!(f, "Open({kind:?}, {target})"),
            Command::Close => f.write_str("Close"),
        }
    }
}

impl SessionHandle {
    /// Whether new streams may be opened on this session.
    pub fn usable(&self) -> bool {
        let info = self.info.borrow();
        info.ended.is_none() && !info.draining
    }

    async fn open(&self, kind: StreamKind, target: TargetAddr) -> Result<Opened, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Open {
                kind,
                target,
                reply,
            })
            .await
            .map_err(|_| Error::Closed)?;
        match tokio::time::timeout(self.open_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout),
        }
    }

    pub async fn open_tcp(&self, target: TargetAddr) -> Result<TcpStream, Error> {
        match self.open(StreamKind::Tcp, target.clone()).await? {
            Opened::Tcp(id, slot) => Ok(TcpStream::new(id, target, slot, self.shared.clone())),
            Opened::Udp(..) => Err(Error::Closed),
        }
    }

    pub async fn open_udp(&self, target: TargetAddr) -> Result<UdpFlow, Error> {
        match self.open(StreamKind::Udp, target.clone()).await? {
            Opened::Udp(id, slot) => Ok(UdpFlow::new(id, target, slot, self.shared.clone())),
            Opened::Tcp(..) => Err(Error::Closed),
        }
    }

    /// What is left to reach the session once this handle is dropped.
    pub fn draining(&self) -> DrainingSession {
        DrainingSession(Arc::downgrade(&self.shared))
    }

    /// Ends the session (streams are aborted).
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

/// Connects to `gateway`, says HELLO and, once accepted, starts the driver task.
pub(crate) async fn establish(
    config: &ClientConfig,
    gateway: &GatewayEndpoint,
    resume: Option<Vec<u8>>,
) -> Result<SessionHandle, Error> {
    let max_message = httvps_proto::HEADER_LEN + config.session.limits.max_frame_size as usize;
    let handshake = async {
        let mut ws = transport::connect(gateway, max_message).await?;
        let now = Instant::now();
        let mut conn = Connection::new(Role::Client, config.session.clone(), now);
        let mut hello = ClientHello::new(
            config.device_id.clone(),
            config.device_token.clone().into_bytes(),
        );
        hello.client_name = config.client_name.clone();
        hello.client_version = config.client_version.clone();
        hello.resume_token = resume;
        hello.region = config.region.clone();
        conn.send_hello(hello)
            .map_err(|e| Error::Config(e.to_string()))?;
        while let Some(msg) = conn.poll_transmit(now) {
            ws.send(Message::Binary(msg))
                .await
                .map_err(|e| Error::Unreachable(format!("{gateway}: {e}")))?;
        }
        loop {
            let msg = ws.next().await.ok_or_else(|| {
                Error::Unreachable(format!("{gateway}: closed during the handshake"))
            })?;
            match msg.map_err(|e| Error::Unreachable(format!("{gateway}: {e}")))? {
                Message::Binary(bytes) => {
                    conn.handle_message(bytes, Instant::now()).map_err(|e| {
                        Error::SessionEnded {
                            code: e.code(),
                            message: e.to_string(),
                        }
                    })?;
                    match conn.poll_event() {
                        Some(Event::HelloAccepted(ack)) => return Ok((ws, conn, ack)),
                        Some(Event::HelloRejected(err)) => {
                            return Err(Error::Refused {
                                code: err.code,
                                message: err.message,
                                retry_after: (err.retry_after_ms > 0)
                                    .then(|| Duration::from_millis(u64::from(err.retry_after_ms))),
                            })
                        }
                        Some(Event::PeerError(e)) => {
                            return Err(Error::SessionEnded {
                                code: e.code,
                                message: e.message,
                            })
                        }
                        _ => {}
                    }
                }
                Message::Close(_) => {
                    return Err(Error::Unreachable(format!(
                        "{gateway}: closed during the handshake"
                    )))
                }
                _ => {}
            }
        }
    };
    let (ws, conn, ack) = tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| Error::Unreachable(format!("{gateway}: handshake timed out")))??;
    let shared = Arc::new(SessionShared::default());
    let (commands, command_rx) = mpsc::channel(64);
    let (info_tx, info) = watch::channel(SessionInfo::default());
    let heartbeat =
        Duration::from_millis(u64::from(ack.heartbeat_interval_ms)).max(Duration::from_secs(1));
    let driver = Driver {
        conn,
        shared: shared.clone(),
        info: info_tx,
        tcp: HashMap::new(),
        udp: HashMap::new(),
        opening: HashMap::new(),
        udp_queue: config.udp_queue,
        drain_timeout: config.drain_timeout,
        drain_deadline: None,
        local_close: None,
        heartbeat: if ack.heartbeat_interval_ms == 0 {
            Duration::from_secs(15)
        } else {
            heartbeat
        },
        pong_due: None,
    };
    tokio::spawn(driver.run(ws, command_rx));
    Ok(SessionHandle {
        commands,
        shared,
        info,
        ack: Arc::new(ack),
        open_timeout: config.open_timeout,
    })
}

enum Slot {
    Tcp(Arc<StreamSlot>),
    Udp(Arc<UdpSlot>),
}

struct Driver {
    conn: Connection,
    shared: Arc<SessionShared>,
    info: watch::Sender<SessionInfo>,
    tcp: HashMap<StreamId, Arc<StreamSlot>>,
    udp: HashMap<StreamId, Arc<UdpSlot>>,
    /// Opens waiting for STREAM_OPEN_ACK.
    opening: HashMap<StreamId, (oneshot::Sender<Result<Opened, Error>>, Slot)>,
    udp_queue: usize,
    /// How long the streams of a draining session (GOAWAY received) may run at most.
    drain_timeout: Duration,
    /// Set at GOAWAY: the streams still running then are aborted.
    drain_deadline: Option<Instant>,
    /// The code of the ERROR this side ended the session with.
    local_close: Option<ErrorCode>,
    heartbeat: Duration,
    /// A PING is out and its PONG is due by then.
    pong_due: Option<Instant>,
}

impl Driver {
    async fn run(mut self, ws: Ws, mut commands: mpsc::Receiver<Command>) {
        let (mut sink, mut incoming) = ws.split();
        let (out_tx, mut out_rx) = mpsc::channel::<Message>(WRITER_QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.feed(msg).await.is_err() {
                    return;
                }
                while let Ok(more) = out_rx.try_recv() {
                    if sink.feed(more).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let mut pending: Option<Bytes> = None;
        // Jittered (× uniform[0.7, 1.0]): PINGs at least every heartbeat, never at an exact
        // period an observer could match.
        let mut next_ping = tokio::time::Instant::now() + jittered(self.heartbeat);
        // A first RTT sample right away lets the receive windows grow toward the
        // bandwidth-delay product from the start instead of after the first heartbeat.
        if self.conn.ping(Instant::now()).is_ok() {
            self.pong_due =
                Some(Instant::now() + (self.heartbeat * 2).max(Duration::from_secs(10)));
        }
        let mut ended: Option<(String, Option<ErrorCode>)> = None;
        // No handle is left (the client dropped it, e.g. at GOAWAY): the session runs on for
        // its streams and ends once they have.
        let mut detached = false;
        loop {
            let now = Instant::now();
            self.apply_handle_work(now);
            self.dispatch_events();
            // Hand frames to the writer while it has room.
            loop {
                if pending.is_none() {
                    pending = self.conn.poll_transmit(now);
                }
                let Some(frame) = pending.take() else { break };
                match out_tx.try_send(Message::Binary(frame)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(Message::Binary(frame))) => {
                        pending = Some(frame);
                        break;
                    }
                    Err(_) => {
                        ended
                            .get_or_insert(("the connection to the gateway was lost".into(), None));
                        break;
                    }
                }
            }
            if self.conn.is_closed() && pending.is_none() {
                ended.get_or_insert(("the session was closed".into(), None));
            }
            if !self.conn.is_closed() {
                if self.shared.close_requested.load(Ordering::Relaxed) {
                    self.close(ErrorCode::NoError, "client closed");
                    continue;
                }
                if detached && self.tcp.is_empty() && self.udp.is_empty() && self.opening.is_empty()
                {
                    self.close(ErrorCode::NoError, "client closed");
                    continue;
                }
            }
            if ended.is_some() {
                break;
            }
            let pong_deadline = self.pong_due.map(tokio::time::Instant::from_std);
            let drain_deadline = self.drain_deadline.map(tokio::time::Instant::from_std);
            tokio::select! {
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Err(e) = self.conn.handle_message(bytes, Instant::now()) {
                            // The connection sent ERROR with this code itself.
                            self.local_close.get_or_insert(e.code());
                            tracing::warn!(error = %e, "protocol violation by the gateway");
                        }
                    }
                    Some(Ok(Message::Text(_))) => self.close(ErrorCode::ProtocolError, "text message"),
                    Some(Ok(Message::Close(_))) | None => {
                        ended = Some(("the gateway closed the connection".into(), None));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => ended = Some((format!("connection error: {e}"), None)),
                },
                cmd = commands.recv(), if !detached => match cmd {
                    Some(Command::Open { kind, target, reply }) => self.open(kind, target, reply),
                    Some(Command::Close) => self.close(ErrorCode::NoError, "client closed"),
                    None => detached = true,
                },
                _ = self.shared.notify.notified() => {}
                permit = out_tx.reserve(), if pending.is_some() => {
                    if let (Ok(permit), Some(frame)) = (permit, pending.take()) {
                        permit.send(Message::Binary(frame));
                    }
                }
                _ = tokio::time::sleep_until(next_ping) => {
                    next_ping = tokio::time::Instant::now() + jittered(self.heartbeat);
                    if self.pong_due.is_none() && self.conn.ping(Instant::now()).is_ok() {
                        self.pong_due = Some(Instant::now() + (self.heartbeat * 2).max(Duration::from_secs(10)));
                    }
                }
                _ = sleep_until(pong_deadline) => {
                    ended = Some(("the gateway stopped answering PINGs".into(), None));
                }
                _ = sleep_until(drain_deadline) => {
                    tracing::warn!(streams = self.tcp.len() + self.udp.len(), "drain timeout: aborting the streams left on the draining session");
                    self.drain_deadline = None;
                    self.close(ErrorCode::NoError, "drain timeout");
                }
            }
            if let Some(code) = self.peer_end_code() {
                ended.get_or_insert((format!("the gateway ended the session: {code}"), Some(code)));
            }
        }
        let (why, code) = ended.unwrap_or_else(|| ("ended".into(), None));
        // SPEC §2.6: the Close carries the code of the ERROR that ended the session, ours or
        // the gateway's (echoed). Without an ERROR (connection lost) there is nothing to send.
        if let Some(close_with) = code.or(self.peer_end_code()).or(self.local_close) {
            let close = CloseFrame {
                code: close_with.websocket_close_code().into(),
                reason: "".into(),
            };
            let _ = out_tx.try_send(Message::Close(Some(close)));
        }
        self.fail_all(&why);
        self.info.send_modify(|i| {
            i.ended = Some(why.clone());
            i.end_code = code.or(i.end_code);
        });
        drop(out_tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        tracing::debug!(reason = %why, "session ended");
    }

    /// Ends the session with ERROR `code` and remembers the code for the Close.
    fn close(&mut self, code: ErrorCode, message: &str) {
        if !self.conn.is_closed() {
            self.local_close.get_or_insert(code);
        }
        self.conn.close(code, message);
    }

    fn peer_end_code(&self) -> Option<ErrorCode> {
        self.info.borrow().end_code
    }

    fn open(
        &mut self,
        kind: StreamKind,
        target: TargetAddr,
        reply: oneshot::Sender<Result<Opened, Error>>,
    ) {
        if self.info.borrow().draining {
            let _ = reply.send(Err(Error::StreamReset(ResetCode::GoingAway)));
            return;
        }
        match self.conn.open_stream(kind, target, Bytes::new()) {
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
    fn apply_handle_work(&mut self, now: Instant) {
        let mut dirty = self.shared.take_dirty();
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty {
            if let Some(slot) = self.tcp.get(&id).cloned() {
                self.apply_tcp(id, &slot, now);
            } else if let Some(slot) = self.udp.get(&id).cloned() {
                self.apply_udp(id, &slot);
            }
        }
    }

    fn apply_tcp(&mut self, id: StreamId, slot: &StreamSlot, now: Instant) {
        let mut inner = slot.lock();
        if inner.cancel_requested {
            drop(inner);
            let _ = self.conn.reset(id, ResetCode::Cancel);
            self.tcp.remove(&id);
            return;
        }
        if inner.consumed > 0 {
            let n = std::mem::take(&mut inner.consumed);
            let _ = self.conn.consume(id, n, now);
        }
        while let Some(front) = inner.outbox.front().cloned() {
            let taken = self.conn.write(id, front.clone()).unwrap_or(0);
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
            let _ = self.conn.finish(id);
        }
        if inner.outbox_len < STREAM_OUTBOX {
            wake(&mut inner.write_waker);
        }
        // Gone from the connection: both sides finished and everything was read, or the
        // gateway reset it. The slot goes only once the reader has been told which: the
        // StreamFinished or StreamReset event may still be queued, and without the slot it
        // would be lost, leaving the reader waiting for ever.
        if self.conn.stream_state(id).is_none() && (inner.eof || inner.failure.is_some()) {
            drop(inner);
            self.tcp.remove(&id);
        }
    }

    fn apply_udp(&mut self, id: StreamId, slot: &UdpSlot) {
        let mut inner = slot.lock();
        if inner.closed_by_app {
            drop(inner);
            let _ = self.conn.reset(id, ResetCode::Cancel);
            self.udp.remove(&id);
            return;
        }
        while let Some((addr, data)) = inner.outbox.pop_front() {
            if let Err(e) = self.conn.send_datagram(id, addr, data) {
                tracing::debug!(error = %e, "datagram not sent");
            }
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::StreamAccepted(id) => {
                    if let Some((reply, slot)) = self.opening.remove(&id) {
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
                            let _ = self.conn.reset(id, ResetCode::Cancel);
                            self.tcp.remove(&id);
                            self.udp.remove(&id);
                        }
                    }
                }
                Event::StreamData { stream_id, data } => {
                    if let Some(slot) = self.tcp.get(&stream_id) {
                        let mut inner = slot.lock();
                        inner.recv.push_back(data);
                        wake(&mut inner.read_waker);
                    } else {
                        let _ = self.conn.consume(stream_id, data.len(), Instant::now());
                    }
                }
                Event::StreamFinished(id) => {
                    if let Some(slot) = self.tcp.get(&id) {
                        let mut inner = slot.lock();
                        inner.eof = true;
                        wake(&mut inner.read_waker);
                    }
                    if self.conn.stream_state(id).is_none() {
                        // Our FIN went out and everything was read already: nothing is left.
                        self.tcp.remove(&id);
                    }
                }
                Event::StreamReset { stream_id, code } => {
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
                Event::StreamWritable(id) => {
                    // Credit came back: move what waits in the handle into the connection.
                    if let Some(slot) = self.tcp.get(&id).cloned() {
                        self.apply_tcp(id, &slot, Instant::now());
                    }
                }
                Event::Datagram(d) => {
                    if let Some(slot) = self.udp.get(&d.stream_id) {
                        slot.deliver(d.addr, d.data);
                    }
                }
                Event::Pong { rtt } => {
                    self.pong_due = None;
                    self.info.send_modify(|i| i.rtt = Some(rtt));
                }
                Event::GoAway(g) => {
                    tracing::info!(code = %g.code, reason = %g.reason, "the gateway is draining this session");
                    self.info.send_modify(|i| i.draining = true);
                    self.drain_deadline
                        .get_or_insert_with(|| Instant::now() + self.drain_timeout);
                }
                Event::PeerError(e) => {
                    self.info.send_modify(|i| {
                        i.end_code = Some(e.code);
                    });
                }
                Event::HelloReceived(_)
                | Event::HelloAccepted(_)
                | Event::HelloRejected(_)
                | Event::StreamOpened(_) => {}
            }
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

/// `interval` × uniform[0.7, 1.0].
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.7 + 0.3 * rand::random::<f64>())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
