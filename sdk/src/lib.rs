//! `httvps-sdk`: the client side of HTTVPS/1. One [`Client`] keeps a TLS WebSocket session to an
//! httvps gateway (reconnecting and resuming by itself) and opens TCP streams and UDP flows over
//! it, each flow controlled end to end.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn demo() -> Result<(), httvps_sdk::Error> {
//! let config = httvps_sdk::ClientConfig::from_link("httvps://DEVICE:TOKEN@vpn.example.com/s3cret")?;
//! let client = httvps_sdk::Client::connect(config).await?;
//! let mut stream = client.open_tcp(httvps_sdk::TargetAddr::domain("example.com", 80)?).await?;
//! stream.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//! let mut page = Vec::new();
//! stream.read_to_end(&mut page).await?;
//! # Ok(()) }
//! ```
//!
//! The protocol itself lives in `httvps-proto`; this crate is the tokio driver around it
//! (`driver.rs`), the transport (`transport.rs`), the stream handles (`stream.rs`, `udp.rs`) and
//! the reconnecting client (`client.rs`).

#![warn(missing_docs)]

mod client;
mod config;
mod driver;
mod error;
mod outage;
mod stream;
mod transport;
mod udp;

pub use client::{Client, ClientStatus, ConnectionState};
pub use config::{Backoff, ClientConfig, GatewayEndpoint, Trust};
pub use error::Error;
pub use httvps_proto::{Address, ErrorCode, HelloErrorCode, ResetCode, TargetAddr};
pub use outage::{Outage, CONNECTION_LOST, UNREACHABLE};
pub use stream::TcpStream;
pub use udp::UdpFlow;
