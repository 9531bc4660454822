//! Issue 13 item 4, through the real HTTP server on SQLite and the real PostgreSQL: a device's
//! links shown again equal the ones made at creation; a token rotation refuses the old token at
//! the gateways' validation route and accepts the new one; the subscription URL serves the same
//! links as plain text, base64 and JSON, answers 404 for unknown, rotated-away and revoked
//! tokens, and 429 with Retry-After past its rate limits.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::admin::{create_ok, delete, get, ok, post_empty, send};
use common::app::{call, validate, TestApp};
use common::TestDb;
use httvps_proto::link::ConnectionLink;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Two public gateway endpoints in two regions, a secret key, a public URL.
fn tune(c: &mut httvps_control_plane::config::ServeConfig) {
    c.secret_key = Some("42".repeat(32));
    c.public_gateway = "eu=vpn-eu.example.com/p1, us=vpn-us.example.com:8443/p2".into();
    c.public_url = Some("https://cp.example.com/".into());
    c.subscription_rate_per_token = 1000;
    c.subscription_rate_per_address = 1000;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::TestApp::with_db(super::TestDb::sqlite().await, super::tune).await;
                super::$name(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = super::TestApp::with_db(super::TestDb::postgres().await, super::tune).await;
                super::$name(&app).await;
                app.stop().await;
            }
        })*
    };
}

on_both!(
    links_are_shown_again_and_a_rotation_replaces_the_token,
    subscription_urls_serve_the_links_in_three_formats,
);

/// A user with a plan in force and a device made through the API; the creation answer.
async fn new_device(app: &TestApp) -> Value {
    create_ok(
        app,
        "/v1/admin/plans",
        json!({"name": "p", "device_limit": 5, "session_limit": 5}),
    )
    .await;
    let user = create_ok(app, "/v1/admin/users", json!({"name": "mia"})).await;
    let user = user["id"].as_str().unwrap().to_owned();
    create_ok(
        app,
        &format!("/v1/admin/users/{user}/subscriptions"),
        json!({"plan": "p"}),
    )
    .await;
    create_ok(
        app,
        &format!("/v1/admin/users/{user}/devices"),
        json!({"name": "Laptop"}),
    )
    .await
}

/// Rotates the device's subscription URL through the API; the new URL.
async fn rotate_subscription_url(app: &TestApp, id: &str) -> String {
    let path = format!("/v1/admin/devices/{id}/subscription-url/rotate");
    let answer = ok(post_empty(app, &path).await, StatusCode::OK);
    answer["url"].as_str().unwrap().to_owned()
}

fn links_of(answer: &Value) -> Vec<String> {
    answer["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["link"].as_str().unwrap().to_owned())
        .collect()
}

async fn links_are_shown_again_and_a_rotation_replaces_the_token(app: &TestApp) {
    let created = new_device(app).await;
    let id = created["device"]["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let links = links_of(&created);
    assert_eq!(links.len(), 2, "one link per public gateway: {created}");
    assert_eq!(created["link"].as_str().unwrap(), links[0]);
    let parsed: Vec<ConnectionLink> = links
        .iter()
        .map(|l| ConnectionLink::parse(l).unwrap())
        .collect();
    assert_eq!(
        parsed
            .iter()
            .map(|l| (l.host.as_str(), l.port, l.path.as_str()))
            .collect::<Vec<_>>(),
        [
            ("vpn-eu.example.com", 443, "/p1"),
            ("vpn-us.example.com", 8443, "/p2")
        ]
    );
    assert!(parsed.iter().all(|l| l.token == token && l.device_id == id));
    assert_eq!(parsed[0].name.as_deref(), Some("Laptop (eu)"));
    assert_eq!(created["links"][1]["region"], "us");

    // Shown again: the same links and QR code.
    let link_path = format!("/v1/admin/devices/{id}/link");
    let shown = ok(get(app, &link_path).await, StatusCode::OK);
    assert_eq!(shown["link"], created["link"]);
    assert_eq!(links_of(&shown), links);
    assert_eq!(shown["qr_svg"], created["qr_svg"]);
    assert_eq!(validate(app, &id, &token, None).await["result"], "allow");

    // A live session on the old token (a gateway started it).
    let session = ok(
        call(
            app.gateway(Method::POST, "/v1/gateway/sessions")
                .json(&json!({"session_id": Uuid::new_v4(), "device_id": id})),
        )
        .await,
        StatusCode::CREATED,
    );
    let heartbeat = format!(
        "/v1/gateway/sessions/{}/heartbeat",
        session["id"].as_str().unwrap()
    );
    let beat = || async {
        ok(
            call(app.gateway(Method::POST, &heartbeat)).await,
            StatusCode::OK,
        )
    };
    let answer = beat().await;
    assert_eq!(answer["end"], false, "{answer}");

    // Rotation: a new token; the old one is refused at once, the new one accepted.
    let rotated = ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/rotate-token")).await,
        StatusCode::OK,
    );
    let new_token = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(rotated["device"]["status"], "active");
    let old_answer = validate(app, &id, &token, None).await;
    assert_eq!(
        (old_answer["result"].as_str(), old_answer["code"].as_str()),
        (Some("deny"), Some("auth_failed")),
        "{old_answer}"
    );
    assert_eq!(
        validate(app, &id, &new_token, None).await["result"],
        "allow"
    );
    // The old token's session ends at its next heartbeat too (gateways without Redis).
    let answer = beat().await;
    assert_eq!(answer["end"], true, "{answer}");
    let shown = ok(get(app, &link_path).await, StatusCode::OK);
    assert_eq!(links_of(&shown), links_of(&rotated));
    assert!(links_of(&shown).iter().all(|l| l.contains(&new_token)));

    // Unknown devices are 404; a revoked device gets no new token.
    assert_eq!(
        get(app, &format!("/v1/admin/devices/{}/link", Uuid::new_v4()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/revoke")).await,
        StatusCode::OK,
    );
    let shown = get(app, &format!("/v1/admin/devices/{id}/link")).await;
    assert_eq!(
        shown.0,
        StatusCode::CONFLICT,
        "a revoked device's links: {}",
        shown.1
    );
    let refused = ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/rotate-token")).await,
        StatusCode::CONFLICT,
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("revoked"),
        "{refused}"
    );
}

/// The path of a subscription URL (served by this test's server, whatever the public URL).
fn sub_path(url: &str) -> String {
    assert!(url.starts_with("https://cp.example.com/sub/"), "{url}");
    format!("/sub/{}", url.rsplit('/').next().unwrap())
}

async fn fetch(
    app: &TestApp,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = app.http.get(app.url(path));
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn served_links(app: &TestApp, path: &str) -> Vec<String> {
    let (status, headers, plain) = fetch(app, &format!("{path}?format=plain"), None).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(headers["cache-control"], "no-store");
    let from_plain: Vec<String> = plain.lines().map(str::to_owned).collect();

    let (status, headers, b64) = fetch(app, &format!("{path}?format=base64"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).unwrap()).unwrap();
    assert_eq!(decoded, plain, "base64 is the plain list encoded");
    // Without a format or Accept: the base64 convention.
    assert_eq!(fetch(app, path, None).await.2, b64);

    let (status, headers, json) = fetch(app, path, Some("application/json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    let json: Value = serde_json::from_str(&json).unwrap();
    let from_json: Vec<String> = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(from_json, from_plain, "JSON and plain list the same links");
    assert_eq!(json["links"][0]["region"], "eu");
    assert_eq!(json["links"][1]["name"], "Laptop (us)");
    assert_eq!(json["device"]["name"], "Laptop");
    for link in &from_plain {
        ConnectionLink::parse(link).expect("every served link parses");
    }
    from_plain
}

async fn subscription_urls_serve_the_links_in_three_formats(app: &TestApp) {
    let created = new_device(app).await;
    let id = created["device"]["id"].as_str().unwrap().to_owned();
    let url = created["subscription_url"].as_str().unwrap().to_owned();
    let path = sub_path(&url);
    assert_eq!(served_links(app, &path).await, links_of(&created));

    // Shown again by operators.
    let shown = ok(
        get(app, &format!("/v1/admin/devices/{id}/subscription-url")).await,
        StatusCode::OK,
    );
    assert_eq!(shown["url"], url.as_str());
    assert!(shown["qr_svg"].as_str().unwrap().contains("<svg"));

    // Unknown tokens, well-formed or not: 404.
    for unknown in [format!("/sub/{}", "A".repeat(43)), "/sub/nope".to_owned()] {
        assert_eq!(
            fetch(app, &unknown, None).await.0,
            StatusCode::NOT_FOUND,
            "{unknown}"
        );
    }

    // After a token rotation the URL serves the new links.
    let rotated = ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/rotate-token")).await,
        StatusCode::OK,
    );
    assert_eq!(served_links(app, &path).await, links_of(&rotated));

    // Rotating the URL: the old one is 404, the new one serves.
    let new_url = rotate_subscription_url(app, &id).await;
    assert_ne!(new_url, url);
    assert_eq!(fetch(app, &path, None).await.0, StatusCode::NOT_FOUND);
    let new_path = sub_path(&new_url);
    assert_eq!(served_links(app, &new_path).await, links_of(&rotated));

    // A disabled device's URL is 404 until it is enabled again.
    ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/disable")).await,
        StatusCode::OK,
    );
    assert_eq!(fetch(app, &new_path, None).await.0, StatusCode::NOT_FOUND);
    ok(
        post_empty(app, &format!("/v1/admin/devices/{id}/enable")).await,
        StatusCode::OK,
    );
    assert_eq!(fetch(app, &new_path, None).await.0, StatusCode::OK);

    // Nor while its user is disabled.
    let user = created["device"]["user_id"].as_str().unwrap().to_owned();
    let user_path = format!("/v1/admin/users/{user}");
    let disabled = Some(json!({"status": "disabled"}));
    ok(
        send(app, Method::PATCH, &user_path, disabled).await,
        StatusCode::OK,
    );
    assert_eq!(fetch(app, &new_path, None).await.0, StatusCode::NOT_FOUND);
    let active = Some(json!({"status": "active"}));
    ok(
        send(app, Method::PATCH, &user_path, active).await,
        StatusCode::OK,
    );
    assert_eq!(fetch(app, &new_path, None).await.0, StatusCode::OK);

    // Revoking the URL: 404, and nothing to show until it is rotated again.
    assert_eq!(
        delete(app, &format!("/v1/admin/devices/{id}/subscription-url"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(fetch(app, &new_path, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(app, &format!("/v1/admin/devices/{id}/subscription-url"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_past_the_rate_limits_get_429_with_retry_after() {
    let app = TestApp::with_db(TestDb::sqlite().await, |c| {
        tune(c);
        c.subscription_rate_per_token = 3;
        c.subscription_rate_per_address = 5;
    })
    .await;
    let created = new_device(&app).await;
    let path = sub_path(created["subscription_url"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(fetch(&app, &path, None).await.0, StatusCode::OK);
    }
    let (status, headers, _) = fetch(&app, &path, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "per token");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The address has one fetch left whatever the token; then it is limited too.
    assert_eq!(
        fetch(&app, &format!("/sub/{}", "B".repeat(43)), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, headers, _) = fetch(&app, &format!("/sub/{}", "C".repeat(43)), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "per address");
    assert!(headers.contains_key("retry-after"));
    app.stop().await;
}

/// A device made before links were kept (straight in the store, as an older version did): its
/// link cannot be shown until its token is rotated, and it has no subscription URL until one is
/// made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_device_says_to_rotate_then_shows_its_links() {
    let app = TestApp::with_db(TestDb::sqlite().await, tune).await;
    let user = app.store().create_user("test", "old", None).await.unwrap();
    let device = app
        .store()
        .create_device(
            "test",
            &httvps_control_plane::store::NewDevice {
                user_id: user.id,
                name: "old phone".into(),
                token_hash: httvps_control_plane::auth::token::hash("whatever"),
            },
        )
        .await
        .unwrap();
    let id = device.id;
    let refused = ok(
        get(&app, &format!("/v1/admin/devices/{id}/link")).await,
        StatusCode::CONFLICT,
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("rotate"),
        "{refused}"
    );
    assert_eq!(
        get(&app, &format!("/v1/admin/devices/{id}/subscription-url"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let rotated = ok(
        post_empty(&app, &format!("/v1/admin/devices/{id}/rotate-token")).await,
        StatusCode::OK,
    );
    let shown = ok(
        get(&app, &format!("/v1/admin/devices/{id}/link")).await,
        StatusCode::OK,
    );
    assert_eq!(shown["link"], rotated["link"]);
    let url = rotate_subscription_url(&app, &id.to_string()).await;
    assert_eq!(fetch(&app, &sub_path(&url), None).await.0, StatusCode::OK);
    app.stop().await;
}

/// With PostgreSQL and no secret key nothing is sealed: creation still shows the links and the
/// subscription URL, and showing them again says a key is needed (and to rotate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_key_on_postgres_links_are_shown_only_once() {
    let app = TestApp::with_db(TestDb::postgres().await, |c| {
        tune(c);
        c.secret_key = None;
        c.secret_key_file = None;
    })
    .await;
    assert!(app.state().seal.is_none());
    let created = new_device(&app).await;
    let id = created["device"]["id"].as_str().unwrap().to_owned();
    assert_eq!(links_of(&created).len(), 2);
    let refused = ok(
        get(&app, &format!("/v1/admin/devices/{id}/link")).await,
        StatusCode::CONFLICT,
    );
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("HTTVPS_CP_SECRET_KEY") && detail.contains("rotate"),
        "{detail}"
    );
    // A subscription URL could not serve links without the token: none is made.
    assert!(created["subscription_url"].is_null(), "{created}");
    let refused = ok(
        post_empty(
            &app,
            &format!("/v1/admin/devices/{id}/subscription-url/rotate"),
        )
        .await,
        StatusCode::CONFLICT,
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("secret key"),
        "{refused}"
    );
    app.stop().await;
}
