//! A real control plane on an ephemeral port, over a fresh database, spoken to over HTTP.
#![allow(dead_code)]

use httvps_control_plane::app::{start, Running};
use httvps_control_plane::auth::{password, token};
use httvps_control_plane::config::ServeConfig;
use httvps_control_plane::model::Role;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::TestDb;

pub struct TestApp {
    pub running: Option<Running>,
    pub db: Option<TestDb>,
    pub base: String,
    pub http: reqwest::Client,
    /// A token of an admin with the `admin` role.
    pub admin_token: String,
    /// The token of a registered gateway.
    pub gateway_token: String,
}

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn sqlite() -> TestApp {
        TestApp::with_db(TestDb::sqlite().await, |_| {}).await
    }

    pub async fn postgres() -> TestApp {
        TestApp::with_db(TestDb::postgres().await, |_| {}).await
    }

    /// Starts the service on `db` (which the test fixture already migrated), without the
    /// periodic jobs (tests run them on demand), after `tune` adjusts the configuration.
    pub async fn with_db(db: TestDb, tune: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let url = db.url.clone();
        let mut config = ServeConfig::for_database(&url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
        config.health_interval_secs = 0;
        config.gateway_cert_sha256 = Some("ab".repeat(32));
        tune(&mut config);
        let running = start(config, false).await.expect("control plane starts");
        let base = format!("http://{}", running.addr);
        let store = &running.state.store;
        store
            .create_admin(
                "test",
                "root",
                &password::hash(ADMIN_PASSWORD).unwrap(),
                Role::Admin,
            )
            .await
            .unwrap();
        let gateway_token = token::generate();
        store
            .create_gateway("test", "gw-test", &token::hash(&gateway_token))
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/v1/admin/login"))
            .json(&serde_json::json!({"username": "root", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let admin_token = login["token"].as_str().unwrap_or_default().to_owned();
        TestApp {
            running: Some(running),
            db: Some(db),
            base,
            http,
            admin_token,
            gateway_token,
        }
    }

    pub fn store(&self) -> &httvps_control_plane::store::Store {
        &self.running.as_ref().unwrap().state.store
    }

    pub fn state(&self) -> &httvps_control_plane::app::AppState {
        &self.running.as_ref().unwrap().state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request as the admin.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    /// A request as the gateway.
    pub fn gateway(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.gateway_token)
    }

    /// The Prometheus text the service exposes (no authentication).
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// Sends a request and returns the status and the JSON body (`Null` when empty).
pub async fn call(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /v1/gateway/devices/validate` with the test gateway's token, asserting 200 OK; the
/// answer (`allow` or `deny` with its code).
pub async fn validate(
    app: &TestApp,
    device: &str,
    token: &str,
    region: Option<&str>,
) -> serde_json::Value {
    let (status, body) = call(
        app.gateway(reqwest::Method::POST, "/v1/gateway/devices/validate")
            .json(
                &serde_json::json!({"device_id": device, "device_token": token, "region": region}),
            ),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}
