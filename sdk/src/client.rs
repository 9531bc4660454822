//! The client: keeps a session to one of its gateways, reconnects with backoff and the resume
//! token when it drops, moves new streams to a fresh session when the gateway sends GOAWAY
//! (streams on the old one finish there), and reports its state. It never gives up: after a
//! refusal or a server-side end (revoked, expired, quota, killed) it says why in its status and
//! keeps trying, so it comes back by itself once the device may connect again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httvps_proto::TargetAddr;
use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::driver::{establish, DrainingSession, SessionHandle};
use crate::error::Error;
use crate::outage::{Outage, RetrySchedule};
use crate::stream::TcpStream;
use crate::udp::UdpFlow;

/// Whether a connection attempt goes ahead while the client is down or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// The supervisor's attempts: they end an outage.
    Always,
    /// A stream open's: it fails at once while the client is down, instead of waiting.
    UnlessDown,
}

/// A session that lasted this long counts as having worked: the next outage starts its delays
/// from the shortest again.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// Where the client is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first connection is being made.
    Connecting,
    /// A session is up.
    Connected,
    /// The session dropped; a new one is being made.
    Reconnecting,
    /// No session: the last attempt failed or the gateway ended the session, for the reason
    /// given; the next attempt comes after `retry_in`. Opening a stream fails at once meanwhile.
    Down(Outage),
    /// [`Client::close`] was called.
    Closed,
}

/// What the client reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// Where the client is.
    pub state: ConnectionState,
    /// The gateway of the current session.
    pub gateway: Option<String>,
    /// The current session's id (hex).
    pub session_id: Option<String>,
    /// The latest PING round trip.
    pub rtt: Option<Duration>,
    /// How many sessions were established so far.
    pub sessions: u64,
}

struct Inner {
    config: ClientConfig,
    current: Mutex<Option<SessionHandle>>,
    /// Sessions that got GOAWAY: they finish their streams without a handle (SPEC §9.1).
    draining: Mutex<Vec<DrainingSession>>,
    resume: Mutex<Option<Vec<u8>>>,
    status: watch::Sender<ClientStatus>,
    /// One (re)connection at a time.
    connecting: tokio::sync::Mutex<()>,
}

/// An HTTVPS/1 client. Cheap to clone; all clones share the session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

impl Client {
    /// Connects to the first gateway that accepts the device, then keeps a session up by
    /// itself. Fails at once when no gateway accepts the device now (refused, or unreachable):
    /// for applications that want to tell their user before going on. [`Client::start`] never
    /// fails for that.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        let client = Client::new(config)?;
        client.make_session(Attempt::Always).await?;
        tokio::spawn(supervise(Arc::downgrade(&client.inner)));
        Ok(client)
    }

    /// Starts a client that connects in the background and keeps trying, whatever the gateways
    /// answer, until [`Client::close`]; its status says where it is and why. Only a
    /// configuration without gateways fails.
    pub fn start(config: ClientConfig) -> Result<Client, Error> {
        let client = Client::new(config)?;
        tokio::spawn(supervise(Arc::downgrade(&client.inner)));
        Ok(client)
    }

    fn new(config: ClientConfig) -> Result<Client, Error> {
        if config.gateways.is_empty() {
            return Err(Error::Config("no gateway configured".into()));
        }
        let (status, _) = watch::channel(ClientStatus {
            state: ConnectionState::Connecting,
            gateway: None,
            session_id: None,
            rtt: None,
            sessions: 0,
        });
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
                draining: Mutex::new(Vec::new()),
                resume: Mutex::new(None),
                status,
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Waits until the client is connected or down (the first attempt's outcome), at most
    /// `limit`; returns the status then.
    pub async fn settled(&self, limit: Duration) -> ClientStatus {
        let mut status = self.watch_status();
        let _ = tokio::time::timeout(limit, async {
            while matches!(
                status.borrow_and_update().state,
                ConnectionState::Connecting | ConnectionState::Reconnecting
            ) {
                if status.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.status()
    }

    /// The client's status now.
    pub fn status(&self) -> ClientStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn watch_status(&self) -> watch::Receiver<ClientStatus> {
        self.inner.status.subscribe()
    }

    /// Opens a TCP stream to `target`; returns once the gateway accepted it (STREAM_OPEN_ACK,
    /// SPEC §5.3). A target that then refuses or cannot be reached shows up on the stream as
    /// a reset or an end without data.
    pub async fn open_tcp(&self, target: TargetAddr) -> Result<TcpStream, Error> {
        let session = self.session().await?;
        match session.open_tcp(target.clone()).await {
            // The session went away under us (or started draining): once more on a new one.
            Err(
                Error::SessionEnded { .. }
                | Error::Closed
                | Error::StreamReset(httvps_proto::ResetCode::GoingAway),
            ) => self.session().await?.open_tcp(target).await,
            other => other,
        }
    }

    /// Opens a UDP flow whose datagrams go to `target` by default.
    pub async fn open_udp(&self, target: TargetAddr) -> Result<UdpFlow, Error> {
        let session = self.session().await?;
        match session.open_udp(target.clone()).await {
            Err(
                Error::SessionEnded { .. }
                | Error::Closed
                | Error::StreamReset(httvps_proto::ResetCode::GoingAway),
            ) => self.session().await?.open_udp(target).await,
            other => other,
        }
    }

    /// Ends the session (and any still draining) and stops reconnecting.
    pub async fn close(&self) {
        self.inner
            .status
            .send_modify(|s| s.state = ConnectionState::Closed);
        let draining = std::mem::take(
            &mut *self
                .inner
                .draining
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for session in draining {
            session.close();
        }
        let session = self
            .inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(session) = session {
            session.close().await;
        }
    }

    /// A usable session: the current one, or a new one. While the client is down (waiting
    /// before its next attempt) this fails at once with the reason.
    async fn session(&self) -> Result<SessionHandle, Error> {
        if let Some(s) = self.usable_session() {
            return Ok(s);
        }
        self.make_session(Attempt::UnlessDown).await?;
        self.usable_session().ok_or(Error::Closed)
    }

    fn usable_session(&self) -> Option<SessionHandle> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|s| s.usable())
            .cloned()
    }

    /// Makes a session unless one is usable (an attempt in progress may have made it; one at a
    /// time): tries every gateway once, in order. With [`Attempt::UnlessDown`] a client that is
    /// closed or down fails at once instead.
    async fn make_session(&self, attempt: Attempt) -> Result<(), Error> {
        let _one_at_a_time = self.inner.connecting.lock().await;
        if self.usable_session().is_some() {
            return Ok(());
        }
        if attempt == Attempt::UnlessDown {
            match &self.inner.status.borrow().state {
                ConnectionState::Closed => return Err(Error::Closed),
                ConnectionState::Down(outage) => return Err(Error::Down(outage.clone())),
                _ => {}
            }
        }
        self.try_gateways().await
    }

    /// Tries every gateway once, in order; the caller holds `connecting`.
    async fn try_gateways(&self) -> Result<(), Error> {
        let resume = self
            .inner
            .resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut last = Error::Unreachable("no gateway tried".into());
        for gateway in &self.inner.config.gateways {
            match establish(&self.inner.config, gateway, resume.clone()).await {
                Ok(session) => {
                    *self.inner.resume.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(session.ack.resume_token.0.to_vec());
                    let session_id = hex::encode(&session.ack.session_id);
                    tracing::info!(gateway = %gateway, session = %session_id, "connected");
                    self.inner.status.send_modify(|s| {
                        s.state = ConnectionState::Connected;
                        s.gateway = Some(gateway.to_string());
                        s.session_id = Some(session_id);
                        s.rtt = None;
                        s.sessions += 1;
                    });
                    *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
                    return Ok(());
                }
                // The service refused the device: another gateway of the same service answers
                // the same.
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => {
                    tracing::warn!(gateway = %gateway, error = %e, "gateway not usable");
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn is_closed(&self) -> bool {
        self.inner.status.borrow().state == ConnectionState::Closed
    }

    /// Moves the client to `state`, unless it was closed meanwhile (closing is final).
    fn set_state(&self, state: ConnectionState) {
        self.inner.status.send_if_modified(|s| {
            if s.state == ConnectionState::Closed {
                return false;
            }
            if matches!(state, ConnectionState::Down(_)) {
                s.session_id = None;
            }
            s.state = state;
            true
        });
    }
}

/// Watches the current session: follows its RTT, replaces it when it drains (GOAWAY) and
/// reconnects with backoff when it ends. Stops when the client is dropped or closed.
async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut retry: Option<RetrySchedule> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let client = Client { inner };
        if client.is_closed() {
            return;
        }
        let current = client
            .inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(session) = current else {
            if reconnect_with_backoff(&client, &mut retry).await.is_err() {
                return;
            }
            continue;
        };
        // Only the receiver: holding the handle would keep the driver alive after the client
        // is dropped.
        let mut info = session.info.clone();
        let up_since = tokio::time::Instant::now();
        drop(session);
        drop(client);
        // Follow this session until it ends or drains. One receiver for the whole session, and
        // `borrow_and_update` marks each version seen: a fresh clone of the handle's receiver
        // would report the same change again at once and make this loop spin.
        let (gone, snapshot) = loop {
            let snapshot = info.borrow_and_update().clone();
            if snapshot.ended.is_some() || snapshot.draining {
                break (false, snapshot);
            }
            let Some(inner) = weak.upgrade() else { return };
            inner.status.send_if_modified(|s| {
                let changed = snapshot.rtt.is_some() && s.rtt != snapshot.rtt;
                if changed {
                    s.rtt = snapshot.rtt;
                }
                changed
            });
            drop(inner);
            // A dropped sender means the driver is gone.
            if info.changed().await.is_err() {
                break (true, info.borrow().clone());
            }
        };
        let Some(inner) = weak.upgrade() else { return };
        let client = Client { inner };
        if client.is_closed() {
            // `close` ended the session: no reconnecting.
            return;
        }
        client
            .inner
            .status
            .send_modify(|s| s.rtt = snapshot.rtt.or(s.rtt));
        let ended = gone || snapshot.ended.is_some();
        if !ended {
            tracing::info!("gateway draining; moving new streams to a new session");
        }
        // The draining session keeps serving its streams without a handle (its driver ends it
        // once they are done); new ones go to the next session.
        {
            let mut current = client
                .inner
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| c.info.same_channel(&info)) {
                if let Some(old) = current.take() {
                    let mut draining = client
                        .inner
                        .draining
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    draining.retain(DrainingSession::alive);
                    draining.push(old.draining());
                }
            }
        }
        if ended {
            // A session that held for a while starts the delays afresh; one that keeps ending
            // soon after it began (a flapping path) goes on growing them.
            if up_since.elapsed() >= STABLE_SESSION {
                retry = None;
            }
            // Why, first (a permanent end such as `revoked` shows until the device may connect
            // again); a dropped stable connection is retried at once, the rest after a backoff.
            let schedule =
                retry.get_or_insert_with(|| RetrySchedule::new(client.inner.config.backoff));
            let end_error = snapshot.end_code.map(|code| Error::SessionEnded {
                code,
                message: snapshot.end_message.clone().unwrap_or_default(),
            });
            let wait = match &end_error {
                Some(e) if e.is_permanent() => schedule.after(e),
                _ if up_since.elapsed() < STABLE_SESSION => {
                    schedule.after(&Error::Unreachable(String::new()))
                }
                _ => Duration::ZERO,
            };
            let outage = Outage::after_session(
                snapshot.end_code,
                snapshot.end_message.as_deref(),
                snapshot.ended.as_deref(),
                wait,
            );
            tracing::warn!(code = %outage.code, detail = %outage.detail, retry_in = ?wait, "session ended");
            if wait.is_zero() {
                client.set_state(ConnectionState::Reconnecting);
            } else {
                client.set_state(ConnectionState::Down(outage));
                tokio::time::sleep(wait).await;
            }
        }
        if reconnect_with_backoff(&client, &mut retry).await.is_err() {
            return;
        }
    }
}

/// Reconnects, waiting between failed attempts and saying why in the status; `retry` runs on
/// across calls (the supervisor resets it once a session has held). Returns `Err` only once the client is closed.
async fn reconnect_with_backoff(
    client: &Client,
    retry: &mut Option<RetrySchedule>,
) -> Result<(), ()> {
    loop {
        if client.is_closed() {
            return Err(());
        }
        match client.make_session(Attempt::Always).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let wait = retry
                    .get_or_insert_with(|| RetrySchedule::new(client.inner.config.backoff))
                    .after(&e);
                let outage = Outage::after_error(&e, wait);
                tracing::warn!(code = %outage.code, error = %e, retry_in = ?wait, "connecting failed");
                client.set_state(ConnectionState::Down(outage));
                tokio::time::sleep(wait).await;
            }
        }
    }
}
