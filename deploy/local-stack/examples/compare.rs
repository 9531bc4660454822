//! The same work three ways on this machine, in one run: straight to the target, through
//! Shadowsocks alone (the shadowsocks crate's client to the embedded node), and through httvps
//! (SDK client → gateway → the same node). Prints single-stream and 16-stream throughput, and
//! stream-open latency (open, send one byte, get it echoed) p50/p99, with httvps/Shadowsocks ratios.
//! Everything runs in this one process, so it also prints the process CPU time spent per MiB
//! moved (all parties together), which moves much less than MiB/s when the machine is busy.
//!
//! With several rounds the paths take turns (direct, Shadowsocks, httvps, direct, ...) and the
//! medians are printed, so a machine that is busy with something else part of the time skews
//! all three alike.
//!
//! `cargo run --release -p httvps-local-stack --example compare [MiB per stream] [rounds]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_local_stack::{LocalStack, StackOptions};
use httvps_sdk::{Client, ClientConfig, TargetAddr};
use shadowsocks::config::ServerConfig;
use shadowsocks::config::ServerType;
use shadowsocks::context::Context;
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::tcprelay::proxy_stream::ProxyClientStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// The allocator the gateway and client binaries use (both paths run in this process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OPEN_SAMPLES: usize = 300;

/// Sends `len` bytes to every connection that says "bulk", echoes everything else.
async fn target_server(len: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let block = Arc::new(vec![0x5Au8; 256 * 1024]);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let block = block.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut first = [0u8; 1];
                if s.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first[0] == b'B' {
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(block.len());
                        if s.write_all(&block[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                    let _ = s.shutdown().await;
                } else {
                    let _ = s.write_all(&first).await;
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    addr
}

#[derive(Clone)]
enum Path {
    Direct,
    Shadowsocks(Arc<Context>, Arc<ServerConfig>),
    Httvps(Client),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Path {
    fn name(&self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Shadowsocks(..) => "shadowsocks",
            Path::Httvps(_) => "httvps",
        }
    }

    async fn open(&self, target: SocketAddr) -> Box<dyn Stream> {
        match self {
            Path::Direct => {
                let s = TcpStream::connect(target).await.expect("direct connect");
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
            Path::Shadowsocks(ctx, cfg) => Box::new(
                ProxyClientStream::connect(ctx.clone(), cfg, Address::SocketAddress(target))
                    .await
                    .expect("shadowsocks connect"),
            ),
            Path::Httvps(client) => Box::new(
                client
                    .open_tcp(TargetAddr::socket(target).expect("target"))
                    .await
                    .expect("httvps open"),
            ),
        }
    }
}

async fn download(path: &Path, target: SocketAddr) -> usize {
    let mut s = path.open(target).await;
    s.write_all(b"B").await.expect("request");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// CPU time this process (all threads) used so far, from `/proc/self/stat`; `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// MiB/s, and CPU milliseconds per MiB when known.
async fn throughput(path: &Path, target: SocketAddr, streams: usize) -> (f64, Option<f64>) {
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let path = path.clone();
        tasks.push(tokio::spawn(async move { download(&path, target).await }));
    }
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.expect("download task");
    }
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let cpu = cpu_start
        .zip(cpu_time())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64() * 1e3 / mib);
    (mib / start.elapsed().as_secs_f64(), cpu)
}

async fn open_latency(path: &Path, target: SocketAddr) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(OPEN_SAMPLES);
    for _ in 0..OPEN_SAMPLES {
        let t = Instant::now();
        let mut s = path.open(target).await;
        s.write_all(b"e").await.expect("write");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("echo");
        samples.push(t.elapsed());
    }
    samples.sort();
    (samples[OPEN_SAMPLES / 2], samples[OPEN_SAMPLES * 99 / 100])
}

/// One path's results in one round.
#[derive(Clone, Copy)]
struct Measurement {
    one: f64,
    sixteen: f64,
    one_cpu: Option<f64>,
    sixteen_cpu: Option<f64>,
    p50: Duration,
    p99: Duration,
}

async fn measure(path: &Path, target: SocketAddr, small: SocketAddr) -> Measurement {
    let (one, one_cpu) = throughput(path, target, 1).await;
    let (sixteen, sixteen_cpu) = throughput(path, small, 16).await;
    let (p50, p99) = open_latency(path, target).await;
    Measurement {
        one,
        sixteen,
        one_cpu,
        sixteen_cpu,
        p50,
        p99,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The per-field medians over the rounds (each field on its own).
fn medians(rounds: &[Measurement]) -> Measurement {
    let of = |f: fn(&Measurement) -> f64| median(rounds.iter().map(f).collect());
    let cpu = |f: fn(&Measurement) -> Option<f64>| {
        rounds
            .iter()
            .map(f)
            .collect::<Option<Vec<f64>>>()
            .map(median)
    };
    Measurement {
        one: of(|m| m.one),
        sixteen: of(|m| m.sixteen),
        one_cpu: cpu(|m| m.one_cpu),
        sixteen_cpu: cpu(|m| m.sixteen_cpu),
        p50: Duration::from_secs_f64(of(|m| m.p50.as_secs_f64())),
        p99: Duration::from_secs_f64(of(|m| m.p99.as_secs_f64())),
    }
}

fn print_row(name: &str, m: &Measurement) {
    let cost = |c: Option<f64>| c.map_or("-".into(), |c| format!("{c:.2}"));
    println!(
        "{:<12} {:>14.0} {:>16.0} {:>12.3} {:>12.3} {:>14} {:>15}",
        name,
        m.one,
        m.sixteen,
        m.p50.as_secs_f64() * 1e3,
        m.p99.as_secs_f64() * 1e3,
        cost(m.one_cpu),
        cost(m.sixteen_cpu)
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let dir = std::env::temp_dir().join(format!("httvps-compare-{}", std::process::id()));
    let stack = LocalStack::start(StackOptions::ephemeral(&dir)).await?;
    let node = stack
        .control_plane
        .state
        .store
        .list_nodes()
        .await?
        .into_iter()
        .next()
        .ok_or("no node")?;
    let ss_config = Arc::new(ServerConfig::new(
        SocketAddr::new(node.host.parse()?, node.port),
        node.secret.clone(),
        node.cipher.parse().map_err(|_| "cipher")?,
    )?);
    let ctx = Context::new_shared(ServerType::Local);
    let client = Client::connect(ClientConfig::from_link(&stack.link)?).await?;
    let target = target_server(mib * 1024 * 1024).await;
    // 16 streams of mib/16 each would change the work; keep it equal per stream but bounded:
    // 16 x mib/4.
    let small = target_server(mib * 1024 * 1024 / 4).await;
    let paths = [
        Path::Direct,
        Path::Shadowsocks(ctx, ss_config),
        Path::Httvps(client),
    ];
    println!(
        "{mib} MiB per stream, stream opens: {OPEN_SAMPLES} samples, {rounds} round(s); everything on this machine\n"
    );
    println!(
        "{:<12} {:>14} {:>16} {:>12} {:>12} {:>14} {:>15}",
        "path",
        "1 stream MiB/s",
        "16 streams MiB/s",
        "open p50 ms",
        "open p99 ms",
        "1: CPU ms/MiB",
        "16: CPU ms/MiB"
    );
    let mut results: Vec<Vec<Measurement>> = vec![Vec::new(); paths.len()];
    for round in 0..rounds {
        for (path, results) in paths.iter().zip(&mut results) {
            let m = measure(path, target, small).await;
            if rounds > 1 {
                print_row(&format!("{} #{}", path.name(), round + 1), &m);
            } else {
                print_row(path.name(), &m);
            }
            results.push(m);
        }
    }
    let results: Vec<Measurement> = results.iter().map(|r| medians(r)).collect();
    if rounds > 1 {
        println!("\nmedians:");
        for (path, m) in paths.iter().zip(&results) {
            print_row(path.name(), m);
        }
    }
    let (ss, hv) = (&results[1], &results[2]);
    println!(
        "\nhttvps / shadowsocks: 1 stream {:.2}, 16 streams {:.2}; open p50 {:+.3} ms, p99 {:+.3} ms",
        hv.one / ss.one,
        hv.sixteen / ss.sixteen,
        (hv.p50.as_secs_f64() - ss.p50.as_secs_f64()) * 1e3,
        (hv.p99.as_secs_f64() - ss.p99.as_secs_f64()) * 1e3
    );
    if let (Some(h1), Some(s1), Some(h16), Some(s16)) =
        (hv.one_cpu, ss.one_cpu, hv.sixteen_cpu, ss.sixteen_cpu)
    {
        println!(
            "CPU per MiB moved, httvps / shadowsocks: 1 stream {:.2}, 16 streams {:.2}",
            h1 / s1,
            h16 / s16
        );
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
