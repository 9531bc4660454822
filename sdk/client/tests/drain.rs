//! A gateway drain as a user meets it (issue 15 item 8): the real `curl` through the real
//! `httvps-client` (SOCKS5) to the real `httvps-gateway` binary in its own process, through a
//! real Shadowsocks node, to a web server on this machine; the control plane (SQLite) and a
//! second gateway come from the local stack. Downloads are in flight when the gateway binary
//! gets SIGTERM (GOAWAY `shutting_down`) or reaches its maximum connection lifetime (GOAWAY
//! `max_lifetime`): every one of them must complete with the right SHA-256, while new
//! downloads go through a fresh session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_local_stack::{LocalStack, StackOptions};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "../../../common/test-support/ports.rs"]
mod ports;
use ports::free_port;

mod common;
#[path = "../../../common/test-support/gateway_bin.rs"]
mod gateway_bin;
use common::process::Process;
use gateway_bin::{build_gateway, gateway_command};

const SIZE: usize = 30 * 1024 * 1024;
/// curl's receive rate: a 30 MiB download takes about 5 s, so it is mid-way at the GOAWAY.
const RATE: &str = "6M";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 4099) as u8).collect()
}

/// `GET /download` sends the 30 MiB pattern (honouring a `Range: bytes=0-N` prefix request).
async fn web_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(pattern(SIZE));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = vec![0u8; 16 * 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_lowercase();
                let len = text
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes=0-"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .map_or(SIZE, |last| (last + 1).min(SIZE));
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = s.write_all(&body[..len]).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// 128 random bits in hex.
fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `httvps-gateway` binary: `HTTVPS_GATEWAY_BIN` if set, else built (it is another package
/// of the workspace, so Cargo gives this test no path to it) next to this test's own target
/// directory.
fn gateway_binary() -> PathBuf {
    match std::env::var_os("HTTVPS_GATEWAY_BIN") {
        Some(binary) => PathBuf::from(binary),
        None => build_gateway(),
    }
}

/// The gateway binary against the stack's control plane, with a token of its own.
async fn start_gateway_binary(stack: &LocalStack, extra_env: &[(&str, &str)]) -> (Process, String) {
    let token = httvps_control_plane::auth::token::generate();
    stack
        .control_plane
        .state
        .store
        .create_gateway(
            "drain-test",
            &format!("drain-test-{}", random_hex()),
            &httvps_control_plane::auth::token::hash(&token),
        )
        .await
        .unwrap();
    let path = format!("/{}", random_hex());
    let mut command = gateway_command(&gateway_binary());
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(["--path", &path])
        .args([
            "--control-plane-url",
            &format!("http://{}/", stack.control_plane.addr),
        ])
        .arg("--allow-private-targets")
        .env("HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN", &token)
        .env("HTTVPS_GATEWAY_SHUTDOWN_GRACE", "60s")
        .env("RUST_LOG", "info")
        .envs(extra_env.iter().copied());
    let gateway = Process::start(command);
    // connect with: httvps://DEVICE_ID:TOKEN@HOST:PORT/PATH?fp=FP
    let line = gateway.wait_for("connect with:").await;
    let port: u16 = line
        .split("@HOST:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a port in {line:?}"));
    let fp = line.split("fp=").nth(1).unwrap().trim().replace(':', "");
    // The stack's link carries the device's credentials.
    let credentials = stack
        .link
        .strip_prefix("httvps://")
        .and_then(|rest| rest.split('@').next())
        .unwrap();
    let link = format!("httvps://{credentials}@127.0.0.1:{port}{path}?fp={fp}&sni=localhost");
    (gateway, link)
}

/// The client binary with `links` (tried in order) and a SOCKS5 listener.
async fn start_client(dir: &Path, links: &[String]) -> (Process, String) {
    let socks = format!("127.0.0.1:{}", free_port());
    let config = dir.join("client.toml");
    let fallbacks: Vec<String> = links[1..].iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        &config,
        format!(
            "link = {:?}\nsocks = {socks:?}\nfallback_links = [{}]\n",
            links[0],
            fallbacks.join(", ")
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_httvps-client"));
    command
        .arg("--config")
        .arg(&config)
        .arg("--no-http")
        .env("RUST_LOG", "info");
    let client = Process::start(command);
    client.wait_for("SOCKS5 proxy on").await;
    (client, socks)
}

/// `curl` downloading `/download` (all of it, or the first `range` bytes) through SOCKS5.
fn curl(socks: &str, web: SocketAddr, out: &Path, range: Option<&str>) -> Child {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "120", "--limit-rate", RATE])
        .args(["--socks5-hostname", socks, "-o"])
        .arg(out);
    if let Some(range) = range {
        command.args(["-r", range]);
    }
    command
        .arg(format!("http://{web}/download"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed")
}

async fn wait_curl(child: Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Waits until every file in `files` holds at least `bytes`.
async fn wait_for_progress(files: &[PathBuf], bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while files
        .iter()
        .any(|f| std::fs::metadata(f).map_or(0, |m| m.len()) < bytes)
    {
        assert!(Instant::now() < deadline, "downloads did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_intact(out: &std::process::Output, file: &Path, expected: &[u8], what: &str) {
    let got = std::fs::read(file).unwrap_or_default();
    assert!(
        out.status.success(),
        "{what}: curl failed ({}) after {} of {} bytes",
        String::from_utf8_lossy(&out.stderr).trim(),
        got.len(),
        expected.len()
    );
    assert_eq!(got.len(), expected.len(), "{what}: length");
    assert!(
        Sha256::digest(&got) == Sha256::digest(expected),
        "{what}: SHA-256 differs"
    );
}

async fn stack(dir: &Path) -> LocalStack {
    LocalStack::start(StackOptions::ephemeral(dir))
        .await
        .expect("the stack starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_gateway_binary_lets_every_download_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack(dir.path()).await;
    let web = web_server().await;
    let (gateway, link) = start_gateway_binary(&stack, &[]).await;
    // After the drain the client moves to the stack's own gateway.
    let (client, socks) = start_client(dir.path(), &[link, stack.link.clone()]).await;

    let files: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("in-flight-{i}.bin")))
        .collect();
    let downloads: Vec<Child> = files.iter().map(|f| curl(&socks, web, f, None)).collect();
    wait_for_progress(&files, 2 * 1024 * 1024).await;
    gateway.sigterm();
    let goaway_at = Instant::now();

    // A new download right after the GOAWAY goes through a fresh session elsewhere.
    let fresh = dir.path().join("fresh.bin");
    let stack_port = stack.gateway().unwrap().local_addr().port();
    let on_stack = format!(":{stack_port} ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .lines()
        .iter()
        .any(|l| l.starts_with("connected: gateway") && l.contains(&on_stack))
    {
        assert!(Instant::now() < deadline, "no session on the other gateway");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = wait_curl(curl(&socks, web, &fresh, Some("0-1048575"))).await;
    assert_intact(
        &out,
        &fresh,
        &pattern(1024 * 1024),
        "download after the GOAWAY",
    );

    let expected = pattern(SIZE);
    for (i, (child, file)) in downloads.into_iter().zip(&files).enumerate() {
        let out = wait_curl(child).await;
        assert_intact(
            &out,
            file,
            &expected,
            &format!("download {i} in flight at SIGTERM"),
        );
    }
    println!(
        "both 30 MiB downloads completed {:.1} s after SIGTERM",
        goaway_at.elapsed().as_secs_f64()
    );
    let lines = client.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("connected: gateway") && l.contains(&format!(":{stack_port} "))),
        "the client moved to the other gateway: {lines:#?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_goaways_let_every_download_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack(dir.path()).await;
    let web = web_server().await;
    // Every session gets GOAWAY `max_lifetime` after 2 s and may drain for 60 s.
    let (_gateway, link) = start_gateway_binary(
        &stack,
        &[
            ("HTTVPS_GATEWAY_MAX_LIFETIME", "2s"),
            ("HTTVPS_GATEWAY_MAX_LIFETIME_JITTER", "0s"),
            ("HTTVPS_GATEWAY_DRAIN_TIMEOUT", "60s"),
        ],
    )
    .await;
    let (client, socks) = start_client(dir.path(), &[link]).await;

    let files: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("in-flight-{i}.bin")))
        .collect();
    let downloads: Vec<Child> = files.iter().map(|f| curl(&socks, web, f, None)).collect();
    let expected = pattern(SIZE);
    for (i, (child, file)) in downloads.into_iter().zip(&files).enumerate() {
        let out = wait_curl(child).await;
        assert_intact(&out, file, &expected, &format!("download {i}"));
    }
    // The downloads outlived at least one GOAWAY: the client made new sessions meanwhile.
    let sessions = client
        .lines()
        .iter()
        .filter(|l| l.starts_with("connected: gateway"))
        .count();
    assert!(sessions >= 2, "sessions: {:#?}", client.lines());
    stack.stop().await;
}
