//! The session lifecycle: start (`POST /v1/gateway/sessions`, answered with the control
//! plane's session record, which gateways do not read), heartbeat, end; and the gateway
//! registry heartbeat.

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::limits::{MAX_SESSION_BATCH, MAX_VERSION_LEN};
use crate::{ContractViolation, EndReason, Millis, RefusalCode};

/// Registers a session under the plan's concurrent-session limit; an id that exists already is
/// the same session (a retry, or a resume on another gateway).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartSessionRequest {
    /// The session.
    pub session_id: Uuid,
    /// Its device.
    pub device_id: Uuid,
    /// The node it uses, if one is assigned yet.
    #[serde(default)]
    pub node_id: Option<Uuid>,
    /// The client's region preference.
    #[serde(default)]
    pub client_region: Option<String>,
}

/// What a session heartbeat tells the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    /// The session.
    pub session_id: Uuid,
    /// The node the session should use now (failover may have moved it).
    pub node_id: Option<Uuid>,
    /// Close the session now.
    pub end: bool,
    /// Why (`killed`, `revoked`, `expired`); `killed` when `end` comes without one.
    pub end_reason: Option<EndReason>,
    /// When the user's access ends as of now (as in the validation's entitlement; a renewal
    /// moves it): the gateway ends the session then. `Some(None)` (`null`): no end known;
    /// `None` (the field missing): the control plane did not say (an older one).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub expires_at: Option<Option<Millis>>,
}

impl HeartbeatResponse {
    /// The reason to end the session now, if it must end.
    pub fn end_now(&self) -> Option<EndReason> {
        self.end
            .then(|| self.end_reason.clone().unwrap_or(EndReason::Killed))
    }
}

/// A field that is there, `null` or not.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Millis>>, D::Error> {
    Option::<Millis>::deserialize(d).map(Some)
}

/// Records the end of a session (idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndSessionRequest {
    /// Why the session ended.
    pub reason: EndReason,
}

/// Session starts, heartbeats and ends of one gateway in one call (`POST
/// /v1/gateway/sessions/batch`), done in that order, each as its own call would be: so a gateway
/// under load makes one call per batch instead of one per session. At most
/// [`MAX_SESSION_BATCH`] items in all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionBatch {
    /// Sessions to register (as `POST /v1/gateway/sessions`).
    #[serde(default)]
    pub start: Vec<StartSessionRequest>,
    /// Sessions to keep alive (as `POST /v1/gateway/sessions/{id}/heartbeat`).
    #[serde(default)]
    pub heartbeat: Vec<Uuid>,
    /// Sessions that ended (as `POST /v1/gateway/sessions/{id}/end`).
    #[serde(default)]
    pub end: Vec<BatchedEnd>,
}

impl SessionBatch {
    /// Items in all.
    pub fn len(&self) -> usize {
        self.start.len() + self.heartbeat.len() + self.end.len()
    }

    /// Whether it holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the batch keeps within the contract's limits.
    pub fn check(&self) -> Result<(), ContractViolation> {
        if self.len() > MAX_SESSION_BATCH {
            return Err(ContractViolation(format!(
                "a session batch holds at most {MAX_SESSION_BATCH} items"
            )));
        }
        Ok(())
    }
}

/// One session end in a [`SessionBatch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchedEnd {
    /// The session.
    pub session_id: Uuid,
    /// Why it ended.
    pub reason: EndReason,
}

/// The outcome of every item of a [`SessionBatch`], in the batch's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionBatchResponse {
    /// One per start.
    pub start: Vec<BatchOutcome>,
    /// One per heartbeat.
    pub heartbeat: Vec<BatchOutcome>,
    /// One per end.
    pub end: Vec<BatchOutcome>,
}

/// What the item's own call would have answered: its HTTP status, and for a refusal the
/// problem's `code` and `detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchOutcome {
    /// The session.
    pub session_id: Uuid,
    /// 200 or 201: done; 403, 404, 409, 429: refused; 500 or 503: failed, try again.
    pub status: u16,
    /// The refusal's machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RefusalCode>,
    /// The refusal's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A heartbeat's answer (status 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatResponse>,
}

impl BatchOutcome {
    /// Done, with no answer to carry.
    pub fn done(session_id: Uuid, status: u16) -> Self {
        BatchOutcome {
            session_id,
            status,
            code: None,
            detail: None,
            heartbeat: None,
        }
    }

    /// Whether the item was done (2xx).
    pub fn is_done(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The gateway registry heartbeat: this gateway is alive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayHeartbeat {
    /// The gateway's software version, at most 64 bytes.
    #[serde(default)]
    pub version: Option<String>,
}

impl GatewayHeartbeat {
    /// Whether the heartbeat keeps within the contract's limits.
    pub fn check(&self) -> Result<(), ContractViolation> {
        if self
            .version
            .as_ref()
            .is_some_and(|v| v.len() > MAX_VERSION_LEN)
        {
            return Err(ContractViolation(format!(
                "version must have at most {MAX_VERSION_LEN} bytes"
            )));
        }
        Ok(())
    }
}
