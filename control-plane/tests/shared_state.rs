//! The control plane and the state it shares with the gateways, against the real Redis
//! (`REDIS_URL_TEST`, default `redis://127.0.0.1:6379`; an unreachable Redis fails the run) on
//! SQLite and on the real PostgreSQL. Each test has its own key prefix; a `RedisStore` on that
//! prefix stands in for a gateway: it hears the events and registers and reports load.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::app::{call, TestApp};
use common::subscribe::{subscribe, Terms};
use common::TestDb;
use httvps_control_plane::config::AssignStrategy;
use httvps_control_plane::store::NewSubscription;
use httvps_shared_state::{
    GatewayInfo, NodeLoads, RedisStore, RevocationTarget, SessionStore, SharedEvent,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use uuid::Uuid;

/// A Redis nothing listens on: every operation fails at once.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

fn redis_url() -> String {
    std::env::var("REDIS_URL_TEST").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A control plane on Redis and a gateway's view of the same shared state.
struct Rig {
    app: TestApp,
    gateway: Arc<dyn SessionStore>,
    /// The key prefix of this test's shared state.
    prefix: String,
}

impl Rig {
    async fn new(db: TestDb) -> Rig {
        let url = redis_url();
        let prefix = format!("httvps-cp-test-{}", Uuid::new_v4().simple());
        let gateway: Arc<dyn SessionStore> = Arc::new(
            RedisStore::open(&url, &prefix, Duration::from_secs(2)).expect("valid Redis URL"),
        );
        // Fail loudly when Redis is missing: these tests must not pass without it.
        gateway
            .gateways()
            .await
            .unwrap_or_else(|e| panic!("Redis at {url} is required for these tests: {e}"));
        let app = TestApp::with_db(db, |c| {
            c.redis_url = Some(url.clone());
            c.redis_prefix = prefix.clone();
            c.assign_strategy = AssignStrategy::LeastConnections;
        })
        .await;
        Rig {
            app,
            gateway,
            prefix,
        }
    }

    /// Events from now on, once the subscription demonstrably reaches Redis.
    async fn listen(&self) -> broadcast::Receiver<SharedEvent> {
        let mut rx = self.gateway.subscribe();
        let probe = SharedEvent::SessionKilled {
            session_id: format!("probe-{}", Uuid::new_v4()),
        };
        for _ in 0..50 {
            self.gateway.publish(&probe).await.expect("publish a probe");
            let heard = tokio::time::timeout(Duration::from_millis(100), async {
                loop {
                    match rx.recv().await {
                        Ok(e) if e == probe => return true,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return false,
                    }
                }
            })
            .await;
            if heard == Ok(true) {
                return rx;
            }
        }
        panic!("the event subscription never reached Redis");
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

/// Waits at most a second for `expected`, skipping other events (late probes).
async fn expect_event(rx: &mut broadcast::Receiver<SharedEvent>, expected: SharedEvent) {
    let found = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match rx.recv().await {
                Ok(e) if e == expected => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no {expected:?} within 1 s");
}

fn revoked(target: RevocationTarget, reason: &str) -> SharedEvent {
    SharedEvent::Revoked {
        target,
        reason: reason.into(),
    }
}

fn device_target(id: Uuid) -> RevocationTarget {
    RevocationTarget::Device(id.to_string())
}

fn user_target(id: Uuid) -> RevocationTarget {
    RevocationTarget::User(id.to_string())
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let rig = super::Rig::new(super::TestDb::sqlite().await).await;
                super::$name(&rig).await;
                rig.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let rig = super::Rig::new(super::TestDb::postgres().await).await;
                super::$name(&rig).await;
                rig.stop().await;
            }
        })*
    };
}

on_both_backends!(
    device_revocations_reach_the_gateways,
    user_revocations_reach_the_gateways,
    ended_subscriptions_reach_the_gateways,
    kills_reach_the_gateways,
    live_gateways_come_from_the_registry,
    least_connections_follows_live_streams,
    the_shared_sticky_node_comes_first,
    operator_cli_changes_reach_the_gateways,
);

/// A user on a plan (with one active subscription) and `devices` devices.
struct Subscriber {
    user: Uuid,
    plan: Uuid,
    subscription: Uuid,
    devices: Vec<Uuid>,
}

async fn subscriber(app: &TestApp, devices: usize) -> Subscriber {
    let terms = Terms {
        quota: None,
        session_limit: 5,
        regions: &[],
    };
    let names: Vec<String> = (0..devices).map(|i| format!("device-{i}")).collect();
    let made = subscribe(app.store(), terms, &names).await;
    Subscriber {
        user: made.user,
        plan: made.plan,
        subscription: made.subscription,
        devices: made.devices.into_iter().map(|(id, _)| id).collect(),
    }
}

async fn admin_ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) {
    let mut req = app.admin(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let (status, answer) = call(req).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
}

async fn device_revocations_reach_the_gateways(rig: &Rig) {
    let app = &rig.app;
    let s = subscriber(app, 3).await;
    let mut rx = rig.listen().await;
    let (revoke, disable, delete) = (s.devices[0], s.devices[1], s.devices[2]);
    admin_ok(
        app,
        Method::POST,
        &format!("/v1/admin/devices/{revoke}/revoke"),
        None,
    )
    .await;
    expect_event(&mut rx, revoked(device_target(revoke), "revoked")).await;
    admin_ok(
        app,
        Method::POST,
        &format!("/v1/admin/devices/{disable}/disable"),
        None,
    )
    .await;
    expect_event(&mut rx, revoked(device_target(disable), "disabled")).await;
    admin_ok(
        app,
        Method::DELETE,
        &format!("/v1/admin/devices/{delete}"),
        None,
    )
    .await;
    expect_event(&mut rx, revoked(device_target(delete), "deleted")).await;
    for device in [revoke, disable, delete] {
        assert!(
            rig.gateway
                .is_revoked(&device.to_string(), None)
                .await
                .unwrap(),
            "a resume of {device} must be refused"
        );
    }
    // Another user's device carries no marker.
    let untouched = subscriber(app, 1).await.devices[0];
    assert!(!rig
        .gateway
        .is_revoked(&untouched.to_string(), Some(&s.user.to_string()))
        .await
        .unwrap());
}

async fn user_revocations_reach_the_gateways(rig: &Rig) {
    let app = &rig.app;
    let disabled = subscriber(app, 1).await;
    let deleted = subscriber(app, 1).await;
    let mut rx = rig.listen().await;
    admin_ok(
        app,
        Method::PATCH,
        &format!("/v1/admin/users/{}", disabled.user),
        Some(json!({"status": "disabled"})),
    )
    .await;
    expect_event(&mut rx, revoked(user_target(disabled.user), "disabled")).await;
    admin_ok(
        app,
        Method::DELETE,
        &format!("/v1/admin/users/{}", deleted.user),
        None,
    )
    .await;
    expect_event(&mut rx, revoked(user_target(deleted.user), "deleted")).await;
    for s in [&disabled, &deleted] {
        // The user's marker blocks the resume of any of the user's devices.
        assert!(rig
            .gateway
            .is_revoked(&s.devices[0].to_string(), Some(&s.user.to_string()))
            .await
            .unwrap());
    }
}

async fn ended_subscriptions_reach_the_gateways(rig: &Rig) {
    let app = &rig.app;
    let cancelled = subscriber(app, 1).await;
    let expiring = subscriber(app, 1).await;
    // A user with a queued successor keeps a subscription in force when the first one ends.
    let renewed = subscriber(app, 1).await;
    app.store()
        .create_subscription(
            "test",
            renewed.user,
            &NewSubscription {
                plan_id: renewed.plan,
                on_hold: false,
                queued: true,
            },
        )
        .await
        .unwrap();
    let mut rx = rig.listen().await;
    admin_ok(
        app,
        Method::POST,
        &format!("/v1/admin/subscriptions/{}/cancel", cancelled.subscription),
        None,
    )
    .await;
    expect_event(&mut rx, revoked(user_target(cancelled.user), "expired")).await;
    assert!(rig
        .gateway
        .is_revoked(
            &cancelled.devices[0].to_string(),
            Some(&cancelled.user.to_string())
        )
        .await
        .unwrap());
    // The periodic job ends subscriptions whose time is up.
    for s in [&expiring, &renewed] {
        app.store()
            .execute_raw(&format!(
                "UPDATE subscriptions SET ends_at = 1 WHERE id = '{}'",
                s.subscription
            ))
            .await
            .unwrap();
    }
    httvps_control_plane::jobs::maintenance_round(app.state())
        .await
        .unwrap();
    expect_event(&mut rx, revoked(user_target(expiring.user), "expired")).await;
    assert!(
        !rig.gateway
            .is_revoked(
                &renewed.devices[0].to_string(),
                Some(&renewed.user.to_string())
            )
            .await
            .unwrap(),
        "a user whose queued subscription took over keeps connecting"
    );
}

async fn kills_reach_the_gateways(rig: &Rig) {
    let app = &rig.app;
    let s = subscriber(app, 1).await;
    let session = Uuid::new_v4();
    let (status, body) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions")
            .json(&json!({"session_id": session, "device_id": s.devices[0]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut rx = rig.listen().await;
    admin_ok(
        app,
        Method::POST,
        &format!("/v1/admin/sessions/{session}/end"),
        None,
    )
    .await;
    expect_event(
        &mut rx,
        SharedEvent::SessionKilled {
            session_id: session.to_string(),
        },
    )
    .await;
}

fn info(id: &str, streams: u64) -> GatewayInfo {
    GatewayInfo {
        id: id.into(),
        version: "0.1.0".into(),
        listen: "0.0.0.0:8443".into(),
        started_at_ms: 1_700_000_000_000,
        heartbeat_at_ms: 1_700_000_001_000,
        sessions: 2,
        streams,
        draining: false,
    }
}

async fn live_gateways_come_from_the_registry(rig: &Rig) {
    let app = &rig.app;
    let (status, body) = call(app.admin(Method::GET, "/v1/admin/gateways/live")).await;
    assert_eq!((status, body.clone()), (StatusCode::OK, json!([])));
    for g in [info("gw-b", 7), info("gw-a", 3)] {
        rig.gateway
            .register_gateway(&g, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let (status, body) = call(app.admin(Method::GET, "/v1/admin/gateways/live")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected: Vec<Value> = [info("gw-a", 3), info("gw-b", 7)]
        .iter()
        .map(|g| serde_json::to_value(g).unwrap())
        .collect();
    assert_eq!(body, Value::Array(expected));
    rig.gateway.deregister_gateway("gw-b").await.unwrap();
    let (_, body) = call(app.admin(Method::GET, "/v1/admin/gateways/live")).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");
    // Admin routes need an admin.
    let (status, _) = call(app.http.get(app.url("/v1/admin/gateways/live"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn node(app: &TestApp, name: &str, capacity: i32) -> Uuid {
    common::nodes::add_node(app.store(), name, None, vec![], capacity).await
}

async fn assigned(app: &TestApp, device: Uuid) -> Uuid {
    let (status, body) = call(
        app.gateway(Method::POST, "/v1/gateway/nodes/assign")
            .json(&json!({"device_id": device})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Uuid::parse_str(body["node"]["id"].as_str().unwrap()).unwrap()
}

/// Two nodes where the database and the gateways disagree: `busy_in_db` carries more sessions,
/// `busy_live` more streams.
async fn disputed_nodes(app: &TestApp) -> (Uuid, Uuid) {
    let busy_in_db = node(app, "busy-in-db", 100).await;
    let busy_live = node(app, "busy-live", 100).await;
    let s = subscriber(app, 1).await;
    for _ in 0..2 {
        let (status, body) = call(app.gateway(Method::POST, "/v1/gateway/sessions").json(
            &json!({"session_id": Uuid::new_v4(), "device_id": s.devices[0], "node_id": busy_in_db}),
        ))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    (busy_in_db, busy_live)
}

async fn least_connections_follows_live_streams(rig: &Rig) {
    let app = &rig.app;
    let (busy_in_db, busy_live) = disputed_nodes(app).await;
    // Two gateways' shares add up: 30 streams on busy-live, 1 on busy-in-db.
    let share = |pairs: &[(Uuid, u64)]| -> NodeLoads {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    rig.gateway
        .register_gateway(&info("gw-1", 0), Duration::from_secs(60))
        .await
        .unwrap();
    rig.gateway
        .register_gateway(&info("gw-2", 0), Duration::from_secs(60))
        .await
        .unwrap();
    rig.gateway
        .publish_load(
            "gw-1",
            &share(&[(busy_live, 20), (busy_in_db, 1)]),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    rig.gateway
        .publish_load("gw-2", &share(&[(busy_live, 10)]), Duration::from_secs(60))
        .await
        .unwrap();
    let device = subscriber(app, 1).await.devices[0];
    assert_eq!(
        assigned(app, device).await,
        busy_in_db,
        "fewer live streams wins over fewer sessions"
    );
    // The loads turn around: a new device goes to the other node.
    rig.gateway
        .publish_load("gw-1", &share(&[(busy_in_db, 50)]), Duration::from_secs(60))
        .await
        .unwrap();
    let device = subscriber(app, 1).await.devices[0];
    assert_eq!(assigned(app, device).await, busy_live);
}

async fn the_shared_sticky_node_comes_first(rig: &Rig) {
    let app = &rig.app;
    let (busy_in_db, busy_live) = disputed_nodes(app).await;
    let device = subscriber(app, 1).await.devices[0];
    // No live load: sessions decide, and the choice is remembered in both places.
    assert_eq!(assigned(app, device).await, busy_live);
    assert_eq!(
        rig.gateway
            .sticky_node(&device.to_string())
            .await
            .unwrap()
            .as_deref(),
        Some(busy_live.to_string().as_str())
    );
    assert_eq!(
        app.store().get_device(device).await.unwrap().sticky_node_id,
        Some(busy_live)
    );
    // What the shared store says wins over the database column.
    rig.gateway
        .set_sticky_node(
            &device.to_string(),
            &busy_in_db.to_string(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(assigned(app, device).await, busy_in_db);
    assert_eq!(
        app.store().get_device(device).await.unwrap().sticky_node_id,
        Some(busy_in_db)
    );
}

/// Without a reachable Redis every change still succeeds (the database is the truth), the
/// failure is counted, live gateways answer 503 and assignment ranks by the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_never_fails_a_change() {
    let app = TestApp::with_db(TestDb::sqlite().await, |c| {
        c.redis_url = Some(DEAD_REDIS.into());
        c.redis_timeout = Duration::from_millis(300);
        c.assign_strategy = AssignStrategy::LeastConnections;
    })
    .await;
    let s = subscriber(&app, 2).await;
    admin_ok(
        &app,
        Method::POST,
        &format!("/v1/admin/devices/{}/revoke", s.devices[0]),
        None,
    )
    .await;
    admin_ok(
        &app,
        Method::PATCH,
        &format!("/v1/admin/users/{}", s.user),
        Some(json!({"status": "disabled"})),
    )
    .await;
    admin_ok(
        &app,
        Method::POST,
        &format!("/v1/admin/subscriptions/{}/cancel", s.subscription),
        None,
    )
    .await;
    let (status, problem) = call(app.admin(Method::GET, "/v1/admin/gateways/live")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{problem}"
    );
    let (busy_in_db, busy_live) = disputed_nodes(&app).await;
    let device = subscriber(&app, 1).await.devices[0];
    assert_eq!(assigned(&app, device).await, busy_live);
    assert_ne!(busy_in_db, busy_live);
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("httvps_cp_shared_state_errors_total{op=\"revoke\"}")),
        "{metrics}"
    );
    app.stop().await;
}

/// Without `REDIS_URL` there is no registry to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_gateways_need_redis() {
    let app = TestApp::sqlite().await;
    let (status, problem) = call(app.admin(Method::GET, "/v1/admin/gateways/live")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{problem}"
    );
    app.stop().await;
}

/// Runs the operator CLI (the real binary) on the rig's database and shared state.
async fn operator_cli(rig: &Rig, args: &[&str]) -> String {
    let db = rig.app.db.as_ref().expect("the rig's database").url.clone();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis_url())
        .env("HTTVPS_CP_REDIS_PREFIX", &rig.prefix)
        .output()
        .await
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Issue 15 item 9: `httvps-control-plane device revoke` only wrote the database, and the
/// gateways heard of it 15-27 s later from their session heartbeats. Every CLI change that ends
/// sessions now goes through the same domain function as the API and is announced at once.
async fn operator_cli_changes_reach_the_gateways(rig: &Rig) {
    let app = &rig.app;
    let s = subscriber(app, 4).await;
    let other = subscriber(app, 1).await;
    let session = Uuid::new_v4();
    let (status, body) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions")
            .json(&json!({
                "session_id": session, "device_id": s.devices[3]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut rx = rig.listen().await;
    let (revoke, disable, delete) = (s.devices[0], s.devices[1], s.devices[2]);
    operator_cli(rig, &["device", "revoke", &revoke.to_string()]).await;
    expect_event(&mut rx, revoked(device_target(revoke), "revoked")).await;
    assert!(rig
        .gateway
        .is_revoked(&revoke.to_string(), None)
        .await
        .unwrap());
    operator_cli(rig, &["device", "disable", &disable.to_string()]).await;
    expect_event(&mut rx, revoked(device_target(disable), "disabled")).await;
    operator_cli(rig, &["device", "delete", &delete.to_string()]).await;
    expect_event(&mut rx, revoked(device_target(delete), "deleted")).await;
    operator_cli(rig, &["session", "end", &session.to_string()]).await;
    expect_event(
        &mut rx,
        SharedEvent::SessionKilled {
            session_id: session.to_string(),
        },
    )
    .await;
    operator_cli(
        rig,
        &["subscription", "cancel", &s.subscription.to_string()],
    )
    .await;
    expect_event(&mut rx, revoked(user_target(s.user), "expired")).await;
    operator_cli(rig, &["user", "disable", &other.user.to_string()]).await;
    expect_event(&mut rx, revoked(user_target(other.user), "disabled")).await;
    operator_cli(rig, &["user", "delete", &other.user.to_string()]).await;
    expect_event(&mut rx, revoked(user_target(other.user), "deleted")).await;
    // The database has the changes too, audited as the CLI.
    let device = app.store().get_device(disable).await.unwrap();
    assert_eq!(device.status.to_string(), "disabled");
}
