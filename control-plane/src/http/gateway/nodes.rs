//! Node assignment and the pool snapshot.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use httvps_contract::assign::{AssignNodeRequest, AssignNodeResponse, AssignedNode};
use httvps_contract::pool::{NodeHealth as PoolNodeHealth, PoolNode, PoolSnapshot};
use httvps_contract::{routes, RefusalCode};

use crate::app::AppState;
use crate::config::AssignStrategy;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJsonAnyText, GatewayCaller};
use crate::model::{now_ms, Node, NodeHealth};
use crate::node_pool::PoolView;
use crate::pool::{assign, AssignError, AssignRequest, Strategy};
use crate::shared;

/// Picks the node a device's session relays through (sticky while it stays healthy).
#[utoipa::path(post, path = routes::ASSIGN_NODE, tag = "gateway", request_body = AssignNodeRequest,
    responses((status = 200, body = AssignNodeResponse), (status = 503, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
#[tracing::instrument(name = "node assignment", skip_all,
    fields(httvps.device.id = %req.device_id, httvps.excluded = req.exclude.len(), httvps.node.id = tracing::field::Empty))]
pub async fn assign_node(
    State(state): State<AppState>,
    _gw: GatewayCaller,
    ApiJsonAnyText(req): ApiJsonAnyText<AssignNodeRequest>,
) -> ApiResult<Json<AssignNodeResponse>> {
    let device = state.store.get_device(req.device_id).await?;
    let plan = state
        .store
        .resolve_subscription(device.user_id, now_ms(), false)
        .await?
        .map(|(_, p)| p);
    let mut view = PoolView::load(&state.store).await?;
    let strategy = match state.config.assign_strategy {
        AssignStrategy::Weighted => Strategy::Weighted,
        AssignStrategy::LeastConnections => Strategy::LeastConnections,
    };
    if strategy == Strategy::LeastConnections {
        // Streams say more about a node's load than sessions do; without them (no Redis, or
        // it is down) the database's session counts rank the nodes.
        if let Some(streams) = shared::live_streams(&state).await {
            view.rank_by_live_streams(&streams);
        }
    }
    // The shared store remembers the node across control-plane replicas and gateways; the
    // database column is the fallback when it is empty or unreachable.
    let sticky = shared::sticky_node(&state, device.id)
        .await
        .or(device.sticky_node_id);
    let allowed = plan.map(|p| p.allowed_regions).filter(|r| !r.is_empty());
    let preferred = req.region.filter(|r| !r.is_empty());
    let request = AssignRequest {
        client_location: preferred
            .as_ref()
            .and_then(|r| view.region_locations.get(r).copied()),
        preferred_region: preferred,
        allowed_regions: allowed,
        sticky_node: sticky,
        exclude: req.exclude,
    };
    let chosen = assign(
        &view.candidates,
        &request,
        strategy,
        &mut rand::thread_rng(),
    )
    .map_err(|e| {
        metrics::counter!("httvps_cp_node_assignments_total", "result" => "unavailable")
            .increment(1);
        let detail = match e {
            AssignError::NoNodes => "no healthy, active node is available",
            AssignError::RegionNotAllowed => "no node in a region the plan allows",
            AssignError::AllAtCapacity => "every eligible node is at capacity",
        };
        ApiError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalCode::NodeUnavailable.as_str(),
            detail,
        )
    })?;
    let node = view
        .nodes
        .get(&chosen)
        .ok_or_else(|| ApiError::Internal("assigned node vanished".into()))?;
    if device.sticky_node_id != Some(chosen) {
        state.store.set_sticky_node(device.id, Some(chosen)).await?;
    }
    // Also when unchanged: renews its TTL.
    shared::set_sticky_node(&state, device.id, chosen).await;
    if let Some(session) = req.session_id {
        state.store.move_session(session, chosen).await?;
    }
    metrics::counter!("httvps_cp_node_assignments_total", "result" => "assigned").increment(1);
    tracing::Span::current().record("httvps.node.id", tracing::field::display(chosen));
    Ok(Json(AssignNodeResponse {
        node: assigned(&view, node),
    }))
}

/// A node as a gateway needs it to relay through it.
fn assigned(view: &PoolView, node: &Node) -> AssignedNode {
    AssignedNode {
        id: node.id,
        name: node.name.clone(),
        host: node.host.clone(),
        port: node.port,
        cipher: node.cipher.clone(),
        secret: node.secret.clone(),
        region: view.region_of(node),
    }
}

/// The active nodes that are not known to be unhealthy, with their live load.
#[utoipa::path(get, path = routes::POOL, tag = "gateway", responses((status = 200, body = PoolSnapshot)), security(("gateway_token" = [])))]
pub async fn pool_snapshot(
    State(state): State<AppState>,
    _gw: GatewayCaller,
) -> ApiResult<Json<PoolSnapshot>> {
    let view = PoolView::load(&state.store).await?;
    let mut nodes: Vec<PoolNode> = view
        .candidates
        .iter()
        .filter(|c| c.healthy && c.active)
        .filter_map(|c| {
            let n = view.nodes.get(&c.id)?;
            Some(PoolNode {
                node: assigned(&view, n),
                groups: n.groups.clone(),
                weight: n.weight,
                capacity: n.capacity,
                load: c.load,
                health: match n.health {
                    NodeHealth::Unknown => PoolNodeHealth::Unknown,
                    NodeHealth::Healthy => PoolNodeHealth::Healthy,
                    NodeHealth::Unhealthy => PoolNodeHealth::Unhealthy,
                },
            })
        })
        .collect();
    nodes.sort_by(|a, b| {
        a.node
            .name
            .cmp(&b.node.name)
            .then(a.node.id.cmp(&b.node.id))
    });
    Ok(Json(PoolSnapshot { nodes }))
}
