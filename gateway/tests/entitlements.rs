//! What a device's entitlement means for its sessions, against the REAL control plane (in
//! process, SQLite) and real Shadowsocks nodes: the subscription's end time, regions (requested,
//! unknown, excluded by the plan, cached), node selection while the control plane is down, and
//! the gateway's own session cap.

mod common;

use std::time::Duration;

use common::*;
use httvps_control_plane::model::now_ms;
use httvps_proto::{ErrorCode, Event};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_ends_mid_session_ends_the_session_at_its_end_time() {
    // Heartbeats every 30 s (the default): only the entitlement's end time can be on time.
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let sub = cp.subscriber(None, 5).await;
    let end = now_ms() + 3_000;
    cp.store()
        .execute_raw(&format!(
            "UPDATE subscriptions SET ends_at = {end} WHERE user_id = '{}'",
            sub.user
        ))
        .await
        .unwrap();
    let mut client = TestClient::try_connect(&gw, &sub.device.to_string(), sub.token.as_bytes())
        .await
        .unwrap();
    let echo = echo_server().await;
    echo_once(&client, echo, b"while the subscription runs").await;
    let event = client.session_event(T).await;
    let late_ms = now_ms() - end;
    match event {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::Expired),
        other => panic!("expected ERROR expired, got {other:?}"),
    }
    assert!(
        (-100..=1_000).contains(&late_ms),
        "ended {late_ms} ms after the subscription's end (at most 1 s late)"
    );
    eventually(T, "the session is over at the control plane", || async {
        live_sessions(&cp, sub.device).await.is_empty()
    })
    .await;
    // The cached allow went with it: the next HELLO is refused as expired.
    let again = TestClient::try_connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    assert_eq!(
        again.err().map(|e| e.code),
        Some(httvps_proto::HelloErrorCode::Expired)
    );
}
