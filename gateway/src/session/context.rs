//! What a session needs from its gateway, and nothing else: the settings it runs with, who
//! decides about devices, where streams go, and the gateway-wide state it joins.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use httvps_driver::DriverConfig;
use httvps_proto::SessionConfig;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::authority::DeviceAuthority;
use crate::control_plane::ControlPlaneClient;
use crate::rate_limit::FailureLimiter;
use crate::shared::SharedState;
use crate::stats::GatewayStats;
use crate::upstream::Upstreams;
use crate::usage::UsageReporter;
use crate::GatewayConfig;

/// The configuration values a session reads (copied from [`GatewayConfig`]).
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// No HELLO by then: the session ends.
    pub handshake_timeout: Duration,
    /// No frame for this long after HELLO_ACK: ERROR `idle_timeout` (zero: off).
    pub idle_timeout: Duration,
    /// WebSocket Pings (jittered).
    pub ws_ping_interval: Duration,
    /// The close before a valid HELLO waits a random 10-100 % of this.
    pub unauthenticated_close_delay: Duration,
    /// A session drains (GOAWAY `max_lifetime`) after this plus a random jitter.
    pub max_lifetime: Duration,
    /// Up to this much random extra lifetime.
    pub max_lifetime_jitter: Duration,
    /// How long streams may finish after the gateway's drain signal.
    pub shutdown_grace: Duration,
    /// How long streams may finish after a `max_lifetime` GOAWAY.
    pub drain_timeout: Duration,
    /// The device check's deadline.
    pub control_plane_timeout: Duration,
    /// The control plane's session heartbeat.
    pub session_heartbeat_interval: Duration,
    /// Streams being connected at once per session; more are refused.
    pub max_pending_opens: usize,
    /// A UDP stream without traffic for this long ends.
    pub udp_idle_timeout: Duration,
}

impl SessionSettings {
    /// The session values of `config`.
    pub fn from_config(config: &GatewayConfig) -> Self {
        SessionSettings {
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            ws_ping_interval: config.ws_ping_interval,
            unauthenticated_close_delay: config.unauthenticated_close_delay,
            max_lifetime: config.max_lifetime,
            max_lifetime_jitter: config.max_lifetime_jitter,
            shutdown_grace: config.shutdown_grace,
            drain_timeout: config.drain_timeout,
            control_plane_timeout: config.control_plane_timeout,
            session_heartbeat_interval: config.session_heartbeat_interval,
            max_pending_opens: config.max_pending_opens,
            udp_idle_timeout: config.udp_idle_timeout,
        }
    }

    /// The timers the session loop runs with.
    pub fn driver_config(&self) -> DriverConfig {
        DriverConfig {
            handshake_timeout: Some(self.handshake_timeout),
            idle_timeout: Some(self.idle_timeout),
            ws_ping_interval: Some(self.ws_ping_interval),
            unauthenticated_close_delay: Some(self.unauthenticated_close_delay),
            ..DriverConfig::default()
        }
    }
}

/// Everything one gateway's sessions share.
#[derive(Debug)]
pub struct SessionContext {
    /// The settings.
    pub settings: SessionSettings,
    /// Protocol settings of every session.
    pub protocol: SessionConfig,
    /// Who may connect.
    pub authority: Arc<dyn DeviceAuthority>,
    /// How streams reach their targets.
    pub upstreams: Arc<Upstreams>,
    /// Failed HELLOs per source address.
    pub ip_failures: FailureLimiter<IpAddr>,
    /// Failed HELLOs per device id.
    pub device_failures: FailureLimiter<String>,
    /// One permit per live session (`--max-sessions`); `None`: no cap.
    pub session_slots: Option<Arc<Semaphore>>,
    /// The control plane: session lifecycle (None: development without one).
    pub control_plane: Option<Arc<ControlPlaneClient>>,
    /// Usage reports (with the control plane).
    pub usage: Option<UsageReporter>,
    /// State shared with the other gateways (Redis, or in process).
    pub state: Arc<SharedState>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    /// Cancelled when the gateway starts draining (SIGTERM).
    pub drain: CancellationToken,
}
