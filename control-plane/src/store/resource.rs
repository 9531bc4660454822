//! What every resource table shares: reading one row by id or by a unique column, and committing
//! a change together with its audit entry. Each resource module declares its table with
//! [`resource!`] instead of repeating these queries.

use std::sync::atomic::Ordering;

use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::audit::{record, NewAudit};
use super::{map_rows, Result, Store, StoreError};

/// One page of a list: at most `limit` rows after skipping `offset` (the admin API's `limit` and
/// `offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// Every row.
    pub const ALL: Page = Page {
        limit: i64::MAX,
        offset: 0,
    };
}

/// A table whose rows decode into `Self`.
pub(crate) trait Resource: Sized {
    const TABLE: &'static str;
    /// The columns `from_row` reads, in `SELECT` order.
    const COLUMNS: &'static str;
    /// The noun of "... not found".
    const NOUN: &'static str;
    fn from_row(row: &AnyRow) -> Result<Self>;
}

/// Declares a model type's table: `resource!(User, "users", COLUMNS, "user", from_row)`.
macro_rules! resource {
    ($model:ty, $table:literal, $columns:expr, $noun:literal, $from_row:path) => {
        impl $crate::store::resource::Resource for $model {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = $columns;
            const NOUN: &'static str = $noun;
            fn from_row(row: &sqlx::any::AnyRow) -> $crate::store::Result<Self> {
                $from_row(row)
            }
        }
    };
}
pub(crate) use resource;

impl Store {
    /// The row with this id ([`StoreError::NotFound`] when there is none).
    pub(crate) async fn fetch<T: Resource>(&self, id: Uuid) -> Result<T> {
        self.fetch_by("id", &id.to_string()).await
    }

    /// The row whose unique `column` holds `value`.
    pub(crate) async fn fetch_by<T: Resource>(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<T> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {column} = $1",
            T::COLUMNS,
            T::TABLE
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound(T::NOUN))?;
        T::from_row(&row)
    }

    /// One page of the rows, in `order_by` order (which must be total, for pages to neither
    /// repeat nor skip rows).
    pub(crate) async fn list<T: Resource>(
        &self,
        order_by: &'static str,
        page: Page,
    ) -> Result<Vec<T>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {order_by} LIMIT $1 OFFSET $2",
            T::COLUMNS,
            T::TABLE
        );
        let rows = sqlx::query(&sql)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(self.reader())
            .await?;
        map_rows(rows, T::from_row)
    }

    /// One page of the rows whose `column` holds `value`, in `order_by` order.
    pub(crate) async fn list_where<T: Resource>(
        &self,
        column: &'static str,
        value: &str,
        order_by: &'static str,
        page: Page,
    ) -> Result<Vec<T>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {column} = $1 ORDER BY {order_by} LIMIT $2 OFFSET $3",
            T::COLUMNS,
            T::TABLE
        );
        let rows = sqlx::query(&sql)
            .bind(value)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(self.reader())
            .await?;
        map_rows(rows, T::from_row)
    }

    /// Commits the change with its audit entry, then reads the changed row `id` back.
    pub(crate) async fn commit_and_fetch<T: Resource>(
        &self,
        tx: Transaction<'static, Any>,
        entry: NewAudit<'_>,
        id: Uuid,
    ) -> Result<T> {
        self.commit_audited(tx, entry).await?;
        self.fetch(id).await
    }
}

/// [`StoreError::NotFound`] (`noun`) when the statement changed no row.
pub(crate) fn changed(done: &AnyQueryResult, noun: &'static str) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(noun));
    }
    Ok(())
}

impl Store {
    /// Records the change's audit entry in its transaction, commits both and counts the change.
    pub(crate) async fn commit_audited(
        &self,
        mut tx: Transaction<'static, Any>,
        entry: NewAudit<'_>,
    ) -> Result<()> {
        record(&mut tx, entry).await?;
        tx.commit().await?;
        self.count_change();
        Ok(())
    }

    /// Counts a committed change that may alter answers derived from the database (call it
    /// after the commit).
    pub(crate) fn count_change(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// How many audited changes (admin API, operator commands) this store (and its clones)
    /// committed: caches of answers derived from the database drop them when it moves (see
    /// [`crate::validation_cache`]).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }
}
