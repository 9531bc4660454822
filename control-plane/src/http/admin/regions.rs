//! Regions: a short code (`eu-west`), a name and optional coordinates for geographic
//! preference.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{nullable, Operator, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::domain::regions::RegionInput;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::Region;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegion {
    /// 1 to 32 of `a-z 0-9 -`, unique.
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9-]{1,32}$")]
    pub code: String,
    /// 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: Option<f64>,
    /// -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRegion {
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9-]{1,32}$")]
    pub code: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, nullable, minimum = -90, maximum = 90)]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, nullable, minimum = -180, maximum = 180)]
    pub longitude: Option<Option<f64>>,
}

/// Creates a region.
#[utoipa::path(post, path = "/v1/admin/regions", tag = "admin", request_body = CreateRegion,
    responses((status = 201, body = Region), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_region(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreateRegion>,
) -> ApiResult<(StatusCode, Json<Region>)> {
    let input = RegionInput {
        code: &req.code,
        name: &req.name,
        latitude: req.latitude,
        longitude: req.longitude,
    };
    let region = domain::regions::create(&state, &caller.actor(), &input).await?;
    Ok((StatusCode::CREATED, Json(region)))
}

/// Lists regions by code.
#[utoipa::path(get, path = "/v1/admin/regions", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<Region>)), security(("admin_jwt" = [])))]
pub async fn list_regions(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Region>>> {
    Ok(Json(state.store.list_regions_page(q.page()?).await?))
}

/// Reads one region.
#[utoipa::path(get, path = "/v1/admin/regions/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Region), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_region(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Region>> {
    Ok(Json(state.store.get_region(id).await?))
}

/// Changes a region's code, name or coordinates.
#[utoipa::path(patch, path = "/v1/admin/regions/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateRegion,
    responses((status = 200, body = Region), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn update_region(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateRegion>,
) -> ApiResult<Json<Region>> {
    if req.code.is_none() && req.name.is_none() && req.latitude.is_none() && req.longitude.is_none()
    {
        return Err(ApiError::Validation("nothing to change".into()));
    }
    let current = state.store.get_region(id).await?;
    let input = RegionInput {
        code: req.code.as_deref().unwrap_or(&current.code),
        name: req.name.as_deref().unwrap_or(&current.name),
        latitude: req.latitude.unwrap_or(current.latitude),
        longitude: req.longitude.unwrap_or(current.longitude),
    };
    Ok(Json(
        domain::regions::update(&state, &caller.actor(), id, &input).await?,
    ))
}

/// Deletes a region no plan allows (its nodes lose their region).
#[utoipa::path(delete, path = "/v1/admin/regions/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_region(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    domain::regions::delete(&state, &caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
