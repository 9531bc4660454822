//! Why a control-plane call did not succeed.

use httvps_contract::RefusalCode;

/// Why a control-plane call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CpError {
    /// Not reachable, timed out, or a server error: try again later.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    /// The control plane refused the request (4xx).
    #[error("control plane refused ({status}): {code}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem's machine-readable code (`too_many_sessions`, `revoked`, ...).
        code: RefusalCode,
        /// The problem's detail.
        detail: String,
    },
}

impl CpError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            CpError::Refused { status, .. } => Some(*status),
            CpError::Unavailable(_) => None,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CpError::Unavailable(_) => true,
            // 401: our token may be rotated in; 408/429: transient by definition.
            CpError::Refused { status, .. } => matches!(status, 401 | 408 | 429),
        }
    }

    /// A request the contract cannot carry (an id that is not a UUID): what the control plane
    /// would answer it with, without asking it.
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        CpError::Refused {
            status: 422,
            code: RefusalCode::ValidationFailed,
            detail: detail.into(),
        }
    }
}
