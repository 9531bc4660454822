//! The `httvps-gateway` binary's log output when it goes to a pipe (as under systemd, Docker or a
//! log collector): no terminal colour codes, and a Redis it cannot reach is reported with a
//! warning that repeats at most every 30 s instead of once per failed operation.

#[path = "common/binary.rs"]
mod binary;
mod common;

use std::time::Duration;

use binary::Binary;
use common::cp::TestCp;
use common::wait::holds_for;
use common::{eventually, PATH};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_warned_about_once_per_interval_and_piped_logs_carry_no_colour_codes()
{
    let cp = TestCp::start().await;
    // Nothing listens on port 1: every Redis operation fails at once.
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("gateway.toml");
    std::fs::write(
        &config_file,
        format!(
            "path = \"{PATH}\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             redis-url = \"redis://127.0.0.1:1/\"\nredis-timeout = \"200ms\"\n\
             shared-state-interval = \"100ms\"\n"
        ),
    )
    .unwrap();
    let gw = Binary::start(&cp, &config_file, &[]).await;
    // The first failure is reported at once; then about 30 ticks (3 s) of failing publish_load /
    // register_gateway calls add no further warning.
    let redis_warnings = |output: &str| {
        output
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("Redis"))
            .count()
    };
    eventually(Duration::from_secs(10), "a warning about Redis", || async {
        redis_warnings(&gw.output()) >= 1
    })
    .await;
    holds_for(
        Duration::from_secs(3),
        "a single warning about Redis",
        || async { redis_warnings(&gw.output()) == 1 },
    )
    .await;
    let output = gw.output();
    let warnings: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("Redis"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning about Redis in 3 s of failures, not one per failure nor none:\n{output}"
    );
    assert!(
        warnings[0].contains("failures="),
        "the warning says how often it failed: {}",
        warnings[0]
    );
    assert!(
        !output.contains('\u{1b}'),
        "no ANSI escape sequences in output that is not a terminal:\n{output:?}"
    );
}
