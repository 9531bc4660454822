//! Pool nodes seeded straight into the store, and their health set as a probe would record it:
//! shared by the control plane's tests and the gateway's (`gateway/tests/common/cp.rs` includes
//! this file by path).
#![allow(dead_code)]

use httvps_control_plane::model::{now_ms, NodeHealth};
use httvps_control_plane::store::{NewNode, ProbeRecord, Store};
use uuid::Uuid;

/// A node nobody connects to (a documentation address), weight 100, in `region` and `groups`.
pub async fn add_node(
    store: &Store,
    name: &str,
    region: Option<Uuid>,
    groups: Vec<Uuid>,
    capacity: i32,
) -> Uuid {
    store
        .create_node(
            "test",
            &NewNode {
                name: name.into(),
                host: "198.51.100.1".into(),
                port: 8388,
                cipher: "chacha20-ietf-poly1305".into(),
                secret: format!("secret-{name}"),
                region_id: region,
                groups,
                weight: 100,
                capacity,
            },
        )
        .await
        .unwrap()
        .id
}

/// Records a probe that moves `node` to `health`.
pub async fn mark(store: &Store, node: Uuid, health: NodeHealth) {
    store
        .record_probe(&ProbeRecord {
            node_id: node,
            at: now_ms(),
            health,
            consecutive_failures: 0,
            consecutive_successes: 0,
            latency_ms: None,
            error: None,
            transition: Some(health),
        })
        .await
        .unwrap();
}
