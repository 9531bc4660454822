//! One leader for the periodic work across control-plane replicas. Every replica runs a
//! [`Leadership`] task that tries to take or renew one lease in the database (`job_leases`,
//! see `store::lease`) every third of its lifetime; the holder runs the health checks and the
//! maintenance rounds, the others wait. A replica counts itself leader only until the lease it
//! last renewed would run out (measured from before the renewal was sent), so when renewals
//! fail (database unreachable) it stops before another can take over. A replica that dies stops
//! renewing and another takes over within one lease; a clean stop gives the lease up at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::store::Store;

/// The name of the lease of the periodic work.
pub const LEASE: &str = "periodic-work";

/// Whether this replica leads now; cheap to clone and ask.
#[derive(Clone, Debug)]
pub struct Leadership {
    holder: Arc<str>,
    /// Until when the lease this replica last took is certainly still its own.
    until: Arc<Mutex<Option<Instant>>>,
}

impl Leadership {
    /// This replica's name in the lease: process id and a random part (unique per start).
    pub fn new() -> Leadership {
        let holder = format!(
            "pid {} {}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..12]
        );
        Leadership {
            holder: holder.into(),
            until: Arc::new(Mutex::new(None)),
        }
    }

    /// The name this replica holds the lease under.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether this replica holds the lease now.
    pub fn is_leader(&self) -> bool {
        self.deadline().is_some_and(|until| Instant::now() < until)
    }

    fn deadline(&self) -> Option<Instant> {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_deadline(&self, until: Option<Instant>) {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }

    /// Takes and renews the lease every `lease / 3` until `shutdown`, then gives it up.
    pub fn spawn(
        &self,
        store: Store,
        lease: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let me = self.clone();
        let ttl_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let renew_every = (lease / 3).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut was_leader = false;
            loop {
                let sent = Instant::now();
                match store.acquire_lease(LEASE, &me.holder, ttl_ms).await {
                    Ok(true) => me.set_deadline(Some(sent + lease)),
                    Ok(false) => me.set_deadline(None),
                    // Keep leading only while the last lease certainly holds.
                    Err(e) => tracing::warn!(error = %e, "cannot renew the leader lease"),
                }
                let leading = me.is_leader();
                if leading != was_leader {
                    if leading {
                        tracing::info!(holder = %me.holder, "leading the periodic work");
                    } else {
                        tracing::info!(holder = %me.holder, "another replica leads the periodic work");
                    }
                    was_leader = leading;
                }
                metrics::gauge!("httvps_cp_leader").set(if leading { 1.0 } else { 0.0 });
                tokio::select! {
                    _ = tokio::time::sleep(renew_every) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
            if me.is_leader() {
                me.set_deadline(None);
                if let Err(e) = store.release_lease(LEASE, &me.holder).await {
                    tracing::warn!(error = %e, "cannot give up the leader lease");
                }
            }
            metrics::gauge!("httvps_cp_leader").set(0.0);
        })
    }
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership::new()
    }
}
