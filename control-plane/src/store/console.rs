//! Read queries only the operator console needs: which plan each user has now (the users
//! page's plan column and filter) in one query instead of one per user.

use std::collections::HashMap;

use uuid::Uuid;

use super::row::RowExt;
use super::{Result, Store};

impl Store {
    /// The plan of each user's subscription in force (active or on hold), by user id.
    pub async fn plans_in_force(&self) -> Result<HashMap<Uuid, Uuid>> {
        let rows = sqlx::query(
            "SELECT user_id, plan_id FROM subscriptions WHERE status IN ('active', 'on_hold')",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.id("user_id")?, r.id("plan_id")?)))
            .collect()
    }
}
