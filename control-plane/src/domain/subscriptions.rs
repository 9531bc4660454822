//! Subscriptions: giving a user a plan, cancelling one (announced after it commits when nothing
//! else takes over) and resetting its usage.

use uuid::Uuid;

use super::error::unknown_ref;
use super::validate::{text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::{now_ms, Plan, Subscription, SubscriptionStatus};
use crate::shared::{self, RevocationReason};
use crate::store::{NewSubscription, QuotaStatus, StoreError};

/// The plan a new subscription is for: by id or by name.
#[derive(Clone, Copy, Debug)]
pub enum PlanRef<'a> {
    Id(Uuid),
    Name(&'a str),
}

/// Gives a user a plan: now, on hold until the first connection, or queued after the current
/// subscription. `plan` must name exactly one plan (`None`: none or both were given).
pub async fn create(
    state: &AppState,
    actor: &str,
    user_id: Uuid,
    plan: Option<PlanRef<'_>>,
    on_hold: bool,
    queued: bool,
) -> DomainResult<(Subscription, Plan)> {
    if on_hold && queued {
        return Err(DomainError::Invalid("on_hold and queued cannot both be set: a queued subscription starts when the current one ends".into()));
    }
    state.store.get_user(user_id).await?;
    let plan = match plan {
        Some(PlanRef::Id(id)) => state
            .store
            .get_plan(id)
            .await
            .map_err(unknown_ref(|| format!("unknown plan {id}")))?,
        Some(PlanRef::Name(name)) => state
            .store
            .plan_by_name(&text("plan", name, MAX_NAME)?)
            .await
            .map_err(unknown_ref(|| format!("unknown plan {name:?}")))?,
        None => {
            return Err(DomainError::Invalid(
                "give exactly one of plan_id and plan".into(),
            ))
        }
    };
    let sub = state
        .store
        .create_subscription(
            actor,
            user_id,
            &NewSubscription {
                plan_id: plan.id,
                on_hold,
                queued,
            },
        )
        .await?;
    Ok((sub, plan))
}

/// Cancels a subscription that is active, on hold or queued (409 otherwise). When no queued one
/// takes over, the user's sessions end on every gateway.
pub async fn cancel(state: &AppState, actor: &str, id: Uuid) -> DomainResult<Subscription> {
    let sub = state.store.get_subscription(id).await?;
    if matches!(
        sub.status,
        SubscriptionStatus::Ended | SubscriptionStatus::Cancelled
    ) {
        return Err(DomainError::state(format!(
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
            StoreError::NotFound(_) => DomainError::state("the subscription is no longer in force"),
            other => other.into(),
        })?;
    end_sessions_if_lapsed(state, sub.user_id).await;
    Ok(sub)
}

/// Starts the subscription's quota period afresh. The gateways' shared counter and cached counts
/// follow after the commit (they would otherwise hold the user to the old count until the period
/// ends).
pub async fn reset_usage(state: &AppState, actor: &str, id: Uuid) -> DomainResult<QuotaStatus> {
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
