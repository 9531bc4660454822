//! Logs and traces for the httvps services.
//!
//! [`init`] installs the process's `tracing` subscriber: log lines filtered by `RUST_LOG` (text or
//! JSON), and, when the standard `OTEL_*` variables ask for it, an OpenTelemetry layer that
//! exports the services' spans over OTLP (gRPC or HTTP/protobuf) through a batch processor.
//! [`inject`] and [`continue_from`] carry W3C trace context over HTTP headers, so a HELLO on a
//! gateway and the control-plane requests it causes are one trace.
//!
//! Only spans and events of the httvps crates (targets `httvps*`) at INFO or above are exported;
//! `RUST_LOG` governs the log lines alone, so quieter logs do not thin the traces.

mod export;
mod http_client;
mod propagation;
#[cfg(feature = "otlp-receiver")]
pub mod receiver;
pub mod settings;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

pub use propagation::{continue_from, inject, TraceLink};
pub use settings::SettingsError;

/// Who is logging and tracing.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    /// `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` name the service.
    pub name: &'static str,
    /// `service.version`.
    pub version: &'static str,
    /// `service.instance.id` (a gateway's id), if any.
    pub instance_id: Option<String>,
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// How to log.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// The filter when `RUST_LOG` is unset (e.g. `info,sqlx=warn`).
    pub default_filter: String,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Stdout or stderr.
    pub target: LogTarget,
}

/// Why logging or tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An `OTEL_*` variable this build cannot honour.
    #[error("OpenTelemetry settings: {0}")]
    Settings(#[from] SettingsError),
    /// The exporter could not be built.
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
    /// `RUST_LOG` does not parse.
    #[error("RUST_LOG: {0}")]
    LogFilter(String),
    /// A subscriber is already installed in this process.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// The running telemetry: flush and shut it down before the process exits, or the last spans
/// are lost.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    endpoint: Option<String>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Where spans go, for the start-up log line (`None`: not exported, or the SDK's default).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Exports every finished span now (waits for the collector's answer).
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "trace flush failed");
            }
        }
    }

    /// Exports what is left and stops the exporter. Off the async workers: the batch processor
    /// blocks until its last export ends, and a gRPC export needs the runtime meanwhile.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = stopped {
                eprintln!("trace export shutdown: {e}");
            }
        }
    }
}

/// Installs logging and, when the environment asks for it, trace export, reading the process
/// environment. Call it inside the tokio runtime (the gRPC exporter needs one).
pub fn init(service: ServiceInfo, logs: LogSettings) -> Result<Telemetry, TelemetryError> {
    init_with(service, logs, |var| std::env::var(var).ok())
}

/// [`init`] reading the `OTEL_*` settings from `env` instead of the process environment (the SDK
/// still reads its own variables, such as headers, sampler and batch sizes, from the process).
pub fn init_with(
    service: ServiceInfo,
    logs: LogSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Telemetry, TelemetryError> {
    let export = settings::export_settings(&env)?;
    let propagators = settings::propagators(&env)?;
    let log_filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).map_err(|e| TelemetryError::LogFilter(e.to_string()))?
        }
        _ => EnvFilter::try_new(&logs.default_filter)
            .map_err(|e| TelemetryError::LogFilter(e.to_string()))?,
    };
    let provider = export
        .as_ref()
        .map(|settings| export::tracer_provider(settings, &service, settings::names_service(&env)))
        .transpose()?;
    propagation::install(propagators);

    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        vec![log_layer(&logs).with_filter(log_filter).boxed()];
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer(service.name);
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(filter_fn(|meta| {
                    meta.target().starts_with("httvps") && *meta.level() <= tracing::Level::INFO
                }))
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(Telemetry {
        provider,
        endpoint: export.and_then(|s| s.endpoint),
    })
}

fn log_layer(logs: &LogSettings) -> Box<dyn Layer<Registry> + Send + Sync> {
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal: files, pipes and log collectors get text.
    let ansi = match logs.target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
    match (logs.json, logs.target) {
        (false, LogTarget::Stdout) => layer.boxed(),
        (false, LogTarget::Stderr) => layer.with_writer(std::io::stderr).boxed(),
        (true, LogTarget::Stdout) => layer.json().boxed(),
        (true, LogTarget::Stderr) => layer.json().with_writer(std::io::stderr).boxed(),
    }
}
