//! `httvps-gateway`: accepts HTTVPS/1 sessions over TLS WebSocket and relays their streams
//! through Shadowsocks pool nodes under flow control.
//!
//! Reading order: [`gateway`] wires everything; [`listener`] accepts TLS and reads the first
//! request; [`upgrade`] checks the WebSocket upgrade, anything else goes to the [`fallback`]
//! web server; [`session`] drives
//! one `httvps_proto::Connection` per WebSocket; [`upstream`] connects stream targets through
//! nodes. [`authority`] and [`upstream::NodeSource`] are the seams to the control plane.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authority;
pub mod config;
pub mod control_plane;
pub mod entitlements;
mod error;
pub mod expiring;
pub mod fallback;
pub mod front;
pub mod gateway;
pub mod listener;
pub mod metrics;
pub mod rate_limit;
pub mod secret_path;
pub mod session;
pub mod shared;
pub mod stats;
pub mod throttled_log;
pub mod tls;
pub mod upgrade;
pub mod upstream;
pub mod usage;
pub mod usage_spool;
pub mod wiring;

pub use authority::{DeviceAuthority, DeviceCheck, Entitlement, StaticAuthority, Verdict};
pub use config::GatewayConfig;
pub use error::GatewayError;
pub use gateway::{Backends, Gateway};
pub use stats::{GatewayStats, SessionStatsSnapshot};
pub use tls::TlsSource;
pub use upstream::{Node, NodeSource, StaticNodes};
