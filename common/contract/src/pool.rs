//! `GET /v1/gateway/pool`: the active nodes not known to be unhealthy, with their live load; a
//! gateway keeps the last one for outages.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the health checker last concluded about a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeHealth {
    /// Not checked yet.
    Unknown,
    /// The last checks passed.
    Healthy,
    /// The last checks failed.
    Unhealthy,
}

/// One node of the snapshot.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolNode {
    /// The node.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// Shadowsocks port.
    pub port: u16,
    /// Shadowsocks cipher.
    pub cipher: String,
    /// Shadowsocks password or key.
    pub secret: String,
    /// Its region code.
    #[serde(default)]
    pub region: Option<String>,
    /// The node groups it belongs to.
    #[serde(default)]
    pub groups: Vec<Uuid>,
    /// Relative share for weighted assignment.
    pub weight: i32,
    /// Sessions it takes at most.
    pub capacity: i32,
    /// Its live sessions.
    pub load: u32,
    /// Its health.
    pub health: NodeHealth,
}

impl std::fmt::Debug for PoolNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolNode")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("region", &self.region)
            .field("load", &self.load)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

/// The usable nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolSnapshot {
    /// Sorted by name, then id.
    pub nodes: Vec<PoolNode>,
}

impl From<PoolNode> for crate::assign::AssignedNode {
    /// What a gateway needs of a pool node to relay through it.
    fn from(n: PoolNode) -> Self {
        crate::assign::AssignedNode {
            id: n.id,
            name: n.name,
            host: n.host,
            port: n.port,
            cipher: n.cipher,
            secret: n.secret,
            region: n.region,
        }
    }
}
