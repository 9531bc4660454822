//! Changes that must reach the gateways: revoking, disabling and deleting devices and users,
//! cancelling subscriptions and killing sessions. Each is one function here that commits the
//! change to the store and then announces it on the shared state (`crate::shared`), so the
//! admin API and the operator CLI cannot drift apart: whoever makes the change, every gateway
//! hears of it at once (with Redis), not at its next session heartbeat.

pub mod devices;
pub mod sessions;
pub mod subscriptions;
pub mod users;
