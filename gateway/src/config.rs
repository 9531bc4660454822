//! Gateway settings: every limit and timeout is a named flag with an environment variable
//! (`HTTVPS_GATEWAY_*`) and a documented default. Flags win over the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use httvps_proto::{Limits, SessionConfig};

use crate::GatewayError;

/// Command line and environment configuration of `httvps-gateway`.
#[derive(Clone, Debug, Parser)]
#[command(name = "httvps-gateway", version, about = "HTTVPS/1 gateway")]
pub struct GatewayConfig {
    /// Address the TLS listener binds.
    #[arg(long, env = "HTTVPS_GATEWAY_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Address of the Prometheus `/metrics` listener; empty disables it.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_listen: Option<SocketAddr>,

    /// The secret WebSocket path (operators should use an unguessable one).
    #[arg(long, env = "HTTVPS_GATEWAY_PATH", default_value = "/httvps")]
    pub path: String,

    /// PEM certificate chain. Without `--tls-cert`/`--tls-key` a self-signed certificate is
    /// generated at start and its SHA-256 fingerprint is logged for pinning.
    #[arg(long, env = "HTTVPS_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "HTTVPS_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Subject names of the generated self-signed certificate.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_SELF_SIGNED_NAMES",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    pub self_signed_names: Vec<String>,

    /// How often the certificate files are checked for changes (SIGHUP reloads at once).
    #[arg(long, env = "HTTVPS_GATEWAY_TLS_RELOAD_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,

    /// Folder of the static decoy site served to every request that is not a valid upgrade;
    /// without it such requests get a plain 404.
    #[arg(long, env = "HTTVPS_GATEWAY_DECOY_DIR")]
    pub decoy_dir: Option<PathBuf>,

    /// `Server` header of every HTTP response (decoy, 404 and 101 alike).
    #[arg(long, env = "HTTVPS_GATEWAY_SERVER_HEADER", default_value = "nginx")]
    pub server_header: String,

    /// Base URL of the control plane (gateway API). Needs `--control-plane-token`.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_CONTROL_PLANE_URL",
        requires = "control_plane_token"
    )]
    pub control_plane_url: Option<url::Url>,

    /// This gateway's service token for the control plane.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN",
        hide_env_values = true
    )]
    pub control_plane_token: Option<String>,

    /// Timeout of each control-plane request.
    #[arg(long, env = "HTTVPS_GATEWAY_CONTROL_PLANE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub control_plane_timeout: Duration,

    /// Development only: a fixed pool of Shadowsocks nodes (`ss://` URLs, comma separated) used
    /// instead of the control plane's node assignment.
    #[arg(
        long = "node",
        env = "HTTVPS_GATEWAY_NODES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub nodes: Vec<String>,

    /// Development only: devices accepted without a control plane, as `DEVICE_ID:TOKEN`.
    #[arg(
        long = "dev-device",
        env = "HTTVPS_GATEWAY_DEV_DEVICES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub dev_devices: Vec<String>,

    /// Time a client has after the upgrade to send a complete HELLO.
    #[arg(long, env = "HTTVPS_GATEWAY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Idle time (no frame received) after which a session is closed; advertised in HELLO_ACK.
    #[arg(long, env = "HTTVPS_GATEWAY_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// How often clients should PING; advertised in HELLO_ACK.
    #[arg(long, env = "HTTVPS_GATEWAY_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Interval of WebSocket Ping frames (at most 30 s, so 100 s idle cut-offs never trigger).
    #[arg(long, env = "HTTVPS_GATEWAY_WS_PING_INTERVAL", default_value = "25s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// Maximum lifetime of one connection; then GOAWAY `max_lifetime` and drain.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    pub max_lifetime: Duration,

    /// Random extra lifetime, up to this much, so sessions opened together do not end together.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_LIFETIME_JITTER", default_value = "1h", value_parser = parse_duration)]
    pub max_lifetime_jitter: Duration,

    /// How long streams may keep running after a GOAWAY before the session is closed.
    #[arg(long, env = "HTTVPS_GATEWAY_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// On SIGTERM: how long sessions may drain before the process exits.
    #[arg(long, env = "HTTVPS_GATEWAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Live streams per session (advertised as `max_streams`).
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_STREAMS", default_value_t = 256)]
    pub max_streams: u32,

    /// Streams per session whose target is still being connected; more are refused with
    /// `stream_limit`.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_PENDING_OPENS", default_value_t = 64)]
    pub max_pending_opens: usize,

    /// Largest frame payload accepted (16384..16777215); WebSocket messages above
    /// 6 + this are refused before they are buffered.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_FRAME_SIZE", default_value_t = 32_768)]
    pub max_frame_size: u32,

    /// Initial per-stream receive window (bytes), advertised in HELLO_ACK.
    #[arg(long, env = "HTTVPS_GATEWAY_STREAM_WINDOW", default_value_t = 262_144)]
    pub stream_window: u32,

    /// Initial session receive window (bytes), advertised in HELLO_ACK.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_SESSION_WINDOW",
        default_value_t = 1_048_576
    )]
    pub session_window: u32,

    /// Auto-tuning cap of a stream's receive window.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_STREAM_WINDOW", default_value_t = 16 * 1024 * 1024)]
    pub max_stream_window: u32,

    /// Auto-tuning cap of the session's receive window.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_SESSION_WINDOW", default_value_t = 64 * 1024 * 1024)]
    pub max_session_window: u32,

    /// Time allowed to connect a stream's target through a node (each attempt).
    #[arg(long, env = "HTTVPS_GATEWAY_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// A UDP stream with no datagram either way for this long is reset with `timeout`.
    #[arg(long, env = "HTTVPS_GATEWAY_UDP_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub udp_idle_timeout: Duration,

    /// Allow stream targets in loopback, private, link-local, CGNAT and metadata ranges.
    #[arg(long, env = "HTTVPS_GATEWAY_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Failed HELLOs allowed per source address per `--hello-failure-window`.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_HELLO_FAILURES_PER_IP",
        default_value_t = 10
    )]
    pub hello_failures_per_ip: u32,

    /// Failed HELLOs allowed per device id per `--hello-failure-window`.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_HELLO_FAILURES_PER_DEVICE",
        default_value_t = 5
    )]
    pub hello_failures_per_device: u32,

    /// The window over which failed HELLOs are counted.
    #[arg(long, env = "HTTVPS_GATEWAY_HELLO_FAILURE_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub hello_failure_window: Duration,

    /// Addresses and device ids tracked by the HELLO rate limiter at most (memory bound).
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_RATE_LIMIT_ENTRIES",
        default_value_t = 100_000
    )]
    pub rate_limit_entries: usize,

    /// Log as JSON lines.
    #[arg(long, env = "HTTVPS_GATEWAY_LOG_JSON")]
    pub log_json: bool,
}

impl Default for GatewayConfig {
    /// The documented defaults, ignoring the environment.
    fn default() -> Self {
        let mut config = GatewayConfig::parse_from(["httvps-gateway"]);
        // parse_from still reads HTTVPS_GATEWAY_* variables; Default is for tests and
        // embedding, so keep it independent of the environment where it matters most.
        config.tls_cert = None;
        config.tls_key = None;
        config.control_plane_url = None;
        config.control_plane_token = None;
        config
    }
}

impl GatewayConfig {
    /// Checks values that clap cannot (ranges, relations between values).
    pub fn validate(&self) -> Result<(), GatewayError> {
        self.advertised_limits()
            .validate()
            .map_err(|e| GatewayError::Config(format!("advertised limits: {e}")))?;
        if !self.path.starts_with('/') || self.path.contains('?') {
            return Err(GatewayError::Config(
                "--path must start with / and carry no query".into(),
            ));
        }
        if self.ws_ping_interval.is_zero() || self.ws_ping_interval > Duration::from_secs(30) {
            return Err(GatewayError::Config(
                "--ws-ping-interval must be between 0 and 30 s".into(),
            ));
        }
        if self.max_streams == 0 || self.max_pending_opens == 0 {
            return Err(GatewayError::Config(
                "--max-streams and --max-pending-opens must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The receive limits advertised in HELLO_ACK.
    pub fn advertised_limits(&self) -> Limits {
        Limits {
            stream_window: self.stream_window,
            session_window: self.session_window,
            max_frame_size: self.max_frame_size,
        }
    }

    /// The `httvps_proto` settings of every session.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            limits: self.advertised_limits(),
            max_stream_window: self.max_stream_window,
            max_session_window: self.max_session_window,
            max_streams: self.max_streams,
            heartbeat_interval: self.heartbeat_interval,
            idle_timeout: self.idle_timeout,
            ..SessionConfig::default()
        }
    }

    /// The largest WebSocket message accepted: one frame header plus the largest payload.
    pub fn max_message_size(&self) -> usize {
        6 + self.max_frame_size as usize
    }
}

/// Parses `250ms`, `10s`, `5m`, `24h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 250ms, 5m or 24h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!(
            "unknown duration unit {other:?} (use ms, s, m or h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let config = GatewayConfig::default();
        config.validate().unwrap();
        assert_eq!(config.max_message_size(), 6 + 32_768);
    }
}
