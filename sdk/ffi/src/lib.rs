//! The mobile binding of httvps: the VPN tunnel (the SDK's client and the httvps-tun packet
//! engine) behind a uniffi interface, for Kotlin (Android `VpnService`), Swift (iOS
//! `NEPacketTunnelProvider`) and Python (the tests).
//!
//! A [`Tunnel`] starts from a connection link or a subscription URL and exchanges IP packets
//! with the platform either through a TUN file descriptor (Android: the one
//! `VpnService.Builder.establish()` returns) or through callbacks (iOS: packets from
//! `packetFlow.readPackets` go in with [`Tunnel::send_packet`], packets for the device come out
//! through [`PacketWriter::write_packet`]). Status changes reach a [`StatusListener`];
//! [`Tunnel::statistics`] counts the traffic; [`Tunnel::stop`] ends it.

uniffi::setup_scaffolding!();

mod config;
mod error;
mod fd;
mod status;
mod subscription;
mod tunnel;

pub use config::TunnelConfig;
pub use error::TunnelError;
pub use status::{StatusListener, TunnelState, TunnelStatistics, TunnelStatus};
pub use tunnel::{PacketWriter, Tunnel};
