//! The same work three ways on this machine, in one run: straight to the target, through
//! Shadowsocks alone (the shadowsocks crate's client to the embedded node), and through httvps
//! (SDK client → gateway → the same node). Prints single-stream and 16-stream throughput, and
//! stream-open latency (open, send one byte, get it echoed) p50/p99, with httvps/Shadowsocks ratios.
//!
//! `cargo run --release -p httvps-local-stack --example compare [MiB per stream]`

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

async fn throughput(path: &Path, target: SocketAddr, streams: usize) -> f64 {
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
    bytes as f64 / start.elapsed().as_secs_f64() / (1024.0 * 1024.0)
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(256);
    let dir = std::env::temp_dir().join(format!("httvps-compare-{}", std::process::id()));
    let stack = LocalStack::start(StackOptions {
        data_dir: dir.clone(),
        control_plane_listen: "127.0.0.1:0".parse()?,
        gateway_listen: "127.0.0.1:0".parse()?,
        allow_private_targets: true,
        run_jobs: false,
        ..StackOptions::default()
    })
    .await?;
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
    let paths = [
        Path::Direct,
        Path::Shadowsocks(ctx, ss_config),
        Path::Httvps(client),
    ];
    println!(
        "{mib} MiB per stream, stream opens: {OPEN_SAMPLES} samples; everything on this machine\n"
    );
    println!(
        "{:<12} {:>14} {:>16} {:>12} {:>12}",
        "path", "1 stream MiB/s", "16 streams MiB/s", "open p50 ms", "open p99 ms"
    );
    let mut results = Vec::new();
    for path in &paths {
        let one = throughput(path, target, 1).await;
        let sixteen = {
            // 16 streams of mib/16 each would change the work; keep it equal per stream but
            // bounded: 16 x mib/4.
            let small = target_server(mib * 1024 * 1024 / 4).await;
            throughput(path, small, 16).await
        };
        let (p50, p99) = open_latency(path, target).await;
        println!(
            "{:<12} {:>14.0} {:>16.0} {:>12.3} {:>12.3}",
            path.name(),
            one,
            sixteen,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        results.push((one, sixteen, p50, p99));
    }
    let (ss, hv) = (&results[1], &results[2]);
    println!(
        "\nhttvps / shadowsocks: 1 stream {:.2}, 16 streams {:.2}; open p50 {:+.3} ms, p99 {:+.3} ms",
        hv.0 / ss.0,
        hv.1 / ss.1,
        (hv.2.as_secs_f64() - ss.2.as_secs_f64()) * 1e3,
        (hv.3.as_secs_f64() - ss.3.as_secs_f64()) * 1e3
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
