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

/// `serve` settings.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address the REST API listens on.
    #[arg(long, env = "HTTVPS_CP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `postgres://...` or `sqlite:path` (created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:httvps-control-plane.db"
    )]
    pub database_url: String,

    /// Secret for admin session tokens (at least 32 bytes). Replicas must share it. When unset a
    /// random secret is generated, so admin sessions do not survive a restart.
    #[arg(long, env = "HTTVPS_CP_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of an admin session token, in seconds.
    #[arg(long, env = "HTTVPS_CP_JWT_TTL_SECS", default_value_t = 900)]
    pub jwt_ttl_secs: u64,

    /// Public address of the gateways for connection links: `host:port/path`.
    #[arg(
        long,
        env = "HTTVPS_CP_PUBLIC_GATEWAY",
        default_value = "127.0.0.1:8443/httvps"
    )]
    pub public_gateway: String,

    /// SHA-256 (hex) of the gateways' certificate, put in links so clients pin it.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_CERT_SHA256")]
    pub gateway_cert_sha256: Option<String>,

    /// TLS server name to put in links when the public gateway address is an IP.
    #[arg(long, env = "HTTVPS_CP_GATEWAY_SNI")]
    pub gateway_sni: Option<String>,

    /// How long gateways may cache an allow decision, in seconds.
    #[arg(long, env = "HTTVPS_CP_ENTITLEMENT_TTL_SECS", default_value_t = 60)]
    pub entitlement_ttl_secs: u64,

    /// How long gateways may cache a deny decision, in seconds.
    #[arg(long, env = "HTTVPS_CP_DENIAL_TTL_SECS", default_value_t = 10)]
    pub denial_ttl_secs: u64,

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

    /// Seconds between runs of the periodic jobs (roll-ups, expiry, stale sessions).
    #[arg(long, env = "HTTVPS_CP_JOB_INTERVAL_SECS", default_value_t = 30)]
    pub job_interval_secs: u64,

    /// Largest request body, in bytes.
    #[arg(long, env = "HTTVPS_CP_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Database connections at most.
    #[arg(long, env = "HTTVPS_CP_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Log as JSON lines.
    #[arg(long, env = "HTTVPS_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
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
