//! Settings of the control-plane service: flags, each with an environment variable and a
//! documented default (see `.env.example`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Which node-assignment strategy the service uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AssignStrategy {
    /// Random, in proportion to node weights.
    Weighted,
    /// The node with the lowest live load relative to its capacity.
    LeastConnections,
}

// Every setting spells out its own `#[arg(long, env = ..)]` and doc: clap's derive reads them
// per field, so this flag table repeats one shape by design (as the gateway's `GatewayConfig`).
/// `serve` settings.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address the REST API listens on.
    #[arg(long, env = "HTTVPS_CP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `postgres://...` or `sqlite:path` (created if missing).
    /// (`--help` never shows the environment's value: it may hold a password.)
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:httvps-control-plane.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Secret for admin session tokens (at least 32 bytes). Replicas must share it. When unset a
    /// random secret is generated, so admin sessions do not survive a restart.
    #[arg(long, env = "HTTVPS_CP_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Reverse proxies in front of the service (comma-separated addresses or blocks,
    /// `10.0.0.0/8,192.0.2.7`). Only from them is `X-Forwarded-For` believed, to find the
    /// client's address that login lockouts, the bad-token limit and gateway token allow-lists
    /// use; empty = the connecting address is the client.
    #[arg(long, env = "HTTVPS_CP_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::http::client::parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Longest wait the per-account login backoff imposes (`30s`): after 3 failed logins of an
    /// account in a row, from any address, each next attempt waits 1 s, 2 s, 4 s, ... up to this.
    #[arg(long, env = "HTTVPS_CP_LOGIN_BACKOFF_MAX", default_value = "30s", value_parser = parse_duration)]
    pub login_backoff_max: Duration,

    /// Lifetime of an admin session token, in seconds.
    #[arg(long, env = "HTTVPS_CP_JWT_TTL_SECS", default_value_t = 900)]
    pub jwt_ttl_secs: u64,

    /// Public addresses of the gateways for connection links: `host:port/path`, or a
    /// comma-separated list of them, each optionally preceded by its region code
    /// (`eu=vpn-eu.example.com/p,us=vpn-us.example.com/p`). A device gets one link per entry
    /// (those of regions its plan excludes left out); the first is the link shown at creation.
    #[arg(
        long,
        env = "HTTVPS_CP_PUBLIC_GATEWAY",
        default_value = "127.0.0.1:8443/httvps"
    )]
    pub public_gateway: String,

    /// Where clients reach this control plane's public routes, for subscription URLs
    /// (`https://cp.example.com`); default `http://` and the listen address.
    #[arg(long, env = "HTTVPS_CP_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Key sealing device tokens at rest so links can be shown again: 32 bytes as 64 hex digits
    /// or base64 (`openssl rand -hex 32`). Replicas must share it. Unset: the key file below.
    #[arg(long, env = "HTTVPS_CP_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// File holding that key, created with a new key when missing. Unset, with an SQLite
    /// database: `<database file>.key`; with PostgreSQL: no key, and links are shown only once.
    #[arg(long, env = "HTTVPS_CP_SECRET_KEY_FILE")]
    pub secret_key_file: Option<std::path::PathBuf>,

    /// Subscription URL fetches allowed per token per minute (`GET /sub/{token}`); more get 429
    /// with Retry-After.
    #[arg(
        long,
        env = "HTTVPS_CP_SUBSCRIPTION_RATE_PER_TOKEN",
        default_value_t = 10
    )]
    pub subscription_rate_per_token: u32,

    /// Subscription URL fetches allowed per client address per minute, whatever the token.
    #[arg(
        long,
        env = "HTTVPS_CP_SUBSCRIPTION_RATE_PER_ADDRESS",
        default_value_t = 30
    )]
    pub subscription_rate_per_address: u32,

    /// SHA-256 (hex) of the gateways' certificate, put in links so clients pin it.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_CERT_SHA256")]
    pub gateway_cert_sha256: Option<String>,

    /// TLS server name to put in links when the public gateway address is an IP.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_SNI")]
    pub gateway_sni: Option<String>,

    /// The gateways' per-deployment WebSocket subprotocol token, put in links (`proto=`) so
    /// clients offer it; unset when the gateways require none.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_SUBPROTOCOL")]
    pub gateway_subprotocol: Option<String>,

    /// How long gateways may cache an allow decision, in seconds.
    #[arg(long, env = "HTTVPS_CP_ENTITLEMENT_TTL_SECS", default_value_t = 60)]
    pub entitlement_ttl_secs: u64,

    /// How long gateways may cache a deny decision, in seconds.
    #[arg(long, env = "HTTVPS_CP_DENIAL_TTL_SECS", default_value_t = 10)]
    pub denial_ttl_secs: u64,

    /// How long this process keeps device-validation answers and verified gateway tokens, in
    /// seconds; 0 turns the cache off. Changes made here drop them at once (see
    /// docs/operations.md for other replicas).
    #[arg(long, env = "HTTVPS_CP_VALIDATION_CACHE_TTL_SECS", default_value_t = 5)]
    pub validation_cache_ttl_secs: u64,

    /// How often devices' last-seen times are written, in seconds (and at shutdown).
    #[arg(long, env = "HTTVPS_CP_LAST_SEEN_FLUSH_SECS", default_value_t = 5)]
    pub last_seen_flush_secs: u64,

    /// Node assignment strategy.
    #[arg(
        long,
        env = "HTTVPS_CP_ASSIGN_STRATEGY",
        value_enum,
        default_value = "least-connections"
    )]
    pub assign_strategy: AssignStrategy,

    /// Seconds between node health checks (0 disables the checker).
    #[arg(long, env = "HTTVPS_CP_HEALTH_INTERVAL_SECS", default_value_t = 10)]
    pub health_interval_secs: u64,

    /// Consecutive failed probes before a node is unhealthy.
    #[arg(long, env = "HTTVPS_CP_UNHEALTHY_AFTER", default_value_t = 3)]
    pub unhealthy_after: u32,

    /// Consecutive good probes before a node is healthy.
    #[arg(long, env = "HTTVPS_CP_HEALTHY_AFTER", default_value_t = 2)]
    pub healthy_after: u32,

    /// Timeout of one probe, in milliseconds.
    #[arg(long, env = "HTTVPS_CP_PROBE_TIMEOUT_MS", default_value_t = 5000)]
    pub probe_timeout_ms: u64,

    /// Where probes connect through each node (`host:port`, answered with an HTTP HEAD).
    #[arg(
        long,
        env = "HTTVPS_CP_PROBE_TARGET",
        default_value = "www.gstatic.com:80"
    )]
    pub probe_target: String,

    /// Sessions moved off failed nodes at most at once (across the pool).
    #[arg(long, env = "HTTVPS_CP_MAX_MIGRATIONS", default_value_t = 100)]
    pub max_migrations_in_flight: usize,

    /// A session without a gateway heartbeat for this long is ended, in seconds.
    #[arg(long, env = "HTTVPS_CP_SESSION_STALE_SECS", default_value_t = 180)]
    pub session_stale_secs: u64,

    /// A gateway without a registry heartbeat for this long counts as lost (crashed), and its
    /// live sessions are ended, in seconds (0: only the per-session staleness above applies).
    /// At least three of the gateways' `--registry-heartbeat-interval`.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_STALE_SECS", default_value_t = 30)]
    pub gateway_stale_secs: u64,

    /// Seconds between runs of the periodic jobs (roll-ups, expiry, stale sessions).
    #[arg(long, env = "HTTVPS_CP_JOB_INTERVAL_SECS", default_value_t = 30)]
    pub job_interval_secs: u64,

    /// Lifetime of the leader lease (`30s`): with several replicas on one database, the one
    /// holding it runs the health checks and maintenance and renews it every third of this;
    /// when it dies another takes over within this time.
    #[arg(long, env = "HTTVPS_CP_LEADER_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub leader_lease: Duration,

    /// Longest a request may take, reading its body included (`30s`); a slower one gets a 408
    /// problem document.
    #[arg(long, env = "HTTVPS_CP_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Requests in progress at most; one more gets a 503 problem document with Retry-After.
    #[arg(
        long,
        env = "HTTVPS_CP_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,

    /// Largest request body, in bytes.
    #[arg(long, env = "HTTVPS_CP_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Database connections at most.
    #[arg(long, env = "HTTVPS_CP_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Redis the gateways share state through (`redis://`, `rediss://`). With it, revocations
    /// and kills reach every gateway at once, `/v1/admin/gateways/live` lists the gateways and
    /// least-connections ranks nodes by their live streams. Without it that state lives in this
    /// process and gateways learn of changes from their session heartbeats.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and of the event channel: the gateways' `--redis-prefix`.
    #[arg(long, env = "HTTVPS_CP_REDIS_PREFIX", default_value = "httvps")]
    pub redis_prefix: String,

    /// Longest wait for one Redis operation (`500ms`, `2s`).
    #[arg(long, env = "HTTVPS_CP_REDIS_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// How long a revocation marker blocks session resumes (`1h`, `90m`). Must be at least the
    /// gateways' resume-token lifetime (`--resume-ttl`), or a token outlives its revocation.
    #[arg(long, env = "HTTVPS_CP_REVOCATION_TTL", default_value = "1h", value_parser = parse_duration)]
    pub revocation_ttl: Duration,

    /// How long a device's sticky node is kept in the shared store (`24h`).
    #[arg(long, env = "HTTVPS_CP_STICKY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub sticky_ttl: Duration,

    /// Log as JSON lines.
    #[arg(long, env = "HTTVPS_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Parses a duration above zero: `500ms`, `30s`, `10m`, `1h`, `1d`, `1h 30m` (humantime's
/// syntax) in whole numbers; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    // humantime takes fractions (`1.5h`); the settings never did, and a typo should not pass.
    if t.contains('.') {
        return Err(format!("{text:?}: use whole numbers, e.g. 90m for 1.5h"));
    }
    let duration = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            format!("{text:?} is not a duration like 500ms, 30s, 10m, 1h or 1d: {e}")
        })?,
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: the duration must be above zero"));
    }
    Ok(duration)
}

impl ServeConfig {
    /// Defaults for an embedded or test instance on `database_url`.
    pub fn for_database(database_url: &str) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServeConfig,
        }
        let mut config = Wrapper::parse_from(["httvps-control-plane"]).config;
        config.database_url = database_url.to_owned();
        config
    }

    pub fn health_interval(&self) -> Option<Duration> {
        (self.health_interval_secs > 0).then(|| Duration::from_secs(self.health_interval_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
    }

    #[test]
    fn shared_state_defaults() {
        let c = ServeConfig::for_database("sqlite::memory:");
        assert_eq!(c.redis_prefix, "httvps");
        assert_eq!(c.revocation_ttl, Duration::from_secs(3600));
        assert_eq!(c.sticky_ttl, Duration::from_secs(86_400));
    }
}
