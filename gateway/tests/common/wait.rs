//! Waiting in tests on a condition, never on a guessed time: `settled` waits until a value stops
//! changing, `holds_for` checks that something stays true for a whole window and fails at the
//! first poll where it does not.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

const POLL: Duration = Duration::from_millis(20);

/// Polls `value` until it has not changed for `quiet` (at most `within`) and returns it.
pub async fn settled<T, F>(within: Duration, quiet: Duration, what: &str, mut value: F) -> T
where
    T: PartialEq + Copy + std::fmt::Debug,
    F: FnMut() -> T,
{
    let deadline = Instant::now() + within;
    let mut last = value();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "{what} kept changing for {within:?} (last {last:?})"
        );
    }
}

/// Asserts that `check` holds at every poll during `window`.
pub async fn holds_for<F, Fut>(window: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(check().await, "no longer true: {what}");
        tokio::time::sleep(POLL).await;
    }
    assert!(check().await, "no longer true at the end: {what}");
}
