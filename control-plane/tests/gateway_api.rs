//! The gateway-facing API through the real HTTP server, on SQLite and on the real PostgreSQL:
//! device validation and its refusal codes, node assignment, the session lifecycle (with resumes
//! across gateways), idempotent usage, the pool snapshot, failover and the periodic maintenance.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::app::{call, validate, TestApp};
use common::nodes::{add_node, mark};
use common::subscribe::{subscribe, Terms};
use httvps_control_plane::auth::token;
use httvps_control_plane::model::{now_ms, DeviceStatus, NodeHealth, UserStatus};
use httvps_control_plane::node_pool::{fail_over, StoreHealth};
use httvps_control_plane::pool::{HealthCheckConfig, HealthChecker, ProbeTarget, Prober};
use httvps_control_plane::store::{NewDevice, NewNode, NewRegion, UserUpdate};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

on_both_backends!(
    gateway_routes_need_a_valid_service_token,
    validation_allows_and_refuses_with_precise_codes,
    a_validation_batch_answers_each_device_as_its_own_validation_would,
    quota_is_enforced_after_usage_reports,
    usage_reports_are_idempotent_and_validated,
    assignment_is_sticky_and_respects_health_and_exclusions,
    session_lifecycle_limits_kill_and_revocation,
    a_session_batch_answers_each_item_as_its_own_call_would,
    a_resumed_session_reattaches_to_another_gateway,
    failover_moves_sessions_same_group_first,
    maintenance_rolls_up_and_reaps,
);

/// A user with a plan, a device and its token.
struct Subscriber {
    user: Uuid,
    device: Uuid,
    token: String,
}

async fn subscriber(
    app: &TestApp,
    quota: Option<i64>,
    session_limit: i32,
    regions: Vec<Uuid>,
) -> Subscriber {
    let terms = Terms {
        quota,
        session_limit,
        regions: &regions,
    };
    let made = subscribe(app.store(), terms, &["phone".into()]).await;
    let (device, token) = made.devices.into_iter().next().unwrap();
    Subscriber {
        user: made.user,
        device,
        token,
    }
}

async fn node(
    app: &TestApp,
    name: &str,
    region: Option<Uuid>,
    groups: Vec<Uuid>,
    capacity: i32,
) -> Uuid {
    add_node(app.store(), name, region, groups, capacity).await
}

async fn gateway_routes_need_a_valid_service_token(app: &TestApp) {
    let body = json!({"device_id": "x", "device_token": "y"});
    let (status, problem) = call(
        app.http
            .post(app.url("/v1/gateway/devices/validate"))
            .json(&body),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = call(
        app.http
            .get(app.url("/v1/gateway/pool"))
            .bearer_auth("not-a-token"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        app.http
            .post(app.url("/v1/gateway/devices/validate/batch"))
            .bearer_auth("not-a-token")
            .json(&json!({"devices": [body]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An admin JWT is not a gateway token.
    let (status, _) = call(
        app.http
            .get(app.url("/v1/gateway/pool"))
            .bearer_auth(&app.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(app.gateway(Method::GET, "/v1/gateway/pool")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn validation_allows_and_refuses_with_precise_codes(app: &TestApp) {
    let eu = app
        .store()
        .create_region(
            "t",
            &NewRegion {
                code: "eu-west".into(),
                name: "EU".into(),
                latitude: None,
                longitude: None,
            },
        )
        .await
        .unwrap();
    let s = subscriber(app, Some(1 << 30), 2, vec![eu.id]).await;
    let device = s.device.to_string();
    let ok = validate(app, &device, &s.token, Some("eu-west")).await;
    assert_eq!(ok["result"], "allow", "{ok}");
    assert_eq!(ok["entitlement"]["user_id"], s.user.to_string());
    assert_eq!(ok["entitlement"]["remaining_bytes"], 1 << 30);
    assert_eq!(ok["entitlement"]["session_limit"], 2);
    assert_eq!(ok["entitlement"]["allowed_regions"], json!(["eu-west"]));
    assert_eq!(ok["cache_ttl_secs"], 60);
    let code = |v: &Value| v["code"].as_str().map(str::to_owned);
    let deny = validate(app, &device, "wrong-token", None).await;
    assert_eq!(
        (
            deny["result"].as_str(),
            code(&deny).as_deref(),
            deny["cache_ttl_secs"].as_u64()
        ),
        (Some("deny"), Some("auth_failed"), Some(10))
    );
    assert_eq!(
        code(&validate(app, &Uuid::new_v4().to_string(), &s.token, None).await).as_deref(),
        Some("auth_failed")
    );
    assert_eq!(
        code(&validate(app, "not-a-uuid", &s.token, None).await).as_deref(),
        Some("auth_failed")
    );
    assert_eq!(
        code(&validate(app, &device, &s.token, Some("us-east")).await).as_deref(),
        Some("region_not_allowed")
    );
    // A user without a subscription in force.
    let store = app.store();
    let lonely = store.create_user("t", "lonely", None).await.unwrap();
    let t = token::generate();
    let d = store
        .create_device(
            "t",
            &NewDevice {
                user_id: lonely.id,
                name: "x".into(),
                token_hash: token::hash(&t),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        code(&validate(app, &d.id.to_string(), &t, None).await).as_deref(),
        Some("expired")
    );
    // Disabled user, then revoked device.
    store
        .update_user(
            "t",
            s.user,
            &UserUpdate {
                status: Some(UserStatus::Disabled),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        code(&validate(app, &device, &s.token, None).await).as_deref(),
        Some("revoked")
    );
    store
        .update_user(
            "t",
            s.user,
            &UserUpdate {
                status: Some(UserStatus::Active),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .update_device("t", s.device, Some(DeviceStatus::Revoked), None)
        .await
        .unwrap();
    assert_eq!(
        code(&validate(app, &device, &s.token, None).await).as_deref(),
        Some("revoked")
    );
    // Malformed bodies are problems, not 5xx.
    let (status, problem) = call(
        app.gateway(Method::POST, "/v1/gateway/devices/validate")
            .body("{not json")
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_body"))
    );
    let (status, problem) = call(
        app.gateway(Method::POST, "/v1/gateway/devices/validate")
            .json(&json!({"device_id": 5, "device_token": "x"})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
}

async fn validate_batch(app: &TestApp, devices: &[Value]) -> (StatusCode, Value) {
    call(
        app.gateway(Method::POST, "/v1/gateway/devices/validate/batch")
            .json(&json!({ "devices": devices })),
    )
    .await
}

async fn a_validation_batch_answers_each_device_as_its_own_validation_would(app: &TestApp) {
    let store = app.store();
    let eu = store
        .create_region(
            "t",
            &NewRegion {
                code: "eu-north".into(),
                name: "EU".into(),
                latitude: None,
                longitude: None,
            },
        )
        .await
        .unwrap();
    let limited = subscriber(app, Some(1 << 30), 2, vec![eu.id]).await;
    let (status, _) = report(
        app,
        "batch-usage",
        json!([{"device_id": limited.device, "bytes_up": 600, "bytes_down": 400, "at": now_ms()}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let unlimited = subscriber(app, None, 3, vec![]).await;
    let disabled = subscriber(app, None, 1, vec![]).await;
    store
        .update_user(
            "t",
            disabled.user,
            &UserUpdate {
                status: Some(UserStatus::Disabled),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A user without a subscription in force: the path that moves subscriptions along.
    let lonely = store.create_user("t", "batch-lonely", None).await.unwrap();
    let lonely_token = token::generate();
    let lonely_device = store
        .create_device(
            "t",
            &NewDevice {
                user_id: lonely.id,
                name: "x".into(),
                token_hash: token::hash(&lonely_token),
            },
        )
        .await
        .unwrap();
    let ask = |device: String, token: &str, region: Option<&str>| json!({"device_id": device, "device_token": token, "region": region});
    let devices = vec![
        ask(limited.device.to_string(), &limited.token, Some("eu-north")),
        ask(limited.device.to_string(), "wrong-token", None),
        ask(Uuid::new_v4().to_string(), &limited.token, None),
        ask("not-a-uuid".into(), &limited.token, None),
        ask(limited.device.to_string(), &limited.token, Some("us-east")),
        ask(unlimited.device.to_string(), &unlimited.token, None),
        ask(lonely_device.id.to_string(), &lonely_token, None),
        ask(disabled.device.to_string(), &disabled.token, None),
        ask(limited.device.to_string(), &limited.token, None),
    ];
    // Each device's own validation, from the store (a cold cache), is what the batch must give.
    let mut singles = Vec::new();
    for d in &devices {
        app.state().validation.clear();
        singles.push(
            validate(
                app,
                d["device_id"].as_str().unwrap(),
                d["device_token"].as_str().unwrap(),
                d["region"].as_str(),
            )
            .await,
        );
    }
    let codes: Vec<Option<&str>> = singles
        .iter()
        .map(|v| v["code"].as_str().or(v["result"].as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            Some("allow"),
            Some("auth_failed"),
            Some("auth_failed"),
            Some("auth_failed"),
            Some("region_not_allowed"),
            Some("allow"),
            Some("expired"),
            Some("revoked"),
            Some("allow"),
        ]
    );
    assert_eq!(
        singles[0]["entitlement"]["remaining_bytes"],
        (1_u64 << 30) - 1000
    );
    for round in ["cold", "warm"] {
        if round == "cold" {
            app.state().validation.clear();
        }
        let (status, answer) = validate_batch(app, &devices).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), devices.len());
        for (i, (batched, single)) in results.iter().zip(&singles).enumerate() {
            assert_eq!(batched, single, "{round} batch, device {i}");
        }
    }
    let (status, answer) = validate_batch(app, &[]).await;
    assert_eq!(
        (status, answer["results"].clone()),
        (StatusCode::OK, json!([]))
    );
    let too_many = vec![ask(limited.device.to_string(), &limited.token, None); 1001];
    let (status, problem) = validate_batch(app, &too_many).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    let (status, problem) = call(
        app.gateway(Method::POST, "/v1/gateway/devices/validate/batch")
            .json(&json!({"devices": [{"device_id": 5, "device_token": "x"}]})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
}

async fn report(app: &TestApp, id: &str, records: Value) -> (StatusCode, Value) {
    call(
        app.gateway(Method::POST, "/v1/gateway/usage")
            .json(&json!({"report_id": id, "records": records})),
    )
    .await
}

async fn quota_is_enforced_after_usage_reports(app: &TestApp) {
    let s = subscriber(app, Some(10_000), 2, vec![]).await;
    let (status, body) = report(
        app,
        "q-1",
        json!([{"device_id": s.device, "bytes_up": 4000, "bytes_down": 5999, "at": now_ms()}]),
    )
    .await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let ok = validate(app, &s.device.to_string(), &s.token, None).await;
    assert_eq!(ok["entitlement"]["remaining_bytes"], 1);
    report(
        app,
        "q-2",
        json!([{"device_id": s.device, "bytes_up": 1, "bytes_down": 0, "at": now_ms()}]),
    )
    .await;
    let deny = validate(app, &s.device.to_string(), &s.token, None).await;
    assert_eq!(deny["code"], "quota_exceeded");
}

async fn usage_reports_are_idempotent_and_validated(app: &TestApp) {
    let s = subscriber(app, None, 2, vec![]).await;
    let rec = json!([{"device_id": s.device, "bytes_up": 10, "bytes_down": 20, "at": now_ms()}]);
    assert_eq!(report(app, "r-1", rec.clone()).await.1["duplicate"], false);
    assert_eq!(report(app, "r-1", rec.clone()).await.1["duplicate"], true);
    let (sub, plan) = app
        .store()
        .resolve_subscription(s.user, now_ms(), false)
        .await
        .unwrap()
        .unwrap();
    let used_bytes = || async {
        app.store()
            .quota_status(&sub, &plan, now_ms())
            .await
            .unwrap()
            .used_bytes
    };
    assert_eq!(used_bytes().await, 30, "counted once");
    for (bad, why) in [
        (
            json!([{"device_id": s.device, "bytes_up": -1, "bytes_down": 0, "at": now_ms()}]),
            "negative",
        ),
        (
            json!([{"device_id": s.device, "bytes_up": 1, "bytes_down": 0, "at": 0}]),
            "time",
        ),
        (
            json!([{"device_id": Uuid::new_v4(), "bytes_up": 1, "bytes_down": 0, "at": now_ms()}]),
            "unknown device",
        ),
        (
            json!([{"device_id": "nope", "bytes_up": 1, "bytes_down": 0, "at": now_ms()}]),
            "bad uuid",
        ),
    ] {
        let (status, problem) = report(app, &format!("bad-{why}"), bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {problem}");
    }
    let (status, _) = report(app, "", rec.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"device_id": s.device, "bytes_up": 1, "bytes_down": 1, "at": now_ms()}))
        .collect();
    let (status, problem) = report(app, "too-many", Value::Array(many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    // Nothing of the refused reports was counted.
    assert_eq!(used_bytes().await, 30);
}

async fn assign(
    app: &TestApp,
    device: Uuid,
    region: Option<&str>,
    exclude: Vec<Uuid>,
) -> (StatusCode, Value) {
    call(
        app.gateway(Method::POST, "/v1/gateway/nodes/assign")
            .json(&json!({"device_id": device, "region": region, "exclude": exclude})),
    )
    .await
}

async fn assignment_is_sticky_and_respects_health_and_exclusions(app: &TestApp) {
    let s = subscriber(app, None, 5, vec![]).await;
    let (status, problem) = assign(app, s.device, None, vec![]).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("node_unavailable"))
    );
    let eu = app
        .store()
        .create_region(
            "t",
            &NewRegion {
                code: "eu".into(),
                name: "EU".into(),
                latitude: Some(50.0),
                longitude: Some(8.0),
            },
        )
        .await
        .unwrap();
    let us = app
        .store()
        .create_region(
            "t",
            &NewRegion {
                code: "us".into(),
                name: "US".into(),
                latitude: Some(40.0),
                longitude: Some(-74.0),
            },
        )
        .await
        .unwrap();
    let a = node(app, "a", Some(eu.id), vec![], 10).await;
    let b = node(app, "b", Some(us.id), vec![], 10).await;
    let (status, body) = assign(app, s.device, Some("us"), vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["node"]["id"],
        b.to_string(),
        "the preferred region wins"
    );
    assert_eq!(
        body["node"]["secret"], "secret-b",
        "gateways get the secret to connect"
    );
    // Sticky: the device keeps b even when it asks without a region.
    assert_eq!(
        assign(app, s.device, None, vec![]).await.1["node"]["id"],
        b.to_string()
    );
    // An excluded node is skipped (and the new choice becomes sticky).
    assert_eq!(
        assign(app, s.device, None, vec![b]).await.1["node"]["id"],
        a.to_string()
    );
    assert_eq!(
        assign(app, s.device, None, vec![]).await.1["node"]["id"],
        a.to_string()
    );
    // An unhealthy node is never assigned, not even to its sticky device.
    mark(app.store(), a, NodeHealth::Unhealthy).await;
    assert_eq!(
        assign(app, s.device, None, vec![]).await.1["node"]["id"],
        b.to_string()
    );
    let (_, pool) = call(app.gateway(Method::GET, "/v1/gateway/pool")).await;
    let ids: Vec<&str> = pool["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![b.to_string().as_str()],
        "the snapshot holds only usable nodes"
    );
    let (status, _) = assign(app, Uuid::new_v4(), None, vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn start(app: &TestApp, device: Uuid, node: Option<Uuid>) -> (StatusCode, Value) {
    call(
        app.gateway(Method::POST, "/v1/gateway/sessions")
            .json(&json!({"session_id": Uuid::new_v4(), "device_id": device, "node_id": node})),
    )
    .await
}

async fn heartbeat(app: &TestApp, session: &str) -> Value {
    let (status, body) = call(app.gateway(
        Method::POST,
        &format!("/v1/gateway/sessions/{session}/heartbeat"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn session_lifecycle_limits_kill_and_revocation(app: &TestApp) {
    let s = subscriber(app, None, 2, vec![]).await;
    let (status, first) = start(app, s.device, None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _) = start(app, s.device, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = start(app, s.device, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_sessions"))
    );
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(heartbeat(app, &id).await["end"], false);
    app.store()
        .kill_session("admin:test", Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let hb = heartbeat(app, &id).await;
    assert_eq!(
        (hb["end"].as_bool(), hb["end_reason"].as_str()),
        (Some(true), Some("killed"))
    );
    let (status, ended) = call(
        app.gateway(Method::POST, &format!("/v1/gateway/sessions/{id}/end"))
            .json(&json!({"reason": "client_closed"})),
    )
    .await;
    assert_eq!(
        (status, ended["end_reason"].as_str()),
        (StatusCode::OK, Some("client_closed"))
    );
    let (status, _) = call(app.gateway(
        Method::POST,
        &format!("/v1/gateway/sessions/{id}/heartbeat"),
    ))
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an ended session takes no heartbeats"
    );
    // A slot is free again; revoking the device ends its sessions at the next heartbeat.
    let (status, third) = start(app, s.device, None).await;
    assert_eq!(status, StatusCode::CREATED);
    app.store()
        .update_device("t", s.device, Some(DeviceStatus::Revoked), None)
        .await
        .unwrap();
    assert_eq!(
        heartbeat(app, third["id"].as_str().unwrap()).await["end_reason"],
        "revoked"
    );
    let (status, problem) = start(app, s.device, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("revoked"))
    );
    let (status, _) =
        call(app.gateway(Method::POST, "/v1/gateway/sessions/not-a-uuid/heartbeat")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn batch(app: &TestApp, body: Value) -> Value {
    let (status, answer) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions/batch")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

fn outcome(item: &Value) -> (u64, Option<&str>) {
    (item["status"].as_u64().unwrap_or(0), item["code"].as_str())
}

async fn a_session_batch_answers_each_item_as_its_own_call_would(app: &TestApp) {
    let a = subscriber(app, None, 2, vec![]).await;
    let b = subscriber(app, None, 1, vec![]).await;
    let (status, earlier) = start(app, a.device, None).await;
    assert_eq!(status, StatusCode::CREATED, "{earlier}");
    let earlier = earlier["id"].as_str().unwrap().to_owned();
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let start_of = |id: &Uuid, device: Uuid| json!({"session_id": id, "device_id": device});
    let answer = batch(
        app,
        json!({"start": [
            start_of(&ids[0], a.device),           // the user's second: allowed
            start_of(&ids[1], a.device),           // a third: over the limit of 2
            start_of(&ids[2], b.device),           // b's first
            start_of(&ids[0], a.device),           // the same id again: re-attached, not counted
            start_of(&ids[3], Uuid::new_v4()),     // no such device
        ]}),
    )
    .await;
    let starts: Vec<_> = answer["start"]
        .as_array()
        .unwrap()
        .iter()
        .map(outcome)
        .collect();
    assert_eq!(
        starts,
        vec![
            (201, None),
            (409, Some("too_many_sessions")),
            (201, None),
            (201, None),
            (404, Some("not_found")),
        ],
        "{answer}"
    );
    let order = [ids[0], ids[1], ids[2], ids[0], ids[3]];
    for (item, id) in answer["start"].as_array().unwrap().iter().zip(&order) {
        assert_eq!(
            item["session_id"],
            json!(id),
            "outcomes come in the batch's order"
        );
    }
    let live = app.store().get_session(ids[0]).await.unwrap();
    assert_eq!((live.user_id, live.ended_at), (a.user, None));

    // Heartbeats: live ones answer; a killed one is told to end; an unknown one is 404.
    app.store()
        .kill_session("admin:test", ids[2])
        .await
        .unwrap();
    let unknown = Uuid::new_v4();
    let answer = batch(app, json!({"heartbeat": [ids[0], ids[2], unknown]})).await;
    let beats = answer["heartbeat"].as_array().unwrap();
    assert_eq!(
        beats.iter().map(outcome).collect::<Vec<_>>(),
        vec![(200, None), (200, None), (404, Some("not_found"))],
        "{answer}"
    );
    assert_eq!(beats[0]["heartbeat"]["end"], false);
    assert_eq!(
        (
            beats[1]["heartbeat"]["end"].as_bool(),
            beats[1]["heartbeat"]["end_reason"].as_str()
        ),
        (Some(true), Some("killed"))
    );

    // Ends: recorded with their reasons; a session of no gateway's is 404. A start, a heartbeat
    // and an end in one batch are done in that order.
    let c = subscriber(app, None, 1, vec![]).await;
    let answer = batch(
        app,
        json!({
            "start": [start_of(&Uuid::new_v4(), c.device)],
            "heartbeat": [earlier],
            "end": [
                {"session_id": ids[0], "reason": "client_closed"},
                {"session_id": earlier, "reason": "idle_timeout"},
                {"session_id": unknown, "reason": "client_closed"},
            ],
        }),
    )
    .await;
    assert_eq!(outcome(&answer["start"][0]), (201, None), "{answer}");
    assert_eq!(outcome(&answer["heartbeat"][0]), (200, None));
    assert_eq!(
        answer["end"]
            .as_array()
            .unwrap()
            .iter()
            .map(outcome)
            .collect::<Vec<_>>(),
        vec![(200, None), (200, None), (404, Some("not_found"))]
    );
    let ended = app.store().get_session(ids[0]).await.unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("client_closed"));
    let ended = app
        .store()
        .get_session(Uuid::parse_str(&earlier).unwrap())
        .await
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("idle_timeout"));

    // The contract's limits: at most 1,000 items, no unknown fields.
    let too_many: Vec<Uuid> = (0..1_001).map(|_| Uuid::new_v4()).collect();
    let (status, problem) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions/batch")
            .json(&json!({"heartbeat": too_many})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "{problem}"
    );
    let (status, _) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions/batch")
            .json(&json!({"stop": []})),
    )
    .await;
    assert!(
        status.is_client_error(),
        "an unknown field is refused, not ignored"
    );
}

/// A gateway resuming a session (SPEC §4.4) starts it again under the same id: the session
/// moves to that gateway, live, without counting against the limit twice.
async fn a_resumed_session_reattaches_to_another_gateway(app: &TestApp) {
    let second_token = token::generate();
    let (second, _) = app
        .store()
        .create_gateway("test", "gw-second", &token::hash(&second_token))
        .await
        .unwrap();
    let as_second = |method: Method, path: &str| {
        app.http
            .request(method, app.url(path))
            .bearer_auth(&second_token)
    };
    // A limit of one: the resumed session is the same one, not a second.
    let s = subscriber(app, None, 1, vec![]).await;
    let (status, first) = start(app, s.device, None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    // The first gateway lost the connection and recorded the end.
    let (status, _) = call(
        app.gateway(Method::POST, &format!("/v1/gateway/sessions/{id}/end"))
            .json(&json!({"reason": "connection_lost"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"session_id": id, "device_id": s.device, "node_id": null});
    let (status, resumed) = call(as_second(Method::POST, "/v1/gateway/sessions").json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    assert_eq!(resumed["id"], first["id"]);
    assert_eq!(resumed["gateway_id"], second.id.to_string());
    assert_eq!(resumed["ended_at"], Value::Null);
    assert_eq!(resumed["end_reason"], Value::Null);
    assert_eq!(resumed["started_at"], first["started_at"]);
    // Heartbeats now belong to the second gateway; the first one's are refused.
    let (status, hb) = call(as_second(
        Method::POST,
        &format!("/v1/gateway/sessions/{id}/heartbeat"),
    ))
    .await;
    assert_eq!((status, hb["end"].as_bool()), (StatusCode::OK, Some(false)));
    let (status, _) = call(app.gateway(
        Method::POST,
        &format!("/v1/gateway/sessions/{id}/heartbeat"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A late end from the first gateway does not end it on the second.
    let (status, _) = call(
        app.gateway(Method::POST, &format!("/v1/gateway/sessions/{id}/end"))
            .json(&json!({"reason": "connection_lost"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Resuming while live (a move straight from one gateway to the other) works too, and
    // still counts once: a new session is over the limit.
    let (status, back) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{back}");
    assert_ne!(back["gateway_id"], second.id.to_string());
    let (status, problem) = start(app, s.device, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_sessions"))
    );
    // The id is not another device's to take.
    let other = subscriber(app, None, 5, vec![]).await;
    let (status, problem) = call(
        as_second(Method::POST, "/v1/gateway/sessions")
            .json(&json!({"session_id": id, "device_id": other.device})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{problem}"
    );
    // A killed session stays dead: its resume is refused as `revoked`.
    let (status, _) = call(app.admin(Method::POST, &format!("/v1/admin/sessions/{id}/end"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = call(as_second(Method::POST, "/v1/gateway/sessions").json(&body)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("revoked")),
        "{problem}"
    );
}

async fn failover_moves_sessions_same_group_first(app: &TestApp) {
    let store = app.store();
    let g1 = store.create_node_group("t", "g1", "").await.unwrap();
    let g2 = store.create_node_group("t", "g2", "").await.unwrap();
    let failing = node(app, "failing", None, vec![g1.id], 10).await;
    let sibling = node(app, "sibling", None, vec![g1.id], 2).await;
    let other = node(app, "other", None, vec![g2.id], 10).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let s = subscriber(app, None, 5, vec![]).await;
        let (status, body) = start(app, s.device, Some(failing)).await;
        assert_eq!(status, StatusCode::CREATED);
        sessions.push(body["id"].as_str().unwrap().to_owned());
    }
    mark(app.store(), failing, NodeHealth::Unhealthy).await;
    let report = fail_over(app.state(), failing).await.unwrap();
    assert_eq!(report.moved, 3);
    let mut on = Vec::new();
    for s in &sessions {
        on.push(
            heartbeat(app, s).await["node_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The sibling in the same group fills to its capacity of 2; the rest crosses groups.
    assert_eq!(
        on.iter().filter(|n| **n == sibling.to_string()).count(),
        2,
        "{on:?}"
    );
    assert_eq!(
        on.iter().filter(|n| **n == other.to_string()).count(),
        1,
        "{on:?}"
    );
}

async fn maintenance_rolls_up_and_reaps(app: &TestApp) {
    let s = subscriber(app, None, 5, vec![]).await;
    let (_, session) = start(app, s.device, None).await;
    report(app, "m-1", json!([{"session_id": session["id"], "device_id": s.device, "bytes_up": 5, "bytes_down": 7, "at": now_ms()}])).await;
    httvps_control_plane::jobs::maintenance_round(app.state())
        .await
        .unwrap();
    let session_id = Uuid::parse_str(session["id"].as_str().unwrap()).unwrap();
    let stored = app.store().get_session(session_id).await.unwrap();
    assert_eq!(
        (stored.bytes_up, stored.bytes_down, stored.ended_at),
        (5, 7, None)
    );
    // A session whose gateway went silent is ended by the next round once it is stale.
    let stale = app
        .store()
        .reap_stale_sessions(now_ms() + 1, now_ms())
        .await
        .unwrap();
    assert_eq!(stale, 1);
    assert_eq!(
        app.store()
            .get_session(session_id)
            .await
            .unwrap()
            .end_reason
            .as_deref(),
        Some("stale")
    );
}

/// Registers a chacha20-ietf-poly1305 node listening on this machine; returns its id.
async fn local_chacha_node(app: &TestApp, name: &str, addr: SocketAddr, password: &str) -> Uuid {
    app.store()
        .create_node(
            "t",
            &NewNode {
                name: name.into(),
                host: "127.0.0.1".into(),
                port: addr.port(),
                cipher: "chacha20-ietf-poly1305".into(),
                secret: password.into(),
                region_id: None,
                groups: vec![],
                weight: 1,
                capacity: 10,
            },
        )
        .await
        .unwrap()
        .id
}

/// The health checker over the real store, probing a real Shadowsocks server that stops and
/// comes back: transitions land in the node's history and its sessions fail over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_through_a_real_shadowsocks_node_drive_failover() {
    let app = TestApp::sqlite().await;
    let (target, _http) = common::ss::start_http_target().await;
    let password = "health-check-password";
    let cipher = shadowsocks::crypto::CipherKind::CHACHA20_POLY1305;
    let (ss_addr, server) = common::ss::start_local_ss_server(cipher, password).await;
    let node_id = local_chacha_node(&app, "real", ss_addr, password).await;
    // The backup is a second real node that stays up (the checker probes it too).
    let (backup_addr, _backup_server) = common::ss::start_local_ss_server(cipher, password).await;
    let backup = local_chacha_node(&app, "backup", backup_addr, password).await;
    let s = subscriber(&app, None, 5, vec![]).await;
    let (_, session) = start(&app, s.device, Some(node_id)).await;
    let config = HealthCheckConfig {
        probe_timeout: Duration::from_millis(500),
        ..HealthCheckConfig::new(ProbeTarget::http_head("127.0.0.1", target.port()))
    };
    let checker = HealthChecker::new(
        Arc::new(StoreHealth {
            state: app.state().clone(),
        }),
        Prober::new(),
        config,
    );
    for _ in 0..2 {
        checker.run_once().await;
    }
    let n = app.store().get_node(node_id).await.unwrap();
    assert_eq!(n.health, NodeHealth::Healthy);
    assert!(n.last_latency_ms.is_some());
    common::ss::stop_ss_server(server, ss_addr).await;
    for _ in 0..3 {
        checker.run_once().await;
    }
    assert_eq!(
        app.store().get_node(node_id).await.unwrap().health,
        NodeHealth::Unhealthy
    );
    // Failover runs in the background after the transition.
    let sid = session["id"].as_str().unwrap().to_owned();
    let mut moved = false;
    for _ in 0..50 {
        if heartbeat(&app, &sid).await["node_id"] == backup.to_string() {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "the session moved to the backup node");
    let server = common::ss::restart_ss_server(ss_addr, cipher, password).await;
    for _ in 0..2 {
        checker.run_once().await;
    }
    assert_eq!(
        app.store().get_node(node_id).await.unwrap().health,
        NodeHealth::Healthy
    );
    let history: Vec<NodeHealth> = app
        .store()
        .health_history(node_id, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.health)
        .collect();
    assert_eq!(
        history,
        vec![
            NodeHealth::Healthy,
            NodeHealth::Unhealthy,
            NodeHealth::Healthy
        ]
    );
    server.abort();
    app.stop().await;
}

/// Liveness, readiness, metrics and the API documents answer without credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_endpoints_answer() {
    let app = TestApp::sqlite().await;
    let (status, _) = call(app.http.get(app.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(app.http.get(app.url("/readyz"))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _) = call(app.gateway(Method::GET, "/v1/gateway/pool")).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("httvps_cp_http_requests_total"),
        "{metrics}"
    );
    let (status, doc) = call(app.http.get(app.url("/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/v1/gateway/devices/validate"]["post"].is_object());
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "interactive docs are served"
    );
    let (status, problem) = call(app.http.get(app.url("/no/such/route"))).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Readiness follows the database.
    app.store().close().await;
    let (status, _) = call(app.http.get(app.url("/readyz"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    app.stop().await;
}
