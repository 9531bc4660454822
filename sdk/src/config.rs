//! How a client connects: gateways to try in order, credentials, how to trust the gateway's
//! certificate, and timing.

use std::fmt;
use std::time::Duration;

use httvps_proto::link::ConnectionLink;
use httvps_proto::SessionConfig;

use crate::error::Error;

/// How the gateway's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The public web PKI (Mozilla's roots), for a gateway with a CA-issued certificate.
    WebPki,
    /// Only the certificate whose DER encoding has this SHA-256, e.g. a self-signed one.
    Pinned([u8; 32]),
}

/// One gateway to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayEndpoint {
    /// Host name or IP address to connect to.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The secret WebSocket path.
    pub path: String,
    /// TLS server name and HTTP Host (defaults to `host`).
    pub server_name: Option<String>,
    /// How its certificate is checked.
    pub trust: Trust,
    /// The deployment's WebSocket subprotocol token (the link's `proto`): offered, and the
    /// gateway must echo it. `None`: no `Sec-WebSocket-Protocol` at all, and none accepted.
    pub subprotocol: Option<String>,
}

impl GatewayEndpoint {
    /// The name used for TLS and the `Host` header.
    pub fn server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }
}

impl fmt::Display for GatewayEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Reconnection delays: exponential from `initial` to `max`, with up to 20% jitter; a refusal by
/// the service waits at least 5 s, and a gateway's `retry_after` is honoured up to
/// `max_retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The longest wait a gateway's `retry_after` can impose.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Everything a [`crate::Client`] needs.
#[derive(Clone)]
pub struct ClientConfig {
    /// Tried in order on every (re)connection.
    pub gateways: Vec<GatewayEndpoint>,
    /// The device's id (HELLO).
    pub device_id: String,
    /// The device's token (HELLO); never logged.
    pub device_token: String,
    /// Sent in HELLO for the gateway's logs.
    pub client_name: String,
    /// Sent in HELLO for the gateway's logs.
    pub client_version: String,
    /// Preferred region code.
    pub region: Option<String>,
    /// TCP + TLS + WebSocket + HELLO must finish within this.
    pub connect_timeout: Duration,
    /// A stream open waits at most this long for STREAM_OPEN_ACK.
    pub open_timeout: Duration,
    /// After a GOAWAY the draining session keeps carrying the streams it has (new ones go to
    /// a new session) for at most this long, in case the gateway never ends it.
    pub drain_timeout: Duration,
    /// Delays between reconnection attempts.
    pub backoff: Backoff,
    /// Protocol limits (windows, frame size) this client advertises.
    pub session: SessionConfig,
    /// Datagrams queued per UDP flow before the oldest is dropped.
    pub udp_queue: usize,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("gateways", &self.gateways)
            .field("device_id", &self.device_id)
            .field("device_token", &"<redacted>")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with one gateway and default timing.
    pub fn new(
        gateway: GatewayEndpoint,
        device_id: impl Into<String>,
        device_token: impl Into<String>,
    ) -> Self {
        ClientConfig {
            gateways: vec![gateway],
            device_id: device_id.into(),
            device_token: device_token.into(),
            client_name: "httvps-sdk".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            region: None,
            connect_timeout: Duration::from_secs(15),
            open_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(600),
            backoff: Backoff::default(),
            session: SessionConfig::default(),
            udp_queue: 256,
        }
    }

    /// A configuration from a connection link (`httvps://DEVICE:TOKEN@HOST:PORT/PATH?fp=...`).
    pub fn from_link(link: &str) -> Result<Self, Error> {
        let link = ConnectionLink::parse(link)?;
        let gateway = GatewayEndpoint {
            host: link.host.clone(),
            port: link.port,
            path: link.path.clone(),
            server_name: link.sni.clone(),
            trust: link.fingerprint.map_or(Trust::WebPki, Trust::Pinned),
            subprotocol: link.subprotocol.clone(),
        };
        Ok(ClientConfig::new(gateway, link.device_id, link.token))
    }

    /// Adds a fallback gateway, tried after the ones already listed.
    pub fn with_gateway(mut self, gateway: GatewayEndpoint) -> Self {
        self.gateways.push(gateway);
        self
    }
}
