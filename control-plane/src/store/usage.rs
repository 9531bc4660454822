//! The usage ledger. Gateways report batches of byte counts under a report id; the pair
//! (gateway, report id) is unique, so a retried report is counted exactly once. Each accepted
//! report also bumps the hot per-user hourly counters used for quotas; a periodic job rolls the
//! ledger up per hour and day for reports.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::row::RowExt;
use super::{Result, Store, StoreError};
use crate::model::Millis;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const ROLLUP_JOB: &str = "usage_rollup";

/// One line of a usage report.
#[derive(Clone, Debug)]
pub struct UsageRecordInput {
    pub session_id: Option<Uuid>,
    pub device_id: Uuid,
    pub node_id: Option<Uuid>,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// When the bytes were counted (Unix ms).
    pub at: Millis,
}

/// What a usage report is summed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageGroupBy {
    Device,
    User,
    Node,
    Group,
}

/// A usage query over the roll-ups.
#[derive(Clone, Debug)]
pub struct UsageQuery {
    pub group_by: UsageGroupBy,
    /// `true`: per day; `false`: per hour.
    pub daily: bool,
    pub from: Millis,
    pub to: Millis,
    /// Only this device / user / node / group.
    pub key: Option<Uuid>,
}

/// Bytes for one key in one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageRow {
    pub key: String,
    pub bucket_start: Millis,
    pub bytes_up: i64,
    pub bytes_down: i64,
}

impl Store {
    /// Ingests a report. Returns `false` when this (gateway, report id) was seen before, in
    /// which case nothing changes.
    pub async fn ingest_usage(
        &self,
        gateway: Uuid,
        report_id: &str,
        records: &[UsageRecordInput],
        now: Millis,
    ) -> Result<bool> {
        // Resolve each device's user before the write transaction (reads never block it).
        let mut users: HashMap<Uuid, Uuid> = HashMap::new();
        for r in records {
            if let std::collections::hash_map::Entry::Vacant(e) = users.entry(r.device_id) {
                let device = self.get_device(r.device_id).await.map_err(|e| match e {
                    StoreError::NotFound(_) => {
                        StoreError::Invalid(format!("unknown device {}", r.device_id))
                    }
                    other => other,
                })?;
                e.insert(device.user_id);
            }
        }
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO usage_reports (gateway_id, report_id, received_at, records) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (gateway_id, report_id) DO NOTHING",
        )
        .bind(gateway.to_string())
        .bind(report_id)
        .bind(now)
        .bind(i32::try_from(records.len()).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut hourly: HashMap<(Uuid, i64), i64> = HashMap::new();
        for r in records {
            let user = users[&r.device_id];
            sqlx::query(
                "INSERT INTO usage_records (gateway_id, report_id, session_id, device_id, user_id, node_id, bytes_up, bytes_down, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(gateway.to_string())
            .bind(report_id)
            .bind(r.session_id.map(|s| s.to_string()))
            .bind(r.device_id.to_string())
            .bind(user.to_string())
            .bind(r.node_id.map(|n| n.to_string()))
            .bind(r.bytes_up)
            .bind(r.bytes_down)
            .bind(r.at)
            .execute(&mut *tx)
            .await?;
            *hourly
                .entry((user, r.at.div_euclid(HOUR_MS) * HOUR_MS))
                .or_default() += r.bytes_up + r.bytes_down;
            if let Some(session) = r.session_id {
                Store::add_session_bytes(&mut tx, session, r.bytes_up, r.bytes_down).await?;
            }
        }
        for ((user, hour), bytes) in hourly {
            sqlx::query(
                "INSERT INTO usage_counters (user_id, hour_start, bytes) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, hour_start) DO UPDATE SET bytes = usage_counters.bytes + excluded.bytes",
            )
            .bind(user.to_string())
            .bind(hour)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Rolls up to `batch` new ledger records into the hourly and daily roll-ups; returns how
    /// many were processed. Safe to run repeatedly: a watermark moves in the same transaction.
    pub async fn roll_up_usage(&self, batch: i64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let watermark = sqlx::query("SELECT value FROM job_state WHERE name = $1")
            .bind(ROLLUP_JOB)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.int("value"))
            .transpose()?
            .unwrap_or(0);
        let rows = sqlx::query(
            "SELECT id, device_id, user_id, node_id, bytes_up, bytes_down, at FROM usage_records \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(watermark)
        .bind(batch.max(1))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        type Key = (&'static str, i64, String, String, String);
        let mut sums: HashMap<Key, (i64, i64)> = HashMap::new();
        let mut last = watermark;
        for r in &rows {
            last = last.max(r.int("id")?);
            let at = r.int("at")?;
            let device = r.text("device_id")?;
            let user = r.text("user_id")?;
            let node = r.opt_text("node_id")?.unwrap_or_default();
            let (up, down) = (r.int("bytes_up")?, r.int("bytes_down")?);
            for (granularity, size) in [("hour", HOUR_MS), ("day", DAY_MS)] {
                let e = sums
                    .entry((
                        granularity,
                        at.div_euclid(size) * size,
                        device.clone(),
                        user.clone(),
                        node.clone(),
                    ))
                    .or_default();
                e.0 += up;
                e.1 += down;
            }
        }
        for ((granularity, bucket, device, user, node), (up, down)) in sums {
            sqlx::query(
                "INSERT INTO usage_rollups (granularity, bucket_start, device_id, user_id, node_id, bytes_up, bytes_down) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (granularity, bucket_start, device_id, node_id) DO UPDATE SET \
                 bytes_up = usage_rollups.bytes_up + excluded.bytes_up, bytes_down = usage_rollups.bytes_down + excluded.bytes_down",
            )
            .bind(granularity)
            .bind(bucket)
            .bind(device)
            .bind(user)
            .bind(node)
            .bind(up)
            .bind(down)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("INSERT INTO job_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(ROLLUP_JOB)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Usage per key and bucket from the roll-ups, oldest bucket first.
    pub async fn usage_report(&self, q: &UsageQuery) -> Result<Vec<UsageRow>> {
        let (key_col, join) = match q.group_by {
            UsageGroupBy::Device => ("u.device_id", ""),
            UsageGroupBy::User => ("u.user_id", ""),
            UsageGroupBy::Node => ("u.node_id", ""),
            UsageGroupBy::Group => (
                "m.group_id",
                "JOIN node_group_members m ON m.node_id = u.node_id",
            ),
        };
        let sql = format!(
            "SELECT {key_col} AS k, u.bucket_start, CAST(SUM(u.bytes_up) AS BIGINT) AS up, CAST(SUM(u.bytes_down) AS BIGINT) AS down \
             FROM usage_rollups u {join} \
             WHERE u.granularity = $1 AND u.bucket_start >= $2 AND u.bucket_start < $3 AND ($4 IS NULL OR {key_col} = $4) \
             GROUP BY {key_col}, u.bucket_start ORDER BY u.bucket_start, {key_col}"
        );
        let rows = sqlx::query(&sql)
            .bind(if q.daily { "day" } else { "hour" })
            .bind(q.from)
            .bind(q.to)
            .bind(q.key.map(|k| k.to_string()))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    key: r.text("k")?,
                    bucket_start: r.int("bucket_start")?,
                    bytes_up: r.int("up")?,
                    bytes_down: r.int("down")?,
                })
            })
            .collect()
    }
}
