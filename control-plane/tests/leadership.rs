//! Periodic work with several replicas: three real `httvps-control-plane serve` processes on one
//! PostgreSQL database. Only the lease holder probes the nodes, so the probe rounds (counted as
//! connections to a node that is a plain TCP listener) come at the rate of one replica; when the
//! leader is killed (SIGKILL, no clean release) another takes over within the lease and the
//! rounds go on.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestDb;
use httvps_control_plane::leader::LEASE;
use httvps_control_plane::store::NewNode;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Seconds between health rounds in the replicas.
const INTERVAL_SECS: u64 = 1;
/// The replicas' leader lease.
const LEASE_SECS: u64 = 3;

/// Counts connections to a TCP listener: every probe of the node is one.
async fn probe_counter() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, count)
}

fn replica(database_url: &str, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("HTTVPS_CP_LISTEN", "127.0.0.1:0")
        .env(
            "HTTVPS_CP_JWT_SECRET",
            "leader-test-secret-leader-test-secret",
        )
        .env("HTTVPS_CP_GATEWAY_CERT_SHA256", "ab".repeat(32))
        .env("HTTVPS_CP_HEALTH_INTERVAL_SECS", INTERVAL_SECS.to_string())
        .env("HTTVPS_CP_JOB_INTERVAL_SECS", "1")
        .env("HTTVPS_CP_PROBE_TIMEOUT_MS", "500")
        .env("HTTVPS_CP_LEADER_LEASE", format!("{LEASE_SECS}s"))
        .env_remove("REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start a replica")
}

/// Probe rounds within `window`.
async fn rounds_in(count: &AtomicUsize, window: Duration) -> usize {
    let before = count.load(Ordering::SeqCst);
    tokio::time::sleep(window).await;
    count.load(Ordering::SeqCst) - before
}

/// The pid in the lease's holder name (`pid 1234 ...`).
fn holder_pid(holder: &str) -> Option<u32> {
    holder.strip_prefix("pid ")?.split(' ').next()?.parse().ok()
}

/// Issue 15 item 11: with two replicas on PostgreSQL both ran every health round (36 probes
/// instead of 18 in 30 s). One lease holder runs them; its death hands them on within the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_runs_the_periodic_work_and_another_takes_over_when_it_dies() {
    let db = TestDb::postgres().await;
    let (port, count) = probe_counter().await;
    db.store
        .create_node(
            "test",
            &NewNode {
                name: "counted".into(),
                host: "127.0.0.1".into(),
                port,
                cipher: "chacha20-ietf-poly1305".into(),
                secret: "secret".into(),
                region_id: None,
                groups: vec![],
                weight: 100,
                capacity: 100,
            },
        )
        .await
        .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Child> = (0..3)
        .map(|i| replica(&db.url, &logs.path().join(format!("replica-{i}.log"))))
        .collect();
    // They start, migrate and elect.
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.store.lease_holder(LEASE).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "no replica took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = Duration::from_secs(6);
    let rounds = rounds_in(&count, window).await;
    let one_replica = (window.as_secs() / INTERVAL_SECS) as usize;
    println!("3 replicas: {rounds} probe rounds in {window:?}");
    assert!(
        (1..=one_replica + 2).contains(&rounds),
        "{rounds} probe rounds in {window:?} with 3 replicas; one replica makes about {one_replica}"
    );

    let holder = db
        .store
        .lease_holder(LEASE)
        .await
        .unwrap()
        .expect("a replica holds the lease");
    let pid = holder_pid(&holder.holder).expect("a pid in the holder");
    let leader = replicas
        .iter()
        .position(|c| c.id() == Some(pid))
        .unwrap_or_else(|| panic!("the holder {holder:?} is one of the replicas"));
    let mut dead = replicas.swap_remove(leader);
    dead.kill().await.expect("SIGKILL the leader");
    let killed = Instant::now();
    let successor = loop {
        if let Some(h) = db.store.lease_holder(LEASE).await.unwrap() {
            if h.holder != holder.holder {
                break h;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(LEASE_SECS * 2 + 2),
            "no replica took the lease over within {:?} of the leader's death",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = killed.elapsed();
    let new_pid = holder_pid(&successor.holder).expect("a pid");
    assert!(
        replicas.iter().any(|c| c.id() == Some(new_pid)),
        "the successor {successor:?} is a live replica"
    );
    println!("leader {pid} killed; {new_pid} took over after {took:?}");
    let rounds = rounds_in(&count, window).await;
    println!("2 replicas after the takeover: {rounds} probe rounds in {window:?}");
    assert!(
        (1..=one_replica + 2).contains(&rounds),
        "{rounds} probe rounds in {window:?} after the takeover"
    );
    for mut r in replicas {
        let _ = r.kill().await;
    }
    db.cleanup().await;
}

/// The lease itself on both databases: one holder at a time (also among parallel takers), the
/// holder renews, others get it only once it expires or is given up.
async fn lease_contract(db: TestDb) {
    let store = &db.store;
    let takers = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .acquire_lease("contract", &format!("r{i}"), 60_000)
                .await
        })
    });
    let mut winners = 0;
    for t in takers {
        winners += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(
        winners, 1,
        "exactly one of 20 parallel takers gets the lease"
    );
    let holder = store
        .lease_holder("contract")
        .await
        .unwrap()
        .unwrap()
        .holder;
    assert!(
        store
            .acquire_lease("contract", &holder, 60_000)
            .await
            .unwrap(),
        "renewal"
    );
    assert!(!store
        .acquire_lease("contract", "other", 60_000)
        .await
        .unwrap());
    store.release_lease("contract", "other").await.unwrap();
    assert!(
        !store
            .acquire_lease("contract", "other", 60_000)
            .await
            .unwrap(),
        "not the holder's release"
    );
    store.release_lease("contract", &holder).await.unwrap();
    assert!(
        store.acquire_lease("contract", "other", 200).await.unwrap(),
        "given up"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.lease_holder("contract").await.unwrap(),
        None,
        "expired"
    );
    assert!(
        store
            .acquire_lease("contract", &holder, 60_000)
            .await
            .unwrap(),
        "expired, so free"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_contract_sqlite() {
    lease_contract(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_contract_postgres() {
    lease_contract(TestDb::postgres().await).await;
}
