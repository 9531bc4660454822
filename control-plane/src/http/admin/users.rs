//! Users (customers): create, list, read, update (including disable / enable through
//! `status`), delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{nullable, Operator, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{User, UserStatus};
use crate::store::UserUpdate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique, 1 to 64 characters (surrounding spaces are trimmed), no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// `local@domain.tld`, at most 254 characters.
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 254)]
    pub email: Option<Option<String>>,
    /// `disabled` stops the user's devices from connecting; `active` lets them again.
    pub status: Option<UserStatus>,
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user =
        domain::users::create(&state, &caller.actor(), &req.name, req.email.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Lists users by name.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(PageQuery),
    responses((status = 200, body = Vec<User>)), security(("admin_jwt" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<User>>> {
    let page = q.page()?;
    Ok(Json(state.store.list_users(page.limit, page.offset).await?))
}

/// Reads one user.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.store.get_user(id).await?))
}

/// Renames a user, changes the e-mail address, or disables / enables the user.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    let update = UserUpdate {
        name: req.name,
        email: req.email,
        status: req.status,
    };
    let user = domain::users::update(&state, &caller.actor(), id, &update).await?;
    Ok(Json(user))
}

/// Deletes a user with their devices, subscriptions and sessions.
#[utoipa::path(delete, path = "/v1/admin/users/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    domain::users::delete(&state, &caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
