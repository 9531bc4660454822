//! The routes of the gateway API, as the control plane's router spells them (`{id}` is a
//! session id). The `*_path` functions give a concrete path relative to the control plane's
//! base URL (no leading slash, so it joins below a base path).

use uuid::Uuid;

/// `POST`: a device's credentials → allow with its entitlement, or deny.
pub const VALIDATE_DEVICE: &str = "/v1/gateway/devices/validate";
/// `POST`: many devices' credentials → one answer each, as [`VALIDATE_DEVICE`] would give.
pub const VALIDATE_DEVICES_BATCH: &str = "/v1/gateway/devices/validate/batch";
/// `POST`: the node a device's session relays through.
pub const ASSIGN_NODE: &str = "/v1/gateway/nodes/assign";
/// `POST`: registers a session under the plan's session limit.
pub const START_SESSION: &str = "/v1/gateway/sessions";
/// `POST`: keeps a session alive; says whether to move or end it.
pub const SESSION_HEARTBEAT: &str = "/v1/gateway/sessions/{id}/heartbeat";
/// `POST`: records the end of a session.
pub const END_SESSION: &str = "/v1/gateway/sessions/{id}/end";
/// `POST`: session starts, heartbeats and ends of one gateway in one call.
pub const SESSION_BATCH: &str = "/v1/gateway/sessions/batch";
/// `POST`: a batch of byte counts.
pub const REPORT_USAGE: &str = "/v1/gateway/usage";
/// `GET`: the usable nodes.
pub const POOL: &str = "/v1/gateway/pool";
/// `POST`: the gateway registry heartbeat.
pub const GATEWAY_HEARTBEAT: &str = "/v1/gateway/heartbeat";

/// A route without its leading slash, to join below the control plane's base URL.
pub fn relative(route: &'static str) -> &'static str {
    route.trim_start_matches('/')
}

/// [`SESSION_HEARTBEAT`] for one session, relative.
pub fn session_heartbeat_path(session_id: Uuid) -> String {
    relative(SESSION_HEARTBEAT).replace("{id}", &session_id.to_string())
}

/// [`END_SESSION`] for one session, relative.
pub fn end_session_path(session_id: Uuid) -> String {
    relative(END_SESSION).replace("{id}", &session_id.to_string())
}
