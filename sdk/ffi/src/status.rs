//! What the tunnel tells the app: its state as it changes, and its traffic when asked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use httvps_sdk::{ClientStatus, ConnectionState};
use httvps_tun::TunnelUp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the tunnel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TunnelState {
    /// The first session is being made.
    Connecting,
    /// A session is up: packets flow.
    Up,
    /// The session dropped; a new one is being made (new flows are refused meanwhile).
    Reconnecting,
    /// No session; `code` and `detail` say why, the next attempt comes after `retry_in_ms`.
    Down,
    /// [`crate::Tunnel::stop`] was called.
    Stopped,
}

/// A state change.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TunnelStatus {
    pub state: TunnelState,
    /// When down: a stable code (`revoked`, `expired`, `quota_exceeded`, `unreachable`,
    /// `connection_lost`, ...).
    pub code: Option<String>,
    /// When down: what happened, for people.
    pub detail: Option<String>,
    /// When down: the wait before the next attempt.
    pub retry_in_ms: Option<u64>,
    /// When down: the service refused the device (only new credentials or an operator help).
    pub refused: bool,
    /// The gateway of the current session.
    pub gateway: Option<String>,
}

impl From<&ClientStatus> for TunnelStatus {
    fn from(status: &ClientStatus) -> Self {
        let mut out = TunnelStatus {
            state: TunnelState::Connecting,
            code: None,
            detail: None,
            retry_in_ms: None,
            refused: false,
            gateway: status.gateway.clone(),
        };
        out.state = match &status.state {
            ConnectionState::Connecting => TunnelState::Connecting,
            ConnectionState::Connected => TunnelState::Up,
            ConnectionState::Reconnecting => TunnelState::Reconnecting,
            ConnectionState::Down(outage) => {
                out.code = Some(outage.code.clone());
                out.detail = Some(outage.detail.clone());
                out.retry_in_ms = Some(outage.retry_in.as_millis() as u64);
                out.refused = outage.is_refusal();
                TunnelState::Down
            }
            ConnectionState::Closed => TunnelState::Stopped,
        };
        out
    }
}

/// Told of every state change (on a tunnel thread: hand work to the app's own queue).
#[uniffi::export(with_foreign)]
pub trait StatusListener: Send + Sync {
    fn on_status(&self, status: TunnelStatus);
}

/// Keeps the kill switch in step with the client's status and calls the listener with the
/// current status and then every change, until the client's status channel closes. One task for
/// both, switch first: an app that sends on `Up` must find the switch open.
pub(crate) fn report(
    listener: Arc<dyn StatusListener>,
    mut status: watch::Receiver<ClientStatus>,
    up: TunnelUp,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let current = TunnelStatus::from(&*status.borrow_and_update());
            up.set(current.state == TunnelState::Up);
            // Only state changes: a new RTT sample is not news to the app.
            if last != Some((current.state, current.code.clone())) {
                last = Some((current.state, current.code.clone()));
                listener.on_status(current);
            }
            if status.changed().await.is_err() {
                up.set(false);
                return;
            }
        }
    })
}

/// The traffic so far, seen from the device: `sent` went into the tunnel, `received` came out.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TunnelStatistics {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Sessions established so far (more than one: it reconnected).
    pub sessions: u64,
    /// The latest round trip to the gateway.
    pub rtt_ms: Option<u64>,
}

/// Packet counters the pumps bump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    packets_received: AtomicU64,
    bytes_received: AtomicU64,
}

impl Counters {
    pub(crate) fn sent(&self, len: usize) {
        self.packets_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, len: usize) {
        self.packets_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(len as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, status: &ClientStatus) -> TunnelStatistics {
        TunnelStatistics {
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            packets_received: self.packets_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            sessions: status.sessions,
            rtt_ms: status.rtt.map(|d| d.as_millis() as u64),
        }
    }
}
