//! The values kept in the shared store.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which sessions a limit counts: one device's, or every session of the device's user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionOwner {
    /// The device.
    pub device_id: String,
    /// Its user, when the authority named one (plan limits count per user).
    pub user_id: Option<String>,
}

/// A request to count one more live session against its owner's limits.
#[derive(Clone, Debug)]
pub struct Admission<'a> {
    /// Whose session it is.
    pub owner: &'a SessionOwner,
    /// The session's id (hex or UUID text). Admitting an id that is already counted (a resume)
    /// renews it instead of counting it twice.
    pub session_id: &'a str,
    /// Live sessions the device may have; `None` = unlimited.
    pub device_limit: Option<u32>,
    /// Live sessions the user's plan allows across all devices; `None` = unlimited.
    pub user_limit: Option<u32>,
    /// How long the count holds without a renewal (a gateway that dies stops renewing).
    pub lease: Duration,
}

/// Which limit refused a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitScope {
    /// The device's own limit.
    Device,
    /// The plan's limit over all of the user's devices.
    User,
}

/// The answer to an [`Admission`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// Counted.
    Admitted,
    /// Over a limit: `active` sessions already hold it.
    Refused {
        /// The limit that was reached.
        scope: LimitScope,
        /// Live sessions counted against it.
        active: u32,
    },
}

/// A live session as a gateway holds it, for lease renewal and release.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionLease {
    /// Whose session it is.
    pub owner: SessionOwner,
    /// The session's id.
    pub session_id: String,
}

/// What a resume token stands for: enough to re-admit the session on any gateway without
/// asking the control plane again (SPEC §4.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The session's id, kept across the resume.
    pub session_id: String,
    /// The device.
    pub device_id: String,
    /// SHA-256 (hex) of the device token: a resume still proves the device's credentials.
    pub token_sha256: String,
    /// The device's user.
    pub user_id: Option<String>,
    /// The plan's live-session limit.
    pub user_limit: Option<u32>,
    /// The plan's byte quota for the period (`None` = unlimited).
    pub quota_bytes: Option<u64>,
    /// Bytes used in the period when the control plane last said so.
    pub quota_used_bytes: u64,
    /// When the quota period ends (Unix ms), which names the usage counter.
    pub quota_period_end_ms: Option<i64>,
    /// When the subscription ends (Unix ms).
    pub expires_at_ms: Option<i64>,
    /// Region preference from the first HELLO.
    pub region: Option<String>,
    /// The gateway that issued the token.
    pub issued_by: String,
}

/// Who a revocation applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum RevocationTarget {
    /// One device.
    Device(String),
    /// Every device of a user.
    User(String),
}

/// An event every gateway hears (Redis pub/sub, or a broadcast channel in process).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SharedEvent {
    /// The device or user may no longer connect: end its sessions now.
    Revoked {
        /// Who.
        target: RevocationTarget,
        /// `revoked`, `disabled`, `expired`, `deleted`.
        reason: String,
    },
    /// An operator ended one session.
    SessionKilled {
        /// The session.
        session_id: String,
    },
    /// The user's byte quota for the period is used up: refuse new streams, end the sessions.
    QuotaExceeded {
        /// The user.
        user_id: String,
    },
    /// An operator reset the user's usage for the period (the counter was set to the control
    /// plane's new count): gateways start the user's quota accounts afresh and forget what they
    /// cached about its devices (an allow's old count, a `quota_exceeded` denial).
    UsageReset {
        /// The user (the counter's subject).
        user_id: String,
        /// The user's devices.
        device_ids: Vec<String>,
    },
    /// The session was resumed on `gateway_id`: any older connection of it elsewhere ends.
    SessionResumed {
        /// The session.
        session_id: String,
        /// Where it lives now.
        gateway_id: String,
    },
}

/// The counter of one user's bytes in one quota period.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageCounter {
    /// The user (or the device, when the authority names no user).
    pub subject: String,
    /// When the period ends (Unix ms); `None` for a quota that never resets.
    pub period_end_ms: Option<i64>,
}

/// A gateway process as it registers itself in the shared store, at most one heartbeat period
/// old.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LiveGateway))]
pub struct GatewayInfo {
    /// The process's id (`--gateway-id`, else a new UUID per start); not a registry id.
    pub id: String,
    /// Software version.
    pub version: String,
    /// The address clients reach it at, as it knows it.
    pub listen: String,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// Its last heartbeat (Unix ms).
    pub heartbeat_at_ms: i64,
    /// Sessions it holds.
    pub sessions: u64,
    /// Streams it holds.
    pub streams: u64,
    /// Whether it is draining (refusing new sessions).
    pub draining: bool,
}

/// Live streams per node id.
pub type NodeLoads = HashMap<String, u64>;

/// The sum of every gateway's `(node, streams)` counts: what `node_loads` returns.
pub(crate) fn total_loads(counts: impl IntoIterator<Item = (String, u64)>) -> NodeLoads {
    let mut total = NodeLoads::new();
    for (node, n) in counts {
        *total.entry(node).or_default() += n;
    }
    total
}
