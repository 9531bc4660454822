//! When devices were last seen, written in batches off the validation path: a validation only
//! notes the time in memory; a task writes the notes every `HTTVPS_CP_LAST_SEEN_FLUSH_SECS` and
//! at shutdown. Last-seen is kept to the minute, so a device seen again within a minute of its
//! last written time is not noted again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uuid::Uuid;

use crate::model::Millis;
use crate::store::Store;

/// How precise last-seen is.
const PRECISION_MS: Millis = 60_000;

#[derive(Debug, Default)]
struct Notes {
    /// Seen since the last flush, not yet written.
    pending: HashMap<Uuid, Millis>,
    /// Written within the last minute (or found so in the database).
    written: HashMap<Uuid, Millis>,
}

/// The notes of one control-plane process.
#[derive(Debug, Default)]
pub struct LastSeen {
    notes: Mutex<Notes>,
}

impl LastSeen {
    fn lock(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that a device was seen at `now`. `stored` is its last-seen time in the database
    /// when the caller just read it.
    pub fn note(&self, device: Uuid, now: Millis, stored: Option<Millis>) {
        let mut notes = self.lock();
        let known = notes.written.get(&device).copied().max(stored);
        if known.is_some_and(|t| now - t < PRECISION_MS) {
            if let Some(t) = stored {
                notes.written.entry(device).or_insert(t);
            }
            return;
        }
        notes.pending.insert(device, now);
    }

    /// Writes the pending notes; returns how many devices were written. A failed write keeps
    /// the notes for the next flush.
    pub async fn flush(&self, store: &Store, now: Millis) -> crate::store::Result<usize> {
        let pending: Vec<(Uuid, Millis)> = {
            let mut notes = self.lock();
            notes.written.retain(|_, t| now - *t < PRECISION_MS);
            notes.pending.drain().collect()
        };
        if pending.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.touch_devices(&pending).await {
            let mut notes = self.lock();
            for (id, at) in pending {
                let slot = notes.pending.entry(id).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(e);
        }
        let mut notes = self.lock();
        for &(id, at) in &pending {
            notes.written.insert(id, at);
        }
        metrics::counter!("httvps_cp_last_seen_written_total").increment(pending.len() as u64);
        Ok(pending.len())
    }

    /// Flushes every `every` until shutdown, then once more.
    pub async fn run(
        &self,
        store: Store,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.flush(&store, crate::model::now_ms()).await {
                tracing::warn!(error = %e, "cannot write last-seen times; retrying at the next flush");
            }
        }
        if let Err(e) = self.flush(&store, crate::model::now_ms()).await {
            tracing::warn!(error = %e, "cannot write last-seen times at shutdown");
        }
    }
}
