//! Composition: the whole gateway wired on one screen.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use httvps_proto::SessionConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::authority::DeviceAuthority;
use crate::decoy::DecoySite;
use crate::rate_limit::FailureLimiter;
use crate::stats::GatewayStats;
use crate::tls::TlsSource;
use crate::upstream::{NodeSource, TargetPolicy, Upstreams};
use crate::{listener, GatewayConfig, GatewayError};

/// State every connection and session of one gateway shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: GatewayConfig,
    /// Protocol settings of every session (from the configuration).
    pub session_config: SessionConfig,
    /// Who may connect.
    pub authority: Arc<dyn DeviceAuthority>,
    /// How streams reach their targets.
    pub upstreams: Arc<Upstreams>,
    /// Failed HELLOs per source address.
    pub ip_failures: FailureLimiter<IpAddr>,
    /// Failed HELLOs per device id.
    pub device_failures: FailureLimiter<String>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    /// Cancelled when the gateway starts draining (SIGTERM).
    pub drain: CancellationToken,
    /// The camouflage site.
    pub decoy: DecoySite,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    local_addr: SocketAddr,
    tls: Arc<TlsSource>,
    shared: Arc<Shared>,
    tasks: TaskTracker,
    stop_accepting: CancellationToken,
    stop_background: CancellationToken,
}

impl Gateway {
    /// Binds the listener and starts serving.
    pub async fn start(
        config: GatewayConfig,
        tls: Arc<TlsSource>,
        authority: Arc<dyn DeviceAuthority>,
        nodes: Arc<dyn NodeSource>,
    ) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| GatewayError::io(format!("binding {}", config.listen), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| GatewayError::io("reading the listener address", e))?;
        let upstreams = Arc::new(Upstreams::new(
            nodes,
            TargetPolicy::new(config.allow_private_targets),
            config.connect_timeout,
        ));
        let shared = Arc::new(Shared {
            session_config: config.session_config(),
            authority,
            upstreams,
            ip_failures: FailureLimiter::new(
                config.hello_failures_per_ip,
                config.hello_failure_window,
                config.rate_limit_entries,
            ),
            device_failures: FailureLimiter::new(
                config.hello_failures_per_device,
                config.hello_failure_window,
                config.rate_limit_entries,
            ),
            stats: Arc::new(GatewayStats::default()),
            drain: CancellationToken::new(),
            decoy: DecoySite::new(config.decoy_dir.clone(), config.server_header.clone()),
            config,
        });
        let tasks = TaskTracker::new();
        let stop_accepting = CancellationToken::new();
        let stop_background = CancellationToken::new();
        tls.clone()
            .spawn_reloader(shared.config.tls_reload_interval, stop_background.clone());
        tokio::spawn(listener::accept_loop(
            listener,
            tls.clone(),
            shared.clone(),
            tasks.clone(),
            stop_accepting.clone(),
        ));
        tracing::info!(
            listen = %local_addr,
            fingerprint = %tls.fingerprint(),
            self_signed = tls.is_self_signed(),
            "gateway listening"
        );
        Ok(Gateway {
            local_addr,
            tls,
            shared,
            tasks,
            stop_accepting,
            stop_background,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 fingerprint of the current certificate (hex).
    pub fn fingerprint(&self) -> String {
        self.tls.fingerprint()
    }

    /// Counters of this gateway.
    pub fn stats(&self) -> Arc<GatewayStats> {
        self.shared.stats.clone()
    }

    /// Graceful shutdown (SPEC §9.3): stop accepting, GOAWAY `shutting_down` to every session,
    /// let streams finish for the configured grace period, then end what remains.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        self.shared.drain.cancel();
        let grace = self.shared.config.shutdown_grace;
        self.tasks.close();
        // Sessions close themselves at the grace deadline; the margin covers their close
        // handshakes. Idle keep-alive HTTP connections are simply dropped after it.
        let margin = Duration::from_secs(3);
        if tokio::time::timeout(grace + margin, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after the grace period");
        }
        self.stop_background.cancel();
    }
}
