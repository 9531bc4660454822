//! `httvps-client --subscription URL` against a real control plane whose subscription lists a
//! dead gateway first and the real one second: the client fails over to the second and `curl`
//! gets through its SOCKS5 proxy (gateway, Shadowsocks node, web server, all on this machine).
//! Then, with the URL revoked (404), a client started with the cache of the last good list
//! still connects. And a refresh after a token rotation moves the client to the new token.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use httvps_control_plane::domain::devices;
use httvps_local_stack::{LocalStack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BODY: &str = "hello through the second gateway";

/// Answers every request with [`BODY`].
async fn web_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct ClientProcess(Child);

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Lines = tokio::sync::mpsc::UnboundedReceiver<String>;

/// Starts `httvps-client` with `args` and waits for its SOCKS5 line; returns it with the
/// status lines printed until then, and the lines to come.
async fn start_client(args: &[&str]) -> (ClientProcess, Vec<String>, Lines) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httvps-client"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("httvps-client starts");
    let stdout = child.stdout.take().unwrap();
    let client = ClientProcess(child);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("SOCKS5 proxy on"))
    {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(line)) => seen.push(line),
            other => panic!("the client stopped before serving ({other:?}); it printed {seen:?}"),
        }
    }
    (client, seen, rx)
}

fn curl_through(socks: SocketAddr, url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--socks5-hostname"])
        .arg(socks.to_string())
        .arg(url)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_from_a_dead_first_link_and_keeps_the_last_good_list() {
    let dir = tempfile::tempdir().unwrap();
    let options = StackOptions {
        data_dir: dir.path().to_owned(),
        control_plane_listen: "127.0.0.1:0".parse().unwrap(),
        gateway_listen: "127.0.0.1:0".parse().unwrap(),
        allow_private_targets: true,
        run_jobs: false,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let device = stack.device_id;
    // The demo device's token is kept (sealed) from its rotation on.
    devices::rotate_token(&stack.control_plane.state, "test", device)
        .await
        .expect("token rotated");

    // A control plane on the same database (and so the same key file) whose public gateways
    // list a dead address before the stack's gateway.
    let live = stack.control_plane.state.config.public_gateway.clone();
    let dead_port = free_port();
    let mut config = (*stack.control_plane.state.config).clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.public_gateway = format!("dead=127.0.0.1:{dead_port}/gone, live={live}");
    let cp = httvps_control_plane::app::start(config, false)
        .await
        .expect("the second control plane starts");
    let url = devices::rotate_subscription_url(&cp.state, "test", device)
        .await
        .expect("a subscription URL");
    let token = url.rsplit('/').next().unwrap();
    let url = format!("http://{}/sub/{token}", cp.addr);

    let web = web_server().await;
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let cache = dir.path().join("subscription.cache");
    let args = [
        "--subscription",
        &url,
        "--subscription-cache",
        cache.to_str().unwrap(),
        "--socks",
        &socks.to_string(),
        "--no-http",
    ];
    let (client, seen, _) = start_client(&args).await;
    let live_port = live
        .split('/')
        .next()
        .and_then(|a| a.rsplit(':').next())
        .unwrap()
        .to_owned();
    let connected = seen
        .iter()
        .find(|l| l.starts_with("connected: gateway"))
        .unwrap_or_else(|| panic!("a connected line in {seen:?}"));
    assert!(
        connected.contains(&format!(":{live_port}")),
        "connected through the second gateway: {connected}"
    );
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert_eq!(cached.lines().count(), 2, "the last good list is cached");
    assert!(cached
        .lines()
        .next()
        .unwrap()
        .contains(&format!(":{dead_port}/gone")));
    drop(client);

    // The URL revoked: the fetch fails (404) and the cached list still connects.
    devices::revoke_subscription_url(&cp.state, "test", device)
        .await
        .unwrap();
    let gone = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&gone.stdout), "404");
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let args = [
        "--subscription",
        &url,
        "--subscription-cache",
        cache.to_str().unwrap(),
        "--socks",
        &socks.to_string(),
        "--no-http",
    ];
    let (_client, _, _) = start_client(&args).await;
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    cp.stop().await;
    stack.stop().await;
}

fn session_of(line: &str) -> Option<String> {
    line.strip_prefix("connected: gateway ")?
        .split(" session ")
        .nth(1)?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_token_rotation_moves_the_client_to_the_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let options = StackOptions {
        data_dir: dir.path().to_owned(),
        control_plane_listen: "127.0.0.1:0".parse().unwrap(),
        gateway_listen: "127.0.0.1:0".parse().unwrap(),
        allow_private_targets: true,
        run_jobs: false,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let state = &stack.control_plane.state;
    let device = stack.device_id;
    devices::rotate_token(state, "test", device).await.unwrap();
    let url = devices::rotate_subscription_url(state, "test", device)
        .await
        .unwrap();
    let url = format!(
        "http://{}/sub/{}",
        stack.control_plane.addr,
        url.rsplit('/').next().unwrap()
    );
    let web = web_server().await;
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let args = [
        "--subscription",
        &url,
        "--subscription-refresh",
        "1s",
        "--socks",
        &socks.to_string(),
        "--no-http",
    ];
    let (_client, seen, mut lines) = start_client(&args).await;
    let first = seen
        .iter()
        .find_map(|l| session_of(l))
        .unwrap_or_else(|| panic!("a session in {seen:?}"));
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);

    devices::rotate_token(state, "test", device).await.unwrap();
    // The next refresh sees the new token and connects with it: a new session.
    let mut printed = Vec::new();
    let second = loop {
        match tokio::time::timeout(Duration::from_secs(30), lines.recv()).await {
            Ok(Some(line)) => {
                printed.push(line.clone());
                if printed
                    .iter()
                    .any(|l| l.starts_with("subscription refreshed"))
                {
                    if let Some(session) = session_of(&line) {
                        break session;
                    }
                }
            }
            other => panic!("no refresh ({other:?}); printed {printed:?}"),
        }
    };
    assert_ne!(second, first, "a new session after the refresh");
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    stack.stop().await;
}

/// The token rotated while the refresh interval is an hour away: the old session is ended (at
/// the gateway's next session heartbeat here, without Redis), the client fails for good with
/// `auth_failed`, and that failure fetches the subscription at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_after_a_rotation_fetches_the_new_links_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = StackOptions {
        data_dir: dir.path().to_owned(),
        control_plane_listen: "127.0.0.1:0".parse().unwrap(),
        gateway_listen: "127.0.0.1:0".parse().unwrap(),
        allow_private_targets: true,
        run_jobs: false,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let state = &stack.control_plane.state;
    let device = stack.device_id;
    devices::rotate_token(state, "test", device).await.unwrap();
    let url = devices::rotate_subscription_url(state, "test", device)
        .await
        .unwrap();
    let url = format!(
        "http://{}/sub/{}",
        stack.control_plane.addr,
        url.rsplit('/').next().unwrap()
    );
    let web = web_server().await;
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let args = [
        "--subscription",
        &url,
        "--subscription-refresh",
        "1h",
        "--socks",
        &socks.to_string(),
        "--no-http",
    ];
    let (_client, _, mut lines) = start_client(&args).await;
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    devices::rotate_token(state, "test", device).await.unwrap();
    // The gateway hears of the rotation at its next session heartbeat (30 s at most).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut printed = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) if line.starts_with("subscription refreshed") => break,
            Ok(Some(line)) => printed.push(line),
            other => panic!("no refresh ({other:?}); printed {printed:?}"),
        }
    }
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    stack.stop().await;
}
