//! Plans: limits, quota and its reset strategy, duration and allowed regions (given as region
//! codes).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{int_in, nullable, text, Operator, MAX_NAME};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath};
use crate::model::{Plan, ResetStrategy};
use crate::store::{NewPlan, PlanUpdate, Store, StoreError};

/// Most devices or sessions a plan may allow.
pub const MAX_LIMIT_PER_USER: i64 = 1000;
/// Longest plan duration (ten years).
pub const MAX_DURATION_DAYS: i64 = 3650;
/// Most regions a plan may name.
pub const MAX_REGIONS: usize = 256;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// Unique, 1 to 64 characters.
    pub name: String,
    /// 0 to 1000.
    pub device_limit: i64,
    /// 0 to 1000.
    pub session_limit: i64,
    /// Bytes per quota period, at least 0; `null` or absent = unlimited.
    pub quota_bytes: Option<i64>,
    /// Default `none`.
    #[serde(default)]
    pub reset_strategy: Option<ResetStrategy>,
    /// 1 to 3650; `null` or absent = no expiry.
    pub duration_days: Option<i64>,
    /// Region codes; empty = all regions.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    pub name: Option<String>,
    pub device_limit: Option<i64>,
    pub session_limit: Option<i64>,
    /// `null` = unlimited.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub quota_bytes: Option<Option<i64>>,
    pub reset_strategy: Option<ResetStrategy>,
    /// `null` = no expiry.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub duration_days: Option<Option<i64>>,
    /// Region codes; empty = all regions.
    pub allowed_regions: Option<Vec<String>>,
}

fn limit_field(field: &str, v: i64) -> ApiResult<i32> {
    int_in(field, v, 0..=MAX_LIMIT_PER_USER)
}

fn quota(v: Option<i64>) -> ApiResult<Option<i64>> {
    match v {
        Some(q) if q < 0 => Err(ApiError::Validation(
            "quota_bytes must be at least 0 (or null for unlimited)".into(),
        )),
        other => Ok(other),
    }
}

fn duration(v: Option<i64>) -> ApiResult<Option<i32>> {
    v.map(|d| int_in("duration_days", d, 1..=MAX_DURATION_DAYS))
        .transpose()
}

/// Region codes to ids; an unknown code is a 422.
async fn region_ids(store: &Store, codes: &[String]) -> ApiResult<Vec<Uuid>> {
    if codes.len() > MAX_REGIONS {
        return Err(ApiError::Validation(format!(
            "allowed_regions may name at most {MAX_REGIONS} regions"
        )));
    }
    let mut ids = Vec::with_capacity(codes.len());
    for code in codes {
        super::regions::region_code(code)?;
        let region = store.region_by_code(code).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::Validation(format!("unknown region code {code:?} in allowed_regions"))
            }
            other => other.into(),
        })?;
        if !ids.contains(&region.id) {
            ids.push(region.id);
        }
    }
    Ok(ids)
}

fn conflict(name: Option<&str>) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => ApiError::Conflict(format!(
            "a plan named {:?} exists already",
            name.unwrap_or_default()
        )),
        other => other.into(),
    }
}

/// Creates a plan.
#[utoipa::path(post, path = "/v1/admin/plans", tag = "admin", request_body = CreatePlan,
    responses((status = 201, body = Plan), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_plan(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreatePlan>,
) -> ApiResult<(StatusCode, Json<Plan>)> {
    let new = NewPlan {
        name: text("name", &req.name, MAX_NAME)?,
        device_limit: limit_field("device_limit", req.device_limit)?,
        session_limit: limit_field("session_limit", req.session_limit)?,
        quota_bytes: quota(req.quota_bytes)?,
        reset_strategy: req.reset_strategy.unwrap_or(ResetStrategy::None),
        duration_days: duration(req.duration_days)?,
        allowed_regions: region_ids(&state.store, &req.allowed_regions).await?,
    };
    let plan = state
        .store
        .create_plan(&caller.actor(), &new)
        .await
        .map_err(conflict(Some(&new.name)))?;
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Lists plans by name.
#[utoipa::path(get, path = "/v1/admin/plans", tag = "admin", responses((status = 200, body = Vec<Plan>)), security(("admin_jwt" = [])))]
pub async fn list_plans(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> ApiResult<Json<Vec<Plan>>> {
    Ok(Json(state.store.list_plans().await?))
}

/// Reads one plan.
#[utoipa::path(get, path = "/v1/admin/plans/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Plan), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_plan(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Plan>> {
    Ok(Json(state.store.get_plan(id).await?))
}

/// Changes a plan; subscriptions to it see the change at once.
#[utoipa::path(patch, path = "/v1/admin/plans/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdatePlan,
    responses((status = 200, body = Plan), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn update_plan(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdatePlan>,
) -> ApiResult<Json<Plan>> {
    let update = PlanUpdate {
        name: req
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_NAME))
            .transpose()?,
        device_limit: req
            .device_limit
            .map(|v| limit_field("device_limit", v))
            .transpose()?,
        session_limit: req
            .session_limit
            .map(|v| limit_field("session_limit", v))
            .transpose()?,
        quota_bytes: req.quota_bytes.map(quota).transpose()?,
        reset_strategy: req.reset_strategy,
        duration_days: req.duration_days.map(duration).transpose()?,
        allowed_regions: match &req.allowed_regions {
            Some(codes) => Some(region_ids(&state.store, codes).await?),
            None => None,
        },
    };
    let empty = update.name.is_none()
        && update.device_limit.is_none()
        && update.session_limit.is_none()
        && update.quota_bytes.is_none()
        && update.reset_strategy.is_none()
        && update.duration_days.is_none()
        && update.allowed_regions.is_none();
    if empty {
        return Err(ApiError::Validation("nothing to change".into()));
    }
    let plan = state
        .store
        .update_plan(&caller.actor(), id, &update)
        .await
        .map_err(conflict(update.name.as_deref()))?;
    Ok(Json(plan))
}

/// Deletes a plan that no subscription refers to.
#[utoipa::path(delete, path = "/v1/admin/plans/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_plan(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.store.delete_plan(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
