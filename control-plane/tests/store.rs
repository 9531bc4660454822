//! The store's contract, run against both backends: every test below runs once on SQLite and once
//! on the real PostgreSQL.

mod common;

use std::sync::Arc;

use common::TestDb;
use httvps_control_plane::model::{
    now_ms, DeviceStatus, NodeHealth, ResetStrategy, SubscriptionStatus, UserStatus,
};
use httvps_control_plane::store::{
    AuditFilter, NewDevice, NewNode, NewPlan, NewRegion, NewSession, NewSubscription, ProbeRecord,
    SessionFilter, Store, StoreError, UsageGroupBy, UsageQuery, UsageRecordInput, UserUpdate,
};
use uuid::Uuid;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::TestDb::sqlite().await;
                super::$name(&db.store).await;
                db.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = super::TestDb::postgres().await;
                super::$name(&db.store).await;
                db.cleanup().await;
            }
        })*
    };
}

on_both_backends!(
    users_and_audit,
    plans_with_regions,
    subscription_lifecycle,
    device_limit_and_revocation,
    usage_is_idempotent_and_counts_toward_quota,
    usage_rollups_by_every_key,
    session_limit_holds_under_concurrency,
    concurrent_starts_of_one_session_make_one_row,
    gateway_tokens_rotate_and_revoke,
    node_health_history_and_load,
    concurrent_usage_writes_never_fail,
    sessions_of_a_lost_gateway_end,
);

async fn plan(store: &Store, name: &str, quota: Option<i64>, days: Option<i32>) -> Uuid {
    store
        .create_plan(
            "test",
            &NewPlan {
                name: name.into(),
                device_limit: 2,
                session_limit: 3,
                quota_bytes: quota,
                reset_strategy: ResetStrategy::CalendarMonth,
                duration_days: days,
                allowed_regions: vec![],
            },
        )
        .await
        .unwrap()
        .id
}

/// A subscription to `plan` that starts now.
fn active(plan: Uuid) -> NewSubscription {
    NewSubscription {
        plan_id: plan,
        on_hold: false,
        queued: false,
    }
}

/// A new session of `device` (of `user`) on `gateway`.
fn new_session(
    user: Uuid,
    device: Uuid,
    gateway: Uuid,
    node: Option<Uuid>,
    session_limit: Option<i32>,
) -> NewSession {
    NewSession {
        id: Uuid::new_v4(),
        device_id: device,
        user_id: user,
        gateway_id: gateway,
        node_id: node,
        client_region: None,
        session_limit,
    }
}

async fn users_and_audit(store: &Store) {
    let u = store
        .create_user("admin:alice", "bob", Some("bob@example.com"))
        .await
        .unwrap();
    assert_eq!(u.status, UserStatus::Active);
    assert!(matches!(
        store.create_user("admin:alice", "bob", None).await,
        Err(StoreError::Conflict(_))
    ));
    let u2 = store
        .update_user(
            "admin:alice",
            u.id,
            &UserUpdate {
                status: Some(UserStatus::Disabled),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u2.status, UserStatus::Disabled);
    assert_eq!(u2.email.as_deref(), Some("bob@example.com"));
    let log = store
        .list_audit(&AuditFilter {
            target_id: Some(u.id.to_string()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["user.disable", "user.create"]);
    assert_eq!(log[0].actor, "admin:alice");
    store.delete_user("admin:alice", u.id).await.unwrap();
    assert!(matches!(
        store.get_user(u.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn plans_with_regions(store: &Store) {
    let eu = store
        .create_region(
            "t",
            &NewRegion {
                code: "eu-west".into(),
                name: "EU West".into(),
                latitude: Some(50.1),
                longitude: Some(8.7),
            },
        )
        .await
        .unwrap();
    let us = store
        .create_region(
            "t",
            &NewRegion {
                code: "us-east".into(),
                name: "US East".into(),
                latitude: None,
                longitude: None,
            },
        )
        .await
        .unwrap();
    let p = store
        .create_plan(
            "t",
            &NewPlan {
                name: "pro".into(),
                device_limit: 5,
                session_limit: 2,
                quota_bytes: Some(1 << 30),
                reset_strategy: ResetStrategy::Weekly,
                duration_days: Some(30),
                allowed_regions: vec![us.id, eu.id],
            },
        )
        .await
        .unwrap();
    assert_eq!(p.allowed_regions, vec!["eu-west", "us-east"]);
    let bad = store
        .create_plan(
            "t",
            &NewPlan {
                name: "bad".into(),
                device_limit: 1,
                session_limit: 1,
                quota_bytes: None,
                reset_strategy: ResetStrategy::None,
                duration_days: None,
                allowed_regions: vec![Uuid::new_v4()],
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    assert!(
        store.plan_by_name("bad").await.is_err(),
        "a refused plan leaves nothing behind"
    );
    let plans = store.list_plans().await.unwrap();
    assert_eq!(plans.len(), 1);
}

async fn subscription_lifecycle(store: &Store) {
    let short = plan(store, "short", None, Some(1)).await;
    let long = plan(store, "long", None, Some(30)).await;
    let u = store.create_user("t", "carol", None).await.unwrap();
    let held = store
        .create_subscription(
            "t",
            u.id,
            &NewSubscription {
                plan_id: short,
                on_hold: true,
                queued: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (held.status, held.starts_at),
        (SubscriptionStatus::OnHold, None)
    );
    assert!(matches!(
        store.create_subscription("t", u.id, &active(long)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_subscription(
            "t",
            u.id,
            &NewSubscription {
                plan_id: long,
                on_hold: false,
                queued: true,
            },
        )
        .await
        .unwrap();

    // Looking without using does not start the clock; the first use does.
    let t0 = now_ms();
    let (s, _) = store
        .resolve_subscription(u.id, t0, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::OnHold);
    let (s, p) = store
        .resolve_subscription(u.id, t0, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.status, s.starts_at, s.ends_at),
        (SubscriptionStatus::Active, Some(t0), Some(t0 + 86_400_000))
    );
    assert_eq!(p.name, "short");

    // Two days later the first has ended and the queued one took over from then.
    let t2 = t0 + 2 * 86_400_000;
    let (s, p) = store
        .resolve_subscription(u.id, t2, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.name.as_str(), s.starts_at), ("long", Some(t2)));
    assert_eq!(
        store.get_subscription(held.id).await.unwrap().status,
        SubscriptionStatus::Ended
    );

    store.cancel_subscription("t", s.id).await.unwrap();
    assert!(store
        .resolve_subscription(u.id, t2, true)
        .await
        .unwrap()
        .is_none());
}

async fn device_limit_and_revocation(store: &Store) {
    let p = plan(store, "two-devices", None, None).await;
    let u = store.create_user("t", "dave", None).await.unwrap();
    store
        .create_subscription("t", u.id, &active(p))
        .await
        .unwrap();
    let new = |name: &str| NewDevice {
        user_id: u.id,
        name: name.into(),
        token_hash: format!("hash-{name}"),
    };
    let d1 = store.create_device("t", &new("phone")).await.unwrap();
    store.create_device("t", &new("laptop")).await.unwrap();
    let third = store.create_device("t", &new("tablet")).await;
    assert!(
        matches!(third, Err(StoreError::Conflict(ref m)) if m.contains("device limit")),
        "{third:?}"
    );
    // A revoked device frees its slot and can never come back.
    store
        .update_device("t", d1.id, Some(DeviceStatus::Revoked), None)
        .await
        .unwrap();
    store.create_device("t", &new("tablet")).await.unwrap();
    assert!(matches!(
        store
            .update_device("t", d1.id, Some(DeviceStatus::Active), None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (device, hash) = store.device_credentials(d1.id).await.unwrap().unwrap();
    assert_eq!(
        (device.status, hash.as_str()),
        (DeviceStatus::Revoked, "hash-phone")
    );
    // What validation reads in one statement: the device, its hash, the user's status, the
    // active subscription and whether a queued one follows.
    let facts = store.validation_facts(d1.id).await.unwrap().unwrap();
    let (active, forgiven) = facts.active.clone().expect("an active subscription");
    assert_eq!(
        (
            facts.device.status,
            facts.token_hash.as_str(),
            facts.user_status,
            active.user_id,
            active.plan_id,
            forgiven,
            facts.queued
        ),
        (
            DeviceStatus::Revoked,
            "hash-phone",
            UserStatus::Active,
            u.id,
            p,
            0,
            false
        )
    );
    store
        .create_subscription(
            "t",
            u.id,
            &NewSubscription {
                plan_id: p,
                on_hold: false,
                queued: true,
            },
        )
        .await
        .unwrap();
    assert!(store.validation_facts(d1.id).await.unwrap().unwrap().queued);
    assert!(store
        .validation_facts(Uuid::new_v4())
        .await
        .unwrap()
        .is_none());
}

async fn usage_fixture(store: &Store, quota: Option<i64>) -> (Uuid, Uuid, Uuid) {
    let p = plan(store, &format!("q-{}", Uuid::new_v4()), quota, None).await;
    let u = store
        .create_user("t", &format!("u-{}", Uuid::new_v4()), None)
        .await
        .unwrap();
    store
        .create_subscription("t", u.id, &active(p))
        .await
        .unwrap();
    let d = store
        .create_device(
            "t",
            &NewDevice {
                user_id: u.id,
                name: "d".into(),
                token_hash: "h".into(),
            },
        )
        .await
        .unwrap();
    let (g, _) = store
        .create_gateway(
            "t",
            &format!("gw-{}", Uuid::new_v4()),
            &format!("tok-{}", Uuid::new_v4()),
        )
        .await
        .unwrap();
    (u.id, d.id, g.id)
}

async fn usage_is_idempotent_and_counts_toward_quota(store: &Store) {
    let (user, device, gateway) = usage_fixture(store, Some(10_000)).await;
    let now = now_ms();
    let records = vec![UsageRecordInput {
        session_id: None,
        device_id: device,
        node_id: None,
        bytes_up: 1_000,
        bytes_down: 3_000,
        at: now,
    }];
    assert!(store
        .ingest_usage(gateway, "r-1", &records, now)
        .await
        .unwrap());
    assert!(
        !store
            .ingest_usage(gateway, "r-1", &records, now)
            .await
            .unwrap(),
        "replay is recognised"
    );
    let (sub, plan) = store
        .resolve_subscription(user, now, false)
        .await
        .unwrap()
        .unwrap();
    let q = store.quota_status(&sub, &plan, now).await.unwrap();
    assert_eq!(
        (q.used_bytes, q.remaining_bytes),
        (4_000, Some(6_000)),
        "the replay counted once"
    );
    // An unknown device refuses the whole report and writes nothing.
    let bad = vec![
        records[0].clone(),
        UsageRecordInput {
            device_id: Uuid::new_v4(),
            ..records[0].clone()
        },
    ];
    assert!(matches!(
        store.ingest_usage(gateway, "r-2", &bad, now).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        store
            .ingest_usage(gateway, "r-2", &records, now)
            .await
            .unwrap(),
        "r-2 was not consumed by the refusal"
    );
    let q = store.quota_status(&sub, &plan, now).await.unwrap();
    assert_eq!(q.used_bytes, 8_000);
    // An admin reset forgives what was used so far.
    let q = store.reset_usage("admin:alice", sub.id).await.unwrap();
    assert_eq!((q.used_bytes, q.remaining_bytes), (0, Some(10_000)));
    assert!(store
        .ingest_usage(gateway, "r-3", &records, now)
        .await
        .unwrap());
    let q = store.quota_status(&sub, &plan, now).await.unwrap();
    assert_eq!(q.used_bytes, 4_000);
}

async fn usage_rollups_by_every_key(store: &Store) {
    let (user, device, gateway) = usage_fixture(store, None).await;
    let group = store.create_node_group("t", "g1", "").await.unwrap();
    let node = store
        .create_node(
            "t",
            &NewNode {
                name: "n1".into(),
                host: "198.51.100.7".into(),
                port: 8388,
                cipher: "chacha20-ietf-poly1305".into(),
                secret: "s".into(),
                region_id: None,
                groups: vec![group.id],
                weight: 100,
                capacity: 10,
            },
        )
        .await
        .unwrap();
    let hour = 3_600_000;
    let t = (now_ms() / hour) * hour;
    let rec = |at, up| UsageRecordInput {
        session_id: None,
        device_id: device,
        node_id: Some(node.id),
        bytes_up: up,
        bytes_down: 1,
        at,
    };
    store
        .ingest_usage(gateway, "a", &[rec(t + 10, 100), rec(t + 20, 200)], t)
        .await
        .unwrap();
    store
        .ingest_usage(gateway, "b", &[rec(t + hour + 5, 400)], t)
        .await
        .unwrap();
    assert_eq!(
        store.roll_up_usage(2).await.unwrap(),
        2,
        "batches are bounded"
    );
    assert_eq!(store.roll_up_usage(100).await.unwrap(), 1);
    assert_eq!(
        store.roll_up_usage(100).await.unwrap(),
        0,
        "nothing is rolled up twice"
    );
    let query = |group_by, daily| UsageQuery {
        group_by,
        daily,
        from: t - 86_400_000,
        to: t + 86_400_000,
        key: None,
    };
    let hourly = store
        .usage_report(&query(UsageGroupBy::Device, false))
        .await
        .unwrap();
    assert_eq!(
        hourly
            .iter()
            .map(|r| (r.bucket_start - t, r.bytes_up))
            .collect::<Vec<_>>(),
        vec![(0, 300), (hour, 400)]
    );
    for by in [UsageGroupBy::User, UsageGroupBy::Node, UsageGroupBy::Group] {
        let daily = store.usage_report(&query(by, true)).await.unwrap();
        let total: i64 = daily.iter().map(|r| r.bytes_up).sum();
        assert_eq!(total, 700, "{by:?}");
    }
    let by_user = store
        .usage_report(&query(UsageGroupBy::User, true))
        .await
        .unwrap();
    assert!(by_user.iter().all(|r| r.key == user.to_string()));
    let by_group = store
        .usage_report(&query(UsageGroupBy::Group, true))
        .await
        .unwrap();
    assert!(by_group.iter().all(|r| r.key == group.id.to_string()));
}

async fn session_limit_holds_under_concurrency(store: &Store) {
    let (user, device, gateway) = usage_fixture(store, None).await;
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .start_session(&new_session(user, device, gateway, None, Some(3)))
                .await
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(m)) => assert!(m.contains("too many sessions")),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 3);
    let live = store
        .list_sessions(&SessionFilter {
            live_only: true,
            user_id: Some(user),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(live.len(), 3);
    // Ending one frees a slot; a gateway retry of the same start is idempotent.
    let ended = store
        .end_session(live[0].id, gateway, "client_closed", now_ms())
        .await
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("client_closed"));
    let again = new_session(user, device, gateway, None, Some(3));
    let s = store.start_session(&again).await.unwrap();
    assert_eq!(store.start_session(&again).await.unwrap().id, s.id);
    // Killing is seen at the next heartbeat; stale sessions are reaped.
    store.kill_session("admin:alice", s.id).await.unwrap();
    assert!(
        store
            .heartbeat_session(s.id, gateway, now_ms())
            .await
            .unwrap()
            .kill_requested
    );
    assert_eq!(
        store
            .reap_stale_sessions(now_ms() + 1, now_ms())
            .await
            .unwrap(),
        3
    );
}

/// Sessions of a gateway whose registry heartbeat stopped end (`gateway_lost`); those of a
/// gateway heartbeating, or of one that never sent a heartbeat, do not.
async fn sessions_of_a_lost_gateway_end(store: &Store) {
    let now = now_ms();
    let mut sessions = Vec::new();
    for last_heartbeat in [Some(now - 60_000), Some(now), None] {
        let (user, device, gateway) = usage_fixture(store, None).await;
        if let Some(at) = last_heartbeat {
            store.gateway_heartbeat(gateway, None, at).await.unwrap();
        }
        let session = store
            .start_session(&new_session(user, device, gateway, None, Some(1)))
            .await
            .unwrap();
        sessions.push(session.id);
    }
    assert_eq!(
        store
            .reap_sessions_of_lost_gateways(now - 30_000, now)
            .await
            .unwrap(),
        1
    );
    let mut reasons = Vec::new();
    for id in sessions {
        reasons.push(store.get_session(id).await.unwrap().end_reason);
    }
    assert_eq!(reasons, [Some("gateway_lost".to_owned()), None, None]);
}

/// Several gateways starting (resuming) the same session id at once: every start succeeds, one
/// row exists, and it belongs to one of them.
async fn concurrent_starts_of_one_session_make_one_row(store: &Store) {
    let (user, device, first) = usage_fixture(store, None).await;
    let (.., second) = usage_fixture(store, None).await;
    let id = Uuid::new_v4();
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .start_session(&NewSession {
                    id,
                    device_id: device,
                    user_id: user,
                    gateway_id: if i % 2 == 0 { first } else { second },
                    node_id: None,
                    client_region: None,
                    session_limit: Some(1),
                })
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().id, id);
    }
    let rows = store
        .list_sessions(&SessionFilter {
            user_id: Some(user),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].gateway_id == first || rows[0].gateway_id == second);
    assert_eq!(rows[0].ended_at, None);
}

async fn gateway_tokens_rotate_and_revoke(store: &Store) {
    let (gw, first) = store
        .create_gateway("admin:alice", "gw-a", "hash-1")
        .await
        .unwrap();
    let now = now_ms();
    assert_eq!(
        store
            .authenticate_gateway("hash-1", now)
            .await
            .unwrap()
            .unwrap()
            .gateway
            .id,
        gw.id
    );
    assert!(store
        .authenticate_gateway("nope", now)
        .await
        .unwrap()
        .is_none());
    let second = store
        .rotate_gateway_token("admin:alice", gw.id, "hash-2", 60_000)
        .await
        .unwrap();
    // During the overlap both work; after it only the new one.
    assert!(store
        .authenticate_gateway("hash-1", now + 1_000)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .authenticate_gateway("hash-1", now + 120_000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate_gateway("hash-2", now + 120_000)
        .await
        .unwrap()
        .is_some());
    store
        .revoke_gateway_token("admin:alice", gw.id, second.id)
        .await
        .unwrap();
    assert!(store
        .authenticate_gateway("hash-2", now)
        .await
        .unwrap()
        .is_none());
    store
        .revoke_gateway_token("admin:alice", gw.id, first.id)
        .await
        .expect("the first token can still be revoked explicitly");
    assert!(matches!(
        store
            .revoke_gateway_token("admin:alice", gw.id, first.id)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn node_health_history_and_load(store: &Store) {
    let (user, device, gateway) = usage_fixture(store, None).await;
    let node = store
        .create_node(
            "t",
            &NewNode {
                name: "n".into(),
                host: "203.0.113.9".into(),
                port: 443,
                cipher: "aes-256-gcm".into(),
                secret: "x".into(),
                region_id: None,
                groups: vec![],
                weight: 1,
                capacity: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(node.health, NodeHealth::Unknown);
    let probe = |health, transition, latency| ProbeRecord {
        node_id: node.id,
        at: now_ms(),
        health,
        consecutive_failures: 0,
        consecutive_successes: 1,
        latency_ms: latency,
        error: None,
        transition,
    };
    store
        .record_probe(&probe(
            NodeHealth::Healthy,
            Some(NodeHealth::Healthy),
            Some(12),
        ))
        .await
        .unwrap();
    store
        .record_probe(&probe(NodeHealth::Healthy, None, Some(11)))
        .await
        .unwrap();
    store
        .record_probe(&probe(
            NodeHealth::Unhealthy,
            Some(NodeHealth::Unhealthy),
            None,
        ))
        .await
        .unwrap();
    let history = store.health_history(node.id, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.health).collect::<Vec<_>>(),
        vec![NodeHealth::Unhealthy, NodeHealth::Healthy]
    );
    assert_eq!(
        store.get_node(node.id).await.unwrap().health,
        NodeHealth::Unhealthy
    );
    store
        .start_session(&new_session(user, device, gateway, Some(node.id), None))
        .await
        .unwrap();
    assert_eq!(store.node_loads().await.unwrap().get(&node.id), Some(&1));
    let bad_group = store
        .create_node(
            "t",
            &NewNode {
                name: "m".into(),
                host: "h".into(),
                port: 1,
                cipher: "aes-256-gcm".into(),
                secret: "x".into(),
                region_id: None,
                groups: vec![Uuid::new_v4()],
                weight: 1,
                capacity: 1,
            },
        )
        .await;
    assert!(
        matches!(bad_group, Err(StoreError::Invalid(_))),
        "{bad_group:?}"
    );
}

async fn concurrent_usage_writes_never_fail(store: &Store) {
    let (_, device, gateway) = usage_fixture(store, None).await;
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.spawn(async move {
            let rec = UsageRecordInput {
                session_id: None,
                device_id: device,
                node_id: None,
                bytes_up: 1,
                bytes_down: 1,
                at: now_ms(),
            };
            store
                .ingest_usage(gateway, &format!("report-{i}"), &[rec], now_ms())
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(
            r.unwrap().unwrap(),
            "every distinct report is accepted, none fails with a lock error"
        );
    }
}
