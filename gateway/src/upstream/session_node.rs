//! The node a session's streams go through: assigned at the first open, moved by a failover,
//! dropped when it fails. Opens that need an assignment while one is in flight wait for that one
//! (single flight), and no lock is held while the node source (the control plane, over HTTP) is
//! asked: an open that finds the session's node never waits for anything, and concurrent opens
//! make one call, not one each in turn.

use std::sync::{Arc, Mutex, MutexGuard};

use httvps_proto::ResetCode;
use tokio::sync::watch;
use tracing::Instrument;

use super::nodes::{AssignRequest, Node, NodeSource};

/// An assignment's result, once it is there.
type Flight = watch::Receiver<Option<Result<Node, ResetCode>>>;

/// Assignments an open waits for before it gives up (each of them excluded its nodes).
const MAX_ROUNDS: usize = 3;

/// The node a session uses. Its streams share it, so a failover moves all of them.
#[derive(Debug)]
pub struct SessionNode {
    device_id: String,
    session_id: String,
    region: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Node>,
    /// Where the control plane moved the session (failover), not yet applied.
    moved_to: Option<String>,
    /// The assignment in flight.
    flight: Option<Flight>,
}

impl SessionNode {
    /// No node yet; one is assigned at the first stream.
    pub fn new(device_id: String, session_id: String, region: Option<String>) -> Self {
        SessionNode {
            device_id,
            session_id,
            region,
            state: Mutex::new(State::default()),
        }
    }

    /// The session's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The node the session's streams use now, if one was assigned.
    pub fn current_id(&self) -> Option<String> {
        self.lock().current.as_ref().map(|n| n.id.clone())
    }

    /// The control plane says the session belongs on `node_id`: new streams go there (streams
    /// already open stay where they are).
    pub fn move_to(&self, node_id: &str) {
        let mut state = self.lock();
        if state.current.as_ref().is_some_and(|n| n.id == node_id) {
            return;
        }
        state.moved_to = Some(node_id.to_owned());
    }

    /// `node_id` failed: the next open gets another node.
    pub(super) fn failed(&self, node_id: &str) {
        let mut state = self.lock();
        if state.current.as_ref().is_some_and(|n| n.id == node_id) {
            state.current = None;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node for a new stream, not one of `exclude`: the session's node, or the result of
    /// the assignment in flight, or of a new one.
    pub(super) async fn node(
        self: &Arc<Self>,
        nodes: &Arc<dyn NodeSource>,
        exclude: &[String],
    ) -> Result<Node, ResetCode> {
        for _ in 0..MAX_ROUNDS {
            let mut flight = {
                let mut state = self.lock();
                if let Some(target) = state.moved_to.clone() {
                    if state.current.as_ref().is_some_and(|n| n.id != target) {
                        state.current = None;
                    }
                }
                if let Some(node) = state.current.as_ref().filter(|n| !exclude.contains(&n.id)) {
                    return Ok(node.clone());
                }
                match &state.flight {
                    Some(flight) => flight.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        state.flight = Some(rx.clone());
                        let moved = state.moved_to.take();
                        // In a task of its own: an open that gives up does not cancel it for
                        // the others.
                        tokio::spawn(
                            self.clone()
                                .assign(nodes.clone(), exclude.to_vec(), moved, tx)
                                .in_current_span(),
                        );
                        rx
                    }
                }
            };
            let outcome = match flight.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or(Err(ResetCode::NodeUnavailable)),
                Err(_) => Err(ResetCode::NodeUnavailable),
            };
            match outcome {
                // Assigned for another open that excluded other nodes: ask again.
                Ok(node) if exclude.contains(&node.id) => continue,
                other => return other,
            }
        }
        Err(ResetCode::NodeUnavailable)
    }

    /// One assignment: the failover's node if there is one, else the node source's choice.
    async fn assign(
        self: Arc<Self>,
        nodes: Arc<dyn NodeSource>,
        exclude: Vec<String>,
        moved: Option<String>,
        done: watch::Sender<Option<Result<Node, ResetCode>>>,
    ) {
        let result = self.find(nodes.as_ref(), &exclude, moved).await;
        {
            let mut state = self.lock();
            if let Ok(node) = &result {
                state.current = Some(node.clone());
            }
            state.flight = None;
        }
        let _ = done.send(Some(result));
    }

    async fn find(
        &self,
        nodes: &dyn NodeSource,
        exclude: &[String],
        moved: Option<String>,
    ) -> Result<Node, ResetCode> {
        if let Some(target) = moved.filter(|t| !exclude.contains(t)) {
            match nodes.node_by_id(&target).await {
                Ok(node) => {
                    tracing::info!(session = %self.session_id, node = %node.id, "session moved to a new node");
                    return Ok(node);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node of the failover unavailable; asking for another")
                }
            }
        }
        let request = AssignRequest {
            device_id: &self.device_id,
            session_id: &self.session_id,
            region: self.region.as_deref(),
            exclude,
        };
        let span = tracing::info_span!(
            "node assignment",
            session.id = %self.session_id,
            httvps.excluded = exclude.len(),
            httvps.node.id = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        match nodes.assign(request).instrument(span.clone()).await {
            Ok(node) => {
                span.record("httvps.node.id", node.id.as_str());
                Ok(node)
            }
            Err(e) => {
                span.record("otel.status_code", "error");
                span.in_scope(|| tracing::warn!(error = %e, "no node for session"));
                Err(ResetCode::NodeUnavailable)
            }
        }
    }
}
