//! In-process counters of one gateway instance, readable without a metrics recorder (tests and
//! benchmarks use them; Prometheus gets the same figures through [`crate::metrics`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of one gateway.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Sessions whose WebSocket is open (handshaking or established).
    pub sessions_open: AtomicUsize,
    /// Live streams of all sessions.
    pub streams_active: AtomicUsize,
    /// UDP sockets toward nodes.
    pub udp_sockets: AtomicUsize,
    /// STREAM_OPENs accepted (STREAM_OPEN_ACK sent).
    pub streams_accepted: AtomicU64,
    /// STREAM_OPENs refused with STREAM_RESET.
    pub streams_refused: AtomicU64,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<u64, Arc<SessionStats>>>,
}

/// Counters of one session; the session updates them, anyone may read them.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// Bytes currently held for this session (see [`crate::metrics::BUFFERED_BYTES`]).
    pub buffered_bytes: AtomicUsize,
    /// The largest value `buffered_bytes` has had.
    pub peak_buffered_bytes: AtomicUsize,
    /// Payload bytes from the client written to upstreams.
    pub bytes_up: AtomicU64,
    /// Payload bytes from upstreams queued to the client.
    pub bytes_down: AtomicU64,
}

impl SessionStats {
    /// Records the current buffered byte count.
    pub fn set_buffered(&self, bytes: usize) {
        self.buffered_bytes.store(bytes, Ordering::Relaxed);
        self.peak_buffered_bytes.fetch_max(bytes, Ordering::Relaxed);
    }
}

/// A copy of one session's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStatsSnapshot {
    /// Bytes held now.
    pub buffered_bytes: usize,
    /// Most bytes held at once.
    pub peak_buffered_bytes: usize,
    /// Bytes relayed client to target.
    pub bytes_up: u64,
    /// Bytes relayed target to client.
    pub bytes_down: u64,
}

impl GatewayStats {
    /// Registers a session; it is listed until the returned guard is dropped.
    pub fn register_session(self: &Arc<Self>) -> SessionStatsGuard {
        let key = self.next_session.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(SessionStats::default());
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(key, stats.clone());
        }
        self.sessions_open.fetch_add(1, Ordering::Relaxed);
        SessionStatsGuard {
            gateway: self.clone(),
            key,
            stats,
        }
    }

    /// Counters of every open session.
    pub fn sessions(&self) -> Vec<SessionStatsSnapshot> {
        let Ok(sessions) = self.sessions.lock() else {
            return Vec::new();
        };
        sessions
            .values()
            .map(|s| SessionStatsSnapshot {
                buffered_bytes: s.buffered_bytes.load(Ordering::Relaxed),
                peak_buffered_bytes: s.peak_buffered_bytes.load(Ordering::Relaxed),
                bytes_up: s.bytes_up.load(Ordering::Relaxed),
                bytes_down: s.bytes_down.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Keeps a session listed in [`GatewayStats`] while it lives.
#[derive(Debug)]
pub struct SessionStatsGuard {
    gateway: Arc<GatewayStats>,
    key: u64,
    stats: Arc<SessionStats>,
}

impl SessionStatsGuard {
    /// The session's counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
}

impl Drop for SessionStatsGuard {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.gateway.sessions.lock() {
            sessions.remove(&self.key);
        }
        self.gateway.sessions_open.fetch_sub(1, Ordering::Relaxed);
    }
}
