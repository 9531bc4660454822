//! The node pool as the running service sees it: candidates built from the store for
//! assignment, the health checker's view of the store, and failover of sessions off nodes that
//! turned unhealthy.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use crate::app::AppState;
use crate::model::{Node, NodeHealth, NodeStatus};
use crate::pool::{
    plan_failover, CheckedNode, FailoverRequest, Health, HealthState, HealthStore,
    HealthStoreError, NodeCandidate, NodeEndpoint, ProbeOutcome, ProbeRecord, SessionRef,
};
use crate::shared;
use crate::store::{self, SessionFilter, Store, StoreError};

/// Nodes, their candidates for assignment, and region codes by id.
#[derive(Debug)]
pub struct PoolView {
    pub nodes: HashMap<Uuid, Node>,
    pub candidates: Vec<NodeCandidate>,
    pub region_codes: HashMap<Uuid, String>,
    /// Region code → coordinates, for geographic preference.
    pub region_locations: HashMap<String, (f64, f64)>,
}

impl PoolView {
    /// Reads the pool and the live load of every node.
    pub async fn load(store: &Store) -> Result<PoolView, StoreError> {
        let regions = store.list_regions().await?;
        let loads = store.node_loads().await?;
        let nodes = store.list_nodes().await?;
        let region_codes: HashMap<Uuid, String> =
            regions.iter().map(|r| (r.id, r.code.clone())).collect();
        let region_locations = regions
            .iter()
            .filter_map(|r| Some((r.code.clone(), (r.latitude?, r.longitude?))))
            .collect::<HashMap<_, _>>();
        let candidates = nodes
            .iter()
            .map(|n| {
                let region = n.region_id.and_then(|r| regions.iter().find(|x| x.id == r));
                NodeCandidate {
                    id: n.id,
                    region: region.map(|r| r.code.clone()),
                    latitude: region.and_then(|r| r.latitude),
                    longitude: region.and_then(|r| r.longitude),
                    groups: n.groups.clone(),
                    weight: u32::try_from(n.weight).unwrap_or(0),
                    capacity: u32::try_from(n.capacity).unwrap_or(0),
                    load: u32::try_from(loads.get(&n.id).copied().unwrap_or(0)).unwrap_or(u32::MAX),
                    live_streams: None,
                    // A node not yet probed may be used; one that failed its probes may not.
                    healthy: n.health != NodeHealth::Unhealthy,
                    active: n.status == NodeStatus::Active,
                }
            })
            .collect();
        Ok(PoolView {
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            candidates,
            region_codes,
            region_locations,
        })
    }

    /// Ranks nodes by the gateways' live streams (node id → streams; a node missing carries
    /// none) instead of their session counts, for least-connections.
    pub fn rank_by_live_streams(&mut self, streams: &HashMap<Uuid, u32>) {
        for c in &mut self.candidates {
            c.live_streams = Some(streams.get(&c.id).copied().unwrap_or(0));
        }
    }

    /// The region code of a node.
    pub fn region_of(&self, node: &Node) -> Option<String> {
        node.region_id
            .and_then(|r| self.region_codes.get(&r).cloned())
    }
}

/// The health checker's access to the store.
#[derive(Clone, Debug)]
pub struct StoreHealth {
    pub state: AppState,
}

fn to_health(h: NodeHealth) -> Health {
    match h {
        NodeHealth::Unknown => Health::Unknown,
        NodeHealth::Healthy => Health::Healthy,
        NodeHealth::Unhealthy => Health::Unhealthy,
    }
}

fn from_health(h: Health) -> NodeHealth {
    match h {
        Health::Unknown => NodeHealth::Unknown,
        Health::Healthy => NodeHealth::Healthy,
        Health::Unhealthy => NodeHealth::Unhealthy,
    }
}

impl HealthStore for StoreHealth {
    async fn nodes_to_check(&self) -> Result<Vec<CheckedNode>, HealthStoreError> {
        let nodes = self.state.store.list_nodes().await?;
        Ok(nodes
            .into_iter()
            .filter(|n| n.status != NodeStatus::Disabled)
            .map(|n| CheckedNode {
                id: n.id,
                endpoint: NodeEndpoint {
                    host: n.host.clone(),
                    port: n.port,
                    cipher: n.cipher.clone(),
                    secret: n.secret.clone(),
                },
                state: HealthState {
                    health: to_health(n.health),
                    consecutive_failures: u32::try_from(n.consecutive_failures).unwrap_or(0),
                    consecutive_successes: u32::try_from(n.consecutive_successes).unwrap_or(0),
                },
            })
            .collect())
    }

    async fn record_probe(&self, record: ProbeRecord) -> Result<(), HealthStoreError> {
        let (latency_ms, error) = match &record.outcome {
            ProbeOutcome::Success { latency } => (
                Some(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)),
                None,
            ),
            ProbeOutcome::Failure { kind, message } => (None, Some(format!("{kind}: {message}"))),
        };
        let to = record.transition.map(|t| from_health(t.to));
        self.state
            .store
            .record_probe(&store::ProbeRecord {
                node_id: record.node,
                at: record.at_ms,
                health: from_health(record.state.health),
                consecutive_failures: i32::try_from(record.state.consecutive_failures)
                    .unwrap_or(i32::MAX),
                consecutive_successes: i32::try_from(record.state.consecutive_successes)
                    .unwrap_or(i32::MAX),
                latency_ms,
                error,
                transition: to,
            })
            .await?;
        if to == Some(NodeHealth::Unhealthy) {
            // Move its sessions in the background; the checker goes on with other nodes.
            let state = self.state.clone();
            let node = record.node;
            tokio::spawn(async move {
                if let Err(e) = fail_over(&state, node).await {
                    tracing::error!(%node, error = %e, "failover failed");
                }
            });
        }
        Ok(())
    }
}

/// What one failover round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverReport {
    pub moved: usize,
    pub deferred: usize,
    pub stranded: usize,
}

/// Moves the live sessions of `failed` to other nodes, same group first, at most
/// `max_migrations_in_flight` at once across the service. Gateways learn the new node from
/// their next session heartbeat.
pub async fn fail_over(state: &AppState, failed: Uuid) -> Result<FailoverReport, StoreError> {
    let sessions = state
        .store
        .list_sessions(&SessionFilter {
            live_only: true,
            node_id: Some(failed),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    if sessions.is_empty() {
        return Ok(FailoverReport::default());
    }
    let view = PoolView::load(&state.store).await?;
    let refs: Vec<SessionRef> = sessions
        .iter()
        .map(|s| SessionRef {
            session_id: s.id,
            device_id: s.device_id,
        })
        .collect();
    let in_flight = Arc::clone(&state.migrations_in_flight);
    let max = u32::try_from(state.config.max_migrations_in_flight).unwrap_or(u32::MAX);
    let plan = plan_failover(&FailoverRequest {
        failed_node: failed,
        sessions: &refs,
        candidates: &view.candidates,
        max_in_flight: max,
        already_in_flight: u32::try_from(in_flight.load(Ordering::SeqCst)).unwrap_or(u32::MAX),
    });
    in_flight.fetch_add(plan.moves.len(), Ordering::SeqCst);
    let mut moved = 0;
    for m in &plan.moves {
        let result = async {
            if state.store.move_session(m.session_id, m.to).await? {
                state.store.set_sticky_node(m.device_id, Some(m.to)).await?;
                Ok::<bool, StoreError>(true)
            } else {
                Ok(false)
            }
        }
        .await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
        if result? {
            moved += 1;
            shared::set_sticky_node(state, m.device_id, m.to).await;
            metrics::counter!("httvps_cp_failover_moves_total", "same_group" => m.same_group.to_string()).increment(1);
        }
    }
    let report = FailoverReport {
        moved,
        deferred: plan.deferred.len(),
        stranded: plan.stranded.len(),
    };
    tracing::warn!(node = %failed, moved = report.moved, deferred = report.deferred, stranded = report.stranded, "failed over sessions off an unhealthy node");
    Ok(report)
}
