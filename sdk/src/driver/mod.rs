//! One session: the handshake, then a task that runs the session loop of `httvps-driver` with
//! [`session::ClientSession`] connecting it to the stream handles; this module is the handles'
//! side (open, close, the session's state).
//!
//! The WebSocket's writing half runs in its own task behind a bounded queue
//! ([`httvps_driver::QueuedSink`]), so the session task never spends its time encrypting and
//! writing; it keeps reading (and granting credit) while a slow socket drains.

mod session;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use httvps_driver::hello::{self, HelloFailure};
use httvps_driver::{Core, DriverConfig, Heartbeat, QueuedSink};
use httvps_proto::frame::HelloAck;
use httvps_proto::{ClientHello, Connection, ErrorCode, Role, StreamId, StreamKind, TargetAddr};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::config::{ClientConfig, GatewayEndpoint};
use crate::error::Error;
use crate::stream::{StreamSlot, TcpStream};
use crate::transport;
use crate::udp::{UdpFlow, UdpSlot};
use session::ClientSession;

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

    /// Whether the client asked to end the session.
    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Relaxed)
    }

    /// Waits until a handle has work for the driver (a permit is kept when nobody waits).
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Ends the session (its streams are aborted), also once no handle is left.
    pub(crate) fn request_close(&self) {
        self.close_requested.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    pub(crate) fn take_dirty(&self) -> Vec<StreamId> {
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
    /// The ERROR's message (the control plane's end reason, e.g. `killed`), if there was one.
    pub end_message: Option<String>,
}

pub(crate) enum Command {
    Open {
        kind: StreamKind,
        target: TargetAddr,
        reply: oneshot::Sender<Result<Opened, Error>>,
    },
    Close,
}

pub(crate) enum Opened {
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

/// Connects to `gateway`, says HELLO and, once accepted, starts the session task.
pub(crate) async fn establish(
    config: &ClientConfig,
    gateway: &GatewayEndpoint,
    resume: Option<Vec<u8>>,
) -> Result<SessionHandle, Error> {
    let max_message = httvps_proto::HEADER_LEN + config.session.limits.max_frame_size as usize;
    let handshake = async {
        let ws = transport::connect(gateway, max_message).await?;
        let (mut sink, mut source) = ws.split();
        let now = tokio::time::Instant::now().into_std();
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
        let ack = hello::exchange(&mut sink, &mut source, &mut conn)
            .await
            .map_err(|e| handshake_error(gateway, e))?;
        Ok::<_, Error>((sink, source, conn, ack))
    };
    let (sink, source, conn, ack) = tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| Error::Unreachable(format!("{gateway}: handshake timed out")))??;
    let shared = Arc::new(SessionShared::default());
    let (commands, command_rx) = mpsc::channel(64);
    let (info_tx, info) = watch::channel(SessionInfo::default());
    let driver_config = DriverConfig::default();
    let mut core = Core::new(conn, &driver_config);
    core.start_heartbeat(Heartbeat::from_ack(ack.heartbeat_interval_ms));
    let mut session = ClientSession::new(
        shared.clone(),
        info_tx,
        command_rx,
        config.udp_queue,
        config.drain_timeout,
    );
    tokio::spawn(async move {
        let sink = QueuedSink::spawn(sink, WRITER_QUEUE);
        let outcome = httvps_driver::run(core, &mut session, sink, source, &driver_config).await;
        tracing::debug!(ended = ?outcome.ended, "session ended");
    });
    Ok(SessionHandle {
        commands,
        shared,
        info,
        ack: Arc::new(ack),
        open_timeout: config.open_timeout,
    })
}

/// What a failed handshake means to the caller.
fn handshake_error(gateway: &GatewayEndpoint, failure: HelloFailure) -> Error {
    match failure {
        HelloFailure::Rejected(err) => Error::Refused {
            code: err.code,
            message: err.message,
            retry_after: (err.retry_after_ms > 0)
                .then(|| Duration::from_millis(u64::from(err.retry_after_ms))),
        },
        HelloFailure::Ended(e) => Error::SessionEnded {
            code: e.code,
            message: e.message,
        },
        HelloFailure::Violation(e) => Error::SessionEnded {
            code: e.code(),
            message: e.to_string(),
        },
        HelloFailure::Closed => {
            Error::Unreachable(format!("{gateway}: closed during the handshake"))
        }
        HelloFailure::Transport(e) => Error::Unreachable(format!("{gateway}: {e}")),
    }
}
