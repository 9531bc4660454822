//! Plans: limits, quota and its reset strategy, duration and allowed regions (given as region
//! codes).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{nullable, Operator, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::domain::plans::{PlanChanges, PlanInput};
use crate::error::ApiResult;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{Plan, ResetStrategy};

pub use crate::domain::plans::{MAX_DURATION_DAYS, MAX_LIMIT_PER_USER, MAX_REGIONS};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// Unique, 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// 0 to 1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub device_limit: i64,
    /// 0 to 1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub session_limit: i64,
    /// Bytes per quota period, at least 0; `null` or absent = unlimited.
    #[schema(minimum = 0)]
    pub quota_bytes: Option<i64>,
    /// Default `none`.
    #[serde(default)]
    pub reset_strategy: Option<ResetStrategy>,
    /// 1 to 3650; `null` or absent = no expiry.
    #[schema(minimum = 1, maximum = 3650)]
    pub duration_days: Option<i64>,
    /// Region codes (at most 256); empty = all regions.
    #[serde(default)]
    #[schema(max_items = 256)]
    pub allowed_regions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 1000)]
    pub device_limit: Option<i64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub session_limit: Option<i64>,
    /// `null` = unlimited.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 0)]
    pub quota_bytes: Option<Option<i64>>,
    pub reset_strategy: Option<ResetStrategy>,
    /// `null` = no expiry.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 3650)]
    pub duration_days: Option<Option<i64>>,
    /// Region codes (at most 256); empty = all regions.
    #[schema(max_items = 256)]
    pub allowed_regions: Option<Vec<String>>,
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
    let input = PlanInput {
        name: req.name,
        device_limit: req.device_limit,
        session_limit: req.session_limit,
        quota_bytes: req.quota_bytes,
        reset_strategy: req.reset_strategy.unwrap_or(ResetStrategy::None),
        duration_days: req.duration_days,
        allowed_regions: req.allowed_regions,
    };
    let plan = domain::plans::create(&state, &caller.actor(), &input).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Lists plans by name.
#[utoipa::path(get, path = "/v1/admin/plans", tag = "admin", params(PageQuery), responses((status = 200, body = Vec<Plan>)), security(("admin_jwt" = [])))]
pub async fn list_plans(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Plan>>> {
    Ok(Json(state.store.list_plans_page(q.page()?).await?))
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
    let changes = PlanChanges {
        name: req.name,
        device_limit: req.device_limit,
        session_limit: req.session_limit,
        quota_bytes: req.quota_bytes,
        reset_strategy: req.reset_strategy,
        duration_days: req.duration_days,
        allowed_regions: req.allowed_regions,
    };
    let plan = domain::plans::update(&state, &caller.actor(), id, &changes).await?;
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
    domain::plans::delete(&state, &caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
