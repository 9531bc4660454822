//! The gateway-facing API (see docs/control-plane.md): device validation, node assignment,
//! session lifecycle, usage reports, the pool snapshot and the gateway registry. Every route
//! needs the calling gateway's own service token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiJsonAnyText, ApiPath, GatewayCaller};
use crate::app::AppState;
use crate::auth::token;
use crate::config::AssignStrategy;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    now_ms, DeviceStatus, Millis, Plan, Session, Subscription, SubscriptionStatus, UserStatus,
};
use crate::node_pool::PoolView;
use crate::pool::{assign, AssignError, AssignRequest, Strategy};
use crate::shared;
use crate::store::{NewSession, StoreError, UsageRecordInput};

/// Most records in one usage report.
pub const MAX_USAGE_RECORDS: usize = 10_000;
/// Longest report id.
pub const MAX_REPORT_ID_LEN: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/devices/validate", post(validate_device))
        .route("/v1/gateway/nodes/assign", post(assign_node))
        .route("/v1/gateway/sessions", post(start_session))
        .route(
            "/v1/gateway/sessions/{id}/heartbeat",
            post(session_heartbeat),
        )
        .route("/v1/gateway/sessions/{id}/end", post(end_session))
        .route("/v1/gateway/usage", post(report_usage))
        .route("/v1/gateway/pool", get(pool_snapshot))
        .route("/v1/gateway/heartbeat", post(gateway_heartbeat))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// As the client sent it in HELLO (not necessarily a valid id).
    pub device_id: String,
    pub device_token: String,
    /// The client's region preference from HELLO.
    pub region: Option<String>,
}

/// What a device is entitled to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entitlement {
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub plan: Plan,
    pub session_limit: i32,
    /// `null` = unlimited.
    pub remaining_bytes: Option<i64>,
    pub quota_resets_at: Option<Millis>,
    /// When the subscription ends and with it the device's sessions; `null` = never, or a
    /// queued subscription follows.
    pub expires_at: Option<Millis>,
    /// Region codes the device may use; empty = all.
    pub allowed_regions: Vec<String>,
}

/// The answer to a device validation: allowed with an entitlement, or denied with a HELLO_ERROR
/// code. Either may be cached for `cache_ttl_secs`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ValidateResponse {
    Allow {
        cache_ttl_secs: u64,
        entitlement: Box<Entitlement>,
    },
    Deny {
        cache_ttl_secs: u64,
        code: &'static str,
        message: String,
    },
}

fn deny(
    state: &AppState,
    code: &'static str,
    message: impl Into<String>,
) -> Json<ValidateResponse> {
    metrics::counter!("httvps_cp_device_validations_total", "result" => "deny", "code" => code)
        .increment(1);
    tracing::Span::current().record("httvps.verdict", code);
    Json(ValidateResponse::Deny {
        cache_ttl_secs: state.config.denial_ttl_secs,
        code,
        message: message.into(),
    })
}

/// Validates a device's credentials and returns its entitlement or a precise refusal.
#[utoipa::path(post, path = "/v1/gateway/devices/validate", tag = "gateway", request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse), (status = 401, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
#[tracing::instrument(name = "device check", skip_all,
    fields(httvps.device.id = %req.device_id, httvps.verdict = tracing::field::Empty))]
pub async fn validate_device(
    State(state): State<AppState>,
    _gw: GatewayCaller,
    ApiJsonAnyText(req): ApiJsonAnyText<ValidateRequest>,
) -> ApiResult<Json<ValidateResponse>> {
    let now = now_ms();
    let Ok(device_id) = Uuid::parse_str(&req.device_id) else {
        return Ok(deny(&state, "auth_failed", "unknown device or wrong token"));
    };
    let Some((device, hash)) = state.store.device_credentials(device_id).await? else {
        // Same work as a real check, so the answer time does not tell whether the id exists.
        let _ = token::matches(&req.device_token, "");
        return Ok(deny(&state, "auth_failed", "unknown device or wrong token"));
    };
    if !token::matches(&req.device_token, &hash) {
        return Ok(deny(&state, "auth_failed", "unknown device or wrong token"));
    }
    if device.status != DeviceStatus::Active {
        return Ok(deny(
            &state,
            "revoked",
            format!("the device is {}", device.status),
        ));
    }
    let user = state.store.get_user(device.user_id).await?;
    if user.status != UserStatus::Active {
        return Ok(deny(&state, "revoked", "the user is disabled"));
    }
    let Some((sub, plan)) = state.store.resolve_subscription(user.id, now, true).await? else {
        return Ok(deny(&state, "expired", "no subscription in force"));
    };
    let quota = state.store.quota_status(&sub, &plan, now).await?;
    if quota.remaining_bytes == Some(0) {
        return Ok(deny(
            &state,
            "quota_exceeded",
            "the byte quota of this period is used up",
        ));
    }
    if let Some(region) = req.region.as_deref().filter(|r| !r.is_empty()) {
        // SPEC §10.2: a region nobody defined is not allowed either. Codes are lowercase letters,
        // digits and '-': anything else (NUL bytes included) cannot name one.
        let code = region.to_ascii_lowercase();
        let well_formed = code.len() <= 32
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let known = well_formed
            && match state.store.region_by_code(&code).await {
                Ok(_) => true,
                Err(StoreError::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
        if !known {
            return Ok(deny(
                &state,
                "region_not_allowed",
                format!("region {region:?} is unknown"),
            ));
        }
        if !plan.allowed_regions.is_empty()
            && !plan
                .allowed_regions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(region))
        {
            return Ok(deny(
                &state,
                "region_not_allowed",
                format!("region {region:?} is not in the plan"),
            ));
        }
    }
    // Last-seen is kept to the minute: a write per validation would cost more than it tells.
    if device.last_seen_at.is_none_or(|seen| now - seen >= 60_000) {
        state.store.touch_device(device.id, now).await?;
    }
    let expires_at = access_ends_at(&state, &sub).await?;
    metrics::counter!("httvps_cp_device_validations_total", "result" => "allow", "code" => "ok")
        .increment(1);
    tracing::Span::current().record("httvps.verdict", "allow");
    Ok(Json(ValidateResponse::Allow {
        cache_ttl_secs: state.config.entitlement_ttl_secs,
        entitlement: Box::new(Entitlement {
            device_id: device.id,
            user_id: user.id,
            session_limit: plan.session_limit,
            remaining_bytes: quota.remaining_bytes,
            quota_resets_at: quota.period_end,
            expires_at,
            allowed_regions: plan.allowed_regions.clone(),
            plan,
        }),
    }))
}

/// When the user's access ends: the subscription's end, unless a queued subscription starts
/// then (no end time; heartbeats report the next one's end once it runs). Gateways end the
/// sessions at this time to the second.
async fn access_ends_at(state: &AppState, sub: &Subscription) -> ApiResult<Option<Millis>> {
    let Some(end) = sub.ends_at else {
        return Ok(None);
    };
    let queued = state
        .store
        .list_subscriptions(sub.user_id)
        .await?
        .iter()
        .any(|s| s.status == SubscriptionStatus::Queued);
    Ok((!queued).then_some(end))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignNodeRequest {
    pub device_id: Uuid,
    pub session_id: Option<Uuid>,
    /// Preferred region code (from HELLO).
    pub region: Option<String>,
    /// Nodes not to use (e.g. one that just failed to connect).
    #[serde(default)]
    pub exclude: Vec<Uuid>,
}

/// A node as a gateway needs it, secret included.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignedNode {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub cipher: String,
    pub secret: String,
    pub region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignNodeResponse {
    pub node: AssignedNode,
}

/// Picks the node a device's session relays through (sticky while it stays healthy).
#[utoipa::path(post, path = "/v1/gateway/nodes/assign", tag = "gateway", request_body = AssignNodeRequest,
    responses((status = 200, body = AssignNodeResponse), (status = 503, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
#[tracing::instrument(name = "node assignment", skip_all,
    fields(httvps.device.id = %req.device_id, httvps.excluded = req.exclude.len(), httvps.node.id = tracing::field::Empty))]
pub async fn assign_node(
    State(state): State<AppState>,
    _gw: GatewayCaller,
    ApiJsonAnyText(req): ApiJsonAnyText<AssignNodeRequest>,
) -> ApiResult<Json<AssignNodeResponse>> {
    let device = state.store.get_device(req.device_id).await?;
    let plan = state
        .store
        .resolve_subscription(device.user_id, now_ms(), false)
        .await?
        .map(|(_, p)| p);
    let mut view = PoolView::load(&state.store).await?;
    let strategy = match state.config.assign_strategy {
        AssignStrategy::Weighted => Strategy::Weighted,
        AssignStrategy::LeastConnections => Strategy::LeastConnections,
    };
    if strategy == Strategy::LeastConnections {
        // Streams say more about a node's load than sessions do; without them (no Redis, or
        // it is down) the database's session counts rank the nodes.
        if let Some(streams) = shared::live_streams(&state).await {
            view.rank_by_live_streams(&streams);
        }
    }
    // The shared store remembers the node across control-plane replicas and gateways; the
    // database column is the fallback when it is empty or unreachable.
    let sticky = shared::sticky_node(&state, device.id)
        .await
        .or(device.sticky_node_id);
    let allowed = plan.map(|p| p.allowed_regions).filter(|r| !r.is_empty());
    let preferred = req.region.filter(|r| !r.is_empty());
    let request = AssignRequest {
        client_location: preferred
            .as_ref()
            .and_then(|r| view.region_locations.get(r).copied()),
        preferred_region: preferred,
        allowed_regions: allowed,
        sticky_node: sticky,
        exclude: req.exclude,
    };
    let chosen = assign(
        &view.candidates,
        &request,
        strategy,
        &mut rand::thread_rng(),
    )
    .map_err(|e| {
        metrics::counter!("httvps_cp_node_assignments_total", "result" => "unavailable")
            .increment(1);
        let detail = match e {
            AssignError::NoNodes => "no healthy, active node is available",
            AssignError::RegionNotAllowed => "no node in a region the plan allows",
            AssignError::AllAtCapacity => "every eligible node is at capacity",
        };
        ApiError::refused(StatusCode::SERVICE_UNAVAILABLE, "node_unavailable", detail)
    })?;
    let node = view
        .nodes
        .get(&chosen)
        .ok_or_else(|| ApiError::Internal("assigned node vanished".into()))?;
    if device.sticky_node_id != Some(chosen) {
        state.store.set_sticky_node(device.id, Some(chosen)).await?;
    }
    // Also when unchanged: renews its TTL.
    shared::set_sticky_node(&state, device.id, chosen).await;
    if let Some(session) = req.session_id {
        state.store.move_session(session, chosen).await?;
    }
    metrics::counter!("httvps_cp_node_assignments_total", "result" => "assigned").increment(1);
    tracing::Span::current().record("httvps.node.id", tracing::field::display(chosen));
    Ok(Json(AssignNodeResponse {
        node: AssignedNode {
            id: node.id,
            name: node.name.clone(),
            host: node.host.clone(),
            port: node.port,
            cipher: node.cipher.clone(),
            secret: node.secret.clone(),
            region: view.region_of(node),
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSessionRequest {
    pub session_id: Uuid,
    pub device_id: Uuid,
    pub node_id: Option<Uuid>,
    pub client_region: Option<String>,
}

/// Registers a new session under the plan's concurrent-session limit. An id that exists already
/// is the same session: a retried start, or a resume on another gateway, which moves it to the
/// caller without counting it again. 403 `revoked` for a device that may not connect or a
/// session an operator killed, `expired` without a subscription.
#[utoipa::path(post, path = "/v1/gateway/sessions", tag = "gateway", request_body = StartSessionRequest,
    responses((status = 201, body = Session), (status = 409, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn start_session(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(req): ApiJson<StartSessionRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let device = state.store.get_device(req.device_id).await?;
    if device.status != DeviceStatus::Active {
        return Err(ApiError::refused(
            StatusCode::FORBIDDEN,
            "revoked",
            format!("the device is {}", device.status),
        ));
    }
    let Some((_, plan)) = state
        .store
        .resolve_subscription(device.user_id, now_ms(), true)
        .await?
    else {
        return Err(ApiError::refused(
            StatusCode::FORBIDDEN,
            "expired",
            "no subscription in force",
        ));
    };
    let new = NewSession {
        id: req.session_id,
        device_id: device.id,
        user_id: device.user_id,
        gateway_id: gw.gateway.id,
        node_id: req.node_id,
        client_region: req.client_region,
        session_limit: Some(plan.session_limit),
    };
    let mut started = state.store.start_session(&new).await;
    if matches!(&started, Err(StoreError::Conflict(msg)) if msg.contains("too many sessions"))
        && shared::end_sessions_without_a_slot(&state, device.user_id).await > 0
    {
        // Some of the sessions counted were dead (their gateway crashed): count again.
        started = state.store.start_session(&new).await;
    }
    let session = started.map_err(|e| match e {
        StoreError::Conflict(msg) if msg.contains("too many sessions") => {
            ApiError::refused(StatusCode::CONFLICT, "too_many_sessions", msg)
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// What a session heartbeat tells the gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatResponse {
    pub session_id: Uuid,
    /// The node the session should use now (failover may have moved it).
    pub node_id: Option<Uuid>,
    /// Close the session now.
    pub end: bool,
    pub end_reason: Option<&'static str>,
    /// When the user's access ends as of now (as in the device validation's entitlement; a
    /// renewal moves it): the gateway ends the session then.
    pub expires_at: Option<Millis>,
}

/// Keeps a session alive and tells the gateway whether to move or end it.
#[utoipa::path(post, path = "/v1/gateway/sessions/{id}/heartbeat", tag = "gateway",
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 200, body = HeartbeatResponse), (status = 404, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn session_heartbeat(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let now = now_ms();
    let session = state
        .store
        .heartbeat_session(id, gw.gateway.id, now)
        .await?;
    let mut expires_at = None;
    let end_reason = if session.kill_requested {
        Some("killed")
    } else {
        let device = state.store.get_device(session.device_id).await?;
        let user = state.store.get_user(session.user_id).await?;
        if device.status != DeviceStatus::Active || user.status != UserStatus::Active {
            Some("revoked")
        } else {
            match state
                .store
                .resolve_subscription(user.id, now, false)
                .await?
            {
                None => Some("expired"),
                Some((sub, _)) => {
                    expires_at = access_ends_at(&state, &sub).await?;
                    None
                }
            }
        }
    };
    Ok(Json(HeartbeatResponse {
        session_id: session.id,
        node_id: session.node_id,
        end: end_reason.is_some(),
        end_reason,
        expires_at,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndSessionRequest {
    /// Why the session ended (`client_closed`, `idle`, `shutdown`, ...), at most 64 bytes.
    pub reason: String,
}

/// Records the end of a session (idempotent).
#[utoipa::path(post, path = "/v1/gateway/sessions/{id}/end", tag = "gateway", request_body = EndSessionRequest,
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 200, body = Session), (status = 404, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn end_session(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<EndSessionRequest>,
) -> ApiResult<Json<Session>> {
    if req.reason.is_empty() || req.reason.len() > 64 {
        return Err(ApiError::Validation(
            "reason must have 1 to 64 bytes".into(),
        ));
    }
    Ok(Json(
        state
            .store
            .end_session(id, gw.gateway.id, &req.reason, now_ms())
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    pub session_id: Option<Uuid>,
    pub device_id: Uuid,
    pub node_id: Option<Uuid>,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// When the bytes were counted, Unix ms.
    pub at: Millis,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// Unique per gateway; a retried report reuses its id and is counted once.
    pub report_id: String,
    pub records: Vec<UsageRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReportResponse {
    pub accepted: bool,
    /// The report id was seen before; nothing was counted again.
    pub duplicate: bool,
}

/// Ingests a batch of byte counts, exactly once per (gateway, report id).
#[utoipa::path(post, path = "/v1/gateway/usage", tag = "gateway", request_body = UsageReport,
    responses((status = 200, body = UsageReportResponse), (status = 422, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn report_usage(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(report): ApiJson<UsageReport>,
) -> ApiResult<Json<UsageReportResponse>> {
    if report.report_id.is_empty() || report.report_id.len() > MAX_REPORT_ID_LEN {
        return Err(ApiError::Validation(format!(
            "report_id must have 1 to {MAX_REPORT_ID_LEN} bytes"
        )));
    }
    if report.records.len() > MAX_USAGE_RECORDS {
        return Err(ApiError::Validation(format!(
            "at most {MAX_USAGE_RECORDS} records per report"
        )));
    }
    const MAX_BYTES: i64 = 1 << 50;
    for (i, r) in report.records.iter().enumerate() {
        if !(0..=MAX_BYTES).contains(&r.bytes_up) || !(0..=MAX_BYTES).contains(&r.bytes_down) {
            return Err(ApiError::Validation(format!(
                "records[{i}]: byte counts must be between 0 and 2^50"
            )));
        }
        if r.at <= 0 {
            return Err(ApiError::Validation(format!(
                "records[{i}]: at must be a positive Unix millisecond time"
            )));
        }
    }
    let records: Vec<UsageRecordInput> = report
        .records
        .iter()
        .map(|r| UsageRecordInput {
            session_id: r.session_id,
            device_id: r.device_id,
            node_id: r.node_id,
            bytes_up: r.bytes_up,
            bytes_down: r.bytes_down,
            at: r.at,
        })
        .collect();
    let fresh = state
        .store
        .ingest_usage(gw.gateway.id, &report.report_id, &records, now_ms())
        .await?;
    metrics::counter!("httvps_cp_usage_reports_total", "result" => if fresh { "accepted" } else { "duplicate" }).increment(1);
    Ok(Json(UsageReportResponse {
        accepted: true,
        duplicate: !fresh,
    }))
}

/// One node of the pool snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolNode {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub cipher: String,
    pub secret: String,
    pub region: Option<String>,
    pub groups: Vec<Uuid>,
    pub weight: i32,
    pub capacity: i32,
    pub load: u32,
    pub health: crate::model::NodeHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolSnapshot {
    pub nodes: Vec<PoolNode>,
}

/// The active nodes that are not known to be unhealthy, with their live load.
#[utoipa::path(get, path = "/v1/gateway/pool", tag = "gateway", responses((status = 200, body = PoolSnapshot)), security(("gateway_token" = [])))]
pub async fn pool_snapshot(
    State(state): State<AppState>,
    _gw: GatewayCaller,
) -> ApiResult<Json<PoolSnapshot>> {
    let view = PoolView::load(&state.store).await?;
    let mut nodes: Vec<PoolNode> = view
        .candidates
        .iter()
        .filter(|c| c.healthy && c.active)
        .filter_map(|c| {
            let n = view.nodes.get(&c.id)?;
            Some(PoolNode {
                id: n.id,
                name: n.name.clone(),
                host: n.host.clone(),
                port: n.port,
                cipher: n.cipher.clone(),
                secret: n.secret.clone(),
                region: view.region_of(n),
                groups: n.groups.clone(),
                weight: n.weight,
                capacity: n.capacity,
                load: c.load,
                health: n.health,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(Json(PoolSnapshot { nodes }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayHeartbeat {
    /// The gateway's software version, at most 64 bytes.
    pub version: Option<String>,
}

/// Marks the calling gateway alive in the registry.
#[utoipa::path(post, path = "/v1/gateway/heartbeat", tag = "gateway", request_body = GatewayHeartbeat, responses((status = 204)), security(("gateway_token" = [])))]
pub async fn gateway_heartbeat(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(req): ApiJson<GatewayHeartbeat>,
) -> ApiResult<StatusCode> {
    if req.version.as_ref().is_some_and(|v| v.len() > 64) {
        return Err(ApiError::Validation(
            "version must have at most 64 bytes".into(),
        ));
    }
    state
        .store
        .gateway_heartbeat(gw.gateway.id, req.version.as_deref(), now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
