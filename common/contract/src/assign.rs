//! `POST /v1/gateway/nodes/assign`: the node a device's session relays through (sticky while
//! it stays healthy); 503 `node_unavailable` when none fits.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which device needs a node, and what to avoid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignNodeRequest {
    /// The device.
    pub device_id: Uuid,
    /// The session, moved to the chosen node if given.
    #[serde(default)]
    pub session_id: Option<Uuid>,
    /// Preferred region code (from HELLO).
    #[serde(default)]
    pub region: Option<String>,
    /// Nodes not to use (e.g. one that just failed to connect).
    #[serde(default)]
    pub exclude: Vec<Uuid>,
}

/// A node as a gateway needs it, secret included.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignedNode {
    /// The node.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// Shadowsocks port.
    pub port: u16,
    /// Shadowsocks cipher (`chacha20-ietf-poly1305`, ...).
    pub cipher: String,
    /// Shadowsocks password or key.
    pub secret: String,
    /// Its region code.
    #[serde(default)]
    pub region: Option<String>,
}

impl std::fmt::Debug for AssignedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignedNode")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cipher", &self.cipher)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The answer to an assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignNodeResponse {
    /// The chosen node.
    pub node: AssignedNode,
}
