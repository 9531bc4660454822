//! A user's subscriptions, changed from the user page: adding one, cancelling, resetting its
//! usage, extending it, adding traffic for the period and moving it to another plan. Every
//! answer is the user page again, with a note or with the refusal under the subscriptions.

use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use super::users::failed;
use crate::app::AppState;
use crate::console::error::PageError;
use crate::console::form::{int, opt_gib, Fields, Id};
use crate::console::page::{bytes, done, when_opt, PageResult};
use crate::console::session::Console;
use crate::domain;
use crate::domain::subscriptions::PlanRef;
use crate::model::Role;

#[derive(Debug, Deserialize)]
pub struct NewSubscription {
    plan: Uuid,
    start: String,
}

/// Gives the user a plan.
pub async fn subscribe(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<NewSubscription>,
) -> PageResult {
    console.require(Role::Operator)?;
    let (on_hold, queued) = (f.start == "on_hold", f.start == "queued");
    match domain::subscriptions::create(
        &state,
        &console.actor(),
        id,
        Some(PlanRef::Id(f.plan)),
        on_hold,
        queued,
    )
    .await
    {
        Ok((_, plan)) => Ok(done(
            &format!("/ui/users/{id}"),
            &format!("subscription to {} added", plan.name),
        )),
        Err(e) => failed(&state, &console, id, "subscribe", e).await,
    }
}

/// Cancels a subscription.
pub async fn cancel_subscription(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
) -> PageResult {
    console.require(Role::Operator)?;
    let sub = state.store.get_subscription(id).await?;
    match domain::subscriptions::cancel(&state, &console.actor(), id).await {
        Ok(_) => Ok(done(
            &format!("/ui/users/{}", sub.user_id),
            "subscription cancelled",
        )),
        Err(e) => failed(&state, &console, sub.user_id, "subscription-actions", e).await,
    }
}

/// Starts a subscription's quota period afresh.
pub async fn reset_usage(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
) -> PageResult {
    console.require(Role::Operator)?;
    let sub = state.store.get_subscription(id).await?;
    match domain::subscriptions::reset_usage(&state, &console.actor(), id).await {
        Ok(_) => Ok(done(&format!("/ui/users/{}", sub.user_id), "usage reset")),
        Err(e) => failed(&state, &console, sub.user_id, "subscription-actions", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct ExtendForm {
    days: String,
}

/// Moves an active subscription's end later.
pub async fn extend(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<ExtendForm>,
) -> PageResult {
    console.require(Role::Operator)?;
    let sub = state.store.get_subscription(id).await?;
    let result = async {
        let days = int("days", &f.days)?;
        domain::subscriptions::extend(&state, &console.actor(), id, days)
            .await
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(s) => Ok(done(
            &format!("/ui/users/{}", sub.user_id),
            &format!("subscription extended to {}", when_opt(s.ends_at)),
        )),
        Err(e) => failed(&state, &console, sub.user_id, "subscription-actions", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct TrafficForm {
    gib: String,
}

/// Lets more traffic through this period.
pub async fn add_traffic(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<TrafficForm>,
) -> PageResult {
    console.require(Role::Operator)?;
    let sub = state.store.get_subscription(id).await?;
    let result = async {
        let added = opt_gib("traffic", &f.gib)?.unwrap_or(0);
        domain::subscriptions::add_traffic(&state, &console.actor(), id, added)
            .await
            .map(|_| added)
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(added) => Ok(done(
            &format!("/ui/users/{}", sub.user_id),
            &format!("{} of traffic added", bytes(added)),
        )),
        Err(e) => failed(&state, &console, sub.user_id, "subscription-actions", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct PlanForm {
    plan: Uuid,
}

/// Moves a subscription to another plan.
pub async fn change_plan(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<PlanForm>,
) -> PageResult {
    console.require(Role::Operator)?;
    let sub = state.store.get_subscription(id).await?;
    match domain::subscriptions::change_plan(&state, &console.actor(), id, f.plan).await {
        Ok((_, plan)) => Ok(done(
            &format!("/ui/users/{}", sub.user_id),
            &format!("subscription moved to plan {}", plan.name),
        )),
        Err(e) => failed(&state, &console, sub.user_id, "subscription-actions", e).await,
    }
}
