//! Subscriptions: giving a user a plan, cancelling one (announced after it commits when nothing
//! else takes over), resetting its usage, extending it, adding traffic and changing its plan.

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
    open_subscription(state, id, "the subscription is already").await?;
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

/// Most days a subscription is extended by at once (10 years).
pub const MAX_EXTEND_DAYS: i64 = 3650;
/// Most traffic added at once: 1 PiB.
pub const MAX_ADDED_BYTES: i64 = 1 << 50;

/// Moves an active subscription's end `days` later (409 when it is not active or never ends).
pub async fn extend(
    state: &AppState,
    actor: &str,
    id: Uuid,
    days: i64,
) -> DomainResult<Subscription> {
    if !(1..=MAX_EXTEND_DAYS).contains(&days) {
        return Err(DomainError::Invalid(format!(
            "days must be between 1 and {MAX_EXTEND_DAYS}"
        )));
    }
    let sub = state.store.get_subscription(id).await?;
    if sub.status != SubscriptionStatus::Active {
        return Err(DomainError::state(format!(
            "only an active subscription can be extended; this one is {}",
            sub.status
        )));
    }
    if sub.ends_at.is_none() {
        return Err(DomainError::state(
            "the subscription never ends: nothing to extend",
        ));
    }
    state
        .store
        .extend_subscription(actor, id, days * 86_400_000)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::state("the subscription is no longer active"),
            other => other.into(),
        })
}

/// Gives back `bytes` of the traffic used in the subscription's current quota period (at most
/// what was used), so as much more can go through before the quota is reached; the gateways'
/// shared counter follows after the commit, as after a usage reset.
pub async fn add_traffic(
    state: &AppState,
    actor: &str,
    id: Uuid,
    bytes: i64,
) -> DomainResult<QuotaStatus> {
    if !(1..=MAX_ADDED_BYTES).contains(&bytes) {
        return Err(DomainError::Invalid(format!(
            "traffic to add must be between 1 byte and {MAX_ADDED_BYTES} bytes (1 PiB)"
        )));
    }
    let sub = open_subscription(state, id, "the subscription is").await?;
    // Added traffic is forgiven usage: the gateways' shared counter of the period's bytes
    // cannot go below zero, so more than was used would show at the control plane but be
    // refused at the gateways. Raising the quota itself is a plan change.
    let plan = state.store.get_plan(sub.plan_id).await?;
    if plan.quota_bytes.is_none() {
        return Err(DomainError::Invalid(format!(
            "plan {:?} has no traffic quota: there is nothing to add to",
            plan.name
        )));
    }
    let used = state
        .store
        .quota_status(&sub, &plan, now_ms())
        .await?
        .used_bytes;
    if bytes > used {
        return Err(DomainError::Invalid(format!(
            "traffic to add can be at most the {used} bytes used in this period: added traffic \
             gives used traffic back; for a larger quota, move the subscription to another plan"
        )));
    }
    let quota = state.store.add_traffic(actor, id, bytes).await?;
    let used = u64::try_from(quota.used_bytes).unwrap_or(0);
    shared::reset_usage(state, sub.user_id, quota.period_end, used).await;
    Ok(quota)
}

/// Moves a subscription in force to another plan; its dates stay. The new plan's limits apply
/// from the next check (the store's change drops cached validation answers).
pub async fn change_plan(
    state: &AppState,
    actor: &str,
    id: Uuid,
    plan: Uuid,
) -> DomainResult<(Subscription, Plan)> {
    let sub = open_subscription(state, id, "the subscription is").await?;
    let plan = state
        .store
        .get_plan(plan)
        .await
        .map_err(unknown_ref(|| format!("unknown plan {plan}")))?;
    if plan.id == sub.plan_id {
        return Err(DomainError::Invalid(format!(
            "the subscription is on plan {:?} already",
            plan.name
        )));
    }
    let sub = state
        .store
        .change_subscription_plan(actor, id, plan.id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::state("the subscription is no longer in force"),
            other => other.into(),
        })?;
    Ok((sub, plan))
}

/// After a cancellation: when nothing is in force any more (no queued subscription took over),
/// the user's sessions end now. The cancellation is committed, so a failed check only delays
/// that to the sessions' next heartbeat.
/// The subscription `id` unless it has ended or was cancelled: then 409 `<refusal> <status>`.
async fn open_subscription(
    state: &AppState,
    id: Uuid,
    refusal: &str,
) -> DomainResult<Subscription> {
    let sub = state.store.get_subscription(id).await?;
    if matches!(
        sub.status,
        SubscriptionStatus::Ended | SubscriptionStatus::Cancelled
    ) {
        return Err(DomainError::state(format!("{refusal} {}", sub.status)));
    }
    Ok(sub)
}

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
