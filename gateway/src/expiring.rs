//! A map bounded in entries whose entries expire, grouped so that every entry of one group (one
//! device) goes in one step. Every operation is amortized O(1), so no request (HELLOs from
//! anyone included) ever scans the whole map under its lock: the oldest entries are evicted from
//! a queue in insertion order, and the queue's stale positions (replaced or removed entries) are
//! compacted only after at least as many inserts as the map holds.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

/// Expired or stale queue positions dropped per insert besides the evictions (amortized
/// clean-up of entries nobody asks for again).
const CLEANUP_PER_INSERT: usize = 2;

/// The map; see the module documentation.
#[derive(Debug)]
pub struct ExpiringMap<G, K, V> {
    groups: HashMap<G, HashMap<K, Slot<V>>>,
    /// Insertion order: (group, key, sequence number of the insert).
    order: VecDeque<(G, K, u64)>,
    len: usize,
    capacity: usize,
    seq: u64,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    until: Instant,
    seq: u64,
}

impl<G: Eq + Hash + Clone, K: Eq + Hash + Clone, V: Clone> ExpiringMap<G, K, V> {
    /// At most `capacity` entries (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        ExpiringMap {
            groups: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            capacity,
            seq: 0,
        }
    }

    /// The value under (`group`, `key`) if it has not expired by `now`.
    pub fn get(&mut self, group: &G, key: &K, now: Instant) -> Option<V> {
        let slot = self.groups.get(group)?.get(key)?;
        if now < slot.until {
            return Some(slot.value.clone());
        }
        self.remove(group, key);
        None
    }

    /// Inserts or replaces, valid until `until`; evicts the oldest entries beyond the capacity.
    pub fn insert(&mut self, group: G, key: K, value: V, now: Instant, until: Instant) {
        if self.capacity == 0 {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let slots = self.groups.entry(group.clone()).or_default();
        if slots
            .insert(key.clone(), Slot { value, until, seq })
            .is_none()
        {
            self.len += 1;
        }
        self.order.push_back((group, key, seq));
        while self.len > self.capacity {
            if !self.pop_front(|_| true) {
                break;
            }
        }
        for _ in 0..CLEANUP_PER_INSERT {
            if !self.pop_front(|slot| slot.until <= now) {
                break;
            }
        }
        if self.order.len() > 2 * self.capacity + 16 {
            let groups = &self.groups;
            self.order.retain(|(g, k, s)| {
                groups
                    .get(g)
                    .and_then(|slots| slots.get(k))
                    .is_some_and(|slot| slot.seq == *s)
            });
        }
    }

    /// Removes the front of the queue: a stale position always, a live entry when `evict` says
    /// so. Whether anything was removed.
    fn pop_front(&mut self, evict: impl Fn(&Slot<V>) -> bool) -> bool {
        let Some((group, key, seq)) = self.order.front() else {
            return false;
        };
        let live = self
            .groups
            .get(group)
            .and_then(|slots| slots.get(key))
            .filter(|slot| slot.seq == *seq);
        match live {
            None => {
                self.order.pop_front();
                true
            }
            Some(slot) if evict(slot) => {
                if let Some((group, key, _)) = self.order.pop_front() {
                    self.remove(&group, &key);
                }
                true
            }
            Some(_) => false,
        }
    }

    /// Removes one entry (its queue position goes stale).
    pub fn remove(&mut self, group: &G, key: &K) {
        let Some(slots) = self.groups.get_mut(group) else {
            return;
        };
        if slots.remove(key).is_some() {
            self.len -= 1;
        }
        if slots.is_empty() {
            self.groups.remove(group);
        }
    }

    /// Removes every entry of `group`.
    pub fn remove_group(&mut self, group: &G) {
        if let Some(slots) = self.groups.remove(group) {
            self.len -= slots.len();
        }
    }

    /// Entries held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn evicts_oldest_expires_and_stays_bounded() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut map = ExpiringMap::new(2);
        map.insert("d", "a", 1, now, later);
        map.insert("d", "b", 2, now, later);
        map.insert("e", "c", 3, now, later);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&"d", &"a", now), None);
        assert_eq!(map.get(&"e", &"c", now), Some(3));
        map.insert("f", "d", 4, now, now + Duration::from_millis(1));
        assert_eq!(map.get(&"f", &"d", now + Duration::from_secs(1)), None);
        for i in 0..1000 {
            map.insert("x", "x", i, now, later);
        }
        assert!(map.order.len() <= 2 * 2 + 16 + 1);
        assert_eq!(map.get(&"x", &"x", now), Some(999));
    }

    #[test]
    fn a_group_goes_in_one_step_and_removals_keep_the_count() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut map = ExpiringMap::new(100);
        for k in 0..10 {
            map.insert("dev", k, k, now, later);
            map.insert("other", k, k, now, later);
        }
        map.remove_group(&"dev");
        assert_eq!(map.len(), 10);
        assert_eq!(map.get(&"dev", &3, now), None);
        map.remove(&"other", &3);
        assert_eq!(map.len(), 9);
        // Re-inserting after removals keeps the bound.
        for k in 0..500 {
            map.insert("dev", k, k, now, later);
        }
        assert_eq!(map.len(), 100);
    }

    #[test]
    fn expired_entries_are_dropped_by_later_inserts() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(1000);
        for k in 0..100 {
            map.insert("g", k, k, now, now + Duration::from_millis(1));
        }
        let later = now + Duration::from_secs(1);
        for k in 100..200 {
            map.insert("g", k, k, later, later + Duration::from_secs(10));
        }
        assert_eq!(map.len(), 100, "the expired hundred are gone");
    }
}
