//! Plans: limits, quota and its reset strategy, duration and allowed regions (given as region
//! codes).

use uuid::Uuid;

use super::error::named;
use super::regions::region_code;
use super::validate::{int_in, text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::{Plan, ResetStrategy};
use crate::store::{NewPlan, PlanUpdate, Store, StoreError};

/// Most devices or sessions a plan may allow.
pub const MAX_LIMIT_PER_USER: i64 = 1000;
/// Longest plan duration (ten years).
pub const MAX_DURATION_DAYS: i64 = 3650;
/// Most regions a plan may name.
pub const MAX_REGIONS: usize = 256;

/// A plan as given, before checking.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub name: String,
    /// 0 to 1000.
    pub device_limit: i64,
    /// 0 to 1000.
    pub session_limit: i64,
    /// Bytes per period, at least 0; `None` = unlimited.
    pub quota_bytes: Option<i64>,
    pub reset_strategy: ResetStrategy,
    /// 1 to 3650; `None` = no expiry.
    pub duration_days: Option<i64>,
    /// Region codes; empty = all regions.
    pub allowed_regions: Vec<String>,
}

/// Changes to a plan; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct PlanChanges {
    pub name: Option<String>,
    pub device_limit: Option<i64>,
    pub session_limit: Option<i64>,
    pub quota_bytes: Option<Option<i64>>,
    pub reset_strategy: Option<ResetStrategy>,
    pub duration_days: Option<Option<i64>>,
    pub allowed_regions: Option<Vec<String>>,
}

fn limit_field(field: &str, v: i64) -> DomainResult<i32> {
    int_in(field, v, 0..=MAX_LIMIT_PER_USER)
}

fn quota(v: Option<i64>) -> DomainResult<Option<i64>> {
    match v {
        Some(q) if q < 0 => Err(DomainError::Invalid(
            "quota_bytes must be at least 0 (or null for unlimited)".into(),
        )),
        other => Ok(other),
    }
}

fn duration(v: Option<i64>) -> DomainResult<Option<i32>> {
    v.map(|d| int_in("duration_days", d, 1..=MAX_DURATION_DAYS))
        .transpose()
}

/// Region codes to ids; an unknown code is a 422.
async fn region_ids(store: &Store, codes: &[String]) -> DomainResult<Vec<Uuid>> {
    if codes.len() > MAX_REGIONS {
        return Err(DomainError::Invalid(format!(
            "allowed_regions may name at most {MAX_REGIONS} regions"
        )));
    }
    let mut ids = Vec::with_capacity(codes.len());
    for code in codes {
        region_code(code)?;
        let region = store.region_by_code(code).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                DomainError::Invalid(format!("unknown region code {code:?} in allowed_regions"))
            }
            other => other.into(),
        })?;
        if !ids.contains(&region.id) {
            ids.push(region.id);
        }
    }
    Ok(ids)
}

fn taken(name: &str) -> impl FnOnce(StoreError) -> DomainError + '_ {
    named(move || format!("a plan named {name:?} exists already"))
}

/// Creates a plan.
pub async fn create(state: &AppState, actor: &str, input: &PlanInput) -> DomainResult<Plan> {
    let new = NewPlan {
        name: text("name", &input.name, MAX_NAME)?,
        device_limit: limit_field("device_limit", input.device_limit)?,
        session_limit: limit_field("session_limit", input.session_limit)?,
        quota_bytes: quota(input.quota_bytes)?,
        reset_strategy: input.reset_strategy,
        duration_days: duration(input.duration_days)?,
        allowed_regions: region_ids(&state.store, &input.allowed_regions).await?,
    };
    state
        .store
        .create_plan(actor, &new)
        .await
        .map_err(taken(&new.name))
}

/// A plan by name.
pub async fn by_name(state: &AppState, name: &str) -> DomainResult<Plan> {
    state.store.plan_by_name(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => DomainError::NotFound(format!("plan {name:?}")),
        other => other.into(),
    })
}

/// Changes a plan (at least one field); subscriptions to it see the change at once.
pub async fn update(
    state: &AppState,
    actor: &str,
    id: Uuid,
    input: &PlanChanges,
) -> DomainResult<Plan> {
    let update = PlanUpdate {
        name: input
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_NAME))
            .transpose()?,
        device_limit: input
            .device_limit
            .map(|v| limit_field("device_limit", v))
            .transpose()?,
        session_limit: input
            .session_limit
            .map(|v| limit_field("session_limit", v))
            .transpose()?,
        quota_bytes: input.quota_bytes.map(quota).transpose()?,
        reset_strategy: input.reset_strategy,
        duration_days: input.duration_days.map(duration).transpose()?,
        allowed_regions: match &input.allowed_regions {
            Some(codes) => Some(region_ids(&state.store, codes).await?),
            None => None,
        },
    };
    let empty = update.name.is_none()
        && update.device_limit.is_none()
        && update.session_limit.is_none()
        && update.quota_bytes.is_none()
        && update.reset_strategy.is_none()
        && update.duration_days.is_none()
        && update.allowed_regions.is_none();
    if empty {
        return Err(DomainError::Invalid("nothing to change".into()));
    }
    state
        .store
        .update_plan(actor, id, &update)
        .await
        .map_err(taken(update.name.as_deref().unwrap_or_default()))
}

/// Deletes a plan that no subscription refers to.
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> DomainResult<()> {
    Ok(state.store.delete_plan(actor, id).await?)
}
