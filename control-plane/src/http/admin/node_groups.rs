//! Node groups: named sets of nodes (a node may be in several); failover prefers the failed
//! node's own groups.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{free_text, text, Operator, PageQuery, MAX_DESCRIPTION, MAX_NAME};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::NodeGroup;
use crate::store::StoreError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNodeGroup {
    /// Unique, 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// At most 512 characters.
    #[serde(default)]
    #[schema(max_length = 512)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNodeGroup {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 512)]
    pub description: Option<String>,
}

fn conflict(name: Option<&str>) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => ApiError::Conflict(format!(
            "a node group named {:?} exists already",
            name.unwrap_or_default()
        )),
        other => other.into(),
    }
}

/// Creates a node group.
#[utoipa::path(post, path = "/v1/admin/node-groups", tag = "admin", request_body = CreateNodeGroup,
    responses((status = 201, body = NodeGroup), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_node_group(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreateNodeGroup>,
) -> ApiResult<(StatusCode, Json<NodeGroup>)> {
    let name = text("name", &req.name, MAX_NAME)?;
    let description = free_text("description", &req.description, MAX_DESCRIPTION)?;
    let group = state
        .store
        .create_node_group(&caller.actor(), &name, &description)
        .await
        .map_err(conflict(Some(&name)))?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Lists node groups by name.
#[utoipa::path(get, path = "/v1/admin/node-groups", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<NodeGroup>)), security(("admin_jwt" = [])))]
pub async fn list_node_groups(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<NodeGroup>>> {
    Ok(Json(state.store.list_node_groups_page(q.page()?).await?))
}

/// Reads one node group.
#[utoipa::path(get, path = "/v1/admin/node-groups/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = NodeGroup), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_node_group(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<NodeGroup>> {
    Ok(Json(state.store.get_node_group(id).await?))
}

/// Renames a node group or changes its description.
#[utoipa::path(patch, path = "/v1/admin/node-groups/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateNodeGroup,
    responses((status = 200, body = NodeGroup), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn update_node_group(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateNodeGroup>,
) -> ApiResult<Json<NodeGroup>> {
    if req.name.is_none() && req.description.is_none() {
        return Err(ApiError::Validation(
            "nothing to change: give name or description".into(),
        ));
    }
    let name = req
        .name
        .as_deref()
        .map(|n| text("name", n, MAX_NAME))
        .transpose()?;
    let description = req
        .description
        .as_deref()
        .map(|d| free_text("description", d, MAX_DESCRIPTION))
        .transpose()?;
    let group = state
        .store
        .update_node_group(&caller.actor(), id, name.as_deref(), description.as_deref())
        .await
        .map_err(conflict(name.as_deref()))?;
    Ok(Json(group))
}

/// Deletes a node group (its nodes stay, outside the group).
#[utoipa::path(delete, path = "/v1/admin/node-groups/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_node_group(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.store.delete_node_group(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
