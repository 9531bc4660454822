//! Node health: pure threshold transitions plus the periodic checker that probes every node.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use uuid::Uuid;

use super::access_key::NodeEndpoint;
use super::probe::{ProbeTarget, Prober};

/// Health of one node as seen by the active checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Health {
    /// Not probed enough yet (new node, or just (re)activated).
    #[default]
    Unknown,
    /// Passing probes; may receive sessions.
    Healthy,
    /// Failing probes; receives no new sessions and its sessions fail over.
    Unhealthy,
}

impl Health {
    /// Lower-case name, as stored and used in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// Parses [`Health::as_str`] output.
    pub fn parse(text: &str) -> Option<Health> {
        match text {
            "unknown" => Some(Health::Unknown),
            "healthy" => Some(Health::Healthy),
            "unhealthy" => Some(Health::Unhealthy),
            _ => None,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many consecutive results flip a node's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures that make a node unhealthy (0 is treated as 1).
    pub unhealthy_after: u32,
    /// Consecutive successes that make a node healthy (0 is treated as 1).
    pub healthy_after: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            unhealthy_after: 3,
            healthy_after: 2,
        }
    }
}

/// A change of health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Health before.
    pub from: Health,
    /// Health after.
    pub to: Health,
}

/// A node's health and its current streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthState {
    /// Current health.
    pub health: Health,
    /// Failures in a row (0 after a success).
    pub consecutive_failures: u32,
    /// Successes in a row (0 after a failure).
    pub consecutive_successes: u32,
}

impl HealthState {
    /// Applies one probe result. A node (also an `Unknown` one) becomes `Healthy` after
    /// `healthy_after` successes in a row and `Unhealthy` after `unhealthy_after` failures in a
    /// row; anything shorter leaves its health as it was, so a flapping node does not flip.
    pub fn record(&self, policy: &HealthPolicy, ok: bool) -> (HealthState, Option<Transition>) {
        let mut next = *self;
        let target = if ok {
            next.consecutive_successes = next.consecutive_successes.saturating_add(1);
            next.consecutive_failures = 0;
            (next.consecutive_successes >= policy.healthy_after.max(1)).then_some(Health::Healthy)
        } else {
            next.consecutive_failures = next.consecutive_failures.saturating_add(1);
            next.consecutive_successes = 0;
            (next.consecutive_failures >= policy.unhealthy_after.max(1))
                .then_some(Health::Unhealthy)
        };
        let transition = match target {
            Some(to) if to != self.health => {
                next.health = to;
                Some(Transition {
                    from: self.health,
                    to,
                })
            }
            _ => None,
        };
        (next, transition)
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A reply came back through the node.
    Success {
        /// Connect to first reply byte.
        latency: Duration,
    },
    /// The probe failed.
    Failure {
        /// Stable label, see [`super::ProbeError::kind`].
        kind: &'static str,
        /// Human-readable error (never contains the node secret).
        message: String,
    },
}

impl ProbeOutcome {
    /// Whether the probe passed.
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeOutcome::Success { .. })
    }
}

/// A node due for a check, as loaded by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNode {
    /// Node id.
    pub id: Uuid,
    /// How to reach it.
    pub endpoint: NodeEndpoint,
    /// Its current health state.
    pub state: HealthState,
}

/// One probe result to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    /// Node id.
    pub node: Uuid,
    /// When the probe started, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What the probe found.
    pub outcome: ProbeOutcome,
    /// The node's state after this result.
    pub state: HealthState,
    /// Set when the health changed: the store appends it to the node's health history.
    pub transition: Option<Transition>,
}

/// Error type of [`HealthStore`] implementations.
pub type HealthStoreError = Box<dyn std::error::Error + Send + Sync>;

/// Where the checker reads nodes and writes results (the SQL store in production).
///
/// Implementations may write `async fn` in their `impl` block; the futures must be `Send`.
pub trait HealthStore: Send + Sync {
    /// The nodes to probe this round (typically every active node) with their current state.
    fn nodes_to_check(
        &self,
    ) -> impl Future<Output = Result<Vec<CheckedNode>, HealthStoreError>> + Send;

    /// Persists one probe result, the node's new state and, if any, its transition.
    fn record_probe(
        &self,
        record: ProbeRecord,
    ) -> impl Future<Output = Result<(), HealthStoreError>> + Send;
}

/// Tunables of the periodic health check.
#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    /// Thresholds for transitions.
    pub policy: HealthPolicy,
    /// Timeout of one probe (connect to first reply byte).
    pub probe_timeout: Duration,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Where probes go through each node.
    pub target: ProbeTarget,
}

impl HealthCheckConfig {
    /// Defaults (3 failures / 2 successes, 5 s timeout, 16 probes at once) for a target.
    pub fn new(target: ProbeTarget) -> Self {
        HealthCheckConfig {
            policy: HealthPolicy::default(),
            probe_timeout: Duration::from_secs(5),
            concurrency: 16,
            target,
        }
    }
}

/// Probes every node the store lists and records the results.
#[derive(Debug)]
pub struct HealthChecker<S> {
    store: Arc<S>,
    prober: Prober,
    config: HealthCheckConfig,
}

impl<S: HealthStore + 'static> HealthChecker<S> {
    /// A checker over `store`.
    pub fn new(store: Arc<S>, prober: Prober, config: HealthCheckConfig) -> Self {
        HealthChecker {
            store,
            prober,
            config,
        }
    }

    /// One round: load nodes, probe them (at most `concurrency` at once), apply the policy,
    /// record each result. Returns every probed node with its transition, if any (also when
    /// the store failed to record it; that is logged).
    pub async fn run_once(&self) -> Vec<(Uuid, Option<Transition>)> {
        let nodes = match self.store.nodes_to_check().await {
            Ok(nodes) => nodes,
            Err(err) => {
                tracing::warn!(error = %err, "health check: loading nodes failed");
                return Vec::new();
            }
        };
        let concurrency = self.config.concurrency.max(1);
        let mut pending = nodes.into_iter();
        let mut probes = JoinSet::new();
        let mut results = Vec::new();
        loop {
            while probes.len() < concurrency {
                let Some(node) = pending.next() else { break };
                probes.spawn(self.probe_node(node));
            }
            let Some(joined) = probes.join_next().await else {
                break;
            };
            match joined {
                Ok((node, at_ms, outcome)) => {
                    let transition = self.apply(node, at_ms, outcome).await;
                    results.push(transition);
                }
                Err(err) => tracing::error!(error = %err, "health probe task failed"),
            }
        }
        results
    }

    /// Runs [`HealthChecker::run_once`] every `interval` until `shutdown` completes.
    pub async fn run(self, interval: Duration, shutdown: impl Future<Output = ()> + Send) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    tokio::select! {
                        () = &mut shutdown => break,
                        _ = self.run_once() => {}
                    }
                }
            }
        }
        tracing::info!("health checker stopped");
    }

    fn probe_node(
        &self,
        node: CheckedNode,
    ) -> impl Future<Output = (CheckedNode, i64, ProbeOutcome)> + Send + 'static {
        let prober = self.prober.clone();
        let target = self.config.target.clone();
        let timeout = self.config.probe_timeout;
        async move {
            let at_ms = crate::model::now_ms();
            let outcome = match prober.probe(&node.endpoint, &target, timeout).await {
                Ok(latency) => ProbeOutcome::Success { latency },
                Err(err) => ProbeOutcome::Failure {
                    kind: err.kind(),
                    message: err.to_string(),
                },
            };
            (node, at_ms, outcome)
        }
    }

    async fn apply(
        &self,
        node: CheckedNode,
        at_ms: i64,
        outcome: ProbeOutcome,
    ) -> (Uuid, Option<Transition>) {
        let (state, transition) = node.state.record(&self.config.policy, outcome.is_success());
        let id = node.id.to_string();
        observe_probe(&id, &outcome, state);
        let record = ProbeRecord {
            node: node.id,
            at_ms,
            outcome: outcome.clone(),
            state,
            transition,
        };
        let stored = self.store.record_probe(record).await;
        if let Err(err) = &stored {
            tracing::warn!(node = %id, error = %err, "health check: recording the probe failed");
        }
        if let Some(t) = transition {
            log_transition(&id, &node.endpoint, t, &outcome, stored.is_ok());
            metrics::counter!(
                "httvps_node_health_transitions_total",
                "node" => id,
                "to" => t.to.as_str()
            )
            .increment(1);
        }
        (node.id, transition)
    }
}

fn observe_probe(id: &str, outcome: &ProbeOutcome, state: HealthState) {
    let result = match outcome {
        ProbeOutcome::Success { latency } => {
            metrics::histogram!("httvps_node_probe_latency_seconds", "node" => id.to_owned())
                .record(latency.as_secs_f64());
            "ok"
        }
        ProbeOutcome::Failure { kind, .. } => kind,
    };
    metrics::counter!("httvps_node_probes_total", "node" => id.to_owned(), "result" => result)
        .increment(1);
    let healthy = if state.health == Health::Healthy {
        1.0
    } else {
        0.0
    };
    metrics::gauge!("httvps_node_healthy", "node" => id.to_owned()).set(healthy);
}

fn log_transition(
    id: &str,
    endpoint: &NodeEndpoint,
    transition: Transition,
    outcome: &ProbeOutcome,
    persisted: bool,
) {
    let address = endpoint.address();
    match outcome {
        ProbeOutcome::Success { latency } => tracing::info!(
            node = %id,
            %address,
            from = %transition.from,
            to = %transition.to,
            latency_ms = latency.as_millis() as u64,
            persisted,
            "node health changed"
        ),
        ProbeOutcome::Failure { message, .. } => tracing::warn!(
            node = %id,
            %address,
            from = %transition.from,
            to = %transition.to,
            error = %message,
            persisted,
            "node health changed"
        ),
    }
}

#[cfg(test)]
mod tests;
