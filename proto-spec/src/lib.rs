//! Sans-IO core of HTTVPS/1, the protocol that carries many TCP streams and UDP datagrams over
//! one WebSocket (see `proto-spec/SPEC.md`, which is the authority on every byte).
//!
//! The crate has no sockets, no clocks of its own and no async runtime. The caller feeds it the
//! binary WebSocket messages it received and the current time, and asks it which frames to send
//! and which events happened, in the manner of `quinn-proto`:
//!
//! - [`frame`]: typed frames with zero-copy decode from, and encode into, [`bytes`] buffers. The
//!   decoder rejects every malformed input with a typed [`DecodeError`] and never panics.
//! - [`Connection`]: the session state machine for either [`Role`]. It enforces the handshake,
//!   stream id allocation, stream states, negotiated limits and flow-control credit, schedules
//!   the frames of all streams fairly, and reports [`Event`]s.
//!
//! ```
//! use std::time::Instant;
//! use httvps_proto::{AcceptHello, ClientHello, Connection, Event, Role, SessionConfig};
//!
//! let now = Instant::now();
//! let mut client = Connection::new(Role::Client, SessionConfig::default(), now);
//! let mut server = Connection::new(Role::Server, SessionConfig::default(), now);
//! client.send_hello(ClientHello::new("device-1", b"secret-token".to_vec())).unwrap();
//!
//! // Move every frame the client wants to send to the server, as a WebSocket would.
//! while let Some(msg) = client.poll_transmit(now) {
//!     server.handle_message(msg, now).unwrap();
//! }
//! let Some(Event::HelloReceived(hello)) = server.poll_event() else { panic!() };
//! assert_eq!(hello.device_id, "device-1");
//! server.accept_hello(AcceptHello::new([7; 16], b"resume".to_vec())).unwrap();
//! while let Some(msg) = server.poll_transmit(now) {
//!     client.handle_message(msg, now).unwrap();
//! }
//! assert!(matches!(client.poll_event(), Some(Event::HelloAccepted(_))));
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod address;
mod codes;
mod connection;
mod flow;
pub mod frame;
mod limits;
pub mod link;
mod reader;
mod stream;

pub use address::{Address, TargetAddr};
pub use codes::{ErrorCode, HelloErrorCode, ResetCode};
pub use connection::{
    AcceptHello, ApiError, ClientHello, Connection, ConnectionError, Event, Role, SessionConfig,
    Stats,
};
pub use frame::{DecodeError, Frame, FrameType, StreamKind};
pub use limits::{Limits, HEADER_LEN, PROTOCOL_VERSION, SUBPROTOCOL};
pub use stream::{StreamId, StreamState};
