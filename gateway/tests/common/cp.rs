//! A real control plane in process (SQLite in a temporary folder), seeded through its store:
//! plans, users, subscriptions, devices, gateway tokens and the Shadowsocks nodes of the test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use httvps_control_plane::app::{start, AppState, Running};
use httvps_control_plane::auth::token;
use httvps_control_plane::config::ServeConfig;
use httvps_control_plane::model::{now_ms, NodeHealth};
use httvps_control_plane::store::{NewNode, Store, StoreOptions};
use httvps_gateway::control_plane::{ControlPlaneClient, Secret};
use httvps_gateway::Node;
use tokio::sync::Mutex;
use uuid::Uuid;

use subscribe::{subscribe, Terms};

#[path = "../../../control-plane/tests/common/subscribe.rs"]
mod subscribe;

#[path = "../../../control-plane/tests/common/nodes.rs"]
mod nodes;

pub struct TestCp {
    running: Mutex<Option<Running>>,
    state: AppState,
    /// The running service's store (one writer, as in production), or our own connection
    /// while the service is stopped (two pools writing one SQLite file conflict).
    store: std::sync::Mutex<Store>,
    own_store: Store,
    config: ServeConfig,
    pub addr: SocketAddr,
    pub gateway_token: String,
    _dir: tempfile::TempDir,
}

/// A user with a plan, a device and its token.
pub struct Subscriber {
    pub user: Uuid,
    pub device: Uuid,
    pub token: String,
}

impl TestCp {
    pub async fn start() -> TestCp {
        Self::start_configured(|_| {}).await
    }

    /// A control plane sharing state with gateways through the Redis at `redis_url` under
    /// `prefix`, assigning nodes by least connections.
    pub async fn start_with_redis(redis_url: &str, prefix: &str) -> TestCp {
        Self::start_configured(|c| {
            c.redis_url = Some(redis_url.to_owned());
            c.redis_prefix = prefix.to_owned();
            c.redis_timeout = Duration::from_secs(2);
            c.assign_strategy = httvps_control_plane::config::AssignStrategy::LeastConnections;
        })
        .await
    }

    pub async fn start_configured(adjust: impl FnOnce(&mut ServeConfig)) -> TestCp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("cp.db").display());
        let mut config = ServeConfig::for_database(&url);
        adjust(&mut config);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
        config.health_interval_secs = 0;
        config.gateway_cert_sha256 = Some("ab".repeat(32));
        let running = start(config.clone(), false)
            .await
            .expect("control plane starts");
        let addr = running.addr;
        config.listen = addr;
        let state = running.state.clone();
        let gateway_token = token::generate();
        state
            .store
            .create_gateway("test", "gw-test", &token::hash(&gateway_token))
            .await
            .unwrap();
        let own_store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        TestCp {
            running: Mutex::new(Some(running)),
            store: std::sync::Mutex::new(state.store.clone()),
            state,
            own_store,
            config,
            addr,
            gateway_token,
            _dir: dir,
        }
    }

    /// A bearer token of a new superadmin, for the admin API.
    pub async fn admin_token(&self) -> String {
        let name = format!("admin-{}", Uuid::new_v4().simple());
        let hash = httvps_control_plane::auth::password::hash("test-password-123").unwrap();
        self.store()
            .create_admin(
                "test",
                &name,
                &hash,
                httvps_control_plane::model::Role::Admin,
            )
            .await
            .unwrap();
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/v1/admin/login", self.addr))
            .json(&serde_json::json!({"username": name, "password": "test-password-123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_owned()
    }

    /// POSTs to an admin route; panics unless it succeeds.
    pub async fn admin_post(&self, token: &str, path: &str) {
        self.admin_call(reqwest::Method::POST, token, path, None)
            .await;
    }

    /// Calls an admin route with an optional JSON body; panics unless it succeeds.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) {
        let mut request = reqwest::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    /// The database (usable while the service is stopped, too).
    pub fn store(&self) -> Store {
        self.store.lock().unwrap().clone()
    }

    /// The first service's state (for `fail_over`; not valid after a restart).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn url(&self) -> url::Url {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    pub fn client(&self, gateway_token: &str, timeout: Duration) -> Arc<ControlPlaneClient> {
        Arc::new(ControlPlaneClient::new(self.url(), Secret::new(gateway_token), timeout).unwrap())
    }

    /// Another registered gateway's token.
    pub async fn new_gateway_token(&self, name: &str) -> String {
        let t = token::generate();
        self.store()
            .create_gateway("test", name, &token::hash(&t))
            .await
            .unwrap();
        t
    }

    /// Stops the HTTP service (the gateway sees connection refused).
    pub async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            *self.store.lock().unwrap() = self.own_store.clone();
            running.stop().await;
        }
    }

    /// Starts the HTTP service again on the same address and database.
    pub async fn restart(&self) {
        let mut guard = self.running.lock().await;
        if guard.is_some() {
            return;
        }
        let mut last = None;
        for _ in 0..50 {
            match start(self.config.clone(), false).await {
                Ok(r) => {
                    *self.store.lock().unwrap() = r.state.store.clone();
                    *guard = Some(r);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("control plane did not restart on {}: {last:?}", self.addr);
    }

    pub async fn subscriber(&self, quota: Option<i64>, session_limit: i32) -> Subscriber {
        self.subscriber_with(quota, session_limit, &[]).await
    }

    /// A user on a new plan allowing `allowed_regions` (none: every region), with one device.
    pub async fn subscriber_with(
        &self,
        quota: Option<i64>,
        session_limit: i32,
        allowed_regions: &[Uuid],
    ) -> Subscriber {
        let terms = Terms {
            quota,
            session_limit,
            regions: allowed_regions,
        };
        let made = subscribe(&self.store(), terms, &["phone".into()]).await;
        let (device, token) = made.devices.into_iter().next().unwrap();
        Subscriber {
            user: made.user,
            device,
            token,
        }
    }

    /// Registers a Shadowsocks node of the test (address, cipher, key) in the pool.
    pub async fn add_node_at(&self, node: &Node, addr: SocketAddr, name: &str) -> Uuid {
        self.add_node_in(node, addr, name, None).await
    }

    /// [`Self::add_node_at`], in `region`.
    pub async fn add_node_in(
        &self,
        node: &Node,
        addr: SocketAddr,
        name: &str,
        region: Option<Uuid>,
    ) -> Uuid {
        self.store()
            .create_node(
                "test",
                &NewNode {
                    name: name.into(),
                    host: addr.ip().to_string(),
                    port: addr.port(),
                    cipher: node.config.method().to_string(),
                    secret: node.config.password().to_owned(),
                    region_id: region,
                    groups: vec![],
                    weight: 100,
                    capacity: 1000,
                },
            )
            .await
            .unwrap()
            .id
    }

    pub async fn add_node(&self, node: &Node, name: &str) -> Uuid {
        self.add_node_at(node, super::node_addr(node), name).await
    }

    pub async fn mark(&self, node: Uuid, health: NodeHealth) {
        nodes::mark(&self.store(), node, health).await;
    }

    /// The device's sessions, live or ended (10 at most, newest first).
    pub async fn sessions_of(&self, device: Uuid) -> Vec<httvps_control_plane::model::Session> {
        self.store()
            .list_sessions(&httvps_control_plane::store::SessionFilter {
                device_id: Some(device),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// Bytes counted against the user's quota.
    pub async fn used_bytes(&self, user: Uuid) -> i64 {
        let (sub, plan) = self
            .store()
            .resolve_subscription(user, now_ms(), false)
            .await
            .unwrap()
            .unwrap();
        self.store()
            .quota_status(&sub, &plan, now_ms())
            .await
            .unwrap()
            .used_bytes
    }
}
