//! The cache of the gateway hot path: device-validation verdicts (by device, with the token's
//! hash), verified gateway tokens (by hash), known region codes and plans, each for at most
//! `HTTVPS_CP_VALIDATION_CACHE_TTL_SECS` (0 turns it off).
//!
//! Invalidation is by epoch. An answer is stored with the epoch read *before* the database was
//! read, and is served only while the epoch is unchanged. The epoch moves on every audited change
//! committed through this process's store (admin API changes to devices, users, subscriptions,
//! plans, regions, gateway tokens: [`Store::changes`]), on [`forget_device`], and on the
//! revocation, usage-reset and used-up-quota events other replicas, operator commands (their own
//! processes) and gateways publish through the shared state (Redis). So a change refuses at once on
//! this replica, a computation racing with it cannot store the old answer, and the stale window
//! on other replicas is the shared state's delivery time, or at most the TTL for changes that
//! publish no event (a plan edit, a new subscription, an enabled device made elsewhere).
//! Usage reports do not move the epoch (they are frequent): they drop the answers about the
//! reporting devices' users, so `remaining_bytes` and a used-up quota show at the next
//! validation; only a validation racing with the report can keep the old count, for at most the
//! TTL.
//!
//! An answer never outlives what it says: an entry ends no later than the subscription's end and
//! the quota period's end, and a gateway token's entry no later than the token's expiry.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use httvps_contract::validate::Entitlement;
use httvps_contract::DenyCode;
use httvps_shared_state::SharedEvent;
use uuid::Uuid;

use crate::app::AppState;
use crate::model::{Millis, Plan};
use crate::store::{GatewayAuth, Store};

/// Most entries of each map: past it, entries of old epochs or past their time go, and when
/// none did, new answers are not stored (they are still answered).
const MAX_ENTRIES: usize = 200_000;

/// What a validation concluded for a device whose token matched, before the request's region is
/// checked.
#[derive(Clone, Debug)]
pub enum Verdict {
    Allow(Box<Entitlement>),
    Deny(DenyCode, String),
}

/// A verdict with the token hash it was computed for.
#[derive(Clone, Debug)]
pub struct CachedVerdict {
    /// Lowercase hex SHA-256 of the device token.
    pub token_hash: String,
    /// The device's user (usage reports drop the answers of every device of the user).
    pub user_id: Uuid,
    pub verdict: Verdict,
}

struct Slot<V> {
    value: V,
    epoch: u64,
    until: Millis,
}

/// A map whose entries hold while the epoch is theirs and their time has not passed.
struct EpochMap<K, V> {
    map: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash, V: Clone> EpochMap<K, V> {
    fn new() -> Self {
        EpochMap {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot<V>>> {
        // A panic while holding the lock leaves a map that is still a valid cache.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &K, epoch: u64, now: Millis) -> Option<V> {
        let map = self.lock();
        let slot = map.get(key)?;
        (slot.epoch == epoch && now < slot.until).then(|| slot.value.clone())
    }

    fn put(&self, key: K, value: V, epoch: u64, until: Millis, now: Millis) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.retain(|_, s| s.epoch == epoch && now < s.until);
            if map.len() >= MAX_ENTRIES {
                return;
            }
        }
        map.insert(
            key,
            Slot {
                value,
                epoch,
                until,
            },
        );
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn retain(&self, keep: impl FnMut(&K, &mut Slot<V>) -> bool) {
        self.lock().retain(keep);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One computation at a time per key: requests that miss the same entry at once wait for the
/// first one's answer instead of all reading the database (at expiry every request in flight
/// for a busy device would otherwise miss together).
struct Flights<K> {
    map: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while computing an entry; the last holder of a key removes its lock.
pub struct Flight<'a, K: Eq + Hash + Clone> {
    flights: &'a Flights<K>,
    key: K,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for Flight<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> Flights<K> {
    fn new() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<tokio::sync::Mutex<()>>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn enter(&self, key: K) -> Flight<'_, K> {
        let lock = self.lock().entry(key.clone()).or_default().clone();
        let held = lock.clone().lock_owned().await;
        Flight {
            flights: self,
            key,
            lock: Some(lock),
            _held: held,
        }
    }
}

impl<K: Eq + Hash + Clone> Drop for Flight<'_, K> {
    fn drop(&mut self) {
        let mut map = self.flights.lock();
        // Ours and the map's: nobody else waits for this key.
        if self.lock.take().is_some_and(|l| Arc::strong_count(&l) <= 3) {
            map.remove(&self.key);
        }
    }
}

/// The caches of the gateway hot path (see the module documentation).
pub struct ValidationCache {
    ttl_ms: Millis,
    /// The store whose change count is part of the epoch.
    store_changes: Store,
    /// Invalidations of this cache alone (on top of the store's change count).
    local: AtomicU64,
    devices: EpochMap<Uuid, CachedVerdict>,
    gateways: EpochMap<String, GatewayAuth>,
    regions: EpochMap<String, bool>,
    plans: EpochMap<Uuid, Plan>,
    device_flights: Flights<Uuid>,
    gateway_flights: Flights<String>,
}

impl std::fmt::Debug for ValidationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationCache")
            .field("ttl_ms", &self.ttl_ms)
            .field("devices", &self.devices.len())
            .field("gateways", &self.gateways.len())
            .finish_non_exhaustive()
    }
}

impl ValidationCache {
    /// A cache keeping answers about `store`'s data for `ttl_secs` (0: nothing is kept).
    pub fn new(ttl_secs: u64, store: Store) -> Self {
        ValidationCache {
            store_changes: store,
            ttl_ms: Millis::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(Millis::MAX),
            local: AtomicU64::new(0),
            devices: EpochMap::new(),
            gateways: EpochMap::new(),
            regions: EpochMap::new(),
            plans: EpochMap::new(),
            device_flights: Flights::new(),
            gateway_flights: Flights::new(),
        }
    }

    /// Whether answers are kept at all.
    pub fn enabled(&self) -> bool {
        self.ttl_ms > 0
    }

    /// The current epoch: read it before reading the database for an answer to store.
    pub fn epoch(&self) -> u64 {
        self.store_changes
            .changes()
            .wrapping_add(self.local.load(Ordering::Acquire))
    }

    /// Drops every answer (they stay in memory until overwritten, but are never served).
    pub fn invalidate(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
    }

    /// When an entry made at `now` ends: after the TTL less up to a fifth (so entries made
    /// together do not all expire together), or at the first of `limits`.
    fn until(&self, now: Millis, limits: &[Option<Millis>]) -> Millis {
        let spread = rand::thread_rng().gen_range(0..=self.ttl_ms / 5);
        limits
            .iter()
            .flatten()
            .fold(now.saturating_add(self.ttl_ms - spread), |a, &b| a.min(b))
    }

    /// Waits until no other request computes the device's answer; check the cache again after.
    pub async fn computing_device(&self, device: Uuid) -> Option<Flight<'_, Uuid>> {
        if !self.enabled() {
            return None;
        }
        Some(self.device_flights.enter(device).await)
    }

    /// Waits until no other request verifies this gateway token; check the cache again after.
    pub async fn computing_gateway(&self, token_hash: &str) -> Option<Flight<'_, String>> {
        if !self.enabled() {
            return None;
        }
        Some(self.gateway_flights.enter(token_hash.to_owned()).await)
    }

    /// The cached verdict of a device, if any (check its token hash before using it).
    pub fn verdict(&self, device: Uuid, now: Millis) -> Option<CachedVerdict> {
        if !self.enabled() {
            return None;
        }
        let hit = self.devices.get(&device, self.epoch(), now);
        hit_or_miss("device", hit.is_some());
        hit
    }

    /// [`ValidationCache::verdict`] again after waiting for another request's computation:
    /// counts a hit when that one stored an answer (the miss was counted already).
    pub fn verdict_after_wait(&self, device: Uuid, now: Millis) -> Option<CachedVerdict> {
        let hit = self.devices.get(&device, self.epoch(), now);
        if hit.is_some() {
            hit_or_miss("device", true);
        }
        hit
    }

    /// Keeps a verdict computed under `epoch` until the TTL or `limits` (times the answer stops
    /// being true), whichever comes first.
    pub fn keep_verdict(
        &self,
        device: Uuid,
        verdict: CachedVerdict,
        epoch: u64,
        now: Millis,
        limits: &[Option<Millis>],
    ) {
        if self.enabled() {
            self.devices
                .put(device, verdict, epoch, self.until(now, limits), now);
        }
    }

    /// Drops the answers of every device of the users of `devices` (bytes were counted for
    /// them, so the remaining bytes changed). Not epoch-safe: an answer computed from rows read
    /// before the bytes were stored may still be kept, for at most the TTL.
    pub fn forget_users_of(&self, devices: &[Uuid]) {
        if !self.enabled() || devices.is_empty() {
            return;
        }
        let mut users = std::collections::HashSet::new();
        {
            let map = self.devices.lock();
            users.extend(
                devices
                    .iter()
                    .filter_map(|d| map.get(d))
                    .map(|s| s.value.user_id),
            );
        }
        if !users.is_empty() {
            self.devices
                .retain(|_, s| !users.contains(&s.value.user_id));
        }
    }

    /// The gateway a token hash authenticates, if cached.
    pub fn gateway(&self, token_hash: &str, now: Millis) -> Option<GatewayAuth> {
        if !self.enabled() {
            return None;
        }
        let hit = self.gateways.get(&token_hash.to_owned(), self.epoch(), now);
        hit_or_miss("gateway_token", hit.is_some());
        hit
    }

    /// [`ValidationCache::gateway`] again after waiting for another request's verification.
    pub fn gateway_after_wait(&self, token_hash: &str, now: Millis) -> Option<GatewayAuth> {
        let hit = self.gateways.get(&token_hash.to_owned(), self.epoch(), now);
        if hit.is_some() {
            hit_or_miss("gateway_token", true);
        }
        hit
    }

    /// Keeps a verified gateway token (computed under `epoch`) until the TTL or its expiry.
    pub fn keep_gateway(&self, token_hash: &str, auth: GatewayAuth, epoch: u64, now: Millis) {
        if self.enabled() {
            let until = self.until(now, &[auth.expires_at]);
            self.gateways
                .put(token_hash.to_owned(), auth, epoch, until, now);
        }
    }

    /// Whether a region code is known, if cached.
    pub fn region(&self, code: &str, now: Millis) -> Option<bool> {
        if !self.enabled() {
            return None;
        }
        self.regions.get(&code.to_owned(), self.epoch(), now)
    }

    /// Keeps whether a region code is known.
    pub fn keep_region(&self, code: &str, known: bool, epoch: u64, now: Millis) {
        if self.enabled() {
            self.regions
                .put(code.to_owned(), known, epoch, self.until(now, &[]), now);
        }
    }

    /// A plan (its terms and regions), if cached.
    pub fn plan(&self, id: Uuid, now: Millis) -> Option<Plan> {
        if !self.enabled() {
            return None;
        }
        self.plans.get(&id, self.epoch(), now)
    }

    /// Keeps a plan as read at `epoch`.
    pub fn keep_plan(&self, plan: Plan, epoch: u64, now: Millis) {
        if self.enabled() {
            self.plans
                .put(plan.id, plan, epoch, self.until(now, &[]), now);
        }
    }

    /// Empties the maps (memory); answers of old epochs are never served anyway.
    pub fn clear(&self) {
        self.devices.clear();
        self.gateways.clear();
        self.regions.clear();
        self.plans.clear();
    }
}

fn hit_or_miss(cache: &'static str, hit: bool) {
    let name = if hit {
        "httvps_cp_validation_cache_hits_total"
    } else {
        "httvps_cp_validation_cache_misses_total"
    };
    metrics::counter!(name, "cache" => cache).increment(1);
}

/// Stops serving cached answers about a device (its status, token or existence changed). Every
/// answer goes, not just the device's: changes are rare, and one epoch keeps racing computations
/// from storing an old answer.
pub fn forget_device(state: &AppState, _device: Uuid) {
    state.validation.invalidate();
}

/// Whether a shared-state event (published by another replica or an operator command) changes
/// validation answers.
pub fn invalidated_by(event: &SharedEvent) -> bool {
    matches!(
        event,
        SharedEvent::Revoked { .. }
            | SharedEvent::UsageReset { .. }
            | SharedEvent::QuotaExceeded { .. }
    )
}

/// Drops cached answers when another replica or an operator command announces a revocation, a
/// usage reset or a used-up quota, until shutdown. A subscriber that fell behind drops everything.
pub async fn follow_shared_events(
    state: AppState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = state.shared.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Ok(event) if invalidated_by(&event) => state.validation.invalidate(),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => state.validation.invalidate(),
                Err(RecvError::Closed) => return,
            },
        }
    }
}
