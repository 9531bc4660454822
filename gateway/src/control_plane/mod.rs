//! Client of the control plane's gateway API (`/v1/gateway/...`, docs/control-plane.md): device
//! validation, node assignment, the session lifecycle, usage reports, the pool snapshot and the
//! gateway registry heartbeat. The bodies, routes and limits are `httvps-contract`'s, shared
//! with the control plane's handlers. One `reqwest` client, authenticated with this gateway's
//! service token; every call has a timeout.
//!
//! Errors come in two kinds ([`CpError`]): the control plane could not be asked (transport
//! failure, timeout, 5xx: `Unavailable`, retry later), or it answered with a refusal (4xx with a
//! machine-readable `code`: `Refused`). The device check with its cache and single-flight lives
//! in [`crate::entitlements`]; usage batching in [`crate::usage`].

mod batcher;
mod error;
mod nodes;
mod secret;
mod session_batch;
mod transport;
mod validate_batch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use httvps_contract::assign::{AssignNodeRequest, AssignNodeResponse};
use httvps_contract::pool::PoolSnapshot;
use httvps_contract::session::{
    BatchOutcome, BatchedEnd, EndSessionRequest, GatewayHeartbeat, HeartbeatResponse,
    StartSessionRequest,
};
pub use httvps_contract::usage::{UsageRecord, UsageReport};
use httvps_contract::validate::{ValidateRequest, ValidateResponse};
use httvps_contract::{routes, EndReason};
use url::Url;
use uuid::Uuid;

use self::batcher::Batcher;
pub use self::error::CpError;
use self::nodes::PoolEntry;
pub use self::secret::Secret;
use self::session_batch::{SessionCall, SessionRoute};
use self::transport::NO_BODY;
use self::validate_batch::ValidateRoute;
use crate::authority::{Entitlement, Verdict};
use crate::upstream::Node;
use crate::GatewayError;

/// The control plane's answer to a device validation, with how long it may be cached.
#[derive(Clone, Debug)]
pub struct ValidateAnswer {
    /// Allow (with the entitlement) or deny (with the HELLO_ERROR code).
    pub verdict: Verdict,
    /// How long the control plane allows this answer to be cached.
    pub cache_ttl: Duration,
}

impl From<ValidateResponse> for ValidateAnswer {
    fn from(answer: ValidateResponse) -> Self {
        match answer {
            ValidateResponse::Allow {
                cache_ttl_secs,
                entitlement: e,
            } => ValidateAnswer {
                verdict: Verdict::Allow(Entitlement {
                    device_id: e.device_id.to_string(),
                    user_id: Some(e.user_id.to_string()),
                    remaining_bytes: e.remaining_bytes,
                    session_limit: Some(e.session_limit),
                    expires_at_ms: e.expires_at,
                    quota_bytes: e.plan.quota_bytes,
                    quota_period_end_ms: e.quota_resets_at,
                }),
                cache_ttl: Duration::from_secs(cache_ttl_secs),
            },
            ValidateResponse::Deny {
                cache_ttl_secs,
                code,
                message,
            } => ValidateAnswer {
                verdict: Verdict::Deny {
                    code: code.hello_error_code(),
                    message: if message.is_empty() {
                        code.as_str().to_owned()
                    } else {
                        message
                    },
                    retry_after: None,
                },
                cache_ttl: Duration::from_secs(cache_ttl_secs),
            },
        }
    }
}

/// A device check call's failure as the HELLO sees it: a refusal of the call itself other than
/// 429 (401: our token) is our problem, not the device's, so the device gets `internal`, never a
/// false `auth_failed`.
fn device_check_error(e: CpError) -> CpError {
    match e {
        CpError::Refused { status: 429, .. } => e,
        CpError::Refused { status, code, .. } => {
            CpError::Unavailable(format!("validate refused: {status} {code}"))
        }
        other => other,
    }
}

/// What a session heartbeat says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The node the session should use now (failover may have moved it).
    pub node_id: Option<String>,
    /// `Some(reason)`: close the session now (`killed`, `revoked`, `expired`).
    pub end: Option<EndReason>,
    /// `Some(end)`: the control plane said when access ends as of now (`None` inside: never,
    /// or a queued subscription follows); `None`: it did not say (an older control plane).
    pub expires_at_ms: Option<Option<i64>>,
}

/// The gateway's client of the control plane.
#[derive(Clone)]
pub struct ControlPlaneClient {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    /// The node last assigned to each device: used when the control plane cannot be asked,
    /// so a device admitted from the entitlement cache during an outage still gets a node.
    last_nodes: Arc<Mutex<HashMap<String, Node>>>,
    /// The last pool snapshot ([`Self::pool`]): where a device that never had a node gets one
    /// during an outage.
    known_pool: Arc<Mutex<Vec<PoolEntry>>>,
    /// Session starts, heartbeats and ends go through this batcher ([`session_batch`]), started
    /// at the first of them; `None`: single calls (a batcher's own client, or batching off).
    session_batcher: Option<Arc<OnceLock<Batcher<SessionRoute>>>>,
    /// Device checks go through this one ([`validate_batch`]); `None` as above.
    validate_batcher: Option<Arc<OnceLock<Batcher<ValidateRoute>>>>,
}

impl std::fmt::Debug for ControlPlaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A device or node id as the contract carries it.
fn uuid_of(what: &str, id: &str) -> Result<Uuid, CpError> {
    Uuid::parse_str(id).map_err(|_| CpError::invalid(format!("{what} is not a UUID")))
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
            session_batcher: Some(Arc::default()),
            validate_batcher: Some(Arc::default()),
        })
    }

    /// With `false`, every device check, session start, heartbeat and end is its own call (as
    /// before the batch routes; for comparison and for control planes behind proxies that
    /// cannot take them).
    pub fn with_batching(mut self, batching: bool) -> Self {
        self.session_batcher = batching.then(Arc::default);
        self.validate_batcher = batching.then(Arc::default);
        self
    }

    /// The client a batcher sends with: its calls are single.
    fn unbatched(&self) -> ControlPlaneClient {
        ControlPlaneClient {
            session_batcher: None,
            validate_batcher: None,
            ..self.clone()
        }
    }

    /// Session batch calls made so far (0 before the first session call or without batching).
    pub fn session_batches(&self) -> u64 {
        self.session_batcher
            .as_ref()
            .and_then(|cell| cell.get())
            .map_or(0, |b| b.batches.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Device validation batch calls made so far.
    pub fn validate_batches(&self) -> u64 {
        self.validate_batcher
            .as_ref()
            .and_then(|cell| cell.get())
            .map_or(0, |b| b.batches.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sends `call` through the session batcher; `None` when this client calls singly.
    async fn batched(&self, call: SessionCall) -> Option<Result<BatchOutcome, CpError>> {
        let cell = self.session_batcher.as_ref()?;
        let batcher = cell.get_or_init(|| Batcher::start(self.unbatched()));
        Some(batcher.call(call).await)
    }

    /// `POST /v1/gateway/devices/validate` (in a batch).
    pub async fn validate_device(
        &self,
        device_id: &str,
        device_token: &str,
        region: Option<&str>,
    ) -> Result<ValidateAnswer, CpError> {
        let body = ValidateRequest {
            device_id: device_id.to_owned(),
            device_token: device_token.to_owned(),
            region: region.map(str::to_owned),
        };
        match &self.validate_batcher {
            Some(cell) => {
                let batcher = cell.get_or_init(|| Batcher::start(self.unbatched()));
                batcher.call(body).await
            }
            None => self.validate_device_alone(&body).await,
        }
    }

    /// `POST /v1/gateway/devices/validate`, alone.
    async fn validate_device_alone(
        &self,
        body: &ValidateRequest,
    ) -> Result<ValidateAnswer, CpError> {
        let answer = self
            .call_route::<ValidateResponse>(
                reqwest::Method::POST,
                routes::VALIDATE_DEVICE,
                Some(body),
            )
            .await
            .map_err(device_check_error)?
            .ok_or_else(|| CpError::Unavailable("empty validate answer".into()))?;
        Ok(answer.into())
    }

    /// `POST /v1/gateway/nodes/assign`.
    pub async fn assign_node(
        &self,
        device_id: &str,
        session_id: Option<Uuid>,
        region: Option<&str>,
        exclude: &[String],
    ) -> Result<Node, CpError> {
        let body = AssignNodeRequest {
            device_id: uuid_of("device_id", device_id)?,
            session_id,
            region: region.map(str::to_owned),
            exclude: exclude
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
        };
        let answer = self
            .call_route::<AssignNodeResponse>(
                reqwest::Method::POST,
                routes::ASSIGN_NODE,
                Some(&body),
            )
            .await?
            .ok_or_else(|| CpError::Unavailable("empty assign answer".into()))?;
        nodes::to_node(answer.node).map_err(|e| CpError::Unavailable(e.0))
    }

    /// `GET /v1/gateway/pool`: the usable nodes. The answer is kept for outages.
    pub async fn pool(&self) -> Result<Vec<Node>, CpError> {
        let answer = self
            .call_route::<PoolSnapshot>(reqwest::Method::GET, routes::POOL, NO_BODY)
            .await?
            .ok_or_else(|| CpError::Unavailable("empty pool answer".into()))?;
        let entries: Vec<PoolEntry> = answer
            .nodes
            .into_iter()
            .filter_map(|n| {
                let region = n.node.region.clone();
                nodes::to_node(n.into())
                    .ok()
                    .map(|node| PoolEntry { node, region })
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

    /// `POST /v1/gateway/sessions` (in a batch): registers a session under the plan's session
    /// limit (idempotent on the id). 409 `too_many_sessions`, 403 `revoked` / `expired`.
    pub async fn start_session(
        &self,
        session_id: Uuid,
        device_id: &str,
        node_id: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), CpError> {
        let body = StartSessionRequest {
            session_id,
            device_id: uuid_of("device_id", device_id)?,
            node_id: node_id.and_then(|n| Uuid::parse_str(n).ok()),
            client_region: region.map(str::to_owned),
        };
        match self.batched(SessionCall::Start(body.clone())).await {
            Some(outcome) => outcome.map(|_| ()),
            None => self.start_session_alone(&body).await,
        }
    }

    /// `POST /v1/gateway/sessions`, alone.
    async fn start_session_alone(&self, body: &StartSessionRequest) -> Result<(), CpError> {
        self.post_unread(
            routes::START_SESSION,
            routes::relative(routes::START_SESSION),
            body,
        )
        .await
    }

    /// `POST /v1/gateway/sessions/{id}/heartbeat` (in a batch).
    pub async fn heartbeat_session(&self, session_id: Uuid) -> Result<HeartbeatAnswer, CpError> {
        let answer = match self.batched(SessionCall::Heartbeat(session_id)).await {
            Some(outcome) => outcome?
                .heartbeat
                .ok_or_else(|| CpError::Unavailable("empty heartbeat answer".into()))?,
            None => self.heartbeat_session_alone(session_id).await?,
        };
        Ok(HeartbeatAnswer {
            node_id: answer.node_id.map(|n| n.to_string()),
            end: answer.end_now(),
            expires_at_ms: answer.expires_at,
        })
    }

    /// `POST /v1/gateway/sessions/{id}/heartbeat`, alone.
    async fn heartbeat_session_alone(
        &self,
        session_id: Uuid,
    ) -> Result<HeartbeatResponse, CpError> {
        self.call::<HeartbeatResponse>(
            reqwest::Method::POST,
            routes::SESSION_HEARTBEAT,
            &routes::session_heartbeat_path(session_id),
            NO_BODY,
        )
        .await?
        .ok_or_else(|| CpError::Unavailable("empty heartbeat answer".into()))
    }

    /// `POST /v1/gateway/sessions/{id}/end` (in a batch; idempotent).
    pub async fn end_session(&self, session_id: Uuid, reason: &EndReason) -> Result<(), CpError> {
        let end = BatchedEnd {
            session_id,
            reason: reason.clone(),
        };
        match self.batched(SessionCall::End(end)).await {
            Some(outcome) => outcome.map(|_| ()),
            None => self.end_session_alone(session_id, reason).await,
        }
    }

    /// `POST /v1/gateway/sessions/{id}/end`, alone.
    async fn end_session_alone(&self, session_id: Uuid, reason: &EndReason) -> Result<(), CpError> {
        let body = EndSessionRequest {
            reason: reason.clone(),
        };
        self.post_unread(
            routes::END_SESSION,
            &routes::end_session_path(session_id),
            &body,
        )
        .await
    }

    /// `POST /v1/gateway/usage`: counted once per report id, however often it is sent.
    pub async fn report_usage(&self, report: &UsageReport) -> Result<(), CpError> {
        self.post_unread(
            routes::REPORT_USAGE,
            routes::relative(routes::REPORT_USAGE),
            report,
        )
        .await
    }

    /// `POST /v1/gateway/heartbeat`: this gateway is alive, running `version`.
    pub async fn gateway_heartbeat(&self, version: &str) -> Result<(), CpError> {
        let body = GatewayHeartbeat {
            version: Some(version.to_owned()),
        };
        self.post_unread(
            routes::GATEWAY_HEARTBEAT,
            routes::relative(routes::GATEWAY_HEARTBEAT),
            &body,
        )
        .await
    }
}
