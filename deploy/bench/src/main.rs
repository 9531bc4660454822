//! `deploy-bench`: the deployment benchmark (docs/benchmarks.md). The real binaries run as
//! separate processes on loopback; curl downloads a file from nginx through each path:
//! straight, Shadowsocks alone (sslocal → ssserver), the wstunnel chain (sslocal → wstunnel
//! client → wstunnel server → ssserver) and httvps (httvps-client → httvps-gateway →
//! ssserver). It prints MB/s for 1 and N streams, open → first byte p50/p99, CPU per MiB per
//! process, the completion spread of the N equal streams, and httvps's ratios to the others.

mod idle;
mod measure;
mod origin;
mod paths;
mod pool_node;
mod proc_stat;
mod procs;
mod report;
mod tools;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;

use crate::origin::Origin;
use crate::paths::{BenchPath, Certificate, Setup, Shadowsocks};
use crate::procs::{free_port, spawn_listening, Process};
use crate::report::{PathResults, Run};
use crate::tools::{HttvpsBins, Tools};

#[derive(Debug, Parser)]
#[command(name = "deploy-bench", about)]
struct Args {
    /// Short run for CI: small downloads, one run, fewer latency samples; comparison tools are
    /// used when installed and skipped (with a note) when not, never installed.
    #[arg(long)]
    quick: bool,
    /// Runs; the paths take turns within each run [default: 3, quick 1].
    #[arg(long)]
    runs: Option<usize>,
    /// MiB each stream downloads [default: 256, quick 16].
    #[arg(long)]
    size_mib: Option<u64>,
    /// Parallel streams of the multi-stream download.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Open → first byte requests per run and path [default: 200, quick 50].
    #[arg(long)]
    samples: Option<usize>,
    /// The Shadowsocks cipher of every path (Outline's default).
    #[arg(long, default_value = "chacha20-ietf-poly1305")]
    cipher: String,
    /// Where `cargo install` puts the comparison tools (`<dir>/bin`).
    #[arg(long, env = "HTTVPS_BENCH_TOOLS_DIR")]
    tools_dir: Option<PathBuf>,
    /// Directory of httvps-gateway and httvps-client [default: this program's].
    #[arg(long, env = "HTTVPS_BENCH_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// A checkout of wstunnel (tag v10.6.2) to build from when wstunnel is missing.
    #[arg(long, env = "WSTUNNEL_SRC")]
    wstunnel_src: Option<PathBuf>,
}

/// The work directory (on tmpfs when there is one), removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("httvps-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().collect();
    match raw.get(1).map(String::as_str) {
        Some("pool-node") => return pool_node::run(&raw[2..]),
        Some("idle") => return idle::run(&raw[2..], &WorkDir::create()?.0),
        _ => {}
    }
    let args = Args::parse();
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let size_mib = args
        .size_mib
        .unwrap_or(if args.quick { 16 } else { 256 })
        .max(1);
    let samples = args
        .samples
        .unwrap_or(if args.quick { 50 } else { 200 })
        .max(1);
    let streams = args.streams.max(1);
    let tools_dir = match &args.tools_dir {
        Some(dir) => dir.clone(),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME")?).join(".cache/httvps/tools")
        }
    };
    let tools = if args.quick {
        Tools::find(&tools_dir)
    } else {
        Tools::install_missing(&tools_dir, args.wstunnel_src.as_deref())?
    };
    let bins = HttvpsBins::find(args.bin_dir.as_deref())?;
    let work = WorkDir::create()?;
    let dir = &work.0;
    let ss = Shadowsocks {
        cipher: args.cipher.clone(),
        password: format!("{:032x}", rand::random::<u128>()),
    };
    let cert = Certificate::generate(dir)?;
    let bytes = size_mib << 20;
    let origin = Origin::start(dir, bytes)?;

    println!(
        "deploy-bench: {} run(s), {size_mib} MiB per stream, 1 and {streams} streams, {samples} \
         first-byte requests per run; cipher {}; TLS: one self-signed ECDSA P-256 certificate on \
         both WSS legs; load average {} (2 cores here: other work skews the figures)",
        runs,
        ss.cipher,
        load_average()
    );
    let mut procs: Vec<Process> = Vec::new();
    let mut paths: Vec<BenchPath> = vec![BenchPath {
        name: "direct",
        socks: None,
        pids: Vec::new(),
    }];
    let node = match &tools.ssserver {
        Some(ssserver) => {
            println!(
                "pool node: {} ({})",
                ssserver.display(),
                tools::version(ssserver)
            );
            paths::start_pool_node(ssserver, &ss, dir, &mut procs)?
        }
        None => {
            println!(
                "pool node: ssserver is not installed, so the embedded shadowsocks-service server \
                 runs as its own process (deploy-bench pool-node)"
            );
            start_embedded_node(&ss, dir, &mut procs)?
        }
    };
    let setup = Setup {
        ss: &ss,
        node,
        cert: &cert,
        dir,
    };
    match (&tools.sslocal, &tools.ssserver) {
        (Some(sslocal), Some(_)) => {
            paths.push(paths::ss_alone(sslocal, setup, &mut procs)?);
        }
        _ => println!(
            "ss-alone: skipped, sslocal/ssserver are not installed (the full mode installs them)"
        ),
    }
    match (&tools.wstunnel, &tools.sslocal, &tools.ssserver) {
        (Some(wstunnel), Some(sslocal), Some(_)) => {
            println!(
                "wstunnel: {} ({})",
                wstunnel.display(),
                tools::version(wstunnel)
            );
            paths.push(paths::wstunnel_chain(wstunnel, sslocal, setup, &mut procs)?);
        }
        _ => println!(
            "wstunnel: skipped, wstunnel/sslocal/ssserver are not installed (the full mode \
             installs them)"
        ),
    }
    println!(
        "httvps: {} and {}",
        bins.client.display(),
        bins.gateway.display()
    );
    paths.push(paths::httvps(&bins, setup, &mut procs)?);

    // Every path answers before anything is timed (httvps-client opens its session here).
    for path in &paths {
        measure::one_request(path.socks, origin.addr)
            .with_context(|| format!("{}: first request through the path", path.name))?;
    }
    let hz = procs::clock_ticks();
    let mut results: Vec<PathResults> = paths
        .iter()
        .map(|p| PathResults {
            name: p.name,
            runs: Vec::new(),
        })
        .collect();
    println!();
    for run_number in 1..=runs {
        for (path, result) in paths.iter().zip(&mut results) {
            let one = measure::download(path, origin.addr, &origin.pids, 1, bytes, hz)?;
            let many = measure::download(path, origin.addr, &origin.pids, streams, bytes, hz)?;
            let first = measure::first_byte(path, origin.addr, samples)?;
            let run = Run { one, many, first };
            report::print_run(run_number, path.name, &run);
            result.runs.push(run);
        }
    }
    report::print_summary(&results, streams);
    println!("\nload average at the end: {}", load_average());
    drop(procs);
    drop(origin);
    Ok(())
}

fn start_embedded_node(
    ss: &Shadowsocks,
    dir: &Path,
    procs: &mut Vec<Process>,
) -> anyhow::Result<(std::net::SocketAddr, u32)> {
    let addr = free_port()?;
    let pid = spawn_listening(
        procs,
        "pool-node",
        &std::env::current_exe()?,
        &[
            "pool-node".into(),
            addr.to_string(),
            ss.cipher.clone(),
            ss.password.clone(),
        ],
        dir,
        addr,
        std::time::Duration::from_secs(20),
    )?;
    Ok((addr, pid))
}
