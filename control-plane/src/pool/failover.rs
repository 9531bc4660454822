//! Failover planning for the sessions of a failed node (pure: no I/O).

use std::cmp::Ordering;

use uuid::Uuid;

use super::assign::{least_loaded_order, NodeCandidate};

/// A session pinned to the failed node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// Session id.
    pub session_id: Uuid,
    /// Device the session belongs to (its sticky node moves with it).
    pub device_id: Uuid,
}

/// Input of [`plan_failover`].
#[derive(Debug, Clone, Copy)]
pub struct FailoverRequest<'a> {
    /// The node that failed.
    pub failed_node: Uuid,
    /// Its sessions, in the order they should be moved.
    pub sessions: &'a [SessionRef],
    /// Every pool node (the failed one included: its groups come from here).
    pub candidates: &'a [NodeCandidate],
    /// Migrations allowed in flight at once, pool-wide.
    pub max_in_flight: u32,
    /// Migrations already in flight.
    pub already_in_flight: u32,
}

/// One planned migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMove {
    /// Session id.
    pub session_id: Uuid,
    /// Device id.
    pub device_id: Uuid,
    /// The failed node.
    pub from: Uuid,
    /// The new node.
    pub to: Uuid,
    /// Whether the new node shares a group with the failed one.
    pub same_group: bool,
}

/// What to do with a failed node's sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailoverPlan {
    /// Migrations to start now.
    pub moves: Vec<SessionMove>,
    /// Sessions left for a later round because the in-flight budget is used up.
    pub deferred: Vec<SessionRef>,
    /// Sessions no eligible node has room for.
    pub stranded: Vec<SessionRef>,
}

/// Plans migrations: each session goes to the least-loaded eligible node sharing a group with
/// the failed node, else to the least-loaded other eligible node. Eligible: healthy, active, not
/// the failed node, below capacity counting the moves already planned. At most
/// `max_in_flight - already_in_flight` moves are planned.
pub fn plan_failover(request: &FailoverRequest<'_>) -> FailoverPlan {
    let failed_groups: &[Uuid] = request
        .candidates
        .iter()
        .find(|n| n.id == request.failed_node)
        .map(|n| n.groups.as_slice())
        .unwrap_or_default();
    let mut targets: Vec<Target<'_>> = request
        .candidates
        .iter()
        .filter(|n| n.id != request.failed_node && n.healthy && n.active)
        .map(|node| Target {
            node,
            load: node.load,
            same_group: node.groups.iter().any(|g| failed_groups.contains(g)),
        })
        .collect();

    let mut budget = request
        .max_in_flight
        .saturating_sub(request.already_in_flight);
    let mut plan = FailoverPlan::default();
    for session in request.sessions {
        if budget == 0 {
            plan.deferred.push(*session);
            continue;
        }
        match best_target(&mut targets) {
            Some(target) => {
                target.load += 1;
                budget -= 1;
                plan.moves.push(SessionMove {
                    session_id: session.session_id,
                    device_id: session.device_id,
                    from: request.failed_node,
                    to: target.node.id,
                    same_group: target.same_group,
                });
            }
            None => plan.stranded.push(*session),
        }
    }
    plan
}

/// A possible destination with its load including planned moves.
struct Target<'a> {
    node: &'a NodeCandidate,
    load: u32,
    same_group: bool,
}

impl Target<'_> {
    fn has_room(&self) -> bool {
        self.load < self.node.capacity
    }
}

fn best_target<'t, 'a>(targets: &'t mut [Target<'a>]) -> Option<&'t mut Target<'a>> {
    targets
        .iter_mut()
        .filter(|t| t.has_room())
        .min_by(|a, b| compare_targets(a, b))
}

/// Same group first, then least loaded (ratio, weight, id).
fn compare_targets(a: &Target<'_>, b: &Target<'_>) -> Ordering {
    b.same_group
        .cmp(&a.same_group)
        .then_with(|| least_loaded_order((a.node, a.load), (b.node, b.load)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn group(n: u128) -> Uuid {
        Uuid::from_u128(1000 + n)
    }

    fn node(n: u128, groups: &[u128], load: u32, capacity: u32) -> NodeCandidate {
        NodeCandidate {
            id: id(n),
            region: None,
            latitude: None,
            longitude: None,
            groups: groups.iter().map(|g| group(*g)).collect(),
            weight: 1,
            capacity,
            load,
            live_streams: None,
            healthy: true,
            active: true,
        }
    }

    fn sessions(count: u128) -> Vec<SessionRef> {
        (0..count)
            .map(|i| SessionRef {
                session_id: Uuid::from_u128(10_000 + i),
                device_id: Uuid::from_u128(20_000 + i),
            })
            .collect()
    }

    fn request<'a>(
        candidates: &'a [NodeCandidate],
        sessions: &'a [SessionRef],
        max_in_flight: u32,
    ) -> FailoverRequest<'a> {
        FailoverRequest {
            failed_node: id(1),
            sessions,
            candidates,
            max_in_flight,
            already_in_flight: 0,
        }
    }

    fn targets(plan: &FailoverPlan) -> Vec<Uuid> {
        plan.moves.iter().map(|m| m.to).collect()
    }

    #[test]
    fn same_group_first_even_if_busier() {
        let nodes = [
            NodeCandidate {
                healthy: false,
                ..node(1, &[1], 2, 10)
            },
            node(2, &[1], 8, 10), // same group, busy
            node(3, &[2], 0, 10), // other group, idle
        ];
        let s = sessions(2);
        let plan = plan_failover(&request(&nodes, &s, 100));
        assert_eq!(targets(&plan), vec![id(2), id(2)]);
        assert!(plan.moves.iter().all(|m| m.same_group && m.from == id(1)));
        assert_eq!(plan.moves[0].session_id, s[0].session_id);
        assert_eq!(plan.moves[1].device_id, s[1].device_id);
        assert!(plan.stranded.is_empty() && plan.deferred.is_empty());
    }

    #[test]
    fn spreads_over_same_group_by_load_as_moves_add_up() {
        let nodes = [
            node(1, &[1], 0, 10),
            node(2, &[1], 2, 10),
            node(3, &[1, 2], 0, 10),
            node(4, &[3], 0, 10),
        ];
        let s = sessions(4);
        let plan = plan_failover(&request(&nodes, &s, 100));
        // node 3 takes two (0 -> 2), then ties with node 2 at 2/10 and the lower id wins.
        assert_eq!(targets(&plan), vec![id(3), id(3), id(2), id(3)]);
    }

    #[test]
    fn crosses_groups_once_the_group_is_full() {
        let nodes = [
            node(1, &[1], 0, 10),
            node(2, &[1], 9, 10), // one slot left
            node(3, &[2], 5, 10),
            node(4, &[3], 1, 10),
            NodeCandidate {
                healthy: false,
                ..node(5, &[1], 0, 10)
            },
            NodeCandidate {
                active: false,
                ..node(6, &[1], 0, 10)
            },
        ];
        let s = sessions(3);
        let plan = plan_failover(&request(&nodes, &s, 100));
        assert_eq!(targets(&plan), vec![id(2), id(4), id(4)]);
        assert_eq!(
            plan.moves.iter().map(|m| m.same_group).collect::<Vec<_>>(),
            vec![true, false, false]
        );
    }

    #[test]
    fn bounded_by_in_flight_budget() {
        let nodes = [node(1, &[1], 0, 10), node(2, &[1], 0, 100)];
        let s = sessions(10);
        let mut req = request(&nodes, &s, 5);
        req.already_in_flight = 2;
        let plan = plan_failover(&req);
        assert_eq!(plan.moves.len(), 3);
        assert_eq!(plan.deferred.len(), 7);
        assert_eq!(plan.deferred[0], s[3]);
        assert!(plan.stranded.is_empty());

        req.already_in_flight = 9; // over the limit already
        let plan = plan_failover(&req);
        assert!(plan.moves.is_empty());
        assert_eq!(plan.deferred.len(), 10);
    }

    #[test]
    fn stranded_when_nothing_has_room() {
        let nodes = [
            node(1, &[1], 0, 10),
            node(2, &[1], 9, 10),
            node(3, &[2], 10, 10),
        ];
        let s = sessions(3);
        let plan = plan_failover(&request(&nodes, &s, 100));
        assert_eq!(targets(&plan), vec![id(2)]);
        assert_eq!(plan.stranded, vec![s[1], s[2]]);
        assert!(plan.deferred.is_empty());
    }

    #[test]
    fn unknown_failed_node_still_fails_over_across_groups() {
        let nodes = [node(2, &[1], 3, 10), node(3, &[2], 1, 10)];
        let s = sessions(1);
        let plan = plan_failover(&request(&nodes, &s, 100));
        assert_eq!(targets(&plan), vec![id(3)]);
        assert!(!plan.moves[0].same_group);
    }
}
