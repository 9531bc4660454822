//! A gateway that dies without a goodbye: the `httvps-gateway` binary in a child process, killed
//! with SIGKILL mid-run, beside a real control plane (in process, SQLite), a real Shadowsocks
//! node (in process) and, where gateways share state, the real Redis (`REDIS_URL_TEST`, default
//! `redis://127.0.0.1:6379`, each test under its own key prefix).

mod common;
// Not in `common`: the examples share that, and only tests know the binary's path.
#[path = "common/binary.rs"]
mod binary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binary::Binary;
use common::cp::TestCp;
use common::*;
use httvps_control_plane::store::SessionFilter;
use httvps_gateway::GatewayConfig;
use httvps_proto::HelloErrorCode;
use uuid::Uuid;

/// The session lease of these tests (30 s in production).
const LEASE: Duration = Duration::from_secs(2);

fn redis_url() -> String {
    std::env::var("REDIS_URL_TEST").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn new_prefix() -> String {
    format!("httvps-test-{}", Uuid::new_v4().simple())
}

/// A TOML file for the binary: the test's path, loopback targets, short shared-state periods,
/// and `extra` lines.
fn gateway_toml(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "path = \"{PATH}\"\nallow-private-targets = true\nmetrics-listen = \"127.0.0.1:0\"\n\
             control-plane-timeout = \"3s\"\nsession-lease = \"{}s\"\n\
             shared-state-interval = \"200ms\"\nregistry-heartbeat-interval = \"500ms\"\n{extra}",
            LEASE.as_secs()
        ),
    )
    .unwrap();
    file
}

/// Issue 15 item 6: on a plan of one session, the device connects through gateway b soon after
/// gateway a (holding its session) is SIGKILLed: the shared slot lapses with a's lease and the
/// control plane ends the session once a's registry heartbeat is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_gateways_session_is_released_within_its_lease() {
    let prefix = new_prefix();
    let cp = Arc::new(
        TestCp::start_configured(|c| {
            c.redis_url = Some(redis_url());
            c.redis_prefix = prefix.clone();
            c.redis_timeout = Duration::from_secs(2);
            c.gateway_stale_secs = 2;
        })
        .await,
    );
    // The control plane's maintenance job, every second (the test control plane runs none).
    let state = cp.state().clone();
    let jobs = tokio::spawn(async move {
        loop {
            let _ = httvps_control_plane::jobs::maintenance_round(&state).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let node = start_node().await;
    cp.add_node(&node, "n1").await;
    let echo = echo_server().await;
    let sub = cp.subscriber(None, 1).await;
    let device = sub.device.to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_toml(dir.path(), "gateway-id = \"gw-a\"\n");
    let mut a = Binary::start(
        &cp,
        &config,
        &[
            ("REDIS_URL", redis_url()),
            ("HTTVPS_GATEWAY_REDIS_PREFIX", prefix.clone()),
        ],
    )
    .await;
    let token_b = cp.new_gateway_token("gw-b").await;
    let b = TestGateway::start_with_cp(
        GatewayConfig {
            redis_url: Some(redis_url()),
            redis_prefix: prefix.clone(),
            gateway_id: Some("gw-b".into()),
            session_lease: LEASE,
            shared_state_interval: Duration::from_millis(200),
            registry_heartbeat_interval: Duration::from_millis(500),
            ..test_config()
        },
        &cp,
        &token_b,
    )
    .await;

    let on_a = TestClient::try_connect_to(a.addr, &a.fingerprint, &device, sub.token.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("HELLO refused: {e:?}; gateway: {}", a.output()));
    echo_once(&on_a, echo, b"through gateway a").await;
    let refused = TestClient::try_connect(&b, &device, sub.token.as_bytes())
        .await
        .err()
        .expect("the plan's one session is taken");
    assert_eq!(refused.code, HelloErrorCode::TooManySessions);

    a.child.kill().await.unwrap(); // SIGKILL
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(20);
    let mut refusals = 0;
    let on_b = loop {
        match TestClient::try_connect(&b, &device, sub.token.as_bytes()).await {
            Ok(client) => break client,
            Err(e) => {
                assert_eq!(e.code, HelloErrorCode::TooManySessions, "{e:?}");
                refusals += 1;
                assert!(
                    Instant::now() < deadline,
                    "still refused {:?} after the SIGKILL ({refusals} refusals)",
                    killed.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let took = killed.elapsed();
    println!("admitted through gateway b {took:?} after the SIGKILL ({refusals} refusals)");
    echo_once(&on_b, echo, b"through gateway b").await;
    // Lease (2 s) plus the control plane noticing the lost heartbeat (2 s, rounds of 1 s).
    assert!(
        took < LEASE + Duration::from_secs(4),
        "released {took:?} after the SIGKILL"
    );
    let sessions = cp
        .store()
        .list_sessions(&SessionFilter {
            device_id: Some(sub.device),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let dead = sessions
        .iter()
        .find(|s| s.id == Uuid::from_bytes(on_a.session_id))
        .expect("a's session is recorded");
    assert_eq!(dead.end_reason.as_deref(), Some("gateway_lost"));
    jobs.abort();
}
