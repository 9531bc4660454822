//! The gateway against the REAL control plane (in process, SQLite): device checks and their
//! refusal codes, the entitlement cache during an outage, single-flight, the session lifecycle
//! (start, heartbeat, kill, revocation, failover, end), usage counted exactly once, local quota
//! enforcement and the shutdown flush. Nodes are in-process Shadowsocks servers registered in
//! the control plane's pool.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cp::TestCp;
use common::wait::holds_for;
use common::*;
use httvps_control_plane::model::{now_ms, DeviceStatus, NodeHealth};
use httvps_control_plane::node_pool::fail_over;
use httvps_gateway::control_plane::{UsageRecord, UsageReport};
use httvps_gateway::GatewayConfig;
use httvps_proto::{ErrorCode, Event, HelloErrorCode, StreamKind};
use uuid::Uuid;

const T: Duration = Duration::from_secs(10);

fn fast_config() -> GatewayConfig {
    GatewayConfig {
        session_heartbeat_interval: Duration::from_millis(200),
        usage_report_interval: Duration::from_millis(200),
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_device_connects_relays_and_its_session_is_live_then_ended() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let device = Uuid::parse_str(&gw.device).unwrap();
    let echo = echo_server().await;
    let client = gw.client().await;
    echo_once(&client, echo, b"through a control-plane node").await;
    let live = live_sessions(&cp, device).await;
    assert_eq!(live.len(), 1, "the session is registered");
    assert!(
        live[0].node_id.is_some(),
        "the node was assigned by the control plane for this session"
    );
    let id = live[0].id;
    drop(client);
    eventually(T, "the session ended", || async {
        cp.store().get_session(id).await.unwrap().ended_at.is_some()
    })
    .await;
    assert_eq!(
        cp.store()
            .get_session(id)
            .await
            .unwrap()
            .end_reason
            .as_deref(),
        Some("client_closed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_control_plane_codes() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let code = |r: Result<TestClient, httvps_proto::frame::HelloError>| r.err().map(|e| e.code);

    let wrong = TestClient::try_connect(&gw, &gw.device, b"not-the-token").await;
    assert_eq!(code(wrong), Some(HelloErrorCode::AuthFailed));
    // The right token still works: a wrong token never hits (or poisons) the positive entry.
    gw.client().await;
    let unknown = TestClient::try_connect(&gw, &Uuid::new_v4().to_string(), b"x").await;
    assert_eq!(code(unknown), Some(HelloErrorCode::AuthFailed));

    let revoked = cp.subscriber(None, 5).await;
    cp.store()
        .update_device("test", revoked.device, Some(DeviceStatus::Revoked), None)
        .await
        .unwrap();
    let r =
        TestClient::try_connect(&gw, &revoked.device.to_string(), revoked.token.as_bytes()).await;
    assert_eq!(code(r), Some(HelloErrorCode::Revoked));

    let spent = cp.subscriber(Some(1000), 5).await;
    cp.client(&cp.gateway_token, T)
        .report_usage(&UsageReport {
            report_id: Uuid::new_v4().to_string(),
            records: vec![UsageRecord {
                session_id: None,
                device_id: spent.device,
                node_id: None,
                bytes_up: 600,
                bytes_down: 400,
                at: now_ms(),
            }],
        })
        .await
        .unwrap();
    let q = TestClient::try_connect(&gw, &spent.device.to_string(), spent.token.as_bytes()).await;
    assert_eq!(code(q), Some(HelloErrorCode::QuotaExceeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_limit_holds_across_two_gateways() {
    let cp = Arc::new(TestCp::start().await);
    let node = start_node().await;
    cp.add_node(&node, "n").await;
    let sub = cp.subscriber(None, 1).await;
    let device = sub.device.to_string();
    let gw_a = TestGateway::start_with_cp(test_config(), &cp, &cp.gateway_token).await;
    let token_b = cp.new_gateway_token("gw-b").await;
    let gw_b = TestGateway::start_with_cp(test_config(), &cp, &token_b).await;
    let first = TestClient::connect(&gw_a, &device, sub.token.as_bytes()).await;
    let err = TestClient::try_connect(&gw_b, &device, sub.token.as_bytes())
        .await
        .err()
        .expect("a second session beyond the plan's limit is refused");
    assert_eq!(err.code, HelloErrorCode::TooManySessions);
    assert!(err.retry_after_ms > 0);
    drop(first);
    eventually(T, "the first session ended", || async {
        live_sessions(&cp, sub.device).await.is_empty()
    })
    .await;
    TestClient::connect(&gw_b, &device, sub.token.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_down_a_cached_device_connects_an_unknown_one_gets_internal_quickly() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let echo = echo_server().await;
    let never_seen = cp.subscriber(None, 5).await;
    let first = gw.client().await;
    echo_once(&first, echo, b"before").await;
    drop(first);
    cp.stop().await;

    let started = Instant::now();
    let again = TestClient::try_connect(&gw, &gw.device, &gw.token)
        .await
        .unwrap_or_else(|e| panic!("a recently validated device keeps connecting: {e:?}"));
    // ... and relays, through the node the control plane last assigned to it.
    echo_once(&again, echo, b"during the outage").await;
    let started_other = Instant::now();
    let err = TestClient::try_connect(
        &gw,
        &never_seen.device.to_string(),
        never_seen.token.as_bytes(),
    )
    .await
    .err()
    .expect("an unknown device cannot be checked");
    assert_eq!(err.code, HelloErrorCode::Internal);
    assert!(err.retry_after_ms > 0, "with a retry hint");
    assert!(
        started_other.elapsed() < Duration::from_secs(3),
        "no hang: {:?}",
        started_other.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let stats = gw.cache.as_ref().unwrap().stats();
    assert!(stats.hits.load(Ordering::Relaxed) >= 1);
    cp.restart().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hellos_of_one_device_make_one_validate_call() {
    let config = GatewayConfig {
        // This test is about the validation cache, not the device's session limit.
        device_session_limit: 0,
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let attempts = (0..12).map(|_| TestClient::try_connect(&gw, &gw.device, &gw.token));
    let results = futures_util::future::join_all(attempts).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = gw.cache.as_ref().unwrap().stats();
    assert_eq!(
        stats.calls.load(Ordering::Relaxed),
        1,
        "one validation call for 12 concurrent HELLOs"
    );
    assert_eq!(
        stats.hits.load(Ordering::Relaxed) + stats.misses.load(Ordering::Relaxed),
        12
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_counted_exactly_once_across_a_control_plane_outage() {
    let gw = TestGateway::start(fast_config()).await;
    let cp = gw.cp.clone().unwrap();
    let sub = cp.subscriber(None, 5).await;
    let echo = echo_server().await;
    let client = TestClient::connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    echo_once(&client, echo, &pattern(100_000)).await;
    eventually(T, "the first bytes are reported", || async {
        cp.used_bytes(sub.user).await == 200_000
    })
    .await;

    cp.stop().await;
    // The session keeps its node: streams still work while the control plane is away.
    echo_once(&client, echo, &pattern(50_000)).await;
    let usage = gw.gateway.usage().unwrap();
    eventually(T, "a report failed during the outage", || async {
        usage.stats().send_failures.load(Ordering::Relaxed) > 0
    })
    .await;
    cp.restart().await;
    eventually(
        Duration::from_secs(40),
        "the retried report is counted",
        || async { cp.used_bytes(sub.user).await >= 300_000 },
    )
    .await;
    holds_for(Duration::from_millis(800), "no second count", || async {
        cp.used_bytes(sub.user).await == 300_000
    })
    .await;
    assert_eq!(
        cp.used_bytes(sub.user).await,
        300_000,
        "counted exactly once"
    );
    assert_eq!(usage.stats().bytes_dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_revocation_close_the_session_at_the_next_heartbeat() {
    let gw = TestGateway::start(fast_config()).await;
    let cp = gw.cp.clone().unwrap();

    let killed = cp.subscriber(None, 5).await;
    let mut a = TestClient::connect(&gw, &killed.device.to_string(), killed.token.as_bytes()).await;
    let session = live_sessions(&cp, killed.device).await[0].id;
    cp.store()
        .kill_session("admin:test", session)
        .await
        .unwrap();
    match a.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::Revoked),
        other => panic!("expected ERROR revoked, got {other:?}"),
    }
    eventually(T, "the killed session is ended", || async {
        cp.store()
            .get_session(session)
            .await
            .unwrap()
            .end_reason
            .as_deref()
            == Some("killed")
    })
    .await;

    let revoked = cp.subscriber(None, 5).await;
    let mut b =
        TestClient::connect(&gw, &revoked.device.to_string(), revoked.token.as_bytes()).await;
    cp.store()
        .update_device("test", revoked.device, Some(DeviceStatus::Revoked), None)
        .await
        .unwrap();
    match b.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::Revoked),
        other => panic!("expected ERROR revoked, got {other:?}"),
    }
    // The cached entitlement was dropped with it: the next HELLO is refused at once.
    let err = TestClient::try_connect(&gw, &revoked.device.to_string(), revoked.token.as_bytes())
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code, HelloErrorCode::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_moves_the_next_stream_to_the_new_node() {
    let cp = Arc::new(TestCp::start().await);
    let node_a = start_node().await;
    let node_b = start_node().await;
    let (fwd_a, count_a) = counting_forwarder(node_addr(&node_a)).await;
    let (fwd_b, count_b) = counting_forwarder(node_addr(&node_b)).await;
    let id_a = cp.add_node_at(&node_a, fwd_a, "a").await;
    let id_b = cp.add_node_at(&node_b, fwd_b, "b").await;
    let sub = cp.subscriber(None, 5).await;
    // The forwarders count TCP connections: no pre-warmed ones here.
    let config = GatewayConfig {
        node_prewarm: 0,
        ..fast_config()
    };
    let gw = TestGateway::start_with_cp(config, &cp, &cp.gateway_token).await;
    let echo = echo_server().await;
    let client = TestClient::connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    echo_once(&client, echo, b"first").await;

    let first = live_sessions(&cp, sub.device).await[0].node_id.unwrap();
    let (first_count, other_count, other) = if first == id_a {
        (count_a, count_b, id_b)
    } else {
        (count_b, count_a, id_a)
    };
    assert_eq!(
        (
            first_count.load(Ordering::SeqCst),
            other_count.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    cp.mark(first, NodeHealth::Unhealthy).await;
    let report = fail_over(cp.state(), first).await.unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!(live_sessions(&cp, sub.device).await[0].node_id, Some(other));
    // The next heartbeat (200 ms) tells the gateway: wait for two answered after the move, so
    // the first one's answer has been applied.
    let seen = std::cell::Cell::new(live_sessions(&cp, sub.device).await[0].last_heartbeat_at);
    let beats = std::cell::Cell::new(0);
    eventually(T, "two heartbeats after the failover", || async {
        let at = live_sessions(&cp, sub.device).await[0].last_heartbeat_at;
        if at > seen.get() {
            seen.set(at);
            beats.set(beats.get() + 1);
        }
        beats.get() >= 2
    })
    .await;
    echo_once(&client, echo, b"second").await;
    assert_eq!(
        (
            first_count.load(Ordering::SeqCst),
            other_count.load(Ordering::SeqCst)
        ),
        (1, 1),
        "the new stream went through the node the control plane moved the session to"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_uses_up_its_quota_is_closed_with_quota_exceeded() {
    let gw = TestGateway::start(test_config()).await;
    let cp = gw.cp.clone().unwrap();
    let sub = cp.subscriber(Some(60_000), 5).await;
    let echo = echo_server().await;
    let mut client = TestClient::connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    let mut s = client.open(StreamKind::Tcp, echo, b"").await;
    s.accepted().await.unwrap();
    tokio::spawn(async move {
        s.write(&pattern(200_000)).await;
        let _ = s.next(T).await;
    });
    match client.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::QuotaExceeded),
        other => panic!("expected ERROR quota_exceeded, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_sessions_and_flushes_usage_before_returning() {
    let config = GatewayConfig {
        // Only the shutdown (and session ends) deliver usage here.
        usage_report_interval: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(2),
        ..test_config()
    };
    let gw = TestGateway::start(config).await;
    let cp = gw.cp.clone().unwrap();
    let sub = cp.subscriber(None, 5).await;
    let echo = echo_server().await;
    let mut client = TestClient::connect(&gw, &sub.device.to_string(), sub.token.as_bytes()).await;
    echo_once(&client, echo, &pattern(10_000)).await;
    let session = live_sessions(&cp, sub.device).await[0].id;
    assert_eq!(cp.used_bytes(sub.user).await, 0, "nothing reported yet");
    let TestGateway { gateway, .. } = gw;
    let shutdown = tokio::spawn(gateway.shutdown());
    match client.session_event(T).await {
        Some(Event::GoAway(g)) => assert_eq!(g.code, ErrorCode::ShuttingDown),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    tokio::time::timeout(T, shutdown).await.unwrap().unwrap();
    assert_eq!(cp.used_bytes(sub.user).await, 20_000, "flushed before exit");
    let ended = cp.store().get_session(session).await.unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("shutdown"));
}

/// Session starts, heartbeats and ends made at the same time share control-plane calls, and
/// each caller still gets its own item's outcome: a start over the plan's limit is refused with
/// `too_many_sessions` while the others in its batch are registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_session_calls_share_batches_and_keep_their_own_outcomes() {
    let cp = Arc::new(TestCp::start().await);
    let client = cp.client(&cp.gateway_token, T);
    let mut devices = Vec::new();
    for _ in 0..60 {
        devices.push(cp.subscriber(None, 1).await.device.to_string());
    }
    let sessions: Vec<Uuid> = devices.iter().map(|_| Uuid::new_v4()).collect();
    let starts = futures_util::future::join_all(
        devices
            .iter()
            .zip(&sessions)
            .map(|(device, id)| client.start_session(*id, device, None, None)),
    )
    .await;
    assert!(starts.iter().all(Result::is_ok), "{starts:?}");
    let starting = client.session_batches();
    assert!(
        starting < 30,
        "60 concurrent starts took {starting} batch calls"
    );
    // A second session of a device on a plan allowing one, beside a heartbeat of every session.
    let (over, beats) = tokio::join!(
        client.start_session(Uuid::new_v4(), &devices[0], None, None),
        futures_util::future::join_all(sessions.iter().map(|id| client.heartbeat_session(*id))),
    );
    match over {
        Err(httvps_gateway::control_plane::CpError::Refused {
            status: 409, code, ..
        }) => {
            assert_eq!(code.as_str(), "too_many_sessions")
        }
        other => panic!("the start over the limit: {other:?}"),
    }
    assert!(
        beats.iter().all(|b| matches!(b, Ok(a) if a.end.is_none())),
        "{beats:?}"
    );
    let ends = futures_util::future::join_all(
        sessions
            .iter()
            .map(|id| client.end_session(*id, &httvps_contract::EndReason::ClientClosed)),
    )
    .await;
    assert!(ends.iter().all(Result::is_ok), "{ends:?}");
    let all = client.session_batches();
    assert!(all < 60, "180 session calls took {all} batch calls");
    for device in &devices[..3] {
        let recorded = cp.sessions_of(Uuid::parse_str(device).unwrap()).await;
        assert_eq!(
            recorded[0].end_reason.as_deref(),
            Some("client_closed"),
            "{recorded:?}"
        );
    }
}

/// Device checks made at the same time share control-plane calls, and each HELLO still gets its
/// own device's answer: a wrong token is refused, its neighbours in the batch are allowed with
/// their own entitlements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_device_checks_share_batches_and_keep_their_own_answers() {
    use httvps_gateway::authority::Verdict;

    let cp = Arc::new(TestCp::start().await);
    let client = cp.client(&cp.gateway_token, T);
    let mut subscribers = Vec::new();
    for i in 0..40 {
        subscribers.push(cp.subscriber(Some(1_000 + i), 2).await);
    }
    let checks = futures_util::future::join_all(subscribers.iter().enumerate().map(|(i, s)| {
        let token = if i % 5 == 0 {
            "wrong"
        } else {
            s.token.as_str()
        }
        .to_owned();
        let device = s.device.to_string();
        let client = client.clone();
        async move { client.validate_device(&device, &token, None).await }
    }))
    .await;
    for (i, (check, s)) in checks.iter().zip(&subscribers).enumerate() {
        match (&check.as_ref().map(|a| &a.verdict), i % 5 == 0) {
            (Ok(Verdict::Deny { code, .. }), true) => {
                assert_eq!(*code, HelloErrorCode::AuthFailed, "device {i}")
            }
            (Ok(Verdict::Allow(e)), false) => {
                assert_eq!(e.device_id, s.device.to_string(), "device {i}");
                assert_eq!(e.user_id, Some(s.user.to_string()), "device {i}");
                assert_eq!(e.remaining_bytes, Some(1_000 + i as u64), "device {i}");
            }
            (other, wrong) => panic!("device {i} (wrong token: {wrong}): {other:?}"),
        }
    }
    let batches = client.validate_batches();
    assert!(
        (1..40).contains(&batches),
        "40 concurrent checks took {batches} batch calls"
    );
}
