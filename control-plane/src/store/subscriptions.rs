//! Subscriptions: which plan a user has, from when to when, and how much of its quota is used.
//! Resolving a user's entitlement also moves subscriptions along their life: an "on hold"
//! subscription starts at first use, an expired one ends and the queued next one takes over.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::audit::NewAudit;
use super::quota::quota_period;
use super::resource::changed;
use super::resource::{resource, Page};
use super::row::RowExt;
use super::{map_rows, Conflict, Result, Store, StoreError};
use crate::model::{now_ms, Millis, Plan, Subscription, SubscriptionStatus};

const DAY_MS: i64 = 86_400_000;

/// How a new subscription starts.
#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub plan_id: Uuid,
    /// The clock starts at the first connection instead of now.
    pub on_hold: bool,
    /// Start when the current subscription ends instead of now.
    pub queued: bool,
}

/// A user's quota in the current period.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct QuotaStatus {
    pub used_bytes: i64,
    /// `null` = unlimited.
    pub quota_bytes: Option<i64>,
    /// `null` = unlimited.
    pub remaining_bytes: Option<i64>,
    pub period_start: Millis,
    /// When the quota resets; `null` = never.
    pub period_end: Option<Millis>,
}

const COLUMNS: &str = "id, user_id, plan_id, status, starts_at, ends_at, usage_reset_at, usage_reset_bytes, created_at";

fn from_row(r: &AnyRow) -> Result<Subscription> {
    Ok(Subscription {
        id: r.id("id")?,
        user_id: r.id("user_id")?,
        plan_id: r.id("plan_id")?,
        status: r.parsed("status")?,
        starts_at: r.opt_int("starts_at")?,
        ends_at: r.opt_int("ends_at")?,
        usage_reset_at: r.opt_int("usage_reset_at")?,
        created_at: r.int("created_at")?,
    })
}

fn ends_at(plan: &Plan, starts_at: Millis) -> Option<Millis> {
    plan.duration_days
        .map(|d| starts_at + i64::from(d) * DAY_MS)
}

async fn set_status(
    tx: &mut Transaction<'static, Any>,
    id: Uuid,
    status: SubscriptionStatus,
    starts_at: Option<Millis>,
    ends_at: Option<Millis>,
) -> Result<()> {
    sqlx::query("UPDATE subscriptions SET status = $2, starts_at = COALESCE($3, starts_at), ends_at = COALESCE($4, ends_at) WHERE id = $1")
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(starts_at)
        .bind(ends_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What [`Store::expire_subscriptions`] did, by user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expiry {
    /// A queued subscription took over.
    pub renewed: Vec<Uuid>,
    /// Nothing is in force any more.
    pub lapsed: Vec<Uuid>,
}

resource!(
    Subscription,
    "subscriptions",
    COLUMNS,
    "subscription",
    from_row
);

impl Store {
    pub async fn create_subscription(
        &self,
        actor: &str,
        user_id: Uuid,
        new: &NewSubscription,
    ) -> Result<Subscription> {
        let plan = self.get_plan(new.plan_id).await?;
        self.get_user(user_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let current = sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE user_id = $1 AND status IN ('active', 'on_hold')")
            .bind(user_id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
        let (status, starts_at, ends) = if new.queued {
            (SubscriptionStatus::Queued, None, None)
        } else if current > 0 {
            return Err(StoreError::Conflict(Conflict::state(
                "the user already has a subscription in force; queue the new one or cancel the current one",
            )));
        } else if new.on_hold {
            (SubscriptionStatus::OnHold, None, None)
        } else {
            (SubscriptionStatus::Active, Some(now), ends_at(&plan, now))
        };
        let id = Uuid::new_v4();
        sqlx::query(&format!(
            "INSERT INTO subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, $7)"
        ))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .bind(plan.id.to_string())
        .bind(status.as_str())
        .bind(starts_at)
        .bind(ends)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({"user_id": user_id, "plan": plan.name, "status": status});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "subscription.create", "subscription", id, detail),
            id,
        )
        .await
    }

    pub async fn get_subscription(&self, id: Uuid) -> Result<Subscription> {
        self.fetch(id).await
    }

    pub async fn list_subscriptions(&self, user_id: Uuid) -> Result<Vec<Subscription>> {
        self.list_subscriptions_page(user_id, Page::ALL).await
    }

    pub async fn list_subscriptions_page(
        &self,
        user_id: Uuid,
        page: Page,
    ) -> Result<Vec<Subscription>> {
        self.list_where("user_id", &user_id.to_string(), "created_at, id", page)
            .await
    }

    pub async fn cancel_subscription(&self, actor: &str, id: Uuid) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE subscriptions SET status = 'cancelled', ends_at = COALESCE(ends_at, $2) WHERE id = $1 AND status IN ('active', 'on_hold', 'queued')")
            .bind(id.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        changed(&done, "subscription in force")?;
        let detail = serde_json::json!({});
        self.commit_and_fetch(
            tx,
            NewAudit::on(actor, "subscription.cancel", "subscription", id, detail),
            id,
        )
        .await
    }

    /// Starts the subscription's quota afresh: usage so far in the period no longer counts.
    pub async fn reset_usage(&self, actor: &str, id: Uuid) -> Result<QuotaStatus> {
        let sub = self.get_subscription(id).await?;
        let plan = self.get_plan(sub.plan_id).await?;
        let now = now_ms();
        let (period_start, _) = quota_period(&sub, &plan, now);
        let raw = self.raw_usage_since(sub.user_id, period_start).await?;
        let tx = self.begin().await?;
        let detail = serde_json::json!({"bytes_forgiven": raw});
        let audit = NewAudit::on(
            actor,
            "subscription.reset_usage",
            "subscription",
            id,
            detail,
        );
        self.forgive_usage(tx, id, now, raw, audit).await?;
        let sub = self.get_subscription(id).await?;
        self.quota_status(&sub, &plan, now).await
    }

    /// Moves an active subscription's end `by_ms` later (one that has an end).
    pub async fn extend_subscription(
        &self,
        actor: &str,
        id: Uuid,
        by_ms: i64,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE subscriptions SET ends_at = ends_at + $2 \
             WHERE id = $1 AND status = 'active' AND ends_at IS NOT NULL",
        )
        .bind(id.to_string())
        .bind(by_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("active subscription with an end"));
        }
        let detail = serde_json::json!({"extended_by_ms": by_ms});
        self.commit_audited(
            tx,
            NewAudit::on(actor, "subscription.extend", "subscription", id, detail),
        )
        .await?;
        self.get_subscription(id).await
    }

    /// Moves a subscription in force (active, on hold or queued) to another plan; its dates
    /// stay.
    pub async fn change_subscription_plan(
        &self,
        actor: &str,
        id: Uuid,
        plan_id: Uuid,
    ) -> Result<Subscription> {
        let before = self.get_subscription(id).await?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE subscriptions SET plan_id = $2 \
             WHERE id = $1 AND status IN ('active', 'on_hold', 'queued')",
        )
        .bind(id.to_string())
        .bind(plan_id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("subscription in force"));
        }
        let detail = serde_json::json!({"from_plan": before.plan_id, "to_plan": plan_id});
        self.commit_audited(
            tx,
            NewAudit::on(
                actor,
                "subscription.change_plan",
                "subscription",
                id,
                detail,
            ),
        )
        .await?;
        self.get_subscription(id).await
    }

    /// Records in `tx` that the subscription's period counts usage from `reset_at` less
    /// `forgiven` bytes, and commits it with its audit entry.
    async fn forgive_usage(
        &self,
        mut tx: Transaction<'static, Any>,
        id: Uuid,
        reset_at: Millis,
        forgiven: i64,
        audit: NewAudit<'_>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE subscriptions SET usage_reset_at = $2, usage_reset_bytes = $3 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(reset_at)
        .bind(forgiven)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(tx, audit).await
    }

    /// Lets `bytes` more traffic through in the current quota period: they are forgiven like a
    /// usage reset's, on top of any reset already made in the period.
    pub async fn add_traffic(&self, actor: &str, id: Uuid, bytes: i64) -> Result<QuotaStatus> {
        let sub = self.get_subscription(id).await?;
        let plan = self.get_plan(sub.plan_id).await?;
        let now = now_ms();
        let (period_start, _) = quota_period(&sub, &plan, now);
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT usage_reset_at, usage_reset_bytes FROM subscriptions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let (reset_at, forgiven) = match row.opt_int("usage_reset_at")? {
            Some(at) if at >= period_start => (at, row.int("usage_reset_bytes")?),
            _ => (now, 0),
        };
        let detail = serde_json::json!({"bytes_added": bytes});
        let audit = NewAudit::on(
            actor,
            "subscription.add_traffic",
            "subscription",
            id,
            detail,
        );
        let forgiven = forgiven.saturating_add(bytes);
        self.forgive_usage(tx, id, reset_at, forgiven, audit)
            .await?;
        let sub = self.get_subscription(id).await?;
        self.quota_status(&sub, &plan, now).await
    }

    /// The subscription in force for a user at `now`, moving subscriptions along: an expired one
    /// ends (and the oldest queued one starts), an on-hold one starts its clock when
    /// `first_use` is set. `None` when the user has nothing in force.
    pub async fn resolve_subscription(
        &self,
        user_id: Uuid,
        now: Millis,
        first_use: bool,
    ) -> Result<Option<(Subscription, Plan)>> {
        // Fast path, no write: an active subscription that has not run out.
        let active = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1 AND status = 'active' ORDER BY created_at LIMIT 1"
        ))
        .bind(user_id.to_string())
        .fetch_optional(self.reader())
        .await?;
        if let Some(row) = active {
            let sub = from_row(&row)?;
            if sub.ends_at.is_none_or(|e| e > now) {
                let plan = self.get_plan(sub.plan_id).await?;
                return Ok(Some((sub, plan)));
            }
        }
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1 AND status IN ('active', 'on_hold', 'queued') ORDER BY created_at"
        ))
        .bind(user_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let subs = map_rows(rows, from_row)?;
        let mut chosen = None;
        let mut expired_any = false;
        for sub in subs
            .iter()
            .filter(|s| s.status != SubscriptionStatus::Queued)
        {
            if sub.status == SubscriptionStatus::Active && sub.ends_at.is_some_and(|e| e <= now) {
                set_status(&mut tx, sub.id, SubscriptionStatus::Ended, None, None).await?;
                expired_any = true;
                continue;
            }
            chosen = Some(sub.clone());
            break;
        }
        let mut moved = expired_any;
        if chosen.is_none()
            && (expired_any || subs.iter().all(|s| s.status == SubscriptionStatus::Queued))
        {
            if let Some(next) = subs.iter().find(|s| s.status == SubscriptionStatus::Queued) {
                let plan = self.get_plan(next.plan_id).await?;
                set_status(
                    &mut tx,
                    next.id,
                    SubscriptionStatus::Active,
                    Some(now),
                    ends_at(&plan, now),
                )
                .await?;
                moved = true;
                chosen = Some(Subscription {
                    status: SubscriptionStatus::Active,
                    starts_at: Some(now),
                    ends_at: ends_at(&plan, now),
                    ..next.clone()
                });
            }
        }
        if let Some(sub) = chosen.as_mut() {
            if sub.status == SubscriptionStatus::OnHold && first_use {
                let plan = self.get_plan(sub.plan_id).await?;
                let ends = ends_at(&plan, now);
                set_status(&mut tx, sub.id, SubscriptionStatus::Active, Some(now), ends).await?;
                sub.status = SubscriptionStatus::Active;
                sub.starts_at = Some(now);
                sub.ends_at = ends;
                moved = true;
            }
        }
        tx.commit().await?;
        if moved {
            // Subscriptions moved along (ended, started): answers derived from them are old.
            self.count_change();
        }
        match chosen {
            Some(sub) => {
                let plan = self.get_plan(sub.plan_id).await?;
                Ok(Some((sub, plan)))
            }
            None => Ok(None),
        }
    }

    /// Ends every active subscription whose time is up, starting a queued one in its place if
    /// there is one; says which users are left without a subscription (their sessions must end).
    pub async fn expire_subscriptions(&self, now: Millis) -> Result<Expiry> {
        let rows = sqlx::query("SELECT DISTINCT user_id FROM subscriptions WHERE status = 'active' AND ends_at IS NOT NULL AND ends_at <= $1")
            .bind(now)
            .fetch_all(self.reader())
            .await?;
        let users: Vec<Uuid> = rows
            .iter()
            .map(|r| r.id("user_id"))
            .collect::<Result<_>>()?;
        let mut expiry = Expiry::default();
        for user in users {
            // Resolving ends the expired subscription and starts a queued one, if any.
            match self.resolve_subscription(user, now, false).await? {
                Some(_) => expiry.renewed.push(user),
                None => expiry.lapsed.push(user),
            }
        }
        Ok(expiry)
    }
}
