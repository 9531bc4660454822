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

use std::ops::RangeInclusive;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use utoipa::OpenApi;

use super::extract::{AdminCaller, ApiJson};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

/// Longest name of anything (users, plans, devices, nodes, ...).
pub const MAX_NAME: usize = 64;
/// Longest free-text description.
pub const MAX_DESCRIPTION: usize = 512;
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
        subscriptions::user_quota,
        devices::create_device,
        devices::list_devices,
        devices::get_device,
        devices::update_device,
        devices::delete_device,
        devices::revoke_device,
        devices::disable_device,
        devices::enable_device,
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

/// For PATCH fields that may be set to `null`: absent = `None`, `null` = `Some(None)`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A trimmed, non-empty name of at most `max` characters without control characters.
pub fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::Validation(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::Validation(format!(
            "{field} must have at most {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// Free text that may be empty (descriptions).
pub fn free_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(ApiError::Validation(format!(
            "{field} must have at most {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::Validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An integer within `range`, as an `i32`.
pub fn int_in(field: &str, value: i64, range: RangeInclusive<i64>) -> ApiResult<i32> {
    if !range.contains(&value) {
        return Err(ApiError::Validation(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        )));
    }
    i32::try_from(value).map_err(|_| ApiError::Validation(format!("{field} is out of range")))
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

/// An e-mail address of a plausible shape (`local@domain.tld`, at most 254 bytes).
pub fn email(value: &str) -> ApiResult<String> {
    let v = value.trim();
    let bad = || ApiError::Validation(format!("email {} is not a valid address", shown(v)));
    if v.len() > 254 {
        return Err(ApiError::Validation(
            "email must have at most 254 characters".into(),
        ));
    }
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain_ok
        || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(v.to_owned())
}

/// User input quoted in an error message, cut short.
pub fn shown(value: &str) -> String {
    let mut s: String = value.chars().take(64).collect();
    if s.len() < value.len() {
        s.push('…');
    }
    format!("{s:?}")
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

/// Runs CPU-heavy work (argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))
}
