//! The admin API through the real HTTP server: every route's success and its refusals
//! (authentication, roles, validation, not found, conflicts), audit entries, the device token
//! shown once with its connection link and QR code, node import from Outline keys, gateway
//! token rotation, and a barrage of bad inputs that must never produce a 5xx. The main flows
//! run on SQLite and on the real PostgreSQL.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::admin::{
    create_ok, delete, get, get_ok, ok, patch, patch_ok, post, post_empty, with_token,
};
use common::app::{call, TestApp, ADMIN_PASSWORD};
use httvps_control_plane::model::{now_ms, NodeHealth};
use httvps_control_plane::store::ProbeRecord;
use httvps_proto::link::ConnectionLink;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::TestApp::sqlite().await;
                super::$name(&app).await;
                app.stop().await;
            }
        })*
    };
}

on_both_backends!(
    users_plans_subscriptions_and_devices,
    subscriptions_are_extended_given_traffic_and_moved_to_another_plan,
    regions_node_groups_nodes_and_import,
    gateway_tokens_rotate_with_overlap_and_revoke,
    sessions_usage_quota_and_audit,
    bad_inputs_never_produce_a_5xx,
);

on_sqlite!(
    login_and_authentication,
    roles_are_enforced,
    admins_are_managed_by_admins,
    validation_is_precise_and_writes_nothing,
    not_found_and_malformed_ids,
    openapi_lists_the_admin_paths,
    every_list_pages_and_refuses_unknown_parameters,
);

// ---------------------------------------------------------------------------------------------
// Helpers

/// Asserts a problem document with this status and code; returns its detail.
#[track_caller]
fn problem(resp: (StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(resp.0, status, "unexpected answer: {}", resp.1);
    assert_eq!(resp.1["code"], code, "unexpected problem: {}", resp.1);
    assert_eq!(resp.1["status"], status.as_u16());
    assert_eq!(resp.1["type"], format!("urn:httvps:problem:{code}"));
    resp.1["detail"].as_str().unwrap_or_default().to_owned()
}

/// Asserts a 404 `not_found` problem; returns its detail.
#[track_caller]
fn not_found(resp: (StatusCode, Value)) -> String {
    problem(resp, StatusCode::NOT_FOUND, "not_found")
}

/// Asserts a 409 `conflict` problem; returns its detail.
#[track_caller]
fn conflict(resp: (StatusCode, Value)) -> String {
    problem(resp, StatusCode::CONFLICT, "conflict")
}

#[track_caller]
fn invalid(resp: (StatusCode, Value), needle: &str) {
    let detail = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        detail.contains(needle),
        "detail {detail:?} should mention {needle:?}"
    );
}

fn uuid(v: &Value) -> Uuid {
    Uuid::parse_str(&id(v)).expect("a UUID id")
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

async fn login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    call(
        app.http
            .post(app.url("/v1/admin/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

/// Creates an admin through the API and logs in as them.
async fn admin_with_role(app: &TestApp, username: &str, role: &str) -> (String, String) {
    let password = "a long enough password";
    let created = create_ok(
        app,
        "/v1/admin/admins",
        json!({"username": username, "password": password, "role": role}),
    )
    .await;
    assert_eq!(created["role"], role);
    let token = ok(login(app, username, password).await, StatusCode::OK)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (id(&created), token)
}

/// The audit actions recorded for one target, oldest first.
async fn audit_actions(app: &TestApp, target_type: &str, target_id: &str) -> Vec<String> {
    let entries = get_ok(
        app,
        &format!("/v1/admin/audit?target_type={target_type}&target_id={target_id}"),
    )
    .await;
    let mut actions: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for e in entries.as_array().unwrap() {
        assert_eq!(e["actor"], "admin:root", "{e}");
    }
    actions.reverse();
    actions
}

/// Creates the region `eu` ("Europe").
async fn create_eu_region(app: &TestApp) -> Value {
    create_ok(
        app,
        "/v1/admin/regions",
        json!({"code": "eu", "name": "Europe"}),
    )
    .await
}

/// Creates a device of `user` through the API; returns its id.
async fn create_device(app: &TestApp, user: &str, name: &str) -> String {
    let created = create_ok(
        app,
        &format!("/v1/admin/users/{user}/devices"),
        json!({ "name": name }),
    )
    .await;
    id(&created["device"])
}

/// `/v1/admin/users/{id}/{rest}` for a user that does not exist.
fn unknown_user_path(rest: &str) -> String {
    format!("/v1/admin/users/{}/{rest}", Uuid::new_v4())
}

/// Asks the gateway API whether this device token is good; asserts 200 OK, returns the answer.
async fn validate_device(app: &TestApp, device_id: &str, token: &str) -> Value {
    ok(
        call(
            app.gateway(Method::POST, "/v1/gateway/devices/validate")
                .json(&json!({"device_id": device_id, "device_token": token})),
        )
        .await,
        StatusCode::OK,
    )
}

fn outline_key(method: &str, password: &str, host_port: &str, name: &str) -> String {
    format!(
        "ss://{}@{host_port}/?outline=1#{name}",
        URL_SAFE_NO_PAD.encode(format!("{method}:{password}"))
    )
}

fn node_body(host: &str, port: i64, cipher: &str, secret: &str) -> Value {
    json!({"name": "n", "host": host, "port": port, "cipher": cipher, "secret": secret})
}

// ---------------------------------------------------------------------------------------------
// Main flows (both backends)

async fn subscriptions_are_extended_given_traffic_and_moved_to_another_plan(app: &TestApp) {
    let basic = create_ok(
        app,
        "/v1/admin/plans",
        json!({"name": "basic", "device_limit": 1, "session_limit": 1, "quota_bytes": 1_000_000, "reset_strategy": "calendar_month", "duration_days": 30}),
    )
    .await;
    let pro = create_ok(
        app,
        "/v1/admin/plans",
        json!({"name": "pro", "device_limit": 3, "session_limit": 3}),
    )
    .await;
    let user = create_ok(app, "/v1/admin/users", json!({"name": "carol"})).await;
    let sub = create_ok(
        app,
        &format!("/v1/admin/users/{}/subscriptions", id(&user)),
        json!({"plan_id": id(&basic)}),
    )
    .await;
    let sub_id = id(&sub);
    let ends = sub["ends_at"].as_i64().unwrap();
    let base = format!("/v1/admin/subscriptions/{sub_id}");

    let extended = ok(
        post(app, &format!("{base}/extend"), json!({"days": 5})).await,
        StatusCode::OK,
    );
    assert_eq!(extended["ends_at"].as_i64(), Some(ends + 5 * 86_400_000));
    invalid(
        post(app, &format!("{base}/extend"), json!({"days": 0})).await,
        "days",
    );
    // Added traffic gives used traffic back, at most what was used this period.
    invalid(
        post(app, &format!("{base}/add-traffic"), json!({"bytes": 1})).await,
        "at most the 0 bytes used",
    );
    common::traffic::use_traffic(app.store(), uuid(&user), 900_000).await;
    let added = ok(
        post(
            app,
            &format!("{base}/add-traffic"),
            json!({"bytes": 400_000}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            added["used_bytes"].as_i64(),
            added["remaining_bytes"].as_i64()
        ),
        (Some(500_000), Some(500_000)),
        "{added}"
    );
    invalid(
        post(app, &format!("{base}/add-traffic"), json!({"bytes": -1})).await,
        "traffic",
    );
    let moved = ok(
        post(
            app,
            &format!("{base}/change-plan"),
            json!({"plan_id": id(&pro)}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(moved["plan_id"], pro["id"]);
    invalid(
        post(
            app,
            &format!("{base}/change-plan"),
            json!({"plan_id": id(&pro)}),
        )
        .await,
        "already",
    );
    let (status, _) = post(
        app,
        &format!("/v1/admin/subscriptions/{}/extend", Uuid::new_v4()),
        json!({"days": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A cancelled subscription takes none of them.
    ok(
        post_empty(app, &format!("{base}/cancel")).await,
        StatusCode::OK,
    );
    conflict(post(app, &format!("{base}/extend"), json!({"days": 1})).await);
    conflict(post(app, &format!("{base}/add-traffic"), json!({"bytes": 1})).await);
    conflict(
        post(
            app,
            &format!("{base}/change-plan"),
            json!({"plan_id": id(&basic)}),
        )
        .await,
    );
    let audit = get_ok(app, "/v1/admin/audit?limit=50").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "subscription.extend",
        "subscription.add_traffic",
        "subscription.change_plan",
    ] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

async fn users_plans_subscriptions_and_devices(app: &TestApp) {
    let region = create_ok(
        app,
        "/v1/admin/regions",
        json!({"code": "eu-west", "name": "Europe West"}),
    )
    .await;

    // Plans.
    let plan = create_ok(
            app,
            "/v1/admin/plans",
            json!({"name": "basic", "device_limit": 2, "session_limit": 1, "quota_bytes": 1_000_000, "reset_strategy": "calendar_month", "duration_days": 30, "allowed_regions": ["eu-west"]}),
        ).await;
    let plan_id = id(&plan);
    assert_eq!(plan["allowed_regions"], json!(["eu-west"]));
    assert_eq!(plan["reset_strategy"], "calendar_month");
    conflict(
        post(
            app,
            "/v1/admin/plans",
            json!({"name": "basic", "device_limit": 1, "session_limit": 1}),
        )
        .await,
    );
    invalid(post(app, "/v1/admin/plans", json!({"name": "x", "device_limit": 1, "session_limit": 1, "allowed_regions": ["mars"]})).await, "\"mars\"");
    let updated = patch_ok(
        app,
        &format!("/v1/admin/plans/{plan_id}"),
        json!({"quota_bytes": null, "session_limit": 3}),
    )
    .await;
    assert_eq!(updated["quota_bytes"], Value::Null);
    assert_eq!(updated["session_limit"], 3);
    assert_eq!(
        updated["allowed_regions"],
        json!(["eu-west"]),
        "untouched fields stay"
    );
    let updated = patch_ok(
        app,
        &format!("/v1/admin/plans/{plan_id}"),
        json!({"quota_bytes": 5_000_000, "allowed_regions": []}),
    )
    .await;
    assert_eq!(
        (
            updated["quota_bytes"].as_i64(),
            updated["allowed_regions"].clone()
        ),
        (Some(5_000_000), json!([]))
    );
    let plans = get_ok(app, "/v1/admin/plans").await;
    assert_eq!(plans.as_array().unwrap().len(), 1);
    assert_eq!(
        get_ok(app, &format!("/v1/admin/plans/{plan_id}")).await["name"],
        "basic"
    );
    let spare = create_ok(
        app,
        "/v1/admin/plans",
        json!({"name": "spare", "device_limit": 1, "session_limit": 1}),
    )
    .await;
    assert_eq!(spare["reset_strategy"], "none");

    // Users.
    let user = create_ok(
        app,
        "/v1/admin/users",
        json!({"name": "alice", "email": "alice@example.com"}),
    )
    .await;
    let user_id = id(&user);
    assert_eq!(user["status"], "active");
    conflict(post(app, "/v1/admin/users", json!({"name": "alice"})).await);
    create_ok(app, "/v1/admin/users", json!({"name": "bob"})).await;
    let page = get_ok(app, "/v1/admin/users?limit=1&offset=0").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "alice");
    let page = get_ok(app, "/v1/admin/users?limit=10&offset=1").await;
    assert_eq!(page[0]["name"], "bob");
    assert_eq!(
        patch_ok(
            app,
            &format!("/v1/admin/users/{user_id}"),
            json!({"status": "disabled"})
        )
        .await["status"],
        "disabled"
    );
    let enabled = patch_ok(
        app,
        &format!("/v1/admin/users/{user_id}"),
        json!({"status": "active", "email": null}),
    )
    .await;
    assert_eq!(
        (enabled["status"].as_str(), enabled["email"].clone()),
        (Some("active"), Value::Null)
    );
    conflict(
        patch(
            app,
            &format!("/v1/admin/users/{user_id}"),
            json!({"name": "bob"}),
        )
        .await,
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/users/{user_id}")).await["name"],
        "alice"
    );

    // Subscriptions.
    let subs_path = format!("/v1/admin/users/{user_id}/subscriptions");
    let sub = create_ok(app, &subs_path, json!({"plan": "basic"})).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["plan_id"], plan_id.as_str());
    conflict(post(app, &subs_path, json!({"plan_id": plan_id})).await);
    let queued = create_ok(
        app,
        &subs_path,
        json!({"plan_id": id(&spare), "queued": true}),
    )
    .await;
    assert_eq!(queued["status"], "queued");
    invalid(
        post(
            app,
            &subs_path,
            json!({"plan_id": plan_id, "plan": "basic"}),
        )
        .await,
        "exactly one",
    );
    invalid(post(app, &subs_path, json!({})).await, "exactly one");
    invalid(
        post(app, &subs_path, json!({"plan": "gold"})).await,
        "unknown plan",
    );
    invalid(
        post(app, &subs_path, json!({"plan_id": Uuid::new_v4()})).await,
        "unknown plan",
    );
    invalid(
        post(
            app,
            &subs_path,
            json!({"plan": "basic", "on_hold": true, "queued": true}),
        )
        .await,
        "on_hold",
    );
    not_found(
        post(
            app,
            &unknown_user_path("subscriptions"),
            json!({"plan": "basic"}),
        )
        .await,
    );
    let subs = get_ok(app, &subs_path).await;
    assert_eq!(subs.as_array().unwrap().len(), 2);
    assert_eq!(
        get_ok(app, &format!("/v1/admin/subscriptions/{}", id(&sub))).await["status"],
        "active"
    );
    let quota = get_ok(app, &format!("/v1/admin/users/{user_id}/quota")).await;
    assert_eq!(
        (
            quota["used_bytes"].as_i64(),
            quota["quota_bytes"].as_i64(),
            quota["remaining_bytes"].as_i64()
        ),
        (Some(0), Some(5_000_000), Some(5_000_000))
    );
    assert_eq!(quota["plan"], "basic");
    assert!(quota["period_end"].as_i64().unwrap() > now_ms());

    // Devices: the token is shown once, with a link that parses and a QR code.
    let devices_path = format!("/v1/admin/users/{user_id}/devices");
    let created = create_ok(app, &devices_path, json!({"name": "Mia's laptop"})).await;
    let device_id = id(&created["device"]);
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    assert_eq!(created["device"]["status"], "active");
    let link = ConnectionLink::parse(created["link"].as_str().unwrap()).expect("the link parses");
    assert_eq!(link.device_id, device_id);
    assert_eq!(link.token, token);
    assert_eq!(
        (link.host.as_str(), link.port, link.path.as_str()),
        ("127.0.0.1", 8443, "/httvps")
    );
    assert_eq!(link.fingerprint, Some([0xab; 32]));
    assert_eq!(link.name.as_deref(), Some("Mia's laptop"));
    let svg = created["qr_svg"].as_str().unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..40]
    );
    assert!(svg.contains("<svg"));
    // The token works for the gateway.
    let validated = validate_device(app, &device_id, &token).await;
    assert_eq!(validated["result"], "allow", "{validated}");
    // ... and is never shown again.
    for path in [
        format!("/v1/admin/devices/{device_id}"),
        format!("/v1/admin/devices?user_id={user_id}"),
        "/v1/admin/devices".to_owned(),
        format!("/v1/admin/audit?target_id={device_id}"),
    ] {
        let resp = app.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        assert!(text.contains(&device_id), "{path}: {text}");
        assert!(!text.contains(&token), "{path} shows the token");
        assert!(!text.contains("\"token"), "{path} has a token field");
    }
    let listed = get_ok(app, &format!("/v1/admin/devices?user_id={user_id}")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        get_ok(
            app,
            &format!("/v1/admin/devices?user_id={}", Uuid::new_v4())
        )
        .await,
        json!([])
    );

    // The plan allows two devices; revoked ones do not count.
    let second = create_ok(app, &devices_path, json!({"name": "phone"})).await;
    assert_ne!(second["token"], token.as_str());
    let detail = conflict(post(app, &devices_path, json!({"name": "tablet"})).await);
    assert!(detail.contains("device limit"), "{detail}");
    let device_path = format!("/v1/admin/devices/{device_id}");
    assert_eq!(
        patch_ok(app, &device_path, json!({"name": "Work laptop"})).await["name"],
        "Work laptop"
    );
    assert_eq!(
        ok(
            post_empty(app, &format!("{device_path}/disable")).await,
            StatusCode::OK
        )["status"],
        "disabled"
    );
    assert_eq!(
        ok(
            post_empty(app, &format!("{device_path}/enable")).await,
            StatusCode::OK
        )["status"],
        "active"
    );
    assert_eq!(
        ok(
            post_empty(app, &format!("{device_path}/revoke")).await,
            StatusCode::OK
        )["status"],
        "revoked"
    );
    conflict(post_empty(app, &format!("{device_path}/enable")).await);
    let validated = validate_device(app, &device_id, &token).await;
    assert_eq!(
        (validated["result"].as_str(), validated["code"].as_str()),
        (Some("deny"), Some("revoked"))
    );
    let third = create_ok(app, &devices_path, json!({"name": "tablet"})).await;
    assert_eq!(
        ok(
            delete(app, &format!("/v1/admin/devices/{}", id(&third["device"]))).await,
            StatusCode::NO_CONTENT
        ),
        Value::Null
    );
    not_found(get(app, &format!("/v1/admin/devices/{}", id(&third["device"]))).await);
    not_found(post(app, &unknown_user_path("devices"), json!({"name": "x"})).await);

    // Cancel and reset.
    let sub_id = id(&sub);
    let reset = ok(
        post_empty(
            app,
            &format!("/v1/admin/subscriptions/{sub_id}/reset-usage"),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(reset["used_bytes"], 0);
    let cancelled = ok(
        post_empty(app, &format!("/v1/admin/subscriptions/{sub_id}/cancel")).await,
        StatusCode::OK,
    );
    assert_eq!(cancelled["status"], "cancelled");
    conflict(post_empty(app, &format!("/v1/admin/subscriptions/{sub_id}/cancel")).await);
    // The queued plan takes over.
    let quota = get_ok(app, &format!("/v1/admin/users/{user_id}/quota")).await;
    assert_eq!(quota["plan"], "spare");

    // Audit entries for every change, by the calling admin.
    let user_actions = audit_actions(app, "user", &user_id).await;
    assert_eq!(user_actions, ["user.create", "user.disable", "user.enable"]);
    let device_actions = audit_actions(app, "device", &device_id).await;
    assert_eq!(
        device_actions,
        [
            "device.create",
            "device.update",
            "device.disable",
            "device.enable",
            "device.revoke"
        ]
    );
    assert_eq!(
        audit_actions(app, "plan", &plan_id).await,
        ["plan.create", "plan.update", "plan.update"]
    );
    assert_eq!(
        audit_actions(app, "subscription", &sub_id).await,
        [
            "subscription.create",
            "subscription.reset_usage",
            "subscription.cancel"
        ]
    );
    assert_eq!(
        audit_actions(app, "region", &id(&region)).await,
        ["region.create"]
    );

    // A plan in use cannot be deleted; a region a plan allows neither.
    conflict(delete(app, &format!("/v1/admin/plans/{plan_id}")).await);
    patch_ok(
        app,
        &format!("/v1/admin/plans/{}", id(&spare)),
        json!({"allowed_regions": ["eu-west"]}),
    )
    .await;
    let detail = conflict(delete(app, &format!("/v1/admin/regions/{}", id(&region))).await);
    assert!(detail.contains("spare"), "{detail}");
    assert_eq!(
        ok(
            delete(app, &format!("/v1/admin/users/{user_id}")).await,
            StatusCode::NO_CONTENT
        ),
        Value::Null
    );
    not_found(get(app, &format!("/v1/admin/users/{user_id}")).await);
    not_found(get(app, &device_path).await);
    ok(
        delete(app, &format!("/v1/admin/plans/{plan_id}")).await,
        StatusCode::NO_CONTENT,
    );
    ok(
        delete(app, &format!("/v1/admin/plans/{}", id(&spare))).await,
        StatusCode::NO_CONTENT,
    );
    ok(
        delete(app, &format!("/v1/admin/regions/{}", id(&region))).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        audit_actions(app, "user", &user_id)
            .await
            .last()
            .map(String::as_str),
        Some("user.delete")
    );
    assert_eq!(
        audit_actions(app, "plan", &plan_id)
            .await
            .last()
            .map(String::as_str),
        Some("plan.delete")
    );
}

async fn regions_node_groups_nodes_and_import(app: &TestApp) {
    // Regions.
    let region = create_ok(
        app,
        "/v1/admin/regions",
        json!({"code": "ap-east", "name": "Hong Kong", "latitude": 22.3, "longitude": 114.2}),
    )
    .await;
    let region_id = id(&region);
    assert_eq!(region["latitude"], 22.3);
    conflict(
        post(
            app,
            "/v1/admin/regions",
            json!({"code": "ap-east", "name": "again"}),
        )
        .await,
    );
    assert_eq!(
        patch_ok(
            app,
            &format!("/v1/admin/regions/{region_id}"),
            json!({"name": "HK"})
        )
        .await["name"],
        "HK"
    );
    let moved = patch_ok(
        app,
        &format!("/v1/admin/regions/{region_id}"),
        json!({"latitude": null, "longitude": null}),
    )
    .await;
    assert_eq!(
        (moved["latitude"].clone(), moved["code"].as_str()),
        (Value::Null, Some("ap-east"))
    );
    let other = create_ok(
        app,
        "/v1/admin/regions",
        json!({"code": "us-east-1", "name": "Virginia"}),
    )
    .await;
    conflict(
        patch(
            app,
            &format!("/v1/admin/regions/{}", id(&other)),
            json!({"code": "ap-east"}),
        )
        .await,
    );
    assert_eq!(
        get_ok(app, "/v1/admin/regions")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/regions/{region_id}")).await["code"],
        "ap-east"
    );

    // Node groups.
    let group = create_ok(
        app,
        "/v1/admin/node-groups",
        json!({"name": "premium", "description": "fast ones"}),
    )
    .await;
    let group_id = id(&group);
    conflict(post(app, "/v1/admin/node-groups", json!({"name": "premium"})).await);
    assert_eq!(
        patch_ok(
            app,
            &format!("/v1/admin/node-groups/{group_id}"),
            json!({"description": "the fastest"})
        )
        .await["description"],
        "the fastest"
    );
    let spare_group = create_ok(app, "/v1/admin/node-groups", json!({"name": "spare"})).await;
    assert_eq!(spare_group["description"], "");
    assert_eq!(
        get_ok(app, "/v1/admin/node-groups")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/node-groups/{group_id}")).await["name"],
        "premium"
    );

    // Nodes from fields: IPv4, IPv6, domain; region by code or id; the secret never comes back.
    let secret = "node-password-123";
    let node = create_ok(app, "/v1/admin/nodes", json!({"name": "hk-1", "host": "203.0.113.9", "port": 8388, "cipher": "chacha20-ietf-poly1305", "secret": secret, "region": "ap-east", "groups": [group_id, group_id], "weight": 50, "capacity": 200})).await;
    let node_id = id(&node);
    assert_eq!(
        (
            node["host"].as_str(),
            node["port"].as_i64(),
            node["weight"].as_i64(),
            node["capacity"].as_i64()
        ),
        (Some("203.0.113.9"), Some(8388), Some(50), Some(200))
    );
    assert_eq!(node["region_id"], region_id.as_str());
    assert_eq!(node["groups"], json!([group_id]));
    assert_eq!(node["status"], "active");
    assert!(node.get("secret").is_none());
    let v6 = create_ok(app, "/v1/admin/nodes", json!({"name": "v6", "host": "[2001:DB8::5]", "port": 443, "cipher": "AES-256-GCM", "secret": "pw", "region": region_id})).await;
    assert_eq!(
        (
            v6["host"].as_str(),
            v6["cipher"].as_str(),
            v6["weight"].as_i64(),
            v6["capacity"].as_i64()
        ),
        (
            Some("2001:db8::5"),
            Some("aes-256-gcm"),
            Some(100),
            Some(1000)
        )
    );
    assert_eq!(v6["region_id"], region_id.as_str());
    let key16 = STANDARD.encode([7u8; 16]);
    let dom = create_ok(app, "/v1/admin/nodes", json!({"name": "dom", "host": "Node-1.Example.COM", "port": 1, "cipher": "2022-blake3-aes-128-gcm", "secret": key16})).await;
    assert_eq!(dom["host"], "node-1.example.com");
    for path in [
        "/v1/admin/nodes".to_owned(),
        format!("/v1/admin/nodes/{node_id}"),
        format!("/v1/admin/audit?target_id={node_id}"),
    ] {
        let text = app
            .admin(Method::GET, &path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(&node_id) || path == "/v1/admin/nodes",
            "{path}"
        );
        assert!(
            !text.contains(secret) && !text.contains(&key16),
            "{path} shows a secret: {text}"
        );
    }
    assert_eq!(
        get_ok(app, "/v1/admin/nodes")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Updates: partial, validated as a whole.
    let node_path = format!("/v1/admin/nodes/{node_id}");
    let changed = patch_ok(
        app,
        &node_path,
        json!({"port": 9000, "weight": 5, "status": "draining", "groups": [id(&spare_group)]}),
    )
    .await;
    assert_eq!(
        (
            changed["port"].as_i64(),
            changed["weight"].as_i64(),
            changed["status"].as_str()
        ),
        (Some(9000), Some(5), Some("draining"))
    );
    assert_eq!(changed["groups"], json!([id(&spare_group)]));
    assert_eq!(changed["host"], "203.0.113.9");
    invalid(
        patch(
            app,
            &node_path,
            json!({"cipher": "2022-blake3-aes-256-gcm"}),
        )
        .await,
        "must be base64",
    );
    invalid(
        patch(
            app,
            &node_path,
            json!({"cipher": "2022-blake3-aes-256-gcm", "secret": key16}),
        )
        .await,
        "must decode to 32 bytes, found 16",
    );
    let changed = patch_ok(
        app,
        &node_path,
        json!({"region": null, "groups": [], "secret": "rotated-password"}),
    )
    .await;
    assert_eq!(
        (changed["region_id"].clone(), changed["groups"].clone()),
        (Value::Null, json!([]))
    );
    let secret_now = app
        .store()
        .get_node(Uuid::parse_str(&node_id).unwrap())
        .await
        .unwrap()
        .secret;
    assert_eq!(secret_now, "rotated-password");
    invalid(patch(app, &node_path, json!({})).await, "nothing to change");

    // Import from an Outline access key.
    let key = outline_key(
        "chacha20-ietf-poly1305",
        "outline-secret",
        "198.51.100.7:51234",
        "Tokyo%201",
    );
    let imported = create_ok(app, "/v1/admin/nodes/import", json!({"access_key": key})).await;
    assert_eq!(
        (
            imported["name"].as_str(),
            imported["host"].as_str(),
            imported["port"].as_i64(),
            imported["cipher"].as_str()
        ),
        (
            Some("Tokyo 1"),
            Some("198.51.100.7"),
            Some(51234),
            Some("chacha20-ietf-poly1305")
        )
    );
    assert!(imported.get("secret").is_none());
    let stored = app
        .store()
        .get_node(Uuid::parse_str(&id(&imported)).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.secret, "outline-secret");
    let v6_key = outline_key("aes-128-gcm", "pw", "[2001:db8::9]:443", "");
    let named = create_ok(app, "/v1/admin/nodes/import", json!({"access_key": v6_key, "name": "custom", "region": "ap-east", "groups": [group_id], "weight": 7, "capacity": 9})).await;
    assert_eq!(
        (
            named["name"].as_str(),
            named["host"].as_str(),
            named["weight"].as_i64(),
            named["capacity"].as_i64()
        ),
        (Some("custom"), Some("2001:db8::9"), Some(7), Some(9))
    );
    assert_eq!(named["region_id"], region_id.as_str());
    invalid(
        post(
            app,
            "/v1/admin/nodes/import",
            json!({"access_key": "https://example.com"}),
        )
        .await,
        "ss://",
    );
    invalid(
        post(
            app,
            "/v1/admin/nodes/import",
            json!({"access_key": outline_key("aes-192-gcm", "pw", "198.51.100.7:1", "x")}),
        )
        .await,
        "aes-192-gcm",
    );
    invalid(
        post(
            app,
            "/v1/admin/nodes/import",
            json!({"access_key": outline_key("rc4-md5", "pw", "198.51.100.7:1", "x")}),
        )
        .await,
        "supported:",
    );
    invalid(post(app, "/v1/admin/nodes/import", json!({"access_key": format!("ss://{}@198.51.100.7", URL_SAFE_NO_PAD.encode("aes-128-gcm:pw"))})).await, "port");
    invalid(
        post(
            app,
            "/v1/admin/nodes/import",
            json!({"access_key": "ss://!!!@h:1"}),
        )
        .await,
        "base64",
    );
    invalid(
        post(
            app,
            "/v1/admin/nodes/import",
            json!({"access_key": key, "region": "nowhere"}),
        )
        .await,
        "unknown region",
    );

    // Health history.
    let uuid = Uuid::parse_str(&node_id).unwrap();
    let at = now_ms();
    app.store()
        .record_probe(&ProbeRecord {
            node_id: uuid,
            at,
            health: NodeHealth::Unhealthy,
            consecutive_failures: 3,
            consecutive_successes: 0,
            latency_ms: None,
            error: Some("connect: refused".into()),
            transition: Some(NodeHealth::Unhealthy),
        })
        .await
        .unwrap();
    app.store()
        .record_probe(&ProbeRecord {
            node_id: uuid,
            at: at + 1,
            health: NodeHealth::Healthy,
            consecutive_failures: 0,
            consecutive_successes: 2,
            latency_ms: Some(12),
            error: None,
            transition: Some(NodeHealth::Healthy),
        })
        .await
        .unwrap();
    let health = get_ok(app, &format!("{node_path}/health")).await;
    assert_eq!(
        (
            health["health"].as_str(),
            health["last_latency_ms"].as_i64()
        ),
        (Some("healthy"), Some(12))
    );
    let history = health["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0]["health"].as_str(), history[1]["health"].as_str()),
        (Some("healthy"), Some("unhealthy"))
    );
    assert_eq!(history[1]["error"], "connect: refused");
    assert_eq!(
        get_ok(app, &format!("{node_path}/health?limit=1")).await["history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    not_found(get(app, &format!("/v1/admin/nodes/{}/health", Uuid::new_v4())).await);

    // Deletes.
    ok(
        delete(app, &format!("/v1/admin/node-groups/{group_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/nodes/{}", id(&named))).await["groups"],
        json!([])
    );
    ok(
        delete(app, &format!("/v1/admin/regions/{region_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/nodes/{}", id(&named))).await["region_id"],
        Value::Null
    );
    ok(delete(app, &node_path).await, StatusCode::NO_CONTENT);
    not_found(get(app, &node_path).await);
    not_found(delete(app, &node_path).await);

    let node_actions = audit_actions(app, "node", &node_id).await;
    assert_eq!(
        node_actions,
        ["node.create", "node.update", "node.update", "node.delete"]
    );
    assert_eq!(
        audit_actions(app, "node_group", &group_id).await,
        [
            "node_group.create",
            "node_group.update",
            "node_group.delete"
        ]
    );
    assert_eq!(
        audit_actions(app, "region", &region_id).await,
        [
            "region.create",
            "region.update",
            "region.update",
            "region.delete"
        ]
    );
    assert_eq!(
        audit_actions(app, "node", &id(&imported)).await,
        ["node.create"]
    );
}

async fn gateway_tokens_rotate_with_overlap_and_revoke(app: &TestApp) {
    let pool = |token: String| async move {
        call(with_token(app, &token, Method::GET, "/v1/gateway/pool"))
            .await
            .0
    };
    let created = create_ok(app, "/v1/admin/gateways", json!({"name": "gw-eu-1"})).await;
    let gw = id(&created["gateway"]);
    let first = created["token"].as_str().unwrap().to_owned();
    assert_eq!(pool(first.clone()).await, StatusCode::OK);
    conflict(post(app, "/v1/admin/gateways", json!({"name": "gw-eu-1"})).await);
    invalid(
        post(app, "/v1/admin/gateways", json!({"name": "bad name"})).await,
        "name",
    );

    // The heartbeat shows in the listing.
    ok(
        call(
            with_token(app, &first, Method::POST, "/v1/gateway/heartbeat")
                .json(&json!({"version": "1.2.3"})),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let listed = get_ok(app, "/v1/admin/gateways").await;
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == gw.as_str())
        .unwrap()
        .clone();
    assert!(mine["last_seen_at"].as_i64().unwrap() > 0);
    assert_eq!(mine["version"], "1.2.3");
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the test app's gateway and this one"
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/gateways/{gw}")).await["name"],
        "gw-eu-1"
    );

    // Rotation with the default overlap (no body): both tokens work.
    let second = ok(
        post_empty(app, &format!("/v1/admin/gateways/{gw}/tokens")).await,
        StatusCode::CREATED,
    );
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert_eq!(second["gateway_id"], gw.as_str());
    assert_eq!(second["expires_at"], Value::Null);
    assert_eq!(pool(first.clone()).await, StatusCode::OK);
    assert_eq!(pool(second_token.clone()).await, StatusCode::OK);
    let tokens = get_ok(app, &format!("/v1/admin/gateways/{gw}/tokens")).await;
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let expiring: Vec<i64> = tokens
        .iter()
        .filter_map(|t| t["expires_at"].as_i64())
        .collect();
    assert_eq!(expiring.len(), 1, "only the old token expires: {tokens:?}");
    let overlap_end = expiring[0];
    assert!(
        (overlap_end - (now_ms() + 3_600_000)).abs() < 60_000,
        "default overlap is an hour"
    );
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_hash").is_none()));

    // Rotation without overlap: only the newest works.
    let third = create_ok(
        app,
        &format!("/v1/admin/gateways/{gw}/tokens"),
        json!({"overlap_secs": 0}),
    )
    .await;
    let third_token = third["token"].as_str().unwrap().to_owned();
    assert_eq!(pool(first.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(pool(second_token.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(pool(third_token.clone()).await, StatusCode::OK);
    invalid(
        post(
            app,
            &format!("/v1/admin/gateways/{gw}/tokens"),
            json!({"overlap_secs": 604_801}),
        )
        .await,
        "overlap_secs",
    );
    invalid(
        post(
            app,
            &format!("/v1/admin/gateways/{gw}/tokens"),
            json!({"overlap_secs": -1}),
        )
        .await,
        "overlap_secs",
    );

    // Revocation is immediate.
    let third_id = id(&third);
    let revoked = ok(
        delete(app, &format!("/v1/admin/gateways/{gw}/tokens/{third_id}")).await,
        StatusCode::OK,
    );
    assert!(revoked["revoked_at"].as_i64().is_some());
    assert_eq!(pool(third_token).await, StatusCode::UNAUTHORIZED);
    conflict(delete(app, &format!("/v1/admin/gateways/{gw}/tokens/{third_id}")).await);
    not_found(
        delete(
            app,
            &format!("/v1/admin/gateways/{gw}/tokens/{}", Uuid::new_v4()),
        )
        .await,
    );
    // A token of another gateway is not found under this one.
    let other_gw = app.store().gateway_by_name("gw-test").await.unwrap().id;
    not_found(
        delete(
            app,
            &format!("/v1/admin/gateways/{other_gw}/tokens/{third_id}"),
        )
        .await,
    );
    not_found(
        post_empty(
            app,
            &format!("/v1/admin/gateways/{}/tokens", Uuid::new_v4()),
        )
        .await,
    );
    not_found(
        get(
            app,
            &format!("/v1/admin/gateways/{}/tokens", Uuid::new_v4()),
        )
        .await,
    );
    // The test app's own gateway still works.
    assert_eq!(pool(app.gateway_token.clone()).await, StatusCode::OK);

    let actions = audit_actions(app, "gateway", &gw).await;
    assert_eq!(
        actions,
        [
            "gateway.create",
            "gateway.rotate_token",
            "gateway.rotate_token",
            "gateway.revoke_token"
        ]
    );
    let entries = get_ok(
        app,
        &format!("/v1/admin/audit?target_type=gateway&target_id={gw}"),
    )
    .await
    .to_string();
    for secret in [&first, &second_token] {
        assert!(
            !entries.contains(secret.as_str()),
            "the audit log shows a token"
        );
    }
}

async fn sessions_usage_quota_and_audit(app: &TestApp) {
    create_eu_region(app).await;
    let group = id(&create_ok(app, "/v1/admin/node-groups", json!({"name": "g"})).await);
    let node = id(&create_ok(app, "/v1/admin/nodes", json!({"name": "n1", "host": "192.0.2.1", "port": 8388, "cipher": "aes-256-gcm", "secret": "pw", "region": "eu", "groups": [group]})).await);
    create_ok(app, "/v1/admin/plans", json!({"name": "small", "device_limit": 3, "session_limit": 2, "quota_bytes": 10_000, "reset_strategy": "daily"})).await;
    let user = id(&create_ok(app, "/v1/admin/users", json!({"name": "carol"})).await);
    let sub = id(&create_ok(
        app,
        &format!("/v1/admin/users/{user}/subscriptions"),
        json!({"plan": "small"}),
    )
    .await);
    let device = create_device(app, &user, "d").await;

    // A session and usage through the gateway API.
    let session = Uuid::new_v4().to_string();
    ok(
        call(
            app.gateway(Method::POST, "/v1/gateway/sessions")
                .json(&json!({"session_id": session, "device_id": device, "node_id": node})),
        )
        .await,
        StatusCode::CREATED,
    );
    let at = now_ms();
    let report = json!({"report_id": "r-1", "records": [{"session_id": session, "device_id": device, "node_id": node, "bytes_up": 1000, "bytes_down": 2000, "at": at}]});
    ok(
        call(app.gateway(Method::POST, "/v1/gateway/usage").json(&report)).await,
        StatusCode::OK,
    );
    let gw = app.store().gateway_by_name("gw-test").await.unwrap().id;

    // Listing with every filter.
    for query in [
        "live=true".to_owned(),
        format!("user_id={user}"),
        format!("device_id={device}"),
        format!("gateway_id={gw}"),
        format!("node_id={node}&live=true&limit=1"),
    ] {
        let list = get_ok(app, &format!("/v1/admin/sessions?{query}")).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{query}: {list}");
        assert_eq!(list[0]["id"], session.as_str());
    }
    assert_eq!(
        get_ok(
            app,
            &format!("/v1/admin/sessions?user_id={}", Uuid::new_v4())
        )
        .await,
        json!([])
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/sessions/{session}")).await["bytes_down"],
        2000
    );

    // Quota and its reset.
    let quota = get_ok(app, &format!("/v1/admin/users/{user}/quota")).await;
    assert_eq!(
        (
            quota["used_bytes"].as_i64(),
            quota["remaining_bytes"].as_i64()
        ),
        (Some(3000), Some(7000))
    );
    let reset = ok(
        post_empty(app, &format!("/v1/admin/subscriptions/{sub}/reset-usage")).await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            reset["used_bytes"].as_i64(),
            reset["remaining_bytes"].as_i64(),
            reset["quota_bytes"].as_i64()
        ),
        (Some(0), Some(10_000), Some(10_000))
    );
    assert_eq!(
        get_ok(app, &format!("/v1/admin/users/{user}/quota")).await["used_bytes"],
        0
    );

    // Usage reports by every key.
    app.store().roll_up_usage(10_000).await.unwrap();
    let (from, to) = (at - 2 * 3_600_000, at + 3_600_000);
    for (by, key) in [
        ("device", &device),
        ("user", &user),
        ("node", &node),
        ("group", &group),
    ] {
        for granularity in ["hour", "day"] {
            let report = get_ok(
                app,
                &format!("/v1/admin/usage?by={by}&granularity={granularity}&from={from}&to={to}"),
            )
            .await;
            assert_eq!(report["by"], by);
            let rows = report["rows"].as_array().unwrap();
            assert_eq!(rows.len(), 1, "{by}/{granularity}: {report}");
            assert_eq!(rows[0]["key"], key.as_str());
            assert_eq!(
                (rows[0]["bytes_up"].as_i64(), rows[0]["bytes_down"].as_i64()),
                (Some(1000), Some(2000))
            );
        }
        let filtered = get_ok(
            app,
            &format!(
                "/v1/admin/usage?by={by}&granularity=hour&from={from}&to={to}&key={}",
                Uuid::new_v4()
            ),
        )
        .await;
        assert_eq!(filtered["rows"], json!([]));
    }
    let defaults = get_ok(app, "/v1/admin/usage").await;
    assert_eq!(
        (defaults["by"].as_str(), defaults["granularity"].as_str()),
        (Some("user"), Some("day"))
    );
    assert_eq!(defaults["rows"].as_array().unwrap().len(), 1);

    // Ending a session: the gateway learns it at the next heartbeat.
    let killed = ok(
        post_empty(app, &format!("/v1/admin/sessions/{session}/end")).await,
        StatusCode::OK,
    );
    assert_eq!(killed["kill_requested"], true);
    let hb = ok(
        call(app.gateway(
            Method::POST,
            &format!("/v1/gateway/sessions/{session}/heartbeat"),
        ))
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (hb["end"].as_bool(), hb["end_reason"].as_str()),
        (Some(true), Some("killed"))
    );
    ok(
        call(
            app.gateway(Method::POST, &format!("/v1/gateway/sessions/{session}/end"))
                .json(&json!({"reason": "killed"})),
        )
        .await,
        StatusCode::OK,
    );
    conflict(post_empty(app, &format!("/v1/admin/sessions/{session}/end")).await);
    not_found(post_empty(app, &format!("/v1/admin/sessions/{}/end", Uuid::new_v4())).await);
    assert_eq!(get_ok(app, "/v1/admin/sessions?live=true").await, json!([]));
    assert_eq!(
        get_ok(app, "/v1/admin/sessions")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        audit_actions(app, "session", &session).await,
        ["session.kill"]
    );
    assert_eq!(
        audit_actions(app, "subscription", &sub).await,
        ["subscription.create", "subscription.reset_usage"]
    );
    // Filters of the audit log.
    let since = get_ok(app, &format!("/v1/admin/audit?since={}", now_ms() + 60_000)).await;
    assert_eq!(since, json!([]));
    let limited = get_ok(app, "/v1/admin/audit?limit=2").await;
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert_eq!(limited[0]["action"], "session.kill", "newest first");
    let by_type = get_ok(app, "/v1/admin/audit?target_type=node").await;
    assert_eq!(by_type.as_array().unwrap().len(), 1);
    assert_eq!(by_type[0]["detail"]["host"], "192.0.2.1");
}

// ---------------------------------------------------------------------------------------------
// Authentication, roles, admins

async fn login_and_authentication(app: &TestApp) {
    let good = ok(login(app, "root", ADMIN_PASSWORD).await, StatusCode::OK);
    assert_eq!(good["role"], "admin");
    let ttl = good["expires_at"].as_i64().unwrap() - now_ms();
    assert!(
        (800_000..=901_000).contains(&ttl),
        "about 15 minutes: {ttl}"
    );
    let token = good["token"].as_str().unwrap();
    assert_eq!(
        call(with_token(app, token, Method::GET, "/v1/admin/users"))
            .await
            .0,
        StatusCode::OK
    );

    // The same refusal whether the user exists or not.
    let wrong = problem(
        login(app, "root", "not the password").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let unknown = problem(
        login(app, "nobody", ADMIN_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_eq!(wrong, unknown);
    problem(
        login(app, "", "").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        login(app, "ro\0ot", ADMIN_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    // Malformed login requests.
    problem(
        call(
            app.http
                .post(app.url("/v1/admin/login"))
                .header("content-type", "application/json")
                .body("{\"username\": "),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_body",
    );
    problem(
        call(
            app.http
                .post(app.url("/v1/admin/login"))
                .body("username=root"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_body",
    );
    invalid(
        call(
            app.http
                .post(app.url("/v1/admin/login"))
                .json(&json!({"username": "root"})),
        )
        .await,
        "password",
    );
    invalid(
        call(
            app.http
                .post(app.url("/v1/admin/login"))
                .json(&json!({"username": "root", "password": "x", "otp": 1})),
        )
        .await,
        "otp",
    );
    invalid(
        call(
            app.http
                .post(app.url("/v1/admin/login"))
                .json(&json!({"username": 5, "password": "x"})),
        )
        .await,
        "username",
    );

    // Without a token, or with a bad one.
    problem(
        call(app.http.get(app.url("/v1/admin/users"))).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        call(with_token(app, "garbage", Method::GET, "/v1/admin/users")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        call(
            app.http
                .get(app.url("/v1/admin/users"))
                .header("authorization", format!("Basic {token}")),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let foreign =
        httvps_control_plane::auth::jwt::JwtKeys::new(b"another-secret-another-secret-!!", 900);
    let root = app
        .store()
        .admin_credentials("root")
        .await
        .unwrap()
        .unwrap()
        .0;
    let now_secs = u64::try_from(now_ms() / 1000).unwrap();
    let (forged, _) = foreign.issue(root.id, "root", root.role, now_secs).unwrap();
    problem(
        call(with_token(app, &forged, Method::GET, "/v1/admin/users")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let (expired, _) = app
        .state()
        .jwt
        .issue(root.id, "root", root.role, now_secs - 10_000)
        .unwrap();
    problem(
        call(with_token(app, &expired, Method::GET, "/v1/admin/users")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // A gateway token is not an admin token, nor the reverse.
    problem(
        call(with_token(
            app,
            &app.gateway_token,
            Method::GET,
            "/v1/admin/users",
        ))
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        call(with_token(app, token, Method::GET, "/v1/gateway/pool")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Writes are refused before the body is looked at.
    problem(
        call(
            app.http
                .post(app.url("/v1/admin/users"))
                .json(&json!({"name": "x"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        call(app.http.post(app.url("/v1/admin/users")).body("{{{")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_eq!(
        get_ok(app, "/v1/admin/users").await,
        json!([]),
        "nothing was written"
    );

    // A disabled admin cannot log in, and their token stops working at once.
    let (viewer_id, viewer_token) = admin_with_role(app, "vera", "viewer").await;
    assert_eq!(
        call(with_token(
            app,
            &viewer_token,
            Method::GET,
            "/v1/admin/users"
        ))
        .await
        .0,
        StatusCode::OK
    );
    patch_ok(
        app,
        &format!("/v1/admin/admins/{viewer_id}"),
        json!({"disabled": true}),
    )
    .await;
    problem(
        login(app, "vera", "a long enough password").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    problem(
        call(with_token(
            app,
            &viewer_token,
            Method::GET,
            "/v1/admin/users",
        ))
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    patch_ok(
        app,
        &format!("/v1/admin/admins/{viewer_id}"),
        json!({"disabled": false}),
    )
    .await;
    ok(
        login(app, "vera", "a long enough password").await,
        StatusCode::OK,
    );

    // Failed logins are limited per account (after 3 in a row each next attempt waits, from
    // any address; the 10-per-address lockout is in tests/hardening.rs); other usernames are
    // unaffected.
    let name = format!("target-{}", Uuid::new_v4().simple());
    for _ in 0..3 {
        problem(
            login(app, &name, "guess guess guess").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    problem(
        login(app, &name, "guess guess guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    ok(login(app, "root", ADMIN_PASSWORD).await, StatusCode::OK);
}

async fn roles_are_enforced(app: &TestApp) {
    let (_, viewer) = admin_with_role(app, "viewer1", "viewer").await;
    let (operator_id, operator) = admin_with_role(app, "operator1", "operator").await;
    let user = id(&create_ok(app, "/v1/admin/users", json!({"name": "u"})).await);
    let gw = app.store().gateway_by_name("gw-test").await.unwrap().id;
    let token_id = app.store().list_gateway_tokens(gw).await.unwrap()[0].id;
    let fake = Uuid::new_v4();

    // Viewers read everything but admins.
    for path in [
        "/v1/admin/users".to_owned(),
        format!("/v1/admin/users/{user}"),
        format!("/v1/admin/users/{user}/subscriptions"),
        "/v1/admin/plans".to_owned(),
        "/v1/admin/devices".to_owned(),
        "/v1/admin/regions".to_owned(),
        "/v1/admin/node-groups".to_owned(),
        "/v1/admin/nodes".to_owned(),
        "/v1/admin/sessions".to_owned(),
        "/v1/admin/usage".to_owned(),
        "/v1/admin/audit".to_owned(),
        "/v1/admin/gateways".to_owned(),
        format!("/v1/admin/gateways/{gw}/tokens"),
    ] {
        assert_eq!(
            call(with_token(app, &viewer, Method::GET, &path)).await.0,
            StatusCode::OK,
            "viewer GET {path}"
        );
        assert_eq!(
            call(with_token(app, &operator, Method::GET, &path)).await.0,
            StatusCode::OK,
            "operator GET {path}"
        );
    }
    // Every write is refused to viewers, before the body is read.
    let operator_writes: Vec<(Method, String)> = vec![
        (Method::POST, "/v1/admin/users".into()),
        (Method::PATCH, format!("/v1/admin/users/{user}")),
        (Method::DELETE, format!("/v1/admin/users/{user}")),
        (
            Method::POST,
            format!("/v1/admin/users/{user}/subscriptions"),
        ),
        (Method::POST, format!("/v1/admin/users/{user}/devices")),
        (Method::POST, "/v1/admin/plans".into()),
        (Method::PATCH, format!("/v1/admin/plans/{fake}")),
        (Method::DELETE, format!("/v1/admin/plans/{fake}")),
        (
            Method::POST,
            format!("/v1/admin/subscriptions/{fake}/cancel"),
        ),
        (
            Method::POST,
            format!("/v1/admin/subscriptions/{fake}/reset-usage"),
        ),
        (Method::PATCH, format!("/v1/admin/devices/{fake}")),
        (Method::DELETE, format!("/v1/admin/devices/{fake}")),
        (Method::POST, format!("/v1/admin/devices/{fake}/revoke")),
        (Method::POST, format!("/v1/admin/devices/{fake}/disable")),
        (Method::POST, format!("/v1/admin/devices/{fake}/enable")),
        (Method::POST, "/v1/admin/regions".into()),
        (Method::PATCH, format!("/v1/admin/regions/{fake}")),
        (Method::DELETE, format!("/v1/admin/regions/{fake}")),
        (Method::POST, "/v1/admin/node-groups".into()),
        (Method::PATCH, format!("/v1/admin/node-groups/{fake}")),
        (Method::DELETE, format!("/v1/admin/node-groups/{fake}")),
        (Method::POST, "/v1/admin/nodes".into()),
        (Method::POST, "/v1/admin/nodes/import".into()),
        (Method::PATCH, format!("/v1/admin/nodes/{fake}")),
        (Method::DELETE, format!("/v1/admin/nodes/{fake}")),
        (Method::POST, format!("/v1/admin/sessions/{fake}/end")),
    ];
    let admin_only: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/admin/admins".into()),
        (Method::POST, "/v1/admin/admins".into()),
        (Method::GET, format!("/v1/admin/admins/{operator_id}")),
        (Method::PATCH, format!("/v1/admin/admins/{operator_id}")),
        (Method::POST, "/v1/admin/gateways".into()),
        (Method::POST, format!("/v1/admin/gateways/{gw}/tokens")),
        (
            Method::DELETE,
            format!("/v1/admin/gateways/{gw}/tokens/{token_id}"),
        ),
    ];
    for (method, path) in operator_writes.iter().chain(&admin_only) {
        for body in ["{not json", "{\"name\": \"x\"}"] {
            let req = with_token(app, &viewer, method.clone(), path)
                .header("content-type", "application/json")
                .body(body);
            let detail = problem(call(req).await, StatusCode::FORBIDDEN, "forbidden");
            assert!(detail.contains("role"), "{detail}");
        }
    }
    for (method, path) in &admin_only {
        let req = with_token(app, &operator, method.clone(), path).json(&json!({"name": "x"}));
        problem(call(req).await, StatusCode::FORBIDDEN, "forbidden");
    }
    // Operators may write.
    ok(
        call(
            with_token(app, &operator, Method::POST, "/v1/admin/users")
                .json(&json!({"name": "by-operator"})),
        )
        .await,
        StatusCode::CREATED,
    );
    ok(
        call(
            with_token(app, &operator, Method::POST, "/v1/admin/regions")
                .json(&json!({"code": "r1", "name": "R1"})),
        )
        .await,
        StatusCode::CREATED,
    );
    problem(
        call(with_token(app, &operator, Method::POST, "/v1/admin/nodes").json(&json!({}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        audit_actions_any_actor(app, "region").await,
        [("region.create".to_owned(), "admin:operator1".to_owned())]
    );
    // Nothing was written by the refused calls.
    assert_eq!(
        get_ok(app, "/v1/admin/users")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(get_ok(app, "/v1/admin/plans").await, json!([]));
    assert_eq!(app.store().list_gateway_tokens(gw).await.unwrap().len(), 1);

    // A demotion takes effect on the next request, without a new login.
    patch_ok(
        app,
        &format!("/v1/admin/admins/{operator_id}"),
        json!({"role": "viewer"}),
    )
    .await;
    problem(
        call(
            with_token(app, &operator, Method::POST, "/v1/admin/users")
                .json(&json!({"name": "late"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        call(with_token(app, &operator, Method::GET, "/v1/admin/users"))
            .await
            .0,
        StatusCode::OK
    );
}

async fn audit_actions_any_actor(app: &TestApp, target_type: &str) -> Vec<(String, String)> {
    let entries = get_ok(app, &format!("/v1/admin/audit?target_type={target_type}")).await;
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn admins_are_managed_by_admins(app: &TestApp) {
    let root_id = app
        .store()
        .admin_credentials("root")
        .await
        .unwrap()
        .unwrap()
        .0
        .id
        .to_string();
    for (body, needle) in [
        (
            json!({"username": "eve", "password": "short", "role": "viewer"}),
            "at least 12",
        ),
        (
            json!({"username": "e ve", "password": "long enough password", "role": "viewer"}),
            "username",
        ),
        (
            json!({"username": "", "password": "long enough password", "role": "viewer"}),
            "username",
        ),
        (
            json!({"username": "eve", "password": "long enough password", "role": "god"}),
            "god",
        ),
    ] {
        invalid(post(app, "/v1/admin/admins", body).await, needle);
    }
    let eve = create_ok(
        app,
        "/v1/admin/admins",
        json!({"username": "eve", "password": "long enough password", "role": "operator"}),
    )
    .await;
    let eve_id = id(&eve);
    let eve_path = format!("/v1/admin/admins/{eve_id}");
    let root_path = format!("/v1/admin/admins/{root_id}");
    assert!(eve.get("password_hash").is_none() && eve.get("password").is_none());
    conflict(
        post(
            app,
            "/v1/admin/admins",
            json!({"username": "eve", "password": "long enough password", "role": "viewer"}),
        )
        .await,
    );
    let all = get_ok(app, "/v1/admin/admins").await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eve", "root"]);
    assert_eq!(get_ok(app, &eve_path).await["role"], "operator");
    not_found(get(app, &format!("/v1/admin/admins/{}", Uuid::new_v4())).await);
    not_found(
        patch(
            app,
            &format!("/v1/admin/admins/{}", Uuid::new_v4()),
            json!({"disabled": true}),
        )
        .await,
    );

    // Password change.
    invalid(
        patch(app, &eve_path, json!({"password": "short"})).await,
        "at least 12",
    );
    patch_ok(app, &eve_path, json!({"password": "a brand new password"})).await;
    problem(
        login(app, "eve", "long enough password").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    ok(
        login(app, "eve", "a brand new password").await,
        StatusCode::OK,
    );
    invalid(patch(app, &eve_path, json!({})).await, "nothing to change");
    let promoted = patch_ok(app, &eve_path, json!({"role": "admin"})).await;
    assert_eq!(promoted["role"], "admin");

    // Nobody can lock themself out.
    let detail = conflict(patch(app, &root_path, json!({"disabled": true})).await);
    assert!(detail.contains("disable yourself"), "{detail}");
    conflict(patch(app, &root_path, json!({"role": "operator"})).await);
    patch_ok(app, &root_path, json!({"role": "admin", "disabled": false})).await;
    // ... but another admin can.
    let eve_token = ok(
        login(app, "eve", "a brand new password").await,
        StatusCode::OK,
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let demoted = ok(
        call(
            with_token(app, &eve_token, Method::PATCH, &root_path)
                .json(&json!({"role": "operator"})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(demoted["role"], "operator");

    let entries = get_ok(
        app,
        &format!("/v1/admin/audit?target_type=admin&target_id={eve_id}"),
    )
    .await;
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["admin.create", "admin.update", "admin.update"]);
    let text = entries.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("brand new"),
        "no password material in the audit log: {text}"
    );
    let root_entries = ok(
        call(with_token(
            app,
            &eve_token,
            Method::GET,
            &format!("/v1/admin/audit?target_id={root_id}"),
        ))
        .await,
        StatusCode::OK,
    );
    assert!(root_entries
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"] == "admin:eve"));
}

// ---------------------------------------------------------------------------------------------
// Validation, not found, OpenAPI

async fn validation_is_precise_and_writes_nothing(app: &TestApp) {
    create_eu_region(app).await;
    let n = "/v1/admin/nodes";
    let pw = "pw";
    // Hosts.
    for host in [
        "999.1.1.1",
        "1.2.3",
        "2001:db8::zz",
        "[2001:db8::1",
        "-bad.example.com",
        "exa mple.com",
        "",
        "a..b",
        "[example.com]",
    ] {
        invalid(
            post(app, n, node_body(host, 80, "aes-256-gcm", pw)).await,
            "host",
        );
    }
    // Ports.
    for port in [0, 70_000, -1, 65_536] {
        invalid(
            post(app, n, node_body("192.0.2.1", port, "aes-256-gcm", pw)).await,
            "port must be between 1 and 65535",
        );
    }
    invalid(post(app, n, json!({"name": "n", "host": "192.0.2.1", "port": "80", "cipher": "aes-256-gcm", "secret": pw})).await, "port");
    invalid(post(app, n, json!({"name": "n", "host": "192.0.2.1", "port": 80.5, "cipher": "aes-256-gcm", "secret": pw})).await, "port");
    // Ciphers.
    let detail = problem(
        post(app, n, node_body("192.0.2.1", 80, "rc4", pw)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        detail.contains("\"rc4\"")
            && detail.contains("supported: chacha20-ietf-poly1305, aes-256-gcm"),
        "{detail}"
    );
    let detail = problem(
        post(app, n, node_body("192.0.2.1", 80, "blowfish-9000", pw)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        detail.starts_with("unknown cipher \"blowfish-9000\"; supported:"),
        "{detail}"
    );
    invalid(
        post(app, n, node_body("192.0.2.1", 80, "aes-192-gcm", pw)).await,
        "aes-192-gcm",
    );
    invalid(
        post(
            app,
            n,
            node_body(
                "192.0.2.1",
                80,
                "2022-blake3-aes-256-gcm",
                &STANDARD.encode([1u8; 16]),
            ),
        )
        .await,
        "must decode to 32 bytes, found 16",
    );
    invalid(
        post(
            app,
            n,
            node_body("192.0.2.1", 80, "2022-blake3-aes-128-gcm", "not base64 !!"),
        )
        .await,
        "base64",
    );
    invalid(
        post(app, n, node_body("192.0.2.1", 80, "aes-256-gcm", "")).await,
        "secret must not be empty",
    );
    // Numbers and references.
    let mut body = node_body("192.0.2.1", 80, "aes-256-gcm", pw);
    body["weight"] = json!(10_001);
    invalid(
        post(app, n, body.clone()).await,
        "weight must be between 0 and 10000",
    );
    body["weight"] = json!(1);
    body["capacity"] = json!(-1);
    invalid(
        post(app, n, body.clone()).await,
        "capacity must be between 0 and 1000000",
    );
    body["capacity"] = json!(1_000_001);
    invalid(
        post(app, n, body.clone()).await,
        "capacity must be between 0 and 1000000",
    );
    body["capacity"] = json!(1);
    body["region"] = json!("mars");
    invalid(post(app, n, body.clone()).await, "unknown region \"mars\"");
    body["region"] = json!(Uuid::new_v4().to_string());
    invalid(post(app, n, body.clone()).await, "unknown region");
    body["region"] = json!("eu");
    body["groups"] = json!([Uuid::new_v4()]);
    invalid(post(app, n, body.clone()).await, "unknown node group");
    body["groups"] = json!(["not-a-uuid"]);
    invalid(post(app, n, body.clone()).await, "groups");
    body["groups"] = json!([]);
    body["name"] = json!("x".repeat(65));
    invalid(
        post(app, n, body.clone()).await,
        "name must have at most 64 characters",
    );
    body["name"] = json!("  ");
    invalid(post(app, n, body.clone()).await, "name must not be empty");
    body["name"] = json!("n");
    body["status"] = json!("active");
    invalid(post(app, n, body.clone()).await, "status");
    // Nothing of this reached the store.
    assert_eq!(get_ok(app, n).await, json!([]));
    assert_eq!(
        get_ok(app, "/v1/admin/audit?target_type=node").await,
        json!([])
    );

    // Malformed bodies.
    problem(
        call(
            app.admin(Method::POST, n)
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_body",
    );
    problem(
        call(
            app.admin(Method::POST, n)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_body",
    );
    problem(
        call(app.admin(Method::POST, n).body("{}")).await,
        StatusCode::BAD_REQUEST,
        "malformed_body",
    );
    invalid(post(app, "/v1/admin/users", json!(["alice"])).await, "");
    invalid(
        post(
            app,
            "/v1/admin/users",
            json!({"name": "alice", "admin": true}),
        )
        .await,
        "admin",
    );
    invalid(
        post(app, "/v1/admin/users", json!({"name": 42})).await,
        "name",
    );

    // Plans.
    let p = "/v1/admin/plans";
    let plan = |patch: Value| {
        let mut b = json!({"name": "p", "device_limit": 1, "session_limit": 1});
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    invalid(
        post(app, p, plan(json!({"device_limit": 1001}))).await,
        "device_limit must be between 0 and 1000",
    );
    invalid(
        post(app, p, plan(json!({"device_limit": -1}))).await,
        "device_limit must be between 0 and 1000",
    );
    invalid(
        post(app, p, plan(json!({"session_limit": 5_000_000_000_i64}))).await,
        "session_limit must be between 0 and 1000",
    );
    invalid(
        post(app, p, plan(json!({"quota_bytes": -5}))).await,
        "quota_bytes must be at least 0",
    );
    invalid(
        post(app, p, plan(json!({"duration_days": 0}))).await,
        "duration_days must be between 1 and 3650",
    );
    invalid(
        post(app, p, plan(json!({"duration_days": 3651}))).await,
        "duration_days must be between 1 and 3650",
    );
    invalid(
        post(app, p, plan(json!({"reset_strategy": "yearly"}))).await,
        "yearly",
    );
    invalid(
        post(app, p, plan(json!({"name": ""}))).await,
        "name must not be empty",
    );
    invalid(
        post(app, p, plan(json!({"name": "é".repeat(65)}))).await,
        "at most 64",
    );
    invalid(
        post(app, p, plan(json!({"allowed_regions": ["EU"]}))).await,
        "region code",
    );
    invalid(
        post(app, p, plan(json!({"allowed_regions": ["eu", "asia"]}))).await,
        "\"asia\"",
    );
    invalid(
        post(app, p, plan(json!({"quota_bytes": 1e30}))).await,
        "quota_bytes",
    );
    assert_eq!(get_ok(app, p).await, json!([]));
    let created = create_ok(app, p, plan(json!({"name": "é".repeat(64), "duration_days": 3650, "device_limit": 1000, "quota_bytes": 0}))).await;
    invalid(
        patch(
            app,
            &format!("{p}/{}", id(&created)),
            json!({"duration_days": 0}),
        )
        .await,
        "duration_days",
    );
    invalid(
        patch(app, &format!("{p}/{}", id(&created)), json!({})).await,
        "nothing to change",
    );

    // Users.
    let u = "/v1/admin/users";
    for email in [
        "not-an-email",
        "a@b",
        "@example.com",
        "a@.com",
        "a b@example.com",
        "a@example..com",
    ] {
        invalid(
            post(app, u, json!({"name": "x", "email": email})).await,
            "email",
        );
    }
    invalid(
        post(
            app,
            u,
            json!({"name": "x", "email": format!("{}@example.com", "a".repeat(250))}),
        )
        .await,
        "254",
    );
    invalid(
        post(app, u, json!({"name": "tab\tname"})).await,
        "control characters",
    );
    invalid(
        post(app, u, json!({"name": "nul\u{0}name"})).await,
        "control characters",
    );
    invalid(get(app, "/v1/admin/users?limit=0").await, "limit");
    invalid(get(app, "/v1/admin/users?limit=1001").await, "limit");
    invalid(get(app, "/v1/admin/users?limit=abc").await, "limit");
    invalid(get(app, "/v1/admin/users?offset=-1").await, "offset");
    let detail = problem(
        get(app, "/v1/admin/users?sort=name").await,
        StatusCode::BAD_REQUEST,
        "unknown_parameter",
    );
    assert!(
        detail.contains("\"sort\"") && detail.contains("limit, offset"),
        "{detail}"
    );

    // Regions.
    let r = "/v1/admin/regions";
    for code in ["EU", "eu_west", "", &"a".repeat(33), "eu west"] {
        invalid(
            post(app, r, json!({"code": code, "name": "x"})).await,
            "region code",
        );
    }
    invalid(
        post(
            app,
            r,
            json!({"code": "x", "name": "x", "latitude": 90.5, "longitude": 0}),
        )
        .await,
        "latitude must be between -90 and 90",
    );
    invalid(
        post(
            app,
            r,
            json!({"code": "x", "name": "x", "latitude": 0, "longitude": -180.01}),
        )
        .await,
        "longitude must be between -180 and 180",
    );
    invalid(
        post(app, r, json!({"code": "x", "name": "x", "latitude": 1})).await,
        "both latitude and longitude",
    );

    // Usage, sessions, audit and gateway queries.
    invalid(
        get(app, "/v1/admin/usage?from=10&to=10").await,
        "from must be before to",
    );
    invalid(
        get(app, "/v1/admin/usage?granularity=hour&from=0&to=2764800001").await,
        "at most 31 days",
    );
    invalid(
        get(app, "/v1/admin/usage?granularity=day&from=0&to=31708800001").await,
        "at most 366 days",
    );
    get_ok(app, "/v1/admin/usage?granularity=day&from=0&to=31622400000").await;
    invalid(get(app, "/v1/admin/usage?by=planet").await, "planet");
    invalid(
        get(app, "/v1/admin/usage?granularity=minute").await,
        "minute",
    );
    invalid(get(app, "/v1/admin/usage?key=abc").await, "key");
    invalid(get(app, "/v1/admin/usage?from=-5&to=10").await, "Unix");
    invalid(get(app, "/v1/admin/sessions?limit=0").await, "limit");
    invalid(get(app, "/v1/admin/sessions?live=maybe").await, "live");
    invalid(get(app, "/v1/admin/sessions?user_id=42").await, "user_id");
    invalid(get(app, "/v1/admin/audit?limit=5000").await, "limit");
    invalid(get(app, "/v1/admin/audit?since=yesterday").await, "since");
    invalid(get(app, "/v1/admin/devices?user_id=bob").await, "user_id");
    invalid(
        post(app, "/v1/admin/gateways", json!({"name": ""})).await,
        "name",
    );
    invalid(post(app, "/v1/admin/gateways", json!({})).await, "name");
    let gw = app.store().gateway_by_name("gw-test").await.unwrap().id;
    invalid(
        post(
            app,
            &format!("/v1/admin/gateways/{gw}/tokens"),
            json!({"overlap": 5}),
        )
        .await,
        "overlap",
    );
    assert_eq!(
        app.store().list_gateway_tokens(gw).await.unwrap().len(),
        1,
        "no token was issued"
    );

    // Devices.
    let user = id(&create_ok(app, u, json!({"name": "dave"})).await);
    invalid(
        post(app, &format!("{u}/{user}/devices"), json!({"name": ""})).await,
        "name",
    );
    invalid(
        post(
            app,
            &format!("{u}/{user}/devices"),
            json!({"name": "x", "token": "mine"}),
        )
        .await,
        "token",
    );
    assert_eq!(get_ok(app, "/v1/admin/devices").await, json!([]));
}

async fn not_found_and_malformed_ids(app: &TestApp) {
    let x = Uuid::new_v4();
    for (method, path) in [
        (Method::GET, format!("/v1/admin/users/{x}")),
        (Method::PATCH, format!("/v1/admin/users/{x}")),
        (Method::DELETE, format!("/v1/admin/users/{x}")),
        (Method::GET, format!("/v1/admin/users/{x}/subscriptions")),
        (Method::GET, format!("/v1/admin/users/{x}/quota")),
        (Method::GET, format!("/v1/admin/plans/{x}")),
        (Method::PATCH, format!("/v1/admin/plans/{x}")),
        (Method::DELETE, format!("/v1/admin/plans/{x}")),
        (Method::GET, format!("/v1/admin/subscriptions/{x}")),
        (Method::POST, format!("/v1/admin/subscriptions/{x}/cancel")),
        (
            Method::POST,
            format!("/v1/admin/subscriptions/{x}/reset-usage"),
        ),
        (Method::GET, format!("/v1/admin/devices/{x}")),
        (Method::PATCH, format!("/v1/admin/devices/{x}")),
        (Method::DELETE, format!("/v1/admin/devices/{x}")),
        (Method::POST, format!("/v1/admin/devices/{x}/revoke")),
        (Method::POST, format!("/v1/admin/devices/{x}/disable")),
        (Method::POST, format!("/v1/admin/devices/{x}/enable")),
        (Method::GET, format!("/v1/admin/regions/{x}")),
        (Method::PATCH, format!("/v1/admin/regions/{x}")),
        (Method::DELETE, format!("/v1/admin/regions/{x}")),
        (Method::GET, format!("/v1/admin/node-groups/{x}")),
        (Method::PATCH, format!("/v1/admin/node-groups/{x}")),
        (Method::DELETE, format!("/v1/admin/node-groups/{x}")),
        (Method::GET, format!("/v1/admin/nodes/{x}")),
        (Method::PATCH, format!("/v1/admin/nodes/{x}")),
        (Method::DELETE, format!("/v1/admin/nodes/{x}")),
        (Method::GET, format!("/v1/admin/nodes/{x}/health")),
        (Method::GET, format!("/v1/admin/sessions/{x}")),
        (Method::POST, format!("/v1/admin/sessions/{x}/end")),
        (Method::GET, format!("/v1/admin/gateways/{x}")),
        (Method::GET, format!("/v1/admin/gateways/{x}/tokens")),
        (Method::POST, format!("/v1/admin/gateways/{x}/tokens")),
        (Method::DELETE, format!("/v1/admin/gateways/{x}/tokens/{x}")),
        (Method::GET, format!("/v1/admin/admins/{x}")),
    ] {
        // A valid body for each PATCH, so that only the id is wrong.
        let body = match path.split('/').nth(3).unwrap_or_default() {
            "users" | "devices" | "node-groups" | "nodes" | "regions" | "plans" => {
                json!({"name": "valid"})
            }
            _ => json!({}),
        };
        let req = app.admin(method.clone(), &path);
        let req = if method == Method::PATCH || path.ends_with("/tokens") {
            req.json(&body)
        } else {
            req
        };
        not_found(call(req).await);
        // A malformed id is a validation problem.
        let bad = path.replacen(&x.to_string(), "not-a-uuid", 1);
        let req = app.admin(method.clone(), &bad);
        let req = if method == Method::PATCH || path.ends_with("/tokens") {
            req.json(&body)
        } else {
            req
        };
        invalid(call(req).await, "bad path parameter");
    }
    not_found(get(app, "/v1/admin/nothing-here").await);
    let user = id(&create_ok(app, "/v1/admin/users", json!({"name": "q"})).await);
    let detail = not_found(get(app, &format!("/v1/admin/users/{user}/quota")).await);
    assert!(detail.contains("subscription"), "{detail}");
}

/// Issue 14 item 5: every list takes `limit` and `offset` (they were unbounded), and every list
/// answers an unknown query parameter alike: 400 `unknown_parameter` naming it (some ignored it,
/// others answered 422).
async fn every_list_pages_and_refuses_unknown_parameters(app: &TestApp) {
    for i in 0..3 {
        create_ok(
            app,
            "/v1/admin/plans",
            json!({"name": format!("plan-{i}"), "device_limit": 1, "session_limit": 1}),
        )
        .await;
        create_ok(
            app,
            "/v1/admin/regions",
            json!({"code": format!("r-{i}"), "name": format!("R {i}")}),
        )
        .await;
        create_ok(
            app,
            "/v1/admin/node-groups",
            json!({"name": format!("group-{i}")}),
        )
        .await;
        create_ok(
            app,
            "/v1/admin/gateways",
            json!({"name": format!("gw-{i}")}),
        )
        .await;
        let user =
            id(&create_ok(app, "/v1/admin/users", json!({"name": format!("user-{i}")})).await);
        create_ok(
            app,
            &format!("/v1/admin/users/{user}/devices"),
            json!({"name": "phone"}),
        )
        .await;
    }
    let pages = |list: &'static str, key: &'static str| async move {
        let all = get_ok(app, &format!("{list}?limit=1000")).await;
        let all: Vec<Value> = all.as_array().unwrap().clone();
        assert!(all.len() >= 3, "{list}: {all:?}");
        let first = get_ok(app, &format!("{list}?limit=2")).await;
        let second = get_ok(app, &format!("{list}?limit=2&offset=2")).await;
        let paged: Vec<Value> = first
            .as_array()
            .unwrap()
            .iter()
            .chain(second.as_array().unwrap())
            .cloned()
            .collect();
        assert_eq!(
            paged.iter().map(|v| v[key].clone()).collect::<Vec<_>>(),
            all.iter()
                .take(4)
                .map(|v| v[key].clone())
                .collect::<Vec<_>>(),
            "{list}: two pages are the first rows in order"
        );
        invalid(get(app, &format!("{list}?limit=0")).await, "limit");
        invalid(get(app, &format!("{list}?offset=-1")).await, "offset");
        let detail = problem(
            get(app, &format!("{list}?colour=red")).await,
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
        );
        assert!(detail.contains("\"colour\""), "{list}: {detail}");
    };
    for (list, key) in [
        ("/v1/admin/plans", "name"),
        ("/v1/admin/regions", "code"),
        ("/v1/admin/node-groups", "name"),
        ("/v1/admin/gateways", "name"),
        ("/v1/admin/users", "name"),
        ("/v1/admin/devices", "id"),
        ("/v1/admin/audit", "id"),
    ] {
        pages(list, key).await;
    }
    for list in [
        "/v1/admin/nodes",
        "/v1/admin/sessions",
        "/v1/admin/gateways/live",
        "/v1/admin/admins",
    ] {
        let detail = problem(
            get(app, &format!("{list}?colour=red")).await,
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
        );
        assert!(detail.contains("colour"), "{list}: {detail}");
    }
    assert_eq!(
        get_ok(app, "/v1/admin/nodes?limit=1&offset=5").await,
        json!([])
    );
}

async fn openapi_lists_the_admin_paths(app: &TestApp) {
    let doc = ok(
        call(app.http.get(app.url("/openapi.json"))).await,
        StatusCode::OK,
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/admin/login",
        "/v1/admin/admins",
        "/v1/admin/admins/{id}",
        "/v1/admin/users",
        "/v1/admin/users/{id}",
        "/v1/admin/users/{id}/subscriptions",
        "/v1/admin/users/{id}/devices",
        "/v1/admin/users/{id}/quota",
        "/v1/admin/plans/{id}",
        "/v1/admin/subscriptions/{id}/cancel",
        "/v1/admin/subscriptions/{id}/reset-usage",
        "/v1/admin/devices",
        "/v1/admin/devices/{id}/revoke",
        "/v1/admin/devices/{id}/link",
        "/v1/admin/devices/{id}/rotate-token",
        "/v1/admin/devices/{id}/subscription-url",
        "/v1/admin/devices/{id}/subscription-url/rotate",
        "/sub/{token}",
        "/v1/admin/regions/{id}",
        "/v1/admin/node-groups/{id}",
        "/v1/admin/nodes",
        "/v1/admin/nodes/import",
        "/v1/admin/nodes/{id}/health",
        "/v1/admin/sessions",
        "/v1/admin/sessions/{id}/end",
        "/v1/admin/usage",
        "/v1/admin/audit",
        "/v1/admin/gateways",
        "/v1/admin/gateways/live",
        "/v1/admin/gateways/{id}/tokens",
        "/v1/admin/gateways/{id}/tokens/{token_id}",
        "/v1/gateway/devices/validate",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        paths
            .keys()
            .all(|p| p.starts_with('/') && !p.starts_with("//")),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        paths.keys().filter(|p| p.starts_with("/v1/admin/")).count(),
        43
    );
    assert!(
        paths["/v1/admin/users/{id}"].get("patch").is_some()
            && paths["/v1/admin/users/{id}"].get("delete").is_some()
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "CreatedDevice",
        "CreateNode",
        "ImportNode",
        "UpdatePlan",
        "IssuedToken",
        "UserQuota",
        "QuotaStatus",
        "LiveGateway",
        "Problem",
        "LoginRequest",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert!(
        schemas["Node"]["properties"].get("secret").is_none(),
        "the node schema has no secret"
    );
}

// ---------------------------------------------------------------------------------------------
// Hammer

async fn bad_inputs_never_produce_a_5xx(app: &TestApp) {
    // Real rows, so that bad bodies also reach existing resources.
    create_eu_region(app).await;
    let user = id(&create_ok(app, "/v1/admin/users", json!({"name": "target"})).await);
    let plan = id(&create_ok(
        app,
        "/v1/admin/plans",
        json!({"name": "p", "device_limit": 5, "session_limit": 5}),
    )
    .await);
    let sub = id(&create_ok(
        app,
        &format!("/v1/admin/users/{user}/subscriptions"),
        json!({"plan_id": plan}),
    )
    .await);
    let device = create_device(app, &user, "d").await;
    let group = id(&create_ok(app, "/v1/admin/node-groups", json!({"name": "g"})).await);
    let node = id(&create_ok(
        app,
        "/v1/admin/nodes",
        node_body("192.0.2.1", 80, "aes-256-gcm", "pw"),
    )
    .await);
    let region = get_ok(app, "/v1/admin/regions").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gw = app
        .store()
        .gateway_by_name("gw-test")
        .await
        .unwrap()
        .id
        .to_string();
    let admin = create_ok(
        app,
        "/v1/admin/admins",
        json!({"username": "other", "password": "long enough password", "role": "viewer"}),
    )
    .await;
    let admin = id(&admin);

    let ids = [
        user.clone(),
        "not-a-uuid".to_owned(),
        Uuid::nil().to_string(),
        "%00".to_owned(),
        "x".repeat(300),
        "..%2F..%2Fetc".to_owned(),
    ];
    let mut routes: Vec<(Method, String)> = vec![
        (Method::POST, "/v1/admin/login".into()),
        (Method::POST, "/v1/admin/admins".into()),
        (Method::POST, "/v1/admin/users".into()),
        (Method::POST, "/v1/admin/plans".into()),
        (Method::POST, "/v1/admin/regions".into()),
        (Method::POST, "/v1/admin/node-groups".into()),
        (Method::POST, "/v1/admin/nodes".into()),
        (Method::POST, "/v1/admin/nodes/import".into()),
        (Method::POST, "/v1/admin/gateways".into()),
        (Method::PATCH, format!("/v1/admin/admins/{admin}")),
        (Method::PATCH, format!("/v1/admin/users/{user}")),
        (
            Method::POST,
            format!("/v1/admin/users/{user}/subscriptions"),
        ),
        (Method::POST, format!("/v1/admin/users/{user}/devices")),
        (Method::PATCH, format!("/v1/admin/plans/{plan}")),
        (Method::PATCH, format!("/v1/admin/devices/{device}")),
        (Method::PATCH, format!("/v1/admin/regions/{region}")),
        (Method::PATCH, format!("/v1/admin/node-groups/{group}")),
        (Method::PATCH, format!("/v1/admin/nodes/{node}")),
        (Method::POST, format!("/v1/admin/gateways/{gw}/tokens")),
        (
            Method::POST,
            format!("/v1/admin/subscriptions/{sub}/reset-usage"),
        ),
    ];
    for bad_id in &ids {
        for template in [
            "/v1/admin/users/{}",
            "/v1/admin/plans/{}",
            "/v1/admin/devices/{}/disable",
            "/v1/admin/nodes/{}/health",
            "/v1/admin/sessions/{}/end",
            "/v1/admin/gateways/{}/tokens/{}",
            "/v1/admin/regions/{}",
        ] {
            let path = template.replace("{}", bad_id);
            routes.push((Method::GET, path.clone()));
            routes.push((Method::PATCH, path.clone()));
            routes.push((Method::POST, path));
        }
    }
    // Over every length limit, yet small enough to be written whole even when the server
    // answers before reading the body.
    let long = "y".repeat(1_100);
    let bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "\"text\"".into(),
        "42".into(),
        "{".into(),
        "{}".into(),
        "{\"name\": null}".into(),
        "{\"name\": 1}".into(),
        "{\"name\": \"\\u0000\"}".into(),
        "{\"name\": \"ok\", \"extra\": 1}".into(),
        format!("{{\"name\": \"{long}\", \"code\": \"{long}\", \"username\": \"{long}\", \"password\": \"{long}\", \"email\": \"{long}\", \"description\": \"{long}\"}}"),
        "{\"name\": \"n\", \"host\": \"\\u0000\", \"port\": 99999999999999999999, \"cipher\": \"\\u0000\", \"secret\": \"\\u0000\"}".into(),
        "{\"name\": \"n\", \"host\": \"1.2.3.4\", \"port\": -9223372036854775808, \"cipher\": \"none\", \"secret\": \"x\", \"weight\": 9223372036854775807, \"capacity\": -9223372036854775808}".into(),
        "{\"name\": \"n\", \"device_limit\": 1e400, \"session_limit\": 1}".into(),
        "{\"name\": \"n\", \"device_limit\": 1, \"session_limit\": 1, \"quota_bytes\": -9223372036854775808, \"duration_days\": 9223372036854775807, \"allowed_regions\": [\"\\u0000\", null, 5]}".into(),
        "{\"code\": \"ok\", \"name\": \"n\", \"latitude\": 1e308, \"longitude\": -1e308}".into(),
        "{\"access_key\": \"ss://%00%00@1.2.3.4:1\"}".into(),
        format!("{{\"access_key\": \"ss://{}@1.2.3.4:5#\\u0000\"}}", URL_SAFE_NO_PAD.encode("aes-256-gcm:pw\u{0}x")),
        format!("{{\"access_key\": \"ss://{}\"}}", STANDARD.encode("aes-256-gcm:p@[::1]:99999")),
        "{\"access_key\": \"ss://\"}".into(),
        "{\"plan\": \"\\u0000\"}".into(),
        "{\"plan_id\": \"\\u0000\"}".into(),
        "{\"region\": \"\\u0000\", \"groups\": [\"\\u0000\"]}".into(),
        "{\"username\": \"\\u0000\", \"password\": \"\\u0000\"}".into(),
        "{\"username\": \"root\", \"password\": \"\\u0000\", \"role\": \"admin\"}".into(),
        "{\"role\": \"admin\", \"disabled\": \"yes\"}".into(),
        "{\"status\": \"deleted\"}".into(),
        "{\"overlap_secs\": 9223372036854775807}".into(),
        "{\"email\": \"a@b.c\\u0000\"}".into(),
        format!("{}1{}", "[".repeat(1_000), "]".repeat(1_000)),
        "\u{feff}{}".into(),
    ];
    let mut seen = 0usize;
    for (i, (method, path)) in routes.iter().enumerate() {
        // Routes with a bad id fail before their body is read: a few bodies are enough there.
        let bodies = if i < 20 { &bodies[..] } else { &bodies[..8] };
        for body in bodies {
            for content_type in ["application/json", "text/plain"] {
                let req = app
                    .admin(method.clone(), path)
                    .header("content-type", content_type)
                    .body(body.clone());
                let resp = req.send().await.expect("request sent");
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                assert!(
                    !status.is_server_error(),
                    "{method} {path} with {:?}: {status} {text}",
                    body.chars().take(120).collect::<String>()
                );
                seen += 1;
            }
        }
    }
    // Raw invalid UTF-8 and odd queries.
    for (method, path) in routes.iter().take(20) {
        let resp = app
            .admin(method.clone(), path)
            .header("content-type", "application/json")
            .body(vec![0xff_u8, 0xfe, b'{', 0x80])
            .send()
            .await
            .unwrap();
        assert!(
            !resp.status().is_server_error(),
            "{method} {path}: {}",
            resp.status()
        );
    }
    for query in [
        "/v1/admin/users?limit=9223372036854775807&offset=9223372036854775807",
        "/v1/admin/users?limit=-9223372036854775808",
        "/v1/admin/usage?from=9223372036854775806&to=9223372036854775807",
        "/v1/admin/usage?from=0&to=9223372036854775807",
        "/v1/admin/usage?granularity=hour&to=-1",
        "/v1/admin/audit?target_type=%00&target_id=%00",
        "/v1/admin/audit?since=9223372036854775807&limit=1",
        "/v1/admin/audit?since=-9223372036854775808",
        "/v1/admin/sessions?live=true&live=false",
        "/v1/admin/devices?user_id=%00",
        "/v1/admin/nodes/import?x=%ZZ",
        "/v1/admin/nodes?%%%%",
    ] {
        let (status, body) = get(app, query).await;
        assert!(!status.is_server_error(), "GET {query}: {status} {body}");
        seen += 1;
    }
    assert!(seen > 2000, "{seen} requests");
    // The service is still healthy and the fixtures are intact or properly gone.
    assert_eq!(
        call(app.http.get(app.url("/readyz"))).await.0,
        StatusCode::OK
    );
    ok(login(app, "root", ADMIN_PASSWORD).await, StatusCode::OK);
}
