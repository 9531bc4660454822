//! Pool nodes: adding one field by field or from an Outline access key, changing one; every
//! address and credential checked with a precise message.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::regions::region_code;
use super::validate::{int_in, shown, text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::{Node, NodeStatus};
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

// The request bodies of the admin API (`CreateNode`, `ImportNode`, `UpdateNode` in its OpenAPI
// document) are these types themselves: one definition for the HTTP API and the CLI. Plain
// comments on the types, as a doc comment would become the schema's description.

// A node given field by field.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateNode)]
pub struct NodeInput {
    /// 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// IPv4 or IPv6 address (brackets optional) or domain name.
    #[schema(min_length = 1)]
    pub host: String,
    /// 1 to 65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    /// One of the supported AEAD ciphers (e.g. `chacha20-ietf-poly1305`).
    pub cipher: String,
    /// Password, or base64 key of the cipher's length for `2022-blake3-*`. Never returned.
    #[schema(min_length = 1, max_length = 1024)]
    pub secret: String,
    /// Region code or id.
    pub region: Option<String>,
    /// Node group ids, at most 64.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub groups: Vec<Uuid>,
    /// 0 to 10000 (default 100).
    #[schema(minimum = 0, maximum = 10000)]
    pub weight: Option<i64>,
    /// Most concurrent sessions, 0 to 1000000 (default 1000).
    #[schema(minimum = 0, maximum = 1000000)]
    pub capacity: Option<i64>,
}

// A node given by an access key.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportNode)]
pub struct ImportInput {
    /// An Outline / SIP002 key: `ss://BASE64URL(method:password)@host:port/?outline=1#name`.
    #[schema(min_length = 1, max_length = 4096)]
    pub access_key: String,
    /// Defaults to the key's `#name`, else `host:port`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    /// Region code or id.
    pub region: Option<String>,
    #[serde(default)]
    #[schema(max_items = 64)]
    pub groups: Vec<Uuid>,
    #[schema(minimum = 0, maximum = 10000)]
    pub weight: Option<i64>,
    #[schema(minimum = 0, maximum = 1000000)]
    pub capacity: Option<i64>,
}

// Changes to a node; `None` leaves a field as it is (`region: Some(None)` removes it).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateNode)]
pub struct NodeChanges {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
    #[schema(min_length = 1)]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    pub cipher: Option<String>,
    #[schema(min_length = 1, max_length = 1024)]
    pub secret: Option<String>,
    /// Region code or id; `null` removes the region.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub region: Option<Option<String>>,
    /// Replaces the node's groups (at most 64).
    #[schema(max_items = 64)]
    pub groups: Option<Vec<Uuid>>,
    #[schema(minimum = 0, maximum = 10000)]
    pub weight: Option<i64>,
    #[schema(minimum = 0, maximum = 1000000)]
    pub capacity: Option<i64>,
    /// `draining` takes no new sessions; `disabled` is also not health-checked.
    pub status: Option<NodeStatus>,
}

fn cipher_error(e: CipherError) -> DomainError {
    let supported = supported_ciphers().join(", ");
    DomainError::Invalid(match e {
        CipherError::Unknown { name } => format!("unknown cipher {name:?}; supported: {supported}"),
        CipherError::Insecure(name) => format!("unknown cipher {name:?}: stream (non-AEAD) ciphers are insecure; supported: {supported}"),
        other @ CipherError::Aes192GcmUnsupported => format!("{other}; supported: {supported}"),
    })
}

fn endpoint_error(e: EndpointError) -> DomainError {
    match e {
        EndpointError::Cipher(c) => cipher_error(c),
        EndpointError::ZeroPort => DomainError::Invalid("port must be between 1 and 65535".into()),
        EndpointError::EmptySecret => DomainError::Invalid("secret must not be empty".into()),
        other => DomainError::Invalid(other.to_string()),
    }
}

fn access_key_error(e: AccessKeyError) -> DomainError {
    match e {
        AccessKeyError::Endpoint(inner) => endpoint_error(inner),
        other => DomainError::Invalid(other.to_string()),
    }
}

/// Validates a node's address and credentials field by field, with a precise message for each.
pub fn endpoint(host: &str, port: i64, cipher: &str, secret: &str) -> DomainResult<NodeEndpoint> {
    if host.len() > 255 {
        return Err(DomainError::Invalid(
            "host must have at most 255 characters".into(),
        ));
    }
    normalize_host(host).map_err(endpoint_error)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| DomainError::Invalid("port must be between 1 and 65535".into()))?;
    if cipher.len() > 64 {
        return Err(DomainError::Invalid(
            "cipher must have at most 64 characters".into(),
        ));
    }
    validate_cipher(cipher).map_err(cipher_error)?;
    if secret.is_empty() {
        return Err(DomainError::Invalid("secret must not be empty".into()));
    }
    if secret.len() > MAX_SECRET {
        return Err(DomainError::Invalid(format!(
            "secret must have at most {MAX_SECRET} bytes"
        )));
    }
    if secret.chars().any(char::is_control) {
        return Err(DomainError::Invalid(
            "secret must not contain control characters".into(),
        ));
    }
    NodeEndpoint::new(host, port, cipher, secret).map_err(endpoint_error)
}

/// A region given by code or id.
async fn region_id(store: &Store, region: &str) -> DomainResult<Uuid> {
    let found = match Uuid::parse_str(region) {
        Ok(id) => store.get_region(id).await,
        Err(_) => {
            region_code(region).map_err(|_| {
                DomainError::Invalid(format!(
                    "unknown region {}: give a region code or id",
                    shown(region)
                ))
            })?;
            store.region_by_code(region).await
        }
    };
    found.map(|r| r.id).map_err(|e| match e {
        StoreError::NotFound(_) => {
            DomainError::Invalid(format!("unknown region {}", shown(region)))
        }
        other => other.into(),
    })
}

async fn optional_region(store: &Store, region: Option<&str>) -> DomainResult<Option<Uuid>> {
    match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Ok(Some(region_id(store, r).await?)),
        None => Ok(None),
    }
}

/// Checks that every group exists; duplicates are dropped.
async fn group_ids(store: &Store, groups: &[Uuid]) -> DomainResult<Vec<Uuid>> {
    if groups.len() > MAX_GROUPS {
        return Err(DomainError::Invalid(format!(
            "a node may be in at most {MAX_GROUPS} groups"
        )));
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(groups.len());
    for g in groups {
        if out.contains(g) {
            continue;
        }
        store.get_node_group(*g).await.map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::Invalid(format!("unknown node group {g}")),
            other => other.into(),
        })?;
        out.push(*g);
    }
    Ok(out)
}

fn weight(v: Option<i64>) -> DomainResult<i32> {
    int_in("weight", v.unwrap_or(DEFAULT_WEIGHT), 0..=MAX_WEIGHT)
}

fn capacity(v: Option<i64>) -> DomainResult<i32> {
    int_in("capacity", v.unwrap_or(DEFAULT_CAPACITY), 0..=MAX_CAPACITY)
}

/// Adds a node.
pub async fn create(state: &AppState, actor: &str, input: NodeInput) -> DomainResult<Node> {
    let name = text("name", &input.name, MAX_NAME)?;
    let ep = endpoint(&input.host, input.port, &input.cipher, &input.secret)?;
    let placement = Placement {
        region: input.region.as_deref(),
        groups: &input.groups,
        weight: input.weight,
        capacity: input.capacity,
    };
    create_at(state, actor, name, ep, placement).await
}

/// Where a new node goes in the pool and how much it takes, as given.
struct Placement<'a> {
    region: Option<&'a str>,
    groups: &'a [Uuid],
    weight: Option<i64>,
    capacity: Option<i64>,
}

/// Creates the node `name` at the validated `ep`, with `placement` checked.
async fn create_at(
    state: &AppState,
    actor: &str,
    name: String,
    ep: NodeEndpoint,
    placement: Placement<'_>,
) -> DomainResult<Node> {
    let new = NewNode {
        name,
        host: ep.host,
        port: ep.port,
        cipher: ep.cipher,
        secret: ep.secret,
        region_id: optional_region(&state.store, placement.region).await?,
        groups: group_ids(&state.store, placement.groups).await?,
        weight: weight(placement.weight)?,
        capacity: capacity(placement.capacity)?,
    };
    Ok(state.store.create_node(actor, &new).await?)
}

/// Adds a node from an Outline / SIP002 access key.
pub async fn import(state: &AppState, actor: &str, input: ImportInput) -> DomainResult<Node> {
    if input.access_key.len() > MAX_ACCESS_KEY {
        return Err(DomainError::Invalid(format!(
            "access_key must have at most {MAX_ACCESS_KEY} characters"
        )));
    }
    let key = parse_access_key(&input.access_key).map_err(access_key_error)?;
    if key.endpoint.secret.len() > MAX_SECRET || key.endpoint.secret.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!("the access key's secret must have at most {MAX_SECRET} bytes and no control characters")));
    }
    let name = match (&input.name, &key.name) {
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
    let placement = Placement {
        region: input.region.as_deref(),
        groups: &input.groups,
        weight: input.weight,
        capacity: input.capacity,
    };
    create_at(state, actor, name, key.endpoint, placement).await
}

/// Changes a node; a changed address or credentials are validated as a whole.
pub async fn update(
    state: &AppState,
    actor: &str,
    id: Uuid,
    input: NodeChanges,
) -> DomainResult<Node> {
    let current = state.store.get_node(id).await?;
    let mut update = NodeUpdate {
        name: input
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_NAME))
            .transpose()?,
        ..NodeUpdate::default()
    };
    if input.host.is_some()
        || input.port.is_some()
        || input.cipher.is_some()
        || input.secret.is_some()
    {
        let ep = endpoint(
            input.host.as_deref().unwrap_or(&current.host),
            input.port.unwrap_or(i64::from(current.port)),
            input.cipher.as_deref().unwrap_or(&current.cipher),
            input.secret.as_deref().unwrap_or(&current.secret),
        )?;
        update.host = input.host.is_some().then_some(ep.host);
        update.port = input.port.is_some().then_some(ep.port);
        update.cipher = input.cipher.is_some().then_some(ep.cipher);
        update.secret = input.secret.is_some().then_some(ep.secret);
    }
    update.region_id = match &input.region {
        Some(r) => Some(optional_region(&state.store, r.as_deref()).await?),
        None => None,
    };
    update.groups = match &input.groups {
        Some(g) => Some(group_ids(&state.store, g).await?),
        None => None,
    };
    update.weight = input
        .weight
        .map(|w| int_in("weight", w, 0..=MAX_WEIGHT))
        .transpose()?;
    update.capacity = input
        .capacity
        .map(|c| int_in("capacity", c, 0..=MAX_CAPACITY))
        .transpose()?;
    update.status = input.status;
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
        return Err(DomainError::Invalid("nothing to change".into()));
    }
    Ok(state.store.update_node(actor, id, &update).await?)
}
