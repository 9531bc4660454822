//! Composition: the whole gateway wired on one screen.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::authority::DeviceAuthority;
use crate::config::ListenAddr;
use crate::control_plane::ControlPlaneClient;
use crate::fallback::Fallback;
use crate::listener::limits::ConnectionLimits;
use crate::rate_limit::FailureLimiter;
use crate::session::{SessionContext, SessionSettings};
use crate::shared::SharedState;
use crate::stats::GatewayStats;
use crate::tls::TlsSource;
use crate::upstream::{NodeSource, Prewarm, TargetPolicy, Upstreams};
use crate::usage::UsageReporter;
use crate::{front, listener, GatewayConfig, GatewayError};

/// State every connection of one gateway shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: GatewayConfig,
    /// What every session shares (the only part a session sees).
    pub sessions: Arc<SessionContext>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    /// Cancelled when the gateway starts draining (SIGTERM).
    pub drain: CancellationToken,
    /// Standalone mode: the web server that answers every connection that is not a session.
    pub fallback: Option<Fallback>,
    /// Standalone mode: the web server's TLS port, for plain bytes sent to the TLS port.
    pub fallback_raw: Option<Fallback>,
    /// Open connections on the public port, in total and per client address.
    pub connection_limits: Arc<ConnectionLimits>,
}

/// What the gateway asks about devices and nodes.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Who may connect (the entitlement cache in production).
    pub authority: Arc<dyn DeviceAuthority>,
    /// Which node a session uses (the control plane in production).
    pub nodes: Arc<dyn NodeSource>,
    /// Session start/heartbeat/end, usage and the registry heartbeat; `None` only in
    /// development.
    pub control_plane: Option<Arc<ControlPlaneClient>>,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    tls_addr: Option<SocketAddr>,
    plain_addr: Option<ListenAddr>,
    tls: Arc<TlsSource>,
    shared: Arc<Shared>,
    tasks: TaskTracker,
    stop_accepting: CancellationToken,
    stop_background: CancellationToken,
    usage_task: Option<tokio::task::JoinHandle<()>>,
    state_task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Binds the listener and starts serving without a control plane (development and data-path
    /// tests: no session registry, no usage reports).
    pub async fn start(
        config: GatewayConfig,
        tls: Arc<TlsSource>,
        authority: Arc<dyn DeviceAuthority>,
        nodes: Arc<dyn NodeSource>,
    ) -> Result<Gateway, GatewayError> {
        Self::start_with(
            config,
            tls,
            Backends {
                authority,
                nodes,
                control_plane: None,
            },
        )
        .await
    }

    /// Binds the listener and starts serving with these backends; with a control plane, also
    /// the usage reporter and the registry heartbeat.
    pub async fn start_with(
        config: GatewayConfig,
        tls: Arc<TlsSource>,
        backends: Backends,
    ) -> Result<Gateway, GatewayError> {
        let Backends {
            authority,
            nodes,
            control_plane,
        } = backends;
        config.validate()?;
        let listener = match &config.listen {
            ListenAddr::Tcp(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| GatewayError::io(format!("binding {addr}"), e))?,
            ),
            _ => None,
        };
        let tls_addr = listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|e| GatewayError::io("reading the listener address", e))?;
        let plain = front::PlainListener::bind(&config.plain_listen).await?;
        let plain_addr = plain.as_ref().map(front::PlainListener::local_addr);
        // The address other gateways see in the shared registry.
        let listen_name = match (&tls_addr, &plain_addr) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(plain)) => plain.to_string(),
            (None, None) => String::new(),
        };
        if config.dev_direct_upstream {
            tracing::warn!(
                "--dev-direct-upstream: TCP streams bypass the Shadowsocks nodes (development only)"
            );
        }
        let upstreams = Arc::new(
            Upstreams::new(
                nodes,
                TargetPolicy::new(config.allow_private_targets),
                config.connect_timeout,
            )
            .with_prewarm(Prewarm::new(
                config.node_prewarm,
                config.node_prewarm_idle_timeout,
                config.connect_timeout,
            ))
            .with_dev_direct_upstream(config.dev_direct_upstream),
        );
        let state = Arc::new(SharedState::from_config(&config)?.with_authority(authority.clone()));
        let fallbacks = fallbacks(&config)
            .map_err(|e| GatewayError::Tls(format!("TLS client of the fallback: {e}")))?;
        if fallbacks.0.is_none() {
            tracing::warn!(
                "no --fallback: requests that are not sessions get a built-in 404 \
                 (development only; standalone production needs a local web server)"
            );
        }
        let session_slots = (config.max_sessions > 0).then(|| {
            metrics::gauge!(crate::metrics::SESSIONS_MAX).set(config.max_sessions as f64);
            Arc::new(Semaphore::new(config.max_sessions))
        });
        let usage = match (control_plane.clone(), &config.usage_spool) {
            (None, _) => None,
            (Some(cp), None) => Some(UsageReporter::new(
                cp,
                config.usage_report_interval,
                config.usage_queue_reports,
            )),
            (Some(cp), Some(path)) => Some(
                UsageReporter::with_spool(
                    cp,
                    config.usage_report_interval,
                    config.usage_queue_reports,
                    path,
                )
                .map_err(|e| GatewayError::io(format!("usage spool {}", path.display()), e))?,
            ),
        };
        let stats = Arc::new(GatewayStats::default());
        let drain = CancellationToken::new();
        let sessions = Arc::new(SessionContext {
            settings: SessionSettings::from_config(&config),
            protocol: config.session_config(),
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
            session_slots,
            control_plane,
            usage,
            state,
            stats: stats.clone(),
            drain: drain.clone(),
        });
        let shared = Arc::new(Shared {
            sessions,
            stats,
            drain,
            fallback: fallbacks.0,
            fallback_raw: fallbacks.1,
            connection_limits: ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_ip,
            ),
            config,
        });
        let tasks = TaskTracker::new();
        let stop_accepting = CancellationToken::new();
        let stop_background = CancellationToken::new();
        tls.clone()
            .spawn_reloader(shared.config.tls_reload_interval, stop_background.clone());
        // Usage stops only after the sessions ended (see `shutdown`), so it has its own token.
        let stop_usage = stop_background.child_token();
        let usage_task = shared
            .sessions
            .usage
            .clone()
            .map(|usage| tokio::spawn(usage.run(stop_usage)));
        // Like usage, the shared state outlives the sessions: their last bytes fold in at stop.
        let state_task = tokio::spawn(shared.sessions.state.clone().run(
            listen_name,
            shared.stats.clone(),
            shared.drain.clone(),
            stop_background.child_token(),
        ));
        if let Some(cp) = shared.sessions.control_plane.clone() {
            tokio::spawn(registry_heartbeat(
                cp,
                shared.config.registry_heartbeat_interval,
                stop_background.clone(),
            ));
        }
        if let Some(listener) = listener {
            tokio::spawn(listener::accept_loop(
                listener,
                tls.clone(),
                shared.clone(),
                tasks.clone(),
                stop_accepting.clone(),
            ));
        }
        if let Some(plain) = plain {
            tokio::spawn(front::accept_loop(
                plain,
                shared.clone(),
                tasks.clone(),
                stop_accepting.clone(),
            ));
        }
        if let Some(addr) = &tls_addr {
            tracing::info!(
                listen = %addr,
                fingerprint = %tls.fingerprint(),
                self_signed = tls.is_self_signed(),
                "gateway listening"
            );
        }
        if let Some(addr) = &plain_addr {
            tracing::info!(
                plain_listen = %addr,
                proxy_protocol = shared.config.proxy_protocol,
                trusted_proxies = shared.config.trusted_proxies.len(),
                "gateway listening for its front (plain HTTP)"
            );
        }
        Ok(Gateway {
            tls_addr,
            plain_addr,
            tls,
            shared,
            tasks,
            stop_accepting,
            stop_background,
            usage_task,
            state_task,
        })
    }

    /// The usage reporter (with a control plane).
    pub fn usage(&self) -> Option<&UsageReporter> {
        self.shared.sessions.usage.as_ref()
    }

    /// The shared state (session directory, quotas, node load, the store).
    pub fn shared_state(&self) -> &Arc<SharedState> {
        &self.shared.sessions.state
    }

    /// The address the TLS listener is bound to (`0.0.0.0:0` when `--listen` is off).
    pub fn local_addr(&self) -> SocketAddr {
        self.tls_addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The plain listener's bound address (TCP with its real port, or the unix socket).
    pub fn plain_addr(&self) -> Option<&ListenAddr> {
        self.plain_addr.as_ref()
    }

    /// The failed-HELLO limiter per client address (where the fronted listener's client
    /// addresses end up).
    pub fn hello_failures_per_ip(&self) -> &FailureLimiter<IpAddr> {
        &self.shared.sessions.ip_failures
    }

    /// SHA-256 fingerprint of the current certificate (hex).
    pub fn fingerprint(&self) -> String {
        self.tls.fingerprint()
    }

    /// TLS/TCP connections counted against the connection caps now.
    pub fn connections_open(&self) -> usize {
        self.shared.connection_limits.open()
    }

    /// Counters of this gateway.
    pub fn stats(&self) -> Arc<GatewayStats> {
        self.shared.stats.clone()
    }

    /// How streams reach their targets (pre-warmed node connections, the direct flag).
    pub fn upstreams(&self) -> &Upstreams {
        &self.shared.sessions.upstreams
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
        // Every session handed its last counts to the reporter when it ended.
        self.stop_background.cancel();
        if let Some(task) = self.usage_task {
            let _ = task.await;
        }
        let _ = self.state_task.await;
        if let Some(usage) = &self.shared.sessions.usage {
            let lost = usage.flush(self.shared.config.usage_flush_timeout).await;
            if lost == 0 {
                tracing::info!("usage flushed");
            }
        }
    }
}

/// `--fallback` and `--fallback-raw`.
type Fallbacks = (Option<Fallback>, Option<Fallback>);

/// The fallbacks of standalone mode, sharing one budget of relay permits.
fn fallbacks(config: &GatewayConfig) -> Result<Fallbacks, rustls::Error> {
    let permits = Arc::new(tokio::sync::Semaphore::new(config.fallback_max_connections));
    let make = |addr: &Option<crate::config::FallbackAddr>, kind| {
        addr.clone()
            .map(|addr| {
                Fallback::new(
                    addr,
                    kind,
                    config.fallback_connect_timeout,
                    permits.clone(),
                    config.fallback_max_connections,
                )
            })
            .transpose()
    };
    Ok((
        make(&config.fallback, "http")?,
        make(&config.fallback_raw, "raw")?,
    ))
}

/// Tells the control plane's registry this gateway is alive, at start and every `interval`, and
/// refreshes the pool snapshot kept for outages (so a device that never had a node still gets
/// one while the control plane cannot be asked).
async fn registry_heartbeat(
    cp: Arc<ControlPlaneClient>,
    interval: Duration,
    stop: CancellationToken,
) {
    let version = env!("CARGO_PKG_VERSION");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = cp.gateway_heartbeat(version).await {
            metrics::counter!(crate::metrics::CONTROL_PLANE_ERRORS_TOTAL, "call" => "gateway_heartbeat")
                .increment(1);
            tracing::warn!(error = %e, "gateway heartbeat failed");
        }
        if let Err(e) = cp.pool().await {
            metrics::counter!(crate::metrics::CONTROL_PLANE_ERRORS_TOTAL, "call" => "pool")
                .increment(1);
            tracing::warn!(error = %e, "pool snapshot not refreshed (the last one stays in use)");
        }
    }
}
