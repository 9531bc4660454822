//! The whole httvps stack in one process, with embedded defaults: the control plane on an SQLite
//! file, a gateway with a self-signed certificate, and an embedded Shadowsocks pool node; seeded
//! with a demo plan, user and device whose connection link it returns. `scripts/up.sh` runs it,
//! and the end-to-end tests start it the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use httvps_control_plane::app::{start as start_control_plane, Running};
use httvps_control_plane::auth::token;
use httvps_control_plane::config::ServeConfig;
use httvps_control_plane::model::{DeviceStatus, ResetStrategy};
use httvps_control_plane::store::{
    NewDevice, NewNode, NewPlan, NewSubscription, NodeUpdate, Store, StoreError,
};
use httvps_gateway::config::ListenAddr;
use httvps_gateway::control_plane::{ControlPlaneClient, Secret};
use httvps_gateway::{secret_path, Gateway, GatewayConfig, TlsSource};
use rand::RngCore;
use shadowsocks::config::{Mode, ServerConfig};
use shadowsocks::crypto::CipherKind;
use tokio::task::JoinHandle;

const ACTOR: &str = "local-stack";
const NODE_NAME: &str = "embedded-node";
const GATEWAY_NAME: &str = "local-gateway";
const USER: &str = "demo";
const PLAN: &str = "demo";

/// Where and how the stack runs.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Holds the SQLite database.
    pub data_dir: PathBuf,
    pub control_plane_listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    /// The secret WebSocket path; empty (the default): a random one of 192 bits, generated on
    /// the first start and kept in `data_dir/secret-path`.
    pub path: String,
    /// Let streams reach loopback and private addresses (tests and local demos).
    pub allow_private_targets: bool,
    /// Run the control plane's health checks and maintenance jobs.
    pub run_jobs: bool,
    /// The control plane's database; `None` (the default): an SQLite file in `data_dir`.
    /// Tests that need the production backend give a PostgreSQL URL here.
    pub database_url: Option<String>,
    /// The key device tokens are sealed with (`HTTVPS_CP_SECRET_KEY`, 64 hex digits), so links
    /// can be shown again; `None`: the control plane's default for the database.
    pub secret_key: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            data_dir: PathBuf::from(".httvps-local"),
            control_plane_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            path: String::new(),
            allow_private_targets: false,
            run_jobs: true,
            database_url: None,
            secret_key: None,
        }
    }
}

impl StackOptions {
    /// Data in `dir`, the services on free loopback ports, private targets allowed and no
    /// periodic jobs: the stack tests run.
    pub fn ephemeral(dir: &std::path::Path) -> StackOptions {
        StackOptions {
            data_dir: dir.to_owned(),
            control_plane_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_private_targets: true,
            run_jobs: false,
            ..StackOptions::default()
        }
    }
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("control plane: {0}")]
    ControlPlane(#[from] httvps_control_plane::app::StartError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("gateway: {0}")]
    Gateway(#[from] httvps_gateway::GatewayError),
    #[error("embedded Shadowsocks node: {0}")]
    Node(std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// A running stack.
#[derive(Debug)]
pub struct LocalStack {
    pub control_plane: Running,
    gateway: Option<Gateway>,
    pub node_addr: SocketAddr,
    node: JoinHandle<std::io::Result<()>>,
    tls: Arc<TlsSource>,
    gateway_config: GatewayConfig,
    gateway_token: String,
    /// The demo device's connection link (its token is shown only here).
    pub link: String,
    pub device_id: uuid::Uuid,
}

fn random_secret() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn start_node() -> Result<(SocketAddr, String, JoinHandle<std::io::Result<()>>), StackError> {
    let password = random_secret();
    let mut config = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        password.clone(),
        CipherKind::CHACHA20_POLY1305,
    )
    .map_err(|e| StackError::Setup(format!("node config: {e}")))?;
    config.set_mode(Mode::TcpAndUdp);
    // Port 0 would give TCP and UDP different ports: pick one free port for both.
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(StackError::Node)?
            .local_addr()
            .map_err(StackError::Node)?
            .port();
        config.set_addr(SocketAddr::from(([127, 0, 0, 1], port)));
        if let Ok(server) = shadowsocks_service::server::ServerBuilder::new(config.clone())
            .build()
            .await
        {
            return Ok((
                SocketAddr::from(([127, 0, 0, 1], port)),
                password,
                tokio::spawn(server.run()),
            ));
        }
    }
    Err(StackError::Setup(
        "no free port for the embedded Shadowsocks node".into(),
    ))
}

/// Creates or refreshes what the demo needs; returns the gateway's service token and the new
/// demo device with its token.
async fn seed(
    store: &Store,
    node_addr: SocketAddr,
    node_secret: &str,
) -> Result<(String, uuid::Uuid, String), StackError> {
    let node = NewNode {
        name: NODE_NAME.into(),
        host: node_addr.ip().to_string(),
        port: node_addr.port(),
        cipher: "chacha20-ietf-poly1305".into(),
        secret: node_secret.into(),
        region_id: None,
        groups: vec![],
        weight: 100,
        capacity: 10_000,
    };
    match store
        .list_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == NODE_NAME)
    {
        Some(existing) => {
            let update = NodeUpdate {
                host: Some(node.host),
                port: Some(node.port),
                secret: Some(node.secret),
                ..NodeUpdate::default()
            };
            store.update_node(ACTOR, existing.id, &update).await?;
        }
        None => {
            store.create_node(ACTOR, &node).await?;
        }
    }
    let plan = match store.plan_by_name(PLAN).await {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => {
            store
                .create_plan(
                    ACTOR,
                    &NewPlan {
                        name: PLAN.into(),
                        device_limit: 100,
                        session_limit: 100,
                        quota_bytes: None,
                        reset_strategy: ResetStrategy::None,
                        duration_days: None,
                        allowed_regions: vec![],
                    },
                )
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let user = match store.user_by_name(USER).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => {
            let u = store.create_user(ACTOR, USER, None).await?;
            store
                .create_subscription(
                    ACTOR,
                    u.id,
                    &NewSubscription {
                        plan_id: plan.id,
                        on_hold: false,
                        queued: false,
                    },
                )
                .await?;
            u
        }
        Err(e) => return Err(e.into()),
    };
    // A fresh gateway token each run (only its hash is stored).
    let gateway_token = token::generate();
    match store.gateway_by_name(GATEWAY_NAME).await {
        Ok(g) => {
            store
                .rotate_gateway_token(ACTOR, g.id, &token::hash(&gateway_token), 0)
                .await?;
        }
        Err(StoreError::NotFound(_)) => {
            store
                .create_gateway(ACTOR, GATEWAY_NAME, &token::hash(&gateway_token))
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    // A new demo device each run (its token cannot be shown again); older ones are revoked.
    for old in store
        .list_devices(Some(user.id))
        .await?
        .into_iter()
        .filter(|d| d.status == DeviceStatus::Active)
    {
        store
            .update_device(ACTOR, old.id, Some(DeviceStatus::Revoked), None)
            .await?;
    }
    let device_token = token::generate();
    let device = store
        .create_device(
            ACTOR,
            &NewDevice {
                user_id: user.id,
                name: "demo-device".into(),
                token_hash: token::hash(&device_token),
            },
        )
        .await?;
    Ok((gateway_token, device.id, device_token))
}

/// The configured path, or the one kept in the data folder (generated on the first start).
fn secret_path(options: &StackOptions) -> Result<String, StackError> {
    if !options.path.is_empty() {
        return Ok(options.path.clone());
    }
    let file = options.data_dir.join("secret-path");
    let setup = |e: std::io::Error| StackError::Setup(format!("{}: {e}", file.display()));
    match std::fs::read_to_string(&file) {
        Ok(kept) if secret_path::validate(kept.trim(), false).is_ok() => {
            return Ok(kept.trim().to_owned())
        }
        Ok(_) => {
            return Err(StackError::Setup(format!(
                "{} does not hold a strong secret path; delete it to generate a new one",
                file.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(setup(e)),
    }
    let path = secret_path::generate();
    let mut out = std::fs::OpenOptions::new();
    out.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut out, 0o600);
    let mut f = out.open(&file).map_err(setup)?;
    std::io::Write::write_all(&mut f, format!("{path}\n").as_bytes()).map_err(setup)?;
    Ok(path)
}

fn gateway_config(
    options: &StackOptions,
    listen: SocketAddr,
    control_plane: SocketAddr,
    token: &str,
) -> Result<GatewayConfig, StackError> {
    let url = url::Url::parse(&format!("http://{control_plane}/"))
        .map_err(|e| StackError::Setup(e.to_string()))?;
    Ok(GatewayConfig {
        listen: ListenAddr::Tcp(listen),
        metrics_listen: None,
        path: options.path.clone(),
        allow_private_targets: options.allow_private_targets,
        control_plane_url: Some(url),
        control_plane_token: Some(Secret::new(token)),
        shutdown_grace: Duration::from_secs(5),
        ..GatewayConfig::default()
    })
}

impl LocalStack {
    /// Starts everything and seeds the demo.
    pub async fn start(mut options: StackOptions) -> Result<LocalStack, StackError> {
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| StackError::Setup(format!("{}: {e}", options.data_dir.display())))?;
        options.path = secret_path(&options)?;
        let (node_addr, node_secret, node) = start_node().await?;
        let tls = Arc::new(TlsSource::self_signed(&["localhost".into()])?);
        let gateway_listen = {
            // Bind first so the link can carry the real port even when 0 was asked for.
            let probe = std::net::TcpListener::bind(options.gateway_listen).map_err(|e| {
                StackError::Setup(format!("gateway port {}: {e}", options.gateway_listen))
            })?;
            let addr = probe
                .local_addr()
                .map_err(|e| StackError::Setup(e.to_string()))?;
            drop(probe);
            addr
        };
        let database_url = options.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite:{}",
                options.data_dir.join("control-plane.db").display()
            )
        });
        let mut cp = ServeConfig::for_database(&database_url);
        if options.secret_key.is_some() {
            cp.secret_key = options.secret_key.clone();
        }
        cp.listen = options.control_plane_listen;
        cp.public_gateway = format!(
            "{}:{}{}",
            gateway_listen.ip(),
            gateway_listen.port(),
            options.path
        );
        cp.gateway_cert_sha256 = Some(tls.fingerprint().replace(':', ""));
        cp.gateway_sni = Some("localhost".into());
        cp.health_interval_secs = if options.run_jobs { 10 } else { 0 };
        // Health probes go through the embedded node to the control plane itself: any HTTP
        // answer proves the node relays.
        cp.probe_target = options.control_plane_listen.to_string();
        let control_plane = start_control_plane(cp, options.run_jobs).await?;
        let store = control_plane.state.store.clone();
        let (gateway_token, device_id, device_token) =
            seed(&store, node_addr, &node_secret).await?;
        let link = httvps_control_plane::link::device_link(
            &control_plane.state.config,
            device_id,
            &device_token,
            "demo-device",
        )
        .map_err(|e| StackError::Setup(format!("link: {e}")))?
        .to_string();
        let gateway_config =
            gateway_config(&options, gateway_listen, control_plane.addr, &gateway_token)?;
        let gateway = start_gateway(&gateway_config, &tls, &gateway_token).await?;
        Ok(LocalStack {
            control_plane,
            gateway: Some(gateway),
            node_addr,
            node,
            tls,
            gateway_config,
            gateway_token,
            link,
            device_id,
        })
    }

    /// The running gateway.
    pub fn gateway(&self) -> Option<&Gateway> {
        self.gateway.as_ref()
    }

    /// Stops the gateway (GOAWAY, drain, usage flushed) and starts a new one on the same address
    /// and certificate: what a gateway restart looks like to clients.
    pub async fn restart_gateway(&mut self) -> Result<(), StackError> {
        self.stop_gateway().await;
        self.start_gateway().await
    }

    /// Stops the gateway (GOAWAY, drain, usage flushed); its address refuses connections until
    /// [`LocalStack::start_gateway`].
    pub async fn stop_gateway(&mut self) {
        if let Some(old) = self.gateway.take() {
            old.shutdown().await;
        }
    }

    /// Starts the gateway again on its address and certificate (retrying while the old one's
    /// port is still being released); does nothing when it runs.
    pub async fn start_gateway(&mut self) -> Result<(), StackError> {
        if self.gateway.is_some() {
            return Ok(());
        }
        let mut last = None;
        for _ in 0..50 {
            match start_gateway(&self.gateway_config, &self.tls, &self.gateway_token).await {
                Ok(g) => {
                    self.gateway = Some(g);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| StackError::Setup("gateway restart".into())))
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        self.control_plane.stop().await;
        self.node.abort();
    }
}

async fn start_gateway(
    config: &GatewayConfig,
    tls: &Arc<TlsSource>,
    token: &str,
) -> Result<Gateway, StackError> {
    let url = config
        .control_plane_url
        .clone()
        .ok_or_else(|| StackError::Setup("no control plane URL".into()))?;
    let client = Arc::new(ControlPlaneClient::new(
        url,
        Secret::new(token),
        Duration::from_secs(5),
    )?);
    let backends = httvps_gateway::wiring::control_plane_backends(client, config);
    Ok(Gateway::start_with(config.clone(), tls.clone(), backends).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_path_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let options = StackOptions {
            data_dir: dir.path().to_owned(),
            ..StackOptions::default()
        };
        let first = secret_path(&options).unwrap();
        secret_path::validate(&first, false).unwrap();
        assert_eq!(secret_path(&options).unwrap(), first, "kept across starts");
        let other = tempfile::tempdir().unwrap();
        let fresh = StackOptions {
            data_dir: other.path().to_owned(),
            ..StackOptions::default()
        };
        assert_ne!(
            secret_path(&fresh).unwrap(),
            first,
            "random per data folder"
        );
        // A weak kept path is not used.
        std::fs::write(dir.path().join("secret-path"), "/httvps\n").unwrap();
        assert!(secret_path(&options).is_err());
        // An explicit path wins.
        let given = StackOptions {
            path: "/given".into(),
            ..options
        };
        assert_eq!(secret_path(&given).unwrap(), "/given");
    }
}
