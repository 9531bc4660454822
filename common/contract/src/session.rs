//! The session lifecycle: start (`POST /v1/gateway/sessions`, answered with the control
//! plane's session record, which gateways do not read), heartbeat, end; and the gateway
//! registry heartbeat.

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::limits::MAX_VERSION_LEN;
use crate::{ContractViolation, EndReason, Millis};

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
