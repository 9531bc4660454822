//! What the control plane shares with the gateways through `httvps-shared-state`: it announces
//! revocations and kills, reads the gateway registry and the live node load, and keeps sticky
//! nodes there.
//!
//! The database stays the truth. Every change is committed before it is announced, and a failed
//! announcement never fails the request: it is logged and counted
//! (`httvps_cp_shared_state_errors_total{op}`), and the gateways' session heartbeats still
//! deliver it, only later.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use httvps_shared_state::{
    InProcessStore, RedisStore, RevocationTarget, SessionOwner, SessionStore, SharedEvent,
    StoreError, UsageCounter,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::model::{now_ms, Millis};
use crate::store::SessionFilter;

/// Why a device's or user's sessions must end (the `reason` of [`SharedEvent::Revoked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// A device revoked for good.
    Revoked,
    /// A device or user disabled.
    Disabled,
    /// A device or user deleted.
    Deleted,
    /// The user's last subscription ended or was cancelled.
    Expired,
    /// The device's token was replaced: sessions on the old one end (the device stays).
    TokenRotated,
}

impl RevocationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Revoked => "revoked",
            RevocationReason::Disabled => "disabled",
            RevocationReason::Deleted => "deleted",
            RevocationReason::Expired => "expired",
            RevocationReason::TokenRotated => "token_rotated",
        }
    }
}

/// The shared store the configuration asks for: Redis when `REDIS_URL` is set, else one in this
/// process (which no gateway sees: right for a single-process setup and for tests).
pub fn open(config: &ServeConfig) -> Result<Arc<dyn SessionStore>, StoreError> {
    let prefix = &config.redis_prefix;
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        return Err(StoreError::InvalidConfig(
            "HTTVPS_CP_REDIS_PREFIX must be non-empty, without spaces".into(),
        ));
    }
    match config.redis_url.as_deref().filter(|u| !u.is_empty()) {
        // Connects lazily: a Redis that is down at start is an outage to ride out.
        Some(url) => Ok(Arc::new(RedisStore::open(
            url,
            prefix,
            config.redis_timeout,
        )?)),
        None => Ok(Arc::new(InProcessStore::new())),
    }
}

/// Whether the shared store is the gateways' (Redis), so that what it says about them counts.
pub fn is_shared(state: &AppState) -> bool {
    state
        .config
        .redis_url
        .as_deref()
        .is_some_and(|u| !u.is_empty())
}

fn failed(op: &'static str, error: &StoreError) {
    metrics::counter!("httvps_cp_shared_state_errors_total", "op" => op).increment(1);
    tracing::warn!(op, error = %error, "shared state operation failed");
}

/// [`failed`] for reads on the assignment path: an outage would log at every request, and the
/// store already warns once when Redis goes away.
fn read_failed(op: &'static str, error: &StoreError) {
    metrics::counter!("httvps_cp_shared_state_errors_total", "op" => op).increment(1);
    tracing::debug!(op, error = %error, "shared state read failed; using the database");
}

/// Tells every gateway that a device's or user's sessions end now, and blocks their resumes for
/// `--revocation-ttl`. Call it after the change is committed.
pub async fn revoke(state: &AppState, target: RevocationTarget, reason: RevocationReason) {
    if let Err(e) = state
        .shared
        .revoke(&target, reason.as_str(), state.config.revocation_ttl)
        .await
    {
        failed("revoke", &e);
    }
}

/// [`revoke`] for one device.
pub async fn revoke_device(state: &AppState, device: Uuid, reason: RevocationReason) {
    revoke(state, RevocationTarget::Device(device.to_string()), reason).await;
}

/// [`revoke`] for every device of a user.
pub async fn revoke_user(state: &AppState, user: Uuid, reason: RevocationReason) {
    revoke(state, RevocationTarget::User(user.to_string()), reason).await;
}

/// Tells the gateways that an operator ended a session.
pub async fn announce_kill(state: &AppState, session: Uuid) {
    let event = SharedEvent::SessionKilled {
        session_id: session.to_string(),
    };
    if let Err(e) = state.shared.publish(&event).await {
        failed("publish", &e);
    }
}

/// Sets the gateways' shared usage counter of the user's current period to `used` (what this
/// control plane counts after an operator reset) and tells every gateway, so the user is not
/// held to the old count until the period ends. Call it after the reset is committed.
pub async fn reset_usage(state: &AppState, user: Uuid, period_end: Option<Millis>, used: u64) {
    let counter = UsageCounter {
        subject: user.to_string(),
        period_end_ms: period_end,
    };
    // As long as the gateways keep the counter: the period and a grace day, else 40 days.
    let ttl = period_end.map_or(Duration::from_secs(40 * 86_400), |end| {
        Duration::from_millis(u64::try_from(end - now_ms()).unwrap_or(0))
            + Duration::from_secs(86_400)
    });
    if let Err(e) = state.shared.set_usage(&counter, used, ttl).await {
        failed("set_usage", &e);
    }
    let device_ids = match state.store.list_devices(Some(user)).await {
        Ok(devices) => devices.into_iter().map(|d| d.id.to_string()).collect(),
        Err(e) => {
            tracing::warn!(%user, error = %e, "cannot list the user's devices for the usage reset");
            Vec::new()
        }
    };
    let event = SharedEvent::UsageReset {
        user_id: user.to_string(),
        device_ids,
    };
    if let Err(e) = state.shared.publish(&event).await {
        failed("publish", &e);
    }
}

/// Ends the user's live sessions in the database that hold no live slot in the gateways'
/// shared store: their gateway stopped renewing the lease (it died, even if a restarted process
/// or a replica sharing its token still heartbeats). Called when the plan's session limit
/// refuses a start. Returns how many were ended; 0 without Redis or when it cannot answer.
pub async fn end_sessions_without_a_slot(state: &AppState, user: Uuid) -> u64 {
    if !is_shared(state) {
        return 0;
    }
    let owner = SessionOwner {
        device_id: String::new(),
        user_id: Some(user.to_string()),
    };
    let live = match state.shared.live_session_ids(&owner).await {
        Ok(ids) => ids,
        Err(e) => {
            read_failed("live_session_ids", &e);
            return 0;
        }
    };
    let sessions = match state
        .store
        .list_sessions(&SessionFilter {
            live_only: true,
            user_id: Some(user),
            limit: 1000,
            ..Default::default()
        })
        .await
    {
        Ok(sessions) => sessions,
        Err(e) => {
            tracing::warn!(%user, error = %e, "cannot list the user's live sessions");
            return 0;
        }
    };
    let mut ended = 0;
    for session in sessions
        .iter()
        .filter(|s| !live.contains(&s.id.to_string()))
    {
        match state
            .store
            .end_session(session.id, session.gateway_id, "lease_lost", now_ms())
            .await
        {
            Ok(_) => ended += 1,
            Err(e) => {
                tracing::warn!(session = %session.id, error = %e, "cannot end a session without a slot")
            }
        }
    }
    if ended > 0 {
        tracing::info!(%user, ended, "ended sessions whose gateway no longer renews their slot");
    }
    ended
}

/// The device's sticky node in the shared store; `None` when there is none or the store cannot
/// answer (the caller falls back to the database column).
pub async fn sticky_node(state: &AppState, device: Uuid) -> Option<Uuid> {
    match state.shared.sticky_node(&device.to_string()).await {
        Ok(node) => node.and_then(|n| Uuid::parse_str(&n).ok()),
        Err(e) => {
            read_failed("sticky_node", &e);
            None
        }
    }
}

/// Remembers the device's node in the shared store for `--sticky-ttl`.
pub async fn set_sticky_node(state: &AppState, device: Uuid, node: Uuid) {
    if let Err(e) = state
        .shared
        .set_sticky_node(
            &device.to_string(),
            &node.to_string(),
            state.config.sticky_ttl,
        )
        .await
    {
        failed("set_sticky_node", &e);
    }
}

/// Live streams per node summed over every gateway, or `None` when there are no gateways to ask
/// (no Redis) or the store cannot answer: then the database's session counts rank the nodes.
pub async fn live_streams(state: &AppState) -> Option<HashMap<Uuid, u32>> {
    if !is_shared(state) {
        return None;
    }
    match state.shared.node_loads().await {
        Ok(loads) => Some(
            loads
                .into_iter()
                // A key that is no node id is no node of this pool.
                .filter_map(|(node, n)| {
                    Some((
                        Uuid::parse_str(&node).ok()?,
                        u32::try_from(n).unwrap_or(u32::MAX),
                    ))
                })
                .collect(),
        ),
        Err(e) => {
            read_failed("node_loads", &e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RevocationReason;

    #[test]
    fn reasons_are_the_event_names() {
        let names: Vec<&str> = [
            RevocationReason::Revoked,
            RevocationReason::Disabled,
            RevocationReason::Deleted,
            RevocationReason::Expired,
            RevocationReason::TokenRotated,
        ]
        .into_iter()
        .map(RevocationReason::as_str)
        .collect();
        assert_eq!(
            names,
            ["revoked", "disabled", "deleted", "expired", "token_rotated"]
        );
    }
}
