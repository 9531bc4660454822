//! Traffic a user has used: a usage report of `bytes` downloaded by a device of theirs, from a
//! gateway of its own, ingested as the gateway API would.

use httvps_control_plane::model::now_ms;
use httvps_control_plane::store::{NewDevice, Store, UsageRecordInput};
use uuid::Uuid;

pub async fn use_traffic(store: &Store, user: Uuid, bytes: i64) {
    let device = store
        .create_device(
            "test",
            &NewDevice {
                user_id: user,
                name: format!("traffic-{}", Uuid::new_v4().simple()),
                token_hash: "0".repeat(64),
            },
        )
        .await
        .expect("a device for the traffic");
    let (gateway, _) = store
        .create_gateway(
            "test",
            &format!("gw-{}", Uuid::new_v4().simple()),
            &"1".repeat(64),
        )
        .await
        .expect("a gateway for the report");
    let record = UsageRecordInput {
        session_id: None,
        device_id: device.id,
        node_id: None,
        bytes_up: 0,
        bytes_down: bytes,
        at: now_ms(),
    };
    let fresh = store
        .ingest_usage(gateway.id, &Uuid::new_v4().to_string(), &[record], now_ms())
        .await
        .expect("the report is ingested");
    assert!(fresh);
}
