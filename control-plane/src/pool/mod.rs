//! The Outline / Shadowsocks node pool: access keys, active health checks, node assignment and
//! failover planning.
//!
//! Selection and failover are pure functions over snapshots ([`NodeCandidate`]); health checks
//! probe nodes through a real Shadowsocks handshake ([`Prober`]) and persist results through the
//! [`HealthStore`] trait.

pub mod access_key;
pub mod assign;
pub mod failover;
pub mod health;
pub mod probe;

pub use access_key::{
    normalize_host, parse_access_key, supported_ciphers, validate_cipher, AccessKey,
    AccessKeyError, CipherError, EndpointError, NodeEndpoint,
};
pub use assign::{assign, great_circle_km, AssignError, AssignRequest, NodeCandidate, Strategy};
pub use failover::{plan_failover, FailoverPlan, FailoverRequest, SessionMove, SessionRef};
pub use health::{
    CheckedNode, Health, HealthCheckConfig, HealthChecker, HealthPolicy, HealthState, HealthStore,
    HealthStoreError, ProbeOutcome, ProbeRecord, Transition,
};
pub use probe::{ProbeError, ProbePhase, ProbeTarget, Prober};
