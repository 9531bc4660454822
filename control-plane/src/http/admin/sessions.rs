//! Sessions: list (live or all, by user, device, gateway or node), read, and end one (its
//! gateway hears it through the shared store, or at the next heartbeat).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{page, Operator};
use crate::app::AppState;
use crate::domain;
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiPath, ApiQuery};
use crate::model::Session;
use crate::store::SessionFilter;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSessions {
    /// Only sessions that have not ended (default false).
    pub live: Option<bool>,
    pub user_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub gateway_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    /// Most rows to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Lists sessions, newest first.
#[utoipa::path(get, path = "/v1/admin/sessions", tag = "admin", params(ListSessions),
    responses((status = 200, body = Vec<Session>), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<ListSessions>,
) -> ApiResult<Json<Vec<Session>>> {
    let page = page(q.limit, q.offset)?;
    let filter = SessionFilter {
        live_only: q.live.unwrap_or(false),
        user_id: q.user_id,
        device_id: q.device_id,
        gateway_id: q.gateway_id,
        node_id: q.node_id,
        limit: page.limit,
    };
    Ok(Json(
        state
            .store
            .list_sessions_after(&filter, page.offset)
            .await?,
    ))
}

/// Reads one session.
#[utoipa::path(get, path = "/v1/admin/sessions/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_session(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Session>> {
    Ok(Json(state.store.get_session(id).await?))
}

/// Ends a live session: its gateway closes it at once (with Redis; else at the next heartbeat).
#[utoipa::path(post, path = "/v1/admin/sessions/{id}/end", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn end_session(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        domain::sessions::kill(&state, &caller.actor(), id).await?,
    ))
}
