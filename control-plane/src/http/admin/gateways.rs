//! Gateways and their service tokens. Registering a gateway and rotating its token show the
//! new token once; rotation lets the older tokens work for an overlap so gateways can be
//! updated one by one; a token can also be revoked at once. `/live` lists the gateway processes
//! registered in the shared store. Reading needs any role; changing needs the admin role.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use httvps_shared_state::GatewayInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AdminOnly, JsonOrEmpty, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::domain::gateways::MAX_ALLOWED_BLOCKS;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{Gateway, GatewayToken};
use crate::shared;

pub use crate::domain::gateways::{DEFAULT_OVERLAP_SECS, MAX_OVERLAP_SECS};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGateway {
    /// Unique, 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// Address blocks the token may be used from (`10.0.0.0/8`, `192.0.2.7`), at most 64;
    /// absent or empty = anywhere.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub allowed_from: Vec<String>,
}

/// A new gateway and its first service token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedGateway {
    pub gateway: Gateway,
    pub token_id: Uuid,
    /// The service token; only its hash is kept.
    pub token: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// How long the gateway's current tokens keep working, 0 to 604800 seconds (default 3600).
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_secs: Option<i64>,
    /// Address blocks the new token may be used from, at most 64; absent or empty = anywhere.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub allowed_from: Vec<String>,
}

/// Checks a token's allow-list.
fn allow_list(values: &[String]) -> ApiResult<Vec<ipnet::IpNet>> {
    if values.len() > MAX_ALLOWED_BLOCKS {
        return Err(ApiError::Validation(format!(
            "allowed_from may hold at most {MAX_ALLOWED_BLOCKS} blocks"
        )));
    }
    values
        .iter()
        .map(|v| {
            crate::http::client::parse_cidr(v)
                .map_err(|e| ApiError::Validation(format!("allowed_from: {e}")))
        })
        .collect()
}

/// A new service token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub meta: GatewayToken,
    /// The service token; only its hash is kept.
    pub token: String,
}

/// Registers a gateway and issues its first service token.
#[utoipa::path(post, path = "/v1/admin/gateways", tag = "admin", request_body = CreateGateway,
    responses((status = 201, body = CreatedGateway), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_gateway(
    State(state): State<AppState>,
    AdminOnly(caller): AdminOnly,
    ApiJson(req): ApiJson<CreateGateway>,
) -> ApiResult<(StatusCode, Json<CreatedGateway>)> {
    let allowed = allow_list(&req.allowed_from)?;
    let (gateway, tok, secret) =
        domain::gateways::create(&state, &caller.actor(), &req.name, &allowed).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedGateway {
            gateway,
            token_id: tok.id,
            token: secret,
        }),
    ))
}

/// Lists gateways with when each was last seen.
#[utoipa::path(get, path = "/v1/admin/gateways", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<Gateway>)), security(("admin_jwt" = [])))]
pub async fn list_gateways(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Gateway>>> {
    Ok(Json(state.store.list_gateways_page(q.page()?).await?))
}

/// Lists the gateway processes alive right now, from the shared store. 503 when it cannot be
/// read, or when there is none (`REDIS_URL` unset: gateways then register nowhere shared).
#[utoipa::path(get, path = "/v1/admin/gateways/live", tag = "admin", params(PageQuery),
    responses((status = 200, body = Vec<GatewayInfo>), (status = 503, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn live_gateways(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<GatewayInfo>>> {
    let page = q.page()?;
    if !shared::is_shared(&state) {
        return Err(ApiError::Unavailable(
            "no shared store: set REDIS_URL to see live gateways".into(),
        ));
    }
    let gateways = state.shared.gateways().await.map_err(|e| {
        metrics::counter!("httvps_cp_shared_state_errors_total", "op" => "gateways").increment(1);
        ApiError::Unavailable(e.to_string())
    })?;
    // The registry is small (one entry per gateway process) and read whole.
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(page.limit).unwrap_or(usize::MAX);
    Ok(Json(gateways.into_iter().skip(skip).take(take).collect()))
}

/// Reads one gateway.
#[utoipa::path(get, path = "/v1/admin/gateways/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Gateway), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_gateway(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Gateway>> {
    Ok(Json(state.store.get_gateway(id).await?))
}

/// Issues a new service token; the gateway's current tokens expire after the overlap.
#[utoipa::path(post, path = "/v1/admin/gateways/{id}/tokens", tag = "admin", params(("id" = Uuid, Path)), request_body(content = Option<RotateToken>, description = "optional: no body (and no Content-Type) keeps the defaults"),
    responses((status = 201, body = IssuedToken), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn rotate_token(
    State(state): State<AppState>,
    AdminOnly(caller): AdminOnly,
    ApiPath(id): ApiPath<Uuid>,
    JsonOrEmpty(req): JsonOrEmpty<RotateToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let overlap = req.overlap_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    let allowed = allow_list(&req.allowed_from)?;
    let (meta, secret) =
        domain::gateways::rotate(&state, &caller.actor(), id, overlap, &allowed).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            meta,
            token: secret,
        }),
    ))
}

/// Lists a gateway's tokens (never the tokens themselves).
#[utoipa::path(get, path = "/v1/admin/gateways/{id}/tokens", tag = "admin", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Vec<GatewayToken>), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<GatewayToken>>> {
    let page = q.page()?;
    state.store.get_gateway(id).await?;
    Ok(Json(state.store.list_gateway_tokens_page(id, page).await?))
}

/// Revokes one of a gateway's tokens at once.
#[utoipa::path(delete, path = "/v1/admin/gateways/{id}/tokens/{token_id}", tag = "admin", params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    responses((status = 200, body = GatewayToken), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    AdminOnly(caller): AdminOnly,
    ApiPath((id, token_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<GatewayToken>> {
    let tok = domain::gateways::revoke_token(&state, &caller.actor(), id, token_id).await?;
    Ok(Json(tok))
}
