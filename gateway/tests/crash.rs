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

use binary::{base_toml, Binary};
use common::cp::TestCp;
use common::*;
use httvps_gateway::GatewayConfig;
use httvps_proto::{HelloErrorCode, StreamKind, TargetAddr};
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);
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
            "{}control-plane-timeout = \"3s\"\nsession-lease = \"{}s\"\n\
             shared-state-interval = \"200ms\"\nregistry-heartbeat-interval = \"500ms\"\n{extra}",
            base_toml(),
            LEASE.as_secs()
        ),
    )
    .unwrap();
    file
}

/// Issue 15 item 6: on a plan of one session, the device connects through gateway b soon after
/// gateway a (holding its session) is SIGKILLed: the shared slot lapses with a's lease, and the
/// control plane ends the session (its slot is gone, or a's registry heartbeat is).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_gateways_session_is_released_within_its_lease() {
    killed_gateway_releases_its_session(false).await;
}

/// Issue 15 item 6, the gateway restarted at once (as a supervisor does) with the same token, so
/// its registry heartbeat never stops: the lapsed slot alone tells the control plane.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_and_restarted_gateways_session_is_released_within_its_lease() {
    killed_gateway_releases_its_session(true).await;
}

async fn killed_gateway_releases_its_session(restart: bool) {
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

    let on_a = a.connect(&sub).await;
    echo_once(&on_a, echo, b"through gateway a").await;
    let refused = TestClient::try_connect(&b, &device, sub.token.as_bytes())
        .await
        .err()
        .expect("the plan's one session is taken");
    assert_eq!(refused.code, HelloErrorCode::TooManySessions);

    a.child.kill().await.unwrap(); // SIGKILL
    let killed = Instant::now();
    let redis_env = [
        ("REDIS_URL", redis_url()),
        ("HTTVPS_GATEWAY_REDIS_PREFIX", prefix.clone()),
    ];
    let _restarted = if restart {
        Some(Binary::start(&cp, &config, &redis_env).await)
    } else {
        None
    };
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
    let sessions = cp.sessions_of(sub.device).await;
    let dead = sessions
        .iter()
        .find(|s| s.id == Uuid::from_bytes(on_a.session_id))
        .expect("a's session is recorded");
    let reasons: &[&str] = if restart {
        &["lease_lost"]
    } else {
        &["lease_lost", "gateway_lost"]
    };
    assert!(
        reasons.contains(&dead.end_reason.as_deref().unwrap_or("live")),
        "a's session ended as {:?}",
        dead.end_reason
    );
    jobs.abort();
}

/// Issue 15 item 7: usage survives a SIGKILL mid-transfer. The gateway reports usage only at
/// shutdown here (`usage-report-interval = 1h`), so everything it relayed is in its spool; the
/// restarted gateway replays it, and the ledger ends within the last second of traffic of what
/// reached the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_survives_a_sigkill_mid_transfer() {
    let cp = Arc::new(TestCp::start().await);
    let node = start_node().await;
    cp.add_node(&node, "n1").await;
    let sub = cp.subscriber(None, 5).await;
    // 64 MiB paced at 64 KiB per 10 ms: well over the few seconds before the kill.
    let (source, _) = paced_source_server(64 * 1024 * 1024, Duration::from_millis(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("usage.spool");
    let config = gateway_toml(
        dir.path(),
        &format!(
            "usage-report-interval = \"1h\"\nusage-spool = \"{}\"\n",
            spool.display()
        ),
    );
    let mut gw = Binary::start(&cp, &config, &[]).await;
    let client = gw.connect(&sub).await;
    let mut stream = client
        .open_with(
            StreamKind::Tcp,
            TargetAddr::socket(source).unwrap(),
            b"",
            true,
        )
        .await;
    stream.accepted().await.unwrap();
    let started = Instant::now();
    let mut received = 0u64;
    while received < 12 * 1024 * 1024 {
        match stream.next(T).await {
            Some(StreamEv::Data(d)) => received += d.len() as u64,
            other => panic!("before the kill: {other:?}"),
        }
    }
    gw.child.kill().await.unwrap(); // SIGKILL mid-transfer
    let rate = received as f64 / started.elapsed().as_secs_f64();
    // What was still on its way arrives until the connection drops.
    while let Some(StreamEv::Data(d)) = stream.next(Duration::from_secs(2)).await {
        received += d.len() as u64;
    }
    drop(client);

    // The same gateway (token, spool) comes back and replays what it had not reported.
    let mut again = Binary::start(&cp, &config, &[]).await;
    eventually(T, "the replayed usage reaches the ledger", || async {
        cp.used_bytes(sub.user).await > 0
    })
    .await;
    // Killed again right after its replay (the spool may still hold the reports it sent), and
    // started once more: a replayed report that already landed is not counted twice.
    again.child.kill().await.unwrap();
    let ledger = cp.used_bytes(sub.user).await as u64;
    let _third = Binary::start(&cp, &config, &[]).await;
    eventually(
        T,
        "the spool is empty once everything is accepted",
        || async { std::fs::read_to_string(&spool).is_ok_and(|s| s.contains("\"reports\":[]")) },
    )
    .await;
    assert_eq!(
        cp.used_bytes(sub.user).await as u64,
        ledger,
        "replays count once"
    );
    println!(
        "received {received} bytes at {:.1} MB/s, ledger {ledger} ({} bytes short)",
        rate / 1e6,
        received as i64 - ledger as i64
    );
    // One spool interval (1 s) of traffic, plus a quarter for the spool write itself (fsync).
    assert!(
        ledger as f64 >= received as f64 - 1.25 * rate,
        "the ledger ({ledger}) is within a second of traffic ({rate:.0} B) of what was relayed \
         ({received})"
    );
    // Never more than was relayed, bar what sat in the socket buffers at the kill.
    assert!(
        ledger <= received + 4 * 1024 * 1024,
        "ledger {ledger}, relayed {received}"
    );
}
