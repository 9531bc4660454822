//! Admin accounts (admin role only): create, list, read, and change role, disabled flag or
//! password. An admin cannot disable or demote themself, so there is always someone left to
//! undo a mistake.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AdminOnly, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::domain::admins::AdminChanges;
use crate::error::ApiResult;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{Admin, Role};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdmin {
    /// 1 to 64 of `A-Z a-z 0-9 . _ - @`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub username: String,
    /// 12 to 1024 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdmin {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password (12 to 1024 characters). Every token issued to the admin before stops
    /// working.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    /// Your current password: required to change your own.
    pub current_password: Option<String>,
}

/// Creates an admin account.
#[utoipa::path(post, path = "/v1/admin/admins", tag = "admin", request_body = CreateAdmin,
    responses((status = 201, body = Admin), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_admin(
    State(state): State<AppState>,
    AdminOnly(caller): AdminOnly,
    ApiJson(req): ApiJson<CreateAdmin>,
) -> ApiResult<(StatusCode, Json<Admin>)> {
    let admin = domain::admins::create(
        &state,
        &caller.actor(),
        &req.username,
        req.password,
        req.role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(admin)))
}

/// Lists admin accounts.
#[utoipa::path(get, path = "/v1/admin/admins", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<Admin>), (status = 403, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn list_admins(
    State(state): State<AppState>,
    _caller: AdminOnly,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Admin>>> {
    Ok(Json(state.store.list_admins_page(q.page()?).await?))
}

/// Reads one admin account.
#[utoipa::path(get, path = "/v1/admin/admins/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Admin), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_admin(
    State(state): State<AppState>,
    _caller: AdminOnly,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Admin>> {
    Ok(Json(state.store.get_admin(id).await?))
}

/// Changes an admin's role, disabled flag or password.
#[utoipa::path(patch, path = "/v1/admin/admins/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateAdmin,
    responses((status = 200, body = Admin), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn update_admin(
    State(state): State<AppState>,
    AdminOnly(caller): AdminOnly,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateAdmin>,
) -> ApiResult<Json<Admin>> {
    let changes = AdminChanges {
        role: req.role,
        disabled: req.disabled,
        password: req.password,
        current_password: req.current_password,
    };
    Ok(Json(
        domain::admins::update(&state, caller.id, &caller.actor(), id, changes).await?,
    ))
}
