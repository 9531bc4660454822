//! Wiring: the application state every handler gets, the router, and starting and stopping the
//! whole service (HTTP server plus periodic jobs). `main` and the tests both start it here.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use httvps_shared_state::SessionStore;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::jwt::JwtKeys;
use crate::auth::seal::{self, SealKey};
use crate::auth::token;
use crate::config::ServeConfig;
use crate::http;
use crate::last_seen::LastSeen;
use crate::store::{Store, StoreError, StoreOptions};
use crate::validation_cache::ValidationCache;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServeConfig>,
    pub jwt: JwtKeys,
    pub metrics: PrometheusHandle,
    /// Sessions being moved off failed nodes right now.
    pub migrations_in_flight: Arc<AtomicUsize>,
    /// State shared with the gateways (Redis with `REDIS_URL`, else in process); see
    /// [`crate::shared`].
    pub shared: Arc<dyn SessionStore>,
    /// Failed logins and bad gateway tokens, by client address and account.
    pub auth_limits: Arc<http::client::AuthLimits>,
    /// The key device secrets are sealed with (see [`crate::auth::seal`]); `None` when none is
    /// configured for PostgreSQL, and links are then shown only at creation.
    pub seal: Option<SealKey>,
    /// Subscription URL fetches by token and by client address.
    pub sub_limits: Arc<http::subscription::FetchLimits>,
    /// Validation answers and verified gateway tokens (see [`crate::validation_cache`]).
    pub validation: Arc<ValidationCache>,
    /// Devices' last-seen times waiting to be written (see [`crate::last_seen`]).
    pub last_seen: Arc<LastSeen>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
}

/// The process-wide Prometheus recorder (installed once; every app in a process shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding process); then
            // our metrics go there and /metrics shows only what this handle sees.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    /// Opens the store, runs the migrations and prepares the state.
    pub async fn new(config: ServeConfig) -> Result<AppState, StartError> {
        let options = StoreOptions {
            max_connections: config.db_max_connections,
            ..StoreOptions::default()
        };
        // A link setting that cannot make a valid connection link is a start-up error, not a
        // 500 at the first device creation.
        crate::link::check_config(&config).map_err(|e| StartError::Config(e.to_string()))?;
        let shared = crate::shared::open(&config).map_err(|e| StartError::Config(e.to_string()))?;
        let store = Store::connect(&config.database_url, &options).await?;
        store.migrate().await?;
        let secret = match &config.jwt_secret {
            Some(s) if s.len() >= 32 => s.clone().into_bytes(),
            Some(_) => {
                return Err(StartError::Config(
                    "HTTVPS_CP_JWT_SECRET must have at least 32 bytes".into(),
                ))
            }
            None => {
                tracing::warn!("no HTTVPS_CP_JWT_SECRET: using a random one; admin sessions end at restart and replicas cannot share them");
                token::generate().into_bytes()
            }
        };
        let jwt = JwtKeys::new(&secret, config.jwt_ttl_secs);
        AppState::assemble(config, store, jwt, shared)
    }
}

impl AppState {
    /// The state of an operator command (`httvps-control-plane device revoke ...`): the store
    /// it opened and, from the same settings as `serve` (`REDIS_URL`, `HTTVPS_CP_REDIS_PREFIX`,
    /// `HTTVPS_CP_REVOCATION_TTL`), the shared state its changes are announced on, so a change
    /// made from the command line reaches the gateways as one made through the API does.
    pub fn for_operator(config: ServeConfig, store: Store) -> Result<AppState, StartError> {
        let shared = crate::shared::open(&config).map_err(|e| StartError::Config(e.to_string()))?;
        // Operator commands sign no admin tokens.
        let jwt = JwtKeys::new(token::generate().as_bytes(), config.jwt_ttl_secs);
        AppState::assemble(config, store, jwt, shared)
    }

    /// The state around an opened store, however it was opened.
    fn assemble(
        config: ServeConfig,
        store: Store,
        jwt: JwtKeys,
        shared: Arc<dyn SessionStore>,
    ) -> Result<AppState, StartError> {
        let auth_limits = Arc::new(http::client::AuthLimits::new(config.login_backoff_max));
        let seal = seal::key_from_config(&config).map_err(|e| StartError::Config(e.to_string()))?;
        let sub_limits = Arc::new(http::subscription::FetchLimits::new(&config));
        let validation = Arc::new(ValidationCache::new(
            config.validation_cache_ttl_secs,
            store.clone(),
        ));
        Ok(AppState {
            validation,
            last_seen: Arc::new(LastSeen::default()),
            store,
            config: Arc::new(config),
            jwt,
            metrics: metrics_handle(),
            migrations_in_flight: Arc::new(AtomicUsize::new(0)),
            shared,
            auth_limits,
            seal,
            sub_limits,
        })
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.config.max_concurrent_requests.max(1),
    ));
    http::routes()
        .merge(crate::console::routes(&state))
        .layer(axum::middleware::from_fn(record_request))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.config.request_timeout,
            http::guard::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            slots,
            http::guard::concurrency,
        ))
        .layer(axum::middleware::from_fn(
            http::guard::problems_for_bare_errors,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(server_span)
                .on_response(record_response),
        )
        .with_state(state)
}

/// The span of one request, named by its route (`POST /v1/gateway/devices/validate`) and the
/// child of the caller's span when the request carries W3C trace context (a gateway's HELLO).
fn server_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        url.path = loggable_path(req.uri().path()),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    httvps_telemetry::continue_from(&span, req.headers());
    span
}

/// The path as logs may show it: a subscription URL's token is a credential.
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/sub/") {
        "/sub/<redacted>"
    } else {
        path
    }
}

/// Records the status on the request's span (5xx marks it an error), then logs as before.
fn record_response(response: &Response, latency: Duration, span: &tracing::Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    tower_http::trace::OnResponse::on_response(
        tower_http::trace::DefaultOnResponse::new(),
        response,
        latency,
        span,
    );
}

/// Counts requests and their durations by route and status.
async fn record_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("httvps_cp_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("httvps_cp_http_request_duration_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// A running control plane.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    jobs: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, stops the jobs.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        for job in self.jobs {
            let _ = tokio::time::timeout(Duration::from_secs(5), job).await;
        }
        // Requests that finished after the flush job's last flush noted devices too.
        if let Err(e) = self
            .state
            .last_seen
            .flush(&self.state.store, crate::model::now_ms())
            .await
        {
            tracing::warn!(error = %e, "cannot write last-seen times at shutdown");
        }
        self.state.store.close().await;
    }

    /// A receiver that turns true at shutdown.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Starts the service: HTTP on `config.listen` and, unless `run_jobs` is false, the periodic
/// jobs (health checks, failover, roll-ups, expiry).
pub async fn start(config: ServeConfig, run_jobs: bool) -> Result<Running, StartError> {
    let listen = config.listen;
    let state = AppState::new(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen,
        source,
    })?;
    let (shutdown, mut rx) = watch::channel(false);
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let stop = async move { while rx.changed().await.is_ok() && !*rx.borrow() {} };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    let mut jobs = if run_jobs {
        crate::jobs::spawn_all(&state, shutdown.subscribe())
    } else {
        Vec::new()
    };
    // Every process writes its own last-seen notes and follows the others' changes, leader or
    // not.
    let last_seen = state.last_seen.clone();
    let (store, every) = (
        state.store.clone(),
        Duration::from_secs(state.config.last_seen_flush_secs.max(1)),
    );
    let stop = shutdown.subscribe();
    jobs.push(tokio::spawn(async move {
        last_seen.run(store, every, stop).await;
    }));
    jobs.push(tokio::spawn(crate::validation_cache::follow_shared_events(
        state.clone(),
        shutdown.subscribe(),
    )));
    tracing::info!(%addr, backend = ?state.store.backend(), "control plane listening");
    Ok(Running {
        addr,
        state,
        shutdown,
        server,
        jobs,
    })
}
