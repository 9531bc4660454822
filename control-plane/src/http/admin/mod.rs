//! The admin API under `/v1/admin` (see docs/control-plane.md): login, admins, users, plans,
//! subscriptions, devices, regions, node groups, nodes, sessions, usage, audit and gateways.
//!
//! Every route needs an admin JWT from `/v1/admin/login`. Roles: viewers may only read;
//! operators may also change users, plans, subscriptions, devices, regions, node groups, nodes
//! and sessions; admins may also manage admins and gateway credentials. The role is checked
//! before the body is read, so a refused caller learns nothing about validation. Every change
//! goes through the store with the caller as the audit actor.

pub mod admins;
pub mod audit;
pub mod devices;
pub mod gateways;
pub mod login;
pub mod node_groups;
pub mod nodes;
pub mod plans;
pub mod regions;
pub mod sessions;
pub mod subscriptions;
pub mod usage;
pub mod users;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::extract::{AdminCaller, ApiJson};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::store::Page;

pub use crate::domain::validate::{
    email, free_text, int_in, shown, text, MAX_DESCRIPTION, MAX_NAME,
};
pub use crate::domain::{blocking, nullable};

/// Most rows a list returns.
pub const MAX_LIMIT: i64 = 1000;
/// Rows a list returns when no limit is given.
pub const DEFAULT_LIMIT: i64 = 100;

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        login::login,
        admins::create_admin,
        admins::list_admins,
        admins::get_admin,
        admins::update_admin,
        users::create_user,
        users::list_users,
        users::get_user,
        users::update_user,
        users::delete_user,
        plans::create_plan,
        plans::list_plans,
        plans::get_plan,
        plans::update_plan,
        plans::delete_plan,
        subscriptions::create_subscription,
        subscriptions::list_subscriptions,
        subscriptions::get_subscription,
        subscriptions::cancel_subscription,
        subscriptions::reset_usage,
        subscriptions::extend_subscription,
        subscriptions::add_traffic,
        subscriptions::change_plan,
        subscriptions::user_quota,
        devices::create_device,
        devices::list_devices,
        devices::get_device,
        devices::update_device,
        devices::delete_device,
        devices::revoke_device,
        devices::disable_device,
        devices::enable_device,
        devices::device_link,
        devices::rotate_device_token,
        devices::get_subscription_url,
        devices::rotate_subscription_url,
        devices::revoke_subscription_url,
        regions::create_region,
        regions::list_regions,
        regions::get_region,
        regions::update_region,
        regions::delete_region,
        node_groups::create_node_group,
        node_groups::list_node_groups,
        node_groups::get_node_group,
        node_groups::update_node_group,
        node_groups::delete_node_group,
        nodes::create_node,
        nodes::import_node,
        nodes::list_nodes,
        nodes::get_node,
        nodes::update_node,
        nodes::delete_node,
        nodes::node_health,
        sessions::list_sessions,
        sessions::get_session,
        sessions::end_session,
        usage::usage_report,
        audit::list_audit,
        gateways::create_gateway,
        gateways::list_gateways,
        gateways::live_gateways,
        gateways::get_gateway,
        gateways::rotate_token,
        gateways::list_tokens,
        gateways::revoke_token,
    ),
    components(schemas(
        crate::model::Admin,
        crate::model::User,
        crate::model::Plan,
        crate::model::Subscription,
        crate::model::Device,
        crate::model::Region,
        crate::model::NodeGroup,
        crate::model::Node,
        crate::model::HealthEvent,
        crate::model::Session,
        crate::model::Gateway,
        crate::model::GatewayToken,
        httvps_shared_state::GatewayInfo,
        crate::model::AuditEntry,
        crate::model::Role,
        crate::store::QuotaStatus,
        crate::store::UsageRow,
    ))
)]
pub struct AdminApi;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/login", post(login::login))
        .route(
            "/v1/admin/admins",
            post(admins::create_admin).get(admins::list_admins),
        )
        .route(
            "/v1/admin/admins/{id}",
            get(admins::get_admin).patch(admins::update_admin),
        )
        .route(
            "/v1/admin/users",
            post(users::create_user).get(users::list_users),
        )
        .route(
            "/v1/admin/users/{id}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route(
            "/v1/admin/users/{id}/subscriptions",
            post(subscriptions::create_subscription).get(subscriptions::list_subscriptions),
        )
        .route("/v1/admin/users/{id}/quota", get(subscriptions::user_quota))
        .route("/v1/admin/users/{id}/devices", post(devices::create_device))
        .route(
            "/v1/admin/plans",
            post(plans::create_plan).get(plans::list_plans),
        )
        .route(
            "/v1/admin/plans/{id}",
            get(plans::get_plan)
                .patch(plans::update_plan)
                .delete(plans::delete_plan),
        )
        .route(
            "/v1/admin/subscriptions/{id}",
            get(subscriptions::get_subscription),
        )
        .route(
            "/v1/admin/subscriptions/{id}/cancel",
            post(subscriptions::cancel_subscription),
        )
        .route(
            "/v1/admin/subscriptions/{id}/reset-usage",
            post(subscriptions::reset_usage),
        )
        .route(
            "/v1/admin/subscriptions/{id}/extend",
            post(subscriptions::extend_subscription),
        )
        .route(
            "/v1/admin/subscriptions/{id}/add-traffic",
            post(subscriptions::add_traffic),
        )
        .route(
            "/v1/admin/subscriptions/{id}/change-plan",
            post(subscriptions::change_plan),
        )
        .route("/v1/admin/devices", get(devices::list_devices))
        .route(
            "/v1/admin/devices/{id}",
            get(devices::get_device)
                .patch(devices::update_device)
                .delete(devices::delete_device),
        )
        .route(
            "/v1/admin/devices/{id}/revoke",
            post(devices::revoke_device),
        )
        .route(
            "/v1/admin/devices/{id}/disable",
            post(devices::disable_device),
        )
        .route(
            "/v1/admin/devices/{id}/enable",
            post(devices::enable_device),
        )
        .route("/v1/admin/devices/{id}/link", get(devices::device_link))
        .route(
            "/v1/admin/devices/{id}/rotate-token",
            post(devices::rotate_device_token),
        )
        .route(
            "/v1/admin/devices/{id}/subscription-url",
            get(devices::get_subscription_url).delete(devices::revoke_subscription_url),
        )
        .route(
            "/v1/admin/devices/{id}/subscription-url/rotate",
            post(devices::rotate_subscription_url),
        )
        .route(
            "/v1/admin/regions",
            post(regions::create_region).get(regions::list_regions),
        )
        .route(
            "/v1/admin/regions/{id}",
            get(regions::get_region)
                .patch(regions::update_region)
                .delete(regions::delete_region),
        )
        .route(
            "/v1/admin/node-groups",
            post(node_groups::create_node_group).get(node_groups::list_node_groups),
        )
        .route(
            "/v1/admin/node-groups/{id}",
            get(node_groups::get_node_group)
                .patch(node_groups::update_node_group)
                .delete(node_groups::delete_node_group),
        )
        .route(
            "/v1/admin/nodes",
            post(nodes::create_node).get(nodes::list_nodes),
        )
        .route("/v1/admin/nodes/import", post(nodes::import_node))
        .route(
            "/v1/admin/nodes/{id}",
            get(nodes::get_node)
                .patch(nodes::update_node)
                .delete(nodes::delete_node),
        )
        .route("/v1/admin/nodes/{id}/health", get(nodes::node_health))
        .route("/v1/admin/sessions", get(sessions::list_sessions))
        .route("/v1/admin/sessions/{id}", get(sessions::get_session))
        .route("/v1/admin/sessions/{id}/end", post(sessions::end_session))
        .route("/v1/admin/usage", get(usage::usage_report))
        .route("/v1/admin/audit", get(audit::list_audit))
        .route(
            "/v1/admin/gateways",
            post(gateways::create_gateway).get(gateways::list_gateways),
        )
        // A static segment wins over `{id}`.
        .route("/v1/admin/gateways/live", get(gateways::live_gateways))
        .route("/v1/admin/gateways/{id}", get(gateways::get_gateway))
        .route(
            "/v1/admin/gateways/{id}/tokens",
            post(gateways::rotate_token).get(gateways::list_tokens),
        )
        .route(
            "/v1/admin/gateways/{id}/tokens/{token_id}",
            axum::routing::delete(gateways::revoke_token),
        )
}

/// An admin with at least the operator role (checked before the body is read).
#[derive(Clone, Debug)]
pub struct Operator(pub AdminCaller);

/// An admin with the admin role (checked before the body is read).
#[derive(Clone, Debug)]
pub struct AdminOnly(pub AdminCaller);

async fn caller_with<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    role: Role,
) -> Result<AdminCaller, ApiError>
where
    AppState: FromRef<S>,
{
    let caller = AdminCaller::from_request_parts(parts, state).await?;
    caller.require(role)?;
    Ok(caller)
}

impl<S: Send + Sync> FromRequestParts<S> for Operator
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        caller_with(parts, state, Role::Operator)
            .await
            .map(Operator)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminOnly
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        caller_with(parts, state, Role::Admin).await.map(AdminOnly)
    }
}

/// A JSON body that may also be absent (no body and no Content-Type): then `T::default()`.
#[derive(Debug)]
pub struct JsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(v)| JsonOrEmpty(v));
        }
        let body = crate::http::extract::read_body(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(JsonOrEmpty(T::default()))
        } else {
            Err(ApiError::BadJson(
                "expected Content-Type: application/json".into(),
            ))
        }
    }
}

/// The query of a list without filters: which page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Most rows to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        page(self.limit, self.offset)
    }
}

/// A list's page from its `limit` (see [`limit`]) and `offset` (0 or more, 0 when absent).
pub fn page(limit_value: Option<i64>, offset: Option<i64>) -> ApiResult<Page> {
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::Validation("offset must not be negative".into()));
    }
    Ok(Page {
        limit: limit(limit_value)?,
        offset,
    })
}

/// A list limit: 1..=1000, 100 when absent.
pub fn limit(value: Option<i64>) -> ApiResult<i64> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) if (1..=MAX_LIMIT).contains(&v) => Ok(v),
        Some(_) => Err(ApiError::Validation(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// A referenced row named in a request body that does not exist is a validation error (the
/// request itself is malformed), not a missing resource.
pub fn unknown_ref(what: &str, id: impl std::fmt::Display) -> impl FnOnce(ApiError) -> ApiError {
    let msg = format!("unknown {what} {id}");
    move |e| match e {
        ApiError::NotFound(_) => ApiError::Validation(msg),
        other => other,
    }
}
