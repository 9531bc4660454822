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

    /// Interval of the gateway registry heartbeat (with the version). The control plane ends
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
        config.control_plane_token_file = None;
        config.config_file = None;
        config.redis_url = None;
        config.gateway_id = None;
        config.usage_spool = None;
        config.dev_direct_upstream = false;
        config.dev_allow_direct_with_control_plane = false;
        config
    }
}

impl GatewayConfig {
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
        let direct = GatewayConfig::load_from(["gw", "--dev-direct-upstream"]).unwrap();
        assert!(direct.dev_direct_upstream);
        direct.validate().unwrap();
        let with_cp = GatewayConfig::load_from([
            "gw",
            "--dev-direct-upstream",
            "--control-plane-url",
            "http://127.0.0.1:8080/",
        ])
        .unwrap();
        let err = with_cp.validate().unwrap_err().to_string();
        assert!(err.contains("--dev-direct-upstream"), "{err}");
        let allowed = GatewayConfig::load_from([
            "gw",
            "--dev-direct-upstream",
            "--dev-allow-direct-with-control-plane",
            "--control-plane-url",
            "http://127.0.0.1:8080/",
        ])
        .unwrap();
        allowed.validate().unwrap();
    }

    #[test]
    fn prewarm_is_bounded() {
        let mut config = GatewayConfig::default();
        assert_eq!(config.node_prewarm, 2);
        config.node_prewarm = 65;
        assert!(config.validate().is_err());
        config.node_prewarm = 0;
        config.node_prewarm_idle_timeout = Duration::ZERO;
        config.validate().unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        let config = GatewayConfig::default();
        config.validate().unwrap();
        assert_eq!(config.max_message_size(), 6 + 32_768);
    }
}
