//! Regions: a short code (`eu-west`), a name and optional coordinates for geographic
//! preference.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{nullable, text, Operator, MAX_NAME};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath};
use crate::model::Region;
use crate::store::{NewRegion, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegion {
    /// 1 to 32 of `a-z 0-9 -`, unique.
    pub code: String,
    /// 1 to 64 characters.
    pub name: String,
    /// -90 to 90.
    pub latitude: Option<f64>,
    /// -180 to 180.
    pub longitude: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRegion {
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, nullable)]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, nullable)]
    pub longitude: Option<Option<f64>>,
}

/// Checks a region code: 1 to 32 of lowercase letters, digits and `-`.
pub fn region_code(code: &str) -> ApiResult<String> {
    let ok = !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(ApiError::Validation(format!(
            "region code {} must have 1 to 32 of lowercase letters, digits and '-'",
            super::shown(code)
        )));
    }
    Ok(code.to_owned())
}

fn coordinate(field: &str, v: Option<f64>, bound: f64) -> ApiResult<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() || x < -bound || x > bound => Err(ApiError::Validation(format!(
            "{field} must be between {} and {bound}",
            -bound
        ))),
        other => Ok(other),
    }
}

fn checked(
    code: &str,
    name: &str,
    latitude: Option<f64>,
    longitude: Option<f64>,
) -> ApiResult<NewRegion> {
    let latitude = coordinate("latitude", latitude, 90.0)?;
    let longitude = coordinate("longitude", longitude, 180.0)?;
    if latitude.is_some() != longitude.is_some() {
        return Err(ApiError::Validation(
            "give both latitude and longitude, or neither".into(),
        ));
    }
    Ok(NewRegion {
        code: region_code(code)?,
        name: text("name", name, MAX_NAME)?,
        latitude,
        longitude,
    })
}

fn conflict(code: &str) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict(format!("a region with code {code:?} exists already"))
        }
        other => other.into(),
    }
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
    let new = checked(&req.code, &req.name, req.latitude, req.longitude)?;
    let region = state
        .store
        .create_region(&caller.actor(), &new)
        .await
        .map_err(conflict(&new.code))?;
    Ok((StatusCode::CREATED, Json(region)))
}

/// Lists regions by code.
#[utoipa::path(get, path = "/v1/admin/regions", tag = "admin", responses((status = 200, body = Vec<Region>)), security(("admin_jwt" = [])))]
pub async fn list_regions(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> ApiResult<Json<Vec<Region>>> {
    Ok(Json(state.store.list_regions().await?))
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
    let new = checked(
        req.code.as_deref().unwrap_or(&current.code),
        req.name.as_deref().unwrap_or(&current.name),
        req.latitude.unwrap_or(current.latitude),
        req.longitude.unwrap_or(current.longitude),
    )?;
    Ok(Json(
        state
            .store
            .update_region(&caller.actor(), id, &new)
            .await
            .map_err(conflict(&new.code))?,
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
    let region = state.store.get_region(id).await?;
    // Deleting a plan's only region would silently widen the plan to every region.
    let plans: Vec<String> = state
        .store
        .list_plans()
        .await?
        .into_iter()
        .filter(|p| p.allowed_regions.contains(&region.code))
        .map(|p| p.name)
        .collect();
    if !plans.is_empty() {
        return Err(ApiError::Conflict(format!(
            "region {:?} is allowed by plans {}; remove it from them first",
            region.code,
            plans.join(", ")
        )));
    }
    state.store.delete_region(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
