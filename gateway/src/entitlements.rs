//! The entitlement cache in front of the control plane's device validation.
//!
//! - Answers are cached per `(device id, SHA-256 of the token, requested region)`, so a wrong
//!   token never finds the positive entry of the right one, an allow without a region is never
//!   used for a region the plan excludes, and a refused region does not refuse the device's
//!   HELLOs without one. Allows and denials live in two separately bounded maps (entries, and
//!   time: the `cache_ttl_secs` of the answer capped by the configuration), grouped per device
//!   and amortized O(1) in every operation ([`ExpiringMap`]). An allow past the subscription's
//!   end is not used.
//! - Concurrent HELLOs of one device (same key) make one call: the first starts it in a task of
//!   its own (so a client hanging up does not cancel it for the others) and everyone waits for
//!   its result (single-flight).
//! - When the control plane cannot be asked, a device whose allow is still within its cache
//!   time connects from the cache; others get [`AuthorityUnavailable`] (→ HELLO_ERROR `internal`
//!   with a retry hint). Every call has the client's timeout, so nothing hangs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use httvps_proto::HelloErrorCode;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::Instrument;

use crate::authority::{
    AuthorityUnavailable, BoxFuture, DeviceAuthority, DeviceCheck, Entitlement, Verdict,
};
use crate::control_plane::{ControlPlaneClient, ValidateAnswer};
use crate::expiring::ExpiringMap;
use crate::metrics as m;
use crate::shared::unix_ms;

/// Bounds of the cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// Allowed devices remembered at most.
    pub positive_entries: usize,
    /// Longest time an allow is used (the control plane's TTL is capped by it).
    pub positive_ttl_max: Duration,
    /// Denials remembered at most.
    pub negative_entries: usize,
    /// Longest time a denial is used.
    pub negative_ttl_max: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            positive_entries: 100_000,
            positive_ttl_max: Duration::from_secs(60),
            negative_entries: 100_000,
            negative_ttl_max: Duration::from_secs(10),
        }
    }
}

/// Counters of the cache (tests read them; Prometheus gets the same through [`crate::metrics`]).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Answers from the cache.
    pub hits: AtomicU64,
    /// Lookups that needed the control plane (joined or started a call).
    pub misses: AtomicU64,
    /// Validation calls actually sent to the control plane.
    pub calls: AtomicU64,
}

/// What an answer is cached under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// The device id in lower case (the group: `forget` drops all of a device's entries).
    device: String,
    /// SHA-256 of the token.
    token: [u8; 32],
    /// The requested region in lower case; `None` when the HELLO named none.
    region: Option<String>,
}

/// Entries of one device within a map.
type SubKey = ([u8; 32], Option<String>);
type Outcome = Result<ValidateAnswer, String>;

impl Key {
    fn new(device_id: &str, token: &[u8], region: Option<&str>) -> Self {
        Key {
            device: device_id.to_ascii_lowercase(),
            token: token_hash(token),
            region: region
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_ascii_lowercase),
        }
    }

    fn sub(&self) -> SubKey {
        (self.token, self.region.clone())
    }
}

#[derive(Debug)]
struct Inner {
    client: Arc<ControlPlaneClient>,
    limits: CacheLimits,
    positive: Mutex<ExpiringMap<String, SubKey, Entitlement>>,
    negative: Mutex<ExpiringMap<String, SubKey, (HelloErrorCode, String)>>,
    inflight: Mutex<HashMap<Key, watch::Receiver<Option<Outcome>>>>,
    stats: CacheStats,
}

/// The cached, single-flight device authority backed by the control plane.
#[derive(Clone, Debug)]
pub struct EntitlementCache {
    inner: Arc<Inner>,
}

impl EntitlementCache {
    /// A cache in front of `client`.
    pub fn new(client: Arc<ControlPlaneClient>, limits: CacheLimits) -> Self {
        EntitlementCache {
            inner: Arc::new(Inner {
                client,
                positive: Mutex::new(ExpiringMap::new(limits.positive_entries)),
                negative: Mutex::new(ExpiringMap::new(limits.negative_entries)),
                limits,
                inflight: Mutex::new(HashMap::new()),
                stats: CacheStats::default(),
            }),
        }
    }

    /// The cache's counters.
    pub fn stats(&self) -> &CacheStats {
        &self.inner.stats
    }

    /// Entries held: (allowed, denied).
    pub fn len(&self) -> (usize, usize) {
        let p = self.inner.positive.lock().map_or(0, |m| m.len());
        let n = self.inner.negative.lock().map_or(0, |m| m.len());
        (p, n)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn lookup(&self, key: &Key, now: Instant) -> Option<Verdict> {
        let sub = key.sub();
        if let Some(e) = self
            .inner
            .positive
            .lock()
            .ok()
            .and_then(|mut p| p.get(&key.device, &sub, now))
        {
            // Past the subscription's end the control plane decides again (renewed or not).
            if e.expires_at_ms.is_none_or(|at| at > unix_ms()) {
                return Some(Verdict::Allow(e));
            }
        }
        self.inner
            .negative
            .lock()
            .ok()
            .and_then(|mut n| n.get(&key.device, &sub, now))
            .map(|(code, message)| Verdict::Deny {
                code,
                message,
                retry_after: None,
            })
    }

    /// Joins the call in flight for `key` or starts one.
    fn join_or_call(
        &self,
        key: &Key,
        device_id: &str,
        token: &str,
        region: Option<&str>,
    ) -> watch::Receiver<Option<Outcome>> {
        let Ok(mut inflight) = self.inner.inflight.lock() else {
            let (tx, rx) = watch::channel(Some(Err("cache lock poisoned".into())));
            drop(tx);
            return rx;
        };
        if let Some(rx) = inflight.get(key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(key.clone(), rx.clone());
        drop(inflight);
        let inner = self.inner.clone();
        let key = key.clone();
        let device_id = device_id.to_owned();
        let token = token.to_owned();
        let region = region.map(str::to_owned);
        inner.stats.calls.fetch_add(1, Ordering::Relaxed);
        // The call belongs to the trace of the HELLO that started it (others join it).
        tokio::spawn(
            async move {
                let outcome = inner
                    .client
                    .validate_device(&device_id, &token, region.as_deref())
                    .await
                    .map_err(|e| e.to_string());
                if let Ok(answer) = &outcome {
                    let now = Instant::now();
                    let sub = key.sub();
                    match &answer.verdict {
                        Verdict::Allow(e) => {
                            let ttl = answer.cache_ttl.min(inner.limits.positive_ttl_max);
                            if let Ok(mut p) = inner.positive.lock() {
                                p.insert(
                                    key.device.clone(),
                                    sub.clone(),
                                    e.clone(),
                                    now,
                                    now + ttl,
                                );
                            }
                            if let Ok(mut n) = inner.negative.lock() {
                                n.remove(&key.device, &sub);
                            }
                        }
                        Verdict::Deny { code, message, .. } => {
                            let ttl = answer.cache_ttl.min(inner.limits.negative_ttl_max);
                            if let Ok(mut n) = inner.negative.lock() {
                                let denial = (*code, message.clone());
                                n.insert(key.device.clone(), sub.clone(), denial, now, now + ttl);
                            }
                            if let Ok(mut p) = inner.positive.lock() {
                                p.remove(&key.device, &sub);
                            }
                        }
                    }
                }
                if let Ok(mut inflight) = inner.inflight.lock() {
                    inflight.remove(&key);
                }
                let _ = tx.send(Some(outcome));
            }
            .in_current_span(),
        );
        rx
    }
}

fn token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl DeviceAuthority for EntitlementCache {
    fn validate<'a>(
        &'a self,
        check: DeviceCheck<'a>,
    ) -> BoxFuture<'a, Result<Verdict, AuthorityUnavailable>> {
        Box::pin(async move {
            // Tokens are printable (base64url) by contract; anything else cannot match.
            let Ok(token) = std::str::from_utf8(check.device_token) else {
                return Ok(Verdict::Deny {
                    code: HelloErrorCode::AuthFailed,
                    message: "authentication failed".into(),
                    retry_after: None,
                });
            };
            let key = Key::new(check.device_id, check.device_token, check.region);
            if let Some(verdict) = self.lookup(&key, Instant::now()) {
                self.inner.stats.hits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::ENTITLEMENT_CACHE_TOTAL, "result" => "hit").increment(1);
                tracing::Span::current().record("httvps.cache", "hit");
                return Ok(verdict);
            }
            tracing::Span::current().record("httvps.cache", "miss");
            self.inner.stats.misses.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::ENTITLEMENT_CACHE_TOTAL, "result" => "miss").increment(1);
            let mut rx = self.join_or_call(&key, check.device_id, token, check.region);
            let outcome = match rx.wait_for(Option::is_some).await {
                Ok(v) => v.clone().unwrap_or_else(|| Err("no answer".into())),
                Err(_) => Err("validation call ended without an answer".into()),
            };
            match outcome {
                Ok(answer) => Ok(answer.verdict),
                Err(e) => Err(AuthorityUnavailable(e)),
            }
        })
    }

    fn forget(&self, device_id: &str) {
        if let Ok(mut p) = self.inner.positive.lock() {
            p.remove_group(&device_id.to_ascii_lowercase());
        }
        // A denial too (e.g. `quota_exceeded` before a usage reset).
        if let Ok(mut n) = self.inner.negative.lock() {
            n.remove_group(&device_id.to_ascii_lowercase());
        }
    }
}
