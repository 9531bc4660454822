//! Rate limiting of failed HELLOs per source address and per device id: a token bucket per key
//! that refills at `limit / window`, with a bounded number of tracked keys.
//!
//! Keys come from unauthenticated input, so every operation is O(1) under the lock: tracked keys
//! sit in a queue in the order of their first failure; each new key looks at the two oldest,
//! forgetting those whose bucket is full again (they carry no information) and moving the others
//! to the back, and when the table is full the oldest key is evicted.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Oldest keys looked at per new key.
const SWEEP_PER_INSERT: usize = 2;

/// Counts failures per key and says when a key has had too many.
#[derive(Debug)]
pub struct FailureLimiter<K> {
    capacity: f64,
    refill_per_sec: f64,
    max_keys: usize,
    table: Mutex<Table<K>>,
}

#[derive(Debug)]
struct Table<K> {
    buckets: HashMap<K, Bucket>,
    /// Every tracked key once, oldest first.
    order: VecDeque<K>,
    /// Buckets looked at by the last `record_failure` (tests check it stays small).
    last_work: usize,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Eq + Hash + Clone> FailureLimiter<K> {
    /// Allows `limit` failures per `window` per key, tracking at most `max_keys` keys.
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Self {
        let capacity = f64::from(limit.max(1));
        FailureLimiter {
            capacity,
            refill_per_sec: capacity / window.as_secs_f64().max(0.001),
            max_keys: max_keys.max(1),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                order: VecDeque::new(),
                last_work: 0,
            }),
        }
    }

    /// `Err(retry_after)` when the key has used up its failures.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut table) = self.table.lock() else {
            return Ok(());
        };
        let Some(bucket) = table.buckets.get_mut(key) else {
            return Ok(());
        };
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing / self.refill_per_sec))
        }
    }

    /// Records one failure for the key.
    pub fn record_failure(&self, key: &K, now: Instant) {
        let Ok(mut table) = self.table.lock() else {
            return;
        };
        let table = &mut *table;
        table.last_work = 1;
        if !table.buckets.contains_key(key) {
            for _ in 0..SWEEP_PER_INSERT.min(table.order.len()) {
                table.last_work += 1;
                let Some(old) = table.order.pop_front() else {
                    break;
                };
                let full_again = table
                    .buckets
                    .get(&old)
                    .is_none_or(|b| self.refilled(b, now) >= self.capacity);
                if full_again {
                    table.buckets.remove(&old);
                } else {
                    table.order.push_back(old);
                }
            }
            if table.buckets.len() >= self.max_keys {
                // Still full: the oldest key goes, so memory stays bounded.
                if let Some(old) = table.order.pop_front() {
                    table.buckets.remove(&old);
                }
            }
            table.order.push_back(key.clone());
        }
        let bucket = table.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }

    /// Whether the key has a recorded failure still counting.
    pub fn contains(&self, key: &K) -> bool {
        self.table
            .lock()
            .map(|t| t.buckets.contains_key(key))
            .unwrap_or(false)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.buckets.len()).unwrap_or(0)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity)
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_the_allowed_failures_and_recovers() {
        let t0 = Instant::now();
        let limiter = FailureLimiter::new(3, Duration::from_secs(60), 10);
        for _ in 0..3 {
            assert!(limiter.check(&"ip", t0).is_ok());
            limiter.record_failure(&"ip", t0);
        }
        let retry = limiter.check(&"ip", t0).unwrap_err();
        assert!(retry > Duration::from_secs(19) && retry <= Duration::from_secs(20));
        assert!(limiter.check(&"other", t0).is_ok());
        assert!(limiter.check(&"ip", t0 + Duration::from_secs(21)).is_ok());
    }

    #[test]
    fn work_per_failure_is_constant_with_a_full_table() {
        let t0 = Instant::now();
        let limiter = FailureLimiter::new(1, Duration::from_secs(60), 10_000);
        let mut most = 0;
        for i in 0..50_000u32 {
            limiter.record_failure(&i, t0);
            most = most.max(limiter.table.lock().unwrap().last_work);
        }
        assert!(limiter.len() <= 10_000);
        assert!(
            most <= 1 + SWEEP_PER_INSERT,
            "at most {most} buckets looked at per failure, whatever the table holds"
        );
        // The newest offender is still limited; keys whose buckets refilled are forgotten first.
        assert!(limiter.check(&49_999, t0).is_err());
        let later = t0 + Duration::from_secs(61);
        limiter.record_failure(&1_000_000, later);
        limiter.record_failure(&1_000_001, later);
        assert!(
            limiter.len() < 10_000,
            "refilled keys were dropped, not just evicted"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let limiter = FailureLimiter::new(1, Duration::from_secs(60), 100);
        for i in 0..10_000 {
            limiter.record_failure(&i, t0);
        }
        assert!(limiter.len() <= 100);
    }
}
