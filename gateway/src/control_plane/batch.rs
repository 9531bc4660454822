//! Session starts, heartbeats and ends go to the control plane in batches
//! (`POST /v1/gateway/sessions/batch`): one call carries every item queued while the previous
//! calls were in flight, so a reconnect storm of thousands of devices costs tens of calls, not
//! thousands, and 10,000 idle sessions' heartbeats a few calls a second instead of hundreds.
//!
//! A start (a HELLO waits for it) is sent at once when a call slot is free; heartbeats and ends
//! wait up to [`LINGER`] for company. Each caller gets its own item's outcome, as the single call
//! would have answered it. A control plane without the batch route (404 with no problem code,
//! an older version) gets the single calls instead.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use httvps_contract::limits::MAX_SESSION_BATCH;
use httvps_contract::routes;
use httvps_contract::session::{
    BatchOutcome, BatchedEnd, SessionBatch, SessionBatchResponse, StartSessionRequest,
};
use httvps_contract::RefusalCode;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::{ControlPlaneClient, CpError};
use crate::metrics as m;

/// How long a heartbeat or an end may wait for other items.
pub(super) const LINGER: Duration = Duration::from_millis(100);
/// Batches in flight at once; items queue meanwhile and make the next batch larger.
const CALLS_IN_FLIGHT: usize = 4;
/// Items waiting for a batch; a caller beyond it waits.
const QUEUE: usize = 16_384;

/// One session call.
#[derive(Clone, Debug)]
pub(super) enum SessionCall {
    Start(StartSessionRequest),
    Heartbeat(Uuid),
    End(BatchedEnd),
}

impl SessionCall {
    /// Whether a HELLO waits for it.
    fn is_urgent(&self) -> bool {
        matches!(self, SessionCall::Start(_))
    }
}

struct Queued {
    call: SessionCall,
    reply: oneshot::Sender<Result<BatchOutcome, CpError>>,
    /// The caller's span (a HELLO's, a session's): the batch call is traced under the first
    /// start's, so a HELLO's trace still shows its session's registration.
    span: tracing::Span,
}

/// The queue of session calls and the task that sends them.
#[derive(Debug)]
pub(super) struct SessionBatcher {
    queue: mpsc::Sender<Queued>,
    /// Batch calls made so far.
    pub(super) batches: Arc<AtomicU64>,
}

impl SessionBatcher {
    /// Starts the sending task (on the current tokio runtime) for `client`.
    pub(super) fn start(client: ControlPlaneClient) -> Self {
        let (queue, items) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(client, items, batches.clone()));
        SessionBatcher { queue, batches }
    }

    /// Queues `call` and waits for its outcome; a refusal is [`CpError::Refused`] as the single
    /// call's would be.
    pub(super) async fn call(&self, call: SessionCall) -> Result<BatchOutcome, CpError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Queued {
                call,
                reply,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| CpError::Unavailable("the session batcher stopped".into()))?;
        outcome
            .await
            .map_err(|_| CpError::Unavailable("the session batch was dropped".into()))?
    }
}

async fn run(
    client: ControlPlaneClient,
    mut items: mpsc::Receiver<Queued>,
    batches: Arc<AtomicU64>,
) {
    let slots = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    let unsupported = Arc::new(AtomicBool::new(false));
    let mut pending: Vec<Queued> = Vec::new();
    let mut oldest = Instant::now();
    loop {
        if pending.is_empty() {
            let Some(first) = items.recv().await else {
                return;
            };
            oldest = Instant::now();
            pending.push(first);
        }
        while pending.len() < MAX_SESSION_BATCH {
            match items.try_recv() {
                Ok(item) => pending.push(item),
                Err(_) => break,
            }
        }
        let ready =
            pending.len() >= MAX_SESSION_BATCH || pending.iter().any(|q| q.call.is_urgent());
        if !ready {
            tokio::select! {
                item = items.recv() => {
                    match item {
                        Some(item) => pending.push(item),
                        None => {
                            // Shutting down: what is queued still goes.
                            send_now(&client, &slots, &unsupported, &batches, std::mem::take(&mut pending)).await;
                            return;
                        }
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(oldest + LINGER) => {}
            }
        }
        send_now(
            &client,
            &slots,
            &unsupported,
            &batches,
            std::mem::take(&mut pending),
        )
        .await;
    }
}

/// Waits for a call slot, then sends `batch` in the background.
async fn send_now(
    client: &ControlPlaneClient,
    slots: &Arc<Semaphore>,
    unsupported: &Arc<AtomicBool>,
    batches: &Arc<AtomicU64>,
    batch: Vec<Queued>,
) {
    let Ok(slot) = slots.clone().acquire_owned().await else {
        return;
    };
    let client = client.clone();
    let unsupported = unsupported.clone();
    let batches = batches.clone();
    let parent = batch
        .iter()
        .find(|q| q.call.is_urgent())
        .or(batch.first())
        .map_or_else(tracing::Span::none, |q| q.span.clone());
    tokio::spawn(
        async move {
            if unsupported.load(Ordering::Relaxed) {
                send_singly(&client, batch).await;
            } else if let Err(batch) = send_batch(&client, &batches, batch).await {
                tracing::info!(
                    "the control plane has no session batch route: single calls from now on"
                );
                unsupported.store(true, Ordering::Relaxed);
                send_singly(&client, batch).await;
            }
            drop(slot);
        }
        .instrument(parent),
    );
}

/// One batch call; gives the items back when the control plane has no batch route.
async fn send_batch(
    client: &ControlPlaneClient,
    batches: &AtomicU64,
    batch: Vec<Queued>,
) -> Result<(), Vec<Queued>> {
    let mut body = SessionBatch::default();
    for q in &batch {
        match &q.call {
            SessionCall::Start(start) => body.start.push(start.clone()),
            SessionCall::Heartbeat(id) => body.heartbeat.push(*id),
            SessionCall::End(end) => body.end.push(end.clone()),
        }
    }
    batches.fetch_add(1, Ordering::Relaxed);
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
            fail_all(
                batch,
                &CpError::Unavailable("empty session batch answer".into()),
            );
            return Ok(());
        }
        Err(CpError::Refused {
            status: 404 | 405,
            code: RefusalCode::Unknown,
            ..
        }) => return Err(batch),
        Err(e) => {
            fail_all(batch, &e);
            return Ok(());
        }
    };
    let mut starts = answer.start.into_iter();
    let mut heartbeats = answer.heartbeat.into_iter();
    let mut ends = answer.end.into_iter();
    for q in batch {
        let outcome = match q.call {
            SessionCall::Start(_) => starts.next(),
            SessionCall::Heartbeat(_) => heartbeats.next(),
            SessionCall::End(_) => ends.next(),
        };
        let outcome = outcome
            .ok_or_else(|| CpError::Unavailable("the session batch answer is short".into()))
            .and_then(refusal_to_error);
        let _ = q.reply.send(outcome);
    }
    Ok(())
}

fn fail_all(batch: Vec<Queued>, error: &CpError) {
    for q in batch {
        let _ = q.reply.send(Err(error.clone()));
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

/// The single calls, for a control plane without the batch route.
async fn send_singly(client: &ControlPlaneClient, batch: Vec<Queued>) {
    futures_util::future::join_all(batch.into_iter().map(|q| async move {
        let outcome = match &q.call {
            SessionCall::Start(start) => client
                .start_session_alone(start)
                .await
                .map(|()| BatchOutcome::done(start.session_id, 201)),
            SessionCall::Heartbeat(id) => {
                client
                    .heartbeat_session_alone(*id)
                    .await
                    .map(|answer| BatchOutcome {
                        heartbeat: Some(answer),
                        ..BatchOutcome::done(*id, 200)
                    })
            }
            SessionCall::End(end) => client
                .end_session_alone(end.session_id, &end.reason)
                .await
                .map(|()| BatchOutcome::done(end.session_id, 200)),
        };
        let _ = q.reply.send(outcome);
    }))
    .await;
}
