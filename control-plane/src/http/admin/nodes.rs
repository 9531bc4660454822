//! Pool nodes (Outline / Shadowsocks servers): create from fields or from an Outline `ss://`
//! access key, list, read, update, delete, and read the health history. A node's secret is
//! accepted but never returned.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{int_in, limit, nullable, text, Operator, MAX_NAME};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::model::{HealthEvent, Millis, Node, NodeHealth, NodeStatus};
use crate::pool::{
    normalize_host, parse_access_key, supported_ciphers, validate_cipher, AccessKeyError,
    CipherError, EndpointError, NodeEndpoint,
};
use crate::store::{NewNode, NodeUpdate, Store, StoreError};

/// Default relative share for weighted assignment.
pub const DEFAULT_WEIGHT: i64 = 100;
/// Default most concurrent sessions.
pub const DEFAULT_CAPACITY: i64 = 1000;
/// Highest weight.
pub const MAX_WEIGHT: i64 = 10_000;
/// Highest capacity.
pub const MAX_CAPACITY: i64 = 1_000_000;
/// Most groups a node may be in.
pub const MAX_GROUPS: usize = 64;
/// Longest secret / key accepted.
pub const MAX_SECRET: usize = 1024;
/// Longest access key accepted.
pub const MAX_ACCESS_KEY: usize = 4096;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNode {
    /// 1 to 64 characters.
    pub name: String,
    /// IPv4 or IPv6 address (brackets optional) or domain name.
    pub host: String,
    /// 1 to 65535.
    pub port: i64,
    /// One of the supported AEAD ciphers (e.g. `chacha20-ietf-poly1305`).
    pub cipher: String,
    /// Password, or base64 key of the cipher's length for `2022-blake3-*`. Never returned.
    pub secret: String,
    /// Region code or id.
    pub region: Option<String>,
    /// Node group ids.
    #[serde(default)]
    pub groups: Vec<Uuid>,
    /// 0 to 10000 (default 100).
    pub weight: Option<i64>,
    /// Most concurrent sessions, 0 to 1000000 (default 1000).
    pub capacity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportNode {
    /// An Outline / SIP002 key: `ss://BASE64URL(method:password)@host:port/?outline=1#name`.
    pub access_key: String,
    /// Defaults to the key's `#name`, else `host:port`.
    pub name: Option<String>,
    /// Region code or id.
    pub region: Option<String>,
    #[serde(default)]
    pub groups: Vec<Uuid>,
    pub weight: Option<i64>,
    pub capacity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNode {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub cipher: Option<String>,
    pub secret: Option<String>,
    /// Region code or id; `null` removes the region.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub region: Option<Option<String>>,
    /// Replaces the node's groups.
    pub groups: Option<Vec<Uuid>>,
    pub weight: Option<i64>,
    pub capacity: Option<i64>,
    /// `draining` takes no new sessions; `disabled` is also not health-checked.
    pub status: Option<NodeStatus>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// History entries, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A node's health now and its history of state changes, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeHealthReport {
    pub node_id: Uuid,
    pub status: NodeStatus,
    pub health: NodeHealth,
    pub consecutive_failures: i32,
    pub consecutive_successes: i32,
    pub last_checked_at: Option<Millis>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub history: Vec<HealthEvent>,
}

fn cipher_error(e: CipherError) -> ApiError {
    let supported = supported_ciphers().join(", ");
    ApiError::Validation(match e {
        CipherError::Unknown { name } => format!("unknown cipher {name:?}; supported: {supported}"),
        CipherError::Insecure(name) => format!("unknown cipher {name:?}: stream (non-AEAD) ciphers are insecure; supported: {supported}"),
        other @ CipherError::Aes192GcmUnsupported => format!("{other}; supported: {supported}"),
    })
}

fn endpoint_error(e: EndpointError) -> ApiError {
    match e {
        EndpointError::Cipher(c) => cipher_error(c),
        EndpointError::ZeroPort => ApiError::Validation("port must be between 1 and 65535".into()),
        EndpointError::EmptySecret => ApiError::Validation("secret must not be empty".into()),
        other => ApiError::Validation(other.to_string()),
    }
}

fn access_key_error(e: AccessKeyError) -> ApiError {
    match e {
        AccessKeyError::Endpoint(inner) => endpoint_error(inner),
        other => ApiError::Validation(other.to_string()),
    }
}

/// Validates a node's address and credentials field by field, with a precise message for each.
pub fn endpoint(host: &str, port: i64, cipher: &str, secret: &str) -> ApiResult<NodeEndpoint> {
    if host.len() > 255 {
        return Err(ApiError::Validation(
            "host must have at most 255 characters".into(),
        ));
    }
    normalize_host(host).map_err(endpoint_error)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::Validation("port must be between 1 and 65535".into()))?;
    if cipher.len() > 64 {
        return Err(ApiError::Validation(
            "cipher must have at most 64 characters".into(),
        ));
    }
    validate_cipher(cipher).map_err(cipher_error)?;
    if secret.is_empty() {
        return Err(ApiError::Validation("secret must not be empty".into()));
    }
    if secret.len() > MAX_SECRET {
        return Err(ApiError::Validation(format!(
            "secret must have at most {MAX_SECRET} bytes"
        )));
    }
    if secret.chars().any(char::is_control) {
        return Err(ApiError::Validation(
            "secret must not contain control characters".into(),
        ));
    }
    NodeEndpoint::new(host, port, cipher, secret).map_err(endpoint_error)
}

/// A region given by code or id.
async fn region_id(store: &Store, region: &str) -> ApiResult<Uuid> {
    let found = match Uuid::parse_str(region) {
        Ok(id) => store.get_region(id).await,
        Err(_) => {
            super::regions::region_code(region).map_err(|_| {
                ApiError::Validation(format!(
                    "unknown region {}: give a region code or id",
                    super::shown(region)
                ))
            })?;
            store.region_by_code(region).await
        }
    };
    found.map(|r| r.id).map_err(|e| match e {
        StoreError::NotFound(_) => {
            ApiError::Validation(format!("unknown region {}", super::shown(region)))
        }
        other => other.into(),
    })
}

async fn optional_region(store: &Store, region: Option<&str>) -> ApiResult<Option<Uuid>> {
    match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Ok(Some(region_id(store, r).await?)),
        None => Ok(None),
    }
}

/// Checks that every group exists; duplicates are dropped.
async fn group_ids(store: &Store, groups: &[Uuid]) -> ApiResult<Vec<Uuid>> {
    if groups.len() > MAX_GROUPS {
        return Err(ApiError::Validation(format!(
            "a node may be in at most {MAX_GROUPS} groups"
        )));
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(groups.len());
    for g in groups {
        if out.contains(g) {
            continue;
        }
        store.get_node_group(*g).await.map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::Validation(format!("unknown node group {g}")),
            other => other.into(),
        })?;
        out.push(*g);
    }
    Ok(out)
}

fn weight(v: Option<i64>) -> ApiResult<i32> {
    int_in("weight", v.unwrap_or(DEFAULT_WEIGHT), 0..=MAX_WEIGHT)
}

fn capacity(v: Option<i64>) -> ApiResult<i32> {
    int_in("capacity", v.unwrap_or(DEFAULT_CAPACITY), 0..=MAX_CAPACITY)
}

/// Adds a node.
#[utoipa::path(post, path = "/v1/admin/nodes", tag = "admin", request_body = CreateNode,
    responses((status = 201, body = Node), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn create_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<CreateNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    let name = text("name", &req.name, MAX_NAME)?;
    let ep = endpoint(&req.host, req.port, &req.cipher, &req.secret)?;
    let new = NewNode {
        name,
        host: ep.host,
        port: ep.port,
        cipher: ep.cipher,
        secret: ep.secret,
        region_id: optional_region(&state.store, req.region.as_deref()).await?,
        groups: group_ids(&state.store, &req.groups).await?,
        weight: weight(req.weight)?,
        capacity: capacity(req.capacity)?,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_node(&caller.actor(), &new).await?),
    ))
}

/// Adds a node from an Outline (or SIP002) `ss://` access key.
#[utoipa::path(post, path = "/v1/admin/nodes/import", tag = "admin", request_body = ImportNode,
    responses((status = 201, body = Node), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn import_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiJson(req): ApiJson<ImportNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    if req.access_key.len() > MAX_ACCESS_KEY {
        return Err(ApiError::Validation(format!(
            "access_key must have at most {MAX_ACCESS_KEY} characters"
        )));
    }
    let key = parse_access_key(&req.access_key).map_err(access_key_error)?;
    if key.endpoint.secret.len() > MAX_SECRET || key.endpoint.secret.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!("the access key's secret must have at most {MAX_SECRET} bytes and no control characters")));
    }
    let name = match (&req.name, &key.name) {
        (Some(n), _) => text("name", n, MAX_NAME)?,
        (None, Some(n)) => {
            let clean: String = n
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_NAME)
                .collect();
            text("name", &clean, MAX_NAME).unwrap_or_else(|_| key.endpoint.address())
        }
        (None, None) => key.endpoint.address(),
    };
    let ep = key.endpoint;
    let new = NewNode {
        name,
        host: ep.host,
        port: ep.port,
        cipher: ep.cipher,
        secret: ep.secret,
        region_id: optional_region(&state.store, req.region.as_deref()).await?,
        groups: group_ids(&state.store, &req.groups).await?,
        weight: weight(req.weight)?,
        capacity: capacity(req.capacity)?,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_node(&caller.actor(), &new).await?),
    ))
}

/// Lists nodes by name (secrets omitted).
#[utoipa::path(get, path = "/v1/admin/nodes", tag = "admin", responses((status = 200, body = Vec<Node>)), security(("admin_jwt" = [])))]
pub async fn list_nodes(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> ApiResult<Json<Vec<Node>>> {
    Ok(Json(state.store.list_nodes().await?))
}

/// Reads one node (secret omitted).
#[utoipa::path(get, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = Node), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn get_node(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Node>> {
    Ok(Json(state.store.get_node(id).await?))
}

/// Changes a node; a changed address or credentials are validated as a whole.
#[utoipa::path(patch, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = UpdateNode,
    responses((status = 200, body = Node), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn update_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateNode>,
) -> ApiResult<Json<Node>> {
    let current = state.store.get_node(id).await?;
    let mut update = NodeUpdate {
        name: req
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_NAME))
            .transpose()?,
        ..NodeUpdate::default()
    };
    if req.host.is_some() || req.port.is_some() || req.cipher.is_some() || req.secret.is_some() {
        let ep = endpoint(
            req.host.as_deref().unwrap_or(&current.host),
            req.port.unwrap_or(i64::from(current.port)),
            req.cipher.as_deref().unwrap_or(&current.cipher),
            req.secret.as_deref().unwrap_or(&current.secret),
        )?;
        update.host = req.host.is_some().then_some(ep.host);
        update.port = req.port.is_some().then_some(ep.port);
        update.cipher = req.cipher.is_some().then_some(ep.cipher);
        update.secret = req.secret.is_some().then_some(ep.secret);
    }
    update.region_id = match &req.region {
        Some(r) => Some(optional_region(&state.store, r.as_deref()).await?),
        None => None,
    };
    update.groups = match &req.groups {
        Some(g) => Some(group_ids(&state.store, g).await?),
        None => None,
    };
    update.weight = req
        .weight
        .map(|w| int_in("weight", w, 0..=MAX_WEIGHT))
        .transpose()?;
    update.capacity = req
        .capacity
        .map(|c| int_in("capacity", c, 0..=MAX_CAPACITY))
        .transpose()?;
    update.status = req.status;
    let empty = update.name.is_none()
        && update.host.is_none()
        && update.port.is_none()
        && update.cipher.is_none()
        && update.secret.is_none()
        && update.region_id.is_none()
        && update.groups.is_none()
        && update.weight.is_none()
        && update.capacity.is_none()
        && update.status.is_none();
    if empty {
        return Err(ApiError::Validation("nothing to change".into()));
    }
    Ok(Json(
        state
            .store
            .update_node(&caller.actor(), id, &update)
            .await?,
    ))
}

/// Deletes a node (its live sessions lose their node and are reassigned by their gateways).
#[utoipa::path(delete, path = "/v1/admin/nodes/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn delete_node(
    State(state): State<AppState>,
    Operator(caller): Operator,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.store.delete_node(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A node's health and its history of health changes, newest first.
#[utoipa::path(get, path = "/v1/admin/nodes/{id}/health", tag = "admin", params(("id" = Uuid, Path), HealthQuery),
    responses((status = 200, body = NodeHealthReport), (status = 404, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn node_health(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> ApiResult<Json<NodeHealthReport>> {
    let limit = limit(q.limit)?;
    let node = state.store.get_node(id).await?;
    let history = state.store.health_history(id, limit).await?;
    Ok(Json(NodeHealthReport {
        node_id: node.id,
        status: node.status,
        health: node.health,
        consecutive_failures: node.consecutive_failures,
        consecutive_successes: node.consecutive_successes,
        last_checked_at: node.last_checked_at,
        last_latency_ms: node.last_latency_ms,
        last_error: node.last_error,
        history,
    }))
}
