//! The control plane's validation cache and batched last-seen, through the real HTTP server on
//! SQLite and on the real PostgreSQL, with the cache on (its default TTL): answers are served from
//! the cache, every change that alters an answer refuses (or allows) at the very next
//! validation, gateway-token changes take effect at once, and last-seen reaches the database in
//! the background and at shutdown, never on the validation path.

mod common;

use std::time::Duration;

use common::app::{call, validate, TestApp};
use common::subscribe::{subscribe, Subscribed, Terms};
use common::TestDb;
use httvps_control_plane::auth::token;
use httvps_control_plane::domain;
use httvps_control_plane::model::{now_ms, DeviceStatus, UserStatus};
use httvps_control_plane::store::{
    NewRegion, NewSubscription, PlanUpdate, Store, StoreOptions, UserUpdate,
};
use httvps_shared_state::{RevocationTarget, SharedEvent};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

on_both_backends!(
    answers_are_served_from_the_cache,
    device_changes_refuse_at_once,
    user_changes_refuse_at_once,
    subscription_changes_apply_at_once,
    plan_and_region_changes_apply_at_once,
    gateway_token_changes_apply_at_once,
    events_of_other_replicas_drop_answers,
);

async fn subscriber(app: &TestApp, quota: Option<i64>) -> Subscribed {
    let terms = Terms {
        quota,
        session_limit: 2,
        regions: &[],
    };
    subscribe(app.store(), terms, &["phone".into(), "laptop".into()]).await
}

/// `allow`, or the denial's code.
async fn verdict(app: &TestApp, device: Uuid, token: &str) -> String {
    verdict_in(app, device, token, None).await
}

async fn verdict_in(app: &TestApp, device: Uuid, token: &str, region: Option<&str>) -> String {
    let body = validate(app, &device.to_string(), token, region).await;
    match body["result"].as_str() {
        Some("allow") => "allow".into(),
        _ => body["code"].as_str().unwrap_or("?").to_owned(),
    }
}

/// Edits the database behind the store's back (the change count does not move).
async fn behind_the_back(app: &TestApp, sql: &str) {
    app.store().execute_raw(sql).await.unwrap();
}

async fn answers_are_served_from_the_cache(app: &TestApp) {
    let s = subscriber(app, None).await;
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(app, *device, secret).await, "allow");
    let cache = &app.state().validation;
    assert!(
        cache.verdict(*device, now_ms()).is_some(),
        "the answer is cached"
    );
    // A change nobody announced is not seen while the answer is cached: proof it is served
    // from the cache, not from the database.
    behind_the_back(
        app,
        &format!("UPDATE devices SET status = 'disabled' WHERE id = '{device}'"),
    )
    .await;
    assert_eq!(verdict(app, *device, secret).await, "allow");
    // The cached answer is still checked against the token.
    assert_eq!(verdict(app, *device, "wrong").await, "auth_failed");
    cache.invalidate();
    assert_eq!(verdict(app, *device, secret).await, "revoked");
}

async fn device_changes_refuse_at_once(app: &TestApp) {
    let s = subscriber(app, None).await;
    let state = app.state();
    let (phone, phone_secret) = &s.devices[0];
    let (laptop, laptop_secret) = &s.devices[1];
    assert_eq!(verdict(app, *phone, phone_secret).await, "allow");
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "allow");
    domain::devices::set_status(state, "t", *phone, DeviceStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(verdict(app, *phone, phone_secret).await, "revoked");
    domain::devices::set_status(state, "t", *phone, DeviceStatus::Active)
        .await
        .unwrap();
    assert_eq!(verdict(app, *phone, phone_secret).await, "allow");
    domain::devices::set_status(state, "t", *phone, DeviceStatus::Revoked)
        .await
        .unwrap();
    assert_eq!(verdict(app, *phone, phone_secret).await, "revoked");
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "allow");
    domain::devices::delete(state, "t", *laptop).await.unwrap();
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "auth_failed");
    // A new token (what a rotation stores): the old one fails at once, the new one works.
    let fresh = subscriber(app, None).await;
    let (device, old) = &fresh.devices[0];
    assert_eq!(verdict(app, *device, old).await, "allow");
    let new = token::generate();
    behind_the_back(
        app,
        &format!(
            "UPDATE devices SET token_hash = '{}' WHERE id = '{device}'",
            token::hash(&new)
        ),
    )
    .await;
    httvps_control_plane::validation_cache::forget_device(state, *device);
    assert_eq!(verdict(app, *device, old).await, "auth_failed");
    assert_eq!(verdict(app, *device, &new).await, "allow");
}

async fn user_changes_refuse_at_once(app: &TestApp) {
    let s = subscriber(app, None).await;
    let state = app.state();
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(app, *device, secret).await, "allow");
    let status = |status| UserUpdate {
        status: Some(status),
        ..Default::default()
    };
    domain::users::update(state, "t", s.user, &status(UserStatus::Disabled))
        .await
        .unwrap();
    assert_eq!(verdict(app, *device, secret).await, "revoked");
    domain::users::update(state, "t", s.user, &status(UserStatus::Active))
        .await
        .unwrap();
    assert_eq!(verdict(app, *device, secret).await, "allow");
    domain::users::delete(state, "t", s.user).await.unwrap();
    assert_eq!(verdict(app, *device, secret).await, "auth_failed");
}

async fn subscription_changes_apply_at_once(app: &TestApp) {
    let s = subscriber(app, Some(10_000)).await;
    let state = app.state();
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(app, *device, secret).await, "allow");
    // Cancelled: nothing in force; a new subscription: allowed again.
    domain::subscriptions::cancel(state, "t", s.subscription)
        .await
        .unwrap();
    assert_eq!(verdict(app, *device, secret).await, "expired");
    let renewed = app
        .store()
        .create_subscription(
            "t",
            s.user,
            &NewSubscription {
                plan_id: s.plan,
                on_hold: false,
                queued: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(verdict(app, *device, secret).await, "allow");
    // Usage reports: the remaining bytes and then the used-up quota show at once.
    let report = |id: &str, bytes: u64| {
        app.gateway(Method::POST, "/v1/gateway/usage").json(&json!({
            "report_id": id,
            "records": [{"device_id": device, "bytes_up": bytes, "bytes_down": 0, "at": now_ms()}],
        }))
    };
    assert_eq!(call(report("c-1", 9_000)).await.0, StatusCode::OK);
    let allow = validate(app, &device.to_string(), secret, None).await;
    assert_eq!(allow["entitlement"]["remaining_bytes"], 1_000, "{allow}");
    // The other device of the same user too.
    let (laptop, laptop_secret) = &s.devices[1];
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "allow");
    assert_eq!(call(report("c-2", 1_000)).await.0, StatusCode::OK);
    assert_eq!(verdict(app, *device, secret).await, "quota_exceeded");
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "quota_exceeded");
    domain::subscriptions::reset_usage(state, "t", renewed.id)
        .await
        .unwrap();
    assert_eq!(verdict(app, *device, secret).await, "allow");
    assert_eq!(verdict(app, *laptop, laptop_secret).await, "allow");
}

async fn plan_and_region_changes_apply_at_once(app: &TestApp) {
    let s = subscriber(app, None).await;
    let (device, secret) = &s.devices[0];
    let allow = validate(app, &device.to_string(), secret, None).await;
    assert_eq!(allow["entitlement"]["session_limit"], 2);
    app.store()
        .update_plan(
            "t",
            s.plan,
            &PlanUpdate {
                session_limit: Some(7),
                name: None,
                device_limit: None,
                quota_bytes: None,
                reset_strategy: None,
                duration_days: None,
                allowed_regions: None,
            },
        )
        .await
        .unwrap();
    let allow = validate(app, &device.to_string(), secret, None).await;
    assert_eq!(allow["entitlement"]["session_limit"], 7, "{allow}");
    // A region nobody defined is refused (and that is cached) until it is created.
    let code = format!("r-{}", &Uuid::new_v4().simple().to_string()[..8]);
    assert_eq!(
        verdict_in(app, *device, secret, Some(&code)).await,
        "region_not_allowed"
    );
    let region = app
        .store()
        .create_region(
            "t",
            &NewRegion {
                code: code.clone(),
                name: "R".into(),
                latitude: None,
                longitude: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(verdict_in(app, *device, secret, Some(&code)).await, "allow");
    app.store().delete_region("t", region.id).await.unwrap();
    assert_eq!(
        verdict_in(app, *device, secret, Some(&code)).await,
        "region_not_allowed"
    );
}

async fn gateway_token_changes_apply_at_once(app: &TestApp) {
    let validate_as = |gateway_token: &str| {
        app.http
            .post(app.url("/v1/gateway/devices/validate"))
            .bearer_auth(gateway_token)
            .json(&json!({"device_id": Uuid::new_v4(), "device_token": "x"}))
    };
    assert_eq!(
        call(validate_as(&app.gateway_token)).await.0,
        StatusCode::OK
    );
    let cached = app
        .state()
        .validation
        .gateway(&token::hash(&app.gateway_token), now_ms());
    assert!(cached.is_some(), "the verified token is cached");
    let gateway = domain::gateways::by_name(app.state(), "gw-test")
        .await
        .unwrap();
    // Rotated without overlap: the old token stops at once.
    let (_, second) = domain::gateways::rotate(app.state(), "t", gateway.id, 0, &[])
        .await
        .unwrap();
    assert_eq!(
        call(validate_as(&app.gateway_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(validate_as(&second)).await.0, StatusCode::OK);
    let tokens = app.store().list_gateway_tokens(gateway.id).await.unwrap();
    let live = tokens
        .iter()
        .find(|t| t.revoked_at.is_none() && t.expires_at.is_none());
    domain::gateways::revoke_token(app.state(), "t", gateway.id, live.unwrap().id)
        .await
        .unwrap();
    assert_eq!(call(validate_as(&second)).await.0, StatusCode::UNAUTHORIZED);
}

async fn events_of_other_replicas_drop_answers(app: &TestApp) {
    let s = subscriber(app, None).await;
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(app, *device, secret).await, "allow");
    // Another replica revoked the device: its row changed, and its event arrives here.
    behind_the_back(
        app,
        &format!("UPDATE devices SET status = 'revoked' WHERE id = '{device}'"),
    )
    .await;
    app.state()
        .shared
        .publish(&SharedEvent::Revoked {
            target: RevocationTarget::Device(device.to_string()),
            reason: "revoked".into(),
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let v = verdict(app, *device, secret).await;
        if v == "revoked" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event did not drop the answer: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// -- With settings of their own ------------------------------------------------------------

async fn app_on(
    postgres: bool,
    tune: impl FnOnce(&mut httvps_control_plane::config::ServeConfig),
) -> TestApp {
    let db = if postgres {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    };
    TestApp::with_db(db, tune).await
}

async fn last_seen(store: &Store, device: Uuid) -> Option<i64> {
    store.get_device(device).await.unwrap().last_seen_at
}

/// Last-seen is written by the flush task, not by the validation.
async fn last_seen_is_written_in_the_background(postgres: bool) {
    let app = app_on(postgres, |c| c.last_seen_flush_secs = 1).await;
    let s = subscriber(&app, None).await;
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(&app, *device, secret).await, "allow");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while last_seen(app.store(), *device).await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "last-seen was not written within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

/// A flush writes every device's time in one statement, and never moves a time back.
async fn touching_devices_writes_each_and_never_moves_back(postgres: bool) {
    let app = app_on(postgres, |c| c.last_seen_flush_secs = 3600).await;
    let s = subscriber(&app, None).await;
    let (phone, laptop) = (s.devices[0].0, s.devices[1].0);
    let store = app.store();
    store
        .touch_devices(&[(phone, 5_000), (laptop, 7_000)])
        .await
        .unwrap();
    assert_eq!(
        (
            last_seen(store, phone).await,
            last_seen(store, laptop).await
        ),
        (Some(5_000), Some(7_000))
    );
    store
        .touch_devices(&[(phone, 4_000), (laptop, 9_000), (Uuid::new_v4(), 1)])
        .await
        .unwrap();
    assert_eq!(
        (
            last_seen(store, phone).await,
            last_seen(store, laptop).await
        ),
        (Some(5_000), Some(9_000))
    );
    app.stop().await;
}

/// What is noted but not yet flushed is written at shutdown.
async fn last_seen_is_written_at_shutdown(postgres: bool) {
    let mut app = app_on(postgres, |c| c.last_seen_flush_secs = 3600).await;
    let s = subscriber(&app, None).await;
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(&app, *device, secret).await, "allow");
    assert_eq!(
        last_seen(app.store(), *device).await,
        None,
        "nothing is written on the validation path"
    );
    app.running.take().unwrap().stop().await;
    let db = app.db.take().unwrap();
    let store = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    assert!(last_seen(&store, *device).await.is_some());
    store.close().await;
    db.cleanup().await;
}

/// With a TTL of 0 nothing is kept: a change behind the store's back shows at once.
async fn a_zero_ttl_turns_the_cache_off(postgres: bool) {
    let app = app_on(postgres, |c| c.validation_cache_ttl_secs = 0).await;
    let s = subscriber(&app, None).await;
    let (device, secret) = &s.devices[0];
    assert_eq!(verdict(&app, *device, secret).await, "allow");
    assert!(app.state().validation.verdict(*device, now_ms()).is_none());
    behind_the_back(
        &app,
        &format!("UPDATE devices SET status = 'disabled' WHERE id = '{device}'"),
    )
    .await;
    assert_eq!(verdict(&app, *device, secret).await, "revoked");
    app.stop().await;
}

macro_rules! on_both {
    ($($name:ident),*) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(false).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(true).await;
            }
        })*
    };
}

on_both!(
    last_seen_is_written_in_the_background,
    last_seen_is_written_at_shutdown,
    touching_devices_writes_each_and_never_moves_back,
    a_zero_ttl_turns_the_cache_off
);

/// Two replicas on one database and one Redis: a device disabled through one drops the answer
/// the other cached, through the shared revocation event, well before the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_replica_drops_the_answer_on_another() {
    let redis = std::env::var("REDIS_URL_TEST").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("httvps-cp-test-{}", Uuid::new_v4().simple());
    let shared = |c: &mut httvps_control_plane::config::ServeConfig| {
        c.redis_url = Some(redis.clone());
        c.redis_prefix = prefix.clone();
    };
    let a = TestApp::with_db(TestDb::postgres().await, shared).await;
    let mut config =
        httvps_control_plane::config::ServeConfig::for_database(&a.db.as_ref().unwrap().url);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
    config.health_interval_secs = 0;
    config.gateway_cert_sha256 = Some("ab".repeat(32));
    shared(&mut config);
    let b = httvps_control_plane::app::start(config, false)
        .await
        .expect("the second replica starts");
    // B hears A's events once its Redis subscription is up.
    let mut heard = b.state.shared.subscribe();
    let probe = SharedEvent::SessionKilled {
        session_id: format!("probe-{}", Uuid::new_v4()),
    };
    let subscribed = async {
        loop {
            a.state().shared.publish(&probe).await.unwrap();
            if let Ok(Ok(event)) =
                tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
            {
                if event == probe {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .unwrap_or_else(|_| panic!("Redis at {redis} is required for this test"));
    let s = subscriber(&a, None).await;
    let (device, secret) = &s.devices[0];
    let on_b = || async {
        let (status, body) = call(
            a.http
                .post(format!("http://{}/v1/gateway/devices/validate", b.addr))
                .bearer_auth(&a.gateway_token)
                .json(&json!({"device_id": device, "device_token": secret})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["code"].as_str().unwrap_or("allow").to_owned()
    };
    assert_eq!(on_b().await, "allow");
    assert!(b.state.validation.verdict(*device, now_ms()).is_some());
    domain::devices::set_status(a.state(), "t", *device, DeviceStatus::Disabled)
        .await
        .unwrap();
    // Well within the TTL (5 s, at least 4 s after the answer was cached).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let v = on_b().await;
        if v == "revoked" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other replica still answers {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
    a.stop().await;
}
