//! The binding as an app meets it: generate-bindings.sh builds the library and generates its
//! Kotlin, Swift and Python bindings, and tests/tunnel.py drives the Python ones against the
//! real gateway, control plane and Shadowsocks node (httvps-local-stack): DNS and TCP as IP
//! packets, through callbacks (iOS) and through a file descriptor (Android), from a link and from
//! a subscription URL. Needs python3
//! (standard library only): without it the test fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use httvps_control_plane::domain::devices;
use httvps_local_stack::{LocalStack, StackOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};

const GREETING: &str = "hello from the target\n";

/// Answers every query with one A record, 192.0.2.7.
async fn dns_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            let question_end = 12 + buf[12..n].iter().position(|b| *b == 0).unwrap_or(0) + 5;
            let mut answer = buf[..question_end.min(n)].to_vec();
            answer[2] = 0x81;
            answer[3] = 0x80;
            answer[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            answer.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            let _ = socket.send_to(&answer, from).await;
        }
    });
    addr
}

/// Greets every connection, then holds it open a while.
async fn tcp_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(GREETING.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

/// Runs generate-bindings.sh into `out`; checks all three languages came out.
async fn generate_bindings(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("generate-bindings.sh");
    let status = tokio::process::Command::new(&script)
        .arg(out)
        .status()
        .await
        .expect("generate-bindings.sh runs");
    assert!(status.success(), "generate-bindings.sh failed: {status}");
    for file in [
        "kotlin/uniffi/httvps_ffi/httvps_ffi.kt",
        "swift/httvps_ffi.swift",
        "swift/httvps_ffiFFI.h",
        "python/httvps_ffi.py",
    ] {
        assert!(out.join(file).is_file(), "{file} was not generated");
    }
}

fn bindings_dir() -> PathBuf {
    // Next to the build, so CI keeps the Kotlin and Swift bindings it generated.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bindings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bindings_carry_dns_and_tcp_through_a_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::start(StackOptions::ephemeral(dir.path()))
        .await
        .expect("the stack starts");
    // The demo device's token rotated (so the control plane keeps it, sealed, for the
    // subscription) and its subscription URL.
    let state = &stack.control_plane.state;
    let link = devices::rotate_token(state, "test", stack.device_id)
        .await
        .expect("token rotated")
        .link;
    let subscription = devices::rotate_subscription_url(state, "test", stack.device_id)
        .await
        .expect("subscription URL");
    let token = subscription.rsplit('/').next().unwrap_or_default();
    let subscription = format!("http://{}/sub/{token}", stack.control_plane.addr);
    let dns = dns_server().await;
    let target = tcp_target().await;
    let bindings = bindings_dir();
    generate_bindings(&bindings).await;

    let run = tokio::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tunnel.py"))
        .env("PYTHONPATH", bindings.join("python"))
        .env("HTTVPS_LINK", &link)
        .env("SUBSCRIPTION_URL", &subscription)
        .env("DNS_RESOLVER", dns.to_string())
        .env("TCP_TARGET", target.to_string())
        .env("TCP_GREETING", GREETING)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("tunnel.py finishes within 180 s")
        .expect("python3 runs (install python3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "tunnel.py failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("ok"), "tunnel.py ended early");
    stack.stop().await;
}
