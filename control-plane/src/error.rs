//! The one error type of the HTTP layer. Every refusal becomes an RFC 7807 problem document with
//! a stable machine-readable `code`; nothing a client sends can produce a 5xx.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::DomainError;
use crate::store::{ConflictKind, StoreError};

/// An RFC 7807 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:httvps:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `conflict`.
    pub code: String,
    /// What exactly is wrong.
    pub detail: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("malformed request body: {0}")]
    BadJson(String),
    /// A query parameter the operation does not take (named in the message).
    #[error("{0}")]
    UnknownParameter(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A refusal with its own code (e.g. `too_many_sessions`, `node_unavailable`).
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// Too many attempts: retry after this many seconds.
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    #[error("the request body is larger than the limit")]
    PayloadTooLarge,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            ApiError::BadJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "Malformed request body",
            ),
            ApiError::UnknownParameter(_) => (
                StatusCode::BAD_REQUEST,
                "unknown_parameter",
                "Unknown query parameter",
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Refused { status, code, .. } => (*status, code, "Refused"),
            ApiError::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// A refusal with a specific status and code.
    pub fn refused(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl ApiError {
    /// The status, code and detail a client is shown; internal details go to the log instead.
    pub fn shown(&self) -> (StatusCode, &'static str, String) {
        let (status, code, _) = self.parts();
        let detail = match self {
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "request failed");
                "the server could not complete the request".to_owned()
            }
            other => other.to_string(),
        };
        (status, code, detail)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(msg) => ApiError::Validation(msg),
            DomainError::NotFound(what) => ApiError::NotFound(what),
            DomainError::Conflict(c) if c.kind == ConflictKind::SessionLimit => ApiError::refused(
                StatusCode::CONFLICT,
                httvps_contract::RefusalCode::TooManySessions.as_str(),
                c,
            ),
            DomainError::Conflict(c) => ApiError::Conflict(c.into()),
            DomainError::Forbidden(msg) => ApiError::Forbidden(msg),
            // The HELLO_ERROR a gateway gives the client for it.
            e @ DomainError::SessionKilled => {
                ApiError::refused(StatusCode::FORBIDDEN, "revoked", e.to_string())
            }
            DomainError::Internal(msg) => ApiError::Internal(msg),
            DomainError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        DomainError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (_, _, title) = self.parts();
        let (status, code, detail) = self.shown();
        let body = Problem {
            problem_type: format!("urn:httvps:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            code: code.into(),
            detail,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited(secs) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
        }
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
