//! One session's byte counters, per node, until the reporter collects them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::control_plane::UsageRecord;

/// Bytes (up, down) per node (`None`: not through a known node).
type NodeCounters = HashMap<Option<Arc<str>>, (u64, u64)>;

/// Bytes counted for one session, per node.
#[derive(Debug)]
pub struct SessionUsage {
    pub(super) key: u64,
    pub(super) session_id: Option<Uuid>,
    pub(super) device_id: Uuid,
    pub(super) counters: Mutex<NodeCounters>,
}

impl SessionUsage {
    /// Counts bytes relayed through `node`.
    pub fn add(&self, node: Option<&Arc<str>>, up: u64, down: u64) {
        if up == 0 && down == 0 {
            return;
        }
        if let Ok(mut c) = self.counters.lock() {
            let entry = c.entry(node.cloned()).or_default();
            entry.0 += up;
            entry.1 += down;
        }
    }

    pub(super) fn drain(&self, at: i64, out: &mut Vec<UsageRecord>) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        for (node, (up, down)) in c.drain() {
            if up == 0 && down == 0 {
                continue;
            }
            out.push(UsageRecord {
                session_id: self.session_id,
                device_id: self.device_id,
                node_id: node.and_then(|n| Uuid::parse_str(&n).ok()),
                bytes_up: up,
                bytes_down: down,
                at,
            });
        }
    }
}
