//! Pool nodes (Outline / Shadowsocks servers): create from fields or from an Outline `ss://`
//! access key, list, read, update, delete, and read the health history. A node's secret is
//! accepted but never returned.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{limit, Operator, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{HealthEvent, Millis, Node, NodeHealth, NodeStatus};

pub use crate::domain::nodes::{
    ImportInput as ImportNode, NodeChanges as UpdateNode, NodeInput as CreateNode,
    DEFAULT_CAPACITY, DEFAULT_WEIGHT, MAX_ACCESS_KEY, MAX_CAPACITY, MAX_GROUPS, MAX_SECRET,
    MAX_WEIGHT,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// History entries, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

// The health fields of `model::Node` under `node_id`, plus the history: a view of the node for
// this route; sharing a struct with `Node` would change the node's JSON and every user of it.
/// A node's health now and its history of state changes, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeHealthReport {
    pub node_id: Uuid,
    pub status: NodeStatus,
    pub health: NodeHealth,
    pub consecutive_failures: i32,
    pub consecutive_successes: i32,
    pub last_checked_at: Option<Millis>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub history: Vec<HealthEvent>,
}

/// Adds a node.
#[utoipa::path(post, path = "/v1/admin/nodes", tag = "admin", request_body = CreateNode,
    responses((status = 201, body = Node), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn create_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreateNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    Ok((
        StatusCode::CREATED,
        Json(domain::nodes::create(&state, &caller.actor(), req).await?),
    ))
}

/// Adds a node from an Outline (or SIP002) `ss://` access key.
#[utoipa::path(post, path = "/v1/admin/nodes/import", tag = "admin", request_body = ImportNode,
    responses((status = 201, body = Node), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn import_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<ImportNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    Ok((
        StatusCode::CREATED,
        Json(domain::nodes::import(&state, &caller.actor(), req).await?),
    ))
}

/// Lists nodes by name (secrets omitted).
#[utoipa::path(get, path = "/v1/admin/nodes", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<Node>)), security(("admin_jwt" = [])))]
pub async fn list_nodes(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Node>>> {
    Ok(Json(state.store.list_nodes_page(q.page()?).await?))
}

/// Reads one node (secret omitted).
#[utoipa::path(get, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Node), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_node(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Node>> {
    Ok(Json(state.store.get_node(id).await?))
}

/// Changes a node; a changed address or credentials are validated as a whole.
#[utoipa::path(patch, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateNode,
    responses((status = 200, body = Node), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn update_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateNode>,
) -> ApiResult<Json<Node>> {
    Ok(Json(
        domain::nodes::update(&state, &caller.actor(), id, req).await?,
    ))
}

/// Deletes a node (its live sessions lose their node and are reassigned by their gateways).
#[utoipa::path(delete, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.store.delete_node(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A node's health and its history of health changes, newest first.
#[utoipa::path(get, path = "/v1/admin/nodes/{id}/health", tag = "admin", params(("id" = Uuid, Path), HealthQuery),
    responses((status = 200, body = NodeHealthReport), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn node_health(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> ApiResult<Json<NodeHealthReport>> {
    let limit = limit(q.limit)?;
    let node = state.store.get_node(id).await?;
    let history = state.store.health_history(id, limit).await?;
    Ok(Json(NodeHealthReport {
        node_id: node.id,
        status: node.status,
        health: node.health,
        consecutive_failures: node.consecutive_failures,
        consecutive_successes: node.consecutive_successes,
        last_checked_at: node.last_checked_at,
        last_latency_ms: node.last_latency_ms,
        last_error: node.last_error,
        history,
    }))
}
