//! Drain on a real SIGTERM: the `httvps-gateway` binary, configured by flags, environment and a
//! TOML file, against a real control plane (in process, SQLite) and a real Shadowsocks node (in
//! process). A stream is mid-transfer when the process gets SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cp::TestCp;
use common::*;
use httvps_control_plane::store::SessionFilter;
use httvps_proto::{ErrorCode, Event, StreamKind};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(10);

/// The gateway binary in a child process; killed if the test fails.
struct Binary {
    child: tokio::process::Child,
    addr: SocketAddr,
    fingerprint: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    async fn start(cp: &TestCp, config_file: &std::path::Path) -> Binary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_httvps-gateway"));
        // Only what this test sets: no HTTVPS_GATEWAY_* from the environment of the test run.
        for (key, _) in std::env::vars() {
            if key.starts_with("HTTVPS_GATEWAY_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--config")
            .arg(config_file)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--control-plane-url", cp.url().as_str()])
            .env("HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN", &cp.gateway_token)
            .env(
                "HTTVPS_GATEWAY_SHUTDOWN_GRACE",
                format!("{}s", GRACE.as_secs()),
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the gateway binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        // Logs go to stderr or stdout; both are drained so the child never blocks on a pipe.
        let stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let connect_line = tokio::time::timeout(T, async {
            while let Ok(Some(line)) = lines.next_line().await {
                output.lock().unwrap().push(line.clone());
                if line.starts_with("connect with:") {
                    return Some(line);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no connect line; output: {:?}", output.lock().unwrap()));
        let sink = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        // connect with: httvps://DEVICE_ID:TOKEN@HOST:PORT/PATH?fp=FP
        let after_host = connect_line.split("@HOST:").nth(1).unwrap();
        let port: u16 = after_host.split('/').next().unwrap().parse().unwrap();
        let fingerprint = connect_line.split("fp=").nth(1).unwrap().trim().to_owned();
        Binary {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            fingerprint,
            output,
        }
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_real_binary_the_stream_in_flight_completes_and_usage_is_stored() {
    let cp = Arc::new(TestCp::start().await);
    let node = start_node().await;
    cp.add_node(&node, "node-1").await;
    let sub = cp.subscriber(None, 5).await;
    // 12 MiB paced at 64 KiB per 10 ms: a couple of seconds, well inside the grace period.
    let len = 12 * 1024 * 1024;
    let (source, _) = paced_source_server(len, Duration::from_millis(10)).await;

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("gateway.toml");
    std::fs::write(
        &config_file,
        format!(
            "path = \"{PATH}\"\nallow-private-targets = true\nmetrics_listen = \"127.0.0.1:0\"\n\
             # only the shutdown flush (and the session end) deliver usage here\n\
             usage-report-interval = \"1h\"\nusage-flush-timeout = \"5s\"\n\
             control-plane-timeout = \"3s\"\n"
        ),
    )
    .unwrap();
    let mut gw = Binary::start(&cp, &config_file).await;

    let mut client = TestClient::try_connect_to(
        gw.addr,
        &gw.fingerprint,
        &sub.device.to_string(),
        sub.token.as_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("HELLO refused: {e:?}; gateway: {}", gw.output()));
    let mut stream = client
        .open_with(
            StreamKind::Tcp,
            httvps_proto::TargetAddr::socket(source).unwrap(),
            b"",
            true,
        )
        .await;
    stream.accepted().await.unwrap();
    let mut got = Vec::with_capacity(len);
    while got.len() < 1024 * 1024 {
        match stream.next(T).await {
            Some(StreamEv::Data(d)) => got.extend_from_slice(&d),
            other => panic!("before SIGTERM: {other:?}"),
        }
    }

    let killed_at = Instant::now();
    gw.sigterm();
    match client.session_event(T).await {
        Some(Event::GoAway(g)) => assert_eq!(g.code, ErrorCode::ShuttingDown),
        other => panic!("expected GOAWAY shutting_down, got {other:?}"),
    }
    // New connections are refused while the stream drains.
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tokio::net::TcpStream::connect(gw.addr).await {
                Err(e) => return e.kind(),
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the listener closes after SIGTERM");
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    let in_flight = got.len();
    assert!(in_flight < len, "the stream was still in flight");

    // The stream in flight completes with every byte.
    got.extend_from_slice(&stream.read_to_end(T).await);
    assert_eq!(got.len(), len);
    assert_eq!(sha256(&got), sha256(&pattern(len)));
    // The client closes its side too; with no stream left the drained session ends at once
    // with ERROR no_error (not at the end of the grace period).
    stream.finish();
    match client.session_event(T).await {
        Some(Event::PeerError(e)) => assert_eq!(e.code, ErrorCode::NoError),
        other => panic!("expected ERROR no_error, got {other:?}"),
    }

    let status = tokio::time::timeout(GRACE, gw.child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit within the grace period: {}", gw.output()))
        .unwrap();
    assert!(status.success(), "exit {status:?}: {}", gw.output());
    assert!(killed_at.elapsed() < GRACE);

    // Usage of the session is in the control plane's store, and the session ended as a shutdown.
    assert_eq!(cp.used_bytes(sub.user).await, len as i64, "{}", gw.output());
    let sessions = cp
        .store()
        .list_sessions(&SessionFilter {
            device_id: Some(sub.device),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].end_reason.as_deref(), Some("shutdown"));
    assert_eq!(sessions[0].bytes_down, len as i64);
}
