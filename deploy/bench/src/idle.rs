//! `deploy-bench idle`: memory per idle session of the real `httvps-gateway` binary in its own
//! process. This program opens `--sessions` sessions to it with the SDK (TLS, WebSocket, HELLO;
//! one device, no session limit), keeps them idle (only the heartbeat PINGs), and reads the
//! gateway's resident memory from `/proc` before and after: the difference over the sessions is
//! the figure. The clients' memory is this process's, not in it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use httvps_sdk::{Client, ClientConfig};

use crate::paths::Certificate;
use crate::proc_stat;
use crate::procs::{free_port, spawn_listening, Process};

#[derive(Debug, Parser)]
#[command(name = "deploy-bench idle")]
pub struct IdleArgs {
    /// Idle sessions to open.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Sessions being opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Directory of httvps-gateway [default: this program's].
    #[arg(long, env = "HTTVPS_BENCH_BIN_DIR")]
    bin_dir: Option<std::path::PathBuf>,
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    proc_stat::rss_kib(pid).context("VmRSS in /proc/PID/status")
}

pub fn run(raw: &[String], dir: &Path) -> anyhow::Result<()> {
    let args = IdleArgs::parse_from(std::iter::once("idle".to_owned()).chain(raw.iter().cloned()));
    let sessions = args.sessions.max(1);
    // One socket per session on each side; the gateway inherits this limit.
    if let Some(limit) = proc_stat::open_file_limit() {
        if limit < sessions as u64 + 1_000 {
            bail!(
                "the open-file limit {limit} is too low for {sessions} sessions: run `ulimit -n {}` first",
                sessions + 2_000
            );
        }
    }
    let gateway_bin = crate::tools::HttvpsBins::gateway(args.bin_dir.as_deref())?;
    let cert = Certificate::generate(dir)?;
    let token = format!("{:032x}", rand::random::<u128>());
    let path = format!("/{:032x}", rand::random::<u128>());
    let listen = free_port()?;
    let mut procs: Vec<Process> = Vec::new();
    let gateway = spawn_listening(
        &mut procs,
        "httvps-gateway",
        &gateway_bin,
        &[
            "--listen".into(),
            listen.to_string(),
            "--metrics-listen=".into(),
            "--path".into(),
            path.clone(),
            "--tls-cert".into(),
            cert.cert.display().to_string(),
            "--tls-key".into(),
            cert.key.display().to_string(),
            "--dev-device".into(),
            format!("bench:{token}"),
            "--device-session-limit".into(),
            "0".into(),
            "--max-connections-per-ip".into(),
            (sessions + 100).to_string(),
            // Idle sessions open no stream: the node is never dialled.
            "--node".into(),
            "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTp4@127.0.0.1:9#unused".into(),
        ],
        dir,
        listen,
        Duration::from_secs(20),
    )?;
    let link = format!(
        "httvps://bench:{token}@{}:{}{path}?fp={}",
        listen.ip(),
        listen.port(),
        cert.fingerprint
    );
    let mut config = ClientConfig::from_link(&link)?;
    // 15 s by default: on a loaded machine (nice'd, 10,000 sessions' heartbeats beside it) a
    // handshake can take longer, which says nothing about memory.
    config.connect_timeout = Duration::from_secs(60);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Warm-up: lazily built state (TLS config, pools) belongs in the baseline.
        for _ in 0..20 {
            Client::connect(config.clone()).await?.close().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss_kib(gateway)?;
        let started = Instant::now();
        let (clients, failed) = open(&config, sessions, args.concurrency).await?;
        let open_secs = started.elapsed().as_secs_f64();
        // Let the handshakes' transient buffers go and the first PINGs pass.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(gateway)?;
        println!(
            "idle sessions: {} open on the httvps-gateway binary (pid {gateway}; opened in \
             {open_secs:.1} s, {} at a time; {failed} attempts timed out or failed and were \
             retried)",
            clients.len(),
            args.concurrency
        );
        println!(
            "  gateway RSS {:.1} MiB before, {:.1} MiB after -> {:.1} KiB per idle session",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / clients.len() as f64
        );
        for client in clients {
            client.close().await;
        }
        anyhow::Ok(())
    })?;
    drop(procs);
    Ok(())
}

/// Attempts per session: on a machine busy with other work a handshake may time out, which
/// says nothing about memory.
const OPEN_ATTEMPTS: usize = 3;

/// Opens `n` sessions, `concurrency` at a time; returns them and how many attempts failed.
async fn open(
    config: &ClientConfig,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Client>, usize)> {
    let mut clients = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    let mut failed = 0;
    while clients.len() < n {
        while started < n && pending.len() < concurrency.max(1) {
            let config = config.clone();
            pending.spawn(async move {
                let mut failed = 0;
                loop {
                    match Client::connect(config.clone()).await {
                        Ok(client) => return Ok((client, failed)),
                        Err(_) if failed + 1 < OPEN_ATTEMPTS => failed += 1,
                        Err(e) => return Err(e),
                    }
                }
            });
            started += 1;
        }
        match pending.join_next().await {
            Some(joined) => {
                let (client, attempts_failed) = joined?.context("opening an idle session")?;
                clients.push(client);
                failed += attempts_failed;
            }
            None => break,
        }
    }
    Ok((clients, failed))
}
