//! The operator CLI as an operator runs it: the real binary against an SQLite file, from the first
//! admin to a device's connection link, and against PostgreSQL for the day-to-day work (names
//! for ids, tables with dates, `--json`, node groups, sessions, gateway tokens).

mod common;

use std::process::{Command, Output};

use httvps_control_plane::store::NewSession;
use httvps_proto::link::ConnectionLink;
use serde_json::Value;
use uuid::Uuid;

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
    assert!(ok(&db, &["plan", "list"]).contains("100.0 GiB per calendar_month"));
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
    assert!(ok(&db, &["usage", "--by", "user"]).starts_with("BUCKET  USER  UP  DOWN"));
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
    assert_eq!(ok(&db, &["plan", "list", "--json"]).trim(), "[]");
}

/// `httvps-control-plane ... | head` where the reader has gone before the output comes: the
/// command ends quietly with success, as `ls` would, instead of panicking on the closed pipe.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("cp.db").display());
    // A table and a JSON listing too, on the migrated database.
    for args in [
        &["migrate"][..],
        &["user", "list"],
        &["plan", "list", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
            .args(args)
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
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?}: {stderr}", out.status);
    }
}

/// Runs the CLI on `db` with `key` as the secret key file; the output as JSON.
fn json_of(db: &str, key: &str, args: &[&str]) -> Value {
    let out = text_of(db, key, &[args, &["--json"]].concat());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn text_of(db: &str, key: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_httvps-control-plane"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("HTTVPS_ADMIN_PASSWORD", "a long enough password")
        .env("HTTVPS_CP_PUBLIC_GATEWAY", "vpn.example.com:443/s3cret")
        .env("HTTVPS_CP_GATEWAY_CERT_SHA256", "ab".repeat(32))
        .env("HTTVPS_CP_SECRET_KEY_FILE", key)
        .env_remove("HTTVPS_CP_SECRET_KEY")
        .env_remove("REDIS_URL")
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("Some(") && !stdout.contains("None"),
        "{args:?} printed a Rust value: {stdout}"
    );
    stdout
}

/// A table's rows (after the header) whose cells include `cell`.
fn rows_with<'a>(table: &'a str, cell: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip(1)
        .filter(|l| l.split("  ").any(|c| c.trim() == cell))
        .collect()
}

fn has_date(text: &str) -> bool {
    // 2026-12-01 21:20:05 UTC
    text.split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .any(|w| {
            w[0].len() == 10
                && w[0].chars().filter(|c| *c == '-').count() == 2
                && w[1].len() == 8
                && w[2] == "UTC"
        })
}

/// Issue 14 item 6: the CLI does the day-to-day work the admin API does, on PostgreSQL, with
/// things named as the operator knows them, tables with readable dates, and `--json`.
#[test]
fn day_to_day_work_on_postgres_by_name() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let test_db = rt.block_on(common::TestDb::postgres());
    let db = test_db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key").display().to_string();
    let (db, key) = (db.as_str(), key.as_str());

    assert_eq!(json_of(db, key, &["migrate"])["migrated"], true);
    text_of(
        db,
        key,
        &["region", "create", "--code", "eu-west", "--name", "EU West"],
    );
    let plan = json_of(
        db,
        key,
        &[
            "plan", "create", "--name", "basic", "--quota", "10GiB", "--days", "30",
        ],
    );
    assert_eq!(plan["quota_bytes"], 10u64 << 30);
    let shown = text_of(db, key, &["plan", "show", "basic"]);
    assert!(
        shown.contains("10.0 GiB per calendar_month") && shown.contains("30 days"),
        "{shown}"
    );
    let created = json_of(
        db,
        key,
        &[
            "user",
            "create",
            "--name",
            "alice",
            "--email",
            "alice@example.com",
            "--plan",
            "basic",
        ],
    );
    let alice = created["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["subscription"]["status"], "active");

    // Lists are tables with a header and readable dates; --json gives the rows.
    let users = text_of(db, key, &["user", "list"]);
    assert!(users.starts_with("ID "), "{users}");
    let row = rows_with(&users, "alice");
    assert_eq!(row.len(), 1, "{users}");
    assert!(
        row[0].contains("alice@example.com") && row[0].contains("active"),
        "{users}"
    );
    assert!(has_date(row[0]), "{users}");
    let page = json_of(db, key, &["user", "list", "--limit", "1", "--offset", "1"]);
    assert_eq!(
        page,
        Value::Array(vec![]),
        "one user: the second page is empty"
    );

    // A user by e-mail address; show gives subscriptions and quota.
    let shown = json_of(db, key, &["user", "show", "alice@example.com"]);
    assert_eq!(shown["user"]["id"], alice.as_str());
    assert_eq!(shown["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(shown["quota"]["quota_bytes"], 10u64 << 30);
    let shown = text_of(db, key, &["user", "show", "alice"]);
    assert!(shown.contains("10.0 GiB") && has_date(&shown), "{shown}");
    let reset = json_of(db, key, &["user", "reset-usage", "alice@example.com"]);
    assert_eq!(reset["used_bytes"], 0);

    // Extend, add traffic, change plan: by the subscription's id, with the API's refusals.
    let info = json_of(db, key, &["user", "show", "alice"]);
    let sub_id = info["subscriptions"][0]["id"].as_str().unwrap().to_owned();
    let ends = info["subscriptions"][0]["ends_at"].as_i64().unwrap();
    let extended = json_of(
        db,
        key,
        &["subscription", "extend", &sub_id, "--days", "10"],
    );
    assert_eq!(extended["ends_at"].as_i64(), Some(ends + 10 * 86_400_000));
    let text = text_of(db, key, &["subscription", "extend", &sub_id, "--days", "1"]);
    assert!(
        text.contains("extended by 1 days") && has_date(&text),
        "{text}"
    );
    // Added traffic gives used traffic back: with nothing used yet there is nothing to add.
    let refused = cli(
        db,
        &["subscription", "add-traffic", &sub_id, "--traffic", "1GiB"],
    );
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("at most the 0 bytes used"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let zero = cli(
        db,
        &["subscription", "add-traffic", &sub_id, "--traffic", "0"],
    );
    assert!(!zero.status.success(), "no traffic to add is refused");
    ok(
        db,
        &[
            "plan", "create", "--name", "pro", "--quota", "100GiB", "--days", "30",
        ],
    );
    let moved = json_of(
        db,
        key,
        &["subscription", "change-plan", &sub_id, "--plan", "pro"],
    );
    assert_ne!(moved["plan_id"], info["subscriptions"][0]["plan_id"]);
    let again = cli(
        db,
        &["subscription", "change-plan", &sub_id, "--plan", "pro"],
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already"),
        "the plan it is on already: {}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Devices by name within their user.
    let device = json_of(
        db,
        key,
        &["device", "create", "--user", "alice", "--name", "phone"],
    );
    let device_id = device["device"]["id"].as_str().unwrap().to_owned();
    assert!(device["links"][0]["link"]
        .as_str()
        .unwrap()
        .starts_with("httvps://"));
    let disabled = json_of(
        db,
        key,
        &["device", "disable", "phone", "--user", "alice@example.com"],
    );
    assert_eq!(
        (disabled["id"].as_str(), &disabled["status"]),
        (Some(device_id.as_str()), &Value::from("disabled"))
    );
    assert!(text_of(db, key, &["device", "enable", "phone", "--user", "alice"]).contains("phone"));
    let link = json_of(db, key, &["device", "link", "phone", "--user", "alice"]);
    let rotated = json_of(
        db,
        key,
        &["device", "rotate-token", "phone", "--user", "alice"],
    );
    assert_ne!(link["links"][0]["link"], rotated["links"][0]["link"]);
    let refused = cli(db, &["device", "show", "phone"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give --user"));
    let devices = text_of(db, key, &["device", "list", "--user", "alice"]);
    assert!(
        rows_with(&devices, "phone")[0].contains("never"),
        "not seen yet: {devices}"
    );

    // Node groups and their members, by name.
    let access_key =
        "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpzZWNyZXQ@203.0.113.5:8388/?outline=1#fra-1";
    let node = json_of(
        db,
        key,
        &["node", "import", access_key, "--region", "eu-west"],
    );
    text_of(
        db,
        key,
        &[
            "node-group",
            "create",
            "--name",
            "frankfurt",
            "--description",
            "FRA",
        ],
    );
    let joined = json_of(db, key, &["node-group", "add-node", "frankfurt", "fra-1"]);
    assert_eq!(joined["groups"].as_array().unwrap().len(), 1);
    let group = text_of(db, key, &["node-group", "show", "frankfurt"]);
    assert_eq!(rows_with(&group, "fra-1").len(), 1, "{group}");
    let nodes = text_of(db, key, &["node", "list"]);
    assert!(
        rows_with(&nodes, "fra-1")[0].contains("frankfurt"),
        "{nodes}"
    );
    let groups = text_of(db, key, &["node-group", "list"]);
    assert!(
        rows_with(&groups, "frankfurt")[0].contains("  1  "),
        "{groups}"
    );
    let left = json_of(
        db,
        key,
        &["node-group", "remove-node", "frankfurt", "fra-1"],
    );
    assert_eq!(left["groups"], Value::Array(vec![]));
    text_of(
        db,
        key,
        &["node-group", "update", "frankfurt", "--name", "fra"],
    );
    text_of(db, key, &["node-group", "delete", "fra"]);
    assert_eq!(
        json_of(db, key, &["node-group", "list"]),
        Value::Array(vec![])
    );

    // Gateway tokens: listed, revoked by the gateway's name.
    let gw = json_of(db, key, &["gateway", "create", "--name", "gw-1"]);
    let first_token = gw["token_id"].as_str().unwrap().to_owned();
    text_of(db, key, &["gateway", "rotate", "--name", "gw-1"]);
    let tokens = text_of(db, key, &["gateway", "tokens", "gw-1"]);
    assert_eq!(
        tokens.lines().count(),
        3,
        "a header and two tokens: {tokens}"
    );
    let revoked = json_of(db, key, &["gateway", "revoke-token", "gw-1", &first_token]);
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");

    // Sessions: a live one (as a gateway starts it), listed by user name, killed.
    let session = Uuid::new_v4();
    rt.block_on(test_db.store.start_session(&NewSession {
        id: session,
        device_id: device_id.parse().unwrap(),
        user_id: alice.parse().unwrap(),
        gateway_id: gw["gateway"]["id"].as_str().unwrap().parse().unwrap(),
        node_id: node["id"].as_str().unwrap().parse().ok(),
        client_region: None,
        session_limit: None,
    }))
    .unwrap();
    let sessions = text_of(
        db,
        key,
        &["session", "list", "--live", "--user", "alice@example.com"],
    );
    let row = rows_with(&sessions, &session.to_string());
    assert_eq!(row.len(), 1, "{sessions}");
    assert!(
        row[0].contains("phone") && row[0].contains("fra-1") && row[0].contains("live"),
        "{sessions}"
    );
    assert!(text_of(db, key, &["session", "kill", &session.to_string()]).contains("ends"));
    assert_eq!(
        json_of(db, key, &["session", "show", &session.to_string()])["kill_requested"],
        true
    );

    // Disable and enable by e-mail address; the audit names the CLI.
    assert!(text_of(db, key, &["user", "disable", "alice@example.com"]).contains("alice disabled"));
    assert_eq!(
        json_of(db, key, &["user", "enable", "alice"])["status"],
        "active"
    );
    assert!(json_of(db, key, &["usage", "--by", "device"]).is_array());
    for list in [
        ["admin", "list"],
        ["region", "list"],
        ["plan", "list"],
        ["gateway", "list"],
    ] {
        assert!(json_of(db, key, &list).is_array(), "{list:?}");
    }

    // What the admin API changes and deletes, by name.
    let plan = json_of(
        db,
        key,
        &[
            "plan",
            "update",
            "basic",
            "--quota",
            "unlimited",
            "--days",
            "none",
            "--session-limit",
            "5",
        ],
    );
    assert_eq!(
        (
            plan["quota_bytes"].is_null(),
            plan["duration_days"].is_null(),
            &plan["session_limit"]
        ),
        (true, true, &Value::from(5))
    );
    text_of(db, key, &["plan", "create", "--name", "spare"]);
    assert!(text_of(db, key, &["plan", "delete", "spare"]).contains("plan spare deleted"));
    let region = json_of(
        db,
        key,
        &[
            "region",
            "update",
            "eu-west",
            "--name",
            "Frankfurt",
            "--latitude",
            "50.1",
            "--longitude",
            "8.7",
        ],
    );
    assert_eq!(region["name"], "Frankfurt");
    let node = json_of(
        db,
        key,
        &[
            "node", "update", "fra-1", "--weight", "7", "--status", "draining", "--region", "none",
        ],
    );
    assert_eq!(
        (
            &node["weight"],
            &node["status"],
            node["region_id"].is_null()
        ),
        (&Value::from(7), &Value::from("draining"), true)
    );
    assert!(json_of(db, key, &["node", "health", "fra-1"]).is_array());
    assert!(text_of(db, key, &["node", "health", "fra-1"]).starts_with("AT "));
    text_of(db, key, &["region", "delete", "eu-west"]);
    text_of(
        db,
        key,
        &["admin", "create", "--username", "ops", "--role", "operator"],
    );
    let ops = json_of(
        db,
        key,
        &["admin", "update", "ops", "--role", "viewer", "--disable"],
    );
    assert_eq!(
        (&ops["role"], &ops["disabled"]),
        (&Value::from("viewer"), &Value::from(true))
    );
    let admins = text_of(db, key, &["admin", "list"]);
    assert!(
        rows_with(&admins, "ops")[0].contains("disabled"),
        "{admins}"
    );
    text_of(db, key, &["node", "delete", "fra-1"]);
    assert_eq!(json_of(db, key, &["node", "list"]), Value::Array(vec![]));
    rt.block_on(test_db.cleanup());
}
