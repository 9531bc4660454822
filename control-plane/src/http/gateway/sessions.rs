//! The session lifecycle: start under the plan's limit, heartbeat, end.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use httvps_contract::session::{EndSessionRequest, HeartbeatResponse, StartSessionRequest};
use httvps_contract::{routes, EndReason, RefusalCode};
use uuid::Uuid;

use super::devices::access_ends_at;
use crate::app::AppState;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath, GatewayCaller};
use crate::model::{now_ms, DeviceStatus, Session, UserStatus};
use crate::store::NewSession;

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
    // A session-limit conflict becomes the 409 `too_many_sessions` refusal (crate::error).
    let session = domain::sessions::start(&state, &new).await?;
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
