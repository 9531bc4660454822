//! The control plane's business rules: one module per resource, one typed function per change
//! or look-up, called by the admin API (`crate::http::admin`) and the operator CLI
//! (`crate::cli`) alike. Each validates its input (`validate`), writes through the store (which
//! records the audit entry in the same transaction) and, for changes that must reach the
//! gateways (revoking, disabling and deleting devices and users, cancelling subscriptions,
//! killing sessions), announces them on the shared state (`crate::shared`) after the commit.
//! So the API and the CLI cannot drift apart: whoever makes a change, the same rules apply and
//! every gateway hears of it at once (with Redis), not at its next session heartbeat.
//! Refusals are [`DomainError`]s, mapped once to problem documents and once to CLI messages.

pub mod admins;
pub mod devices;
mod error;
pub mod gateways;
pub mod nodes;
pub mod plans;
pub mod regions;
pub mod sessions;
pub mod subscriptions;
pub mod users;
pub mod validate;

use serde::{Deserialize, Deserializer};

pub use error::{DomainError, DomainResult};

/// For PATCH fields that may be set to `null`: absent = `None`, `null` = `Some(None)`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Runs CPU-heavy work (argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> DomainResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DomainError::Internal(format!("blocking task failed: {e}")))
}
