//! The client: keeps a session to one of its gateways, reconnects with backoff and the resume
//! token when it drops, moves new streams to a fresh session when the gateway sends GOAWAY
//! (streams on the old one finish there), and reports its state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use httvps_proto::{HelloErrorCode, TargetAddr};
use rand::Rng;
use tokio::sync::watch;

use crate::config::{Backoff, ClientConfig};
use crate::driver::{establish, DrainingSession, SessionHandle};
use crate::error::Error;
use crate::stream::TcpStream;
use crate::udp::UdpFlow;

/// Where the client is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first connection is being made.
    Connecting,
    /// A session is up.
    Connected,
    /// The session dropped; trying again after a backoff.
    Reconnecting,
    /// The gateway refused the device for good (revoked, expired, ...); no more attempts.
    Failed(String),
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
    /// Connects to the first gateway that accepts the device. Fails at once on a permanent
    /// refusal (wrong credentials, revoked, expired, quota) or when no gateway is reachable.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
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
        let client = Client {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
                draining: Mutex::new(Vec::new()),
                resume: Mutex::new(None),
                status,
                connecting: tokio::sync::Mutex::new(()),
            }),
        };
        client.reconnect_once().await?;
        tokio::spawn(supervise(Arc::downgrade(&client.inner)));
        Ok(client)
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

    /// A usable session: the current one, or a new one.
    async fn session(&self) -> Result<SessionHandle, Error> {
        if let Some(s) = self.usable_session() {
            return Ok(s);
        }
        match &self.inner.status.borrow().state {
            ConnectionState::Closed => return Err(Error::Closed),
            ConnectionState::Failed(why) => return Err(Error::Unreachable(why.clone())),
            _ => {}
        }
        self.reconnect_once().await?;
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

    /// Tries every gateway once, in order; installs the new session on success.
    async fn reconnect_once(&self) -> Result<(), Error> {
        let _one_at_a_time = self.inner.connecting.lock().await;
        if self.usable_session().is_some() {
            return Ok(());
        }
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
                Err(e) if e.is_permanent() => {
                    self.inner
                        .status
                        .send_modify(|s| s.state = ConnectionState::Failed(e.to_string()));
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(gateway = %gateway, error = %e, "gateway not usable");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// Watches the current session: follows its RTT, replaces it when it drains (GOAWAY) and
/// reconnects with backoff when it ends. Stops when the client is dropped or closed.
async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut delays: Option<ExponentialBackoff> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let client = Client { inner };
        match &client.inner.status.borrow().state {
            ConnectionState::Closed | ConnectionState::Failed(_) => return,
            _ => {}
        }
        let current = client
            .inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(session) = current else {
            if reconnect_with_backoff(&client, &mut delays).await.is_err() {
                return;
            }
            continue;
        };
        // Only the receiver: holding the handle would keep the driver alive after the client
        // is dropped.
        let mut info = session.info.clone();
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
        if matches!(
            client.inner.status.borrow().state,
            ConnectionState::Closed | ConnectionState::Failed(_)
        ) {
            // `close` ended the session: no reconnecting.
            return;
        }
        client
            .inner
            .status
            .send_modify(|s| s.rtt = snapshot.rtt.or(s.rtt));
        if gone || snapshot.ended.is_some() {
            tracing::warn!(reason = ?snapshot.ended, "session ended; reconnecting");
            client
                .inner
                .status
                .send_modify(|s| s.state = ConnectionState::Reconnecting);
        } else {
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
        if snapshot.end_code.is_some_and(|c| {
            matches!(
                c,
                httvps_proto::ErrorCode::Revoked
                    | httvps_proto::ErrorCode::Expired
                    | httvps_proto::ErrorCode::QuotaExceeded
            )
        }) {
            let why = snapshot.ended.unwrap_or_default();
            client
                .inner
                .status
                .send_modify(|s| s.state = ConnectionState::Failed(why));
            return;
        }
        if reconnect_with_backoff(&client, &mut delays).await.is_err() {
            return;
        }
    }
}

/// The reconnect delays after consecutive failures: from `initial`, doubling up to `max`, for
/// as long as it takes (jitter is added per attempt).
fn reconnect_schedule(backoff: Backoff) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(backoff.initial)
        .with_max_delay(backoff.max)
        .without_max_times()
        .build()
}

/// Reconnects, waiting between failed attempts; `delays` runs on across calls until one
/// succeeds.
async fn reconnect_with_backoff(
    client: &Client,
    delays: &mut Option<ExponentialBackoff>,
) -> Result<(), ()> {
    loop {
        if matches!(
            client.inner.status.borrow().state,
            ConnectionState::Closed | ConnectionState::Failed(_)
        ) {
            return Err(());
        }
        match client.reconnect_once().await {
            Ok(()) => {
                *delays = None;
                return Ok(());
            }
            Err(e) if e.is_permanent() => return Err(()),
            Err(e) => {
                let backoff = client.inner.config.backoff;
                let next = delays
                    .get_or_insert_with(|| reconnect_schedule(backoff))
                    .next();
                let mut delay = next.unwrap_or(backoff.max).min(backoff.max);
                if let Error::Refused {
                    retry_after: Some(after),
                    code:
                        HelloErrorCode::RateLimited
                        | HelloErrorCode::Internal
                        | HelloErrorCode::TooManySessions,
                    ..
                } = &e
                {
                    delay = delay.max(*after);
                }
                let jitter = rand::thread_rng().gen_range(0.0..0.2);
                let delay = delay.mul_f64(1.0 + jitter);
                tracing::warn!(error = %e, retry_in = ?delay, "reconnect failed");
                client
                    .inner
                    .status
                    .send_modify(|s| s.state = ConnectionState::Reconnecting);
                tokio::time::sleep(delay).await;
            }
        }
    }
}
