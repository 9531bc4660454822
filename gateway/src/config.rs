//! Gateway settings: every limit and timeout is a named flag with an environment variable
//! (`HTTVPS_GATEWAY_*`), a key in the optional TOML file (`--config`, keys named like the flags
//! with `-` or `_`) and a documented default. Flags win over the environment, the environment
//! over the file, the file over the defaults. The control-plane token is never a flag (flags are
//! visible to every local user): environment, token file or config file only.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, Parser};
use httvps_proto::{Limits, SessionConfig};

use crate::control_plane::Secret;
use crate::entitlements::CacheLimits;
use crate::GatewayError;

/// Environment variable of the control-plane token.
pub const TOKEN_ENV: &str = "HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN";

/// Command line and environment configuration of `httvps-gateway`.
#[derive(Clone, Debug, Parser)]
#[command(name = "httvps-gateway", version, about = "HTTVPS/1 gateway")]
pub struct GatewayConfig {
    /// Optional TOML configuration file (flags and environment variables win over it).
    #[arg(long = "config", env = "HTTVPS_GATEWAY_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Address the TLS listener binds (`IP:PORT`); empty disables it (a fronted gateway with
    /// only `--plain-listen`).
    #[arg(long, env = "HTTVPS_GATEWAY_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: ListenAddr,

    /// Address of the Prometheus `/metrics` listener; empty disables it.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_METRICS_LISTEN",
        default_value = "127.0.0.1:9464",
        value_parser = parse_optional_addr
    )]
    pub metrics_listen: OptionalAddr,

    /// The secret WebSocket path: no default, at least 128 bits (a segment of 22 or more
    /// base64url characters, e.g. from `head -c 24 /dev/urandom | base64 | tr '+/' '-_'`);
    /// short or well-known paths are refused unless `--dev-allow-weak-path`.
    #[arg(long, env = "HTTVPS_GATEWAY_PATH", default_value = "")]
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

    /// Standalone mode: names (comma-separated) to get a certificate for from an ACME CA
    /// (TLS-ALPN-01 on the TLS port, which must be reachable on port 443 for the CA); turns
    /// ACME on. Renewed in the background, applied to new connections without a restart.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_ACME_DOMAIN",
        value_delimiter = ',',
        conflicts_with_all = ["tls_cert", "tls_key"]
    )]
    pub acme_domain: Vec<String>,

    /// The ACME CA's directory URL.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_ACME_DIRECTORY",
        default_value = crate::tls::acme::LETS_ENCRYPT_DIRECTORY
    )]
    pub acme_directory: String,

    /// ACME account contacts (comma-separated `mailto:` URLs); the CA may mail expiry notices.
    #[arg(long, env = "HTTVPS_GATEWAY_ACME_CONTACT", value_delimiter = ',')]
    pub acme_contact: Vec<String>,

    /// Where the ACME account key and certificates are kept across restarts (private: it holds
    /// the certificate's key).
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_ACME_CACHE_DIR",
        default_value = "/var/lib/httvps/acme"
    )]
    pub acme_cache_dir: PathBuf,

    /// PEM CA certificates trusted for the ACME directory's HTTPS instead of the public roots
    /// (a private or test CA).
    #[arg(long, env = "HTTVPS_GATEWAY_ACME_DIRECTORY_CA")]
    pub acme_directory_ca: Option<PathBuf>,

    /// Removed: the static decoy site is gone. Setting it is an error pointing at
    /// `--fallback` (a real web server answers every request that is not a session).
    #[arg(long, env = "HTTVPS_GATEWAY_DECOY_DIR", hide = true)]
    pub decoy_dir: Option<PathBuf>,

    /// Standalone mode: the local web server that gets every TLS connection whose first request
    /// is not a valid upgrade on the secret path, decrypted and relayed byte for byte for the
    /// rest of the connection. `tls://host:port` (recommended): its TLS listener, the gateway
    /// as TLS client with the client's SNI and ALPN, so how it closes (`close_notify` or not) is
    /// mirrored exactly; `host:port` or `unix:/path`: plain HTTP (one known difference: a
    /// lingering-close timeout ends with `close_notify`). Production standalone needs it;
    /// without it such requests get a minimal built-in 404 (development).
    #[arg(long, env = "HTTVPS_GATEWAY_FALLBACK")]
    pub fallback: Option<FallbackAddr>,

    /// Standalone mode: the same web server's TLS listener (`host:port` or `unix:/path`); a
    /// connection to the TLS port that does not start with a TLS handshake record (plain HTTP)
    /// is relayed there raw, so it gets that server's own "plain HTTP request was sent to HTTPS
    /// port" answer. Without it such connections are closed.
    #[arg(long, env = "HTTVPS_GATEWAY_FALLBACK_RAW")]
    pub fallback_raw: Option<FallbackAddr>,

    /// Time allowed to connect to the fallback; a fallback that does not answer in time gets
    /// the client connection closed (like an overloaded web server).
    #[arg(long, env = "HTTVPS_GATEWAY_FALLBACK_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub fallback_connect_timeout: Duration,

    /// Connections relayed to the fallbacks at once (both together); beyond, new ones are
    /// closed.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_FALLBACK_MAX_CONNECTIONS",
        default_value_t = 4096
    )]
    pub fallback_max_connections: usize,

    /// WebSocket subprotocol token a client must list in `Sec-WebSocket-Protocol` (echoed in
    /// the 101); per deployment, carried in the connection link. Without it none is required
    /// and none is echoed.
    #[arg(long, env = "HTTVPS_GATEWAY_SUBPROTOCOL")]
    pub subprotocol: Option<String>,

    /// From TCP accept to a completed TLS handshake (covers a connection that never sends a
    /// ClientHello); nginx's client_header_timeout applies there too (60 s).
    #[arg(long, env = "HTTVPS_GATEWAY_TLS_HANDSHAKE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,

    /// From the TLS handshake (or the previous response) to the complete head of a request the
    /// gateway itself reads (nginx's client_header_timeout, 60 s). Once a connection goes to
    /// the fallback, the fallback's own timeouts apply.
    #[arg(long, env = "HTTVPS_GATEWAY_CLIENT_HEADER_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub client_header_timeout: Duration,

    /// Idle time between requests on a connection the gateway itself answers (the built-in
    /// answer without `--fallback`; nginx's keepalive_timeout, 75 s).
    #[arg(long, env = "HTTVPS_GATEWAY_KEEPALIVE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,

    /// Longest pause between two reads of a request body the gateway itself discards (the
    /// built-in answer; nginx's client_body_timeout, 60 s).
    #[arg(long, env = "HTTVPS_GATEWAY_CLIENT_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub client_body_timeout: Duration,

    /// Connections on the TLS port at once (sessions included); beyond, new ones are closed at
    /// accept.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_CONNECTIONS", default_value_t = 65_536)]
    pub max_connections: usize,

    /// Connections on the TLS port at once from one client address (generous: carrier NAT
    /// puts many users behind one address); beyond, new ones are closed at accept.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1024
    )]
    pub max_connections_per_ip: usize,

    /// `Server` header of the responses the gateway writes itself (101 and the built-in 404).
    #[arg(long, env = "HTTVPS_GATEWAY_SERVER_HEADER", default_value = "nginx")]
    pub server_header: String,

    /// Base URL of the control plane (gateway API), e.g. `http://control-plane:8080/`.
    #[arg(long, env = "HTTVPS_GATEWAY_CONTROL_PLANE_URL")]
    pub control_plane_url: Option<url::Url>,

    /// This gateway's service token: from `HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN`, the token file
    /// or the config file's `control_plane_token`; never a flag, never logged.
    #[arg(skip)]
    pub control_plane_token: Option<Secret>,

    /// A file holding the service token (e.g. a mounted Kubernetes secret).
    #[arg(long, env = "HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN_FILE")]
    pub control_plane_token_file: Option<PathBuf>,

    /// Most allowed devices kept in the entitlement cache.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_ENTITLEMENT_CACHE_ENTRIES",
        default_value_t = 100_000
    )]
    pub entitlement_cache_entries: usize,

    /// Longest time an allow is cached (the control plane's `cache_ttl_secs` is capped by it;
    /// a device keeps connecting this long when the control plane is unreachable).
    #[arg(long, env = "HTTVPS_GATEWAY_ENTITLEMENT_CACHE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub entitlement_cache_ttl: Duration,

    /// Most denials kept in the cache.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_DENIAL_CACHE_ENTRIES",
        default_value_t = 100_000
    )]
    pub denial_cache_entries: usize,

    /// Longest time a denial is cached.
    #[arg(long, env = "HTTVPS_GATEWAY_DENIAL_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub denial_cache_ttl: Duration,

    /// Interval of each session's heartbeat to the control plane (kills, revocations and
    /// failovers arrive with it).
    #[arg(long, env = "HTTVPS_GATEWAY_SESSION_HEARTBEAT_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub session_heartbeat_interval: Duration,

    /// How often byte counts are batched into a usage report.
    #[arg(long, env = "HTTVPS_GATEWAY_USAGE_REPORT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub usage_report_interval: Duration,

    /// Unsent usage reports kept at most (counts of a never-sent report are merged, so this
    /// only fills in a long outage); beyond, the oldest is dropped and counted.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_USAGE_QUEUE_REPORTS",
        default_value_t = 1000
    )]
    pub usage_queue_reports: usize,

    /// At shutdown, how long to keep trying to deliver usage.
    #[arg(long, env = "HTTVPS_GATEWAY_USAGE_FLUSH_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub usage_flush_timeout: Duration,

    /// File where usage not yet accepted by the control plane is kept (written and fsynced
    /// every second, replayed at start with the same report ids), so a crash loses at most the
    /// last second of usage. One file per gateway process (locked). Unset: a crash loses the
    /// usage counted since the last report.
    #[arg(long, env = "HTTVPS_GATEWAY_USAGE_SPOOL")]
    pub usage_spool: Option<PathBuf>,

    /// Interval of the gateway registry heartbeat (with the version); the pool snapshot used
    /// while the control plane cannot be asked is refreshed with it. The control plane ends
    /// the sessions of a gateway whose heartbeat stops (`HTTVPS_CP_GATEWAY_STALE_SECS`, 30 s).
    #[arg(long, env = "HTTVPS_GATEWAY_REGISTRY_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub registry_heartbeat_interval: Duration,

    /// Timeout of each control-plane request.
    #[arg(long, env = "HTTVPS_GATEWAY_CONTROL_PLANE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub control_plane_timeout: Duration,

    /// Redis holding the state several gateways share: session limits, resume tokens,
    /// revocations, node load, quota counters and the gateway registry. Without it that state
    /// lives in this process (right for exactly one gateway).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and of the event channel (deployments sharing a Redis differ).
    #[arg(long, env = "HTTVPS_GATEWAY_REDIS_PREFIX", default_value = "httvps")]
    pub redis_prefix: String,

    /// Longest wait for one Redis operation before it counts as an outage.
    #[arg(long, env = "HTTVPS_GATEWAY_REDIS_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// What a new HELLO gets while Redis is unreachable: `local` admits it against this
    /// gateway's own session counts (limits then hold per gateway only), `refuse` answers
    /// HELLO_ERROR `internal` with a retry delay. Established sessions are never affected.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_REDIS_DOWN_POLICY",
        value_enum,
        default_value = "local"
    )]
    pub redis_down_policy: RedisDownPolicy,

    /// This gateway's id in the registry and in load shares (default: a new UUID per process).
    #[arg(long, env = "HTTVPS_GATEWAY_ID")]
    pub gateway_id: Option<String>,

    /// Live sessions one device may hold across all gateways (0 = unlimited). The plan's
    /// per-user limit comes from the control plane.
    #[arg(long, env = "HTTVPS_GATEWAY_DEVICE_SESSION_LIMIT", default_value_t = 2)]
    pub device_session_limit: u32,

    /// How long a session's slot in the shared limits holds without renewal (a gateway that
    /// dies frees its slots after this).
    #[arg(long, env = "HTTVPS_GATEWAY_SESSION_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub session_lease: Duration,

    /// How long a resume token stays usable after its session's connection is lost.
    #[arg(long, env = "HTTVPS_GATEWAY_RESUME_TTL", default_value = "10m", value_parser = parse_duration)]
    pub resume_ttl: Duration,

    /// Interval of the shared-state work: quota counters, node load, registry heartbeat.
    #[arg(long, env = "HTTVPS_GATEWAY_SHARED_STATE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub shared_state_interval: Duration,

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

    /// Development only, off by default: TCP streams connect to their targets straight from the
    /// gateway, without a Shadowsocks node (UDP streams are refused). Refused together with a
    /// control plane unless `--dev-allow-direct-with-control-plane` is given too.
    #[arg(long, env = "HTTVPS_GATEWAY_DEV_DIRECT_UPSTREAM")]
    pub dev_direct_upstream: bool,

    /// Development only: allow `--dev-direct-upstream` together with `--control-plane-url`.
    #[arg(long, env = "HTTVPS_GATEWAY_DEV_ALLOW_DIRECT_WITH_CONTROL_PLANE")]
    pub dev_allow_direct_with_control_plane: bool,

    /// Idle pre-warmed TCP connections kept per recently used node (handshake done, nothing
    /// sent), so a stream open skips the TCP connect; 0 turns the pool off. At most 64.
    #[arg(long, env = "HTTVPS_GATEWAY_NODE_PREWARM", default_value_t = 2)]
    pub node_prewarm: usize,

    /// A pre-warmed connection unused this long is closed, and a node unused this long is no
    /// longer pre-warmed.
    #[arg(long, env = "HTTVPS_GATEWAY_NODE_PREWARM_IDLE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub node_prewarm_idle_timeout: Duration,

    /// Time a client has after the upgrade to send a complete HELLO.
    #[arg(long, env = "HTTVPS_GATEWAY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// A connection that fails before a valid HELLO (timeout, bad input, refused credentials)
    /// gets no error text and is closed after a random delay between a tenth of this and this.
    #[arg(long, env = "HTTVPS_GATEWAY_UNAUTHENTICATED_CLOSE_DELAY", default_value = "10s", value_parser = parse_duration)]
    pub unauthenticated_close_delay: Duration,

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

    /// Live sessions this gateway holds at most (0 = no cap): a HELLO beyond gets HELLO_ERROR
    /// `internal` with a retry hint, before the device is checked.
    #[arg(long, env = "HTTVPS_GATEWAY_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,

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

    /// Plain-HTTP listener for a front (nginx terminating TLS and proxying the secret path):
    /// `IP:PORT` or `unix:/path/to/socket`; empty disables it. Never expose it publicly.
    #[arg(long, env = "HTTVPS_GATEWAY_PLAIN_LISTEN", default_value = "")]
    pub plain_listen: ListenAddr,

    /// The plain listener requires a PROXY protocol header (v1 or v2) on every connection,
    /// accepted only from `--trusted-proxies` (and unix-socket peers).
    #[arg(long, env = "HTTVPS_GATEWAY_PROXY_PROTOCOL")]
    pub proxy_protocol: bool,

    /// Peers of the plain listener (CIDRs, comma separated) whose PROXY header or
    /// `X-Forwarded-For`/`X-Real-IP` names the client's address; unix-socket peers are always
    /// trusted. Other peers' forwarding headers are ignored and their PROXY headers refused.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_cidr
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Development only: accept a short or well-known `--path` (e.g. `/httvps`), which one
    /// probe finds.
    #[arg(long, env = "HTTVPS_GATEWAY_DEV_ALLOW_WEAK_PATH")]
    pub dev_allow_weak_path: bool,
}

/// Where a listener binds: off, a TCP address, or a unix socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ListenAddr {
    /// No listener (the empty string).
    #[default]
    Off,
    /// `IP:PORT`.
    Tcp(SocketAddr),
    /// `unix:/path/to/socket`.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Whether a listener is configured.
    pub fn is_on(&self) -> bool {
        *self != ListenAddr::Off
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(ListenAddr::Off);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("{text:?} is not IP:PORT, unix:/path or empty"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Off => f.write_str("off"),
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A CIDR (`10.0.0.0/8`, `::1/128`) or a single address.
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR like 10.0.0.0/8 or an address"))
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
        config.control_plane_token_file = None;
        config.config_file = None;
        config.redis_url = None;
        config.gateway_id = None;
        config.usage_spool = None;
        config.dev_direct_upstream = false;
        config.dev_allow_direct_with_control_plane = false;
        config.decoy_dir = None;
        config.fallback = None;
        config.fallback_raw = None;
        config.subprotocol = None;
        config.dev_allow_weak_path = false;
        config.proxy_protocol = false;
        config.acme_domain = Vec::new();
        config.acme_contact = Vec::new();
        config.acme_directory_ca = None;
        config
    }
}

impl GatewayConfig {
    /// The ACME settings, when `--acme-domain` is set.
    pub fn acme(&self) -> Option<crate::tls::acme::AcmeSettings> {
        (!self.acme_domain.is_empty()).then(|| crate::tls::acme::AcmeSettings {
            domains: self.acme_domain.clone(),
            directory: self.acme_directory.clone(),
            contact: self.acme_contact.clone(),
            cache_dir: self.acme_cache_dir.clone(),
            directory_ca: self.acme_directory_ca.clone(),
        })
    }

    /// Reads the configuration of the process: its arguments, the environment, and the file
    /// named by `--config` / `HTTVPS_GATEWAY_CONFIG`. Exits on `--help`/`--version` and on
    /// malformed flags, like any clap program.
    pub fn load() -> Result<Self, GatewayError> {
        Self::load_from(std::env::args_os())
    }

    /// [`Self::load`] with explicit arguments (the first is the program name).
    pub fn load_from<I, T>(args: I) -> Result<Self, GatewayError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = Self::command();
        let matches = command.clone().get_matches_from(args.clone());
        let mut file_token = None;
        if let Some(path) = matches.get_one::<PathBuf>("config_file") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Config(format!("reading {}: {e}", path.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| GatewayError::Config(format!("parsing {}: {e}", path.display())))?;
            for (key, value) in table {
                let id = key.replace('-', "_");
                if id == "control_plane_token" {
                    file_token = Some(scalar(&key, &value)?);
                    continue;
                }
                let arg = command
                    .get_arguments()
                    .find(|a| {
                        id != "config_file"
                            && (a.get_id().as_str() == id
                                || a.get_long().is_some_and(|l| l.replace('-', "_") == id))
                    })
                    .ok_or_else(|| {
                        GatewayError::Config(format!("{}: unknown setting {key:?}", path.display()))
                    })?;
                let arg_id = arg.get_id().as_str().to_owned();
                let explicit = matches!(
                    matches.value_source(&arg_id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                );
                if explicit {
                    continue;
                }
                let Some(long) = arg.get_long() else {
                    continue;
                };
                match &value {
                    toml::Value::Boolean(true) => args.push(format!("--{long}").into()),
                    toml::Value::Boolean(false) => {}
                    toml::Value::Array(items) => {
                        let items: Result<Vec<String>, _> =
                            items.iter().map(|v| scalar(&key, v)).collect();
                        args.push(format!("--{long}={}", items?.join(",")).into());
                    }
                    other => args.push(format!("--{long}={}", scalar(&key, other)?).into()),
                }
            }
        }
        let mut config =
            Self::try_parse_from(args).map_err(|e| GatewayError::Config(e.to_string()))?;
        config.control_plane_token = match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
            _ => match &config.control_plane_token_file {
                Some(path) => {
                    let t = std::fs::read_to_string(path).map_err(|e| {
                        GatewayError::Config(format!("reading {}: {e}", path.display()))
                    })?;
                    Some(Secret::new(t.trim()))
                }
                None => file_token.map(Secret::new),
            },
        };
        Ok(config)
    }

    /// The entitlement cache's bounds.
    pub fn cache_limits(&self) -> CacheLimits {
        CacheLimits {
            positive_entries: self.entitlement_cache_entries,
            positive_ttl_max: self.entitlement_cache_ttl,
            negative_entries: self.denial_cache_entries,
            negative_ttl_max: self.denial_cache_ttl,
        }
    }

    /// Checks values that clap cannot (ranges, relations between values).
    pub fn validate(&self) -> Result<(), GatewayError> {
        self.advertised_limits()
            .validate()
            .map_err(|e| GatewayError::Config(format!("advertised limits: {e}")))?;
        crate::secret_path::validate(&self.path, self.dev_allow_weak_path)
            .map_err(|e| GatewayError::Config(format!("--path: {e}")))?;
        if !self.listen.is_on() && !self.plain_listen.is_on() {
            return Err(GatewayError::Config(
                "no listener: set --listen (TLS) or --plain-listen (behind a front), or both"
                    .into(),
            ));
        }
        if matches!(self.listen, ListenAddr::Unix(_)) {
            return Err(GatewayError::Config(
                "--listen (TLS) takes IP:PORT; a unix socket is for --plain-listen".into(),
            ));
        }
        if self.proxy_protocol && !self.plain_listen.is_on() {
            return Err(GatewayError::Config(
                "--proxy-protocol applies to --plain-listen, which is not set".into(),
            ));
        }
        if self.decoy_dir.is_some() {
            return Err(GatewayError::Config(
                "--decoy-dir (HTTVPS_GATEWAY_DECOY_DIR) was removed: serve the site with a local \
                 web server (nginx) and point --fallback (and --fallback-raw) at it"
                    .into(),
            ));
        }
        if matches!(self.fallback_raw, Some(FallbackAddr::Tls(_))) {
            return Err(GatewayError::Config(
                "--fallback-raw relays raw TCP bytes to a TLS port: give it host:port or \
                 unix:/path, not tls://"
                    .into(),
            ));
        }
        if self.subprotocol.as_deref().is_some_and(|p| !is_token(p)) {
            return Err(GatewayError::Config(
                "--subprotocol must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)".into(),
            ));
        }
        if self.tls_handshake_timeout.is_zero()
            || self.client_header_timeout.is_zero()
            || self.keepalive_timeout.is_zero()
            || self.client_body_timeout.is_zero()
            || self.fallback_connect_timeout.is_zero()
        {
            return Err(GatewayError::Config(
                "--tls-handshake-timeout, --client-header-timeout, --keepalive-timeout, \
                 --client-body-timeout and --fallback-connect-timeout must be above zero"
                    .into(),
            ));
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.fallback_max_connections == 0
        {
            return Err(GatewayError::Config(
                "--max-connections, --max-connections-per-ip and --fallback-max-connections \
                 must be at least 1"
                    .into(),
            ));
        }
        if self.unauthenticated_close_delay > Duration::from_secs(60) {
            return Err(GatewayError::Config(
                "--unauthenticated-close-delay must be at most 60 s (each waiting connection holds a socket)".into(),
            ));
        }
        if self.ws_ping_interval.is_zero() || self.ws_ping_interval > Duration::from_secs(30) {
            return Err(GatewayError::Config(
                "--ws-ping-interval must be between 0 and 30 s".into(),
            ));
        }
        if self.session_heartbeat_interval.is_zero()
            || self.usage_report_interval.is_zero()
            || self.registry_heartbeat_interval.is_zero()
        {
            return Err(GatewayError::Config(
                "heartbeat and usage intervals must be above zero".into(),
            ));
        }
        if self
            .control_plane_token
            .as_ref()
            .is_some_and(|t| t.expose().is_empty())
        {
            return Err(GatewayError::Config(
                "the control-plane token is empty".into(),
            ));
        }
        if self.dev_direct_upstream
            && self.control_plane_url.is_some()
            && !self.dev_allow_direct_with_control_plane
        {
            return Err(GatewayError::Config(
                "--dev-direct-upstream is a development option: it is refused with \
                 --control-plane-url unless --dev-allow-direct-with-control-plane is given"
                    .into(),
            ));
        }
        if self.shared_state_interval.is_zero()
            || self.session_lease < self.shared_state_interval * 3
            || self.resume_ttl < self.session_lease
        {
            return Err(GatewayError::Config(
                "--shared-state-interval must be above zero, --session-lease at least three \
                 intervals and --resume-ttl at least one lease"
                    .into(),
            ));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(GatewayError::Config(
                "--redis-prefix must be non-empty, without spaces".into(),
            ));
        }
        if self.node_prewarm > 64 {
            return Err(GatewayError::Config("--node-prewarm is at most 64".into()));
        }
        if self.node_prewarm > 0 && self.node_prewarm_idle_timeout.is_zero() {
            return Err(GatewayError::Config(
                "--node-prewarm-idle-timeout must be above zero".into(),
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

/// What new HELLOs get while Redis is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisDownPolicy {
    /// Admit against this gateway's own counts.
    Local,
    /// Refuse with HELLO_ERROR `internal` and a retry delay.
    Refuse,
}

/// Where a fallback web server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackAddr {
    /// `host:port` (resolved at each connect).
    Tcp(String),
    /// `unix:/path` of a unix socket.
    Unix(PathBuf),
    /// `tls://host:port`: a TLS listener, the gateway its TLS client (`--fallback` only).
    Tls(String),
}

impl std::str::FromStr for FallbackAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/nginx/site.sock".into());
            }
            return Ok(FallbackAddr::Unix(PathBuf::from(path)));
        }
        let (text, tls) = match text.strip_prefix("tls://") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let port_ok = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(format!(
                "{text:?} is neither host:port, tls://host:port nor unix:/path \
                 (e.g. tls://127.0.0.1:8443)"
            ));
        }
        if tls {
            return Ok(FallbackAddr::Tls(text.to_owned()));
        }
        Ok(FallbackAddr::Tcp(text.to_owned()))
    }
}

impl std::fmt::Display for FallbackAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FallbackAddr::Tcp(addr) => f.write_str(addr),
            FallbackAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            FallbackAddr::Tls(addr) => write!(f, "tls://{addr}"),
        }
    }
}

/// An HTTP token (RFC 9110 §5.6.2), as a subprotocol name must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A TOML scalar as the text a flag would carry.
fn scalar(key: &str, value: &toml::Value) -> Result<String, GatewayError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(GatewayError::Config(format!(
            "{key}: expected a string, number or boolean"
        ))),
    }
}

/// An address that may be switched off. An alias rather than `Option<SocketAddr>` written out,
/// so clap hands the whole value to [`parse_optional_addr`] (for an `Option` field it would
/// parse a `SocketAddr` and refuse the empty value that means "off").
pub type OptionalAddr = Option<SocketAddr>;

/// Parses a listen address; empty (or blank) means none.
pub fn parse_optional_addr(text: &str) -> Result<OptionalAddr, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        format!("{text:?} is not an address like 127.0.0.1:9464 (or empty for none): {e}")
    })
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
    fn an_empty_metrics_listen_disables_the_listener() {
        let default = GatewayConfig::load_from(["gw"]).unwrap();
        assert!(default.metrics_listen.is_some());
        let off = GatewayConfig::try_parse_from(["gw", "--metrics-listen", ""]).unwrap();
        assert_eq!(off.metrics_listen, None);
        let set = GatewayConfig::try_parse_from(["gw", "--metrics-listen", "127.0.0.1:9999"]);
        assert_eq!(
            set.unwrap().metrics_listen,
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert!(GatewayConfig::try_parse_from(["gw", "--metrics-listen", "nonsense"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, "metrics_listen = \"\"\n").unwrap();
        let from_file = GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]);
        assert_eq!(from_file.unwrap().metrics_listen, None);
    }

    #[test]
    fn acme_settings_from_file_and_flags() {
        let off = GatewayConfig::load_from(["gw"]).unwrap();
        if std::env::var("HTTVPS_GATEWAY_ACME_DOMAIN").is_err() {
            assert!(off.acme().is_none(), "ACME is off without a domain");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(
            &path,
            "acme-domain = [\"vpn.example.org\", \"www.example.org\"]\n\
             acme_contact = \"mailto:ops@example.org\"\nacme_cache_dir = \"/srv/acme\"\n",
        )
        .unwrap();
        let config = GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]).unwrap();
        let acme = config.acme().unwrap();
        assert_eq!(acme.domains, ["vpn.example.org", "www.example.org"]);
        assert_eq!(acme.contact, ["mailto:ops@example.org"]);
        assert_eq!(acme.cache_dir, PathBuf::from("/srv/acme"));
        assert_eq!(acme.directory, crate::tls::acme::LETS_ENCRYPT_DIRECTORY);
        assert!(acme.directory_ca.is_none());
        let both = GatewayConfig::try_parse_from([
            "gw",
            "--acme-domain",
            "vpn.example.org",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        assert!(both.is_err(), "ACME conflicts with certificate files");
    }

    #[test]
    fn file_values_apply_below_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(
            &path,
            "max-streams = 77\nidle_timeout = \"3s\"\nallow-private-targets = true\n\
             node = [\"ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwYXNz@127.0.0.1:8388#a\"]\n\
             control_plane_token = \"from-file\"\nusage_report_interval = \"2s\"\n",
        )
        .unwrap();
        let config = GatewayConfig::load_from([
            "gw",
            "--config",
            path.to_str().unwrap(),
            "--max-streams",
            "5",
        ])
        .unwrap();
        assert_eq!(config.max_streams, 5, "the flag wins");
        assert_eq!(config.idle_timeout, Duration::from_secs(3));
        assert_eq!(config.usage_report_interval, Duration::from_secs(2));
        assert!(config.allow_private_targets);
        assert_eq!(config.nodes.len(), 1);
        if std::env::var(TOKEN_ENV).is_err() {
            assert_eq!(config.control_plane_token.unwrap().expose(), "from-file");
        }
        std::fs::write(&path, "no_such_setting = 1\n").unwrap();
        assert!(GatewayConfig::load_from(["gw", "--config", path.to_str().unwrap()]).is_err());
    }

    #[test]
    fn the_direct_upstream_is_off_by_default_and_refused_with_a_control_plane() {
        let config = GatewayConfig::default();
        assert!(!config.dev_direct_upstream, "off by default");
        assert!(!config.dev_allow_direct_with_control_plane);
        let parsed = GatewayConfig::load_from(["gw"]).unwrap();
        if std::env::var("HTTVPS_GATEWAY_DEV_DIRECT_UPSTREAM").is_err() {
            assert!(!parsed.dev_direct_upstream, "off without the flag");
        }
        let direct =
            GatewayConfig::load_from(["gw", "--path", STRONG_PATH, "--dev-direct-upstream"])
                .unwrap();
        assert!(direct.dev_direct_upstream);
        direct.validate().unwrap();
        let with_cp = GatewayConfig::load_from([
            "gw",
            "--path",
            STRONG_PATH,
            "--dev-direct-upstream",
            "--control-plane-url",
            "http://127.0.0.1:8080/",
        ])
        .unwrap();
        let err = with_cp.validate().unwrap_err().to_string();
        assert!(err.contains("--dev-direct-upstream"), "{err}");
        let allowed = GatewayConfig::load_from([
            "gw",
            "--path",
            STRONG_PATH,
            "--dev-direct-upstream",
            "--dev-allow-direct-with-control-plane",
            "--control-plane-url",
            "http://127.0.0.1:8080/",
        ])
        .unwrap();
        allowed.validate().unwrap();
    }

    /// A path that passes the strength rules.
    const STRONG_PATH: &str = "/Zq3vN8xL2pR7tW1yB5cD9fG4";

    fn valid_config() -> GatewayConfig {
        GatewayConfig {
            path: STRONG_PATH.into(),
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn listeners_and_the_secret_path() {
        let config = GatewayConfig::default();
        assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(config.plain_listen, ListenAddr::Off);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--path") && err.contains("required"), "{err}");
        let weak = GatewayConfig::load_from(["gw", "--path", "/httvps"]).unwrap();
        assert!(weak
            .validate()
            .unwrap_err()
            .to_string()
            .contains("well-known"));
        GatewayConfig::load_from(["gw", "--path", "/httvps", "--dev-allow-weak-path"])
            .unwrap()
            .validate()
            .unwrap();
        let fronted = GatewayConfig::load_from([
            "gw",
            "--path",
            STRONG_PATH,
            "--listen",
            "",
            "--plain-listen",
            "unix:/run/httvps/gw.sock",
            "--proxy-protocol",
            "--trusted-proxies",
            "10.0.0.0/8,192.0.2.7",
        ])
        .unwrap();
        assert_eq!(fronted.listen, ListenAddr::Off);
        assert_eq!(
            fronted.plain_listen,
            ListenAddr::Unix("/run/httvps/gw.sock".into())
        );
        assert_eq!(fronted.trusted_proxies.len(), 2);
        fronted.validate().unwrap();
        let none = GatewayConfig {
            listen: ListenAddr::Off,
            ..valid_config()
        };
        assert!(none
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no listener"));
        let proxy_without_plain = GatewayConfig {
            proxy_protocol: true,
            ..valid_config()
        };
        assert!(proxy_without_plain.validate().is_err());
        // (load_from exits on a malformed flag, like any clap program.)
        assert!(GatewayConfig::try_parse_from(["gw", "--trusted-proxies", "10.0.0.0/33"]).is_err());
        assert!(GatewayConfig::try_parse_from(["gw", "--plain-listen", "localhost"]).is_err());
    }

    #[test]
    fn prewarm_is_bounded() {
        let mut config = valid_config();
        assert_eq!(config.node_prewarm, 2);
        config.node_prewarm = 65;
        assert!(config.validate().is_err());
        config.node_prewarm = 0;
        config.node_prewarm_idle_timeout = Duration::ZERO;
        config.validate().unwrap();
    }

    #[test]
    fn fallback_addresses_and_removed_settings() {
        assert_eq!(
            "127.0.0.1:8080".parse::<FallbackAddr>(),
            Ok(FallbackAddr::Tcp("127.0.0.1:8080".into()))
        );
        assert_eq!(
            "unix:/run/site.sock".parse::<FallbackAddr>(),
            Ok(FallbackAddr::Unix("/run/site.sock".into()))
        );
        assert_eq!(
            "tls://127.0.0.1:8443".parse::<FallbackAddr>(),
            Ok(FallbackAddr::Tls("127.0.0.1:8443".into()))
        );
        assert_eq!(
            FallbackAddr::Tls("127.0.0.1:8443".into()).to_string(),
            "tls://127.0.0.1:8443"
        );
        for bad in [
            "nginx",
            "nginx:http",
            ":80",
            "unix:",
            "tls://",
            "tls://nginx",
        ] {
            assert!(bad.parse::<FallbackAddr>().is_err(), "{bad}");
        }
        let flags = GatewayConfig::load_from([
            "gw",
            "--fallback",
            "unix:/run/site.sock",
            "--fallback-raw",
            "127.0.0.1:8444",
            "--subprotocol",
            "x7.v1",
            "--client-header-timeout",
            "30s",
        ])
        .unwrap();
        assert_eq!(
            flags.fallback,
            Some(FallbackAddr::Unix("/run/site.sock".into()))
        );
        assert_eq!(
            flags.fallback_raw,
            Some(FallbackAddr::Tcp("127.0.0.1:8444".into()))
        );
        assert_eq!(flags.subprotocol.as_deref(), Some("x7.v1"));
        assert_eq!(flags.client_header_timeout, Duration::from_secs(30));
        let mut config = GatewayConfig {
            decoy_dir: Some("/srv/site".into()),
            ..valid_config()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--fallback"), "{err}");
        config.decoy_dir = None;
        config.subprotocol = Some("bad token".into());
        assert!(config.validate().is_err());
        config.subprotocol = Some("x7.v1".into());
        config.validate().unwrap();
        config.fallback_raw = Some(FallbackAddr::Tls("127.0.0.1:8443".into()));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--fallback-raw"), "{err}");
        config.fallback_raw = None;
        config.validate().unwrap();
    }

    #[test]
    fn nginx_timeouts_are_the_defaults() {
        let config = GatewayConfig::default();
        assert_eq!(config.tls_handshake_timeout, Duration::from_secs(60));
        assert_eq!(config.client_header_timeout, Duration::from_secs(60));
        assert_eq!(config.keepalive_timeout, Duration::from_secs(75));
        assert_eq!(config.client_body_timeout, Duration::from_secs(60));
        assert_eq!(
            config.handshake_timeout,
            Duration::from_secs(10),
            "HELLO stays apart"
        );
    }

    #[test]
    fn defaults_with_a_path_are_valid() {
        let config = valid_config();
        config.validate().unwrap();
        assert_eq!(config.max_message_size(), 6 + 32_768);
    }
}
