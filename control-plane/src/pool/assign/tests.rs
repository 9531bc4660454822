use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn node(n: u128, region: &str) -> NodeCandidate {
    NodeCandidate {
        id: id(n),
        region: Some(region.to_owned()),
        latitude: None,
        longitude: None,
        groups: Vec::new(),
        weight: 1,
        capacity: 100,
        load: 0,
        live_streams: None,
        healthy: true,
        active: true,
    }
}

fn located(n: u128, region: &str, lat: f64, lon: f64) -> NodeCandidate {
    NodeCandidate {
        latitude: Some(lat),
        longitude: Some(lon),
        ..node(n, region)
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn least(nodes: &[NodeCandidate], request: &AssignRequest) -> Result<Uuid, AssignError> {
    assign(nodes, request, Strategy::LeastConnections, &mut rng())
}

#[test]
fn no_nodes_when_none_healthy_active_or_all_excluded() {
    let req = AssignRequest::default();
    assert_eq!(least(&[], &req), Err(AssignError::NoNodes));
    let sick = NodeCandidate {
        healthy: false,
        ..node(1, "de")
    };
    let off = NodeCandidate {
        active: false,
        ..node(2, "de")
    };
    assert_eq!(least(&[sick, off], &req), Err(AssignError::NoNodes));
    let excluded = AssignRequest {
        exclude: vec![id(3)],
        ..Default::default()
    };
    assert_eq!(
        least(&[node(3, "de")], &excluded),
        Err(AssignError::NoNodes)
    );
}

#[test]
fn skips_unhealthy_inactive_and_excluded_nodes() {
    let nodes = [
        NodeCandidate {
            healthy: false,
            ..node(1, "de")
        },
        NodeCandidate {
            active: false,
            ..node(2, "de")
        },
        node(3, "de"),
        node(4, "de"),
    ];
    let req = AssignRequest {
        exclude: vec![id(3)],
        ..Default::default()
    };
    for _ in 0..50 {
        assert_eq!(
            assign(&nodes, &req, Strategy::Weighted, &mut rng()),
            Ok(id(4))
        );
    }
}

#[test]
fn capacity_is_skipped_and_reported() {
    let full = NodeCandidate {
        load: 100,
        ..node(1, "de")
    };
    let zero_cap = NodeCandidate {
        capacity: 0,
        ..node(2, "de")
    };
    let req = AssignRequest::default();
    assert_eq!(
        least(&[full.clone(), zero_cap.clone()], &req),
        Err(AssignError::AllAtCapacity)
    );
    let spare = NodeCandidate {
        load: 99,
        ..node(3, "de")
    };
    assert_eq!(least(&[full, zero_cap, spare], &req), Ok(id(3)));
}

#[test]
fn region_filter_and_not_allowed_error() {
    let nodes = [
        node(1, "de"),
        node(2, "us"),
        NodeCandidate {
            region: None,
            ..node(3, "x")
        },
    ];
    let only_us = AssignRequest {
        allowed_regions: Some(vec!["US".into()]),
        ..Default::default()
    };
    assert_eq!(least(&nodes, &only_us), Ok(id(2)));
    let only_jp = AssignRequest {
        allowed_regions: Some(vec!["jp".into()]),
        ..Default::default()
    };
    assert_eq!(least(&nodes, &only_jp), Err(AssignError::RegionNotAllowed));
    let none_allowed = AssignRequest {
        allowed_regions: Some(vec![]),
        ..Default::default()
    };
    assert_eq!(
        least(&nodes, &none_allowed),
        Err(AssignError::RegionNotAllowed)
    );
    // a region-less node is only usable when every region is allowed.
    let unrestricted = AssignRequest {
        exclude: vec![id(1), id(2)],
        ..Default::default()
    };
    assert_eq!(least(&nodes, &unrestricted), Ok(id(3)));
}

#[test]
fn sticky_node_wins_when_eligible() {
    let nodes = [
        NodeCandidate {
            load: 90,
            ..node(1, "de")
        },
        node(2, "de"),
        node(3, "us"),
    ];
    for preferred_region in [None, Some("de".to_owned()), Some("nowhere".to_owned())] {
        let sticky = AssignRequest {
            sticky_node: Some(id(1)),
            preferred_region,
            ..Default::default()
        };
        assert_eq!(least(&nodes, &sticky), Ok(id(1)));
        assert_eq!(
            assign(&nodes, &sticky, Strategy::Weighted, &mut rng()),
            Ok(id(1))
        );
    }
}

#[test]
fn a_requested_region_wins_over_the_sticky_node() {
    let nodes = [node(1, "de"), node(2, "de"), node(3, "us")];
    let request = AssignRequest {
        sticky_node: Some(id(1)),
        preferred_region: Some("US".into()),
        ..Default::default()
    };
    assert_eq!(least(&nodes, &request), Ok(id(3)));
    assert_eq!(
        assign(&nodes, &request, Strategy::Weighted, &mut rng()),
        Ok(id(3))
    );
}

#[test]
fn sticky_node_is_dropped_when_not_eligible() {
    let base = [
        node(1, "de"),
        NodeCandidate {
            load: 50,
            ..node(2, "de")
        },
    ];
    let cases = [
        NodeCandidate {
            healthy: false,
            ..node(9, "de")
        },
        NodeCandidate {
            active: false,
            ..node(9, "de")
        },
        NodeCandidate {
            load: 100,
            ..node(9, "de")
        },
        node(9, "jp"), // outside allowed regions
    ];
    for sticky_node in cases {
        let mut nodes = base.to_vec();
        nodes.push(sticky_node.clone());
        let req = AssignRequest {
            sticky_node: Some(id(9)),
            allowed_regions: Some(vec!["de".into()]),
            ..Default::default()
        };
        assert_eq!(least(&nodes, &req), Ok(id(1)), "{sticky_node:?}");
    }
    let excluded = AssignRequest {
        sticky_node: Some(id(1)),
        exclude: vec![id(1)],
        ..Default::default()
    };
    assert_eq!(least(&base, &excluded), Ok(id(2)));
}

#[test]
fn preferred_region_restricts_when_it_has_nodes() {
    let nodes = [
        node(1, "de"),
        NodeCandidate {
            load: 80,
            ..node(2, "us")
        },
    ];
    let prefer_us = AssignRequest {
        preferred_region: Some("us".into()),
        ..Default::default()
    };
    assert_eq!(least(&nodes, &prefer_us), Ok(id(2)));
    // preferred region full: fall back to the rest.
    let full_us = [
        node(1, "de"),
        NodeCandidate {
            load: 100,
            ..node(2, "us")
        },
    ];
    assert_eq!(least(&full_us, &prefer_us), Ok(id(1)));
}

#[test]
fn nearest_region_to_the_client() {
    let frankfurt = (50.11, 8.68);
    let nodes = [
        located(1, "us-east", 39.04, -77.49),
        located(2, "de", 50.11, 8.68),
        located(3, "de", 50.11, 8.68),
        located(4, "sg", 1.35, 103.82),
    ];
    let paris = AssignRequest {
        client_location: Some((48.86, 2.35)),
        ..Default::default()
    };
    for _ in 0..20 {
        let chosen = assign(&nodes, &paris, Strategy::Weighted, &mut rng()).unwrap();
        assert!(chosen == id(2) || chosen == id(3));
    }
    let tokyo = AssignRequest {
        client_location: Some((35.68, 139.69)),
        ..Default::default()
    };
    assert_eq!(least(&nodes, &tokyo), Ok(id(4)));
    // nearest region without room: next nearest.
    let mut busy = nodes.to_vec();
    busy[3].load = busy[3].capacity;
    assert!(matches!(least(&busy, &tokyo), Ok(n) if n == id(2) || n == id(3)));
    // preferred region beats geography.
    let prefer = AssignRequest {
        preferred_region: Some("us-east".into()),
        ..tokyo
    };
    assert_eq!(least(&nodes, &prefer), Ok(id(1)));
    assert!(great_circle_km(frankfurt, (48.86, 2.35)) < 500.0);
}

#[test]
fn great_circle_distance_is_sane() {
    // London to New York is about 5570 km.
    let d = great_circle_km((51.5074, -0.1278), (40.7128, -74.0060));
    assert!((d - 5570.0).abs() < 30.0, "{d}");
    assert_eq!(great_circle_km((10.0, 20.0), (10.0, 20.0)), 0.0);
    // antipodes: half the circumference.
    let half = great_circle_km((0.0, 0.0), (0.0, 180.0));
    assert!((half - std::f64::consts::PI * 6371.0).abs() < 1.0);
}

#[test]
fn weighted_distribution_is_proportional() {
    let nodes = [
        NodeCandidate {
            weight: 1,
            ..node(1, "de")
        },
        NodeCandidate {
            weight: 3,
            ..node(2, "de")
        },
        NodeCandidate {
            weight: 6,
            ..node(3, "de")
        },
        NodeCandidate {
            weight: 0,
            ..node(4, "de")
        },
    ];
    let mut rng = rng();
    let mut counts: HashMap<Uuid, u32> = HashMap::new();
    let draws = 10_000;
    for _ in 0..draws {
        let chosen = assign(
            &nodes,
            &AssignRequest::default(),
            Strategy::Weighted,
            &mut rng,
        )
        .unwrap();
        *counts.entry(chosen).or_default() += 1;
    }
    for (n, share) in [(1, 0.1), (2, 0.3), (3, 0.6)] {
        let got = f64::from(counts.get(&id(n)).copied().unwrap_or(0)) / f64::from(draws);
        assert!((got - share).abs() < 0.02, "node {n}: {got} vs {share}");
    }
    assert_eq!(counts.get(&id(4)), None, "weight 0 is never drawn");
}

#[test]
fn all_zero_weights_are_uniform() {
    let nodes = [
        NodeCandidate {
            weight: 0,
            ..node(1, "de")
        },
        NodeCandidate {
            weight: 0,
            ..node(2, "de")
        },
    ];
    let mut rng = rng();
    let ones = (0..2000)
        .filter(|_| {
            assign(
                &nodes,
                &AssignRequest::default(),
                Strategy::Weighted,
                &mut rng,
            ) == Ok(id(1))
        })
        .count();
    assert!((800..1200).contains(&ones), "{ones}");
}

#[test]
fn least_connections_uses_load_ratio_then_weight_then_id() {
    // 30/100 = 0.3 beats 4/10 = 0.4 although its absolute load is higher.
    let nodes = [
        NodeCandidate {
            load: 4,
            capacity: 10,
            ..node(1, "de")
        },
        NodeCandidate {
            load: 30,
            capacity: 100,
            ..node(2, "de")
        },
    ];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(2)));
    // equal ratio: the heavier weight wins.
    let nodes = [
        NodeCandidate {
            load: 1,
            capacity: 10,
            weight: 1,
            ..node(1, "de")
        },
        NodeCandidate {
            load: 10,
            capacity: 100,
            weight: 5,
            ..node(2, "de")
        },
    ];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(2)));
    // equal ratio and weight: the lower id wins, whatever the input order.
    let nodes = [node(8, "de"), node(5, "de"), node(9, "de")];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(5)));
}

#[test]
fn least_connections_ranks_by_live_streams_when_known() {
    // Node 1 has fewer sessions but more streams: the streams decide.
    let nodes = [
        NodeCandidate {
            load: 1,
            live_streams: Some(40),
            ..node(1, "de")
        },
        NodeCandidate {
            load: 5,
            live_streams: Some(3),
            ..node(2, "de")
        },
    ];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(2)));
    // Capacity still counts sessions: a node full of sessions is skipped however few
    // streams it carries.
    let nodes = [
        NodeCandidate {
            load: 100,
            live_streams: Some(0),
            ..node(1, "de")
        },
        NodeCandidate {
            load: 5,
            live_streams: Some(50),
            ..node(2, "de")
        },
    ];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(2)));
    // Equal streams (e.g. none reported yet): sessions decide.
    let nodes = [
        NodeCandidate {
            load: 7,
            live_streams: Some(0),
            ..node(1, "de")
        },
        NodeCandidate {
            load: 2,
            live_streams: Some(0),
            ..node(2, "de")
        },
    ];
    assert_eq!(least(&nodes, &AssignRequest::default()), Ok(id(2)));
}

#[test]
fn load_ratio_comparison_is_exact() {
    assert_eq!(compare_load_ratio(1, 3, 2, 6), Ordering::Equal);
    assert_eq!(
        compare_load_ratio(u32::MAX - 1, u32::MAX, 1, 2),
        Ordering::Greater
    );
    assert_eq!(compare_load_ratio(0, 0, 5, 5), Ordering::Greater);
}
