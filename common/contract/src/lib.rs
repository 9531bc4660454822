//! The REST contract between gateways and the control plane (`/v1/gateway/...`,
//! docs/control-plane.md), written once: the gateway's client serializes these types and the
//! control plane's handlers deserialize the same ones, so a change to the contract is a compile
//! error on both sides.
//!
//! - [`routes`]: the paths.
//! - [`limits`]: the bounds both sides check (records per report, reason length, ...).
//! - [`EndReason`]: why a session ended, and whether it may be resumed.
//! - [`DenyCode`], [`RefusalCode`]: why a device was denied or a call refused, mapped onto the
//!   protocol's HELLO_ERROR and session error codes (`httvps-proto`).
//! - [`validate`], [`assign`], [`session`], [`usage`], [`pool`]: the bodies, one module per
//!   resource.
//!
//! With the feature `openapi` every type derives `utoipa::ToSchema` for the control plane's
//! OpenAPI document. Times are Unix milliseconds (`i64`); byte counts are `u64`.

pub mod assign;
mod codes;
mod end_reason;
pub mod limits;
pub mod pool;
pub mod routes;
pub mod session;
pub mod usage;
pub mod validate;

pub use codes::{DenyCode, Refusal, RefusalCode};
pub use end_reason::{EndReason, InvalidEndReason, Resumption};

/// Unix time in milliseconds, as every time in the contract is.
pub type Millis = i64;

/// A body that breaks one of the contract's [`limits`]; the control plane answers 422 with
/// this text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContractViolation(pub String);
