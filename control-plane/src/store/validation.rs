//! What validating a device reads: the device, its token hash, its user's status, the user's
//! oldest active subscription (with its usage reset) and whether a queued one follows, in one
//! statement.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use uuid::Uuid;

use super::multi_row::{in_list, padded, ROWS_PER_STATEMENT};
use super::row::RowExt;
use super::{Result, Store};
use crate::model::{Device, Millis, Subscription, UserStatus};

/// One device's validation facts.
#[derive(Clone, Debug)]
pub struct ValidationFacts {
    pub device: Device,
    /// SHA-256 of the device token, hex.
    pub token_hash: String,
    pub user_status: UserStatus,
    /// The user's oldest active subscription and the bytes its last usage reset forgave.
    pub active: Option<(Subscription, i64)>,
    /// Whether a queued subscription waits to follow.
    pub queued: bool,
}

/// The facts' columns and joins; a `WHERE` on `d.id` completes the statement.
const FACTS: &str = "SELECT d.id, d.user_id, d.name, d.status, d.created_at, d.last_seen_at, \
     d.sticky_node_id, d.token_hash, u.status AS user_status, \
     s.id AS s_id, s.plan_id AS s_plan_id, s.status AS s_status, \
     s.starts_at AS s_starts_at, s.ends_at AS s_ends_at, \
     s.usage_reset_at AS s_usage_reset_at, s.usage_reset_bytes AS s_usage_reset_bytes, \
     s.created_at AS s_created_at, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM subscriptions q \
         WHERE q.user_id = d.user_id AND q.status = 'queued') THEN 1 ELSE 0 END AS BIGINT) AS queued \
     FROM devices d JOIN users u ON u.id = d.user_id \
     LEFT JOIN subscriptions s ON s.id = (SELECT a.id FROM subscriptions a \
         WHERE a.user_id = d.user_id AND a.status = 'active' ORDER BY a.created_at LIMIT 1)";

impl Store {
    /// The validation facts of a device; `None` when there is no such device.
    pub async fn validation_facts(&self, device: Uuid) -> Result<Option<ValidationFacts>> {
        let row = sqlx::query(&format!("{FACTS} WHERE d.id = $1"))
            .bind(device.to_string())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(facts_from_row).transpose()
    }

    /// The validation facts of many devices in statements of at most [`ROWS_PER_STATEMENT`]
    /// devices; a device that does not exist is missing from the map.
    pub async fn validation_facts_many(
        &self,
        devices: &[Uuid],
    ) -> Result<HashMap<Uuid, ValidationFacts>> {
        let mut facts = HashMap::with_capacity(devices.len());
        for chunk in devices.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{FACTS} WHERE d.id IN ({})", in_list(1, chunk));
            let mut query = sqlx::query(&sql);
            for device in padded(chunk) {
                query = query.bind(device.to_string());
            }
            for row in query.fetch_all(self.reader()).await? {
                let f = facts_from_row(&row)?;
                facts.insert(f.device.id, f);
            }
        }
        Ok(facts)
    }
}

fn facts_from_row(r: &AnyRow) -> Result<ValidationFacts> {
    let device = super::devices::from_row(r)?;
    let active = match r.opt_id("s_id")? {
        Some(id) => Some((
            Subscription {
                id,
                user_id: device.user_id,
                plan_id: r.id("s_plan_id")?,
                status: r.parsed("s_status")?,
                starts_at: r.opt_int("s_starts_at")?,
                ends_at: r.opt_int("s_ends_at")?,
                usage_reset_at: r.opt_int("s_usage_reset_at")?,
                created_at: r.int("s_created_at")?,
            },
            r.opt_int("s_usage_reset_bytes")?.unwrap_or(0),
        )),
        None => None,
    };
    Ok(ValidationFacts {
        token_hash: r.text("token_hash")?,
        user_status: r.parsed("user_status")?,
        active,
        queued: r.int("queued")? != 0,
        device,
    })
}

/// Whether `sub` is still in force at `now` (an active one past its end must be moved along by
/// `resolve_subscription`).
pub fn in_force(sub: &Subscription, now: Millis) -> bool {
    sub.ends_at.is_none_or(|e| e > now)
}
