//! The shared-state contract: every case runs against the in-process store and against the real
//! Redis (`REDIS_URL_TEST`, default `redis://127.0.0.1:6379`; an unreachable Redis fails the
//! run, it does not skip it). Each Redis case uses its own key prefix, and its "two gateways"
//! are two `RedisStore`s on that prefix.

use std::sync::Arc;
use std::time::Duration;

use httvps_shared_state::{
    Admission, AdmitOutcome, GatewayInfo, InProcessStore, LimitScope, NodeLoads, RedisStore,
    ResumeRecord, RevocationTarget, SessionLease, SessionOwner, SessionStore, SharedEvent,
    UsageCounter,
};

const LEASE: Duration = Duration::from_secs(30);

/// Two handles on one shared state, as two gateways would hold it.
struct Pair {
    a: Arc<dyn SessionStore>,
    b: Arc<dyn SessionStore>,
}

fn in_process() -> Pair {
    let store: Arc<dyn SessionStore> = Arc::new(InProcessStore::new());
    Pair {
        a: store.clone(),
        b: store,
    }
}

async fn redis() -> Pair {
    let url =
        std::env::var("REDIS_URL_TEST").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("httvps-test-{}", uuid::Uuid::new_v4().simple());
    let open = || {
        Arc::new(RedisStore::open(&url, &prefix, Duration::from_secs(2)).expect("valid URL"))
            as Arc<dyn SessionStore>
    };
    let pair = Pair {
        a: open(),
        b: open(),
    };
    // Fail loudly when Redis is missing: these tests must not pass without it.
    pair.a
        .gateways()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required for the contract tests: {e}"));
    // Let both subscribers attach before a test publishes.
    tokio::time::sleep(Duration::from_millis(150)).await;
    pair
}

/// Runs one contract case against both implementations.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod in_process_store {
            $(#[tokio::test] async fn $name() { super::$name(super::in_process()).await; })*
        }
        mod redis_store {
            $(#[tokio::test] async fn $name() { super::$name(super::redis().await).await; })*
        }
    };
}

contract!(
    device_and_user_limits_hold,
    readmitting_a_session_renews_it,
    concurrent_admissions_never_exceed_a_limit,
    leases_expire_and_renew_recounts,
    live_session_ids_are_the_unexpired_slots,
    release_frees_a_slot,
    resume_records_are_single_use_and_expire,
    revocation_is_remembered_and_announced,
    sticky_nodes_expire,
    node_loads_sum_shares_and_expire,
    usage_counters_add_with_a_floor,
    the_registry_lists_live_gateways,
    events_reach_every_subscriber,
);

fn owner(device: &str, user: &str) -> SessionOwner {
    SessionOwner {
        device_id: device.into(),
        user_id: Some(user.into()),
    }
}

fn admission<'a>(
    owner: &'a SessionOwner,
    session: &'a str,
    device_limit: u32,
    user_limit: u32,
) -> Admission<'a> {
    Admission {
        owner,
        session_id: session,
        device_limit: Some(device_limit),
        user_limit: Some(user_limit),
        lease: LEASE,
    }
}

async fn device_and_user_limits_hold(s: Pair) {
    let d1 = owner("dev-1", "user-1");
    let d2 = owner("dev-2", "user-1");
    assert_eq!(
        s.a.admit(admission(&d1, "s1", 2, 3)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    assert_eq!(
        s.b.admit(admission(&d1, "s2", 2, 3)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    assert_eq!(
        s.a.admit(admission(&d1, "s3", 2, 3)).await.unwrap(),
        AdmitOutcome::Refused {
            scope: LimitScope::Device,
            active: 2
        }
    );
    assert_eq!(
        s.b.admit(admission(&d2, "s4", 2, 3)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    assert_eq!(
        s.a.admit(admission(&d2, "s5", 2, 3)).await.unwrap(),
        AdmitOutcome::Refused {
            scope: LimitScope::User,
            active: 3
        }
    );
    assert_eq!(s.a.live_sessions(&d1).await.unwrap(), (2, 3));
    assert_eq!(s.b.live_sessions(&d2).await.unwrap(), (1, 3));
    // Another user is not affected; no limit means none.
    let other = owner("dev-9", "user-9");
    for i in 0..5 {
        let id = format!("o{i}");
        let a = Admission {
            owner: &other,
            session_id: &id,
            device_limit: None,
            user_limit: None,
            lease: LEASE,
        };
        assert_eq!(s.a.admit(a).await.unwrap(), AdmitOutcome::Admitted);
    }
}

async fn readmitting_a_session_renews_it(s: Pair) {
    let d = owner("dev-1", "user-1");
    assert_eq!(
        s.a.admit(admission(&d, "s1", 1, 1)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    // A resume on the other gateway presents the same id: renewed, not counted twice.
    assert_eq!(
        s.b.admit(admission(&d, "s1", 1, 1)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    assert_eq!(s.a.live_sessions(&d).await.unwrap(), (1, 1));
}

async fn concurrent_admissions_never_exceed_a_limit(s: Pair) {
    let d = Arc::new(owner("dev-1", "user-1"));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { s.a.clone() } else { s.b.clone() };
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("s{i}");
            store.admit(admission(&d, &id, 10, 5)).await.unwrap()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() == AdmitOutcome::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(s.a.live_sessions(&d).await.unwrap(), (5, 5));
}

async fn leases_expire_and_renew_recounts(s: Pair) {
    let d = owner("dev-1", "user-1");
    let short = Admission {
        lease: Duration::from_millis(300),
        ..admission(&d, "s1", 1, 1)
    };
    assert_eq!(s.a.admit(short).await.unwrap(), AdmitOutcome::Admitted);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The gateway holding s1 stopped renewing (it died): its slot is free.
    assert_eq!(s.b.live_sessions(&d).await.unwrap(), (0, 0));
    assert_eq!(
        s.b.admit(admission(&d, "s2", 1, 1)).await.unwrap(),
        AdmitOutcome::Admitted
    );
    // A gateway that lost contact re-counts its live sessions whatever the limits.
    let lease = SessionLease {
        owner: d.clone(),
        session_id: "s1".into(),
    };
    s.a.renew(std::slice::from_ref(&lease), LEASE)
        .await
        .unwrap();
    assert_eq!(s.a.live_sessions(&d).await.unwrap(), (2, 2));
}

async fn live_session_ids_are_the_unexpired_slots(s: Pair) {
    let d1 = owner("dev-1", "user-1");
    let d2 = owner("dev-2", "user-1");
    let short = Duration::from_millis(300);
    for (who, id, lease) in [(&d1, "s1", LEASE), (&d2, "s2", LEASE), (&d1, "s3", short)] {
        let a = Admission {
            lease,
            ..admission(who, id, 5, 5)
        };
        assert_eq!(s.a.admit(a).await.unwrap(), AdmitOutcome::Admitted);
    }
    assert_eq!(s.b.live_session_ids(&d2).await.unwrap(), ["s1", "s2", "s3"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.b.live_session_ids(&d1).await.unwrap(), ["s1", "s2"]);
    assert!(s
        .a
        .live_session_ids(&owner("dev-9", "user-9"))
        .await
        .unwrap()
        .is_empty());
}

async fn release_frees_a_slot(s: Pair) {
    let d = owner("dev-1", "user-1");
    s.a.admit(admission(&d, "s1", 1, 1)).await.unwrap();
    assert!(matches!(
        s.b.admit(admission(&d, "s2", 1, 1)).await.unwrap(),
        AdmitOutcome::Refused { .. }
    ));
    s.a.release(&SessionLease {
        owner: d.clone(),
        session_id: "s1".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        s.b.admit(admission(&d, "s2", 1, 1)).await.unwrap(),
        AdmitOutcome::Admitted
    );
}

fn record(session: &str) -> ResumeRecord {
    ResumeRecord {
        session_id: session.into(),
        device_id: "dev-1".into(),
        token_sha256: "ab".repeat(32),
        user_id: Some("user-1".into()),
        user_limit: Some(2),
        quota_bytes: Some(1 << 30),
        quota_used_bytes: 42,
        quota_period_end_ms: Some(1_900_000_000_000),
        expires_at_ms: None,
        region: Some("eu".into()),
        issued_by: "gw-a".into(),
    }
}

async fn resume_records_are_single_use_and_expire(s: Pair) {
    s.a.put_resume("t1", &record("s1"), LEASE).await.unwrap();
    assert_eq!(s.b.take_resume("t1").await.unwrap(), Some(record("s1")));
    assert_eq!(s.a.take_resume("t1").await.unwrap(), None);
    s.a.put_resume("t2", &record("s2"), Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.b.take_resume("t2").await.unwrap(), None);
    s.a.put_resume("t3", &record("s3"), LEASE).await.unwrap();
    s.a.drop_resume("t3").await.unwrap();
    assert_eq!(s.b.take_resume("t3").await.unwrap(), None);
}

async fn revocation_is_remembered_and_announced(s: Pair) {
    let mut events = s.b.subscribe();
    assert!(!s.b.is_revoked("dev-1", Some("user-1")).await.unwrap());
    let target = RevocationTarget::User("user-1".into());
    s.a.revoke(&target, "disabled", Duration::from_millis(600))
        .await
        .unwrap();
    assert!(s.b.is_revoked("dev-1", Some("user-1")).await.unwrap());
    assert!(!s.b.is_revoked("dev-1", Some("user-2")).await.unwrap());
    assert!(!s.b.is_revoked("dev-1", None).await.unwrap());
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("the revocation is announced")
        .unwrap();
    assert_eq!(
        event,
        SharedEvent::Revoked {
            target,
            reason: "disabled".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!s.b.is_revoked("dev-1", Some("user-1")).await.unwrap());
    s.a.revoke(&RevocationTarget::Device("dev-3".into()), "revoked", LEASE)
        .await
        .unwrap();
    assert!(s.b.is_revoked("dev-3", None).await.unwrap());
}

async fn sticky_nodes_expire(s: Pair) {
    assert_eq!(s.a.sticky_node("dev-1").await.unwrap(), None);
    s.a.set_sticky_node("dev-1", "node-a", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        s.b.sticky_node("dev-1").await.unwrap().as_deref(),
        Some("node-a")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.b.sticky_node("dev-1").await.unwrap(), None);
}

fn loads(pairs: &[(&str, u64)]) -> NodeLoads {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn gateway(id: &str) -> GatewayInfo {
    GatewayInfo {
        id: id.into(),
        version: "0.1.0".into(),
        listen: "127.0.0.1:443".into(),
        started_at_ms: 1,
        heartbeat_at_ms: 2,
        sessions: 3,
        streams: 4,
        draining: false,
    }
}

async fn node_loads_sum_shares_and_expire(s: Pair) {
    // Loads count for gateways in the registry.
    s.a.register_gateway(&gateway("gw-a"), LEASE).await.unwrap();
    s.b.register_gateway(&gateway("gw-b"), LEASE).await.unwrap();
    s.a.publish_load("gw-a", &loads(&[("n1", 5), ("n2", 1)]), LEASE)
        .await
        .unwrap();
    s.b.publish_load(
        "gw-b",
        &loads(&[("n1", 2), ("n3", 4)]),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert_eq!(
        s.a.node_loads().await.unwrap(),
        loads(&[("n1", 7), ("n2", 1), ("n3", 4)])
    );
    // A share replaces the previous one.
    s.a.publish_load("gw-a", &loads(&[("n2", 3)]), LEASE)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // gw-b stopped publishing: its share expired.
    assert_eq!(s.b.node_loads().await.unwrap(), loads(&[("n2", 3)]));
}

async fn usage_counters_add_with_a_floor(s: Pair) {
    let c = UsageCounter {
        subject: "user-1".into(),
        period_end_ms: Some(1_900_000_000_000),
    };
    // The control plane counted 1000 already: the counter starts there.
    assert_eq!(s.a.add_usage(&c, 1000, 10, LEASE).await.unwrap(), 1010);
    assert_eq!(s.b.add_usage(&c, 1000, 5, LEASE).await.unwrap(), 1015);
    // Once it exists it has every fold: a floor (an older count) neither lifts nor lowers it.
    assert_eq!(s.a.add_usage(&c, 2000, 0, LEASE).await.unwrap(), 1015);
    assert_eq!(s.b.add_usage(&c, 10, 1, LEASE).await.unwrap(), 1016);
    // An operator reset sets it; a floor from before the reset does not bring the old count back.
    s.b.set_usage(&c, 0, LEASE).await.unwrap();
    assert_eq!(s.a.add_usage(&c, 1016, 4, LEASE).await.unwrap(), 4);
    let next = UsageCounter {
        period_end_ms: Some(1_900_000_000_001),
        ..c.clone()
    };
    assert_eq!(s.a.add_usage(&next, 0, 7, LEASE).await.unwrap(), 7);
    let big = 5u64 << 40;
    assert_eq!(s.a.add_usage(&next, 0, big, LEASE).await.unwrap(), big + 7);
}

async fn the_registry_lists_live_gateways(s: Pair) {
    assert!(s.a.gateways().await.unwrap().is_empty());
    s.a.register_gateway(&gateway("gw-a"), LEASE).await.unwrap();
    s.b.register_gateway(&gateway("gw-b"), Duration::from_millis(300))
        .await
        .unwrap();
    let ids = |list: Vec<GatewayInfo>| list.into_iter().map(|g| g.id).collect::<Vec<_>>();
    assert_eq!(ids(s.b.gateways().await.unwrap()), ["gw-a", "gw-b"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids(s.a.gateways().await.unwrap()), ["gw-a"]);
    s.a.deregister_gateway("gw-a").await.unwrap();
    assert!(s.b.gateways().await.unwrap().is_empty());
}

async fn events_reach_every_subscriber(s: Pair) {
    let mut on_a = s.a.subscribe();
    let mut on_b = s.b.subscribe();
    let event = SharedEvent::SessionKilled {
        session_id: "s1".into(),
    };
    s.a.publish(&event).await.unwrap();
    for rx in [&mut on_a, &mut on_b] {
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("event delivered")
            .unwrap();
        assert_eq!(got, event);
    }
}
