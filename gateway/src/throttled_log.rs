//! Warnings that may repeat as fast as calls fail (every Redis operation during an outage) are
//! written at most once per interval, with how often the problem occurred since the last line, so
//! an outage is visible in the log without flooding it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decides when a repeated warning is written again.
#[derive(Debug)]
pub struct ThrottledWarning {
    interval: Duration,
    /// When a line was last written, and the occurrences since (the current one included).
    state: Mutex<(Option<Instant>, u64)>,
}

impl ThrottledWarning {
    /// At most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        ThrottledWarning {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one occurrence. `Some(n)` when a line is due now: `n` occurrences since the last
    /// line, this one included.
    pub fn occurred(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, count) = &mut *state;
        *count += 1;
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.interval) {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_logs_then_once_per_interval_with_the_count() {
        let t0 = Instant::now();
        let w = ThrottledWarning::new(Duration::from_secs(30));
        assert_eq!(w.occurred(t0), Some(1));
        for i in 1..100 {
            assert_eq!(w.occurred(t0 + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(w.occurred(t0 + Duration::from_secs(30)), Some(100));
        assert_eq!(w.occurred(t0 + Duration::from_secs(31)), None);
    }
}
