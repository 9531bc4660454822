//! The httvps control plane: users, devices, plans, regions, the Outline/Shadowsocks node pool,
//! sessions, usage and audit, served over REST to admins and gateways. See
//! `docs/control-plane.md` for the API and `docs/architecture.md` for the map.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod last_seen;
pub mod leader;
pub mod link;
pub mod model;
pub mod node_pool;
pub mod pool;
pub mod quota;
mod readable;
pub mod shared;
pub mod store;
pub mod validation_cache;
