//! The operator CLI as an operator runs it: the real binary against an SQLite file, from the first
//! admin to a device's connection link.

use std::process::{Command, Output};

use httvps_proto::link::ConnectionLink;

fn cli(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("HTTVPS_ADMIN_PASSWORD", "a long enough password")
        .env("HTTVPS_CP_PUBLIC_GATEWAY", "vpn.example.com:443/s3cret")
        .env("HTTVPS_CP_GATEWAY_CERT_SHA256", "ab".repeat(32))
        .env_remove("HTTVPS_CP_GATEWAY_SNI")
        .env_remove("HTTVPS_CP_SECRET_KEY")
        .env_remove("HTTVPS_CP_SECRET_KEY_FILE")
        .output()
        .expect("run the CLI")
}

fn ok(db: &str, args: &[&str]) -> String {
    let out = cli(db, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn an_operator_sets_up_a_working_service_without_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("cp.db").display());
    assert!(ok(&db, &["migrate"]).contains("migrations applied"));
    assert!(ok(
        &db,
        &["admin", "create", "--username", "root", "--role", "admin"]
    )
    .contains("admin root (admin) created"));
    ok(
        &db,
        &[
            "region",
            "create",
            "--code",
            "eu-west",
            "--name",
            "EU West",
            "--latitude",
            "50.1",
            "--longitude",
            "-8.7",
        ],
    );
    let plan = ok(
        &db,
        &[
            "plan",
            "create",
            "--name",
            "basic",
            "--quota",
            "100GiB",
            "--days",
            "30",
            "--regions",
            "eu-west",
            "--device-limit",
            "1",
        ],
    );
    assert!(plan.contains("plan basic created"));
    assert!(ok(&db, &["plan", "list"]).contains(&format!("{} bytes/calendar_month", 100u64 << 30)));
    let user = ok(
        &db,
        &["user", "create", "--name", "alice", "--plan", "basic"],
    );
    assert!(user.contains("subscribed to basic (active)"), "{user}");

    let device = ok(
        &db,
        &[
            "device",
            "create",
            "--user",
            "alice",
            "--name",
            "Alice's phone",
        ],
    );
    let link_line = device
        .lines()
        .find_map(|l| l.strip_prefix("connection link: "))
        .expect("a link line");
    let link = ConnectionLink::parse(link_line).expect("the printed link parses");
    assert_eq!(
        (link.host.as_str(), link.port, link.path.as_str()),
        ("vpn.example.com", 443, "/s3cret")
    );
    assert_eq!(link.fingerprint, Some([0xab; 32]));
    let token_line = device
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap();
    assert_eq!(link.token, token_line);
    assert!(
        device.contains('█') || device.contains('▀'),
        "a QR code is drawn in the terminal"
    );
    // Shown again (the token is kept sealed under the key file beside the database), then
    // rotated: new token, new link, shown again as such.
    let device_id = link.device_id.clone();
    let shown = ok(&db, &["device", "link", &device_id, "--no-qr"]);
    assert!(
        shown
            .lines()
            .any(|l| l == format!("connection link: {link_line}")),
        "{shown}"
    );
    assert!(
        dir.path().join("cp.db.key").exists(),
        "the generated key file"
    );
    let rotated = ok(&db, &["device", "rotate-token", &device_id, "--no-qr"]);
    let new_line = rotated
        .lines()
        .find_map(|l| l.strip_prefix("connection link: "))
        .expect("the new link");
    let new_link = ConnectionLink::parse(new_line).unwrap();
    assert_ne!(new_link.token, link.token);
    assert_eq!(new_link.device_id, link.device_id);
    let shown = ok(&db, &["device", "link", &device_id, "--no-qr"]);
    assert!(shown.contains(new_line), "{shown}");
    // The subscription URL made at creation, shown again, rotated and revoked.
    let created_url = device
        .lines()
        .find_map(|l| l.strip_prefix("subscription URL: "))
        .expect("a subscription URL line");
    let sub = ok(&db, &["device", "subscription", &device_id, "--no-qr"]);
    assert!(sub.contains(created_url), "{sub}");
    let sub = ok(
        &db,
        &["device", "subscription", &device_id, "--rotate", "--no-qr"],
    );
    assert!(!sub.contains(created_url) && sub.contains("/sub/"), "{sub}");
    ok(&db, &["device", "subscription", &device_id, "--revoke"]);
    let gone = cli(&db, &["device", "subscription", &device_id]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );

    // The plan allows one device.
    let refused = cli(
        &db,
        &["device", "create", "--user", "alice", "--name", "second"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("device limit"));

    let key = "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpzZWNyZXQ@203.0.113.5:8388/?outline=1#fra-1";
    assert!(ok(&db, &["node", "import", key, "--region", "eu-west"])
        .contains("node fra-1 (203.0.113.5:8388 chacha20-ietf-poly1305) added"));
    let bad = cli(
        &db,
        &[
            "node",
            "import",
            "ss://YWVzLTE5Mi1nY206c2VjcmV0@203.0.113.5:8388",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("aes-192-gcm"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let gw = ok(&db, &["gateway", "create", "--name", "gw-1"]);
    assert!(gw
        .lines()
        .any(|l| l.starts_with("service token (shown once): ") && l.len() > 40));
    assert!(
        ok(&db, &["gateway", "rotate", "--name", "gw-1"]).contains("new service token for gw-1")
    );
    assert!(ok(&db, &["usage", "--by", "user"]).starts_with("bucket_start\tuser"));
    let bad_unit = cli(
        &db,
        &["plan", "create", "--name", "x", "--quota", "12 parsecs"],
    );
    assert!(String::from_utf8_lossy(&bad_unit.stderr).contains("unknown size unit"));
}

/// The CLI makes its changes through the same domain functions as the admin API, so it refuses
/// what the API refuses (with the API's reason), where it used to write whatever it was given.
#[test]
fn the_cli_refuses_what_the_api_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("cp.db").display());
    let refused = |args: &[&str], reason: &str| {
        let out = cli(&db, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    };
    refused(
        &["plan", "create", "--name", "big", "--device-limit", "5000"],
        "device_limit must be between 0 and 1000",
    );
    refused(
        &["region", "create", "--code", "EU West", "--name", "EU West"],
        "must have 1 to 32 of lowercase letters, digits and '-'",
    );
    refused(
        &["user", "create", "--name", &"x".repeat(65)],
        "name must have at most 64 characters",
    );
    refused(
        &[
            "user",
            "create",
            "--name",
            "bob",
            "--email",
            "not-an-address",
        ],
        "is not a valid address",
    );
    refused(
        &["gateway", "create", "--name", "gw one"],
        "name may only contain letters, digits",
    );
    ok(&db, &["gateway", "create", "--name", "gw-1"]);
    refused(
        &["gateway", "rotate", "--name", "gw-1", "--overlap-secs=-5"],
        "overlap_secs must be between 0 and",
    );
    // Nothing refused was written.
    assert!(!ok(&db, &["user", "list"]).contains("bob"));
    assert!(ok(&db, &["plan", "list"]).trim().is_empty());
}

/// `httvps-control-plane ... | head` where the reader has gone before the output comes: the
/// command ends quietly with success, as `ls` would, instead of panicking on the closed pipe.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("cp.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .arg("migrate")
        .env("DATABASE_URL", &db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the CLI");
    // Close the read end before the command (which first opens and migrates the database)
    // writes its line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("the CLI ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
