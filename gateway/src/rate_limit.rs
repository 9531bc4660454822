//! Rate limiting of failed HELLOs per source address and per device id: a token bucket per key
//! that refills at `limit / window`, with a bounded number of tracked keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key and says when a key has had too many.
#[derive(Debug)]
pub struct FailureLimiter<K> {
    capacity: f64,
    refill_per_sec: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
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
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when the key has used up its failures.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let Some(bucket) = buckets.get_mut(key) else {
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
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            // Keys whose bucket is full again carry no information; forget them first.
            let capacity = self.capacity;
            let refill = self.refill_per_sec;
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * refill
                    < capacity
            });
            if buckets.len() >= self.max_keys {
                // Still full: evict one arbitrary key so memory stays bounded.
                if let Some(victim) = buckets.keys().next().cloned() {
                    buckets.remove(&victim);
                }
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }

    /// Whether the key has a recorded failure still counting.
    pub fn contains(&self, key: &K) -> bool {
        self.buckets
            .lock()
            .map(|b| b.contains_key(key))
            .unwrap_or(false)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
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
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let limiter = FailureLimiter::new(1, Duration::from_secs(60), 100);
        for i in 0..10_000 {
            limiter.record_failure(&i, t0);
        }
        assert!(limiter.len() <= 100);
    }
}
