//! Redis key names, in one place (docs/shared-state.md lists them with their TTLs).
//!
//! Keys of one user share a hash tag (`{u:<user>}`), so the admission script, which touches a
//! device's and its user's session sets at once, also runs on Redis Cluster.

use crate::model::{RevocationTarget, SessionOwner, UsageCounter};

/// Builds every key under one prefix (default `httvps`), so several deployments or test runs
/// can share a Redis without seeing each other.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn tag(owner: &SessionOwner) -> String {
        match &owner.user_id {
            Some(user) => format!("{{u:{user}}}"),
            None => format!("{{d:{}}}", owner.device_id),
        }
    }

    /// Sorted set: the user's live session ids, scored by lease end (ms).
    pub fn user_sessions(&self, owner: &SessionOwner) -> String {
        format!("{}:{}:sessions", self.prefix, Self::tag(owner))
    }

    /// Sorted set: the device's live session ids, scored by lease end (ms).
    pub fn device_sessions(&self, owner: &SessionOwner) -> String {
        format!(
            "{}:{}:dev:{}:sessions",
            self.prefix,
            Self::tag(owner),
            owner.device_id
        )
    }

    /// String (JSON): a resume record, by the token's SHA-256.
    pub fn resume(&self, token_hash: &str) -> String {
        format!("{}:resume:{token_hash}", self.prefix)
    }

    /// String: a revocation marker.
    pub fn revoked(&self, target: &RevocationTarget) -> String {
        match target {
            RevocationTarget::Device(id) => format!("{}:revoked:device:{id}", self.prefix),
            RevocationTarget::User(id) => format!("{}:revoked:user:{id}", self.prefix),
        }
    }

    /// String: the device's sticky node id.
    pub fn sticky(&self, device_id: &str) -> String {
        format!("{}:sticky:{device_id}", self.prefix)
    }

    /// Hash: one gateway's live streams per node.
    pub fn load(&self, gateway_id: &str) -> String {
        format!("{}:load:{gateway_id}", self.prefix)
    }

    /// String (integer): bytes used by a subject in a quota period.
    pub fn usage(&self, counter: &UsageCounter) -> String {
        let period = counter
            .period_end_ms
            .map_or_else(|| "all".to_owned(), |p| p.to_string());
        format!("{}:usage:{}:{period}", self.prefix, counter.subject)
    }

    /// Set: ids of gateways that registered (each also has a [`Keys::gateway`] key with a TTL).
    pub fn gateway_index(&self) -> String {
        format!("{}:gateways", self.prefix)
    }

    /// String (JSON): one gateway's registry entry.
    pub fn gateway(&self, gateway_id: &str) -> String {
        format!("{}:gateway:{gateway_id}", self.prefix)
    }

    /// Pub/sub channel of [`crate::SharedEvent`]s.
    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }
}
