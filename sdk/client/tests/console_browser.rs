//! The operator console (`/ui`) in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against the whole stack on PostgreSQL — the control plane, a gateway and a
//! Shadowsocks node (deploy/local-stack) — with a live session made by the real
//! `httvps-client`. An admin signs in with the keyboard, creates a plan, a user, a subscription
//! and a device, sees its link and QR code, and kills the client's session; a viewer sees
//! read-only pages and a forged POST is refused. Every page is saved as a PNG under
//! `target/tmp/console-screenshots/` (the path is printed).
//!
//! Chromium and chromedriver are installed by scripts/services.sh; a missing one fails the test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use httvps_control_plane::domain;
use httvps_control_plane::model::{NodeHealth, Role};
use httvps_control_plane::store::{ProbeRecord, SessionFilter, Store, StoreOptions};
use httvps_local_stack::{LocalStack, StackOptions};

#[path = "../../../common/test-support/ports.rs"]
mod ports;
use ports::free_port;

const ADMIN_PASSWORD: &str = "console-admin-password-1";
const VIEWER_PASSWORD: &str = "console-viewer-password-1";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL_TEST")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database for the control plane (dropped at the end of the test), and
/// its name.
async fn fresh_database() -> (String, String) {
    let admin_url = postgres_admin_url();
    let name = format!("httvps_console_{}", uuid::Uuid::new_v4().simple());
    let admin = Store::connect(
        &admin_url,
        &StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is required for this test: {e}"));
    admin
        .execute_raw(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    (format!("{base}/{name}"), name)
}

async fn drop_database(name: &str) {
    let admin = Store::connect(
        &postgres_admin_url(),
        &StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("PostgreSQL");
    admin
        .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop the test database");
    admin.close().await;
}

/// chromedriver on a free port, ready for sessions.
async fn chromedriver() -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver is required (Debian: chromium-driver; scripts/services.sh installs it): {e}")
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Killed(child), port)
}

/// A headless Chromium session with a fresh profile.
async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let args = serde_json::json!([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Containers often have a small /dev/shm.
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        format!("--user-data-dir={}", profile.display()),
    ]);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session (is the chromium package installed?)")
}

/// Drives the console and saves screenshots.
struct Console {
    browser: Client,
    base: String,
    shots: PathBuf,
    saved: Vec<String>,
}

impl Console {
    async fn go(&self, path: &str) {
        self.browser
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        self.browser.current_url().await.unwrap().path().to_owned()
    }

    async fn css(&self, selector: &str) -> Element {
        match self.browser.find(Locator::Css(selector)).await {
            Ok(element) => element,
            Err(e) => panic!("no {selector} on {}: {e}", self.path().await),
        }
    }

    async fn count(&self, selector: &str) -> usize {
        self.browser
            .find_all(Locator::Css(selector))
            .await
            .unwrap()
            .len()
    }

    async fn text(&self) -> String {
        self.css("body").await.text().await.unwrap()
    }

    /// Waits (up to 15 s) until the page says `needle`: a form post's answer may still be
    /// loading when the click returns.
    async fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(body) = self.browser.find(Locator::Css("body")).await {
                if body.text().await.is_ok_and(|t| t.contains(needle)) {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("{needle:?} never appeared on {}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, form: &str, field: &str, value: &str) {
        let input = self.css(&format!("#{form} [name={field}]")).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    async fn select(&self, form: &str, field: &str, label: &str) {
        self.css(&format!("#{form} select[name={field}]"))
            .await
            .find(Locator::XPath(&format!(
                "./option[normalize-space()='{label}']"
            )))
            .await
            .unwrap_or_else(|e| panic!("no option {label} in {form}.{field}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn submit(&self, form: &str) {
        self.css(&format!("#{form} button[type=submit]"))
            .await
            .click()
            .await
            .unwrap();
    }

    /// Clicks the button whose text is `label`.
    async fn press(&self, label: &str) {
        self.browser
            .find(Locator::XPath(&format!(
                "//button[normalize-space()='{label}']"
            )))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn buttons(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in self
            .browser
            .find_all(Locator::Css("main button"))
            .await
            .unwrap()
        {
            out.push(b.text().await.unwrap());
        }
        out
    }

    async fn shot(&mut self, name: &str) {
        let png = self.browser.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let file = self.shots.join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write the screenshot");
        self.saved.push(file.display().to_string());
    }

    /// Every visible form field has a label (wrapping it or pointing at it).
    async fn assert_labelled(&self) {
        let unlabelled = self
            .browser
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                 .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))\
                 .map(e => e.name);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            unlabelled,
            serde_json::json!([]),
            "unlabelled fields on {}",
            self.path().await
        );
    }

    /// Signs in with the keyboard alone: the username field has focus, Tab reaches the
    /// password, Enter submits.
    async fn sign_in(&self, username: &str, password: &str) {
        self.go("/ui/login").await;
        let focused = self.browser.active_element().await.unwrap();
        assert_eq!(
            focused.attr("name").await.unwrap().as_deref(),
            Some("username")
        );
        focused.send_keys(username).await.unwrap();
        focused.send_keys(&Key::Tab.to_string()).await.unwrap();
        let focused = self.browser.active_element().await.unwrap();
        assert_eq!(
            focused.attr("name").await.unwrap().as_deref(),
            Some("password")
        );
        focused
            .send_keys(&format!("{password}{}", Key::Enter))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != "/ui" {
            assert!(
                Instant::now() < deadline,
                "signed in: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Fetches `path` from `target` through the client's SOCKS5 proxy (no authentication,
/// CONNECT to an IPv4 address): real traffic through the gateway and the Shadowsocks node.
async fn fetch_through(socks: SocketAddr, target: SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let std::net::IpAddr::V4(ip) = target.ip() else {
        panic!("an IPv4 target")
    };
    let mut s = tokio::net::TcpStream::connect(socks)
        .await
        .expect("the SOCKS5 proxy");
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0], "no authentication");
    let mut connect = vec![5, 1, 0, 1];
    connect.extend_from_slice(&ip.octets());
    connect.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&connect).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[1], 0, "CONNECT succeeded");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.unwrap();
    body
}

async fn live_sessions(store: &Store) -> Vec<httvps_control_plane::model::Session> {
    store
        .list_sessions(&SessionFilter {
            live_only: true,
            user_id: None,
            device_id: None,
            gateway_id: None,
            node_id: None,
            limit: 100,
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_console_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, database) = fresh_database().await;
    let options = StackOptions {
        database_url: Some(database_url),
        secret_key: Some("7f".repeat(32)),
        ..StackOptions::ephemeral(dir.path())
    };
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let state = &stack.control_plane.state;
    let store = state.store.clone();
    domain::admins::create(state, "test", "root", ADMIN_PASSWORD.into(), Role::Admin)
        .await
        .unwrap();
    domain::admins::create(
        state,
        "test",
        "watcher",
        VIEWER_PASSWORD.into(),
        Role::Viewer,
    )
    .await
    .unwrap();

    // A live session made by the real client with the demo device's link.
    let socks: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _client = Killed(
        Command::new(env!("CARGO_BIN_EXE_httvps-client"))
            .args(["--link", &stack.link, "--socks", &socks.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("httvps-client starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        if let Some(s) = live_sessions(&store).await.into_iter().next() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the client's session never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Traffic through the tunnel (the console's own stylesheet, a few KiB, repeatedly), then
    // the gateway's usage report and the roll-up the dashboard and charts read.
    for _ in 0..20 {
        let answer = fetch_through(socks, stack.control_plane.addr, "/ui/static/console.css").await;
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "fetched through the tunnel"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        store.roll_up_usage(1000).await.unwrap();
        let now = httvps_control_plane::model::now_ms();
        let rows = store
            .usage_report(&httvps_control_plane::store::UsageQuery {
                group_by: httvps_control_plane::store::UsageGroupBy::User,
                daily: true,
                from: now - 86_400_000,
                to: now + 1,
                key: None,
            })
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never reported the usage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (_driver, port) = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut ui = Console {
        browser: browser(port, profile.path()).await,
        base: format!("http://{}", stack.control_plane.addr),
        shots,
        saved: Vec::new(),
    };

    // Signed out, every page leads to the sign-in form.
    ui.go("/ui/users").await;
    assert_eq!(ui.path().await, "/ui/login");
    ui.assert_labelled().await;
    ui.shot("login").await;
    // A wrong password is said on the form.
    ui.fill("login", "username", "root").await;
    ui.fill("login", "password", "not the password").await;
    ui.submit("login").await;
    ui.wait_for("wrong username or password").await;
    assert!(
        ui.text().await.contains("wrong username or password"),
        "{}",
        ui.text().await
    );
    assert!(ui
        .css("#login-error")
        .await
        .text()
        .await
        .unwrap()
        .contains("wrong username or password"));

    ui.sign_in("root", ADMIN_PASSWORD).await;
    assert!(ui.text().await.contains("online sessions"));
    assert_eq!(ui.css("#online-sessions").await.text().await.unwrap(), "1");
    // The demo user's traffic: in the charts and the top users.
    assert!(ui.count("svg[role=img] rect.bar").await >= 24 + 7);
    assert!(ui
        .css("main table")
        .await
        .text()
        .await
        .unwrap()
        .contains("demo"));
    ui.shot("dashboard").await;

    // A plan; the same name again is refused next to the form.
    ui.go("/ui/plans").await;
    ui.assert_labelled().await;
    ui.fill("create-plan", "name", "gold").await;
    ui.fill("create-plan", "quota_gib", "50").await;
    ui.fill("create-plan", "duration_days", "30").await;
    ui.submit("create-plan").await;
    ui.wait_for("plan gold created").await;
    assert!(ui.text().await.contains("50.0 GiB"));
    ui.fill("create-plan", "name", "gold").await;
    ui.submit("create-plan").await;
    ui.wait_for("exists already").await;
    let refusal = ui.css("#create-plan-error").await.text().await.unwrap();
    assert!(refusal.contains("exists already"), "{refusal}");
    ui.shot("plans").await;

    // A user, with the keyboard: Enter in the name field submits.
    ui.go("/ui/users").await;
    ui.assert_labelled().await;
    ui.css("#create-user [name=name]")
        .await
        .send_keys(&format!("alice{}", Key::Enter))
        .await
        .unwrap();
    ui.wait_for("user created").await;
    assert!(
        ui.path().await.starts_with("/ui/users/"),
        "the new user's page"
    );
    ui.assert_labelled().await;

    // A subscription and a device.
    ui.select("subscribe", "plan", "gold").await;
    ui.submit("subscribe").await;
    ui.wait_for("subscription to gold added").await;
    assert!(ui
        .css("main table")
        .await
        .text()
        .await
        .unwrap()
        .contains("gold"));
    ui.fill("create-device", "name", "alice-phone").await;
    ui.submit("create-device").await;
    ui.wait_for("New credentials").await;
    let link = ui.css("#device-link").await.text().await.unwrap();
    assert!(link.starts_with("httvps://"), "{link}");
    assert!(!ui
        .css("#device-token")
        .await
        .text()
        .await
        .unwrap()
        .is_empty());
    let qr = ui.css("img.qr").await;
    assert!(qr
        .attr("src")
        .await
        .unwrap()
        .unwrap()
        .starts_with("data:image/svg+xml;base64,"));
    assert_eq!(
        qr.attr("alt").await.unwrap().as_deref(),
        Some("QR code of the connection link")
    );
    ui.shot("device-created").await;
    let alice = store.user_by_name("alice").await.unwrap();
    let phone = store.list_devices(Some(alice.id)).await.unwrap().remove(0);
    // Shown again later, from the sealed token: the same link.
    ui.go(&format!("/ui/devices/{}", phone.id)).await;
    assert_eq!(ui.css("#device-link").await.text().await.unwrap(), link);
    assert_eq!(ui.count("img.qr").await, 1);
    ui.shot("device").await;
    ui.go(&format!("/ui/users/{}", alice.id)).await;
    assert!(ui.text().await.contains("alice-phone"));
    ui.shot("user").await;
    ui.go("/ui/users?q=ali&status=active").await;
    assert!(
        ui.text().await.contains("1 of 2 users"),
        "{}",
        ui.text().await
    );
    ui.shot("users").await;
    ui.go("/ui/devices").await;
    ui.shot("devices").await;

    // The client's session, by name, killed from the sessions page.
    ui.go("/ui/sessions").await;
    let table = ui.css("main table").await.text().await.unwrap();
    let device = store.get_device(session.device_id).await.unwrap();
    assert!(
        table.contains("demo") && table.contains(&device.name),
        "{table}"
    );
    ui.shot("sessions").await;
    ui.press(&format!("Kill session of {}", device.name)).await;
    ui.wait_for("session killed").await;
    assert!(store.get_session(session.id).await.unwrap().kill_requested);
    assert_eq!(
        ui.buttons()
            .await
            .iter()
            .filter(|b| b.starts_with("Kill session"))
            .count(),
        0
    );
    // The gateway closes it (at once with Redis, else at its next session heartbeat).
    let started = Instant::now();
    while store
        .get_session(session.id)
        .await
        .unwrap()
        .ended_at
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the gateway never closed the killed session"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("the killed session ended after {:?}", started.elapsed());
    ui.go("/ui/sessions").await;
    assert!(!ui.text().await.contains(&device.name), "no longer online");

    // The other pages render, with names and their forms labelled.
    for (path, name) in [
        ("/ui/regions", "regions"),
        ("/ui/node-groups", "node-groups"),
        ("/ui/nodes", "nodes"),
        ("/ui/usage", "usage"),
        ("/ui/audit?action=user", "audit"),
        ("/ui/gateways", "gateways"),
        ("/ui/admins", "admins"),
    ] {
        ui.go(path).await;
        assert!(ui.count("main h1").await == 1, "{path} has its heading");
        ui.assert_labelled().await;
        ui.shot(name).await;
    }
    ui.go("/ui/audit?action=user.create").await;
    assert!(ui.text().await.contains("admin:root"));
    // Targets by name, linked to their page.
    assert_eq!(
        ui.count(&format!("main td a[href='/ui/users/{}']", alice.id))
            .await,
        1
    );
    let node = store.list_nodes().await.unwrap().remove(0);
    // Three health changes as the health checker records them (its jobs are off in this
    // stack): the node page charts each and lists them.
    let t0 = httvps_control_plane::model::now_ms() - 60_000;
    for (i, (health, latency, error)) in [
        (NodeHealth::Healthy, Some(12), None),
        (NodeHealth::Unhealthy, None, Some("connection refused")),
        (NodeHealth::Healthy, Some(15), None),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .record_probe(&ProbeRecord {
                node_id: node.id,
                at: t0 + i as i64 * 20_000,
                health,
                consecutive_failures: 0,
                consecutive_successes: 0,
                latency_ms: latency,
                error: error.map(str::to_owned),
                transition: Some(health),
            })
            .await
            .unwrap();
    }
    ui.go(&format!("/ui/nodes/{}", node.id)).await;
    assert_eq!(ui.count("svg[role=img] rect.bar").await, 3);
    assert!(ui.text().await.contains("connection refused"));
    ui.select("update-node", "status", "draining").await;
    ui.submit("update-node").await;
    ui.wait_for("node saved").await;
    assert_eq!(
        store.get_node(node.id).await.unwrap().status,
        httvps_control_plane::model::NodeStatus::Draining
    );
    ui.shot("node").await;

    // A viewer: read-only pages, no write buttons, and a forged POST refused.
    ui.press("Sign out").await;
    ui.wait_for("Sign in").await;
    assert_eq!(ui.path().await, "/ui/login");
    ui.sign_in("watcher", VIEWER_PASSWORD).await;
    assert_eq!(ui.count("a[href='/ui/admins']").await, 0, "no admins link");
    for path in [
        "/ui/users".to_owned(),
        format!("/ui/users/{}", alice.id),
        format!("/ui/devices/{}", phone.id),
        "/ui/sessions?show=all".to_owned(),
        "/ui/plans".to_owned(),
        "/ui/nodes".to_owned(),
        format!("/ui/nodes/{}", node.id),
        "/ui/gateways".to_owned(),
    ] {
        ui.go(&path).await;
        assert_eq!(
            ui.count("main form[method=post]").await,
            0,
            "no write forms on {path}"
        );
        assert!(
            ui.buttons()
                .await
                .iter()
                .all(|b| b == "Filter" || b == "Show"),
            "{path}: {:?}",
            ui.buttons().await
        );
    }
    ui.go("/ui/users").await;
    ui.shot("users-viewer").await;
    ui.go("/ui/admins").await;
    assert!(ui.text().await.contains("this needs the admin role"));
    // A POST built in the page with the session's CSRF token: the role check refuses it.
    ui.go("/ui/users").await;
    ui.browser
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/users';\
             for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['name', 'mallory']]) {\
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
             document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    ui.wait_for("this needs the operator role").await;
    // Without the token: the CSRF check refuses it first.
    ui.go("/ui/users").await;
    ui.browser
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/users';\
             const i = document.createElement('input'); i.type = 'hidden'; i.name = 'name'; i.value = 'mallory'; f.appendChild(i);\
             document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    ui.wait_for("CSRF token").await;
    assert!(
        store.user_by_name("mallory").await.is_err(),
        "no forged user"
    );

    println!("console screenshots:\n  {}", ui.saved.join("\n  "));
    ui.browser.close().await.unwrap();
    stack.stop().await;
    drop_database(&database).await;
}
