//! Devices: creating one returns its token exactly once, with its connection link and the link's
//! QR code; afterwards only the token's hash exists. Devices can be renamed, disabled, enabled,
//! revoked (for good) and deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::Operator;
use crate::app::AppState;
use crate::domain;
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{Device, DeviceStatus};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    /// 1 to 64 characters, e.g. "Mia's phone".
    pub name: String,
}

/// A new device with its credentials. The token is shown here and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDevice {
    pub device: Device,
    /// The device token (256 random bits); only its hash is kept.
    pub token: String,
    /// The connection link (`httvps://DEVICE_ID:TOKEN@host:port/path?fp=..&sni=..&name=..`).
    pub link: String,
    /// The link as a QR code (SVG document).
    pub qr_svg: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDevices {
    /// Only this user's devices.
    pub user_id: Option<Uuid>,
}

/// Registers a device for a user (within the plan's device limit).
#[utoipa::path(post, path = "/v1/admin/users/{id}/devices", tag = "admin", params(("id" = Uuid, Path, description = "user id")),
    request_body = CreateDevice,
    responses((status = 201, body = CreatedDevice), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateDevice>,
) -> ApiResult<(StatusCode, Json<CreatedDevice>)> {
    let created = domain::devices::create(&state, &caller.actor(), user_id, &req.name).await?;
    let qr_svg = domain::devices::qr_svg(&created.link)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDevice {
            device: created.device,
            token: created.token,
            link: created.link,
            qr_svg,
        }),
    ))
}

/// Lists devices, optionally of one user.
#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin", params(ListDevices),
    responses((status = 200, body = Vec<Device>)), security(("admin_jwt" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<ListDevices>,
) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(state.store.list_devices(q.user_id).await?))
}

/// Reads one device (never its token).
#[utoipa::path(get, path = "/v1/admin/devices/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_device(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Device>> {
    Ok(Json(state.store.get_device(id).await?))
}

/// Renames a device.
#[utoipa::path(patch, path = "/v1/admin/devices/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateDevice,
    responses((status = 200, body = Device), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn update_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateDevice>,
) -> ApiResult<Json<Device>> {
    Ok(Json(
        domain::devices::rename(&state, &caller.actor(), id, &req.name).await?,
    ))
}

/// Deletes a device.
#[utoipa::path(delete, path = "/v1/admin/devices/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    domain::devices::delete(&state, &caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    caller: &AdminCaller,
    id: Uuid,
    status: DeviceStatus,
) -> ApiResult<Json<Device>> {
    Ok(Json(
        domain::devices::set_status(state, &caller.actor(), id, status).await?,
    ))
}

/// Revokes a device for good: its sessions end at once (with Redis; else at their next
/// heartbeat) and it cannot be enabled again.
#[utoipa::path(post, path = "/v1/admin/devices/{id}/revoke", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn revoke_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Device>> {
    set_status(&state, &caller, id, DeviceStatus::Revoked).await
}

/// Disables a device until it is enabled again.
#[utoipa::path(post, path = "/v1/admin/devices/{id}/disable", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn disable_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Device>> {
    set_status(&state, &caller, id, DeviceStatus::Disabled).await
}

/// Enables a disabled device (a revoked one stays revoked: 409).
#[utoipa::path(post, path = "/v1/admin/devices/{id}/enable", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Device), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn enable_device(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Device>> {
    set_status(&state, &caller, id, DeviceStatus::Active).await
}
