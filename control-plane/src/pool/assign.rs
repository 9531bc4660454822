//! Node selection for a new session (pure: no I/O, randomness supplied by the caller).

use std::cmp::Ordering;

use rand::Rng;
use uuid::Uuid;

/// A pool node as seen by the balancer.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCandidate {
    /// Node id.
    pub id: Uuid,
    /// Region code of the node, if it has one.
    pub region: Option<String>,
    /// Latitude of the node's region, in degrees.
    pub latitude: Option<f64>,
    /// Longitude of the node's region, in degrees.
    pub longitude: Option<f64>,
    /// Node groups the node belongs to (failover prefers the failed node's groups).
    pub groups: Vec<Uuid>,
    /// Relative share of new sessions under [`Strategy::Weighted`].
    pub weight: u32,
    /// Maximum live sessions.
    pub capacity: u32,
    /// Live sessions across all gateways.
    pub load: u32,
    /// Live streams through the node across all gateways, when the gateways report them (set
    /// for every candidate or for none). [`Strategy::LeastConnections`] ranks by it first and
    /// by `load` among equals; capacity is always checked against `load`, since it counts
    /// sessions.
    pub live_streams: Option<u32>,
    /// Passing health checks.
    pub healthy: bool,
    /// Enabled by an operator.
    pub active: bool,
}

impl NodeCandidate {
    /// Healthy, enabled and below capacity.
    pub fn accepts_sessions(&self) -> bool {
        self.healthy && self.active && self.load < self.capacity
    }

    fn location(&self) -> Option<(f64, f64)> {
        Some((self.latitude?, self.longitude?))
    }

    fn in_region(&self, code: &str) -> bool {
        self.region
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(code))
    }
}

/// What the session asking for a node allows and prefers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignRequest {
    /// Regions the device's plan allows (`None`: all, including nodes without a region).
    pub allowed_regions: Option<Vec<String>>,
    /// Region the client asked for in HELLO.
    pub preferred_region: Option<String>,
    /// Client (latitude, longitude) in degrees, e.g. from GeoIP.
    pub client_location: Option<(f64, f64)>,
    /// The device's sticky node, kept when still eligible.
    pub sticky_node: Option<Uuid>,
    /// Nodes not to use (e.g. one that just failed for this client).
    pub exclude: Vec<Uuid>,
}

/// How to choose among eligible nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Random, proportional to weight (uniform if every eligible weight is 0).
    #[default]
    Weighted,
    /// Lowest load / capacity; ties to higher weight, then lower id.
    LeastConnections,
}

/// Why no node could be assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// No healthy, active, non-excluded node exists.
    #[error("no healthy node is available")]
    NoNodes,
    /// Healthy nodes exist, but none in a region the plan allows.
    #[error("no healthy node in an allowed region")]
    RegionNotAllowed,
    /// Every otherwise eligible node is at capacity.
    #[error("every eligible node is at capacity")]
    AllAtCapacity,
}

/// Picks a node for a session.
///
/// Order of rules: healthy + active + not excluded, region allowed, below capacity; the preferred
/// region if it has eligible nodes, else the region nearest the client (great-circle) that has
/// eligible nodes; the sticky node if it is among those (so an explicitly requested region wins
/// over stickiness); then `strategy`.
pub fn assign<R: Rng + ?Sized>(
    candidates: &[NodeCandidate],
    request: &AssignRequest,
    strategy: Strategy,
    rng: &mut R,
) -> Result<Uuid, AssignError> {
    let eligible = eligible_nodes(candidates, request)?;
    let in_preferred = |n: &&NodeCandidate| {
        request
            .preferred_region
            .as_deref()
            .is_none_or(|region| n.in_region(region))
    };
    let preferred_available = eligible.iter().any(in_preferred);
    if let Some(sticky) = request.sticky_node {
        // Stickiness holds within what the client asked for: a requested region with eligible
        // nodes beats a sticky node elsewhere.
        let keep = eligible
            .iter()
            .any(|n| n.id == sticky && (!preferred_available || in_preferred(n)));
        if keep {
            return Ok(sticky);
        }
    }
    let narrowed = narrow_by_location(eligible, request);
    let chosen = match strategy {
        Strategy::Weighted => pick_weighted(&narrowed, rng),
        Strategy::LeastConnections => pick_least_loaded(&narrowed),
    };
    chosen.map(|n| n.id).ok_or(AssignError::NoNodes)
}

/// Nodes passing the hard rules, or the reason none does.
fn eligible_nodes<'a>(
    candidates: &'a [NodeCandidate],
    request: &AssignRequest,
) -> Result<Vec<&'a NodeCandidate>, AssignError> {
    let usable: Vec<&NodeCandidate> = candidates
        .iter()
        .filter(|n| n.healthy && n.active && !request.exclude.contains(&n.id))
        .collect();
    if usable.is_empty() {
        return Err(AssignError::NoNodes);
    }
    let allowed: Vec<&NodeCandidate> = usable
        .into_iter()
        .filter(|n| region_allowed(n, request.allowed_regions.as_deref()))
        .collect();
    if allowed.is_empty() {
        return Err(AssignError::RegionNotAllowed);
    }
    let with_room: Vec<&NodeCandidate> = allowed
        .into_iter()
        .filter(|n| n.load < n.capacity)
        .collect();
    if with_room.is_empty() {
        return Err(AssignError::AllAtCapacity);
    }
    Ok(with_room)
}

fn region_allowed(node: &NodeCandidate, allowed: Option<&[String]>) -> bool {
    match allowed {
        None => true,
        Some(codes) => codes.iter().any(|code| node.in_region(code)),
    }
}

/// Restricts to the preferred region, else to the region nearest the client, when possible.
fn narrow_by_location<'a>(
    eligible: Vec<&'a NodeCandidate>,
    request: &AssignRequest,
) -> Vec<&'a NodeCandidate> {
    if let Some(preferred) = request.preferred_region.as_deref() {
        let in_preferred: Vec<_> = eligible
            .iter()
            .copied()
            .filter(|n| n.in_region(preferred))
            .collect();
        if !in_preferred.is_empty() {
            return in_preferred;
        }
    }
    let Some(client) = request.client_location else {
        return eligible;
    };
    let nearest = eligible
        .iter()
        .copied()
        .filter_map(|n| n.location().map(|loc| (n, great_circle_km(client, loc))))
        .min_by(|(_, a), (_, b)| a.total_cmp(b))
        .map(|(n, _)| n);
    match nearest {
        Some(nearest) => eligible
            .into_iter()
            .filter(|n| same_region(n, nearest))
            .collect(),
        None => eligible,
    }
}

/// Same region code, or (for nodes without a code) the same coordinates.
fn same_region(a: &NodeCandidate, b: &NodeCandidate) -> bool {
    match (&a.region, &b.region) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => a.location() == b.location(),
        _ => false,
    }
}

/// Great-circle distance in kilometres between two (latitude, longitude) points in degrees.
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

fn pick_weighted<'a, R: Rng + ?Sized>(
    nodes: &[&'a NodeCandidate],
    rng: &mut R,
) -> Option<&'a NodeCandidate> {
    if nodes.is_empty() {
        return None;
    }
    let total: u64 = nodes.iter().map(|n| u64::from(n.weight)).sum();
    if total == 0 {
        return nodes.get(rng.gen_range(0..nodes.len())).copied();
    }
    let mut ticket = rng.gen_range(0..total);
    for node in nodes {
        let weight = u64::from(node.weight);
        if ticket < weight {
            return Some(node);
        }
        ticket -= weight;
    }
    nodes.last().copied()
}

/// Lowest load ratio first; ties to higher weight, then lower id. Each side is a node with
/// the load to compare it at (failover adds its planned moves to the live load).
pub(crate) fn least_loaded_order(a: (&NodeCandidate, u32), b: (&NodeCandidate, u32)) -> Ordering {
    let ((a, load_a), (b, load_b)) = (a, b);
    compare_load_ratio(load_a, a.capacity, load_b, b.capacity)
        .then_with(|| b.weight.cmp(&a.weight))
        .then_with(|| a.id.cmp(&b.id))
}

/// Compares `load_a / cap_a` with `load_b / cap_b` exactly (no floats); capacity 0 is full.
pub(crate) fn compare_load_ratio(load_a: u32, cap_a: u32, load_b: u32, cap_b: u32) -> Ordering {
    match (cap_a, cap_b) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (u64::from(load_a) * u64::from(cap_b)).cmp(&(u64::from(load_b) * u64::from(cap_a))),
    }
}

/// Fewest live streams per capacity first when known, then [`least_loaded_order`] on sessions.
fn pick_least_loaded<'a>(nodes: &[&'a NodeCandidate]) -> Option<&'a NodeCandidate> {
    nodes.iter().copied().min_by(|a, b| {
        let streams = match (a.live_streams, b.live_streams) {
            (Some(x), Some(y)) => compare_load_ratio(x, a.capacity, y, b.capacity),
            _ => Ordering::Equal,
        };
        streams.then_with(|| least_loaded_order((a, a.load), (b, b.load)))
    })
}

#[cfg(test)]
mod tests;
