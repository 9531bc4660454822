//! The gateway-facing API (see docs/control-plane.md): device validation, node assignment,
//! session lifecycle, usage reports, the pool snapshot and the gateway registry. Every route
//! needs the calling gateway's own service token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use httvps_contract::assign::{AssignNodeRequest, AssignNodeResponse, AssignedNode};
use httvps_contract::pool::{NodeHealth as PoolNodeHealth, PoolNode, PoolSnapshot};
use httvps_contract::session::{
    EndSessionRequest, GatewayHeartbeat, HeartbeatResponse, StartSessionRequest,
};
use httvps_contract::usage::{UsageReport, UsageReportResponse};
use httvps_contract::validate::{Entitlement, PlanTerms, ValidateRequest, ValidateResponse};
use httvps_contract::{routes, DenyCode, EndReason, RefusalCode};
use uuid::Uuid;

use super::extract::{ApiJson, ApiJsonAnyText, ApiPath, GatewayCaller};
use crate::app::AppState;
use crate::auth::token;
use crate::config::AssignStrategy;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    now_ms, DeviceStatus, Millis, NodeHealth, Plan, Session, Subscription, SubscriptionStatus,
    UserStatus,
};
use crate::node_pool::PoolView;
use crate::pool::{assign, AssignError, AssignRequest, Strategy};
use crate::shared;
use crate::store::{NewSession, StoreError, UsageRecordInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::VALIDATE_DEVICE, post(validate_device))
        .route(routes::ASSIGN_NODE, post(assign_node))
        .route(routes::START_SESSION, post(start_session))
        .route(routes::SESSION_HEARTBEAT, post(session_heartbeat))
        .route(routes::END_SESSION, post(end_session))
        .route(routes::REPORT_USAGE, post(report_usage))
        .route(routes::POOL, get(pool_snapshot))
        .route(routes::GATEWAY_HEARTBEAT, post(gateway_heartbeat))
}

fn deny(state: &AppState, code: DenyCode, message: impl Into<String>) -> Json<ValidateResponse> {
    metrics::counter!("httvps_cp_device_validations_total", "result" => "deny", "code" => code.as_str())
        .increment(1);
    tracing::Span::current().record("httvps.verdict", code.as_str());
    Json(ValidateResponse::Deny {
        cache_ttl_secs: state.config.denial_ttl_secs,
        code,
        message: message.into(),
    })
}

/// Validates a device's credentials and returns its entitlement or a precise refusal.
#[utoipa::path(post, path = routes::VALIDATE_DEVICE, tag = "gateway", request_body = ValidateRequest,
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
        return Ok(deny(
            &state,
            DenyCode::AuthFailed,
            "unknown device or wrong token",
        ));
    };
    let Some((device, hash)) = state.store.device_credentials(device_id).await? else {
        // Same work as a real check, so the answer time does not tell whether the id exists.
        let _ = token::matches(&req.device_token, "");
        return Ok(deny(
            &state,
            DenyCode::AuthFailed,
            "unknown device or wrong token",
        ));
    };
    if !token::matches(&req.device_token, &hash) {
        return Ok(deny(
            &state,
            DenyCode::AuthFailed,
            "unknown device or wrong token",
        ));
    }
    if device.status != DeviceStatus::Active {
        return Ok(deny(
            &state,
            DenyCode::Revoked,
            format!("the device is {}", device.status),
        ));
    }
    let user = state.store.get_user(device.user_id).await?;
    if user.status != UserStatus::Active {
        return Ok(deny(&state, DenyCode::Revoked, "the user is disabled"));
    }
    let Some((sub, plan)) = state.store.resolve_subscription(user.id, now, true).await? else {
        return Ok(deny(&state, DenyCode::Expired, "no subscription in force"));
    };
    let quota = state.store.quota_status(&sub, &plan, now).await?;
    if quota.remaining_bytes == Some(0) {
        return Ok(deny(
            &state,
            DenyCode::QuotaExceeded,
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
                DenyCode::RegionNotAllowed,
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
                DenyCode::RegionNotAllowed,
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
            // Limits and byte counts are never negative in the store; a negative one would
            // allow nothing.
            session_limit: u32::try_from(plan.session_limit).unwrap_or(0),
            remaining_bytes: quota.remaining_bytes.map(|b| u64::try_from(b).unwrap_or(0)),
            quota_resets_at: quota.period_end,
            expires_at,
            allowed_regions: plan.allowed_regions.clone(),
            plan: plan_terms(&plan),
        }),
    }))
}

/// The plan's terms a gateway enforces.
fn plan_terms(plan: &Plan) -> PlanTerms {
    PlanTerms {
        id: plan.id,
        name: plan.name.clone(),
        quota_bytes: plan.quota_bytes.map(|b| u64::try_from(b).unwrap_or(0)),
    }
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

/// Picks the node a device's session relays through (sticky while it stays healthy).
#[utoipa::path(post, path = routes::ASSIGN_NODE, tag = "gateway", request_body = AssignNodeRequest,
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
        ApiError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalCode::NodeUnavailable.as_str(),
            detail,
        )
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

/// Registers a new session under the plan's concurrent-session limit. An id that exists already
/// is the same session: a retried start, or a resume on another gateway, which moves it to the
/// caller without counting it again. 403 `revoked` for a device that may not connect or a
/// session an operator killed, `expired` without a subscription.
#[utoipa::path(post, path = routes::START_SESSION, tag = "gateway", request_body = StartSessionRequest,
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
            RefusalCode::Revoked.as_str(),
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
            RefusalCode::Expired.as_str(),
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
        StoreError::Conflict(msg) if msg.contains("too many sessions") => ApiError::refused(
            StatusCode::CONFLICT,
            RefusalCode::TooManySessions.as_str(),
            msg,
        ),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Keeps a session alive and tells the gateway whether to move or end it.
#[utoipa::path(post, path = routes::SESSION_HEARTBEAT, tag = "gateway",
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
        Some(EndReason::Killed)
    } else {
        let device = state.store.get_device(session.device_id).await?;
        let user = state.store.get_user(session.user_id).await?;
        if device.status != DeviceStatus::Active || user.status != UserStatus::Active {
            Some(EndReason::Revoked)
        } else {
            match state
                .store
                .resolve_subscription(user.id, now, false)
                .await?
            {
                None => Some(EndReason::Expired),
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
        expires_at: Some(expires_at),
    }))
}

/// Records the end of a session (idempotent).
#[utoipa::path(post, path = routes::END_SESSION, tag = "gateway", request_body = EndSessionRequest,
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 200, body = Session), (status = 404, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn end_session(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<EndSessionRequest>,
) -> ApiResult<Json<Session>> {
    // The reason's length is checked as it is decoded (EndReason).
    Ok(Json(
        state
            .store
            .end_session(id, gw.gateway.id, req.reason.as_str(), now_ms())
            .await?,
    ))
}

/// Ingests a batch of byte counts, exactly once per (gateway, report id).
#[utoipa::path(post, path = routes::REPORT_USAGE, tag = "gateway", request_body = UsageReport,
    responses((status = 200, body = UsageReportResponse), (status = 422, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn report_usage(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(report): ApiJson<UsageReport>,
) -> ApiResult<Json<UsageReportResponse>> {
    report.check().map_err(|e| ApiError::Validation(e.0))?;
    let records = report
        .records
        .iter()
        .map(|r| {
            // Checked above to be at most 2^50: they fit the store's signed columns.
            let bytes = |b: u64| {
                i64::try_from(b).map_err(|_| ApiError::Validation("byte count too large".into()))
            };
            Ok(UsageRecordInput {
                session_id: r.session_id,
                device_id: r.device_id,
                node_id: r.node_id,
                bytes_up: bytes(r.bytes_up)?,
                bytes_down: bytes(r.bytes_down)?,
                at: r.at,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
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

/// The active nodes that are not known to be unhealthy, with their live load.
#[utoipa::path(get, path = routes::POOL, tag = "gateway", responses((status = 200, body = PoolSnapshot)), security(("gateway_token" = [])))]
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
                health: match n.health {
                    NodeHealth::Unknown => PoolNodeHealth::Unknown,
                    NodeHealth::Healthy => PoolNodeHealth::Healthy,
                    NodeHealth::Unhealthy => PoolNodeHealth::Unhealthy,
                },
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(Json(PoolSnapshot { nodes }))
}

/// Marks the calling gateway alive in the registry.
#[utoipa::path(post, path = routes::GATEWAY_HEARTBEAT, tag = "gateway", request_body = GatewayHeartbeat, responses((status = 204)), security(("gateway_token" = [])))]
pub async fn gateway_heartbeat(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(req): ApiJson<GatewayHeartbeat>,
) -> ApiResult<StatusCode> {
    req.check().map_err(|e| ApiError::Validation(e.0))?;
    state
        .store
        .gateway_heartbeat(gw.gateway.id, req.version.as_deref(), now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
