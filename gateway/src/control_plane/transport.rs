//! One call to the control plane: the URL, the service token, the trace context, the JSON
//! body, and the answer sorted into success, refusal (4xx) and unavailability.

use httvps_contract::{routes, Refusal};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use super::{ControlPlaneClient, CpError};

/// A successful answer whose body the gateway does not read.
#[derive(serde::Deserialize)]
struct Ignored {}

/// A call without a body.
pub(super) const NO_BODY: Option<&()> = None;

impl ControlPlaneClient {
    /// One call, as a client span (`POST /v1/gateway/...`, named by its route) whose trace
    /// context travels in the request's headers. `path` is the route with its id filled in.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        route: &'static str,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Option<T>, CpError> {
        let span = tracing::info_span!(
            "control plane call",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "client",
            http.request.method = %method,
            http.route = route,
            server.address = self.base.host_str().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let outcome = self
            .send::<T>(method, path, body, &span)
            .instrument(span.clone())
            .await;
        if let Err(e) = &outcome {
            let kind = match e {
                CpError::Unavailable(_) => "unavailable",
                CpError::Refused { .. } => "refused",
            };
            span.record("error.type", kind);
            if matches!(e, CpError::Unavailable(_)) {
                span.record("otel.status_code", "error");
            }
        }
        outcome
    }

    /// A call to a route whose path has no ids.
    pub(super) async fn call_route<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        route: &'static str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Option<T>, CpError> {
        self.call(method, route, routes::relative(route), body)
            .await
    }

    /// A POST whose answer's body the gateway does not read.
    pub(super) async fn post_unread(
        &self,
        route: &'static str,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<(), CpError> {
        self.call::<Ignored>(reqwest::Method::POST, route, path, Some(body))
            .await
            .map(|_| ())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        span: &tracing::Span,
    ) -> Result<Option<T>, CpError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| CpError::Unavailable(format!("bad URL: {e}")))?;
        let mut trace_headers = reqwest::header::HeaderMap::new();
        httvps_telemetry::inject(span, &mut trace_headers);
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .headers(trace_headers);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CpError::Unavailable(e.without_url().to_string()))?;
        span.record("http.response.status_code", response.status().as_u16());
        let status = response.status();
        if status.is_success() {
            if status == reqwest::StatusCode::NO_CONTENT {
                return Ok(None);
            }
            return response
                .json::<T>()
                .await
                .map(Some)
                .map_err(|e| CpError::Unavailable(format!("bad answer: {}", e.without_url())));
        }
        let problem: Refusal = response.json().await.unwrap_or_default();
        if status.is_server_error() {
            return Err(CpError::Unavailable(format!(
                "{status}: {} {}",
                problem.code, problem.detail
            )));
        }
        Err(CpError::Refused {
            status: status.as_u16(),
            code: problem.code,
            detail: problem.detail,
        })
    }
}
