//! Benchmark of `POST /v1/gateway/devices/validate` with the server as its own process: this
//! program seeds a fresh database (PostgreSQL: one it creates and drops; or an SQLite file) with a
//! plan, a gateway token and N users with one device each, starts the real
//! `httvps-control-plane serve` as a child process, and drives it over HTTP with C keep-alive
//! connections for S seconds. It prints requests per second, p50/p99/max latency, the server
//! process's CPU time per request (from `/proc/PID/stat`) and the errors. It asserts nothing.
//!
//! ```sh
//! cargo build --release -p httvps-control-plane --bin httvps-control-plane --example validate_bench
//! $CARGO_TARGET_DIR/release/examples/validate_bench \
//!     [--postgres postgres://postgres@127.0.0.1:5432/test | --sqlite] [--concurrency 64] \
//!     [--seconds 10] [--devices 1000] [--server-bin PATH] [--server-env KEY=VALUE]...
//! ```
//!
//! The server binary is looked for beside this program's directory (`target/<profile>/`) unless
//! `--server-bin` names it; `--server-env` passes settings to it (e.g.
//! `HTTVPS_CP_VALIDATION_CACHE_TTL_SECS=0`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_control_plane::auth::token;
use httvps_control_plane::model::ResetStrategy;
use httvps_control_plane::store::{NewDevice, NewPlan, NewSubscription, Store, StoreOptions};

#[path = "../../deploy/bench/src/proc_stat.rs"]
mod proc_stat;

struct Args {
    postgres: Option<String>,
    concurrency: usize,
    seconds: u64,
    devices: usize,
    server_bin: Option<PathBuf>,
    server_env: Vec<(String, String)>,
}

fn args() -> Args {
    let mut a = Args {
        postgres: Some("postgres://postgres@127.0.0.1:5432/test".into()),
        concurrency: 64,
        seconds: 10,
        devices: 1000,
        server_bin: None,
        server_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--postgres" => a.postgres = it.next(),
            "--sqlite" => a.postgres = None,
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).unwrap_or(64),
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(10),
            "--devices" => a.devices = it.next().and_then(|v| v.parse().ok()).unwrap_or(1000),
            "--server-bin" => a.server_bin = it.next().map(PathBuf::from),
            "--server-env" => {
                if let Some((k, v)) = it.next().as_deref().and_then(|kv| kv.split_once('=')) {
                    a.server_env.push((k.to_owned(), v.to_owned()));
                }
            }
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

/// `target/<profile>/httvps-control-plane`, beside `target/<profile>/examples/validate_bench`.
fn default_server_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    Some(profile_dir.join("httvps-control-plane"))
}

/// User plus system CPU time of a process so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let ticks = proc_stat::cpu_ticks(pid)?;
    Some(Duration::from_secs_f64(
        ticks as f64 / proc_stat::clock_ticks(),
    ))
}

/// Ends the server with SIGTERM (its graceful shutdown), then waits for it.
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

async fn admin_store(url: &str) -> Result<Store, Box<dyn std::error::Error>> {
    Ok(Store::connect(
        url,
        &StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        },
    )
    .await?)
}

/// Seeds one plan, a gateway and `devices` users with one device each; returns the gateway
/// token and the devices' ids and tokens.
async fn seed(
    url: &str,
    devices: usize,
) -> Result<(String, Vec<(String, String)>), Box<dyn std::error::Error>> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
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
    let gateway_token = token::generate();
    store
        .create_gateway("bench", "bench-gw", &token::hash(&gateway_token))
        .await?;
    let mut out = Vec::with_capacity(devices);
    for i in 0..devices {
        let user = store
            .create_user("bench", &format!("user-{i}"), None)
            .await?;
        store
            .create_subscription(
                "bench",
                user.id,
                &NewSubscription {
                    plan_id: plan.id,
                    on_hold: false,
                    queued: false,
                },
            )
            .await?;
        let secret = token::generate();
        let d = store
            .create_device(
                "bench",
                &NewDevice {
                    user_id: user.id,
                    name: "d".into(),
                    token_hash: token::hash(&secret),
                },
            )
            .await?;
        out.push((d.id.to_string(), secret));
    }
    store.close().await;
    Ok((gateway_token, out))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let bin = args
        .server_bin
        .clone()
        .or_else(default_server_bin)
        .ok_or("cannot tell where httvps-control-plane is: give --server-bin")?;
    if !bin.exists() {
        return Err(format!(
            "{} does not exist: build it (cargo build -p httvps-control-plane --bin httvps-control-plane) or give --server-bin",
            bin.display()
        )
        .into());
    }
    let (url, cleanup) = match &args.postgres {
        Some(admin_url) => {
            let name = format!("httvps_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = admin_store(admin_url).await?;
            admin
                .execute_raw(&format!("CREATE DATABASE {name}"))
                .await?;
            admin.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some((admin_url.clone(), name)))
        }
        None => {
            let dir = std::env::temp_dir()
                .join(format!("httvps-bench-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite:{}", dir.join("bench.db").display()), None)
        }
    };
    let result = run(&args, &bin, &url).await;
    if let Some((admin_url, name)) = cleanup {
        let admin = admin_store(&admin_url).await?;
        admin
            .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    result
}

async fn run(args: &Args, bin: &PathBuf, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (gateway_token, devices) = seed(url, args.devices).await?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = Command::new(bin);
    server
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("HTTVPS_CP_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "HTTVPS_CP_JWT_SECRET",
            "bench-secret-bench-secret-bench-secret",
        )
        .env("HTTVPS_CP_HEALTH_INTERVAL_SECS", "0")
        .env("HTTVPS_CP_DB_MAX_CONNECTIONS", "32")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null());
    for (k, v) in &args.server_env {
        server.env(k, v);
    }
    let server = server.spawn()?;
    let pid = server.id();
    let outcome = drive(args, port, pid, gateway_token, devices).await;
    stop(server);
    outcome
}

async fn drive(
    args: &Args,
    port: u16,
    pid: u32,
    gateway_token: String,
    devices: Vec<(String, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let waited = Instant::now();
    loop {
        match client.get(&ready).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if waited.elapsed() > Duration::from_secs(30) => {
                return Err("the server did not become ready within 30 s".into())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let devices = Arc::new(devices);
    let url = Arc::new(format!(
        "http://127.0.0.1:{port}/v1/gateway/devices/validate"
    ));
    let cpu_before = cpu_time(pid);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, url, devices, token) = (
            client.clone(),
            url.clone(),
            devices.clone(),
            gateway_token.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = w;
            while Instant::now() < deadline {
                let (id, secret) = &devices[i % devices.len()];
                i += 7;
                let t = Instant::now();
                // An allow is the only right answer for these devices.
                let ok = match client
                    .post(url.as_str())
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"device_id": id, "device_token": secret}))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r
                        .bytes()
                        .await
                        .is_ok_and(|b| b.windows(7).any(|w| w == b"\"allow\"")),
                    _ => false,
                };
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cpu_time(pid)) {
        (Some(a), Some(b)) if !all.is_empty() => {
            format!(
                "{:.1} µs",
                (b.saturating_sub(a)).as_secs_f64() * 1e6 / all.len() as f64
            )
        }
        _ => "unknown".into(),
    };
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "validate-device on {} (server a separate process): {} requests in {:.1} s at concurrency {} \
         -> {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, server CPU {} per request, errors {}",
        if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        all.len(),
        elapsed,
        args.concurrency,
        all.len() as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        cpu,
        errors
    );
    Ok(())
}
