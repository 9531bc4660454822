//! The control plane's domain types, as stored and as returned by the API. Ids are UUIDs; times
//! are Unix milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Unix milliseconds.
pub type Millis = i64;

/// The current time in Unix milliseconds.
pub fn now_ms() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// The stored and serialized name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What an admin may do: viewers read, operators also change, admins also manage admins and
    /// gateway credentials.
    Role { Viewer => "viewer", Operator => "operator", Admin => "admin", }
}

string_enum! {
    /// Whether a user may connect at all.
    UserStatus { Active => "active", Disabled => "disabled", }
}

string_enum! {
    /// A device's standing.
    DeviceStatus { Active => "active", Disabled => "disabled", Revoked => "revoked", }
}

string_enum! {
    /// When a plan's byte quota starts over.
    ResetStrategy {
        /// Never: the quota covers the whole subscription.
        None => "none",
        /// Every day at 00:00 UTC.
        Daily => "daily",
        /// Every Monday at 00:00 UTC.
        Weekly => "weekly",
        /// On the first of every month, 00:00 UTC.
        CalendarMonth => "calendar_month",
        /// Every 30 days counted from the subscription's start.
        Rolling30d => "rolling_30d",
    }
}

string_enum! {
    /// A subscription's place in its life.
    SubscriptionStatus {
        /// In force.
        Active => "active",
        /// Bought, clock not started: it starts at the device's first connection.
        OnHold => "on_hold",
        /// Waits for the current subscription to end.
        Queued => "queued",
        /// Ran out.
        Ended => "ended",
        /// Cancelled by an admin.
        Cancelled => "cancelled",
    }
}

string_enum! {
    /// Whether a node takes new sessions.
    NodeStatus { Active => "active", Disabled => "disabled", Draining => "draining", }
}

string_enum! {
    /// What the health checker last concluded.
    NodeHealth { Unknown => "unknown", Healthy => "healthy", Unhealthy => "unhealthy", }
}

/// An operator of the service.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Admin {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Millis,
}

/// A region nodes live in.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Region {
    pub id: Uuid,
    /// Short stable code, e.g. `eu-west`.
    pub code: String,
    pub name: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub created_at: Millis,
}

/// What a subscription entitles a user to.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub name: String,
    /// Devices a user may register.
    pub device_limit: i32,
    /// Sessions a user may have at once, across all gateways.
    pub session_limit: i32,
    /// Bytes (both directions) per quota period; `null` = unlimited.
    pub quota_bytes: Option<i64>,
    pub reset_strategy: ResetStrategy,
    /// How long a subscription lasts once started; `null` = no expiry.
    pub duration_days: Option<i32>,
    /// Region codes allowed; empty = all.
    pub allowed_regions: Vec<String>,
    pub created_at: Millis,
}

/// A customer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub status: UserStatus,
    pub created_at: Millis,
}

/// A user's subscription to a plan.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: Uuid,
    pub user_id: Uuid,
    pub plan_id: Uuid,
    pub status: SubscriptionStatus,
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    /// When an admin last reset the usage.
    pub usage_reset_at: Option<Millis>,
    pub created_at: Millis,
}

/// A client device; its token is never stored, only its hash.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Device {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub status: DeviceStatus,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    /// The node the device was last assigned (sticky while healthy).
    pub sticky_node_id: Option<Uuid>,
}

/// A group of nodes (a node may be in several).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeGroup {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

/// An Outline/Shadowsocks pool node. Its secret is never serialized.
#[derive(Clone, Serialize, ToSchema)]
pub struct Node {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub cipher: String,
    #[serde(skip)]
    pub secret: String,
    pub region_id: Option<Uuid>,
    pub groups: Vec<Uuid>,
    /// Relative share for weighted assignment.
    pub weight: i32,
    /// Most concurrent sessions.
    pub capacity: i32,
    pub status: NodeStatus,
    pub health: NodeHealth,
    pub consecutive_failures: i32,
    pub consecutive_successes: i32,
    pub last_checked_at: Option<Millis>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: Millis,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cipher", &self.cipher)
            .field("secret", &"<redacted>")
            .field("status", &self.status)
            .field("health", &self.health)
            .finish()
    }
}

/// One entry of a node's health history (a state change).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthEvent {
    pub at: Millis,
    pub health: NodeHealth,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
}

/// A gateway registered with the control plane.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Gateway {
    pub id: Uuid,
    pub name: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    pub version: Option<String>,
}

/// A gateway's service token (the secret itself is shown once, at creation).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GatewayToken {
    pub id: Uuid,
    pub gateway_id: Uuid,
    pub created_at: Millis,
    /// After this the token stops working (set when rotated, for the overlap).
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Address blocks the token may be used from; empty = anywhere.
    pub allowed_from: Vec<String>,
}

/// A device's connection through a gateway.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Session {
    pub id: Uuid,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub gateway_id: Uuid,
    pub node_id: Option<Uuid>,
    pub client_region: Option<String>,
    pub started_at: Millis,
    pub last_heartbeat_at: Millis,
    pub ended_at: Option<Millis>,
    pub end_reason: Option<String>,
    /// An admin asked for the session to end; the gateway learns it at the next heartbeat.
    pub kill_requested: bool,
    pub bytes_up: i64,
    pub bytes_down: i64,
}

/// One entry of the audit log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Millis,
    /// `admin:<username>`, `cli`, `gateway:<name>` or `system`.
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// JSON with the change's details (never secrets).
    pub detail: serde_json::Value,
}
