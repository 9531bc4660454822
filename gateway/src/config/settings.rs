//! The gateway's settings, one field per flag: its environment variable, its default and its
//! help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::values::{
    parse_cidr, parse_duration, parse_optional_addr, FallbackAddr, ListenAddr, OptionalAddr,
    RedisDownPolicy,
};
use crate::control_plane::Secret;

// Every setting spells out its own `#[arg(long, env = ..)]` and doc: clap's derive reads them
// per field, so this flag table repeats one shape by design (as `ServeConfig` in the control
// plane does).
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

    /// One control-plane call per device check, session start, heartbeat and end instead of
    /// batches (`POST /v1/gateway/devices/validate/batch`, `POST /v1/gateway/sessions/batch`; a
    /// control plane without those routes gets single calls anyway). For comparison, or a proxy
    /// in front of the control plane that refuses them.
    #[arg(
        long,
        env = "HTTVPS_GATEWAY_CONTROL_PLANE_SINGLE_CALLS",
        alias = "control-plane-single-session-calls"
    )]
    pub control_plane_single_calls: bool,

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
