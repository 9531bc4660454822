//! Admin accounts (admin role only): create, list, read, and change role, disabled flag or
//! password. An admin cannot disable or demote themself, so there is always someone left to
//! undo a mistake.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{blocking, AdminOnly, MAX_NAME};
use crate::app::AppState;
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath};
use crate::model::{Admin, Role};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdmin {
    /// 1 to 64 of `A-Z a-z 0-9 . _ - @`.
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdmin {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password (at least 12 characters). Every token issued to the admin before stops
    /// working.
    pub password: Option<String>,
    /// Your current password: required to change your own.
    pub current_password: Option<String>,
}

fn username(value: &str) -> ApiResult<String> {
    if value.is_empty() || value.chars().count() > MAX_NAME {
        return Err(ApiError::Validation(format!(
            "username must have 1 to {MAX_NAME} characters"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(ApiError::Validation(
            "username may only contain letters, digits, '.', '_', '-' and '@'".into(),
        ));
    }
    Ok(value.to_owned())
}

async fn hash_password(password: String) -> ApiResult<String> {
    blocking(move || password::hash(&password))
        .await?
        .map_err(|e| match e {
            password::PasswordError::Hash(msg) => ApiError::Internal(msg),
            other => ApiError::Validation(other.to_string()),
        })
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
    let name = username(&req.username)?;
    let hash = hash_password(req.password).await?;
    let admin = state
        .store
        .create_admin(&caller.actor(), &name, &hash, req.role)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("an admin named {name:?} exists already"))
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(admin)))
}

/// Lists admin accounts.
#[utoipa::path(get, path = "/v1/admin/admins", tag = "admin", responses((status = 200, body = Vec<Admin>)), security(("admin_jwt" = [])))]
pub async fn list_admins(
    State(state): State<AppState>,
    _caller: AdminOnly,
) -> ApiResult<Json<Vec<Admin>>> {
    Ok(Json(state.store.list_admins().await?))
}

/// Reads one admin account.
#[utoipa::path(get, path = "/v1/admin/admins/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Admin), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
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
    if req.role.is_none() && req.disabled.is_none() && req.password.is_none() {
        return Err(ApiError::Validation(
            "nothing to change: give role, disabled or password".into(),
        ));
    }
    state.store.get_admin(id).await?;
    if id == caller.id {
        if req.disabled == Some(true) {
            return Err(ApiError::Conflict("you cannot disable yourself".into()));
        }
        if req.role.is_some_and(|r| r != Role::Admin) {
            return Err(ApiError::Conflict("you cannot demote yourself".into()));
        }
        if req.password.is_some() {
            // A stolen token alone must not be enough to take the account over.
            let Some(current) = req.current_password.clone() else {
                return Err(ApiError::Validation(
                    "give current_password to change your own password".into(),
                ));
            };
            let hash = state.store.admin_password_hash(id).await?;
            if !blocking(move || password::verify(&current, &hash)).await? {
                return Err(ApiError::Forbidden("current_password is wrong".into()));
            }
        }
    }
    let hash = match req.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    Ok(Json(
        state
            .store
            .update_admin(&caller.actor(), id, req.role, req.disabled, hash.as_deref())
            .await?,
    ))
}
