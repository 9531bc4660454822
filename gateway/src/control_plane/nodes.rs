//! Nodes from the control plane: the contract's node → a Shadowsocks server configuration, and
//! the gateway's [`NodeSource`] over the control plane, with the nodes it falls back on while
//! the control plane cannot be asked (each device's last node, the last pool snapshot).

use std::net::IpAddr;
use std::sync::Arc;

use httvps_contract::assign::AssignedNode;
use shadowsocks::config::{Mode, ServerAddr, ServerConfig};
use uuid::Uuid;

use super::{ControlPlaneClient, CpError};
use crate::authority::BoxFuture;
use crate::upstream::{AssignRequest, NoNode, Node, NodeSource};

/// Devices whose last node is remembered at most (the map is cleared when full).
const LAST_NODES_MAX: usize = 100_000;

/// A usable node of the last pool snapshot, with its region.
#[derive(Clone, Debug)]
pub(super) struct PoolEntry {
    pub node: Node,
    pub region: Option<String>,
}

/// A node of the contract (assigned, or in the pool snapshot) as the relays use it.
pub(super) fn to_node(n: AssignedNode) -> Result<Node, NoNode> {
    let id = n.id.to_string();
    let method = n
        .cipher
        .parse()
        .map_err(|_| NoNode(format!("node {id} has an unsupported cipher")))?;
    let addr = match n.host.parse::<IpAddr>() {
        Ok(ip) => ServerAddr::from(std::net::SocketAddr::new(ip, n.port)),
        Err(_) => ServerAddr::from((n.host, n.port)),
    };
    let mut config =
        ServerConfig::new(addr, n.secret, method).map_err(|e| NoNode(format!("node {id}: {e}")))?;
    config.set_mode(Mode::TcpAndUdp);
    Ok(Node {
        id,
        name: n.name,
        config: Arc::new(config),
    })
}

impl ControlPlaneClient {
    /// A node for a device while the control plane cannot be asked: its last assigned node (when
    /// in the requested region, if that has nodes), else one from the last pool snapshot (in the
    /// requested region when it has nodes), chosen by rendezvous hashing so a device keeps
    /// getting the same node.
    fn offline_node(&self, request: &AssignRequest<'_>) -> Option<Node> {
        let usable = |n: &Node| !request.exclude.contains(&n.id);
        let known = self.known_pool.lock().ok()?;
        let candidates: Vec<&PoolEntry> = known.iter().filter(|e| usable(&e.node)).collect();
        let in_requested = |e: &PoolEntry| {
            request.region.is_some_and(|region| {
                e.region
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(region))
            })
        };
        let in_region: Vec<&PoolEntry> = candidates
            .iter()
            .copied()
            .filter(|e| in_requested(e))
            .collect();
        // The last node, unless the client asks for a region it is not in (and that has nodes).
        let last = self
            .last_nodes
            .lock()
            .ok()
            .and_then(|l| l.get(request.device_id).cloned())
            .filter(usable)
            .filter(|n| in_region.is_empty() || in_region.iter().any(|e| e.node.id == n.id));
        if last.is_some() {
            return last;
        }
        let pick_from = if in_region.is_empty() {
            candidates
        } else {
            in_region
        };
        pick_from
            .into_iter()
            .max_by_key(|e| rendezvous(request.device_id, &e.node.id))
            .map(|e| e.node.clone())
    }

    fn remember(&self, device_id: &str, node: &Node) {
        if let Ok(mut last) = self.last_nodes.lock() {
            if last.len() >= LAST_NODES_MAX {
                last.clear();
            }
            last.insert(device_id.to_owned(), node.clone());
        }
    }
}

/// The rendezvous (highest random weight) score of a node for a device: stable across gateways
/// and restarts, and spreading devices evenly over the nodes.
fn rendezvous(device_id: &str, node_id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(device_id.as_bytes());
    h.update([0]);
    h.update(node_id.as_bytes());
    h.finalize().into()
}

impl NodeSource for ControlPlaneClient {
    fn assign<'a>(&'a self, request: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            let session = Uuid::parse_str(request.session_id).ok();
            match self
                .assign_node(request.device_id, session, request.region, request.exclude)
                .await
            {
                Ok(node) => {
                    self.remember(request.device_id, &node);
                    Ok(node)
                }
                Err(CpError::Unavailable(e)) => match self.offline_node(&request) {
                    Some(node) => {
                        tracing::warn!(error = %e, node = %node.id, "control plane unavailable: using the device's last node or one of the last known pool");
                        self.remember(request.device_id, &node);
                        Ok(node)
                    }
                    None => Err(NoNode(format!(
                        "control plane unavailable and no node known: {e}"
                    ))),
                },
                Err(e) => Err(NoNode(e.to_string())),
            }
        })
    }

    fn has_offline_node(&self, device_id: &str) -> bool {
        self.last_nodes
            .lock()
            .is_ok_and(|l| l.contains_key(device_id))
            || self.known_pool_len() > 0
    }

    fn node_by_id<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            self.pool()
                .await
                .map_err(|e| NoNode(e.to_string()))?
                .into_iter()
                .find(|n| n.id == node_id)
                .ok_or_else(|| NoNode(format!("node {node_id} is not in the usable pool")))
        })
    }

    fn report_failure<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, ()> {
        // The control plane learns of failures through `exclude` on the retry's assignment and
        // through its own health checks; the contract has no separate report endpoint.
        Box::pin(async move {
            tracing::debug!(node = node_id, "node failure noted");
        })
    }
}
