//! Bounds on the work any caller, authenticated or not, can make the server do: a deadline for
//! each request and a cap on the requests in progress. Both answer with problem documents
//! instead of letting requests hang or pile up: 408 `request_timeout` when a request (reading
//! its body included) takes longer than `--request-timeout`, 503 `overloaded` with
//! `Retry-After` when `--max-concurrent-requests` are already in progress.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Ends a request that takes longer than the deadline with a 408 problem. Dropping the
/// handler's future rolls back any transaction it had open.
pub async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::refused(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

/// Refuses a request at once with a 503 problem when the cap is reached, rather than queueing
/// it behind the others.
pub async fn concurrency(
    State(slots): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_slot) = slots.try_acquire_owned() else {
        metrics::counter!("httvps_cp_http_overloaded_total").increment(1);
        let mut response = ApiError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in progress; retry shortly",
        )
        .into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
        return response;
    };
    next.run(req).await
}

/// Turns the bare error answers of the layers under it (405 from the router with its `Allow`
/// header, 413 from the body limit, ...) into problem documents like every other refusal.
pub async fn problems_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // The operator console (`/ui`) answers its refusals with HTML pages of its own.
    let is_described = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_described {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take this method (see Allow)".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the limit".to_owned(),
        ),
        s if s.is_server_error() => (
            "internal",
            "the server could not complete the request".to_owned(),
        ),
        s => (
            "bad_request",
            s.canonical_reason().unwrap_or("bad request").to_owned(),
        ),
    };
    let (mut parts, _) = response.into_parts();
    let mut problem = ApiError::refused(status, code, detail).into_response();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in problem.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *problem.headers_mut() = parts.headers;
    problem
}
