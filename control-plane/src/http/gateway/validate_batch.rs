//! Many device validations in one call (a gateway's reconnect storm): each device gets the
//! answer its own validation would get, and the cache misses of the batch are read together —
//! their facts in one statement, each plan once (or from the cache), the users' usage in one
//! statement — instead of
//! about five statements per device.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::Json;
use httvps_contract::routes;
use httvps_contract::validate::{ValidateBatch, ValidateBatchResponse};
use tracing::Instrument;
use uuid::Uuid;

use super::devices::{cached_plan, validate};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJsonAnyText, GatewayCaller};
use crate::model::{now_ms, Millis, Plan};
use crate::store::{in_force, quota_period, ValidationFacts};

/// What a batch read for its cache misses.
#[derive(Debug, Default)]
pub(super) struct BatchReads {
    /// The validation cache's epoch before the reads: answers computed from them are kept only
    /// if nothing changed meanwhile.
    pub(super) epoch: u64,
    /// The devices read (a device asked and not in `facts` does not exist).
    pub(super) asked: HashSet<Uuid>,
    pub(super) facts: HashMap<Uuid, ValidationFacts>,
    /// The plans of the devices' subscriptions in force.
    pub(super) plans: HashMap<Uuid, Plan>,
    /// Bytes each user used in its current quota period.
    pub(super) usage: HashMap<Uuid, i64>,
}

/// Validates many devices' credentials; the answers come in the request's order.
#[utoipa::path(post, path = routes::VALIDATE_DEVICES_BATCH, tag = "gateway", request_body = ValidateBatch,
    responses((status = 200, body = ValidateBatchResponse),
        (status = 401, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
#[tracing::instrument(name = "device check batch", skip_all,
    fields(httvps.devices = batch.devices.len()))]
pub async fn validate_devices_batch(
    State(state): State<AppState>,
    _gw: GatewayCaller,
    ApiJsonAnyText(batch): ApiJsonAnyText<ValidateBatch>,
) -> ApiResult<Json<ValidateBatchResponse>> {
    batch.check().map_err(|e| ApiError::Validation(e.0))?;
    let now = now_ms();
    let misses: Vec<Uuid> = batch
        .devices
        .iter()
        .filter_map(|d| Uuid::parse_str(&d.device_id).ok())
        .filter(|id| state.validation.verdict(*id, now).is_none())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let reads = read_misses(&state, misses, now).await?;
    let mut results = Vec::with_capacity(batch.devices.len());
    for device in &batch.devices {
        let span = tracing::info_span!("device check",
            httvps.device.id = %device.device_id, httvps.verdict = tracing::field::Empty);
        let answer = validate(&state, device, now, Some(&reads))
            .instrument(span)
            .await?;
        results.push(answer);
    }
    Ok(Json(ValidateBatchResponse { results }))
}

/// The facts, plans and usage the `misses` need, in a few statements.
async fn read_misses(state: &AppState, misses: Vec<Uuid>, now: Millis) -> ApiResult<BatchReads> {
    let epoch = state.validation.epoch();
    if misses.is_empty() {
        return Ok(BatchReads {
            epoch,
            ..BatchReads::default()
        });
    }
    let facts = state.store.validation_facts_many(&misses).await?;
    let in_force_subs = || {
        facts
            .values()
            .filter_map(|f| f.active.as_ref().map(|(sub, _)| sub))
            .filter(|sub| in_force(sub, now))
    };
    let mut plans = HashMap::new();
    for sub in in_force_subs() {
        if let std::collections::hash_map::Entry::Vacant(e) = plans.entry(sub.plan_id) {
            e.insert(cached_plan(state, sub.plan_id, now).await?);
        }
    }
    let periods: HashMap<Uuid, Millis> = in_force_subs()
        .filter_map(|sub| {
            let plan = plans.get(&sub.plan_id)?;
            Some((sub.user_id, quota_period(sub, plan, now).0))
        })
        .collect();
    let asks: Vec<(Uuid, Millis)> = periods.into_iter().collect();
    let usage = state.store.raw_usage_since_many(&asks).await?;
    Ok(BatchReads {
        epoch,
        asked: misses.into_iter().collect(),
        facts,
        plans,
        usage,
    })
}
