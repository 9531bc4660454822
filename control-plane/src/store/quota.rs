//! How much of a subscription's byte quota is used: the hot usage counters summed over the
//! current quota period, less what the last usage reset forgave; for one user or many at once.

use std::collections::HashMap;

use uuid::Uuid;

use super::multi_row::{padded, padded_len, ROWS_PER_STATEMENT};
use super::row::RowExt;
use super::{QuotaStatus, Result, Store};
use crate::model::{Millis, Plan, Subscription};
use crate::quota::current_period;

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// Bytes used by the user since `since` according to the hot counters (hour precision).
    pub(crate) async fn raw_usage_since(&self, user_id: Uuid, since: Millis) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS used FROM usage_counters WHERE user_id = $1 AND hour_start >= $2")
            .bind(user_id.to_string())
            .bind(since.div_euclid(HOUR_MS) * HOUR_MS)
            .fetch_one(self.reader())
            .await?;
        row.int("used")
    }

    /// The quota of a subscription at `now`.
    pub async fn quota_status(
        &self,
        sub: &Subscription,
        plan: &Plan,
        now: Millis,
    ) -> Result<QuotaStatus> {
        let row = sqlx::query(
            "SELECT usage_reset_at, usage_reset_bytes FROM subscriptions WHERE id = $1",
        )
        .bind(sub.id.to_string())
        .fetch_one(self.reader())
        .await?;
        let reset = (
            row.opt_int("usage_reset_at")?,
            row.int("usage_reset_bytes")?,
        );
        self.quota_after_reset(sub, plan, reset, now).await
    }

    /// The quota of a subscription at `now`, given its last usage reset (when, bytes forgiven).
    pub async fn quota_after_reset(
        &self,
        sub: &Subscription,
        plan: &Plan,
        reset: (Option<Millis>, i64),
        now: Millis,
    ) -> Result<QuotaStatus> {
        let (period_start, _) = quota_period(sub, plan, now);
        let raw = self.raw_usage_since(sub.user_id, period_start).await?;
        Ok(quota_from_usage(sub, plan, reset, raw, now))
    }

    /// [`Self::raw_usage_since`] of many users at once, each since its own time, in statements
    /// of at most [`ROWS_PER_STATEMENT`] users: user → bytes (every user asked is answered).
    pub(crate) async fn raw_usage_since_many(
        &self,
        asks: &[(Uuid, Millis)],
    ) -> Result<HashMap<Uuid, i64>> {
        let mut used = HashMap::with_capacity(asks.len());
        for chunk in asks.chunks(ROWS_PER_STATEMENT) {
            // A derived table of (user, since) pairs joined to the counters: one statement,
            // each user's own period.
            let pairs = (0..padded_len(chunk.len()))
                .map(|k| {
                    let p = 2 * k;
                    format!(
                        "SELECT CAST(${} AS TEXT) AS user_id, CAST(${} AS BIGINT) AS since",
                        p + 1,
                        p + 2
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ");
            let sql = format!(
                "SELECT a.user_id, CAST(COALESCE(SUM(c.bytes), 0) AS BIGINT) AS used \
                 FROM ({pairs}) a LEFT JOIN usage_counters c \
                 ON c.user_id = a.user_id AND c.hour_start >= a.since GROUP BY a.user_id"
            );
            let mut query = sqlx::query(&sql);
            for (user, since) in padded(chunk) {
                query = query
                    .bind(user.to_string())
                    .bind(since.div_euclid(HOUR_MS) * HOUR_MS);
            }
            for row in query.fetch_all(self.reader()).await? {
                used.insert(row.id("user_id")?, row.int("used")?);
            }
        }
        Ok(used)
    }
}

/// The quota period `sub` is in at `now`: (start, end; `None` = never resets).
pub fn quota_period(sub: &Subscription, plan: &Plan, now: Millis) -> (Millis, Option<Millis>) {
    current_period(plan.reset_strategy, sub.starts_at.unwrap_or(now), now)
}

/// The quota of `sub` at `now` from the bytes counted since its period began (`raw`) and its last
/// usage reset (when, bytes forgiven).
pub fn quota_from_usage(
    sub: &Subscription,
    plan: &Plan,
    (reset_at, reset_bytes): (Option<Millis>, i64),
    raw: i64,
    now: Millis,
) -> QuotaStatus {
    let (period_start, period_end) = quota_period(sub, plan, now);
    let forgiven = match reset_at {
        Some(at) if at >= period_start => reset_bytes,
        _ => 0,
    };
    let used = (raw - forgiven).max(0);
    QuotaStatus {
        used_bytes: used,
        quota_bytes: plan.quota_bytes,
        remaining_bytes: plan.quota_bytes.map(|q| (q - used).max(0)),
        period_start,
        period_end,
    }
}
