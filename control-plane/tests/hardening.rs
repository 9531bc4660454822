//! Limits and refusals that must hold under concurrency and hostile input, through the real HTTP
//! server on SQLite and on the real PostgreSQL: the device limit under parallel creations, bad
//! text (NUL bytes) and optional coordinates that PostgreSQL refuses, admin and gateway
//! authentication hardening, and the server's own timeout and concurrency limit.

mod common;

use common::app::{call, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[path = "../../common/test-support/ports.rs"]
mod ports;
use ports::free_port;

on_both_backends!(
    device_limit_holds_under_parallel_creations,
    nul_text_in_gateway_fields_is_a_4xx,
    regions_alternate_with_and_without_coordinates,
    gateway_routes_never_answer_5xx_to_bad_input,
    a_password_change_ends_older_tokens,
    gateway_tokens_carry_an_address_allow_list,
);

async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    call(app.admin(method, path).json(&body)).await
}

/// POSTs as the admin, asserts 201 Created and returns the new resource's id.
async fn create(app: &TestApp, path: &str, body: Value) -> String {
    created_id(send(app, Method::POST, path, body).await)
}

#[track_caller]
fn created_id(resp: (StatusCode, Value)) -> String {
    assert_eq!(resp.0, StatusCode::CREATED, "{}", resp.1);
    resp.1["id"].as_str().expect("an id").to_owned()
}

/// Issue 15 item 3: 20 parallel creations for a plan allowing 3 devices create exactly 3, in
/// every round (PostgreSQL used to create 3 to 13: count, then insert, without a lock).
async fn device_limit_holds_under_parallel_creations(app: &TestApp) {
    let plan = create(
        app,
        "/v1/admin/plans",
        json!({"name": "three", "device_limit": 3, "session_limit": 3}),
    )
    .await;
    for round in 0..5 {
        let user = create(app, "/v1/admin/users", json!({"name": format!("u{round}")})).await;
        create(
            app,
            &format!("/v1/admin/users/{user}/subscriptions"),
            json!({"plan_id": plan}),
        )
        .await;
        let attempts = (0..20).map(|i| {
            let req = app
                .admin(Method::POST, &format!("/v1/admin/users/{user}/devices"))
                .json(&json!({"name": format!("d{i}")}));
            async move { call(req).await }
        });
        let answers = futures_join_all(attempts).await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        for (status, body) in &answers {
            assert!(
                *status == StatusCode::CREATED
                    || (*status == StatusCode::CONFLICT && body["code"] == "conflict"),
                "round {round}: {status} {body}"
            );
        }
        let (_, listed) =
            call(app.admin(Method::GET, &format!("/v1/admin/devices?user_id={user}"))).await;
        let listed = listed.as_array().map_or(0, Vec::len);
        assert_eq!(
            (created, listed),
            (3, 3),
            "round {round}: the plan allows 3 devices"
        );
    }
}

/// Runs the futures concurrently (each on its own task) and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// A user with a plan allowing everything and one device; returns (user, device).
async fn subscriber(app: &TestApp, tag: &str) -> (String, String) {
    let plan = create(
        app,
        "/v1/admin/plans",
        json!({"name": format!("plan-{tag}"), "device_limit": 5, "session_limit": 5}),
    )
    .await;
    let user = create(app, "/v1/admin/users", json!({"name": tag})).await;
    create(
        app,
        &format!("/v1/admin/users/{user}/subscriptions"),
        json!({"plan_id": plan}),
    )
    .await;
    let (status, device) = send(
        app,
        Method::POST,
        &format!("/v1/admin/users/{user}/devices"),
        json!({"name": "d"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let device = device["device"]["id"].as_str().unwrap().to_owned();
    (user, device)
}

#[track_caller]
fn client_error(resp: (StatusCode, Value), what: &str) {
    assert!(resp.0.is_client_error(), "{what}: {} {}", resp.0, resp.1);
    assert!(
        resp.1["code"].is_string(),
        "{what}: not a problem document: {}",
        resp.1
    );
}

/// Issue 15 item 13: NUL characters in text the gateway API stores were 500s on PostgreSQL
/// (SQLite stored them). Every one is a 4xx problem on both databases, and nothing is stored.
async fn nul_text_in_gateway_fields_is_a_4xx(app: &TestApp) {
    let (_, device) = subscriber(app, "nul").await;
    let unknown = uuid::Uuid::new_v4();
    client_error(
        call(
            app.gateway(Method::POST, &format!("/v1/gateway/sessions/{unknown}/end"))
                .json(&json!({"reason": "client\u{0}closed"})),
        )
        .await,
        "end reason of an unknown session",
    );
    client_error(
        call(
            app.gateway(Method::POST, "/v1/gateway/heartbeat")
                .json(&json!({"version": "1.0\u{0}"})),
        )
        .await,
        "heartbeat version",
    );
    client_error(
        call(
            app.gateway(Method::POST, "/v1/gateway/usage")
                .json(&json!({"report_id": "r\u{0}1", "records": []})),
        )
        .await,
        "usage report_id",
    );
    let session = uuid::Uuid::new_v4();
    client_error(
        call(
            app.gateway(Method::POST, "/v1/gateway/sessions")
                .json(&json!({
                    "session_id": session, "device_id": device, "client_region": "eu\u{0}"
                })),
        )
        .await,
        "client_region",
    );
    // The same session with clean text starts normally: nothing half-written is in the way.
    let (status, body) = call(
        app.gateway(Method::POST, "/v1/gateway/sessions")
            .json(&json!({
                "session_id": session, "device_id": device, "client_region": "eu"
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    client_error(
        call(
            app.gateway(Method::POST, &format!("/v1/gateway/sessions/{session}/end"))
                .json(&json!({"reason": "\u{0}"})),
        )
        .await,
        "end reason of a live session",
    );
    // Device validation answers a NUL token like any wrong one: a denial, not an error.
    let (status, body) = call(
        app.gateway(Method::POST, "/v1/gateway/devices/validate")
            .json(&json!({"device_id": device, "device_token": "\u{0}", "region": "\u{0}"})),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::OK, &json!("auth_failed")),
        "{body}"
    );
    // Admin text, queries and paths too.
    client_error(
        send(
            app,
            Method::POST,
            "/v1/admin/users",
            json!({"name": "a\u{0}b"}),
        )
        .await,
        "user name",
    );
    client_error(
        call(app.admin(Method::GET, "/v1/admin/audit?target_type=%00")).await,
        "audit query",
    );
}

/// Issue 15 item 13: creating and patching regions alternately with and without coordinates
/// gave 500 "incorrect binary data format in bind parameter 4" on PostgreSQL.
async fn regions_alternate_with_and_without_coordinates(app: &TestApp) {
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = if i % 2 == 0 {
            json!({"code": format!("r{i}"), "name": "R", "latitude": 50.25, "longitude": -8.5})
        } else {
            json!({"code": format!("r{i}"), "name": "R"})
        };
        let (status, region) = send(app, Method::POST, "/v1/admin/regions", body).await;
        assert_eq!(status, StatusCode::CREATED, "create {i}: {region}");
        if i % 2 == 0 {
            assert_eq!(
                (region["latitude"].as_f64(), region["longitude"].as_f64()),
                (Some(50.25), Some(-8.5))
            );
        } else {
            assert!(
                region["latitude"].is_null() && region["longitude"].is_null(),
                "{region}"
            );
        }
        ids.push(region["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let body = if i % 2 == 0 {
            json!({"latitude": null, "longitude": null})
        } else {
            json!({"latitude": -33.5, "longitude": 151.25})
        };
        let (status, region) =
            send(app, Method::PATCH, &format!("/v1/admin/regions/{id}"), body).await;
        assert_eq!(status, StatusCode::OK, "patch {i}: {region}");
        if i % 2 == 0 {
            assert!(region["latitude"].is_null(), "{region}");
        } else {
            assert_eq!(region["longitude"].as_f64(), Some(151.25), "{region}");
        }
    }
}

/// Bad bodies on every gateway route: 4xx problems, never a 5xx, on both databases.
async fn gateway_routes_never_answer_5xx_to_bad_input(app: &TestApp) {
    let (_, device) = subscriber(app, "fuzz").await;
    let session = uuid::Uuid::new_v4();
    let routes = [
        "/v1/gateway/devices/validate".to_owned(),
        "/v1/gateway/nodes/assign".to_owned(),
        "/v1/gateway/sessions".to_owned(),
        format!("/v1/gateway/sessions/{session}/heartbeat"),
        format!("/v1/gateway/sessions/{session}/end"),
        "/v1/gateway/sessions/%00/end".to_owned(),
        "/v1/gateway/usage".to_owned(),
        "/v1/gateway/heartbeat".to_owned(),
    ];
    let nul = r"\u0000";
    let bodies = [
        String::new(),
        "{".into(),
        "[]".into(),
        "{}".into(),
        format!(r#"{{"device_id": "{nul}", "device_token": "{nul}", "region": "{nul}"}}"#),
        format!(r#"{{"device_id": "{device}", "region": "{nul}", "exclude": ["{nul}"]}}"#),
        format!(r#"{{"session_id": "{session}", "device_id": "{device}", "node_id": null, "client_region": "{nul}{nul}"}}"#),
        format!(r#"{{"session_id": "{session}", "device_id": "{device}", "client_region": "{}"}}"#, "x".repeat(5000)),
        format!(r#"{{"reason": "{nul}"}}"#),
        format!(r#"{{"reason": "a\\{nul}"}}"#),
        format!(r#"{{"version": "{nul}"}}"#),
        format!(r#"{{"report_id": "{nul}", "records": [{{"device_id": "{device}", "bytes_up": 1, "bytes_down": 1, "at": 1}}]}}"#),
        format!(r#"{{"report_id": "r", "records": [{{"device_id": "{device}", "session_id": "{nul}", "bytes_up": -1, "bytes_down": 1e400, "at": 1}}]}}"#),
        r#"{"report_id": "r", "records": [{"device_id": "00000000-0000-0000-0000-000000000000", "bytes_up": 1, "bytes_down": 1, "at": 9223372036854775807}]}"#.into(),
    ];
    let mut seen = 0;
    for route in &routes {
        for body in &bodies {
            let resp = app
                .gateway(Method::POST, route)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("request sent");
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            assert!(
                !status.is_server_error(),
                "POST {route} {body}: {status} {text}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, routes.len() * bodies.len());
    let (status, _) = call(app.http.get(app.url("/readyz"))).await;
    assert_eq!(status, StatusCode::OK);
}

/// Sends a login request whose body never arrives in full.
async fn stalled_request(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = app.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        b"POST /v1/admin/login HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\": \"ro",
    )
    .await
    .expect("write");
    s
}

/// The status line and body of the answer on a raw connection.
async fn raw_answer(mut s: tokio::net::TcpStream) -> (u16, Value) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Issue 15 item 15 (control plane): no timeout or concurrency limit on the HTTP server. A
/// request whose body stalls ends with a 408 problem after `--request-timeout`; beyond
/// `--max-concurrent-requests` in progress, the next request gets a 503 problem at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_and_excess_ones_are_refused() {
    // The stalled requests hold both slots until their deadline: 15 s leaves a loaded machine
    // (CI beside benchmarks and other builds; 5 s was seen to run out at load 8) time to see the
    // third refused before the slots free again.
    let app = TestApp::with_db(common::TestDb::sqlite().await, |c| {
        c.request_timeout = std::time::Duration::from_secs(15);
        c.max_concurrent_requests = 2;
    })
    .await;
    let started = std::time::Instant::now();
    let stalled = [stalled_request(&app).await, stalled_request(&app).await];
    // Both are in progress (reading their bodies) once the server has read their headers; until
    // then a request may still be served.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = call(
            app.http
                .get(app.url("/v1/admin/regions"))
                .bearer_auth(&app.admin_token),
        )
        .await;
        if status != StatusCode::OK || std::time::Instant::now() >= deadline {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "overloaded", "{body}");
    for s in stalled {
        let (status, body) =
            tokio::time::timeout(std::time::Duration::from_secs(30), raw_answer(s))
                .await
                .expect("the stalled request is answered, not left hanging");
        assert_eq!(status, 408, "{body}");
        assert_eq!(body["code"], "request_timeout", "{body}");
    }
    println!(
        "stalled requests answered 408 after {:?}",
        started.elapsed()
    );
    let (status, body) = call(
        app.http
            .get(app.url("/v1/admin/regions"))
            .bearer_auth(&app.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "free again: {body}");
    app.stop().await;
}

/// Issue 15 item 14: an oversized body got a plain-text 413 (chunked: a 400), a 405 had no
/// body, and `Authorization: bearer` in lower case was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_errors_are_problems_and_the_auth_scheme_is_case_insensitive() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::with_db(common::TestDb::sqlite().await, |c| {
        c.max_body_bytes = 1024;
    })
    .await;
    let resp = app
        .admin(Method::DELETE, "/v1/admin/login")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.headers().contains_key("allow"), "{:?}", resp.headers());
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed", "{body}");

    let big = json!({"name": "x".repeat(4000)});
    let (status, body) = call(app.admin(Method::POST, "/v1/admin/users").json(&big)).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large")),
        "{body}"
    );

    let addr = app.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunk = "y".repeat(4000);
    let request = format!(
        "POST /v1/admin/login HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let (status, body) = raw_answer(s).await;
    assert_eq!(
        (status, &body["code"]),
        (413, &json!("payload_too_large")),
        "chunked: {body}"
    );

    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = call(
            app.http
                .get(app.url("/v1/admin/regions"))
                .header("authorization", format!("{scheme} {}", app.admin_token)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        let (status, body) = call(
            app.http
                .get(app.url("/v1/gateway/pool"))
                .header("authorization", format!("{scheme} {}", app.gateway_token)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
    app.stop().await;
}

/// Issue 15 item 14: `--help` printed `DATABASE_URL` with its password.
#[test]
fn help_never_shows_the_database_password() {
    for args in [
        &["--help"][..],
        &["serve", "--help"][..],
        &["device", "revoke", "--help"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
            .args(args)
            .env(
                "DATABASE_URL",
                "postgres://httvps:hunter2-secret@db.example/httvps",
            )
            .output()
            .expect("run --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
        assert!(
            !text.contains("hunter2"),
            "{args:?} shows the password: {text}"
        );
    }
}

/// Issue 15 item 14: the login username was written raw into the log, so a newline forged a
/// log line and escape sequences reached the operator's terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_names_are_logged_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("cp.log");
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("cp.db").display()),
        )
        .env("HTTVPS_CP_LISTEN", format!("127.0.0.1:{port}"))
        .env("HTTVPS_CP_GATEWAY_CERT_SHA256", "ab".repeat(32))
        .env("HTTVPS_CP_HEALTH_INTERVAL_SECS", "0")
        .env_remove("REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the control plane starts");
    let forged = "eve\n2026-01-01T00:00:00Z  INFO admin logged in username=root\u{1b}]0;pwned\u{7}";
    let (status, _) = call(
        http.post(format!("{base}/v1/admin/login"))
            .json(&json!({"username": forged, "password": "whatever"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The refusal reaches the log file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("admin login refused")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("admin login refused"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line: {log}"
    );
    assert!(
        !log.contains("\u{1b}]0;pwned"),
        "a raw escape sequence: {log:?}"
    );
    assert!(log.contains(r"eve\n2026-01-01"), "the name, escaped: {log}");
}

async fn login_token(app: &TestApp, username: &str, password: &str) -> String {
    let (status, body) = call(
        app.http
            .post(app.url("/v1/admin/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login {username}: {body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn with_token(app: &TestApp, token: &str) -> StatusCode {
    call(
        app.http
            .get(app.url("/v1/admin/regions"))
            .bearer_auth(token),
    )
    .await
    .0
}

/// Issue 15 item 14: a password change did not end the tokens issued before it, and changing
/// one's own password did not ask for the current one.
async fn a_password_change_ends_older_tokens(app: &TestApp) {
    let old_root = app.admin_token.clone();
    let (_, admins) = call(app.admin(Method::GET, "/v1/admin/admins")).await;
    let root = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "root")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops = create(
        app,
        "/v1/admin/admins",
        json!({"username": "ops", "password": "ops password one", "role": "operator"}),
    )
    .await;
    let ops_tokens = [
        login_token(app, "ops", "ops password one").await,
        login_token(app, "ops", "ops password one").await,
    ];
    for t in &ops_tokens {
        assert_eq!(with_token(app, t).await, StatusCode::OK);
    }
    // One's own password: only with the current one.
    let path = format!("/v1/admin/admins/{root}");
    let (status, body) = send(
        app,
        Method::PATCH,
        &path,
        json!({"password": "a brand new password"}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("validation_failed")
        ),
        "{body}"
    );
    let (status, body) = send(
        app,
        Method::PATCH,
        &path,
        json!({"password": "a brand new password", "current_password": "not the password"}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "{body}"
    );
    assert_eq!(
        with_token(app, &old_root).await,
        StatusCode::OK,
        "refusals change nothing"
    );
    let (status, body) = send(
        app,
        Method::PATCH,
        &path,
        json!({"password": "a brand new password", "current_password": common::app::ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        with_token(app, &old_root).await,
        StatusCode::UNAUTHORIZED,
        "the token from before the change"
    );
    let new_root = login_token(app, "root", "a brand new password").await;
    assert_eq!(with_token(app, &new_root).await, StatusCode::OK);
    // Another admin's password, set by an admin: that admin's tokens end too.
    let (status, body) = call(
        app.http
            .patch(app.url(&format!("/v1/admin/admins/{ops}")))
            .bearer_auth(&new_root)
            .json(&json!({"password": "ops password two"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for t in &ops_tokens {
        assert_eq!(with_token(app, t).await, StatusCode::UNAUTHORIZED);
    }
    let ops_new = login_token(app, "ops", "ops password two").await;
    assert_eq!(with_token(app, &ops_new).await, StatusCode::OK);
    assert_eq!(
        with_token(app, &new_root).await,
        StatusCode::OK,
        "root's own token is untouched"
    );
}

/// A login through the trusted proxy (this test's own address) on behalf of `client`.
async fn login_via_proxy(
    app: &TestApp,
    client: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let resp = app
        .http
        .post(app.url("/v1/admin/login"))
        .header("x-forwarded-for", format!("{client}, 127.0.0.1"))
        .json(&json!({"username": "root", "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

/// Issue 15 item 14: the login lockout keyed on the connecting address, so behind a reverse
/// proxy anyone could lock any admin out for 15 minutes; bad gateway tokens were not limited.
/// Now the client address comes from `X-Forwarded-For` of trusted proxies, a spray from many
/// addresses meets a short per-account backoff, and bad gateway tokens are limited per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockouts_key_on_the_client_behind_trusted_proxies() {
    use common::app::ADMIN_PASSWORD;
    let app = TestApp::with_db(common::TestDb::sqlite().await, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.login_backoff_max = std::time::Duration::from_secs(1);
    })
    .await;
    let attacker = "203.0.113.7";
    let mut refused = 0;
    let mut backoffs = 0;
    while refused < 10 {
        let (status, body, retry) = login_via_proxy(&app, attacker, "wrong password").await;
        match status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(
                    refused >= 3,
                    "the account backoff starts after 3 failures: {body}"
                );
                assert_eq!(retry.as_deref(), Some("1"), "{body}");
                backoffs += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
            }
            other => panic!("{other} {body}"),
        }
        if refused == 3 && backoffs == 0 {
            // The spray meets the per-account backoff from any address, even with the right
            // password.
            let (status, body, _) = login_via_proxy(&app, "198.51.100.99", ADMIN_PASSWORD).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        }
    }
    assert!(backoffs >= 6, "{backoffs} backoffs");
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    // The attacker's address is locked, even with the right password...
    let (status, body, retry) = login_via_proxy(&app, attacker, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some_and(|s| s.parse::<u64>().unwrap() > 60));
    // ...the admin at their own address is not.
    let (status, body, _) = login_via_proxy(&app, "203.0.113.8", ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the admin is not locked out: {body}"
    );

    // Bad gateway tokens: 20 per minute per client address, then 429 for that address only.
    let gateway = |client: &str, token: &str| {
        app.http
            .get(app.url("/v1/gateway/pool"))
            .header("x-forwarded-for", client)
            .bearer_auth(token)
    };
    for i in 0..20 {
        let (status, body) = call(gateway("198.51.100.50", &format!("guess-{i}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{i}: {body}");
    }
    let (status, body) = call(gateway("198.51.100.50", "guess-20")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("rate_limited")),
        "{body}"
    );
    let (status, _) = call(gateway("198.51.100.50", &app.gateway_token)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is blocked for the minute"
    );
    // A call without a token guesses nothing: 401, even from the blocked address.
    let (status, body) = call(
        app.http
            .get(app.url("/v1/gateway/pool"))
            .header("x-forwarded-for", "198.51.100.50"),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthenticated")),
        "{body}"
    );
    let (status, body) = call(gateway("198.51.100.51", &app.gateway_token)).await;
    assert_eq!(status, StatusCode::OK, "another gateway: {body}");
    app.stop().await;
}

async fn pool_with(app: &TestApp, token: &str) -> (StatusCode, Value) {
    call(app.http.get(app.url("/v1/gateway/pool")).bearer_auth(token)).await
}

/// Issue 15 item 14: gateway tokens could not be restricted to addresses. A token with an
/// allow-list works only from inside it (this test calls from 127.0.0.1).
async fn gateway_tokens_carry_an_address_allow_list(app: &TestApp) {
    let (status, far) = send(
        app,
        Method::POST,
        "/v1/admin/gateways",
        json!({"name": "gw-far", "allowed_from": ["10.0.0.0/8"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{far}");
    let far_token = far["token"].as_str().unwrap().to_owned();
    let (status, body) = pool_with(app, &far_token).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "{body}"
    );

    let (status, near) = send(
        app,
        Method::POST,
        "/v1/admin/gateways",
        json!({"name": "gw-near", "allowed_from": ["127.0.0.0/8", "::1"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{near}");
    let (status, body) = pool_with(app, near["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let far_id = far["gateway"]["id"].as_str().unwrap();
    let (status, rotated) = send(
        app,
        Method::POST,
        &format!("/v1/admin/gateways/{far_id}/tokens"),
        json!({"overlap_secs": 60, "allowed_from": ["127.0.0.1"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(
        rotated["allowed_from"],
        json!(["127.0.0.1/32"]),
        "{rotated}"
    );
    let (status, body) = pool_with(app, rotated["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = pool_with(app, &far_token).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the first token keeps its list"
    );
    let (_, tokens) =
        call(app.admin(Method::GET, &format!("/v1/admin/gateways/{far_id}/tokens"))).await;
    assert_eq!(tokens[0]["allowed_from"], json!(["10.0.0.0/8"]), "{tokens}");

    for bad in [json!(["10.0.0.0/33"]), json!(["example.com"]), json!([""])] {
        let (status, body) = send(
            app,
            Method::POST,
            "/v1/admin/gateways",
            json!({"name": "gw-bad", "allowed_from": bad}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    // The registered test gateway (no list) works from anywhere.
    let (status, _) = pool_with(app, &app.gateway_token).await;
    assert_eq!(status, StatusCode::OK);
}
