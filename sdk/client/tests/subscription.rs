//! `httvps-client --subscription URL` against a real control plane whose subscription lists a
//! dead gateway first and the real one second: the client fails over to the second and `curl`
//! gets through its SOCKS5 proxy (gateway, Shadowsocks node, web server, all on this machine).
//! Then, with the URL revoked (404), a client started with the cache of the last good list
//! still connects. And a refresh after a token rotation moves the client to the new token.

use std::net::SocketAddr;
use std::process::Command;

use httvps_control_plane::domain::devices;
use httvps_local_stack::{LocalStack, StackOptions};

mod common;
#[path = "../../../common/test-support/ports.rs"]
mod ports;
use common::process::Process;
use ports::free_port;

const BODY: &str = "hello through the second gateway";

/// Starts `httvps-client --subscription URL` with `extra` flags and a SOCKS5 proxy on a free
/// port, and waits for its SOCKS5 line; returns it and the proxy's address.
async fn start_client(url: &str, extra: &[&str]) -> (Process, SocketAddr) {
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut command = Command::new(env!("CARGO_BIN_EXE_httvps-client"));
    command.args(["--subscription", url]).args(extra).args([
        "--socks",
        &socks.to_string(),
        "--no-http",
    ]);
    let client = Process::start(command);
    client.wait_for("SOCKS5 proxy on").await;
    (client, socks)
}

/// The local stack with its demo device's token rotated (so that it is kept, sealed) and the
/// device's subscription URL on the stack's control plane.
async fn stack_with_subscription(dir: &std::path::Path) -> (LocalStack, String) {
    let options = StackOptions::ephemeral(dir);
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let state = &stack.control_plane.state;
    devices::rotate_token(state, "test", stack.device_id)
        .await
        .unwrap();
    let url = devices::rotate_subscription_url(state, "test", stack.device_id)
        .await
        .unwrap();
    let url = format!(
        "http://{}/sub/{}",
        stack.control_plane.addr,
        url.rsplit('/').next().unwrap()
    );
    (stack, url)
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
    let options = StackOptions::ephemeral(dir.path());
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

    let web = common::web::answering(BODY).await;
    let cache = dir.path().join("subscription.cache");
    let cache_flags = ["--subscription-cache", cache.to_str().unwrap()];
    let (client, socks) = start_client(&url, &cache_flags).await;
    let live_port = live
        .split('/')
        .next()
        .and_then(|a| a.rsplit(':').next())
        .unwrap()
        .to_owned();
    let connected = client.wait_for("connected: gateway").await;
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
    let (_client, socks) = start_client(&url, &cache_flags).await;
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

/// A client on the subscription with `refresh`; the device's token rotated: the client's next
/// fetch brings the new links and a new session on them carries traffic.
async fn a_rotation_moves_the_client_to_the_new_token(refresh: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (stack, url) = stack_with_subscription(dir.path()).await;
    let web = common::web::answering(BODY).await;
    let (client, socks) = start_client(&url, &["--subscription-refresh", refresh]).await;
    let (at, connected) = client.wait_for_after("connected: gateway", 0).await;
    let first = session_of(&connected).unwrap_or_else(|| panic!("a session in {connected:?}"));
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);

    devices::rotate_token(&stack.control_plane.state, "test", stack.device_id)
        .await
        .unwrap();
    let (at, _) = client
        .wait_for_after("subscription refreshed", at + 1)
        .await;
    let (_, connected) = client.wait_for_after("connected: gateway", at).await;
    let second = session_of(&connected).unwrap_or_else(|| panic!("a session in {connected:?}"));
    assert_ne!(second, first, "a new session after the refresh");
    assert_eq!(curl_through(socks, &format!("http://{web}/")), BODY);
    stack.stop().await;
}

/// The periodic refresh (every second here) sees the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_token_rotation_moves_the_client_to_the_new_token() {
    a_rotation_moves_the_client_to_the_new_token("1s").await;
}

/// The token rotated while the refresh interval is an hour away: the old session is ended (at
/// the gateway's next session heartbeat here, without Redis), the gateway then refuses the
/// client with `auth_failed`, and that refusal fetches the subscription at once (within the
/// 60 s a status line is waited for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_after_a_rotation_fetches_the_new_links_at_once() {
    a_rotation_moves_the_client_to_the_new_token("1h").await;
}
