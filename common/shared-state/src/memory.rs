//! [`InProcessStore`]: the shared-state contract held in one process's memory. The embedded
//! default for a single gateway, and each gateway's own record while Redis is unreachable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::model::total_loads;
use crate::model::{
    Admission, AdmitOutcome, GatewayInfo, LimitScope, NodeLoads, ResumeRecord, RevocationTarget,
    SessionLease, SessionOwner, SharedEvent, UsageCounter,
};
use crate::store::{BoxFuture, SessionStore, StoreResult};

/// Events buffered per subscriber before the slowest loses the oldest.
pub const EVENT_BUFFER: usize = 1024;

/// A value that disappears at `until`.
#[derive(Debug, Clone)]
struct Expiring<T> {
    value: T,
    until: Instant,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration) -> Self {
        Expiring {
            value,
            until: Instant::now() + ttl,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.until > now
    }
}

#[derive(Debug, Default)]
struct State {
    /// Session id → lease end, per device and per user.
    device_sessions: HashMap<String, HashMap<String, Instant>>,
    user_sessions: HashMap<String, HashMap<String, Instant>>,
    resume: HashMap<String, Expiring<ResumeRecord>>,
    /// Size of `resume` at which its expired entries are dropped next ([`prune_when_grown`]).
    resume_prune_at: usize,
    revoked: HashMap<RevocationTarget, Expiring<()>>,
    sticky: HashMap<String, Expiring<String>>,
    sticky_prune_at: usize,
    loads: HashMap<String, Expiring<NodeLoads>>,
    usage: HashMap<UsageCounter, Expiring<u64>>,
    gateways: HashMap<String, Expiring<GatewayInfo>>,
}

/// The contract in one process's memory. Entries expire like their Redis keys would.
#[derive(Debug)]
pub struct InProcessStore {
    state: Mutex<State>,
    events: broadcast::Sender<SharedEvent>,
}

impl Default for InProcessStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessStore {
    /// An empty store.
    pub fn new() -> Self {
        InProcessStore {
            state: Mutex::new(State::default()),
            events: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> StoreResult<T> {
        // A poisoned lock means a panic elsewhere mid-update; the maps stay consistent enough
        // (every update is a single insert or remove), so keep serving.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut state, Instant::now()))
    }
}

/// Smallest size at which a map of expiring entries is pruned.
const MIN_PRUNE: usize = 64;

/// Drops the expired entries of a map that gains one per session once it has doubled since the
/// last time: one scan per doubling keeps an insert O(1) amortized, where a scan per insert made
/// a reconnect storm of n sessions cost n² (expired entries are never served anyway).
fn prune_when_grown<T>(map: &mut HashMap<String, Expiring<T>>, at: &mut usize, now: Instant) {
    if map.len() >= *at {
        map.retain(|_, e| e.live(now));
        *at = (map.len() * 2).max(MIN_PRUNE);
    }
}

fn live_count(set: &mut HashMap<String, Instant>, now: Instant) -> u32 {
    set.retain(|_, until| *until > now);
    u32::try_from(set.len()).unwrap_or(u32::MAX)
}

fn user_key(owner: &SessionOwner) -> &str {
    owner.user_id.as_deref().unwrap_or(&owner.device_id)
}

fn ready<'a, T: Send + 'a>(value: StoreResult<T>) -> BoxFuture<'a, StoreResult<T>> {
    Box::pin(std::future::ready(value))
}

impl SessionStore for InProcessStore {
    fn admit<'a>(&'a self, a: Admission<'a>) -> BoxFuture<'a, StoreResult<AdmitOutcome>> {
        ready(self.with(|s, now| {
            let until = now + a.lease;
            let devices = s
                .device_sessions
                .entry(a.owner.device_id.clone())
                .or_default();
            let device_live = live_count(devices, now);
            let device_has = devices.contains_key(a.session_id);
            if let Some(limit) = a.device_limit {
                if !device_has && device_live >= limit {
                    return AdmitOutcome::Refused {
                        scope: LimitScope::Device,
                        active: device_live,
                    };
                }
            }
            let users = s
                .user_sessions
                .entry(user_key(a.owner).to_owned())
                .or_default();
            let user_live = live_count(users, now);
            if let Some(limit) = a.user_limit {
                if !users.contains_key(a.session_id) && user_live >= limit {
                    return AdmitOutcome::Refused {
                        scope: LimitScope::User,
                        active: user_live,
                    };
                }
            }
            users.insert(a.session_id.to_owned(), until);
            s.device_sessions
                .entry(a.owner.device_id.clone())
                .or_default()
                .insert(a.session_id.to_owned(), until);
            AdmitOutcome::Admitted
        }))
    }

    fn renew<'a>(
        &'a self,
        sessions: &'a [SessionLease],
        lease: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, now| {
            for l in sessions {
                s.device_sessions
                    .entry(l.owner.device_id.clone())
                    .or_default()
                    .insert(l.session_id.clone(), now + lease);
                s.user_sessions
                    .entry(user_key(&l.owner).to_owned())
                    .or_default()
                    .insert(l.session_id.clone(), now + lease);
            }
        }))
    }

    fn release<'a>(&'a self, l: &'a SessionLease) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            if let Some(set) = s.device_sessions.get_mut(&l.owner.device_id) {
                set.remove(&l.session_id);
                if set.is_empty() {
                    s.device_sessions.remove(&l.owner.device_id);
                }
            }
            let user = user_key(&l.owner);
            if let Some(set) = s.user_sessions.get_mut(user) {
                set.remove(&l.session_id);
                if set.is_empty() {
                    s.user_sessions.remove(user);
                }
            }
        }))
    }

    fn live_sessions<'a>(
        &'a self,
        owner: &'a SessionOwner,
    ) -> BoxFuture<'a, StoreResult<(u32, u32)>> {
        ready(self.with(|s, now| {
            let device = s
                .device_sessions
                .get_mut(&owner.device_id)
                .map_or(0, |set| live_count(set, now));
            let user = s
                .user_sessions
                .get_mut(user_key(owner))
                .map_or(0, |set| live_count(set, now));
            (device, user)
        }))
    }

    fn live_session_ids<'a>(
        &'a self,
        owner: &'a SessionOwner,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        ready(self.with(|s, now| {
            let mut ids: Vec<String> = s
                .user_sessions
                .get(user_key(owner))
                .map(|set| {
                    set.iter()
                        .filter(|(_, until)| **until > now)
                        .map(|(id, _)| id.clone())
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        }))
    }

    fn put_resume<'a>(
        &'a self,
        token_hash: &'a str,
        record: &'a ResumeRecord,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, now| {
            prune_when_grown(&mut s.resume, &mut s.resume_prune_at, now);
            s.resume
                .insert(token_hash.to_owned(), Expiring::new(record.clone(), ttl));
        }))
    }

    fn take_resume<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<ResumeRecord>>> {
        ready(self.with(|s, now| {
            s.resume
                .remove(token_hash)
                .filter(|r| r.live(now))
                .map(|r| r.value)
        }))
    }

    fn drop_resume<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            s.resume.remove(token_hash);
        }))
    }

    fn revoke<'a>(
        &'a self,
        target: &'a RevocationTarget,
        reason: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let stored = self.with(|s, now| {
            s.revoked.retain(|_, r| r.live(now));
            s.revoked.insert(target.clone(), Expiring::new((), ttl));
        });
        let _ = self.events.send(SharedEvent::Revoked {
            target: target.clone(),
            reason: reason.to_owned(),
        });
        ready(stored)
    }

    fn is_revoked<'a>(
        &'a self,
        device_id: &'a str,
        user_id: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        ready(self.with(|s, now| {
            let hit = |t: RevocationTarget| s.revoked.get(&t).is_some_and(|r| r.live(now));
            hit(RevocationTarget::Device(device_id.to_owned()))
                || user_id.is_some_and(|u| hit(RevocationTarget::User(u.to_owned())))
        }))
    }

    fn sticky_node<'a>(&'a self, device_id: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        ready(self.with(|s, now| {
            s.sticky
                .get(device_id)
                .filter(|e| e.live(now))
                .map(|e| e.value.clone())
        }))
    }

    fn set_sticky_node<'a>(
        &'a self,
        device_id: &'a str,
        node_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, now| {
            prune_when_grown(&mut s.sticky, &mut s.sticky_prune_at, now);
            s.sticky
                .insert(device_id.to_owned(), Expiring::new(node_id.to_owned(), ttl));
        }))
    }

    fn publish_load<'a>(
        &'a self,
        gateway_id: &'a str,
        loads: &'a NodeLoads,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            s.loads
                .insert(gateway_id.to_owned(), Expiring::new(loads.clone(), ttl));
        }))
    }

    fn node_loads(&self) -> BoxFuture<'_, StoreResult<NodeLoads>> {
        ready(self.with(|s, now| {
            s.loads.retain(|_, l| l.live(now));
            let counts = s.loads.values().flat_map(|share| share.value.clone());
            total_loads(counts)
        }))
    }

    fn add_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        floor: u64,
        delta: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        ready(self.with(|s, now| {
            let current = s
                .usage
                .get(counter)
                .filter(|e| e.live(now))
                .map(|e| e.value);
            let total = current.unwrap_or(floor).saturating_add(delta);
            s.usage.insert(counter.clone(), Expiring::new(total, ttl));
            total
        }))
    }

    fn set_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        bytes: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            s.usage.insert(counter.clone(), Expiring::new(bytes, ttl));
        }))
    }

    fn register_gateway<'a>(
        &'a self,
        info: &'a GatewayInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            s.gateways
                .insert(info.id.clone(), Expiring::new(info.clone(), ttl));
        }))
    }

    fn deregister_gateway<'a>(&'a self, gateway_id: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|s, _| {
            s.gateways.remove(gateway_id);
            s.loads.remove(gateway_id);
        }))
    }

    fn gateways(&self) -> BoxFuture<'_, StoreResult<Vec<GatewayInfo>>> {
        ready(self.with(|s, now| {
            s.gateways.retain(|_, g| g.live(now));
            let mut list: Vec<GatewayInfo> = s.gateways.values().map(|g| g.value.clone()).collect();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list
        }))
    }

    fn publish<'a>(&'a self, event: &'a SharedEvent) -> BoxFuture<'a, StoreResult<()>> {
        // No subscriber is not an error: nobody holds a session to act on.
        let _ = self.events.send(event.clone());
        ready(Ok(()))
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedEvent> {
        self.events.subscribe()
    }

    fn is_available(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_go_once_the_map_has_doubled() {
        let now = Instant::now();
        let mut map: HashMap<String, Expiring<()>> = HashMap::new();
        let mut at = 0;
        let expired = |i: usize| {
            (
                format!("old{i}"),
                Expiring {
                    value: (),
                    until: now,
                },
            )
        };
        // The first prune sets the threshold; below it nothing is scanned.
        prune_when_grown(&mut map, &mut at, now);
        assert_eq!(at, MIN_PRUNE);
        map.extend((0..MIN_PRUNE - 1).map(expired));
        prune_when_grown(&mut map, &mut at, now);
        assert_eq!(map.len(), MIN_PRUNE - 1);
        // At the threshold the expired entries go; live ones stay and set the next threshold.
        map.extend((0..100).map(|i| {
            (
                format!("live{i}"),
                Expiring::new((), Duration::from_secs(60)),
            )
        }));
        prune_when_grown(&mut map, &mut at, now);
        assert_eq!(map.len(), 100);
        assert_eq!(at, 200);
    }
}
