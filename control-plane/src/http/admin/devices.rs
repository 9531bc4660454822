//! Devices: creating one returns its token, its connection links with a QR code and its
//! subscription URL; the store validates against the token's hash and keeps the token only
//! sealed, so operators can show the links again. Tokens and subscription URLs can be rotated;
//! devices renamed, disabled, enabled, revoked (for good) and deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{page, Operator};
use crate::app::AppState;
use crate::domain;
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{Device, DeviceStatus};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    /// 1 to 64 characters, e.g. "Mia's phone".
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
}

/// A new device (or a device with a new token) with its credentials. The token is shown here;
/// the store validates against its hash and keeps it only sealed, to show the links again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDevice {
    pub device: Device,
    /// The device token (256 random bits).
    pub token: String,
    /// The connection link to the first public gateway
    /// (`httvps://DEVICE_ID:TOKEN@host:port/path?fp=..&sni=..&name=..`).
    pub link: String,
    /// The link as a QR code (SVG document).
    pub qr_svg: String,
    /// One link per public gateway endpoint the device may use.
    pub links: Vec<LinkEntry>,
    /// The device's subscription URL (at creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_url: Option<String>,
}

/// One connection link of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkEntry {
    /// The gateway endpoint's region code, when configured.
    pub region: Option<String>,
    /// The connection link.
    pub link: String,
}

/// A device's current links, shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceLinks {
    pub device: Device,
    /// The connection link to the first public gateway (what creation showed).
    pub link: String,
    /// The link as a QR code (SVG document).
    pub qr_svg: String,
    pub links: Vec<LinkEntry>,
}

/// A device's subscription URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionUrl {
    pub device_id: Uuid,
    /// `PUBLIC_URL/sub/TOKEN`; serves the device's links (`?format=plain|base64|json`).
    pub url: String,
    /// The URL as a QR code (SVG document).
    pub qr_svg: String,
}

fn entries(links: &[crate::link::DeviceLink]) -> Vec<LinkEntry> {
    links
        .iter()
        .map(|l| LinkEntry {
            region: l.region.clone(),
            link: l.link.to_string(),
        })
        .collect()
}

fn created(created: domain::devices::NewCredentials) -> ApiResult<CreatedDevice> {
    let qr_svg = domain::devices::qr_svg(&created.link)?;
    Ok(CreatedDevice {
        links: entries(&created.links),
        device: created.device,
        token: created.token,
        link: created.link,
        qr_svg,
        subscription_url: created.subscription_url,
    })
}

fn subscription_url(device_id: Uuid, url: String) -> ApiResult<Json<SubscriptionUrl>> {
    let qr_svg = domain::devices::qr_svg(&url)?;
    Ok(Json(SubscriptionUrl {
        device_id,
        url,
        qr_svg,
    }))
}

/// Shows a device's links and QR code again (from its sealed token). 409 when the token is not
/// kept (a device from before, or no secret key): rotate the token.
#[utoipa::path(get, path = "/v1/admin/devices/{id}/link", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = DeviceLinks), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn device_link(
    State(state): State<AppState>,
    _caller: Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DeviceLinks>> {
    let shown = domain::devices::show_links(&state, id).await?;
    let link = shown
        .links
        .first()
        .map(|l| l.link.to_string())
        .unwrap_or_default();
    let qr_svg = domain::devices::qr_svg(&link)?;
    Ok(Json(DeviceLinks {
        links: entries(&shown.links),
        device: shown.device,
        link,
        qr_svg,
    }))
}

/// Gives a device a new token: the old one is refused at once and its sessions end on every
/// gateway within a second (with Redis). Returns the new credentials and links.
#[utoipa::path(post, path = "/v1/admin/devices/{id}/rotate-token", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = CreatedDevice), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn rotate_device_token(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CreatedDevice>> {
    let rotated = domain::devices::rotate_token(&state, &caller.actor(), id).await?;
    Ok(Json(created(rotated)?))
}

/// Shows a device's subscription URL again. 404 when it has none (revoked); 409 when it is not
/// kept: rotate it.
#[utoipa::path(get, path = "/v1/admin/devices/{id}/subscription-url", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = SubscriptionUrl), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn get_subscription_url(
    State(state): State<AppState>,
    _caller: Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SubscriptionUrl>> {
    let url = domain::devices::show_subscription_url(&state, id).await?;
    subscription_url(id, url)
}

/// Gives a device a new subscription URL (or one again after a revocation); the old one
/// answers 404 from now on.
#[utoipa::path(post, path = "/v1/admin/devices/{id}/subscription-url/rotate", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = SubscriptionUrl), (status = 404, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn rotate_subscription_url(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SubscriptionUrl>> {
    let url = domain::devices::rotate_subscription_url(&state, &caller.actor(), id).await?;
    subscription_url(id, url)
}

/// Removes a device's subscription URL; it answers 404 from now on.
#[utoipa::path(delete, path = "/v1/admin/devices/{id}/subscription-url", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn revoke_subscription_url(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    domain::devices::revoke_subscription_url(&state, &caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDevices {
    /// Only this user's devices.
    pub user_id: Option<Uuid>,
    /// Most rows to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
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
    let new = domain::devices::create(&state, &caller.actor(), user_id, &req.name).await?;
    Ok((StatusCode::CREATED, Json(created(new)?)))
}

/// Lists devices, oldest first, optionally of one user.
#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin", params(ListDevices),
    responses((status = 200, body = Vec<Device>)), security(("admin_jwt" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<ListDevices>,
) -> ApiResult<Json<Vec<Device>>> {
    let page = page(q.limit, q.offset)?;
    Ok(Json(state.store.list_devices_page(q.user_id, page).await?))
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
