//! The [`SessionStore`] interface every implementation serves, and its error type.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::model::{
    Admission, AdmitOutcome, GatewayInfo, NodeLoads, ResumeRecord, RevocationTarget, SessionLease,
    SharedEvent, UsageCounter,
};

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached in time (Redis down, network cut, timeout).
    #[error("shared store unavailable: {0}")]
    Unavailable(String),
    /// The store's settings are wrong (e.g. an unparsable `REDIS_URL`).
    #[error("shared store misconfigured: {0}")]
    InvalidConfig(String),
    /// The store answered with something this version cannot read.
    #[error("shared store returned unreadable data: {0}")]
    Corrupt(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

// Each backend (`memory.rs`, `redis_store/`) implements every method with these signatures; the
// repeated signatures are the trait's, the bodies share nothing.
/// State shared by every gateway (and read by the control plane). Every operation is atomic on
/// its own; the contract tests in `tests/contract.rs` pin the semantics both implementations
/// share.
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// Counts a live session against its device's and its user's limits, atomically: two
    /// gateways admitting at once never both exceed a limit.
    fn admit<'a>(&'a self, admission: Admission<'a>) -> BoxFuture<'a, StoreResult<AdmitOutcome>>;

    /// Renews the leases of live sessions, re-counting any the store lost (after an outage)
    /// whatever the limits: they are already running.
    fn renew<'a>(
        &'a self,
        sessions: &'a [SessionLease],
        lease: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Stops counting a session.
    fn release<'a>(&'a self, session: &'a SessionLease) -> BoxFuture<'a, StoreResult<()>>;

    /// Live sessions counted for a device and for its user.
    fn live_sessions<'a>(
        &'a self,
        owner: &'a crate::SessionOwner,
    ) -> BoxFuture<'a, StoreResult<(u32, u32)>>;

    /// Ids of the user's sessions whose slots are live (not expired), across all its devices
    /// (`owner.user_id`; the device itself without one).
    fn live_session_ids<'a>(
        &'a self,
        owner: &'a crate::SessionOwner,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>>;

    /// Stores a resume token's record (by the token's hash) for `ttl`.
    fn put_resume<'a>(
        &'a self,
        token_hash: &'a str,
        record: &'a ResumeRecord,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Takes a resume record: it can be used once.
    fn take_resume<'a>(
        &'a self,
        token_hash: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<ResumeRecord>>>;

    /// Forgets a resume token (its session ended for good).
    fn drop_resume<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// Remembers a revocation for `ttl` (at least the resume-token lifetime), so no resume
    /// passes it, and publishes [`SharedEvent::Revoked`].
    fn revoke<'a>(
        &'a self,
        target: &'a RevocationTarget,
        reason: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Whether the device or its user was revoked within the remembered period.
    fn is_revoked<'a>(
        &'a self,
        device_id: &'a str,
        user_id: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// The device's sticky node.
    fn sticky_node<'a>(&'a self, device_id: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>>;

    /// Sets the device's sticky node for `ttl`.
    fn set_sticky_node<'a>(
        &'a self,
        device_id: &'a str,
        node_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Replaces this gateway's share of the live load (streams per node) for `ttl`.
    fn publish_load<'a>(
        &'a self,
        gateway_id: &'a str,
        loads: &'a NodeLoads,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Live streams per node summed over every gateway whose share has not expired.
    fn node_loads(&self) -> BoxFuture<'_, StoreResult<NodeLoads>>;

    /// Adds `delta` bytes to a usage counter and returns its total. `floor` is what the control
    /// plane counted for the period when the gateway last asked: a counter that does not exist
    /// yet (new period, Redis emptied) starts there. An existing counter ignores it: it has
    /// every fold since it started, and a floor may be older than a reset ([`Self::set_usage`]).
    fn add_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        floor: u64,
        delta: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<u64>>;

    /// Sets a usage counter to `bytes` for `ttl` (an operator reset the period's usage).
    fn set_usage<'a>(
        &'a self,
        counter: &'a UsageCounter,
        bytes: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Records a gateway's heartbeat in the registry for `ttl`.
    fn register_gateway<'a>(
        &'a self,
        info: &'a GatewayInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Removes a gateway from the registry (clean shutdown).
    fn deregister_gateway<'a>(&'a self, gateway_id: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// Gateways whose heartbeat has not expired.
    fn gateways(&self) -> BoxFuture<'_, StoreResult<Vec<GatewayInfo>>>;

    /// Sends an event to every subscriber (every gateway).
    fn publish<'a>(&'a self, event: &'a SharedEvent) -> BoxFuture<'a, StoreResult<()>>;

    /// Events from now on. A subscriber that falls behind loses the oldest (`Lagged`).
    fn subscribe(&self) -> broadcast::Receiver<SharedEvent>;

    /// Whether the last operation reached the store.
    fn is_available(&self) -> bool;
}
