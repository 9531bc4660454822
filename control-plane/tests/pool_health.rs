//! Health probes and the health checker against a real in-process Shadowsocks server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::ss::{restart_ss_server, start_http_target, start_local_ss_server, stop_ss_server};
use httvps_control_plane::pool::{
    CheckedNode, Health, HealthCheckConfig, HealthChecker, HealthPolicy, HealthState, HealthStore,
    HealthStoreError, NodeEndpoint, ProbeError, ProbePhase, ProbeRecord, ProbeTarget, Prober,
    Transition,
};
use shadowsocks::crypto::CipherKind;
use tokio::net::TcpListener;
use uuid::Uuid;

const PASSWORD: &str = "pool-health-test-password";
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn endpoint(addr: SocketAddr, cipher: &str, secret: &str) -> NodeEndpoint {
    NodeEndpoint::new(&addr.ip().to_string(), addr.port(), cipher, secret).unwrap()
}

#[tokio::test]
async fn probe_succeeds_through_a_real_node_and_reports_latency() {
    let (target_addr, _target) = start_http_target().await;
    let (ss_addr, server) = start_local_ss_server(CipherKind::CHACHA20_POLY1305, PASSWORD).await;
    let prober = Prober::new();
    let target = ProbeTarget::http_head("127.0.0.1", target_addr.port());
    let node = endpoint(ss_addr, "chacha20-ietf-poly1305", PASSWORD);

    let mut latencies = Vec::new();
    for _ in 0..5 {
        let latency = prober.probe(&node, &target, PROBE_TIMEOUT).await.unwrap();
        assert!(latency > Duration::ZERO && latency < PROBE_TIMEOUT);
        latencies.push(latency);
    }
    println!("probe latency through a local chacha20-ietf-poly1305 node: {latencies:?}");
    server.abort();
}

#[tokio::test]
async fn probe_with_wrong_password_fails() {
    let (target_addr, _target) = start_http_target().await;
    let (ss_addr, server) = start_local_ss_server(CipherKind::CHACHA20_POLY1305, PASSWORD).await;
    let target = ProbeTarget::http_head("127.0.0.1", target_addr.port());
    let wrong = endpoint(ss_addr, "chacha20-ietf-poly1305", "not-the-password");
    let timeout = Duration::from_millis(700);
    // AEAD servers silently swallow a stream that does not decrypt: no reply ever comes.
    let err = Prober::new()
        .probe(&wrong, &target, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::Timeout {
                phase: ProbePhase::AwaitingReply,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-password"));
    println!("wrong password (aes/chacha AEAD): {err}");
    server.abort();
}

#[tokio::test]
async fn probe_2022_cipher_right_and_wrong_key() {
    let (target_addr, _target) = start_http_target().await;
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes
    let wrong_key = "HwAeAB0AHAAbABoAGQAYABcAFgAVABQAEwASABEAEAA="; // 32 bytes
    let (ss_addr, server) =
        start_local_ss_server(CipherKind::AEAD2022_BLAKE3_AES_256_GCM, key).await;
    let prober = Prober::new();
    let target = ProbeTarget::http_head("127.0.0.1", target_addr.port());

    let good = endpoint(ss_addr, "2022-blake3-aes-256-gcm", key);
    let latency = prober.probe(&good, &target, PROBE_TIMEOUT).await.unwrap();
    println!("probe latency through a local 2022-blake3-aes-256-gcm node: {latency:?}");

    // 2022 servers reset a stream that does not decrypt.
    let bad = endpoint(ss_addr, "2022-blake3-aes-256-gcm", wrong_key);
    let err = prober
        .probe(&bad, &target, PROBE_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::NoReply { .. }), "{err:?}");
    println!("wrong key (2022): {err}");
    server.abort();
}

#[tokio::test]
async fn probe_to_a_closed_port_is_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let node = endpoint(closed, "aes-256-gcm", PASSWORD);
    let target = ProbeTarget::http_head("127.0.0.1", 80);
    let err = Prober::new()
        .probe(&node, &target, PROBE_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::ConnectFailed(_)), "{err:?}");
    assert_eq!(err.kind(), "connect");
}

/// In-memory [`HealthStore`]: one node, its state, every recorded probe.
#[derive(Debug, Default)]
struct MemoryStore {
    nodes: Mutex<HashMap<Uuid, (NodeEndpoint, HealthState)>>,
    records: Mutex<Vec<ProbeRecord>>,
}

impl MemoryStore {
    fn with_node(id: Uuid, endpoint: NodeEndpoint) -> Self {
        let store = MemoryStore::default();
        store
            .nodes
            .lock()
            .unwrap()
            .insert(id, (endpoint, HealthState::default()));
        store
    }

    fn health(&self, id: Uuid) -> Health {
        self.nodes.lock().unwrap()[&id].1.health
    }

    fn transitions(&self) -> Vec<Transition> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.transition)
            .collect()
    }
}

impl HealthStore for MemoryStore {
    async fn nodes_to_check(&self) -> Result<Vec<CheckedNode>, HealthStoreError> {
        Ok(self
            .nodes
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (endpoint, state))| CheckedNode {
                id: *id,
                endpoint: endpoint.clone(),
                state: *state,
            })
            .collect())
    }

    async fn record_probe(&self, record: ProbeRecord) -> Result<(), HealthStoreError> {
        if let Some(node) = self.nodes.lock().unwrap().get_mut(&record.node) {
            node.1 = record.state;
        }
        self.records.lock().unwrap().push(record);
        Ok(())
    }
}

#[tokio::test]
async fn checker_follows_a_node_going_down_and_coming_back() {
    let (target_addr, _target) = start_http_target().await;
    let (ss_addr, server) = start_local_ss_server(CipherKind::CHACHA20_POLY1305, PASSWORD).await;
    let node_id = Uuid::new_v4();
    let store = Arc::new(MemoryStore::with_node(
        node_id,
        endpoint(ss_addr, "chacha20-ietf-poly1305", PASSWORD),
    ));
    let policy = HealthPolicy {
        unhealthy_after: 3,
        healthy_after: 2,
    };
    let mut config =
        HealthCheckConfig::new(ProbeTarget::http_head("127.0.0.1", target_addr.port()));
    config.policy = policy;
    config.probe_timeout = Duration::from_millis(800);
    let checker = HealthChecker::new(store.clone(), Prober::new(), config);

    let up = Transition {
        from: Health::Unknown,
        to: Health::Healthy,
    };
    assert_eq!(checker.run_once().await, vec![(node_id, None)]);
    assert_eq!(store.health(node_id), Health::Unknown);
    assert_eq!(checker.run_once().await, vec![(node_id, Some(up))]);
    assert_eq!(store.health(node_id), Health::Healthy);

    stop_ss_server(server, ss_addr).await;
    let down = Transition {
        from: Health::Healthy,
        to: Health::Unhealthy,
    };
    for tick in 1..policy.unhealthy_after {
        assert_eq!(
            checker.run_once().await,
            vec![(node_id, None)],
            "tick {tick}"
        );
        assert_eq!(store.health(node_id), Health::Healthy);
    }
    assert_eq!(checker.run_once().await, vec![(node_id, Some(down))]);
    assert_eq!(store.health(node_id), Health::Unhealthy);

    let server = restart_ss_server(ss_addr, CipherKind::CHACHA20_POLY1305, PASSWORD).await;
    let back = Transition {
        from: Health::Unhealthy,
        to: Health::Healthy,
    };
    assert_eq!(checker.run_once().await, vec![(node_id, None)]);
    assert_eq!(checker.run_once().await, vec![(node_id, Some(back))]);
    assert_eq!(store.health(node_id), Health::Healthy);

    assert_eq!(store.transitions(), vec![up, down, back]);
    let records = store.records.lock().unwrap().clone();
    assert_eq!(records.len(), 2 + 3 + 2);
    let failures: Vec<_> = records.iter().filter(|r| !r.outcome.is_success()).collect();
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|r| r.node == node_id && r.at_ms > 0));
    server.abort();
}

#[tokio::test]
async fn checker_probes_many_nodes_concurrently_and_run_stops_on_shutdown() {
    let (target_addr, _target) = start_http_target().await;
    let (ss_addr, server) = start_local_ss_server(CipherKind::AES_256_GCM, PASSWORD).await;
    let store = Arc::new(MemoryStore::default());
    let mut good = Vec::new();
    for i in 0..20 {
        let id = Uuid::new_v4();
        // every fourth node has the wrong password.
        let secret = if i % 4 == 0 { "wrong" } else { PASSWORD };
        if i % 4 != 0 {
            good.push(id);
        }
        store.nodes.lock().unwrap().insert(
            id,
            (
                endpoint(ss_addr, "aes-256-gcm", secret),
                HealthState::default(),
            ),
        );
    }
    let mut config =
        HealthCheckConfig::new(ProbeTarget::http_head("127.0.0.1", target_addr.port()));
    config.policy = HealthPolicy {
        unhealthy_after: 1,
        healthy_after: 1,
    };
    config.probe_timeout = Duration::from_millis(600);
    config.concurrency = 4;
    let checker = HealthChecker::new(store.clone(), Prober::new(), config);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(checker.run(Duration::from_millis(50), async {
        let _ = stop_rx.await;
    }));
    tokio::time::timeout(Duration::from_secs(20), async {
        while store.records.lock().unwrap().len() < 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("first round did not finish");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run did not stop on shutdown")
        .unwrap();

    let nodes = store.nodes.lock().unwrap();
    for (id, (_, state)) in nodes.iter() {
        let expected = if good.contains(id) {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        assert_eq!(state.health, expected, "{id}");
    }
    server.abort();
}
