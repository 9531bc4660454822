//! `httvps-shared-state`: the state several gateways share (SPEC-independent; see
//! `docs/shared-state.md`).
//!
//! [`SessionStore`] is the one interface; [`InProcessStore`] holds it in memory for a single
//! gateway (and as each gateway's own record during a Redis outage), [`RedisStore`] holds it in
//! Redis for many. The contract tests (`tests/contract.rs`) run the same cases against both.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod keys;
pub mod memory;
pub mod model;
pub mod redis_store;
pub mod store;

pub use keys::Keys;
pub use memory::InProcessStore;
pub use model::{
    Admission, AdmitOutcome, GatewayInfo, LimitScope, NodeLoads, ResumeRecord, RevocationTarget,
    SessionLease, SessionOwner, SharedEvent, UsageCounter,
};
pub use redis_store::RedisStore;
pub use store::{BoxFuture, SessionStore, StoreError, StoreResult};
