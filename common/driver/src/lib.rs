//! `httvps-driver`: the one async driver of an [`httvps_proto::Connection`] over a WebSocket,
//! used by the gateway's sessions, the SDK and the gateway's test client.
//!
//! The protocol core stays free of I/O; this crate owns what every end does the same way around
//! it: reading and writing the WebSocket (several frames per wakeup, one flush), what a
//! WebSocket-level error means for the session ([`ws_input`]), the handshake and idle timeouts,
//! WebSocket Pings (server) and protocol PINGs with a PONG deadline (client), the drain after a
//! GOAWAY, and the close handshake, with the silence owed to unauthenticated peers
//! ([`silence`]). What only one role does (answer HELLO, open streams, relay bytes) comes in
//! through the [`App`] trait.
//!
//! All deadlines are on tokio's clock, so a session runs under `#[tokio::test(start_paused =
//! true)]`; the `Connection` gets tokio's time converted ([`Core::now`]).
//!
//! - [`run`]: the session loop. [`Core`]: the connection and the session-level state an
//!   application acts on (end, drain, timers). [`DriverConfig`]: the timers.
//! - [`hello`]: the client's HELLO → HELLO_ACK exchange before the loop starts.
//! - [`QueuedSink`]: the WebSocket's writing half in a task of its own (the SDK's choice).

mod app;
pub mod close_code;
mod closing;
mod config;
mod core;
pub mod hello;
mod run;
pub mod silence;
mod sink;
mod writer;
pub mod ws_input;

pub use crate::app::App;
pub use crate::config::{DriverConfig, Heartbeat};
pub use crate::core::{Core, Drain};
pub use crate::run::{run, Ended, Outcome};
pub use crate::writer::QueuedSink;

/// The WebSocket error type.
pub use tokio_tungstenite::tungstenite::Error as WsError;
/// The WebSocket message type the driver reads and writes.
pub use tokio_tungstenite::tungstenite::Message;
