//! Pool nodes and the [`NodeSource`] seam that assigns them to sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shadowsocks::config::{Mode, ServerConfig};

use crate::authority::BoxFuture;
use crate::GatewayError;

/// One Shadowsocks pool node.
#[derive(Clone)]
pub struct Node {
    /// Stable id (a UUID from the control plane), used in metrics and failure reports.
    pub id: String,
    /// Human label.
    pub name: String,
    /// Address, cipher and key.
    pub config: Arc<ServerConfig>,
}

impl fmt::Debug for Node {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("addr", &self.config.addr().to_string())
            .field("method", &self.config.method())
            .finish()
    }
}

impl Node {
    /// A node from an `ss://` URL (Outline access keys included). The id is the URL's tag
    /// (`#name`) or its address.
    pub fn from_url(url: &str) -> Result<Self, GatewayError> {
        let mut config = ServerConfig::from_url(url)
            .map_err(|e| GatewayError::Config(format!("invalid ss:// node URL: {e:?}")))?;
        config.set_mode(Mode::TcpAndUdp);
        let id = config.addr().to_string();
        let name = url
            .rsplit_once('#')
            .map_or_else(|| id.clone(), |(_, tag)| tag.to_owned());
        Ok(Node {
            id,
            name,
            config: Arc::new(config),
        })
    }
}

/// What a session asks for when it needs a node.
#[derive(Clone, Debug)]
pub struct AssignRequest<'a> {
    /// The device.
    pub device_id: &'a str,
    /// The session (hex).
    pub session_id: &'a str,
    /// Preferred region.
    pub region: Option<&'a str>,
    /// Nodes that just failed for this session.
    pub exclude: &'a [String],
}

/// No node could be assigned.
#[derive(Clone, Debug, thiserror::Error)]
#[error("no node available: {0}")]
pub struct NoNode(pub String);

/// Chooses pool nodes for sessions and hears about nodes that failed.
pub trait NodeSource: Send + Sync + fmt::Debug {
    /// A node for the session, not one of `exclude`.
    fn assign<'a>(&'a self, request: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>>;

    /// The node with this id, when the control plane moved a session to it (failover).
    fn node_by_id<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move { Err(NoNode(format!("node {node_id} is not known here"))) })
    }

    /// The gateway could not connect through `node_id`.
    fn report_failure<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, ()>;

    /// Whether a node could be found for the device while the control plane cannot be asked
    /// (sources that never ask one: always).
    fn has_offline_node(&self, device_id: &str) -> bool {
        let _ = device_id;
        true
    }
}

/// A fixed list of nodes (development, the one-machine stack, tests). Spreads sessions round
/// robin and skips a node for `quarantine` after a failure.
#[derive(Debug)]
pub struct StaticNodes {
    nodes: Vec<Node>,
    next: AtomicUsize,
    quarantine: Duration,
    failed: Mutex<HashMap<String, Instant>>,
}

impl StaticNodes {
    /// The given nodes, with a 30 s quarantine after a failure.
    pub fn new(nodes: Vec<Node>) -> Self {
        StaticNodes {
            nodes,
            next: AtomicUsize::new(0),
            quarantine: Duration::from_secs(30),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// Parses `ss://` URLs.
    pub fn from_urls(urls: &[String]) -> Result<Self, GatewayError> {
        urls.iter()
            .map(|u| Node::from_url(u))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// Nodes in the list.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl NodeSource for StaticNodes {
    fn assign<'a>(&'a self, request: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            let now = Instant::now();
            let failed = self.failed.lock().map(|f| f.clone()).unwrap_or_default();
            let usable = |n: &Node| {
                !request.exclude.contains(&n.id)
                    && failed
                        .get(&n.id)
                        .is_none_or(|at| now.saturating_duration_since(*at) > self.quarantine)
            };
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let count = self.nodes.len();
            (0..count)
                .map(|i| &self.nodes[(start + i) % count])
                .find(|n| usable(n))
                .cloned()
                .ok_or_else(|| NoNode("every node failed or was excluded".into()))
        })
    }

    fn report_failure<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(mut failed) = self.failed.lock() {
                failed.insert(node_id.to_owned(), Instant::now());
            }
        })
    }
}
