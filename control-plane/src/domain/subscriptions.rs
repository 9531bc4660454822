//! Cancelling a subscription, announced after it commits when nothing else takes over.

use uuid::Uuid;

use crate::app::AppState;
use crate::model::{now_ms, Subscription, SubscriptionStatus};
use crate::shared::{self, RevocationReason};
use crate::store::{QuotaStatus, Result, StoreError};

/// Cancels a subscription that is active, on hold or queued (409 otherwise). When no queued one
/// takes over, the user's sessions end on every gateway.
pub async fn cancel(state: &AppState, actor: &str, id: Uuid) -> Result<Subscription> {
    let sub = state.store.get_subscription(id).await?;
    if matches!(
        sub.status,
        SubscriptionStatus::Ended | SubscriptionStatus::Cancelled
    ) {
        return Err(StoreError::Conflict(format!(
            "the subscription is already {}",
            sub.status
        )));
    }
    let sub = state
        .store
        .cancel_subscription(actor, id)
        .await
        .map_err(|e| match e {
            // Ended or cancelled between the read and the write.
            StoreError::NotFound(_) => {
                StoreError::Conflict("the subscription is no longer in force".into())
            }
            other => other,
        })?;
    end_sessions_if_lapsed(state, sub.user_id).await;
    Ok(sub)
}

/// Starts the subscription's quota period afresh. The gateways' shared counter and cached counts
/// follow after the commit (they would otherwise hold the user to the old count until the period
/// ends).
pub async fn reset_usage(state: &AppState, actor: &str, id: Uuid) -> Result<QuotaStatus> {
    let quota = state.store.reset_usage(actor, id).await?;
    let sub = state.store.get_subscription(id).await?;
    let used = u64::try_from(quota.used_bytes).unwrap_or(0);
    shared::reset_usage(state, sub.user_id, quota.period_end, used).await;
    Ok(quota)
}

/// After a cancellation: when nothing is in force any more (no queued subscription took over),
/// the user's sessions end now. The cancellation is committed, so a failed check only delays
/// that to the sessions' next heartbeat.
async fn end_sessions_if_lapsed(state: &AppState, user: Uuid) {
    match state
        .store
        .resolve_subscription(user, now_ms(), false)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => shared::revoke_user(state, user, RevocationReason::Expired).await,
        Err(e) => {
            tracing::warn!(%user, error = %e, "cannot tell whether a subscription is still in force")
        }
    }
}
