//! `GET /v1/gateway/pool`: the active nodes not known to be unhealthy, with their live load; a
//! gateway keeps the last one for outages.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::assign::AssignedNode;

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

// What an assignment gives (flattened: on the wire its fields stand beside the others), and
// what a gateway needs to choose among the nodes itself.
/// One node of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolNode {
    /// The node, its address and credentials.
    #[serde(flatten)]
    pub node: AssignedNode,
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

/// The usable nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolSnapshot {
    /// Sorted by name, then id.
    pub nodes: Vec<PoolNode>,
}

impl From<PoolNode> for AssignedNode {
    /// What a gateway needs of a pool node to relay through it.
    fn from(n: PoolNode) -> Self {
        n.node
    }
}
