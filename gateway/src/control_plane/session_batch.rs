//! Session starts, heartbeats and ends go to the control plane in batches
//! (`POST /v1/gateway/sessions/batch`, through a [`Batcher`](super::batcher::Batcher)): a
//! reconnect storm's starts cost tens of calls, and 10,000 idle sessions' heartbeats a few calls
//! a second instead of hundreds. A start is urgent (a HELLO waits for it); heartbeats and ends
//! linger for company.

use httvps_contract::limits::MAX_SESSION_BATCH;
use httvps_contract::routes;
use httvps_contract::session::{
    BatchOutcome, BatchedEnd, SessionBatch, SessionBatchResponse, StartSessionRequest,
};
use httvps_contract::RefusalCode;
use uuid::Uuid;

use super::batcher::{fail_all, BatchRoute};
use super::{ControlPlaneClient, CpError};
use crate::metrics as m;

/// One session call.
#[derive(Clone, Debug)]
pub(super) enum SessionCall {
    Start(StartSessionRequest),
    Heartbeat(Uuid),
    End(BatchedEnd),
}

/// The session batch route.
pub(super) struct SessionRoute;

impl BatchRoute for SessionRoute {
    type Item = SessionCall;
    type Outcome = BatchOutcome;
    const MAX_ITEMS: usize = MAX_SESSION_BATCH;

    fn is_urgent(call: &SessionCall) -> bool {
        matches!(call, SessionCall::Start(_))
    }

    async fn send_batch(
        client: &ControlPlaneClient,
        calls: Vec<SessionCall>,
    ) -> Result<Vec<Result<BatchOutcome, CpError>>, Vec<SessionCall>> {
        let mut body = SessionBatch::default();
        for call in &calls {
            match call {
                SessionCall::Start(start) => body.start.push(start.clone()),
                SessionCall::Heartbeat(id) => body.heartbeat.push(*id),
                SessionCall::End(end) => body.end.push(end.clone()),
            }
        }
        metrics::counter!(m::SESSION_BATCHES_TOTAL).increment(1);
        for (call, n) in [
            ("start", body.start.len()),
            ("heartbeat", body.heartbeat.len()),
            ("end", body.end.len()),
        ] {
            metrics::counter!(m::SESSION_BATCH_ITEMS_TOTAL, "call" => call).increment(n as u64);
        }
        let answer = client
            .call_route::<SessionBatchResponse>(
                reqwest::Method::POST,
                routes::SESSION_BATCH,
                Some(&body),
            )
            .await;
        let answer = match answer {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                let e = CpError::Unavailable("empty session batch answer".into());
                return Ok(fail_all(calls.len(), &e));
            }
            Err(CpError::Refused {
                status: 404 | 405,
                code: RefusalCode::Unknown,
                ..
            }) => return Err(calls),
            Err(e) => return Ok(fail_all(calls.len(), &e)),
        };
        let mut starts = answer.start.into_iter();
        let mut heartbeats = answer.heartbeat.into_iter();
        let mut ends = answer.end.into_iter();
        Ok(calls
            .iter()
            .map(|call| {
                let outcome = match call {
                    SessionCall::Start(_) => starts.next(),
                    SessionCall::Heartbeat(_) => heartbeats.next(),
                    SessionCall::End(_) => ends.next(),
                };
                outcome
                    .ok_or_else(|| CpError::Unavailable("the session batch answer is short".into()))
                    .and_then(refusal_to_error)
            })
            .collect())
    }

    async fn send_one(
        client: &ControlPlaneClient,
        call: SessionCall,
    ) -> Result<BatchOutcome, CpError> {
        match call {
            SessionCall::Start(start) => client
                .start_session_alone(&start)
                .await
                .map(|()| BatchOutcome::done(start.session_id, 201)),
            SessionCall::Heartbeat(id) => {
                client
                    .heartbeat_session_alone(id)
                    .await
                    .map(|answer| BatchOutcome {
                        heartbeat: Some(answer),
                        ..BatchOutcome::done(id, 200)
                    })
            }
            SessionCall::End(end) => client
                .end_session_alone(end.session_id, &end.reason)
                .await
                .map(|()| BatchOutcome::done(end.session_id, 200)),
        }
    }
}

/// An item refused is the error its single call would have returned.
fn refusal_to_error(outcome: BatchOutcome) -> Result<BatchOutcome, CpError> {
    if outcome.is_done() {
        return Ok(outcome);
    }
    let code = outcome.code.unwrap_or_default();
    let detail = outcome.detail.unwrap_or_default();
    if outcome.status >= 500 {
        return Err(CpError::Unavailable(format!(
            "{}: {code} {detail}",
            outcome.status
        )));
    }
    Err(CpError::Refused {
        status: outcome.status,
        code,
        detail,
    })
}
