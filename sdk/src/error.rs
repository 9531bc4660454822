//! Errors an application can act on: "revoked" is not "quota exceeded" is not "gateway
//! unreachable".

use std::time::Duration;

use httvps_proto::link::LinkError;
use httvps_proto::{ErrorCode, HelloErrorCode, ResetCode};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection link or configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No gateway could be reached (network, TLS or WebSocket failure).
    #[error("no gateway reachable: {0}")]
    Unreachable(String),
    /// The gateway refused the device (HELLO_ERROR). See [`Error::is_permanent`].
    #[error("the gateway refused the device: {code}: {message}")]
    Refused {
        /// The HELLO_ERROR code.
        code: HelloErrorCode,
        /// The gateway's explanation.
        message: String,
        /// When the gateway advised to try again.
        retry_after: Option<Duration>,
    },
    /// The gateway (or its upstream) reset the stream; the code says why.
    #[error("stream reset: {0}")]
    StreamReset(ResetCode),
    /// The session ended (ERROR from the gateway, or a local protocol failure).
    #[error("session ended: {code}: {message}")]
    SessionEnded {
        /// The session error code.
        code: ErrorCode,
        /// What happened.
        message: String,
    },
    /// Opening a stream timed out.
    #[error("timed out")]
    Timeout,
    /// The client was shut down.
    #[error("the client is closed")]
    Closed,
    /// The client has no session now and waits before trying again (see
    /// [`crate::ClientStatus`]); requests fail at once meanwhile instead of waiting.
    #[error("not connected: {0}")]
    Down(crate::Outage),
    /// A target address that HTTVPS/1 cannot carry (bad domain name, port 0).
    #[error("invalid target: {0}")]
    InvalidTarget(#[from] httvps_proto::DecodeError),
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether retrying cannot help until something changes on the service side (the device was
    /// revoked, its credentials are wrong, its subscription ended or its quota is used up).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::Refused {
                code: HelloErrorCode::AuthFailed
                    | HelloErrorCode::Revoked
                    | HelloErrorCode::Expired
                    | HelloErrorCode::QuotaExceeded
                    | HelloErrorCode::UnsupportedVersion
                    | HelloErrorCode::RegionNotAllowed,
                ..
            } | Error::SessionEnded {
                code: ErrorCode::Revoked | ErrorCode::Expired | ErrorCode::QuotaExceeded,
                ..
            } | Error::Config(_)
        )
    }
}

impl From<LinkError> for Error {
    fn from(e: LinkError) -> Self {
        Error::Config(e.to_string())
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::Io(io) => return std::io::Error::new(io.kind(), io.to_string()),
            Error::StreamReset(ResetCode::Refused) => ErrorKind::ConnectionRefused,
            Error::StreamReset(ResetCode::Timeout) | Error::Timeout => ErrorKind::TimedOut,
            Error::StreamReset(ResetCode::NotAllowed) | Error::Refused { .. } => {
                ErrorKind::PermissionDenied
            }
            Error::StreamReset(_) => ErrorKind::ConnectionReset,
            Error::Unreachable(_) | Error::Down(_) => ErrorKind::NotConnected,
            Error::SessionEnded { .. } | Error::Closed => ErrorKind::ConnectionAborted,
            Error::Config(_) | Error::InvalidTarget(_) => ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}
