//! A client that never gives up silently (issue 13 item 5), as a user meets it: the real
//! `httvps-client` binary with the local stack (control plane on SQLite, a gateway, a real
//! Shadowsocks node) and the real `curl`. A device disabled mid-session shows `down: revoked`
//! with the control plane's reason, proxy requests fail at once while it is down, and the client
//! comes back by itself once the device is enabled again; a client started while its gateway is
//! down stays up, says `unreachable`, and connects once the gateway is back.

use std::process::Command;
use std::time::{Duration, Instant};

use httvps_control_plane::domain::devices;
use httvps_control_plane::model::DeviceStatus;
use httvps_local_stack::{LocalStack, StackOptions};

mod common;
#[path = "../../../common/test-support/ports.rs"]
mod ports;
use common::process::Process;

/// `httvps-client` with its SOCKS5 and HTTP proxies on free ports.
struct ClientProcess {
    process: Process,
    socks: String,
    http: String,
}

impl ClientProcess {
    fn start(link: &str) -> ClientProcess {
        let [socks, http] = [0; 2].map(|_| format!("127.0.0.1:{}", ports::free_port()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_httvps-client"));
        command
            .args(["--link", link, "--socks", &socks, "--http", &http])
            .env("RUST_LOG", "warn");
        ClientProcess {
            process: Process::start(command),
            socks,
            http,
        }
    }

    /// `curl` through the SOCKS5 proxy: its exit status, what it got, and how long it took.
    fn curl_socks(&self, url: &str) -> (bool, String, Duration) {
        self.curl(&["--socks5-hostname", &self.socks], url)
    }

    /// `curl` through the HTTP proxy: the HTTP status it printed and how long it took.
    fn curl_http_status(&self, url: &str) -> (String, Duration) {
        let (_, out, took) = self.curl(
            &[
                "--proxy",
                &format!("http://{}", self.http),
                "-w",
                "%{http_code}",
                "-o",
                "/dev/null",
            ],
            url,
        );
        (out, took)
    }

    fn curl(&self, proxy: &[&str], url: &str) -> (bool, String, Duration) {
        let start = Instant::now();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(proxy)
            .arg(url)
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            start.elapsed(),
        )
    }
}

async fn stack() -> (tempfile::TempDir, LocalStack) {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::start(StackOptions::ephemeral(dir.path()))
        .await
        .expect("the local stack starts");
    (dir, stack)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_device_is_shown_fails_fast_and_comes_back_when_enabled() {
    let (_dir, stack) = stack().await;
    let web = format!("http://{}/", common::web::answering("hello").await);
    let mut client = ClientProcess::start(&stack.link);
    client.process.wait_for_after("connected: gateway", 0).await;
    let (ok, body, _) = client.curl_socks(&web);
    assert!(ok && body == "hello", "through the tunnel: {body:?}");

    let state = &stack.control_plane.state;
    devices::set_status(state, "test", stack.device_id, DeviceStatus::Disabled)
        .await
        .unwrap();
    // The reason on the status line: the session's end code (and the control plane's reason
    // where it differs from the code).
    let (at, down) = client.process.wait_for_after("down: ", 0).await;
    assert!(
        down.starts_with("down: revoked") && down.contains("; retrying in "),
        "{down:?}"
    );
    // The log says it too (stderr, WARN).
    assert!(
        client
            .process
            .lines()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("code=revoked")),
        "{:#?}",
        client.process.lines()
    );
    // While down: failures at once, not a hang until some timeout.
    let (ok, _, took) = client.curl_socks(&web);
    assert!(!ok, "SOCKS5 through a client that is down fails");
    assert!(
        took < Duration::from_secs(2),
        "SOCKS5 failed after {took:?}"
    );
    let (status, took) = client.curl_http_status(&web);
    assert_eq!(status, "503", "the HTTP proxy says Service Unavailable");
    assert!(
        took < Duration::from_secs(2),
        "HTTP proxy failed after {took:?}"
    );
    // It keeps trying: the next refusal shows with its own line, and the process is still up.
    let (at, again) = client.process.wait_for_after("down: revoked", at + 1).await;
    assert!(again.contains("retrying in "), "{again:?}");
    assert!(client.process.is_running());

    devices::set_status(state, "test", stack.device_id, DeviceStatus::Active)
        .await
        .unwrap();
    client
        .process
        .wait_for_after("connected: gateway", at)
        .await;
    let (ok, body, _) = client.curl_socks(&web);
    assert!(ok && body == "hello", "through the tunnel again: {body:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_started_while_its_gateway_is_down_waits_for_it() {
    let (_dir, mut stack) = stack().await;
    let web = format!("http://{}/", common::web::answering("hello").await);
    stack.stop_gateway().await;
    let mut client = ClientProcess::start(&stack.link);
    let (at, down) = client.process.wait_for_after("down: unreachable", 0).await;
    assert!(down.contains("retrying in "), "{down:?}");
    // Its proxies are up and fail at once.
    client.process.wait_for_after("SOCKS5 proxy on", 0).await;
    let (ok, _, took) = client.curl_socks(&web);
    assert!(!ok);
    assert!(
        took < Duration::from_secs(2),
        "SOCKS5 failed after {took:?}"
    );
    assert!(client.process.is_running(), "the client does not exit");

    stack.start_gateway().await.unwrap();
    client
        .process
        .wait_for_after("connected: gateway", at)
        .await;
    let (ok, body, _) = client.curl_socks(&web);
    assert!(ok && body == "hello", "through the tunnel: {body:?}");
    stack.stop().await;
}
