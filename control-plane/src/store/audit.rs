//! The audit log: every admin change, written in the same transaction as the change itself.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::row::RowExt;
use super::{map_rows, Result, Store};
use crate::model::{now_ms, AuditEntry, Millis};

/// What an admin change records.
#[derive(Clone, Debug)]
pub struct NewAudit<'a> {
    /// `admin:<name>`, `cli`, `system`, ...
    pub actor: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub detail: serde_json::Value,
}

impl<'a> NewAudit<'a> {
    /// `actor`'s `action` on the `target_type` with this id.
    pub fn on(
        actor: &'a str,
        action: &'a str,
        target_type: &'a str,
        id: uuid::Uuid,
        detail: serde_json::Value,
    ) -> NewAudit<'a> {
        NewAudit {
            actor,
            action,
            target_type,
            target_id: Some(id.to_string()),
            detail,
        }
    }
}

/// Which entries to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Millis>,
    pub limit: i64,
}

pub(crate) async fn record(tx: &mut Transaction<'static, Any>, entry: NewAudit<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target_type, target_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now_ms())
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn from_row(r: &AnyRow) -> Result<AuditEntry> {
    let detail = r.text("detail")?;
    Ok(AuditEntry {
        id: r.int("id")?,
        at: r.int("at")?,
        actor: r.text("actor")?,
        action: r.text("action")?,
        target_type: r.text("target_type")?,
        target_id: r.opt_text("target_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
}

impl Store {
    /// Deletes the row `id` of `table` and records `<target_type>.delete` in the same
    /// transaction; `NotFound(noun)` when there is no such row.
    pub(crate) async fn delete_audited(
        &self,
        actor: &str,
        table: &'static str,
        target_type: &'static str,
        noun: &'static str,
        id: uuid::Uuid,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        super::resource::changed(&done, noun)?;
        let action = format!("{target_type}.delete");
        let entry = NewAudit::on(actor, &action, target_type, id, serde_json::json!({}));
        self.commit_audited(tx, entry).await
    }

    /// Records an audit entry on its own (for changes made outside a store transaction).
    pub async fn audit(&self, entry: NewAudit<'_>) -> Result<()> {
        let mut tx = self.begin().await?;
        record(&mut tx, entry).await?;
        tx.commit().await?;
        self.count_change();
        Ok(())
    }

    /// Audit entries, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.list_audit_after(filter, 0).await
    }

    /// [`Store::list_audit`] after skipping `offset` entries (newest first).
    pub async fn list_audit_after(
        &self,
        filter: &AuditFilter,
        offset: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log \
             WHERE ($1 IS NULL OR target_type = $1) AND ($2 IS NULL OR target_id = $2) \
               AND ($3 IS NULL OR at >= $3) \
             ORDER BY id DESC LIMIT $4 OFFSET $5",
        )
        .bind(filter.target_type.clone())
        .bind(filter.target_id.clone())
        .bind(filter.since)
        .bind(filter.limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(self.reader())
        .await?;
        map_rows(rows, from_row)
    }
}
