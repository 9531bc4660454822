//! Subscriptions: give a user a plan (now, on hold until first use, or queued after the current
//! one), list them, cancel one, reset its usage, and read the user's current quota.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Operator, PageQuery};
use crate::app::AppState;
use crate::domain;
use crate::domain::subscriptions::PlanRef;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{now_ms, Millis, Subscription, SubscriptionStatus};
use crate::store::QuotaStatus;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// The plan by id (give this or `plan`).
    pub plan_id: Option<Uuid>,
    /// The plan by name (give this or `plan_id`).
    pub plan: Option<String>,
    /// The clock starts at the first connection instead of now.
    #[serde(default)]
    pub on_hold: bool,
    /// Starts when the current subscription ends.
    #[serde(default)]
    pub queued: bool,
}

/// A user's quota in the current period of the subscription in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserQuota {
    pub subscription_id: Uuid,
    pub plan_id: Uuid,
    pub plan: String,
    pub status: SubscriptionStatus,
    /// When the subscription ends; `null` = never (or not started).
    pub expires_at: Option<Millis>,
    pub used_bytes: i64,
    /// `null` = unlimited.
    pub quota_bytes: Option<i64>,
    /// `null` = unlimited.
    pub remaining_bytes: Option<i64>,
    pub period_start: Millis,
    /// When the quota resets; `null` = never.
    pub period_end: Option<Millis>,
}

/// Gives a user a plan.
#[utoipa::path(post, path = "/v1/admin/users/{id}/subscriptions", tag = "admin", params(("id" = Uuid, Path, description = "user id")),
    request_body = CreateSubscription,
    responses((status = 201, body = Subscription), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin_jwt" = [])))]
pub async fn create_subscription(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateSubscription>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    let plan = match (req.plan_id, req.plan.as_deref()) {
        (Some(id), None) => Some(PlanRef::Id(id)),
        (None, Some(name)) => Some(PlanRef::Name(name)),
        _ => None,
    };
    let (sub, _) = domain::subscriptions::create(
        &state,
        &caller.actor(),
        user_id,
        plan,
        req.on_hold,
        req.queued,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(sub)))
}

/// Lists a user's subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/admin/users/{id}/subscriptions", tag = "admin", params(("id" = Uuid, Path, description = "user id"), PageQuery),
    responses((status = 200, body = Vec<Subscription>), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Subscription>>> {
    let page = q.page()?;
    state.store.get_user(user_id).await?;
    Ok(Json(
        state.store.list_subscriptions_page(user_id, page).await?,
    ))
}

/// Reads one subscription.
#[utoipa::path(get, path = "/v1/admin/subscriptions/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_subscription(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(state.store.get_subscription(id).await?))
}

/// Cancels a subscription that is active, on hold or queued.
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/cancel", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn cancel_subscription(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        domain::subscriptions::cancel(&state, &caller.actor(), id).await?,
    ))
}

/// Starts the subscription's quota period afresh: usage so far no longer counts.
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/reset-usage", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = QuotaStatus), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn reset_usage(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<QuotaStatus>> {
    Ok(Json(
        domain::subscriptions::reset_usage(&state, &caller.actor(), id).await?,
    ))
}

/// How many days to add to a subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendSubscription {
    /// Days to move the end by.
    #[schema(minimum = 1, maximum = 3650)]
    pub days: i64,
}

/// Moves an active subscription's end later (409 when it is not active or never ends).
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/extend", tag = "admin", params(("id" = Uuid, Path)),
    request_body = ExtendSubscription,
    responses((status = 200, body = Subscription), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn extend_subscription(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ExtendSubscription>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        domain::subscriptions::extend(&state, &caller.actor(), id, req.days).await?,
    ))
}

/// Traffic to add to a subscription's current quota period.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTraffic {
    /// Bytes to let through on top of the plan's quota in this period.
    #[schema(minimum = 1, maximum = 1_125_899_906_842_624_i64)]
    pub bytes: i64,
}

/// Lets more traffic through in the subscription's current quota period; gateways see it at
/// once (409 for an ended or cancelled subscription).
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/add-traffic", tag = "admin", params(("id" = Uuid, Path)),
    request_body = AddTraffic,
    responses((status = 200, body = QuotaStatus), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn add_traffic(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AddTraffic>,
) -> ApiResult<Json<QuotaStatus>> {
    Ok(Json(
        domain::subscriptions::add_traffic(&state, &caller.actor(), id, req.bytes).await?,
    ))
}

/// The plan to move a subscription to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    /// The new plan.
    pub plan_id: Uuid,
}

/// Moves a subscription in force to another plan; its dates stay (409 for an ended or
/// cancelled one, 422 for its own plan or an unknown one).
#[utoipa::path(post, path = "/v1/admin/subscriptions/{id}/change-plan", tag = "admin", params(("id" = Uuid, Path)),
    request_body = ChangePlan,
    responses((status = 200, body = Subscription), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn change_plan(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ChangePlan>,
) -> ApiResult<Json<Subscription>> {
    let (sub, _) =
        domain::subscriptions::change_plan(&state, &caller.actor(), id, req.plan_id).await?;
    Ok(Json(sub))
}

/// The user's quota under the subscription in force (404 when there is none).
#[utoipa::path(get, path = "/v1/admin/users/{id}/quota", tag = "admin", params(("id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = UserQuota), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn user_quota(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(user_id): ApiPath<Uuid>,
) -> ApiResult<Json<UserQuota>> {
    state.store.get_user(user_id).await?;
    let now = now_ms();
    let Some((sub, plan)) = state
        .store
        .resolve_subscription(user_id, now, false)
        .await?
    else {
        return Err(ApiError::NotFound("subscription in force".into()));
    };
    let q = state.store.quota_status(&sub, &plan, now).await?;
    Ok(Json(UserQuota {
        subscription_id: sub.id,
        plan_id: plan.id,
        plan: plan.name,
        status: sub.status,
        expires_at: sub.ends_at,
        used_bytes: q.used_bytes,
        quota_bytes: q.quota_bytes,
        remaining_bytes: q.remaining_bytes,
        period_start: q.period_start,
        period_end: q.period_end,
    }))
}
