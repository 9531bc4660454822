//! Periodic work runs on one control-plane replica at a time. On PostgreSQL each job takes a
//! session-level advisory lock, held on one pooled connection for as long as the job's guard
//! lives; a replica that cannot get it skips the round. On SQLite there is one process, so the
//! lock is always granted.

use sqlx::pool::PoolConnection;
use sqlx::Any;

use super::row::RowExt;
use super::{Backend, Result, Store};

/// A held job lock; dropping it without [`JobLock::release`] returns the connection to the pool
/// only after closing it, which releases the lock too.
#[derive(Debug)]
pub struct JobLock {
    conn: Option<PoolConnection<Any>>,
    key: i64,
}

impl JobLock {
    /// Releases the lock.
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Not released explicitly (a panic or cancellation): close the connection so the
            // session, and with it the advisory lock, ends.
            drop(conn.detach());
        }
    }
}

/// A stable 64-bit key for a job name (FNV-1a), the same on every replica.
fn job_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

impl Store {
    /// Tries to take the lock for job `name`; `None` when another replica holds it.
    pub async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>> {
        let key = job_key(name);
        match self.backend() {
            Backend::Sqlite => Ok(Some(JobLock { conn: None, key })),
            Backend::Postgres => {
                let mut conn = self.writer().acquire().await?;
                let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await?;
                if row.flag("locked")? {
                    Ok(Some(JobLock {
                        conn: Some(conn),
                        key,
                    }))
                } else {
                    Ok(None)
                }
            }
        }
    }
}
