//! The whole path as a user meets it: the real `curl` through the real `httvps-client` (SOCKS5
//! and HTTP proxy) to a gateway, through a real Shadowsocks node, to a web server on this
//! machine; devices and sessions checked by the real control plane (SQLite). 50 MiB down and up
//! with matching SHA-256, a DNS query over UDP through the tunnel, and a gateway restart in the
//! middle that the client gets over by itself.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use httvps_local_stack::{LocalStack, StackOptions};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[path = "../../../common/test-support/ports.rs"]
mod ports;
use ports::free_port;

const SIZE: usize = 50 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 4099) as u8).collect()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A minimal HTTP/1.1 server: `GET /download` sends the 50 MiB pattern, `POST /upload` answers
/// with the SHA-256 of the body it received.
async fn web_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = std::sync::Arc::new(pattern(SIZE));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let end = loop {
                    if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                };
                let text = String::from_utf8_lossy(&head[..end]).to_lowercase();
                if text.starts_with("get /download") {
                    let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes()).await;
                    let _ = s.write_all(&body).await;
                } else if text.starts_with("post /upload") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if text.contains("expect: 100-continue") {
                        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                    }
                    let mut hasher = Sha256::new();
                    let mut got = head.len() - end;
                    hasher.update(&head[end..]);
                    while got < len {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                hasher.update(&buf[..n]);
                                got += n;
                            }
                        }
                    }
                    let digest = hex(&hasher.finalize());
                    let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{digest}", digest.len()).as_bytes()).await;
                } else {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A DNS server for one name: answers `a.example` with 192.0.2.7.
async fn dns_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            let mut answer = q.to_vec();
            answer[2] = 0x81; // response, recursion desired
            answer[3] = 0x80; // recursion available
            answer[7] = 1; // one answer
            answer.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            let _ = socket.send_to(&answer, from).await;
        }
    });
    addr
}

struct ClientProcess(Child);

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .expect("curl is installed")
}

/// A SOCKS5 UDP ASSOCIATE client: one DNS query to `dns` through the proxy at `socks`.
async fn dns_over_socks5(socks: SocketAddr, dns: SocketAddr) -> Vec<u8> {
    let mut control = tokio::net::TcpStream::connect(socks).await.unwrap();
    control.write_all(&[5, 1, 0]).await.unwrap();
    let mut reply = [0u8; 2];
    control.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [5, 0]);
    control
        .write_all(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut head = [0u8; 10];
    control.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1], 0, "UDP ASSOCIATE accepted");
    let relay = SocketAddr::from((
        [head[4], head[5], head[6], head[7]],
        u16::from_be_bytes([head[8], head[9]]),
    ));
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let query = [
        0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l',
        b'e', 0, 0, 1, 0, 1,
    ];
    let std::net::IpAddr::V4(ip) = dns.ip() else {
        panic!("IPv4 resolver")
    };
    let mut packet = vec![0, 0, 0, 1];
    packet.extend_from_slice(&ip.octets());
    packet.extend_from_slice(&dns.port().to_be_bytes());
    packet.extend_from_slice(&query);
    udp.send_to(&packet, relay).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), udp.recv_from(&mut buf))
        .await
        .expect("a DNS answer within 10 s")
        .unwrap();
    drop(control);
    // Strip the SOCKS5 UDP header (IPv4 source: 10 bytes).
    buf[10..n].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_httvps_client_gateway_and_shadowsocks() {
    let dir = tempfile::tempdir().unwrap();
    let options = StackOptions::ephemeral(dir.path());
    let mut stack = LocalStack::start(options).await.expect("the stack starts");
    let web = web_server().await;
    let dns = dns_server().await;
    let (socks_port, http_port) = (free_port(), free_port());
    let socks: SocketAddr = ([127, 0, 0, 1], socks_port).into();
    let mut child = Command::new(env!("CARGO_BIN_EXE_httvps-client"))
        .args([
            "--link",
            &stack.link,
            "--socks",
            &socks.to_string(),
            "--http",
            &format!("127.0.0.1:{http_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("httvps-client starts");
    let stdout = child.stdout.take().unwrap();
    let _client = ClientProcess(child);
    // Its status lines, read for the whole run.
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("SOCKS5 proxy on"))
    {
        seen.push(
            tokio::time::timeout(Duration::from_secs(30), lines_rx.recv())
                .await
                .expect("status lines")
                .expect("client running"),
        );
    }
    assert!(
        seen.iter().any(|l| l.starts_with("connected: gateway")),
        "{seen:?}"
    );

    // 50 MiB down through SOCKS5, by host name resolution on the far side.
    let socks_arg = format!("127.0.0.1:{socks_port}");
    let out_file = dir.path().join("download.bin");
    let t = Instant::now();
    let out = curl(&[
        "--socks5-hostname",
        &socks_arg,
        "-o",
        out_file.to_str().unwrap(),
        &format!("http://{web}/download"),
    ]);
    assert!(
        out.status.success(),
        "curl download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs = t.elapsed().as_secs_f64();
    let got = std::fs::read(&out_file).unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(pattern(SIZE)),
        "download intact"
    );
    println!(
        "50 MiB download through httvps: {secs:.2} s ({:.0} MiB/s)",
        50.0 / secs
    );

    // 50 MiB up through the HTTP proxy; the server answers with the SHA-256 it received.
    let up_file = dir.path().join("upload.bin");
    std::fs::File::create(&up_file)
        .unwrap()
        .write_all(&pattern(SIZE))
        .unwrap();
    let out = curl(&[
        "--proxy",
        &format!("http://127.0.0.1:{http_port}"),
        "--data-binary",
        &format!("@{}", up_file.display()),
        &format!("http://{web}/upload"),
    ]);
    assert!(
        out.status.success(),
        "curl upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        hex(&Sha256::digest(pattern(SIZE))),
        "upload intact"
    );

    // DNS over UDP through SOCKS5 UDP ASSOCIATE.
    let answer = dns_over_socks5(socks, dns).await;
    assert_eq!(&answer[..2], &[0xAB, 0xCD], "the answer to our query");
    assert_eq!(
        &answer[answer.len() - 4..],
        &[192, 0, 2, 7],
        "the A record came back through the tunnel"
    );

    // The gateway restarts; the client reconnects by itself and traffic flows again.
    stack.restart_gateway().await.expect("gateway restarts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let small = dir.path().join("after.bin");
    loop {
        let out = curl(&[
            "--socks5-hostname",
            &socks_arg,
            "-r",
            "0-1048575",
            "-o",
            small.to_str().unwrap(),
            &format!("http://{web}/download"),
        ]);
        if out.status.success()
            && std::fs::metadata(&small)
                .map(|m| m.len() > 0)
                .unwrap_or(false)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no traffic 20 s after the gateway restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The client said so: a second "connected" status line for the new session.
    let mut connected = seen
        .iter()
        .filter(|l| l.starts_with("connected: gateway"))
        .count();
    while let Ok(line) = lines_rx.try_recv() {
        connected += usize::from(line.starts_with("connected: gateway"));
        seen.push(line);
    }
    assert!(
        connected >= 2,
        "a status line for the new session: {seen:?}"
    );
    // The control plane saw both sessions of the device.
    let sessions = stack
        .control_plane
        .state
        .store
        .list_sessions(&httvps_control_plane_filter(stack.device_id))
        .await
        .unwrap();
    assert!(
        sessions.len() >= 2,
        "a new session after the restart: {}",
        sessions.len()
    );
    stack.stop().await;
}

fn httvps_control_plane_filter(device: uuid::Uuid) -> httvps_control_plane::store::SessionFilter {
    httvps_control_plane::store::SessionFilter {
        device_id: Some(device),
        limit: 100,
        ..Default::default()
    }
}
