//! The lease of the replica that runs the periodic work: a row per lease with its holder and
//! expiry, taken and renewed with one conditional `UPDATE` (atomic on both databases), timed by
//! the database's clock so replicas' clocks need not agree.

use super::row::RowExt;
use super::{Backend, Result, Store};
use crate::model::Millis;

/// Who holds a lease and until when (the database's Unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: Millis,
}

impl Store {
    /// The database's clock in Unix ms, as SQL.
    fn now_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        }
    }

    /// Takes the lease `name` for `holder` for `ttl_ms` when it is free or expired, or renews it
    /// when `holder` has it. True when `holder` holds it now.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: Millis) -> Result<bool> {
        sqlx::query(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, '', 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(self.writer())
        .await?;
        let now = self.now_sql();
        let done = sqlx::query(&format!(
            "UPDATE job_leases SET holder = $2, expires_at = {now} + $3 \
             WHERE name = $1 AND (holder = $2 OR expires_at < {now})"
        ))
        .bind(name)
        .bind(holder)
        .bind(ttl_ms)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up at once (a clean stop), if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The lease's current holder, if it has one that has not expired.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<LeaseHolder>> {
        let row = sqlx::query(&format!(
            "SELECT holder, expires_at FROM job_leases WHERE name = $1 AND expires_at >= {}",
            self.now_sql()
        ))
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(LeaseHolder {
                holder: r.text("holder")?,
                expires_at: r.int("expires_at")?,
            })
        })
        .transpose()
    }
}
