//! Plans and the regions they allow.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::audit::NewAudit;
use super::resource::{changed, Page};
use super::row::RowExt;
use super::{ConflictKind, Result, Store, StoreError};
use crate::model::{now_ms, Plan, ResetStrategy};

// Not `model::Plan` minus its id: that is the stored row as the API shows it (region codes,
// `created_at`), this is what a caller gives (region ids); the shared fields are the plan's terms.
/// A plan to create.
#[derive(Clone, Debug)]
pub struct NewPlan {
    pub name: String,
    pub device_limit: i32,
    pub session_limit: i32,
    pub quota_bytes: Option<i64>,
    pub reset_strategy: ResetStrategy,
    pub duration_days: Option<i32>,
    /// Region ids; empty = all regions.
    pub allowed_regions: Vec<Uuid>,
}

/// Fields an update may change.
#[derive(Clone, Debug, Default)]
pub struct PlanUpdate {
    pub name: Option<String>,
    pub device_limit: Option<i32>,
    pub session_limit: Option<i32>,
    pub quota_bytes: Option<Option<i64>>,
    pub reset_strategy: Option<ResetStrategy>,
    pub duration_days: Option<Option<i32>>,
    pub allowed_regions: Option<Vec<Uuid>>,
}

const COLUMNS: &str =
    "id, name, device_limit, session_limit, quota_bytes, reset_strategy, duration_days, created_at";

fn from_row(r: &AnyRow, allowed_regions: Vec<String>) -> Result<Plan> {
    Ok(Plan {
        id: r.id("id")?,
        name: r.text("name")?,
        device_limit: r.int32("device_limit")?,
        session_limit: r.int32("session_limit")?,
        quota_bytes: r.opt_int("quota_bytes")?,
        reset_strategy: r.parsed("reset_strategy")?,
        duration_days: r.opt_int32("duration_days")?,
        allowed_regions,
        created_at: r.int("created_at")?,
    })
}

async fn set_regions(
    tx: &mut Transaction<'static, Any>,
    plan: Uuid,
    regions: &[Uuid],
) -> Result<()> {
    sqlx::query("DELETE FROM plan_regions WHERE plan_id = $1")
        .bind(plan.to_string())
        .execute(&mut **tx)
        .await?;
    for region in regions {
        sqlx::query("INSERT INTO plan_regions (plan_id, region_id) VALUES ($1, $2)")
            .bind(plan.to_string())
            .bind(region.to_string())
            .execute(&mut **tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                e if e.conflict_kind() == Some(ConflictKind::Reference) => {
                    StoreError::Invalid(format!("region {region} does not exist"))
                }
                other => other,
            })?;
    }
    Ok(())
}

impl Store {
    pub async fn create_plan(&self, actor: &str, new: &NewPlan) -> Result<Plan> {
        let id = Uuid::new_v4();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO plans (id, name, device_limit, session_limit, quota_bytes, reset_strategy, duration_days, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(&new.name)
        .bind(new.device_limit)
        .bind(new.session_limit)
        .bind(new.quota_bytes)
        .bind(new.reset_strategy.as_str())
        .bind(new.duration_days)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        set_regions(&mut tx, id, &new.allowed_regions).await?;
        self.commit_audited(tx, NewAudit::on(actor, "plan.create", "plan", id, serde_json::json!({"name": new.name, "quota_bytes": new.quota_bytes, "reset_strategy": new.reset_strategy}))).await?;
        self.get_plan(id).await
    }

    pub async fn get_plan(&self, id: Uuid) -> Result<Plan> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM plans WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("plan"))?;
        let regions = self.plan_region_codes(id).await?;
        from_row(&row, regions)
    }

    pub async fn plan_by_name(&self, name: &str) -> Result<Plan> {
        let row = sqlx::query("SELECT id FROM plans WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("plan"))?;
        self.get_plan(row.id("id")?).await
    }

    async fn plan_region_codes(&self, plan: Uuid) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT r.code FROM plan_regions pr JOIN regions r ON r.id = pr.region_id WHERE pr.plan_id = $1 ORDER BY r.code")
            .bind(plan.to_string())
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| r.text("code")).collect()
    }

    pub async fn list_plans(&self) -> Result<Vec<Plan>> {
        self.list_plans_page(Page::ALL).await
    }

    pub async fn list_plans_page(&self, page: Page) -> Result<Vec<Plan>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plans ORDER BY name LIMIT $1 OFFSET $2"
        ))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.reader())
        .await?;
        let mut plans = Vec::with_capacity(rows.len());
        for row in &rows {
            let regions = self.plan_region_codes(row.id("id")?).await?;
            plans.push(from_row(row, regions)?);
        }
        Ok(plans)
    }

    pub async fn update_plan(&self, actor: &str, id: Uuid, update: &PlanUpdate) -> Result<Plan> {
        let current = self.get_plan(id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE plans SET name = $2, device_limit = $3, session_limit = $4, quota_bytes = $5, \
             reset_strategy = $6, duration_days = $7 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(update.name.clone().unwrap_or(current.name))
        .bind(update.device_limit.unwrap_or(current.device_limit))
        .bind(update.session_limit.unwrap_or(current.session_limit))
        .bind(update.quota_bytes.unwrap_or(current.quota_bytes))
        .bind(
            update
                .reset_strategy
                .unwrap_or(current.reset_strategy)
                .as_str(),
        )
        .bind(update.duration_days.unwrap_or(current.duration_days))
        .execute(&mut *tx)
        .await?;
        if let Some(regions) = &update.allowed_regions {
            set_regions(&mut tx, id, regions).await?;
        }
        self.commit_audited(tx, NewAudit::on(actor, "plan.update", "plan", id, serde_json::json!({"name": update.name, "device_limit": update.device_limit, "session_limit": update.session_limit, "quota_bytes": update.quota_bytes, "reset_strategy": update.reset_strategy, "duration_days": update.duration_days}))).await?;
        self.get_plan(id).await
    }

    /// Deletes a plan nobody subscribes to (a conflict otherwise).
    pub async fn delete_plan(&self, actor: &str, id: Uuid) -> Result<()> {
        let mut tx = self.begin().await?;
        // Checked here rather than left to the foreign key: SQLite reports a RESTRICT violation
        // as a generic constraint error, which would not read as a conflict.
        let subscriptions =
            sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE plan_id = $1")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?
                .int("n")?;
        if subscriptions > 0 {
            return Err(StoreError::conflict(
                ConflictKind::Reference,
                format!("the plan has {subscriptions} subscriptions; cancel or move them first"),
            ));
        }
        let done = sqlx::query("DELETE FROM plans WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        changed(&done, "plan")?;
        let detail = serde_json::json!({});
        self.commit_audited(tx, NewAudit::on(actor, "plan.delete", "plan", id, detail))
            .await?;
        Ok(())
    }
}
