//! Drain on a real SIGTERM: the `httvps-gateway` binary, configured by flags, environment and a
//! TOML file, against a real control plane (in process, SQLite) and a real Shadowsocks node (in
//! process). A stream is mid-transfer when the process gets SIGTERM.

mod common;
// Not in `common`: the examples share that, and only tests know the binary's path.
#[path = "common/binary.rs"]
mod binary;

use std::sync::Arc;
use std::time::{Duration, Instant};

use binary::{base_toml, Binary};
use common::cp::TestCp;
use common::*;
use httvps_proto::{ErrorCode, Event, StreamKind};

const T: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(10);

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
            "{}# only the shutdown flush (and the session end) deliver usage here\n\
             usage-report-interval = \"1h\"\nusage-flush-timeout = \"5s\"\n\
             control-plane-timeout = \"3s\"\n",
            base_toml()
        ),
    )
    .unwrap();
    let mut gw = Binary::start(
        &cp,
        &config_file,
        &[(
            "HTTVPS_GATEWAY_SHUTDOWN_GRACE",
            format!("{}s", GRACE.as_secs()),
        )],
    )
    .await;

    let mut client = gw.connect(&sub).await;
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
    let sessions = cp.sessions_of(sub.device).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].end_reason.as_deref(), Some("shutdown"));
    assert_eq!(sessions[0].bytes_down, len as i64);
}
