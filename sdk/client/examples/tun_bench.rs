//! VPN mode against SOCKS mode on the same path (docs/benchmarks.md#vpn-mode-against-socks):
//! a client network namespace linked by a veth pair to this namespace, where the real gateway,
//! control plane and Shadowsocks node run (the local stack) next to a web server. curl in the
//! client namespace downloads the same file through `httvps-client --socks` (curl
//! `--socks5-hostname`) and through `httvps-client --tun` (plain curl), taking turns; it prints
//! the median MiB/s of each and the TUN/SOCKS ratio. Needs root (namespaces, TUN).
//!
//! ```sh
//! nice -n 19 cargo build --release -p httvps-client --bin httvps-client --example tun_bench
//! target/release/examples/tun_bench               # 256 MiB, 5 runs
//! target/release/examples/tun_bench --quick       # 16 MiB, 1 run (CI)
//! target/release/examples/tun_bench --mtu 9000    # the TUN client with another MTU
//! ```

#[path = "../tests/common/netns.rs"]
mod netns;
#[path = "../tests/common/process.rs"]
mod process;
#[path = "../tests/common/web.rs"]
mod web;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use httvps_local_stack::{LocalStack, StackOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use netns::ClientNamespace;
use process::Process;

struct Options {
    size_mib: usize,
    runs: usize,
    /// `--mtu` of the TUN client (its default when `None`).
    mtu: Option<usize>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        size_mib: 256,
        runs: 5,
        mtu: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<usize> {
            args.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--quick" => {
                options.size_mib = 16;
                options.runs = 1;
            }
            "--size-mib" => options.size_mib = value("--size-mib")?,
            "--runs" => options.runs = value("--runs")?,
            "--mtu" => options.mtu = Some(value("--mtu")?),
            other => bail!("unknown argument {other} (--quick, --size-mib N, --runs N, --mtu N)"),
        }
    }
    Ok(options)
}

/// Serves `size` bytes to every request.
async fn web_server(ip: Ipv4Addr, size: usize) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let chunk: std::sync::Arc<[u8]> = (0..256 * 1024).map(|i| (i * 7) as u8).collect();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                if web::read_head(&mut s).await.is_none() {
                    return;
                }
                let headers = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                );
                if s.write_all(headers.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// The httvps-client binary beside this example's directory (target/PROFILE/).
fn client_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("httvps-client"))
        .context("locating httvps-client")?;
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p httvps-client --bin httvps-client)",
            path.display()
        );
    }
    Ok(path)
}

/// One download with curl in the namespace; MiB/s.
fn download(
    ns: &ClientNamespace,
    extra: &[&str],
    url: &str,
    size_mib: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = ns
        .command("curl")
        .args([
            "-sS",
            "--max-time",
            "300",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
        ])
        .args(extra)
        .arg(url)
        .output()
        .context("curl")?;
    let secs = started.elapsed().as_secs_f64();
    let got: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if !out.status.success() || got != size_mib * 1024 * 1024 {
        bail!(
            "download {url}: {got} bytes; {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(size_mib as f64 / secs)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let binary = client_binary()?;
    let ns = ClientNamespace::create(40);
    let dir = tempfile::tempdir()?;
    let mut stack_options = StackOptions::ephemeral(dir.path());
    stack_options.gateway_listen = SocketAddr::from((ns.host_ip, 0));
    let stack = LocalStack::start(stack_options).await?;
    let web = web_server(ns.target_ip, options.size_mib * 1024 * 1024).await?;
    let url = format!("http://{web}/file");

    let mut socks = ns.command(binary.to_str().context("binary path")?);
    socks.args([
        "--link",
        &stack.link,
        "--socks",
        "127.0.0.1:1080",
        "--no-http",
    ]);
    let socks = Process::start(socks);
    socks.wait_for("SOCKS5 proxy on").await;
    let mut tun = ns.command(binary.to_str().context("binary path")?);
    tun.args(["--tun", "--link", &stack.link, "--no-set-dns"]);
    if let Some(mtu) = options.mtu {
        tun.args(["--mtu", &mtu.to_string()]);
    }
    let tun = Process::start(tun);
    tun.wait_for("TUN httvps0 up").await;
    // Warm-up: both sessions and paths used once.
    download(
        &ns,
        &["--socks5-hostname", "127.0.0.1:1080"],
        &url,
        options.size_mib,
    )?;
    download(&ns, &[], &url, options.size_mib)?;

    let (mut via_socks, mut via_tun) = (Vec::new(), Vec::new());
    for run in 1..=options.runs {
        let s = download(
            &ns,
            &["--socks5-hostname", "127.0.0.1:1080"],
            &url,
            options.size_mib,
        )?;
        let t = download(&ns, &[], &url, options.size_mib)?;
        println!("run {run}: SOCKS {s:.0} MiB/s, TUN {t:.0} MiB/s");
        via_socks.push(s);
        via_tun.push(t);
    }
    let (s, t) = (median(&mut via_socks), median(&mut via_tun));
    println!(
        "{} MiB, 1 stream, median of {} runs: SOCKS {s:.0} MiB/s | TUN {t:.0} MiB/s | TUN/SOCKS {:.2}",
        options.size_mib,
        options.runs,
        t / s
    );
    tun.sigterm();
    tun.wait_for("routes and DNS settings restored").await;
    drop(socks);
    stack.stop().await;
    Ok(())
}
