//! Calls to the control plane in batches: one call carries every item queued while the
//! previous calls were in flight, so a reconnect storm of thousands of devices costs tens of
//! calls, not thousands. What a batch carries and how it is sent is a [`BatchRoute`]'s
//! (session calls: [`super::session_batch`]; device checks: [`super::validate_batch`]).
//!
//! An urgent item (a HELLO waits for it) is sent at once when no call of its route is in flight;
//! otherwise it waits for one to come back, at most [`URGENT_WAIT`], so that in a storm the
//! items share calls instead of each taking a free slot. Others wait up to [`LINGER`] for
//! company. Each caller gets its own item's outcome, as the single call would
//! have answered it. A control plane without the batch route (404 or 405 with no problem code,
//! an older version) gets the single calls instead, from then on.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;

use super::{ControlPlaneClient, CpError};

/// How long an item that is not urgent may wait for other items.
const LINGER: Duration = Duration::from_millis(100);
/// How long an urgent item waits for a call in flight to come back before it goes in a call of
/// its own (it goes at once when no call is in flight).
const URGENT_WAIT: Duration = Duration::from_millis(5);
/// Batches of one route in flight at once; items queue meanwhile and make the next batch larger.
const CALLS_IN_FLIGHT: usize = 4;
/// Items waiting for a batch; a caller beyond it waits.
const QUEUE: usize = 16_384;

/// The outcome per item of a batch call, or its items back (no batch route).
pub(super) type BatchAnswer<R> =
    Result<Vec<Result<<R as BatchRoute>::Outcome, CpError>>, Vec<<R as BatchRoute>::Item>>;

/// One batch route of the control plane.
pub(super) trait BatchRoute: Send + Sync + 'static {
    /// One call's worth of work.
    type Item: Send + 'static;
    /// What its single call would answer.
    type Outcome: Send + 'static;
    /// Most items in one batch.
    const MAX_ITEMS: usize;

    /// Whether a caller is waiting on it now (sent without lingering).
    fn is_urgent(item: &Self::Item) -> bool;

    /// One batch call: an outcome per item, in order. `Err(items)` gives the items back when
    /// the control plane has no batch route.
    fn send_batch(
        client: &ControlPlaneClient,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = BatchAnswer<Self>> + Send;

    /// The item's single call.
    fn send_one(
        client: &ControlPlaneClient,
        item: Self::Item,
    ) -> impl Future<Output = Result<Self::Outcome, CpError>> + Send;
}

struct Queued<R: BatchRoute> {
    item: R::Item,
    reply: oneshot::Sender<Result<R::Outcome, CpError>>,
    /// The caller's span (a HELLO's, a session's): the batch call is traced under the first
    /// urgent item's, so a HELLO's trace still shows its control-plane call.
    span: tracing::Span,
}

/// The queue of one route's items and the task that sends them.
pub(super) struct Batcher<R: BatchRoute> {
    queue: mpsc::Sender<Queued<R>>,
    /// Batch calls made so far.
    pub(super) batches: Arc<AtomicU64>,
}

impl<R: BatchRoute> std::fmt::Debug for Batcher<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("batches", &self.batches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<R: BatchRoute> Batcher<R> {
    /// Starts the sending task (on the current tokio runtime) for `client`.
    pub(super) fn start(client: ControlPlaneClient) -> Self {
        let (queue, items) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(run::<R>(client, items, batches.clone()));
        Batcher { queue, batches }
    }

    /// Queues `item` and waits for its outcome.
    pub(super) async fn call(&self, item: R::Item) -> Result<R::Outcome, CpError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Queued {
                item,
                reply,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| CpError::Unavailable("the batcher stopped".into()))?;
        outcome
            .await
            .map_err(|_| CpError::Unavailable("the batch was dropped".into()))?
    }
}

async fn run<R: BatchRoute>(
    client: ControlPlaneClient,
    mut items: mpsc::Receiver<Queued<R>>,
    batches: Arc<AtomicU64>,
) {
    let sender = Sender::<R> {
        client,
        slots: Arc::new(Semaphore::new(CALLS_IN_FLIGHT)),
        returned: Arc::new(Notify::new()),
        unsupported: Arc::new(AtomicBool::new(false)),
        batches,
        route: PhantomData,
    };
    let mut pending: Vec<Queued<R>> = Vec::new();
    let mut oldest = Instant::now();
    let mut oldest_urgent: Option<Instant> = None;
    loop {
        if pending.is_empty() {
            let Some(first) = items.recv().await else {
                return;
            };
            oldest = Instant::now();
            oldest_urgent = R::is_urgent(&first.item).then_some(oldest);
            pending.push(first);
        }
        while pending.len() < R::MAX_ITEMS {
            match items.try_recv() {
                Ok(item) => {
                    if oldest_urgent.is_none() && R::is_urgent(&item.item) {
                        oldest_urgent = Some(Instant::now());
                    }
                    pending.push(item);
                }
                Err(_) => break,
            }
        }
        let deadline = match oldest_urgent {
            // Nobody waits for the control plane now: this call goes at once. Otherwise the
            // items wait a little for a call to come back, so a storm's items share calls.
            Some(_) if sender.in_flight() == 0 => None,
            Some(urgent) => Some(urgent + URGENT_WAIT),
            None => Some(oldest + LINGER),
        };
        if let Some(deadline) = deadline.filter(|_| pending.len() < R::MAX_ITEMS) {
            tokio::select! {
                item = items.recv() => {
                    match item {
                        Some(item) => {
                            if oldest_urgent.is_none() && R::is_urgent(&item.item) {
                                oldest_urgent = Some(Instant::now());
                            }
                            pending.push(item);
                        }
                        None => {
                            // Shutting down: what is queued still goes.
                            sender.send_now(std::mem::take(&mut pending)).await;
                            return;
                        }
                    }
                    continue;
                }
                () = sender.returned.notified() => continue,
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        oldest_urgent = None;
        sender.send_now(std::mem::take(&mut pending)).await;
    }
}

struct Sender<R: BatchRoute> {
    client: ControlPlaneClient,
    slots: Arc<Semaphore>,
    /// Told each time a call comes back.
    returned: Arc<Notify>,
    unsupported: Arc<AtomicBool>,
    batches: Arc<AtomicU64>,
    route: PhantomData<fn() -> R>,
}

impl<R: BatchRoute> Sender<R> {
    /// Calls on their way now.
    fn in_flight(&self) -> usize {
        CALLS_IN_FLIGHT - self.slots.available_permits()
    }

    /// Waits for a call slot, then sends `batch` in the background.
    async fn send_now(&self, batch: Vec<Queued<R>>) {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let client = self.client.clone();
        let unsupported = self.unsupported.clone();
        let batches = self.batches.clone();
        let returned = self.returned.clone();
        let parent = batch
            .iter()
            .find(|q| R::is_urgent(&q.item))
            .or(batch.first())
            .map_or_else(tracing::Span::none, |q| q.span.clone());
        let (items, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|q| (q.item, q.reply)).unzip();
        tokio::spawn(
            async move {
                if unsupported.load(Ordering::Relaxed) {
                    send_singly::<R>(&client, items, replies).await;
                } else {
                    match R::send_batch(&client, items).await {
                        Ok(outcomes) => {
                            batches.fetch_add(1, Ordering::Relaxed);
                            answer::<R>(replies, outcomes);
                        }
                        Err(items) => {
                            tracing::info!(
                                "the control plane has no such batch route: single calls from now on"
                            );
                            unsupported.store(true, Ordering::Relaxed);
                            send_singly::<R>(&client, items, replies).await;
                        }
                    }
                }
                drop(slot);
                returned.notify_one();
            }
            .instrument(parent),
        );
    }
}

/// Each caller its own outcome; a short answer fails the rest.
fn answer<R: BatchRoute>(
    replies: Vec<oneshot::Sender<Result<R::Outcome, CpError>>>,
    outcomes: Vec<Result<R::Outcome, CpError>>,
) {
    let mut outcomes = outcomes.into_iter();
    for reply in replies {
        let outcome = outcomes
            .next()
            .unwrap_or_else(|| Err(CpError::Unavailable("the batch answer is short".into())));
        let _ = reply.send(outcome);
    }
}

/// The single calls, for a control plane without the batch route.
async fn send_singly<R: BatchRoute>(
    client: &ControlPlaneClient,
    items: Vec<R::Item>,
    replies: Vec<oneshot::Sender<Result<R::Outcome, CpError>>>,
) {
    futures_util::future::join_all(items.into_iter().zip(replies).map(
        |(item, reply)| async move {
            let _ = reply.send(R::send_one(client, item).await);
        },
    ))
    .await;
}

/// Every item of a batch whose call failed gets the call's error.
pub(super) fn fail_all<O>(n: usize, error: &CpError) -> Vec<Result<O, CpError>> {
    (0..n).map(|_| Err(error.clone())).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::control_plane::Secret;

    /// Doubles each item in batches, or has no batch route (single calls triple it).
    struct Doubling<const BATCH_ROUTE: bool>;

    impl<const BATCH_ROUTE: bool> BatchRoute for Doubling<BATCH_ROUTE> {
        type Item = u32;
        type Outcome = u32;
        const MAX_ITEMS: usize = 8;

        fn is_urgent(item: &u32) -> bool {
            item % 2 == 0
        }

        async fn send_batch(
            _: &ControlPlaneClient,
            items: Vec<u32>,
        ) -> Result<Vec<Result<u32, CpError>>, Vec<u32>> {
            assert!(items.len() <= Self::MAX_ITEMS, "{} items", items.len());
            if !BATCH_ROUTE {
                return Err(items);
            }
            // Slow enough for the next callers to queue.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(items.into_iter().map(|i| Ok(i * 2)).collect())
        }

        async fn send_one(_: &ControlPlaneClient, item: u32) -> Result<u32, CpError> {
            Ok(item * 3)
        }
    }

    fn client() -> ControlPlaneClient {
        let url = url::Url::parse("http://127.0.0.1:9/").unwrap();
        ControlPlaneClient::new(url, Secret::new("t"), Duration::from_secs(1)).unwrap()
    }

    #[tokio::test]
    async fn callers_share_batches_and_each_gets_its_own_outcome() {
        let batcher = Arc::new(Batcher::<Doubling<true>>::start(client()));
        let calls = (0..100u32).map(|i| {
            let batcher = batcher.clone();
            async move { (i, batcher.call(i).await) }
        });
        for (i, outcome) in futures_util::future::join_all(calls).await {
            assert_eq!(outcome.unwrap(), i * 2);
        }
        let batches = batcher.batches.load(Ordering::Relaxed);
        // At most 8 items a batch: at least 13 batches; sharing: far fewer than 100.
        assert!((13..50).contains(&batches), "{batches} batches");
    }

    #[tokio::test]
    async fn without_the_batch_route_every_item_gets_its_single_call() {
        let batcher = Arc::new(Batcher::<Doubling<false>>::start(client()));
        let calls = (0..20u32).map(|i| {
            let batcher = batcher.clone();
            async move { (i, batcher.call(i).await) }
        });
        for (i, outcome) in futures_util::future::join_all(calls).await {
            assert_eq!(outcome.unwrap(), i * 3);
        }
        assert_eq!(batcher.batches.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn an_item_that_is_not_urgent_waits_for_company_about_the_linger() {
        let batcher = Batcher::<Doubling<true>>::start(client());
        let started = Instant::now();
        assert_eq!(batcher.call(7).await.unwrap(), 14);
        let waited = started.elapsed();
        // Bounded above loosely: a loaded machine may be slow to wake the task.
        assert!(
            waited >= LINGER && waited < LINGER + Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
