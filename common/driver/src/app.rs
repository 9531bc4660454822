//! What the role-specific side of a session (the gateway's relay, the SDK's stream handles, the
//! test client) supplies to the loop.

use std::future::Future;

use httvps_proto::{ErrorCode, Event};

use crate::core::Core;
use crate::run::Outcome;

/// The application behind one driven session. The loop calls it from one task; nothing here
/// needs locking against the loop.
pub trait App {
    /// Inputs of the application's own: stream reports, commands, its own timers.
    type Input: Send;

    /// The next input. Called anew at every turn of the loop and dropped when another input
    /// wins, so it must be cancel-safe (an mpsc `recv`, a `sleep_until`); pending for ever when
    /// there is nothing to wait for.
    fn next_input(&mut self) -> impl Future<Output = Self::Input> + Send;

    /// Acts on one input (and on whatever else is ready at once, so one round of
    /// [`App::after_io`] serves them all).
    fn on_input(&mut self, core: &mut Core, input: Self::Input);

    /// Acts on one protocol event. The loop has already noted what it needs (handshake done,
    /// PONG, the peer's ERROR).
    fn on_event(&mut self, core: &mut Core, event: Event) -> impl Future<Output = ()> + Send;

    /// Bookkeeping after each round of inputs and events (read credit, statistics, work the
    /// application queued outside the loop). Not called once the connection is closed.
    fn after_io(&mut self, core: &mut Core) {
        let _ = core;
    }

    /// Whether the application holds no stream any more, so a session draining after our
    /// GOAWAY may close.
    fn is_drained(&self) -> bool {
        true
    }

    /// The peer broke the protocol (or sent a text or oversized message): `code` is what the
    /// session ends with. For metrics and logs.
    fn on_protocol_error(&mut self, code: ErrorCode, detail: &dyn std::fmt::Display) {
        let _ = (code, detail);
    }

    /// The loop is over; the close handshake follows. Tell whoever waits that the session
    /// ended (before the handshake's round trip).
    fn on_closing(&mut self, core: &mut Core, outcome: &Outcome) {
        let _ = (core, outcome);
    }
}
