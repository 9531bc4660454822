//! The packet engine of httvps's VPN mode: IP packets in (from a TUN device, or from a mobile
//! platform's packet callbacks), TCP flows out as HTTVPS streams and UDP as HTTVPS datagram
//! flows, IP packets back. It knows nothing of devices, routes or resolvers: the Linux client
//! (`httvps-client --tun`) and a mobile binding each bring their own, and pump packets through
//! [`PacketSink`] and [`PacketSource`].
//!
//! It needs tokio's multi-threaded runtime: the stack (ipstack) finishes a closed TCP flow with
//! `block_in_place`.
//!
//! ```no_run
//! # async fn run(client: httvps_sdk::Client) {
//! use httvps_tun::{Engine, EngineConfig};
//! let (engine, mut source) = Engine::start(EngineConfig::default(), client.clone()).expect("mtu");
//! engine.tunnel_up().follow(client.watch_status());
//! let sink = engine.sink();
//! // packets read from the device: `sink.send(packet).await`; packets for the device:
//! // `source.recv().await`
//! # }
//! ```

mod device;
mod engine;
mod flows;
pub mod gate;

pub use engine::{
    DnsRedirect, Engine, EngineConfig, EngineError, Limits, PacketSink, PacketSource, Tunnel,
    TunnelUp,
};
