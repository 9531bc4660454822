//! Throughput and stream-open latency (with and without pre-warmed node connections) through gateway → Shadowsocks node → target, all on
//! loopback in one process. Prints figures; asserts nothing.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target cargo run --release -p httvps-gateway --example bench
//! # short run (CI, deploy/bench/run-all.sh --quick): BENCH_MIB=16 OPEN_SAMPLES=200
//! ```
//!
//! `BENCH_MIB` (default 256) is the single stream's download; the 16 streams get an eighth of
//! it each and the echo a quarter. `OPEN_SAMPLES` (default 1000) stream opens are timed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use httvps_proto::StreamKind;

const T: Duration = Duration::from_secs(120);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let mib = env_usize("BENCH_MIB", 256).max(1);
    let open_samples = env_usize("OPEN_SAMPLES", 1000).max(1);
    let gw = TestGateway::start_static(test_config()).await;
    println!(
        "gateway {} (self-signed, fp {}…)",
        gw.addr(),
        &gw.fingerprint()[..16]
    );

    // Download: one stream, then 16 streams at once.
    for (streams, per_stream) in [(1usize, mib << 20), (16, (mib << 20) / 8)] {
        let (source, _) = source_server(per_stream).await;
        let client = gw.client().await;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let mut s = client.open(StreamKind::Tcp, source, b"").await;
            tasks.push(tokio::spawn(async move {
                s.accepted().await.unwrap();
                s.read_to_end(T).await.len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "download {streams:>2} stream(s): {:>7.1} MiB in {secs:.2} s = {:>7.1} MiB/s ({:.0} Mbit/s)",
            total as f64 / 1048576.0,
            total as f64 / 1048576.0 / secs,
            total as f64 * 8.0 / 1e6 / secs
        );
    }

    // Upload + echo on one stream.
    let echo = echo_server().await;
    let client = gw.client().await;
    let mut s = client.open(StreamKind::Tcp, echo, b"").await;
    s.accepted().await.unwrap();
    let data = pattern((mib << 20) / 4);
    let started = Instant::now();
    let len = data.len();
    let reader = tokio::spawn(async move {
        let mut events = s.take_events();
        let writer = async {
            s.write(&data).await;
            s.finish();
        };
        let mut got = 0;
        let read = async {
            while let Some(StreamEv::Data(d)) = events.recv().await {
                got += d.len();
            }
        };
        tokio::join!(writer, read);
        got
    });
    let got = reader.await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "echo      1 stream : {:>7.1} MiB each way in {secs:.2} s = {:>7.1} MiB/s each way ({got} of {len} bytes back)",
        len as f64 / 1048576.0,
        len as f64 / 1048576.0 / secs
    );

    // Stream-open latency: STREAM_OPEN with early data → first echoed byte, without and with
    // pre-warmed node connections (a fresh gateway each, same node).
    for prewarm in [0usize, 2] {
        let config = httvps_gateway::GatewayConfig {
            node_prewarm: prewarm,
            ..test_config()
        };
        let gw =
            TestGateway::start_with_nodes(config, vec![gw.node.clone()], gw.node.clone()).await;
        let client = gw.client().await;
        let mut samples = Vec::new();
        for i in 0..open_samples + 100 {
            // Pause like an application between opens, so the pool can refill.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let started = Instant::now();
            let mut s = client.open(StreamKind::Tcp, echo, b"x").await;
            s.accepted().await.unwrap();
            loop {
                if let Some(StreamEv::Data(_)) = s.next(T).await {
                    break;
                }
            }
            if i >= 100 {
                samples.push(started.elapsed());
            }
            s.reset();
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        let stats = gw.gateway.upstreams().prewarm().stats();
        println!(
            "stream open → first byte, node_prewarm={prewarm} ({} samples): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  (pool hits {}, misses {})",
            samples.len(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            samples[samples.len() - 1],
            stats.hits.load(std::sync::atomic::Ordering::Relaxed),
            stats.misses.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
}
