//! What a device's entitlement means for its sessions, against the REAL control plane (in
//! process, SQLite) and real Shadowsocks nodes: the subscription's end time, regions (requested,
//! unknown, excluded by the plan, cached), node selection (while the control plane is down, and
//! concurrent opens of one session sharing one assignment), and the gateway's own session cap.

mod common;

use std::time::Duration;

use common::cp::{Subscriber, TestCp};
use common::*;
use httvps_control_plane::model::now_ms;
use httvps_control_plane::store::{NewRegion, NewSubscription};
use httvps_gateway::authority::BoxFuture;
use httvps_gateway::control_plane::ControlPlaneClient;
use httvps_gateway::upstream::{AssignRequest, NoNode};
use httvps_gateway::{Gateway, Node, NodeSource, StaticAuthority, TlsSource};
use httvps_proto::{ClientHello, ErrorCode, Event, HelloErrorCode, ResetCode, StreamKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use uuid::Uuid;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_ends_mid_session_ends_the_session_at_its_end_time() {
    // Heartbeats every 30 s (the default): only the entitlement's end time can be on time.
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let (sub, end, mut client) = connected_until(&gw, &cp, 3_000).await;
    let echo = echo_server().await;
    echo_once(&client, echo, b"while the subscription runs").await;
    expect_expired_at(&mut client, end, "").await;
    eventually(T, "the session is over at the control plane", || async {
        live_sessions(&cp, sub.device).await.is_empty()
    })
    .await;
    // The cached allow went with it: the next HELLO is refused as expired.
    let again = TestClient::try_connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    assert_eq!(again.err().map(|e| e.code), Some(HelloErrorCode::Expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_end_holds_while_the_control_plane_is_down() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let (_, end, mut client) = connected_until(&gw, &cp, 2_000).await;
    cp.stop().await;
    expect_expired_at(&mut client, end, " with nobody to ask").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_bought_mid_session_keeps_the_session_past_the_old_end() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let (sub, _, mut client) = connected_until(&gw, &cp, 2_000).await;
    // The renewal: a queued subscription that starts when the current one ends.
    let plan = cp.store().list_subscriptions(sub.user).await.unwrap()[0].plan_id;
    cp.store()
        .create_subscription(
            "test",
            sub.user,
            &NewSubscription {
                plan_id: plan,
                on_hold: false,
                queued: true,
            },
        )
        .await
        .unwrap();
    let echo = echo_server().await;
    // Past the old end (2 s after it was set) nothing ends the session: an ERROR would arrive
    // as an event.
    assert!(
        client
            .session_event(Duration::from_millis(3_600))
            .await
            .is_none(),
        "no ERROR at the old end"
    );
    echo_once(&client, echo, b"on the renewed subscription").await;
}

/// A subscriber of `cp` whose subscription ends `in_ms` from now, and a session of theirs
/// through `gw`; returns the subscriber, the end time and the connected client.
async fn connected_until(
    gw: &TestGateway,
    cp: &TestCp,
    in_ms: i64,
) -> (Subscriber, i64, TestClient) {
    let sub = cp.subscriber(None, 5).await;
    let end = now_ms() + in_ms;
    cp.store()
        .execute_raw(&format!(
            "UPDATE subscriptions SET ends_at = {end} WHERE user_id = '{}'",
            sub.user
        ))
        .await
        .unwrap();
    let client = TestClient::try_connect(gw, &sub.device.to_string(), sub.token.as_bytes())
        .await
        .unwrap();
    (sub, end, client)
}

/// The session's next event is ERROR expired, at most 1 s after `end` (`context` says why
/// it is on time).
async fn expect_expired_at(client: &mut TestClient, end: i64, context: &str) {
    let event = client.session_event(T).await;
    let late_ms = now_ms() - end;
    match event {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::Expired),
        other => panic!("expected ERROR expired, got {other:?}"),
    }
    assert!(
        (-100..=1_000).contains(&late_ms),
        "ended {late_ms} ms after the subscription's end{context} (at most 1 s late)"
    );
}

/// A region with this code.
async fn region(cp: &TestCp, code: &str) -> Uuid {
    cp.store()
        .create_region(
            "test",
            &NewRegion {
                code: code.into(),
                name: code.to_uppercase(),
                latitude: None,
                longitude: None,
            },
        )
        .await
        .unwrap()
        .id
}

/// A real Shadowsocks node of the test, registered in `region`.
async fn node_in(cp: &TestCp, region: Uuid, name: &str) -> Uuid {
    let node = start_node().await;
    cp.add_node_in(&node, node_addr(&node), name, Some(region))
        .await
}

/// A real Shadowsocks node registered in `region` at a TCP forwarder that counts the
/// connections it carries (so the test sees which node a stream went through).
async fn counted_node_in(cp: &TestCp, region: Uuid, name: &str) -> Arc<AtomicUsize> {
    let node = start_node().await;
    let (addr, count) = counting_forwarder(node_addr(&node)).await;
    cp.add_node_in(&node, addr, name, Some(region)).await;
    count
}

/// A subscriber whose plan allows only `regions` (empty: all).
async fn subscriber_in(cp: &TestCp, regions: &[Uuid]) -> Subscriber {
    cp.subscriber_with(None, 50, regions).await
}

/// HELLO of `sub` asking for `region`.
async fn connect_in(
    gw: &TestGateway,
    sub: &Subscriber,
    region: Option<&str>,
) -> Result<TestClient, HelloErrorCode> {
    let mut hello = ClientHello::new(sub.device.to_string(), sub.token.as_bytes().to_vec());
    hello.region = region.map(str::to_owned);
    TestClient::try_connect_with(gw.addr(), &gw.fingerprint(), hello)
        .await
        .map_err(|e| e.code)
}

fn region_config() -> httvps_gateway::GatewayConfig {
    httvps_gateway::GatewayConfig {
        // Several sessions of one device in a row; the limits are not what is tested here.
        device_session_limit: 0,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_excluded_regions_are_refused_and_cached_answers_keep_to_the_requested_region()
{
    let cp = Arc::new(TestCp::start().await);
    let de = region(&cp, "de").await;
    region(&cp, "us").await;
    node_in(&cp, de, "de-1").await;
    let gw = TestGateway::start_with_cp(region_config(), &cp, &cp.gateway_token).await;
    let echo = echo_server().await;

    let only_de = subscriber_in(&cp, &[de]).await;
    assert_eq!(
        connect_in(&gw, &only_de, Some("zz")).await.err(),
        Some(HelloErrorCode::RegionNotAllowed),
        "a region nobody defined (SPEC §10.2)"
    );
    // An allow without a region is cached ...
    let client = connect_in(&gw, &only_de, None).await.unwrap();
    echo_once(&client, echo, b"no region").await;
    // ... and not used for a region the plan excludes.
    assert_eq!(
        connect_in(&gw, &only_de, Some("us")).await.err(),
        Some(HelloErrorCode::RegionNotAllowed),
        "a cached allow without a region does not cover an excluded region"
    );
    let client = connect_in(&gw, &only_de, Some("DE")).await.unwrap();
    echo_once(&client, echo, b"in de").await;

    // A cached region_not_allowed does not refuse the next HELLO without a region.
    let other = subscriber_in(&cp, &[de]).await;
    assert_eq!(
        connect_in(&gw, &other, Some("us")).await.err(),
        Some(HelloErrorCode::RegionNotAllowed)
    );
    let client = connect_in(&gw, &other, None)
        .await
        .expect("the refused region was cached for that region only");
    echo_once(&client, echo, b"after a refused region").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_region_is_refused_and_a_requested_region_wins_over_the_devices_sticky_node() {
    let cp = Arc::new(TestCp::start().await);
    let de = region(&cp, "de").await;
    let us = region(&cp, "us").await;
    let de_node = node_in(&cp, de, "de-1").await;
    let us_node = node_in(&cp, us, "us-1").await;
    let gw = TestGateway::start_with_cp(region_config(), &cp, &cp.gateway_token).await;
    let echo = echo_server().await;
    let sub = subscriber_in(&cp, &[]).await;
    assert_eq!(
        connect_in(&gw, &sub, Some("zz")).await.err(),
        Some(HelloErrorCode::RegionNotAllowed),
        "a plan allowing every region still does not allow one nobody defined (SPEC §10.2)"
    );

    let node_of = |client: &TestClient| {
        let session = Uuid::from_bytes(client.session_id);
        let cp = cp.clone();
        async move { cp.store().get_session(session).await.unwrap().node_id }
    };
    let first = connect_in(&gw, &sub, Some("de")).await.unwrap();
    echo_once(&first, echo, b"in de").await;
    assert_eq!(node_of(&first).await, Some(de_node));
    // The device is sticky to the de node now; asking for us must still get us.
    let second = connect_in(&gw, &sub, Some("us")).await.unwrap();
    echo_once(&second, echo, b"in us").await;
    assert_eq!(
        node_of(&second).await,
        Some(us_node),
        "the requested region, not the sticky node"
    );
    // Without a region the sticky node (now the us node) holds.
    let third = connect_in(&gw, &sub, None).await.unwrap();
    echo_once(&third, echo, b"sticky").await;
    assert_eq!(node_of(&third).await, Some(us_node));
}

/// A gateway on `cp` whose control-plane client the test keeps (to see its pool snapshot).
async fn gateway_keeping_client(cp: &Arc<TestCp>) -> (TestGateway, Arc<ControlPlaneClient>) {
    TestGateway::start_keeping_client(region_config(), cp, &cp.gateway_token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_down_a_cached_device_that_never_had_a_node_gets_one_from_the_last_known_pool(
) {
    let cp = Arc::new(TestCp::start().await);
    let node = start_node().await;
    cp.add_node(&node, "node-1").await;
    let (gw, client) = gateway_keeping_client(&cp).await;
    eventually(T, "the gateway has the pool snapshot", || async {
        client.known_pool_len() == 1
    })
    .await;
    let echo = echo_server().await;
    let sub = cp.subscriber(None, 5).await;
    // An allow in the cache, no stream: the device never had a node assigned.
    drop(connect_in(&gw, &sub, None).await.unwrap());
    cp.stop().await;
    let session = connect_in(&gw, &sub, None)
        .await
        .expect("admitted from the cached allow");
    echo_once(&session, echo, b"through a node of the last known pool").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_down_and_no_node_known_a_cached_device_is_refused_at_hello() {
    // A pool without nodes: the snapshot is empty and the device never had a node.
    let cp = Arc::new(TestCp::start().await);
    let (gw, _client) = gateway_keeping_client(&cp).await;
    let sub = cp.subscriber(None, 5).await;
    drop(connect_in(&gw, &sub, None).await.unwrap());
    cp.stop().await;
    let mut hello = ClientHello::new(sub.device.to_string(), sub.token.as_bytes().to_vec());
    hello.region = None;
    let refused = TestClient::try_connect_with(gw.addr(), &gw.fingerprint(), hello)
        .await
        .err()
        .expect("not admitted into a session where every stream would fail");
    assert_eq!(refused.code, HelloErrorCode::Internal);
    assert!(refused.retry_after_ms > 0, "with a retry hint");
}

/// A node source that takes its time to find nothing (a slow control plane with an empty pool),
/// counting the calls.
#[derive(Debug, Default)]
struct SlowEmptyPool {
    calls: AtomicUsize,
}

impl NodeSource for SlowEmptyPool {
    fn assign<'a>(&'a self, _: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err(NoNode("no node in the pool".into()))
        })
    }

    fn report_failure<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_session_share_one_node_assignment_instead_of_queueing() {
    let nodes = Arc::new(SlowEmptyPool::default());
    let tls = Arc::new(TlsSource::self_signed(&["localhost".into()]).unwrap());
    let gateway = Gateway::start(
        test_config(),
        tls,
        Arc::new(StaticAuthority::new().with_device(DEVICE, TOKEN)),
        nodes.clone(),
    )
    .await
    .unwrap();
    let gw = TestGateway {
        gateway,
        node: dead_node(),
        device: DEVICE.into(),
        token: TOKEN.to_vec(),
        cache: None,
        cp: None,
    };
    let client = gw.client().await;
    let echo = echo_server().await;
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(client.open(StreamKind::Tcp, echo, b"").await);
    }
    for mut s in streams {
        assert_eq!(s.accepted().await, Err(ResetCode::NodeUnavailable));
    }
    assert_eq!(
        nodes.calls.load(Ordering::SeqCst),
        1,
        "eight opens waiting for a node make one assignment, not one each in turn behind a lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_at_its_session_cap_refuses_hello_and_admits_again_once_a_session_ends() {
    let config = httvps_gateway::GatewayConfig {
        max_sessions: 2,
        ..test_config()
    };
    let gw = TestGateway::start_static(config).await;
    let first = gw.client().await;
    let _second = TestClient::connect(&gw, "dev-2", b"token-2").await;
    let refused = TestClient::try_connect(&gw, "dev-2", b"token-2")
        .await
        .err()
        .expect("a third session is over the gateway's cap");
    assert_eq!(refused.code, HelloErrorCode::Internal);
    assert!(refused.retry_after_ms > 0, "with a retry hint");
    drop(first);
    eventually(T, "a session ended and its slot is free", || async {
        TestClient::try_connect(&gw, "dev-2", b"token-2")
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_down_a_requested_region_wins_over_the_devices_last_node() {
    let cp = Arc::new(TestCp::start().await);
    let de = region(&cp, "de").await;
    let us = region(&cp, "us").await;
    let via_de = counted_node_in(&cp, de, "de-1").await;
    let via_us = counted_node_in(&cp, us, "us-1").await;
    let (gw, client) = gateway_keeping_client(&cp).await;
    eventually(T, "the gateway has the pool snapshot", || async {
        client.known_pool_len() == 2
    })
    .await;
    let echo = echo_server().await;
    let sub = subscriber_in(&cp, &[]).await;
    // Allows cached for both regions; the device's last node is the de node.
    drop(connect_in(&gw, &sub, Some("us")).await.unwrap());
    let session = connect_in(&gw, &sub, Some("de")).await.unwrap();
    echo_once(&session, echo, b"in de").await;
    assert!(via_de.load(Ordering::SeqCst) > 0);
    cp.stop().await;
    let before = via_us.load(Ordering::SeqCst);
    let session = connect_in(&gw, &sub, Some("us")).await.unwrap();
    echo_once(&session, echo, b"in us, from the last known pool").await;
    assert!(
        via_us.load(Ordering::SeqCst) > before,
        "the requested region's node, not the device's last node in de"
    );
}
