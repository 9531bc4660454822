//! One task per session: the session loop of `httvps-driver` (WebSocket reads and batched
//! writes, timeouts, pings, drain, close handshake) with a [`app::GatewaySession`] as its
//! application, which talks to one small task per stream (see [`crate::upstream`]).
//!
//! - [`context`]: what a session needs from its gateway ([`SessionContext`]).
//! - [`app`]: the session's state and how it dispatches its inputs.
//! - [`handshake`]: HELLO → rate limits → device authority → HELLO_ACK or HELLO_ERROR.
//! - [`uplink`]: opens and what the client sends on streams; [`downlink`]: what the stream
//!   tasks report; [`credit`]: read credit for the upstream readers; [`streams`]: the table.
//! - [`clock`]: subscription end, expiry confirmation, lifetime; [`end`]: the decisions that
//!   end a session and its [`httvps_contract::EndReason`]; [`report`]: its end reported.
//! - [`gauges`]: its share of the gateway's gauges; [`control`]: its control-plane heartbeat.

mod app;
mod clock;
mod context;
pub mod control;
mod credit;
mod downlink;
mod end;
mod gauges;
mod handshake;
mod report;
pub mod streams;
mod uplink;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use httvps_driver::Core;
use httvps_proto::{Connection, Role};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

pub use context::{SessionContext, SessionSettings};
/// WebSocket close codes (SPEC §2.6).
pub use httvps_driver::close_code as close;
/// Silence before HELLO (SPEC §4.1, §13.4).
pub use httvps_driver::silence;

/// Runs one session over an upgraded WebSocket until it ends, then reports its end.
pub async fn run_session<S>(ws: WebSocketStream<S>, peer: SocketAddr, ctx: Arc<SessionContext>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let stats = ctx.stats.register_session();
    let config = ctx.settings.driver_config();
    let now = tokio::time::Instant::now().into_std();
    let core = Core::new(
        Connection::new(Role::Server, ctx.protocol.clone(), now),
        &config,
    );
    let mut session = app::GatewaySession::new(ctx, peer, stats);
    let (sink, source) = ws.split();
    let outcome = httvps_driver::run(core, &mut session, sink, source, &config).await;
    // Boxed: the end's control-plane call exists only once the session ended.
    Box::pin(session.report(&outcome)).await;
}
