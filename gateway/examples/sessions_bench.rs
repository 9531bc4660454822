//! Memory per idle session and HELLO throughput. Prints figures; asserts nothing.
//!
//! ```sh
//! ulimit -n 20000   # the gateway holds one socket per session (the clients are a child process)
//! CARGO_TARGET_DIR=/work/target cargo run --release -p httvps-gateway --example sessions_bench
//! # optional: SESSIONS=10000 HELLOS=2000 DEVICES=1000 CONCURRENCY=64
//! ```
//!
//! 1. **Memory per idle session**: the gateway runs in this process with the in-memory
//!    `StaticAuthority` (the figure is the gateway's own memory; the control plane's answer is
//!    not kept per session). A child process (this program with `clients`) opens `SESSIONS`
//!    established sessions over TLS WebSocket and keeps them idle; this process's RSS before and
//!    after, divided by the sessions, is the figure. The clients' memory is not in it.
//! 2. **HELLO throughput**: TLS + WebSocket upgrade + HELLO → HELLO_ACK, `CONCURRENCY` at a time,
//!    clients in this process (they share the CPU with the gateway, so the figures are a lower
//!    bound): against `StaticAuthority`, then against the REAL control plane (in process,
//!    SQLite) with the entitlement cache cold (every device validated by the control plane) and
//!    warm (validation from the cache; the session start still goes to the control plane).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../deploy/bench/src/proc_stat.rs"]
mod proc_stat;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cp::TestCp;
use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    proc_stat::rss_kib(std::process::id()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("clients") {
        return clients(&args[2..]).await;
    }
    let sessions = env_usize("SESSIONS", 10_000);
    let hellos = env_usize("HELLOS", 2_000);
    let devices = env_usize("DEVICES", 1_000);
    let concurrency = env_usize("CONCURRENCY", 64);
    if let Some(limit) = proc_stat::open_file_limit() {
        if limit < sessions as u64 + 1000 {
            eprintln!(
                "open-file limit {limit} is too low for {sessions} sessions: run `ulimit -n {}` first",
                sessions + 2000
            );
            std::process::exit(2);
        }
    }
    idle_memory(sessions).await;
    hello_throughput_static(hellos, concurrency).await;
    hello_throughput_control_plane(devices, concurrency).await;
}

fn bench_config() -> httvps_gateway::GatewayConfig {
    httvps_gateway::GatewayConfig {
        // Every session here uses the one static device (and the control-plane run reuses its
        // devices): the per-device session limit (default 2) would refuse all but two of them.
        // 0 turns the limit off; the figures are per session, not per device.
        device_session_limit: 0,
        idle_timeout: Duration::from_secs(600),
        handshake_timeout: Duration::from_secs(60),
        ..test_config()
    }
}

/// Memory per idle session: RSS of this process (the gateway only) before and after the child
/// opened `n` sessions.
async fn idle_memory(n: usize) {
    let gw = TestGateway::start_static(bench_config()).await;
    // Warm up: a few sessions opened and closed, so lazily built state is in the baseline.
    for _ in 0..20 {
        drop(gw.client().await);
    }
    wait_sessions(&gw, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("clients")
        .arg(gw.addr().to_string())
        .arg(gw.fingerprint())
        .arg(n.to_string())
        .arg(&gw.device)
        .arg(String::from_utf8_lossy(&gw.token).into_owned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap_or_default();
    assert!(line.starts_with("ready"), "child: {line}");
    let open_secs = started.elapsed().as_secs_f64();
    wait_sessions(&gw, n).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    let open = gw.gateway.stats().sessions_open.load(Ordering::Relaxed);
    println!(
        "idle sessions: {open} open (StaticAuthority; clients in a child process, opened in {open_secs:.1} s)"
    );
    println!(
        "  gateway RSS {:.1} MiB before, {:.1} MiB after → {:.1} KiB per idle session",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / open.max(1) as f64
    );
    // Closing stdin tells the child to exit.
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.shutdown().await;
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    wait_sessions(&gw, 0).await;
}

async fn wait_sessions(gw: &TestGateway, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while gw.gateway.stats().sessions_open.load(Ordering::Relaxed) != n && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Child mode: open `n` sessions, print `ready`, keep them idle until stdin closes.
async fn clients(args: &[String]) {
    let addr: SocketAddr = args[0].parse().unwrap();
    let fingerprint = args[1].clone();
    let n: usize = args[2].parse().unwrap();
    let device = args[3].clone();
    let token = args[4].clone().into_bytes();
    let opened = futures_util::stream::iter(0..n)
        .map(|_| {
            let fingerprint = fingerprint.clone();
            let device = device.clone();
            let token = token.clone();
            async move {
                TestClient::try_connect_to(addr, &fingerprint, &device, &token)
                    .await
                    .expect("HELLO accepted")
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    println!("ready {}", opened.len());
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    drop(opened);
}

/// Runs `attempts` HELLOs, `concurrency` at a time; returns (elapsed, sorted latencies).
async fn run_hellos(
    addr: SocketAddr,
    fingerprint: &str,
    credentials: Arc<Vec<(String, Vec<u8>)>>,
    attempts: usize,
    concurrency: usize,
) -> (Duration, Vec<Duration>, usize) {
    let started = Instant::now();
    let results = futures_util::stream::iter(0..attempts)
        .map(|i| {
            let credentials = credentials.clone();
            let fingerprint = fingerprint.to_owned();
            async move {
                let (device, token) = &credentials[i % credentials.len()];
                let t = Instant::now();
                let ok = TestClient::try_connect_to(addr, &fingerprint, device, token)
                    .await
                    .is_ok();
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed();
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    let mut latencies: Vec<Duration> = results.into_iter().map(|(d, _)| d).collect();
    latencies.sort();
    (elapsed, latencies, failed)
}

fn report(label: &str, attempts: usize, elapsed: Duration, latencies: &[Duration], failed: usize) {
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "  {label}: {attempts} HELLOs in {:.2} s = {:.0} HELLO/s accepted ({failed} refused); \
         connect+TLS+upgrade+HELLO p50 {:?} p99 {:?}",
        elapsed.as_secs_f64(),
        (attempts - failed) as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
}

async fn hello_throughput_static(attempts: usize, concurrency: usize) {
    let gw = TestGateway::start_static(bench_config()).await;
    let credentials = Arc::new(vec![(gw.device.clone(), gw.token.clone())]);
    println!("HELLO throughput, {concurrency} concurrent, clients in process:");
    // Warm-up.
    run_hellos(
        gw.addr(),
        &gw.fingerprint(),
        credentials.clone(),
        100,
        concurrency,
    )
    .await;
    let (elapsed, latencies, failed) = run_hellos(
        gw.addr(),
        &gw.fingerprint(),
        credentials,
        attempts,
        concurrency,
    )
    .await;
    report("StaticAuthority", attempts, elapsed, &latencies, failed);
}

async fn hello_throughput_control_plane(devices: usize, concurrency: usize) {
    let cp = Arc::new(TestCp::start().await);
    let node = start_node().await;
    cp.add_node(&node, "node-1").await;
    let seeding = Instant::now();
    let mut credentials = Vec::with_capacity(devices);
    for _ in 0..devices {
        let sub = cp.subscriber(None, 50).await;
        credentials.push((sub.device.to_string(), sub.token.into_bytes()));
    }
    let seed_secs = seeding.elapsed().as_secs_f64();
    let credentials = Arc::new(credentials);
    let gw = TestGateway::start_with_cp(bench_config(), &cp, &cp.gateway_token).await;
    let (elapsed, latencies, failed) = run_hellos(
        gw.addr(),
        &gw.fingerprint(),
        credentials.clone(),
        devices,
        concurrency,
    )
    .await;
    report(
        &format!("real control plane, cache cold ({devices} devices, seeded in {seed_secs:.1} s)"),
        devices,
        elapsed,
        &latencies,
        failed,
    );
    wait_sessions(&gw, 0).await;
    let (elapsed, latencies, failed) = run_hellos(
        gw.addr(),
        &gw.fingerprint(),
        credentials,
        devices,
        concurrency,
    )
    .await;
    report(
        "real control plane, cache warm (session start still a call)",
        devices,
        elapsed,
        &latencies,
        failed,
    );
    let stats = gw.cache.as_ref().unwrap().stats();
    println!(
        "  entitlement cache: {} hits, {} misses, {} control-plane calls",
        stats.hits.load(Ordering::Relaxed),
        stats.misses.load(Ordering::Relaxed),
        stats.calls.load(Ordering::Relaxed)
    );
}
