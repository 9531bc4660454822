//! Client of the control plane's gateway API (`/v1/gateway/...`, docs/control-plane.md): device
//! validation, node assignment, the session lifecycle, usage reports, the pool snapshot and the
//! gateway registry heartbeat. One `reqwest` client, authenticated with this gateway's service
//! token; every call has a timeout.
//!
//! Errors come in two kinds ([`CpError`]): the control plane could not be asked (transport
//! failure, timeout, 5xx: `Unavailable`, retry later), or it answered with a refusal (4xx with a
//! machine-readable `code`: `Refused`). The device check with its cache and single-flight lives
//! in [`crate::entitlements`]; usage batching in [`crate::usage`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use httvps_proto::HelloErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shadowsocks::config::{Mode, ServerAddr, ServerConfig};
use tracing::Instrument;
use url::Url;
use uuid::Uuid;

use crate::authority::{BoxFuture, Entitlement, Verdict};
use crate::upstream::{AssignRequest, NoNode, Node, NodeSource};
use crate::GatewayError;

/// A secret string (the gateway's service token): never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself (to put in a header, never in a log).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

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
        code: String,
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
}

/// The control plane's answer to a device validation, with how long it may be cached.
#[derive(Clone, Debug)]
pub struct ValidateAnswer {
    /// Allow (with the entitlement) or deny (with the HELLO_ERROR code).
    pub verdict: Verdict,
    /// How long the control plane allows this answer to be cached.
    pub cache_ttl: Duration,
}

/// What a session heartbeat says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The node the session should use now (failover may have moved it).
    pub node_id: Option<String>,
    /// `Some(reason)`: close the session now (`killed`, `revoked`, `expired`).
    pub end: Option<String>,
    /// `Some(end)`: the control plane said when access ends as of now (`None` inside: never,
    /// or a queued subscription follows); `None`: it did not say (an older control plane).
    pub expires_at_ms: Option<Option<i64>>,
}

/// One line of a usage report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The session, if known to the control plane.
    pub session_id: Option<Uuid>,
    /// The device.
    pub device_id: Uuid,
    /// The node the bytes went through, if it is a control-plane node.
    pub node_id: Option<Uuid>,
    /// Client to target.
    pub bytes_up: u64,
    /// Target to client.
    pub bytes_down: u64,
    /// When counted, Unix ms.
    pub at: i64,
}

/// A batch of usage records under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Unique per gateway; a retry reuses it so the ledger counts the report once.
    pub report_id: String,
    /// The records.
    pub records: Vec<UsageRecord>,
}

/// The gateway's client of the control plane.
#[derive(Clone)]
pub struct ControlPlaneClient {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    /// The node last assigned to each device: used when the control plane cannot be asked,
    /// so a device admitted from the entitlement cache during an outage still gets a node.
    last_nodes: Arc<std::sync::Mutex<std::collections::HashMap<String, Node>>>,
    /// The last pool snapshot ([`Self::pool`]): where a device that never had a node gets one
    /// during an outage.
    known_pool: Arc<std::sync::Mutex<Vec<PoolEntry>>>,
}

/// A usable node of the last pool snapshot, with its region.
#[derive(Clone, Debug)]
struct PoolEntry {
    node: Node,
    region: Option<String>,
}

/// Devices whose last node is remembered at most (the map is cleared when full).
const LAST_NODES_MAX: usize = 100_000;

impl std::fmt::Debug for ControlPlaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum ValidateJson {
    Allow {
        #[serde(default)]
        cache_ttl_secs: u64,
        entitlement: EntitlementJson,
    },
    Deny {
        #[serde(default)]
        cache_ttl_secs: u64,
        code: String,
        message: Option<String>,
    },
}

#[derive(Deserialize)]
struct EntitlementJson {
    device_id: String,
    user_id: Option<String>,
    remaining_bytes: Option<i64>,
    session_limit: Option<i64>,
    expires_at: Option<i64>,
    quota_resets_at: Option<i64>,
    plan: Option<PlanJson>,
}

#[derive(Deserialize)]
struct PlanJson {
    quota_bytes: Option<i64>,
}

#[derive(Deserialize)]
struct AssignJson {
    node: NodeJson,
}

#[derive(Deserialize)]
struct NodeJson {
    id: String,
    name: String,
    host: String,
    port: u16,
    cipher: String,
    secret: String,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
struct PoolJson {
    nodes: Vec<NodeJson>,
}

#[derive(Deserialize)]
struct HeartbeatJson {
    node_id: Option<String>,
    end: bool,
    end_reason: Option<String>,
    /// Missing (older control plane) and `null` (no end) differ.
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<i64>>,
}

/// A field that is there, `null` or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
struct ProblemJson {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct Ignored {}

impl NodeJson {
    fn into_node(self) -> Result<Node, NoNode> {
        let method = self
            .cipher
            .parse()
            .map_err(|_| NoNode(format!("node {} has an unsupported cipher", self.id)))?;
        let addr = match self.host.parse::<IpAddr>() {
            Ok(ip) => ServerAddr::from(std::net::SocketAddr::new(ip, self.port)),
            Err(_) => ServerAddr::from((self.host, self.port)),
        };
        let mut config = ServerConfig::new(addr, self.secret, method)
            .map_err(|e| NoNode(format!("node {}: {e}", self.id)))?;
        config.set_mode(Mode::TcpAndUdp);
        Ok(Node {
            id: self.id,
            name: self.name,
            config: Arc::new(config),
        })
    }
}

impl ControlPlaneClient {
    /// A client for the control plane at `base` with this gateway's service `token`; every
    /// request gives up after `timeout`.
    pub fn new(base: Url, token: Secret, timeout: Duration) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("httvps-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GatewayError::Config(format!("control-plane client: {e}")))?;
        Ok(ControlPlaneClient {
            http,
            base,
            token,
            last_nodes: Arc::default(),
            known_pool: Arc::default(),
        })
    }

    /// One call, as a client span (`POST /v1/gateway/...`, named by its route) whose trace
    /// context travels in the request's headers.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        route: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
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

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
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
            request = request.json(&body);
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
        let problem: ProblemJson = response.json().await.unwrap_or_default();
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

    /// `POST /v1/gateway/devices/validate`.
    pub async fn validate_device(
        &self,
        device_id: &str,
        device_token: &str,
        region: Option<&str>,
    ) -> Result<ValidateAnswer, CpError> {
        let body = json!({"device_id": device_id, "device_token": device_token, "region": region});
        let answer = self
            .call::<ValidateJson>(
                reqwest::Method::POST,
                "/v1/gateway/devices/validate",
                "v1/gateway/devices/validate",
                Some(body),
            )
            .await
            .map_err(|e| match e {
                CpError::Refused { status: 429, .. } => e,
                // Any other refusal of the call itself (401: our token) is our problem, not the
                // device's: the device gets `internal`, never a false `auth_failed`.
                CpError::Refused { status, code, .. } => {
                    CpError::Unavailable(format!("validate refused: {status} {code}"))
                }
                other => other,
            })?
            .ok_or_else(|| CpError::Unavailable("empty validate answer".into()))?;
        Ok(match answer {
            ValidateJson::Allow {
                cache_ttl_secs,
                entitlement: e,
            } => ValidateAnswer {
                verdict: Verdict::Allow(Entitlement {
                    device_id: e.device_id,
                    user_id: e.user_id,
                    remaining_bytes: e.remaining_bytes.map(|b| b.max(0) as u64),
                    session_limit: e.session_limit.and_then(|l| u32::try_from(l.max(0)).ok()),
                    expires_at_ms: e.expires_at,
                    quota_bytes: e.plan.and_then(|p| p.quota_bytes).map(|b| b.max(0) as u64),
                    quota_period_end_ms: e.quota_resets_at,
                }),
                cache_ttl: Duration::from_secs(cache_ttl_secs),
            },
            ValidateJson::Deny {
                cache_ttl_secs,
                code,
                message,
            } => ValidateAnswer {
                verdict: Verdict::Deny {
                    code: hello_code(&code),
                    message: message.unwrap_or_else(|| code.clone()),
                    retry_after: None,
                },
                cache_ttl: Duration::from_secs(cache_ttl_secs),
            },
        })
    }

    /// `POST /v1/gateway/nodes/assign`.
    pub async fn assign_node(
        &self,
        device_id: &str,
        session_id: Option<Uuid>,
        region: Option<&str>,
        exclude: &[String],
    ) -> Result<Node, CpError> {
        let exclude: Vec<Uuid> = exclude
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        let body = json!({"device_id": device_id, "session_id": session_id, "region": region, "exclude": exclude});
        let answer = self
            .call::<AssignJson>(
                reqwest::Method::POST,
                "/v1/gateway/nodes/assign",
                "v1/gateway/nodes/assign",
                Some(body),
            )
            .await?
            .ok_or_else(|| CpError::Unavailable("empty assign answer".into()))?;
        answer
            .node
            .into_node()
            .map_err(|e| CpError::Unavailable(e.0))
    }

    /// `GET /v1/gateway/pool`: the usable nodes. The answer is kept for outages.
    pub async fn pool(&self) -> Result<Vec<Node>, CpError> {
        let answer = self
            .call::<PoolJson>(
                reqwest::Method::GET,
                "/v1/gateway/pool",
                "v1/gateway/pool",
                None,
            )
            .await?
            .ok_or_else(|| CpError::Unavailable("empty pool answer".into()))?;
        let entries: Vec<PoolEntry> = answer
            .nodes
            .into_iter()
            .filter_map(|n| {
                let region = n.region.clone();
                n.into_node().ok().map(|node| PoolEntry { node, region })
            })
            .collect();
        if let Ok(mut known) = self.known_pool.lock() {
            known.clone_from(&entries);
        }
        Ok(entries.into_iter().map(|e| e.node).collect())
    }

    /// Nodes in the last pool snapshot (0 before the first one).
    pub fn known_pool_len(&self) -> usize {
        self.known_pool.lock().map_or(0, |k| k.len())
    }

    /// A node for a device while the control plane cannot be asked: its last assigned node (when
    /// in the requested region, if that has nodes), else one from the last pool snapshot (in the
    /// requested region when it has nodes), chosen by rendezvous hashing so a device keeps
    /// getting the same node.
    fn offline_node(&self, request: &AssignRequest<'_>) -> Option<Node> {
        let usable = |n: &Node| !request.exclude.contains(&n.id);
        let known = self.known_pool.lock().ok()?;
        let candidates: Vec<&PoolEntry> = known.iter().filter(|e| usable(&e.node)).collect();
        let in_requested = |e: &PoolEntry| {
            request.region.is_some_and(|region| {
                e.region
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(region))
            })
        };
        let in_region: Vec<&PoolEntry> = candidates
            .iter()
            .copied()
            .filter(|e| in_requested(e))
            .collect();
        // The last node, unless the client asks for a region it is not in (and that has nodes).
        let last = self
            .last_nodes
            .lock()
            .ok()
            .and_then(|l| l.get(request.device_id).cloned())
            .filter(usable)
            .filter(|n| in_region.is_empty() || in_region.iter().any(|e| e.node.id == n.id));
        if last.is_some() {
            return last;
        }
        let pick_from = if in_region.is_empty() {
            candidates
        } else {
            in_region
        };
        pick_from
            .into_iter()
            .max_by_key(|e| rendezvous(request.device_id, &e.node.id))
            .map(|e| e.node.clone())
    }

    fn remember(&self, device_id: &str, node: &Node) {
        if let Ok(mut last) = self.last_nodes.lock() {
            if last.len() >= LAST_NODES_MAX {
                last.clear();
            }
            last.insert(device_id.to_owned(), node.clone());
        }
    }

    /// `POST /v1/gateway/sessions`: registers a session under the plan's session limit
    /// (idempotent on the id). 409 `too_many_sessions`, 403 `revoked` / `expired`.
    pub async fn start_session(
        &self,
        session_id: Uuid,
        device_id: &str,
        node_id: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), CpError> {
        let node_id = node_id.and_then(|n| Uuid::parse_str(n).ok());
        let body = json!({"session_id": session_id, "device_id": device_id, "node_id": node_id, "client_region": region});
        self.call::<Ignored>(
            reqwest::Method::POST,
            "/v1/gateway/sessions",
            "v1/gateway/sessions",
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// `POST /v1/gateway/sessions/{id}/heartbeat`.
    pub async fn heartbeat_session(&self, session_id: Uuid) -> Result<HeartbeatAnswer, CpError> {
        let path = format!("v1/gateway/sessions/{session_id}/heartbeat");
        let answer = self
            .call::<HeartbeatJson>(
                reqwest::Method::POST,
                "/v1/gateway/sessions/{id}/heartbeat",
                &path,
                None,
            )
            .await?
            .ok_or_else(|| CpError::Unavailable("empty heartbeat answer".into()))?;
        Ok(HeartbeatAnswer {
            node_id: answer.node_id,
            end: answer
                .end
                .then(|| answer.end_reason.unwrap_or_else(|| "killed".into())),
            expires_at_ms: answer.expires_at,
        })
    }

    /// `POST /v1/gateway/sessions/{id}/end` (idempotent).
    pub async fn end_session(&self, session_id: Uuid, reason: &str) -> Result<(), CpError> {
        let path = format!("v1/gateway/sessions/{session_id}/end");
        let reason: String = reason.chars().take(64).collect();
        self.call::<Ignored>(
            reqwest::Method::POST,
            "/v1/gateway/sessions/{id}/end",
            &path,
            Some(json!({ "reason": reason })),
        )
        .await
        .map(|_| ())
    }

    /// `POST /v1/gateway/usage`: counted once per report id, however often it is sent.
    pub async fn report_usage(&self, report: &UsageReport) -> Result<(), CpError> {
        let body = serde_json::to_value(report)
            .map_err(|e| CpError::Unavailable(format!("encoding the report: {e}")))?;
        self.call::<Ignored>(
            reqwest::Method::POST,
            "/v1/gateway/usage",
            "v1/gateway/usage",
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// `POST /v1/gateway/heartbeat`: this gateway is alive, running `version`.
    pub async fn gateway_heartbeat(&self, version: &str) -> Result<(), CpError> {
        self.call::<Ignored>(
            reqwest::Method::POST,
            "/v1/gateway/heartbeat",
            "v1/gateway/heartbeat",
            Some(json!({ "version": version })),
        )
        .await
        .map(|_| ())
    }
}

/// The rendezvous (highest random weight) score of a node for a device: stable across gateways
/// and restarts, and spreading devices evenly over the nodes.
fn rendezvous(device_id: &str, node_id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(device_id.as_bytes());
    h.update([0]);
    h.update(node_id.as_bytes());
    h.finalize().into()
}

/// The HELLO_ERROR for a control-plane refusal code.
pub fn hello_code(code: &str) -> HelloErrorCode {
    match code {
        "conflict" | "too_many_sessions" => HelloErrorCode::TooManySessions,
        "rate_limited" => HelloErrorCode::RateLimited,
        "not_found" | "unauthenticated" => HelloErrorCode::AuthFailed,
        other => HelloErrorCode::from_name(other).unwrap_or(HelloErrorCode::AuthFailed),
    }
}

impl NodeSource for ControlPlaneClient {
    fn assign<'a>(&'a self, request: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            let session = Uuid::parse_str(request.session_id).ok();
            match self
                .assign_node(request.device_id, session, request.region, request.exclude)
                .await
            {
                Ok(node) => {
                    self.remember(request.device_id, &node);
                    Ok(node)
                }
                Err(CpError::Unavailable(e)) => match self.offline_node(&request) {
                    Some(node) => {
                        tracing::warn!(error = %e, node = %node.id, "control plane unavailable: using the device's last node or one of the last known pool");
                        self.remember(request.device_id, &node);
                        Ok(node)
                    }
                    None => Err(NoNode(format!(
                        "control plane unavailable and no node known: {e}"
                    ))),
                },
                Err(e) => Err(NoNode(e.to_string())),
            }
        })
    }

    fn has_offline_node(&self, device_id: &str) -> bool {
        self.last_nodes
            .lock()
            .is_ok_and(|l| l.contains_key(device_id))
            || self.known_pool_len() > 0
    }

    fn node_by_id<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            self.pool()
                .await
                .map_err(|e| NoNode(e.to_string()))?
                .into_iter()
                .find(|n| n.id == node_id)
                .ok_or_else(|| NoNode(format!("node {node_id} is not in the usable pool")))
        })
    }

    fn report_failure<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, ()> {
        // The control plane learns of failures through `exclude` on the retry's assignment and
        // through its own health checks; the contract has no separate report endpoint.
        Box::pin(async move {
            tracing::debug!(node = node_id, "node failure noted");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_map_to_hello_errors() {
        assert_eq!(hello_code("auth_failed"), HelloErrorCode::AuthFailed);
        assert_eq!(hello_code("revoked"), HelloErrorCode::Revoked);
        assert_eq!(hello_code("expired"), HelloErrorCode::Expired);
        assert_eq!(hello_code("quota_exceeded"), HelloErrorCode::QuotaExceeded);
        assert_eq!(
            hello_code("region_not_allowed"),
            HelloErrorCode::RegionNotAllowed
        );
        assert_eq!(
            hello_code("too_many_sessions"),
            HelloErrorCode::TooManySessions
        );
        assert_eq!(hello_code("rate_limited"), HelloErrorCode::RateLimited);
        assert_eq!(hello_code("something_new"), HelloErrorCode::AuthFailed);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }
}
