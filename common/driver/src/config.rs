//! The timers of one driven session; `None` turns a timer off.

use std::time::Duration;

/// How long a session may wait for what, and how it keeps the link alive.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Server: the session ends with ERROR `handshake_timeout` when no HELLO came by then.
    pub handshake_timeout: Option<Duration>,
    /// After the handshake, a session that receives no frame for this long ends with ERROR
    /// `idle_timeout` (SPEC §8). Zero is off.
    pub idle_timeout: Option<Duration>,
    /// WebSocket Pings at this interval × uniform[0.7, 1.0] (never an exact period, SPEC §2.5).
    pub ws_ping_interval: Option<Duration>,
    /// Server: before the handshake completed nothing tells an unauthenticated peer why the
    /// session ends, and the close waits a random 10-100 % of this ([`crate::silence`]).
    pub unauthenticated_close_delay: Option<Duration>,
    /// How long the close handshake may take once the session is over.
    pub close_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            handshake_timeout: None,
            idle_timeout: None,
            ws_ping_interval: None,
            unauthenticated_close_delay: None,
            close_timeout: Duration::from_secs(2),
        }
    }
}

/// Protocol PINGs of a client: one at once (a first RTT sample lets the receive windows grow
/// from the start), then one every `interval` × uniform[0.7, 1.0] while none is in flight; a
/// PONG later than `pong_timeout` ends the session as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between PINGs (before jitter).
    pub interval: Duration,
    /// How long a PONG may take.
    pub pong_timeout: Duration,
}

impl Heartbeat {
    /// The heartbeat a server's HELLO_ACK asks for (`interval_ms`, 0: 15 s), at least 1 s apart,
    /// with a PONG deadline of two intervals and at least 10 s.
    pub fn from_ack(interval_ms: u32) -> Self {
        let interval = if interval_ms == 0 {
            Duration::from_secs(15)
        } else {
            Duration::from_millis(u64::from(interval_ms)).max(Duration::from_secs(1))
        };
        Heartbeat {
            interval,
            pong_timeout: (interval * 2).max(Duration::from_secs(10)),
        }
    }
}

/// `interval` × uniform[0.7, 1.0].
pub(crate) fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.7 + 0.3 * rand::random::<f64>())
}
