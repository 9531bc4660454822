//! The session lifecycle: start under the plan's limit, heartbeat, end.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use httvps_contract::session::{EndSessionRequest, HeartbeatResponse, StartSessionRequest};
use httvps_contract::validate::Entitlement;
use httvps_contract::{routes, EndReason, RefusalCode};
use uuid::Uuid;

use super::devices::{access_ends_at, cached_plan};
use crate::app::AppState;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath, GatewayCaller};
use crate::model::{now_ms, DeviceStatus, Millis, Session, UserStatus};
use crate::store::{in_force, NewSession, ValidationFacts};
use crate::validation_cache::Verdict;

/// Registers a new session under the plan's concurrent-session limit. An id that exists already
/// is the same session: a retried start, or a resume on another gateway, which moves it to the
/// caller without counting it again. 403 `revoked` for a device that may not connect or a
/// session an operator killed, `expired` without a subscription.
#[utoipa::path(post, path = routes::START_SESSION, tag = "gateway", request_body = StartSessionRequest,
    responses((status = 201, body = Session), (status = 404, body = crate::error::Problem, description = "unknown device"), (status = 409, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn start_session(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(req): ApiJson<StartSessionRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let new = new_session(&state, gw.gateway.id, req, None).await?;
    // A session-limit conflict becomes the 409 `too_many_sessions` refusal (crate::error).
    let session = domain::sessions::start(&state, &new).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// The session a gateway asks to start, with its user and the plan's limit: from the
/// validation cache's allow for the device when it holds one (the gateway validated the device
/// just before), else from the device's validation `facts` when a batch read them and they show
/// a subscription in force, else from the store. 403 `revoked` for a device that may not
/// connect, `expired` without a subscription in force.
pub(super) async fn new_session(
    state: &AppState,
    gateway: Uuid,
    req: StartSessionRequest,
    facts: Option<&ValidationFacts>,
) -> ApiResult<NewSession> {
    let new = |user_id, session_limit| NewSession {
        id: req.session_id,
        device_id: req.device_id,
        user_id,
        gateway_id: gateway,
        node_id: req.node_id,
        client_region: req.client_region.clone(),
        session_limit: Some(session_limit),
    };
    if let Some(entitlement) = cached_allow(state, req.device_id, now_ms()) {
        let limit = i32::try_from(entitlement.session_limit).unwrap_or(i32::MAX);
        return Ok(new(entitlement.user_id, limit));
    }
    let now = now_ms();
    if let Some(facts) = facts.filter(|f| f.device.status == DeviceStatus::Active) {
        if let Some((sub, _)) = facts.active.as_ref().filter(|(s, _)| in_force(s, now)) {
            let plan = cached_plan(state, sub.plan_id, now).await?;
            return Ok(new(facts.device.user_id, plan.session_limit));
        }
    }
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
    Ok(new(device.user_id, plan.session_limit))
}

/// The validation cache's current allow for the device: it holds while the device and its user
/// are active and a subscription is in force (any change to them invalidates it).
fn cached_allow(state: &AppState, device: Uuid, now: Millis) -> Option<Box<Entitlement>> {
    match state.validation.verdict(device, now)?.verdict {
        Verdict::Allow(entitlement) => Some(entitlement),
        Verdict::Deny(..) => None,
    }
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
    Ok(Json(heartbeat_answer(&state, &session, now).await?))
}

/// What a heartbeat tells the gateway about a live session: end it (killed, revoked, expired),
/// or when its access ends. A device the validation cache allows needs no read.
pub(super) async fn heartbeat_answer(
    state: &AppState,
    session: &Session,
    now: Millis,
) -> ApiResult<HeartbeatResponse> {
    let mut expires_at = None;
    let end_reason = if session.kill_requested {
        Some(EndReason::Killed)
    } else if let Some(entitlement) = cached_allow(state, session.device_id, now) {
        expires_at = entitlement.expires_at;
        None
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
                    expires_at = access_ends_at(state, &sub).await?;
                    None
                }
            }
        }
    };
    Ok(HeartbeatResponse {
        session_id: session.id,
        node_id: session.node_id,
        end: end_reason.is_some(),
        end_reason,
        expires_at: Some(expires_at),
    })
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
