//! Usage accounting: bytes each way per session and node, batched into reports with unique ids
//! and delivered to the control plane exactly once.
//!
//! Sessions add to their [`SessionUsage`] counters; the [`UsageReporter`] task collects every
//! session's counters each interval (and at once when a session ends) into a report with a
//! fresh UUID `report_id`. Reports are sent oldest first; a failed send is retried with the SAME
//! id and backoff, so the control plane's ledger (unique on gateway + report id) counts it once
//! even if an earlier attempt did land. New counts merge into the newest report only while that
//! report was never sent, so an outage grows the queue by merged records, not by one report per
//! interval. The queue is bounded; overflow drops the oldest report with an error log and the
//! [`crate::metrics::USAGE_BYTES_DROPPED_TOTAL`] metric. [`UsageReporter::flush`] sends
//! everything before the gateway exits.
//!
//! With a spool ([`crate::usage_spool`], `--usage-spool`) the counts are collected every
//! [`SPOOL_INTERVAL`] and the unsent queue is written to disk, so a crash loses at most that
//! interval's counts: the next start replays the spooled reports with their ids.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::control_plane::{ControlPlaneClient, UsageRecord, UsageReport};
use crate::metrics as m;
use crate::shared::unix_ms;
use crate::usage_spool::UsageSpool;

mod session;

pub use self::session::SessionUsage;

/// Records per report at most (the control plane's limit).
const MAX_RECORDS: usize = httvps_contract::limits::MAX_USAGE_RECORDS;
/// Retry delays after failed sends: from 500 ms, doubling up to 30 s, for as long as it takes.
const RETRY_SCHEDULE: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_max_delay(Duration::from_secs(30))
    .without_max_times();
/// How often counts are collected and spooled, with a spool: what a crash may lose.
pub const SPOOL_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of the reporter.
#[derive(Debug, Default)]
pub struct UsageStats {
    /// Reports the control plane accepted.
    pub reports_sent: AtomicU64,
    /// Send attempts that failed (and will be retried).
    pub send_failures: AtomicU64,
    /// Bytes (up + down) in accepted reports.
    pub bytes_reported: AtomicU64,
    /// Bytes given up on.
    pub bytes_dropped: AtomicU64,
}

#[derive(Debug)]
struct Pending {
    report: UsageReport,
    attempts: u32,
}

#[derive(Debug)]
struct Inner {
    client: Arc<ControlPlaneClient>,
    interval: Duration,
    max_queue: usize,
    sessions: Mutex<HashMap<u64, Arc<SessionUsage>>>,
    next_key: AtomicU64,
    queue: Mutex<VecDeque<Pending>>,
    /// One sender at a time (the loop or the final flush), so reports stay in order.
    sending: tokio::sync::Mutex<()>,
    wake: Notify,
    stats: UsageStats,
    spool: Option<Arc<UsageSpool>>,
    /// One spool writer at a time.
    spooling: tokio::sync::Mutex<()>,
    /// Changes of the queue so far, and how many of them the spool holds.
    changes: AtomicU64,
    spooled: AtomicU64,
}

/// Batches usage into idempotent reports and delivers them.
#[derive(Clone, Debug)]
pub struct UsageReporter {
    inner: Arc<Inner>,
}

fn bytes_of(report: &UsageReport) -> u64 {
    report
        .records
        .iter()
        .map(|r| r.bytes_up + r.bytes_down)
        .sum()
}

impl UsageReporter {
    /// A reporter sending through `client` every `interval`, keeping at most `max_queue`
    /// unsent reports.
    pub fn new(client: Arc<ControlPlaneClient>, interval: Duration, max_queue: usize) -> Self {
        Self::build(client, interval, max_queue, None, Vec::new())
    }

    /// [`Self::new`] with a spool at `path`: the reports a previous process left there are
    /// queued again (with their ids), and the queue is spooled from now on.
    pub fn with_spool(
        client: Arc<ControlPlaneClient>,
        interval: Duration,
        max_queue: usize,
        path: &std::path::Path,
    ) -> std::io::Result<Self> {
        let (spool, left) = UsageSpool::open(path)?;
        if !left.is_empty() {
            let bytes: u64 = left.iter().map(bytes_of).sum();
            tracing::info!(spool = %path.display(), reports = left.len(), bytes,
                "replaying usage a previous gateway process did not report");
        }
        Ok(Self::build(
            client,
            interval,
            max_queue,
            Some(Arc::new(spool)),
            left,
        ))
    }

    fn build(
        client: Arc<ControlPlaneClient>,
        interval: Duration,
        max_queue: usize,
        spool: Option<Arc<UsageSpool>>,
        replay: Vec<UsageReport>,
    ) -> Self {
        // Replayed reports may have been sent before: never merge into them (attempts > 0).
        let queue = replay
            .into_iter()
            .map(|report| Pending {
                report,
                attempts: 1,
            })
            .collect();
        UsageReporter {
            inner: Arc::new(Inner {
                client,
                interval,
                max_queue: max_queue.max(1),
                sessions: Mutex::new(HashMap::new()),
                next_key: AtomicU64::new(0),
                queue: Mutex::new(queue),
                sending: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                stats: UsageStats::default(),
                spool,
                spooling: tokio::sync::Mutex::new(()),
                changes: AtomicU64::new(0),
                spooled: AtomicU64::new(0),
            }),
        }
    }

    /// Writes the unsent queue to the spool if it changed since the last write.
    async fn persist(&self) {
        let Some(spool) = self.inner.spool.clone() else {
            return;
        };
        let _one_writer = self.inner.spooling.lock().await;
        let version = self.inner.changes.load(Ordering::Acquire);
        if self.inner.spooled.load(Ordering::Acquire) == version {
            return;
        }
        let reports: Vec<UsageReport> = self
            .inner
            .queue
            .lock()
            .map(|q| q.iter().map(|p| p.report.clone()).collect())
            .unwrap_or_default();
        match tokio::task::spawn_blocking(move || spool.save(&reports)).await {
            Ok(Ok(())) => self.inner.spooled.store(version, Ordering::Release),
            Ok(Err(e)) => {
                metrics::counter!(m::USAGE_SPOOL_ERRORS_TOTAL).increment(1);
                tracing::warn!(error = %e, "writing the usage spool failed; retrying next interval");
            }
            Err(e) => tracing::warn!(error = %e, "the usage spool writer failed"),
        }
    }

    fn changed(&self) {
        self.inner.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The reporter's counters.
    pub fn stats(&self) -> &UsageStats {
        &self.inner.stats
    }

    /// Reports not yet accepted.
    pub fn queued(&self) -> usize {
        self.inner.queue.lock().map_or(0, |q| q.len())
    }

    /// Starts counting a session. `device_id` must be the control plane's device UUID;
    /// `None` when it is not one (nothing can be reported for it).
    pub fn register(&self, session_id: Option<Uuid>, device_id: &str) -> Option<Arc<SessionUsage>> {
        let device_id = Uuid::parse_str(device_id).ok()?;
        let usage = Arc::new(SessionUsage {
            key: self.inner.next_key.fetch_add(1, Ordering::Relaxed),
            session_id,
            device_id,
            counters: Mutex::new(HashMap::new()),
        });
        if let Ok(mut s) = self.inner.sessions.lock() {
            s.insert(usage.key, usage.clone());
        }
        Some(usage)
    }

    /// The session ended: its last counts are queued and sent soon.
    pub fn session_ended(&self, usage: &SessionUsage) {
        if let Ok(mut s) = self.inner.sessions.lock() {
            s.remove(&usage.key);
        }
        let mut records = Vec::new();
        usage.drain(now_ms(), &mut records);
        self.enqueue(records);
        self.inner.wake.notify_one();
    }

    /// Moves every live session's counts into the queue.
    fn collect(&self) {
        let sessions: Vec<Arc<SessionUsage>> = self
            .inner
            .sessions
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        let at = now_ms();
        let mut records = Vec::new();
        for s in sessions {
            s.drain(at, &mut records);
        }
        self.enqueue(records);
    }

    fn enqueue(&self, records: Vec<UsageRecord>) {
        if records.is_empty() {
            return;
        }
        let Ok(mut queue) = self.inner.queue.lock() else {
            return;
        };
        self.changed();
        for record in records {
            // Merge into the newest report while it was never sent: same key, summed bytes.
            let target = match queue.back_mut() {
                Some(p) if p.attempts == 0 => Some(p),
                _ => None,
            };
            if let Some(p) = target {
                if let Some(r) = p.report.records.iter_mut().find(|r| {
                    r.session_id == record.session_id
                        && r.device_id == record.device_id
                        && r.node_id == record.node_id
                }) {
                    r.bytes_up += record.bytes_up;
                    r.bytes_down += record.bytes_down;
                    r.at = r.at.max(record.at);
                    continue;
                }
                if p.report.records.len() < MAX_RECORDS {
                    p.report.records.push(record);
                    continue;
                }
            }
            queue.push_back(Pending {
                report: UsageReport {
                    report_id: Uuid::new_v4().to_string(),
                    records: vec![record],
                },
                attempts: 0,
            });
            while queue.len() > self.inner.max_queue {
                if let Some(dropped) = queue.pop_front() {
                    let bytes = bytes_of(&dropped.report);
                    self.inner
                        .stats
                        .bytes_dropped
                        .fetch_add(bytes, Ordering::Relaxed);
                    metrics::counter!(m::USAGE_BYTES_DROPPED_TOTAL).increment(bytes);
                    tracing::error!(
                        report_id = %dropped.report.report_id,
                        bytes,
                        "usage queue full: dropping the oldest unsent report"
                    );
                }
            }
        }
        metrics::gauge!(m::USAGE_REPORTS_QUEUED).set(queue.len() as f64);
    }

    /// Sends queued reports oldest first until the queue is empty or a send fails.
    async fn send_queued(&self) -> Result<(), ()> {
        let _one_sender = self.inner.sending.lock().await;
        loop {
            let next = {
                let Ok(mut queue) = self.inner.queue.lock() else {
                    return Err(());
                };
                match queue.front_mut() {
                    Some(p) => {
                        p.attempts += 1;
                        p.report.clone()
                    }
                    None => return Ok(()),
                }
            };
            let result = self.inner.client.report_usage(&next).await;
            let remove = match &result {
                Ok(()) => {
                    let bytes = bytes_of(&next);
                    self.inner
                        .stats
                        .reports_sent
                        .fetch_add(1, Ordering::Relaxed);
                    self.inner
                        .stats
                        .bytes_reported
                        .fetch_add(bytes, Ordering::Relaxed);
                    metrics::counter!(m::USAGE_REPORTS_TOTAL, "result" => "sent").increment(1);
                    true
                }
                Err(e) if !e.is_retryable() => {
                    // It can never succeed (a record the control plane rejects): keep the
                    // queue moving and say so loudly.
                    let bytes = bytes_of(&next);
                    self.inner
                        .stats
                        .bytes_dropped
                        .fetch_add(bytes, Ordering::Relaxed);
                    metrics::counter!(m::USAGE_REPORTS_TOTAL, "result" => "rejected").increment(1);
                    metrics::counter!(m::USAGE_BYTES_DROPPED_TOTAL).increment(bytes);
                    tracing::error!(report_id = %next.report_id, bytes, error = %e, "usage report rejected");
                    true
                }
                Err(e) => {
                    self.inner
                        .stats
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::USAGE_REPORTS_TOTAL, "result" => "failed").increment(1);
                    tracing::warn!(report_id = %next.report_id, error = %e, "usage report failed; will retry with the same id");
                    false
                }
            };
            if !remove {
                return Err(());
            }
            if let Ok(mut queue) = self.inner.queue.lock() {
                if queue
                    .front()
                    .is_some_and(|p| p.report.report_id == next.report_id)
                {
                    queue.pop_front();
                    self.changed();
                }
                metrics::gauge!(m::USAGE_REPORTS_QUEUED).set(queue.len() as f64);
            }
        }
    }

    /// The reporting loop; returns when `stop` is cancelled (then call [`Self::flush`]).
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = RETRY_SCHEDULE.build();
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut send_at = tokio::time::Instant::now() + self.inner.interval;
        // Replayed reports go out at once.
        let mut woken = self.queued() > 0;
        loop {
            if !woken {
                let mut wake_at = retry_at.map_or(send_at, |r| r.min(send_at));
                if self.inner.spool.is_some() {
                    wake_at = wake_at.min(tokio::time::Instant::now() + SPOOL_INTERVAL);
                }
                woken = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(wake_at) => false,
                    _ = self.inner.wake.notified() => true,
                };
            }
            self.collect();
            self.persist().await;
            let now = tokio::time::Instant::now();
            let due = std::mem::take(&mut woken) || now >= send_at || retry_at.is_some();
            if !due || retry_at.is_some_and(|r| now < r) {
                continue;
            }
            send_at = now + self.inner.interval;
            let sent = self.send_queued().await;
            self.persist().await;
            match sent {
                Ok(()) => {
                    backoff = RETRY_SCHEDULE.build();
                    retry_at = None;
                }
                Err(()) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    retry_at = Some(tokio::time::Instant::now() + delay);
                }
            }
        }
    }

    /// Collects every count and sends everything queued, retrying until `within` has passed.
    /// Returns the bytes that could not be delivered (logged as an error).
    pub async fn flush(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        self.collect();
        loop {
            let attempt = tokio::time::timeout_at(
                tokio::time::Instant::from_std(deadline),
                self.send_queued(),
            )
            .await;
            if matches!(attempt, Ok(Ok(()))) {
                return 0;
            }
            if Instant::now() + Duration::from_millis(250) >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.persist().await;
        let left: u64 = self
            .inner
            .queue
            .lock()
            .map(|q| q.iter().map(|p| bytes_of(&p.report)).sum())
            .unwrap_or(0);
        let spooled = self.inner.spooled.load(Ordering::Acquire)
            == self.inner.changes.load(Ordering::Acquire);
        if left > 0 && self.inner.spool.is_some() && spooled {
            tracing::warn!(
                bytes = left,
                "usage not delivered before exit is kept in the spool and sent at the next start"
            );
        } else if left > 0 {
            self.inner
                .stats
                .bytes_dropped
                .fetch_add(left, Ordering::Relaxed);
            metrics::counter!(m::USAGE_BYTES_DROPPED_TOTAL).increment(left);
            tracing::error!(bytes = left, "usage could not be delivered before exit");
        }
        left
    }
}

/// Now in Unix ms; never zero, as a record's time must be positive.
fn now_ms() -> i64 {
    unix_ms().max(1)
}

#[cfg(test)]
mod tests;
