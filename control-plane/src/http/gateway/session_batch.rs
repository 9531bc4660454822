//! Session starts, heartbeats and ends of one gateway in one call: what the single calls do,
//! with the writes batched ([`crate::store::Store::start_sessions`] and friends).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use futures_util::StreamExt;
use httvps_contract::session::{BatchOutcome, SessionBatch, SessionBatchResponse};
use httvps_contract::{routes, RefusalCode};
use uuid::Uuid;

use super::sessions::{heartbeat_answer, new_session};
use crate::app::AppState;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, GatewayCaller};
use crate::model::now_ms;

/// How many items' checks (cache misses read the store) run at once.
const CHECKS_AT_ONCE: usize = 16;

/// Starts, heartbeats and ends sessions in one call, in that order; each item's outcome is the
/// status, code and detail its own call would have answered (`SessionBatchResponse`).
#[utoipa::path(post, path = routes::SESSION_BATCH, tag = "gateway", request_body = SessionBatch,
    responses((status = 200, body = SessionBatchResponse),
        (status = 401, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn session_batch(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(batch): ApiJson<SessionBatch>,
) -> ApiResult<Json<SessionBatchResponse>> {
    batch.check().map_err(|e| ApiError::Validation(e.0))?;
    let gateway = gw.gateway.id;
    let start = start_all(&state, gateway, batch.start).await?;
    let heartbeat = heartbeat_all(&state, gateway, &batch.heartbeat).await?;
    let ends: Vec<(Uuid, &str)> = batch
        .end
        .iter()
        .map(|e| (e.session_id, e.reason.as_str()))
        .collect();
    let found = state.store.end_sessions(&ends, gateway, now_ms()).await?;
    let end = ends
        .iter()
        .map(|(id, _)| {
            if found.contains(id) {
                BatchOutcome::done(*id, 200)
            } else {
                refused(*id, &ApiError::NotFound("session of this gateway".into()))
            }
        })
        .collect();
    Ok(Json(SessionBatchResponse {
        start,
        heartbeat,
        end,
    }))
}

/// The item's refusal as its own call would have answered it.
fn refused(session_id: Uuid, error: &ApiError) -> BatchOutcome {
    let (status, code, detail) = error.shown();
    BatchOutcome {
        session_id,
        status: status.as_u16(),
        code: Some(RefusalCode::from_wire(code)),
        detail: Some(detail),
        heartbeat: None,
    }
}

async fn start_all(
    state: &AppState,
    gateway: Uuid,
    starts: Vec<httvps_contract::session::StartSessionRequest>,
) -> ApiResult<Vec<BatchOutcome>> {
    let ids: Vec<Uuid> = starts.iter().map(|s| s.session_id).collect();
    // The devices the validation cache does not know (it expired since their check), read in
    // one statement instead of a few each.
    let now = now_ms();
    let unknown: Vec<Uuid> = starts
        .iter()
        .map(|s| s.device_id)
        .filter(|d| state.validation.verdict(*d, now).is_none())
        .collect();
    let facts = if unknown.is_empty() {
        HashMap::new()
    } else {
        state.store.validation_facts_many(&unknown).await?
    };
    let facts = &facts;
    let checked: Vec<ApiResult<_>> = futures_util::stream::iter(starts)
        .map(|req| {
            let known = facts.get(&req.device_id);
            new_session(state, gateway, req, known)
        })
        .buffered(CHECKS_AT_ONCE)
        .collect()
        .await;
    let mut outcomes: Vec<Option<BatchOutcome>> = ids.iter().map(|_| None).collect();
    let mut news = Vec::new();
    let mut places = Vec::new();
    for (i, check) in checked.into_iter().enumerate() {
        match check {
            Ok(new) => {
                news.push(new);
                places.push(i);
            }
            Err(e) => outcomes[i] = Some(refused(ids[i], &e)),
        }
    }
    let started = domain::sessions::start_many(state, &news).await?;
    for (i, outcome) in places.into_iter().zip(started) {
        outcomes[i] = Some(match outcome {
            Ok(session) => BatchOutcome::done(session.id, StatusCode::CREATED.as_u16()),
            Err(e) => refused(ids[i], &ApiError::from(e)),
        });
    }
    Ok(ids
        .iter()
        .zip(outcomes)
        .map(|(id, o)| o.unwrap_or_else(|| refused(*id, &ApiError::Internal("no outcome".into()))))
        .collect())
}

async fn heartbeat_all(
    state: &AppState,
    gateway: Uuid,
    ids: &[Uuid],
) -> ApiResult<Vec<BatchOutcome>> {
    let now = now_ms();
    let live: HashMap<Uuid, _> = state.store.heartbeat_sessions(ids, gateway, now).await?;
    let live = &live;
    let outcomes = futures_util::stream::iter(ids.iter().copied())
        .map(|id| async move {
            let Some(session) = live.get(&id) else {
                return refused(
                    id,
                    &ApiError::NotFound("live session of this gateway".into()),
                );
            };
            match heartbeat_answer(state, session, now).await {
                Ok(answer) => BatchOutcome {
                    heartbeat: Some(answer),
                    ..BatchOutcome::done(id, 200)
                },
                Err(e) => refused(id, &e),
            }
        })
        .buffered(CHECKS_AT_ONCE)
        .collect()
        .await;
    Ok(outcomes)
}
