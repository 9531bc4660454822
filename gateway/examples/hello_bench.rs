//! A reconnect storm against the real deployment: `DEVICES` devices say HELLO to the
//! `httvps-gateway` binary at once (`CONCURRENCY` at a time), and the gateway checks each with the
//! `httvps-control-plane` binary on PostgreSQL and registers its session there, with Redis as the
//! shared state. Both servers are separate processes, started from this program's target
//! directory; the clients (TLS, WebSocket, HELLO) run in this process. It prints HELLO/s, the
//! storm's duration, HELLO latency p50/p99, refusals by code and the CPU per HELLO of each
//! server, PostgreSQL, Redis and the clients.
//! It asserts nothing.
//!
//! ```sh
//! cargo build --release -p httvps-gateway -p httvps-control-plane --bins --example hello_bench
//! ulimit -n 12000
//! $CARGO_TARGET_DIR/release/examples/hello_bench [--devices 10000] [--concurrency 256] \
//!     [--postgres postgres://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379] \
//!     [--rounds 2] [--gateway-env KEY=VALUE]... [--cp-env KEY=VALUE]...
//! ```
//!
//! Round 1 is cold: neither the gateway's entitlement cache nor the control plane's validation
//! cache knows a device. Every session stays open until its round ends (a storm, not a trickle),
//! then all close; later rounds are warm.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../deploy/bench/src/proc_stat.rs"]
mod proc_stat;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestClient;
use futures_util::StreamExt;
use httvps_control_plane::auth::token;
use httvps_control_plane::model::ResetStrategy;
use httvps_control_plane::store::{
    NewDevice, NewNode, NewPlan, NewSubscription, Store, StoreOptions,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

type Failure = Box<dyn std::error::Error>;

struct Args {
    postgres: String,
    redis: String,
    devices: usize,
    concurrency: usize,
    rounds: usize,
    gateway_env: Vec<(String, String)>,
    cp_env: Vec<(String, String)>,
}

fn key_value(kv: Option<String>) -> Option<(String, String)> {
    let kv = kv?;
    let (k, v) = kv.split_once('=')?;
    Some((k.to_owned(), v.to_owned()))
}

fn args() -> Args {
    let mut a = Args {
        postgres: "postgres://postgres@127.0.0.1:5432/test".into(),
        redis: "redis://127.0.0.1:6379".into(),
        devices: 10_000,
        concurrency: 256,
        rounds: 2,
        gateway_env: Vec::new(),
        cp_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let number = |v: Option<String>, d: usize| v.and_then(|v| v.parse().ok()).unwrap_or(d);
        match flag.as_str() {
            "--postgres" => a.postgres = it.next().unwrap_or(a.postgres),
            "--redis" => a.redis = it.next().unwrap_or(a.redis),
            "--devices" => a.devices = number(it.next(), a.devices).max(1),
            "--concurrency" => a.concurrency = number(it.next(), a.concurrency).max(1),
            "--rounds" => a.rounds = number(it.next(), a.rounds).max(1),
            "--gateway-env" => a.gateway_env.extend(key_value(it.next())),
            "--cp-env" => a.cp_env.extend(key_value(it.next())),
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

/// `target/<profile>/NAME`, beside `target/<profile>/examples/hello_bench`.
fn sibling_bin(name: &str) -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell the target directory")?;
    let bin = dir.join(name);
    if !bin.exists() {
        return Err(format!(
            "{} does not exist: cargo build -p httvps-gateway -p httvps-control-plane --bins",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn free_port() -> Result<u16, Failure> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cpu_secs(pid: Option<u32>) -> f64 {
    pid.and_then(proc_stat::cpu_ticks)
        .map_or(0.0, |t| t as f64 / proc_stat::clock_ticks())
}

async fn store_at(url: &str, connections: u32) -> Result<Store, Failure> {
    Ok(Store::connect(
        url,
        &StoreOptions {
            max_connections: connections,
            ..StoreOptions::default()
        },
    )
    .await?)
}

/// One plan, one node, a gateway token and `devices` users with a subscription and one device
/// each. Returns the gateway token and the devices' credentials.
async fn seed(
    url: &str,
    devices: usize,
    node: SocketAddr,
) -> Result<(String, Vec<(String, Vec<u8>)>), Failure> {
    let store = store_at(url, 8).await?;
    store.migrate().await?;
    let plan = store
        .create_plan(
            "bench",
            &NewPlan {
                name: "bench".into(),
                device_limit: 5,
                session_limit: 5,
                quota_bytes: Some(1 << 40),
                reset_strategy: ResetStrategy::CalendarMonth,
                duration_days: None,
                allowed_regions: vec![],
            },
        )
        .await?;
    store
        .create_node(
            "bench",
            &NewNode {
                name: "node-1".into(),
                host: node.ip().to_string(),
                port: node.port(),
                cipher: "chacha20-ietf-poly1305".into(),
                secret: "node-password-1".into(),
                region_id: None,
                groups: vec![],
                weight: 100,
                capacity: 1_000_000,
            },
        )
        .await?;
    let gateway_token = token::generate();
    store
        .create_gateway("bench", "bench-gw", &token::hash(&gateway_token))
        .await?;
    let made = futures_util::stream::iter(0..devices)
        .map(|i| {
            let store = store.clone();
            let plan = plan.id;
            async move {
                let user = store
                    .create_user("bench", &format!("user-{i}"), None)
                    .await?;
                let subscription = NewSubscription {
                    plan_id: plan,
                    on_hold: false,
                    queued: false,
                };
                store
                    .create_subscription("bench", user.id, &subscription)
                    .await?;
                let secret = token::generate();
                let device = NewDevice {
                    user_id: user.id,
                    name: "phone".into(),
                    token_hash: token::hash(&secret),
                };
                let d = store.create_device("bench", &device).await?;
                Ok::<_, Failure>((d.id.to_string(), secret.into_bytes()))
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    store.close().await;
    // Statistics as a database in service has them: without them the planner takes the freshly
    // filled tables for empty ones, and the plans it keeps for prepared statements scan.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query("ANALYZE").execute(&mut db).await?;
    made.into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|d| (gateway_token, d))
}

/// A server child process; its output is drained (kept for a failure message).
struct Server {
    child: Child,
    name: &'static str,
}

impl Server {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = self.name;
    }
}

fn drain(child: &mut Child) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

async fn start_control_plane(
    args: &Args,
    db_url: &str,
    redis_prefix: &str,
) -> Result<(Server, u16), Failure> {
    let port = free_port()?;
    let mut command = Command::new(sibling_bin("httvps-control-plane")?);
    command
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("REDIS_URL", &args.redis)
        .env("HTTVPS_CP_REDIS_PREFIX", redis_prefix)
        .env("HTTVPS_CP_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "HTTVPS_CP_JWT_SECRET",
            "bench-secret-bench-secret-bench-secret",
        )
        .env("HTTVPS_CP_DB_MAX_CONNECTIONS", "32")
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(args.cp_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let server = Server {
        child: command.spawn()?,
        name: "control plane",
    };
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let waited = Instant::now();
    loop {
        match reqwest::get(&ready).await {
            Ok(r) if r.status().is_success() => break,
            _ if waited.elapsed() > Duration::from_secs(30) => {
                return Err("the control plane did not become ready within 30 s".into())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok((server, port))
}

async fn start_gateway(
    args: &Args,
    cp_port: u16,
    gateway_token: &str,
    redis_prefix: &str,
) -> Result<(Server, SocketAddr, String), Failure> {
    let dir = std::env::temp_dir().join(format!("hello-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("gateway.toml");
    // The clients' secret path and subprotocol (tests/common), loopback nodes.
    std::fs::write(
        &config,
        format!(
            "path = \"{}\"\nsubprotocol = \"httvps.v1\"\nallow-private-targets = true\n",
            common::PATH
        ),
    )?;
    let mut command = Command::new(sibling_bin("httvps-gateway")?);
    command
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--control-plane-url",
            &format!("http://127.0.0.1:{cp_port}"),
        ])
        .env("HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN", gateway_token)
        .env("REDIS_URL", &args.redis)
        .env("HTTVPS_GATEWAY_REDIS_PREFIX", redis_prefix)
        .env(
            "HTTVPS_GATEWAY_MAX_SESSIONS",
            (args.devices * 2).to_string(),
        )
        // Every client comes from 127.0.0.1 here.
        .env(
            "HTTVPS_GATEWAY_MAX_CONNECTIONS_PER_IP",
            (args.devices * 2).to_string(),
        )
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(args.gateway_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut output = drain(&mut child);
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = output.recv().await {
            if line.starts_with("connect with:") {
                return Some(line);
            }
            eprintln!("gateway: {line}");
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the gateway printed no connect line")?;
    tokio::spawn(async move {
        while let Some(line) = output.recv().await {
            eprintln!("gateway: {line}");
        }
    });
    // connect with: httvps://DEVICE_ID:TOKEN@HOST:PORT/PATH?fp=FP
    let port: u16 = line
        .split("@HOST:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or("no port in the connect line")?;
    let fingerprint = line
        .split("fp=")
        .nth(1)
        .ok_or("no fingerprint in the connect line")?
        .trim()
        .to_owned();
    let server = Server {
        child,
        name: "gateway",
    };
    Ok((
        server,
        SocketAddr::from(([127, 0, 0, 1], port)),
        fingerprint,
    ))
}

struct Storm {
    elapsed: Duration,
    latencies: Vec<Duration>,
    refusals: BTreeMap<String, usize>,
    sessions: Vec<TestClient>,
}

/// Every device says HELLO once, `concurrency` at a time; the sessions stay open.
async fn storm(
    gateway: SocketAddr,
    fingerprint: &str,
    devices: &Arc<Vec<(String, Vec<u8>)>>,
    concurrency: usize,
) -> Storm {
    let started = Instant::now();
    let results = futures_util::stream::iter(0..devices.len())
        .map(|i| {
            let devices = devices.clone();
            let fingerprint = fingerprint.to_owned();
            async move {
                let (device, token) = &devices[i];
                let t = Instant::now();
                let outcome = TestClient::try_connect_to(gateway, &fingerprint, device, token)
                    .await
                    .map_err(|e| format!("{e:?}"));
                (t.elapsed(), outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(results.len());
    let mut refusals = BTreeMap::new();
    let mut sessions = Vec::with_capacity(results.len());
    for (latency, outcome) in results {
        match outcome {
            Ok(session) => {
                latencies.push(latency);
                sessions.push(session);
            }
            Err(e) => *refusals.entry(e).or_insert(0) += 1,
        }
    }
    latencies.sort();
    Storm {
        elapsed,
        latencies,
        refusals,
        sessions,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = args();
    if let Some(limit) = proc_stat::open_file_limit() {
        // One socket per session here; the gateway, its own process, inherits the limit.
        if limit < args.devices as u64 + 1_000 {
            return Err(format!(
                "the open-file limit {limit} is too low for {} sessions: run `ulimit -n {}` first",
                args.devices,
                args.devices + 2_000
            )
            .into());
        }
    }
    let name = format!("httvps_hello_{}", uuid::Uuid::new_v4().simple());
    let admin = store_at(&args.postgres, 1).await?;
    admin
        .execute_raw(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await;
    let base = args
        .postgres
        .rsplit_once('/')
        .map_or(args.postgres.as_str(), |(b, _)| b);
    let db_url = format!("{base}/{name}");
    let outcome = run(&args, &db_url, &name).await;
    let admin = store_at(&args.postgres, 1).await?;
    admin
        .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    outcome
}

async fn run(args: &Args, db_url: &str, prefix: &str) -> Result<(), Failure> {
    let node = common::start_node().await;
    let seeding = Instant::now();
    let (gateway_token, devices) = seed(db_url, args.devices, common::node_addr(&node)).await?;
    println!(
        "seeded {} devices in {:.1} s",
        devices.len(),
        seeding.elapsed().as_secs_f64()
    );
    let devices = Arc::new(devices);
    let (cp, cp_port) = start_control_plane(args, db_url, prefix).await?;
    let (gateway, addr, fingerprint) = start_gateway(args, cp_port, &gateway_token, prefix).await?;
    println!(
        "HELLO storm: {} devices, {} at a time; gateway and control plane (PostgreSQL, Redis) are separate processes, the clients are this one",
        devices.len(),
        args.concurrency
    );
    let ticks = proc_stat::clock_ticks();
    // CPU of every party: the servers, PostgreSQL and Redis (whoever else uses them is counted
    // too), and this process's clients (their TLS handshakes).
    let others = || {
        [
            proc_stat::cpu_ticks_named("postgres"),
            proc_stat::cpu_ticks_named("redis-server"),
            proc_stat::own_cpu_ticks().unwrap_or(0),
        ]
        .map(|t| t as f64 / ticks)
    };
    for round in 1..=args.rounds {
        let (cp_cpu, gw_cpu) = (cpu_secs(cp.pid()), cpu_secs(gateway.pid()));
        let others_before = others();
        let result = storm(addr, &fingerprint, &devices, args.concurrency).await;
        let accepted = result.latencies.len();
        let per_hello = |secs: f64| secs * 1e6 / accepted.max(1) as f64;
        let others_after = others();
        let [pg, redis, clients] = [0, 1, 2].map(|i| per_hello(others_after[i] - others_before[i]));
        let (gw, cpl) = (
            per_hello(cpu_secs(gateway.pid()) - gw_cpu),
            per_hello(cpu_secs(cp.pid()) - cp_cpu),
        );
        println!(
            "  round {round} ({}): {accepted} accepted in {:.2} s = {:.0} HELLO/s; p50 {:.1} ms, p99 {:.1} ms; CPU per HELLO: gateway {gw:.0} µs, control plane {cpl:.0} µs",
            if round == 1 { "cold" } else { "warm" },
            result.elapsed.as_secs_f64(),
            accepted as f64 / result.elapsed.as_secs_f64(),
            percentile(&result.latencies, 0.5),
            percentile(&result.latencies, 0.99),
        );
        let servers = gw + cpl + pg + redis;
        println!(
            "    CPU per HELLO, the rest: PostgreSQL {pg:.0} µs, Redis {redis:.0} µs, clients (this process) {clients:.0} µs; servers together {servers:.0} µs = at most {:.0} HELLO/s per core with the clients elsewhere",
            1e6 / servers.max(1.0),
        );
        for (why, count) in &result.refusals {
            println!("    refused {count}×: {why}");
        }
        drop(result.sessions);
        // Let the gateway end the sessions (and the control plane record the ends) before the
        // next round: a device's earlier session would count against its limit.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    drop(gateway);
    drop(cp);
    Ok(())
}
