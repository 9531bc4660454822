//! State shared with the other gateways (docs/shared-state.md): session limits, resume tokens,
//! revocations, quotas, node load and the registry, over one [`SessionStore`] (Redis with
//! `--redis-url`, in process otherwise).
//!
//! - [`command`]: what a session is told from outside its connection.
//! - [`directory`]: this gateway's live sessions, so events reach the ones they name;
//!   [`mailbox`]: the queue of commands each of them holds.
//! - [`quota`]: per-subject byte accounts folded into the shared counters.
//! - [`load`]: live streams per node, this gateway's share of the global load.
//! - `upkeep`: the background loop (events, folds, renewals, reconciliation).
//!
//! When Redis is unreachable nothing established is touched: admissions follow
//! `--redis-down-policy` against this gateway's own counts ([`InProcessStore`] `local`), bytes
//! stay pending in the quota accounts, and once Redis answers again the live sessions' leases
//! and resume tokens are written back and the pending bytes folded in (reconciliation).

pub mod command;
pub mod directory;
pub mod load;
pub mod mailbox;
pub mod quota;
mod upkeep;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use httvps_shared_state::{
    Admission, AdmitOutcome, GatewayInfo, InProcessStore, LimitScope, RedisStore, ResumeRecord,
    RevocationTarget, SessionLease, SessionOwner, SessionStore, SharedEvent, StoreError,
    UsageCounter,
};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::authority::DeviceAuthority;
use crate::config::RedisDownPolicy;
use crate::metrics as m;
use crate::stats::GatewayStats;
use crate::throttled_log::ThrottledWarning;
use crate::{GatewayConfig, GatewayError};
use directory::SessionDirectory;
use load::NodeLoadCounter;
use quota::{QuotaAccount, QuotaLedger};

/// Bytes of a resume token.
pub const RESUME_TOKEN_LEN: usize = 32;
/// How long a usage counter outlives its period (late folds still land in it).
const USAGE_COUNTER_GRACE: Duration = Duration::from_secs(86_400);
/// Shortest time between two warnings that Redis operations fail.
const STORE_WARNING_INTERVAL: Duration = Duration::from_secs(30);
/// Lifetime of a counter for a quota that never resets.
const USAGE_COUNTER_NO_PERIOD: Duration = Duration::from_secs(40 * 86_400);

/// Why a session was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitError {
    /// A limit is reached.
    Limit {
        /// Which.
        scope: LimitScope,
        /// Sessions holding it.
        active: u32,
    },
    /// Redis is unreachable and the policy is `refuse`.
    Unavailable,
}

/// How a session's connection ended, for what happens to its slot and resume token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Lost, drained or timed out: the slot is freed, the token stays usable for
    /// `--resume-ttl` so the client can come back as the same session.
    Resumable,
    /// Revoked, expired, killed, over quota, or closed by the client: slot and token go.
    Final,
    /// Resumed on a newer connection: slot and token belong to that one now.
    Superseded,
}

/// A session's resume token and what it stands for, kept while the session lives so the
/// token's TTL can be refreshed (and the record dropped when the session ends for good).
#[derive(Debug, Clone)]
struct IssuedResume {
    hash: String,
    record: ResumeRecord,
}

/// This gateway's side of the shared state.
#[derive(Debug)]
pub struct SharedState {
    store: Arc<dyn SessionStore>,
    /// This gateway's own session counts and tokens: the fallback while `store` is unreachable.
    local: InProcessStore,
    distributed: bool,
    policy: RedisDownPolicy,
    gateway_id: String,
    lease: Duration,
    resume_ttl: Duration,
    device_limit: Option<u32>,
    interval: Duration,
    started_at_ms: i64,
    resumes: Mutex<HashMap<String, IssuedResume>>,
    /// The warning about failing Redis operations, at most every [`STORE_WARNING_INTERVAL`].
    store_warning: ThrottledWarning,
    /// Told to forget a user's devices when its usage is reset.
    authority: Option<Arc<dyn DeviceAuthority>>,
    /// Live sessions, for events.
    pub directory: SessionDirectory,
    /// Quota accounts.
    pub quotas: QuotaLedger,
    /// Live streams per node.
    pub loads: Arc<NodeLoadCounter>,
}

/// Unix time in ms.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Hex SHA-256 of a secret, the form in which tokens are stored.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SharedState {
    /// The shared state the configuration asks for: Redis with `--redis-url`, else in process.
    pub fn from_config(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let (store, distributed): (Arc<dyn SessionStore>, bool) = match &config.redis_url {
            Some(url) => (
                Arc::new(
                    RedisStore::open(url, &config.redis_prefix, config.redis_timeout)
                        .map_err(|e| GatewayError::Config(e.to_string()))?,
                ),
                true,
            ),
            None => (Arc::new(InProcessStore::new()), false),
        };
        let gateway_id = config
            .gateway_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Ok(SharedState {
            store,
            local: InProcessStore::new(),
            distributed,
            policy: config.redis_down_policy,
            gateway_id,
            lease: config.session_lease,
            resume_ttl: config.resume_ttl,
            device_limit: (config.device_session_limit > 0).then_some(config.device_session_limit),
            interval: config.shared_state_interval,
            started_at_ms: unix_ms(),
            resumes: Mutex::new(HashMap::new()),
            store_warning: ThrottledWarning::new(STORE_WARNING_INTERVAL),
            authority: None,
            directory: SessionDirectory::default(),
            quotas: QuotaLedger::default(),
            loads: Arc::new(NodeLoadCounter::default()),
        })
    }

    /// The device authority whose cached answers a usage reset or a device revocation
    /// (token rotation included) invalidates.
    pub fn with_authority(mut self, authority: Arc<dyn DeviceAuthority>) -> Self {
        self.authority = Some(authority);
        self
    }

    /// This gateway's id.
    pub fn gateway_id(&self) -> &str {
        &self.gateway_id
    }

    fn failed(&self, op: &'static str, e: &StoreError) {
        metrics::counter!(m::REDIS_ERRORS_TOTAL, "op" => op).increment(1);
        tracing::debug!(op, error = %e, "shared state operation failed");
        if let Some(failures) = self.store_warning.occurred(Instant::now()) {
            tracing::warn!(op, error = %e, failures, "shared state (Redis) operations are failing; this gateway falls back to its own counts (logged at most every 30 s, with the failures since the last line)");
        }
    }

    /// Counts a new (or resumed) session against its device's and its plan's limits.
    pub async fn admit(
        &self,
        owner: &SessionOwner,
        session_id: &str,
        user_limit: Option<u32>,
    ) -> Result<(), AdmitError> {
        let admission = Admission {
            owner,
            session_id,
            device_limit: self.device_limit,
            user_limit,
            lease: self.lease,
        };
        let outcome = match self.store.admit(admission.clone()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.failed("admit", &e);
                match self.policy {
                    RedisDownPolicy::Refuse => return Err(AdmitError::Unavailable),
                    RedisDownPolicy::Local => {
                        metrics::counter!(m::LOCAL_ADMISSIONS_TOTAL).increment(1);
                        self.local
                            .admit(admission)
                            .await
                            .unwrap_or(AdmitOutcome::Admitted)
                    }
                }
            }
        };
        match outcome {
            AdmitOutcome::Admitted => {
                if self.distributed {
                    // Keep this gateway's own record complete for an outage later.
                    let lease = SessionLease {
                        owner: owner.clone(),
                        session_id: session_id.to_owned(),
                    };
                    let _ = self.local.renew(&[lease], self.lease).await;
                }
                Ok(())
            }
            AdmitOutcome::Refused { scope, active } => Err(AdmitError::Limit { scope, active }),
        }
    }

    /// Stops counting a session whose connection ended (see [`SessionEnd`]). `resume_hash`
    /// is the hash of the token this connection issued.
    pub async fn release(&self, lease: &SessionLease, resume_hash: &str, end: SessionEnd) {
        {
            let mut resumes = self.lock_resumes();
            if resumes
                .get(&lease.session_id)
                .is_some_and(|i| i.hash == resume_hash)
            {
                resumes.remove(&lease.session_id);
            }
        }
        if end == SessionEnd::Superseded {
            // The same session id lives on in a newer connection: its slot and token stay.
            return;
        }
        if self.distributed {
            let _ = self.local.release(lease).await;
        }
        if let Err(e) = self.store.release(lease).await {
            // The lease expires by itself.
            self.failed("release", &e);
        }
        if end == SessionEnd::Final {
            let _ = self.local.drop_resume(resume_hash).await;
            if let Err(e) = self.store.drop_resume(resume_hash).await {
                self.failed("drop_resume", &e);
            }
        }
    }

    /// Issues a resume token for a session: stored by hash (never the token itself). Returns
    /// the token and its hash.
    pub async fn issue_resume(&self, record: ResumeRecord) -> ([u8; RESUME_TOKEN_LEN], String) {
        let token: [u8; RESUME_TOKEN_LEN] = rand::random();
        let hash = sha256_hex(&token);
        if let Err(e) = self.store.put_resume(&hash, &record, self.resume_ttl).await {
            self.failed("put_resume", &e);
        }
        if self.distributed {
            let _ = self.local.put_resume(&hash, &record, self.resume_ttl).await;
        }
        self.lock_resumes().insert(
            record.session_id.clone(),
            IssuedResume {
                hash: hash.clone(),
                record,
            },
        );
        (token, hash)
    }

    /// Takes the record a resume token stands for (single use), if it is known and live.
    pub async fn take_resume(&self, token: &[u8]) -> Option<ResumeRecord> {
        let hash = sha256_hex(token);
        let local = if self.distributed {
            self.local.take_resume(&hash).await.ok().flatten()
        } else {
            None
        };
        match self.store.take_resume(&hash).await {
            Ok(found) => found,
            Err(e) => {
                self.failed("take_resume", &e);
                local
            }
        }
    }

    /// Whether the device or its user was revoked recently. `Err`: cannot tell (the caller
    /// falls back to a full check).
    pub async fn is_revoked(&self, device_id: &str, user_id: Option<&str>) -> Result<bool, ()> {
        self.store
            .is_revoked(device_id, user_id)
            .await
            .map_err(|e| {
                self.failed("is_revoked", &e);
            })
    }

    /// Tells the other gateways a session now lives here (its old connection ends).
    pub async fn announce_resume(&self, session_id: &str) {
        let event = SharedEvent::SessionResumed {
            session_id: session_id.to_owned(),
            gateway_id: self.gateway_id.clone(),
        };
        if let Err(e) = self.store.publish(&event).await {
            self.failed("publish", &e);
        }
    }

    fn lock_resumes(&self) -> std::sync::MutexGuard<'_, HashMap<String, IssuedResume>> {
        self.resumes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The quota account of a session being admitted, checked against the shared counter: a
    /// count in a cached allow may be minutes old, the counter has every gateway's bytes up to
    /// the last fold. An account used up there is returned exhausted (the HELLO is refused).
    /// While the store is unreachable the allow's count decides.
    pub async fn open_quota(
        &self,
        counter: UsageCounter,
        quota: u64,
        used: u64,
    ) -> Arc<QuotaAccount> {
        let account = self.quotas.account(counter, quota, used);
        // Redis just failed the admission: do not wait on it twice.
        if account.is_exhausted() || !self.store.is_available() {
            return account;
        }
        let ttl = usage_counter_ttl(&account.counter);
        match self
            .store
            .add_usage(&account.counter, account.floor(), 0, ttl)
            .await
        {
            Ok(total) => self.learned_total(&account, total).await,
            Err(e) => self.failed("add_usage", &e),
        }
        account
    }

    /// Records the shared total of an account; announces the quota used up if nobody has yet.
    async fn learned_total(&self, account: &QuotaAccount, total: u64) {
        if account.folded(total) {
            let subject = account.counter.subject.clone();
            tracing::info!(subject = %subject, total, quota = account.quota, "byte quota used up across gateways");
            let event = SharedEvent::QuotaExceeded { user_id: subject };
            // Locally at once; the other gateways through the store.
            self.on_event(&event);
            if self.distributed {
                if let Err(e) = self.store.publish(&event).await {
                    self.failed("publish", &e);
                }
            }
        }
    }

    /// Folds every account's pending bytes into the shared counters; announces quotas that
    /// this fold used up.
    async fn fold_usage(&self) {
        for account in self.quotas.to_fold() {
            let delta = account.take_pending();
            let ttl = usage_counter_ttl(&account.counter);
            match self
                .store
                .add_usage(&account.counter, account.floor(), delta, ttl)
                .await
            {
                Ok(total) => self.learned_total(&account, total).await,
                Err(e) => {
                    self.failed("add_usage", &e);
                    account.unfold(delta);
                    // One failure says Redis is away; the rest wait for the next tick.
                    break;
                }
            }
        }
    }
}

/// How long a usage counter lives: its period and a grace day, or [`USAGE_COUNTER_NO_PERIOD`].
pub fn usage_counter_ttl(counter: &UsageCounter) -> Duration {
    counter
        .period_end_ms
        .map_or(USAGE_COUNTER_NO_PERIOD, |end| {
            Duration::from_millis(u64::try_from(end - unix_ms()).unwrap_or(0)) + USAGE_COUNTER_GRACE
        })
}
