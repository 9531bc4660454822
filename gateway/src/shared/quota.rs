//! Byte quotas held across gateways: every session adds its bytes to its subject's account
//! here at once (so this gateway stops at the limit without waiting), and the shared-state
//! task folds the pending bytes into the shared counter each interval, learning what the other
//! gateways used. Bytes that could not be folded (Redis down) stay pending and are folded
//! when it returns, so the shared total is reconciled, never lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use httvps_shared_state::UsageCounter;
use tokio::sync::Notify;

/// One subject's quota in one period, as this gateway knows it.
#[derive(Debug)]
pub struct QuotaAccount {
    /// The shared counter it folds into.
    pub counter: UsageCounter,
    /// Bytes allowed in the period.
    pub quota: u64,
    /// What the control plane counted at the last device check (the counter's floor).
    floor: AtomicU64,
    /// The shared total at the last fold.
    known_total: AtomicU64,
    /// Bytes relayed here and not yet folded.
    pending: AtomicU64,
    exhausted: AtomicBool,
    /// The other gateways were told (or told us). Separate from `exhausted`: a crossing seen
    /// first by this gateway's own count must still be announced by the next fold.
    announced: AtomicBool,
    /// Told when this gateway's own count crosses the quota, so the fold (and the announcement
    /// to the other gateways) happens at once rather than at the next interval.
    crossed: Arc<Notify>,
}

impl QuotaAccount {
    /// Adds relayed bytes; true once the quota is used up.
    pub fn add(&self, bytes: u64) -> bool {
        let pending = self.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if self.known_total.load(Ordering::Relaxed) + pending >= self.quota
            && !self.exhausted.swap(true, Ordering::Relaxed)
        {
            self.crossed.notify_one();
        }
        self.is_exhausted()
    }

    /// Whether the quota is used up (here or, as of the last fold, anywhere).
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// The bytes to fold now (they leave `pending`; [`Self::unfold`] puts them back).
    pub fn take_pending(&self) -> u64 {
        self.pending.swap(0, Ordering::Relaxed)
    }

    /// Folding failed: keep the bytes for the next attempt.
    pub fn unfold(&self, bytes: u64) {
        self.pending.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counter's floor.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// Records the shared total after a fold; true when the quota is used up and nobody was
    /// told yet (the caller announces it).
    pub fn folded(&self, total: u64) -> bool {
        self.known_total.fetch_max(total, Ordering::Relaxed);
        if total < self.quota {
            return false;
        }
        self.exhausted.store(true, Ordering::Relaxed);
        !self.announced.swap(true, Ordering::Relaxed)
    }

    /// Marks the quota used up because another gateway announced it.
    pub fn mark_announced(&self) {
        self.exhausted.store(true, Ordering::Relaxed);
        self.announced.store(true, Ordering::Relaxed);
    }
}

/// Quota accounts of the subjects with live sessions here.
#[derive(Debug, Default)]
pub struct QuotaLedger {
    accounts: Mutex<HashMap<UsageCounter, Arc<QuotaAccount>>>,
    crossed: Arc<Notify>,
}

impl QuotaLedger {
    /// The account for `counter`, created or refreshed with the control plane's latest figures.
    pub fn account(&self, counter: UsageCounter, quota: u64, used: u64) -> Arc<QuotaAccount> {
        let mut accounts = self.lock();
        let account = accounts
            .entry(counter.clone())
            .or_insert_with(|| {
                Arc::new(QuotaAccount {
                    counter,
                    quota,
                    floor: AtomicU64::new(used),
                    known_total: AtomicU64::new(used),
                    pending: AtomicU64::new(0),
                    exhausted: AtomicBool::new(used >= quota),
                    announced: AtomicBool::new(false),
                    crossed: self.crossed.clone(),
                })
            })
            .clone();
        account.floor.fetch_max(used, Ordering::Relaxed);
        account.known_total.fetch_max(used, Ordering::Relaxed);
        if used >= account.quota {
            // The control plane already counts it used up: refusals follow, no announcement.
            account.exhausted.store(true, Ordering::Relaxed);
        }
        account
    }

    /// Resolves when an account's own count crossed its quota since the last call.
    pub async fn crossed(&self) {
        self.crossed.notified().await;
    }

    /// Accounts with bytes to fold; drops accounts no session holds and nothing is pending.
    pub fn to_fold(&self) -> Vec<Arc<QuotaAccount>> {
        let mut accounts = self.lock();
        accounts.retain(|_, a| Arc::strong_count(a) > 1 || a.pending.load(Ordering::Relaxed) > 0);
        accounts
            .values()
            .filter(|a| a.pending.load(Ordering::Relaxed) > 0)
            .cloned()
            .collect()
    }

    /// Starts every account of `subject` afresh (an operator reset its usage): the shared
    /// counter was set to the control plane's new count, which the next fold reads. Bytes
    /// pending here stay and count in the new start.
    pub fn reset_subject(&self, subject: &str) {
        for account in self
            .lock()
            .values()
            .filter(|a| a.counter.subject == subject)
        {
            account.floor.store(0, Ordering::Relaxed);
            account.known_total.store(0, Ordering::Relaxed);
            account.exhausted.store(false, Ordering::Relaxed);
            account.announced.store(false, Ordering::Relaxed);
        }
    }

    /// Marks every account of `subject` used up, as announced by another gateway.
    pub fn exhaust_subject(&self, subject: &str) {
        for account in self
            .lock()
            .values()
            .filter(|a| a.counter.subject == subject)
        {
            account.mark_announced();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UsageCounter, Arc<QuotaAccount>>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> UsageCounter {
        UsageCounter {
            subject: "u1".into(),
            period_end_ms: Some(1),
        }
    }

    #[test]
    fn local_bytes_stop_at_the_quota_before_any_fold() {
        let ledger = QuotaLedger::default();
        let account = ledger.account(counter(), 1000, 900);
        assert!(!account.add(50));
        assert!(account.add(50), "900 + 100 reaches 1000");
    }

    #[test]
    fn folds_learn_other_gateways_and_announce_once() {
        let ledger = QuotaLedger::default();
        let account = ledger.account(counter(), 1000, 0);
        account.add(10);
        let folding = ledger.to_fold();
        assert_eq!(folding.len(), 1);
        assert_eq!(folding[0].take_pending(), 10);
        // Another gateway used the rest.
        assert!(folding[0].folded(1000));
        assert!(!folding[0].folded(1200), "announced once");
        assert!(account.is_exhausted());
    }

    #[test]
    fn a_crossing_seen_first_locally_is_still_announced_by_the_fold() {
        let ledger = QuotaLedger::default();
        let account = ledger.account(counter(), 1000, 900);
        assert!(account.add(200), "this gateway stops at once");
        let pending = account.take_pending();
        assert!(account.folded(900 + pending), "the others must hear of it");
        assert!(!account.folded(1200));
        let other = ledger.account(
            UsageCounter {
                subject: "u2".into(),
                period_end_ms: Some(1),
            },
            1000,
            0,
        );
        ledger.exhaust_subject("u2");
        assert!(other.is_exhausted());
        assert!(!other.folded(1000), "announced elsewhere: not again");
    }

    #[test]
    fn unfolded_bytes_wait_for_the_next_fold_and_idle_accounts_go() {
        let ledger = QuotaLedger::default();
        let account = ledger.account(counter(), 1000, 0);
        account.add(10);
        let bytes = account.take_pending();
        account.unfold(bytes);
        assert_eq!(ledger.to_fold().len(), 1);
        assert_eq!(account.take_pending(), 10);
        drop(account);
        assert!(ledger.to_fold().is_empty());
        assert!(
            ledger.lock().is_empty(),
            "no session, nothing pending: forgotten"
        );
    }
}
