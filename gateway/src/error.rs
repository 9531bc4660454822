//! The one error type of the gateway library.

use std::io;

/// Anything that stops the gateway from starting or from serving.
///
/// Per-session and per-stream failures never surface here: they end that session (ERROR frame)
/// or that stream (STREAM_RESET) and are counted in metrics.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the gateway was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The certificate or key could not be loaded, or rustls refused them.
    #[error("TLS: {0}")]
    Tls(String),
    /// ACME could not be set up.
    #[error(transparent)]
    Acme(#[from] crate::tls::acme::AcmeError),
    /// A configuration value is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The Prometheus exporter could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
}

impl GatewayError {
    /// An I/O error with a note on what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        GatewayError::Io {
            context: context.into(),
            source,
        }
    }
}
