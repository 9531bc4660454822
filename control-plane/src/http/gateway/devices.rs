//! Device validation: allowed with an entitlement, or denied with a HELLO_ERROR code.

use axum::extract::State;
use axum::Json;
use httvps_contract::validate::{Entitlement, PlanTerms, ValidateRequest, ValidateResponse};
use httvps_contract::{routes, DenyCode};
use uuid::Uuid;

use super::validate_batch::BatchReads;
use crate::app::AppState;
use crate::auth::token;
use crate::error::ApiResult;
use crate::http::extract::{ApiJsonAnyText, GatewayCaller};
use crate::model::{
    now_ms, DeviceStatus, Millis, Plan, Subscription, SubscriptionStatus, UserStatus,
};
use crate::store::{in_force, quota_from_usage, StoreError, ValidationFacts};
use crate::validation_cache::{CachedVerdict, Verdict};

fn deny(state: &AppState, code: DenyCode, message: impl Into<String>) -> ValidateResponse {
    metrics::counter!("httvps_cp_device_validations_total", "result" => "deny", "code" => code.as_str())
        .increment(1);
    tracing::Span::current().record("httvps.verdict", code.as_str());
    ValidateResponse::Deny {
        cache_ttl_secs: state.config.denial_ttl_secs,
        code,
        message: message.into(),
    }
}

/// Validates a device's credentials and returns its entitlement or a precise refusal.
///
/// The answer about the device (everything but the request's region) comes from the validation
/// cache when it holds one for this device and token (see [`crate::validation_cache`]), else from
/// the store, and is then cached. Last-seen is noted in memory and written in batches
/// ([`crate::last_seen`]): nothing is written on this path.
#[utoipa::path(post, path = routes::VALIDATE_DEVICE, tag = "gateway", request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse), (status = 401, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
#[tracing::instrument(name = "device check", skip_all,
    fields(httvps.device.id = %req.device_id, httvps.verdict = tracing::field::Empty))]
pub async fn validate_device(
    State(state): State<AppState>,
    _gw: GatewayCaller,
    ApiJsonAnyText(req): ApiJsonAnyText<ValidateRequest>,
) -> ApiResult<Json<ValidateResponse>> {
    validate(&state, &req, now_ms(), None).await.map(Json)
}

/// One validation at `now`. A cache miss reads the store, one computation per device at a time,
/// unless `batch` read the device's facts already (a validation batch's miss).
pub(super) async fn validate(
    state: &AppState,
    req: &ValidateRequest,
    now: Millis,
    batch: Option<&BatchReads>,
) -> ApiResult<ValidateResponse> {
    let Ok(device_id) = Uuid::parse_str(&req.device_id) else {
        return Ok(deny(state, DenyCode::AuthFailed, UNKNOWN));
    };
    let mut cached = state.validation.verdict(device_id, now);
    let batch = batch.filter(|b| cached.is_none() && b.asked.contains(&device_id));
    let _flight = if cached.is_none() && batch.is_none() {
        let flight = state.validation.computing_device(device_id).await;
        // Another request may have computed it while this one waited.
        cached = state.validation.verdict_after_wait(device_id, now_ms());
        flight
    } else {
        None
    };
    let (verdict, stored_last_seen) = match cached {
        Some(cached) => {
            if !token::matches(&req.device_token, &cached.token_hash) {
                return Ok(deny(state, DenyCode::AuthFailed, UNKNOWN));
            }
            (cached.verdict, None)
        }
        None => {
            // Read before the store: a change committed while this runs moves the epoch, and
            // the answer computed from the old rows is then never served.
            let (epoch, facts) = match batch {
                Some(b) => (b.epoch, b.facts.get(&device_id).cloned()),
                None => {
                    let epoch = state.validation.epoch();
                    (epoch, state.store.validation_facts(device_id).await?)
                }
            };
            let Some(facts) = facts else {
                // Same work as a real check, so the answer time does not tell whether the id
                // exists.
                let _ = token::matches(&req.device_token, "");
                return Ok(deny(state, DenyCode::AuthFailed, UNKNOWN));
            };
            if !token::matches(&req.device_token, &facts.token_hash) {
                return Ok(deny(state, DenyCode::AuthFailed, UNKNOWN));
            }
            let (verdict, limits) = device_verdict(state, &facts, now, batch).await?;
            let device = facts.device;
            state.validation.keep_verdict(
                device.id,
                CachedVerdict {
                    token_hash: facts.token_hash,
                    user_id: device.user_id,
                    verdict: verdict.clone(),
                },
                epoch,
                now,
                &limits,
            );
            (verdict, device.last_seen_at)
        }
    };
    let entitlement = match verdict {
        Verdict::Deny(code, message) => return Ok(deny(state, code, message)),
        Verdict::Allow(entitlement) => entitlement,
    };
    if let Some(region) = req.region.as_deref().filter(|r| !r.is_empty()) {
        if let Some(refusal) =
            region_refusal(state, region, &entitlement.allowed_regions, now).await?
        {
            return Ok(deny(state, DenyCode::RegionNotAllowed, refusal));
        }
    }
    state.last_seen.note(device_id, now, stored_last_seen);
    metrics::counter!("httvps_cp_device_validations_total", "result" => "allow", "code" => "ok")
        .increment(1);
    tracing::Span::current().record("httvps.verdict", "allow");
    Ok(ValidateResponse::Allow {
        cache_ttl_secs: state.config.entitlement_ttl_secs,
        entitlement,
    })
}

const UNKNOWN: &str = "unknown device or wrong token";

/// What the store says about a device whose token matched, and until when that may be kept
/// (the subscription's end, the quota period's end). With an active subscription in force this
/// reads the plan and the usage besides the facts; otherwise the subscriptions are moved along
/// first (an ended one ends, a queued or on-hold one starts). `batch` may hold the plan and the
/// usage already.
async fn device_verdict(
    state: &AppState,
    facts: &ValidationFacts,
    now: Millis,
    batch: Option<&BatchReads>,
) -> ApiResult<(Verdict, Vec<Option<Millis>>)> {
    let deny = |code, message: String| Ok((Verdict::Deny(code, message), Vec::new()));
    let device = &facts.device;
    if device.status != DeviceStatus::Active {
        return deny(
            DenyCode::Revoked,
            format!("the device is {}", device.status),
        );
    }
    if facts.user_status != UserStatus::Active {
        return deny(DenyCode::Revoked, "the user is disabled".into());
    }
    let (sub, plan, quota, expires_at) = match &facts.active {
        Some((sub, reset_bytes)) if in_force(sub, now) => {
            let plan = match batch.and_then(|b| b.plans.get(&sub.plan_id)) {
                Some(plan) => plan.clone(),
                None => cached_plan(state, sub.plan_id, now).await?,
            };
            let reset = (sub.usage_reset_at, *reset_bytes);
            let quota = match batch.and_then(|b| b.usage.get(&sub.user_id)) {
                Some(&raw) => quota_from_usage(sub, &plan, reset, raw, now),
                None => {
                    state
                        .store
                        .quota_after_reset(sub, &plan, reset, now)
                        .await?
                }
            };
            let expires_at = sub.ends_at.filter(|_| !facts.queued);
            (sub.clone(), plan, quota, expires_at)
        }
        _ => {
            let Some((sub, plan)) = state
                .store
                .resolve_subscription(device.user_id, now, true)
                .await?
            else {
                return deny(DenyCode::Expired, "no subscription in force".into());
            };
            let quota = state.store.quota_status(&sub, &plan, now).await?;
            let expires_at = access_ends_at(state, &sub).await?;
            (sub, plan, quota, expires_at)
        }
    };
    let limits = vec![sub.ends_at, quota.period_end];
    if quota.remaining_bytes == Some(0) {
        return Ok((
            Verdict::Deny(
                DenyCode::QuotaExceeded,
                "the byte quota of this period is used up".into(),
            ),
            limits,
        ));
    }
    let entitlement = Entitlement {
        device_id: device.id,
        user_id: device.user_id,
        // Limits and byte counts are never negative in the store; a negative one would
        // allow nothing.
        session_limit: u32::try_from(plan.session_limit).unwrap_or(0),
        remaining_bytes: quota.remaining_bytes.map(|b| u64::try_from(b).unwrap_or(0)),
        quota_resets_at: quota.period_end,
        expires_at,
        allowed_regions: plan.allowed_regions.clone(),
        plan: plan_terms(&plan),
    };
    Ok((Verdict::Allow(Box::new(entitlement)), limits))
}

/// A plan, from the validation cache when it holds it.
pub(super) async fn cached_plan(state: &AppState, id: Uuid, now: Millis) -> ApiResult<Plan> {
    if let Some(plan) = state.validation.plan(id, now) {
        return Ok(plan);
    }
    let epoch = state.validation.epoch();
    let plan = state.store.get_plan(id).await?;
    state.validation.keep_plan(plan.clone(), epoch, now);
    Ok(plan)
}

/// Why the request's region is refused, if it is (SPEC §10.2): a region nobody defined is not
/// allowed either, nor one outside the plan's list (when it has one).
async fn region_refusal(
    state: &AppState,
    region: &str,
    allowed: &[String],
    now: Millis,
) -> ApiResult<Option<String>> {
    // Codes are lowercase letters, digits and '-': anything else (NUL bytes included) cannot
    // name one.
    let code = region.to_ascii_lowercase();
    let well_formed = code.len() <= httvps_contract::limits::MAX_REGION_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let known = well_formed
        && match state.validation.region(&code, now) {
            Some(known) => known,
            None => {
                let epoch = state.validation.epoch();
                let known = match state.store.region_by_code(&code).await {
                    Ok(_) => true,
                    Err(StoreError::NotFound(_)) => false,
                    Err(e) => return Err(e.into()),
                };
                state.validation.keep_region(&code, known, epoch, now);
                known
            }
        };
    if !known {
        return Ok(Some(format!("region {region:?} is unknown")));
    }
    if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(region)) {
        return Ok(Some(format!("region {region:?} is not in the plan")));
    }
    Ok(None)
}

/// The plan's terms a gateway enforces.
fn plan_terms(plan: &Plan) -> PlanTerms {
    PlanTerms {
        id: plan.id,
        name: plan.name.clone(),
        quota_bytes: plan.quota_bytes.map(|b| u64::try_from(b).unwrap_or(0)),
    }
}

/// When the user's access ends: the subscription's end, unless a queued subscription starts
/// then (no end time; heartbeats report the next one's end once it runs). Gateways end the
/// sessions at this time to the second.
pub(super) async fn access_ends_at(
    state: &AppState,
    sub: &Subscription,
) -> ApiResult<Option<Millis>> {
    let Some(end) = sub.ends_at else {
        return Ok(None);
    };
    let queued = state
        .store
        .list_subscriptions(sub.user_id)
        .await?
        .iter()
        .any(|s| s.status == SubscriptionStatus::Queued);
    Ok((!queued).then_some(end))
}
