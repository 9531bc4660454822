//! Benchmark of `POST /v1/gateway/devices/validate`: requests per second and p50/p99 latency at a
//! given concurrency, against a real control plane on PostgreSQL (a fresh database it creates and
//! drops) or SQLite. It prints figures; it asserts nothing.
//!
//! ```sh
//! cargo run --release -p httvps-control-plane --example validate_bench -- \
//!     [--postgres postgres://postgres@127.0.0.1:5432/test | --sqlite] [--concurrency 64] [--seconds 10] [--devices 1000]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_control_plane::app::start;
use httvps_control_plane::auth::token;
use httvps_control_plane::config::ServeConfig;
use httvps_control_plane::model::ResetStrategy;
use httvps_control_plane::store::{NewDevice, NewPlan, NewSubscription, Store, StoreOptions};

struct Args {
    postgres: Option<String>,
    concurrency: usize,
    seconds: u64,
    devices: usize,
}

fn args() -> Args {
    let mut a = Args {
        postgres: Some("postgres://postgres@127.0.0.1:5432/test".into()),
        concurrency: 64,
        seconds: 10,
        devices: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--postgres" => a.postgres = it.next(),
            "--sqlite" => a.postgres = None,
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).unwrap_or(64),
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(10),
            "--devices" => a.devices = it.next().and_then(|v| v.parse().ok()).unwrap_or(1000),
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let (url, cleanup) = match &args.postgres {
        Some(admin_url) => {
            let name = format!("httvps_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Store::connect(
                admin_url,
                &StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await?;
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
    let mut config = ServeConfig::for_database(&url);
    config.listen = "127.0.0.1:0".parse()?;
    config.health_interval_secs = 0;
    config.db_max_connections = 32;
    config.jwt_secret = Some("bench-secret-bench-secret-bench-secret".into());
    let running = start(config, false).await?;
    let store = running.state.store.clone();

    // Seed: one plan, users with one device each.
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
    let mut devices = Vec::with_capacity(args.devices);
    for i in 0..args.devices {
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
        devices.push((d.id.to_string(), secret));
    }
    let devices = Arc::new(devices);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let url = Arc::new(format!(
        "http://{}/v1/gateway/devices/validate",
        running.addr
    ));
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
                let ok = client
                    .post(url.as_str())
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"device_id": id, "device_token": secret}))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
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
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "validate-device on {}: {} requests in {:.1} s at concurrency {} -> {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        all.len(),
        elapsed,
        args.concurrency,
        all.len() as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        errors
    );
    running.stop().await;
    if let Some((admin_url, name)) = cleanup {
        let admin = Store::connect(
            &admin_url,
            &StoreOptions {
                max_connections: 1,
                ..StoreOptions::default()
            },
        )
        .await?;
        admin
            .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}
