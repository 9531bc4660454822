//! Active health probe: a real Shadowsocks handshake through a pool node.
//!
//! A wrong key or cipher does not fail at connect: AEAD servers silently swallow the stream
//! (the probe then times out waiting for a reply) and 2022 servers reset it. The probe therefore
//! sends a request to a known target through the node and waits for the first reply byte.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shadowsocks::config::ServerType;
use shadowsocks::context::{Context, SharedContext};
use shadowsocks::relay::Address;
use shadowsocks::ProxyClientStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::access_key::{EndpointError, NodeEndpoint};

/// Where probes go once they are through the node, and what they send there.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    host: String,
    port: u16,
    request: Arc<[u8]>,
}

impl fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("request_len", &self.request.len())
            .finish()
    }
}

impl ProbeTarget {
    /// A target that answers HTTP: sends `HEAD / HTTP/1.1` with a `Host` header.
    pub fn http_head(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let host_header = match (host.contains(':'), port) {
            (true, 80) => format!("[{host}]"),
            (true, _) => format!("[{host}]:{port}"),
            (false, 80) => host.clone(),
            (false, _) => format!("{host}:{port}"),
        };
        let request = format!(
            "HEAD / HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: httvps-health/1\r\nConnection: close\r\n\r\n"
        );
        ProbeTarget::with_request(host, port, request.into_bytes())
    }

    /// A target with custom request bytes (sent once; any reply byte counts as success).
    pub fn with_request(host: impl Into<String>, port: u16, request: impl Into<Vec<u8>>) -> Self {
        let request: Vec<u8> = request.into();
        ProbeTarget {
            host: host.into(),
            port,
            request: request.into(),
        }
    }

    /// Target host (IP address or domain name).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Target port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bytes written to the target.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    fn address(&self) -> Address {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => Address::SocketAddress(SocketAddr::new(ip, self.port)),
            Err(_) => Address::DomainNameAddress(self.host.clone(), self.port),
        }
    }
}

/// The step a probe was at when it timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbePhase {
    /// Opening TCP to the node.
    Connecting,
    /// Sending the request through the node.
    Sending,
    /// Waiting for the first reply byte (also how a wrong AEAD key shows up).
    AwaitingReply,
}

impl fmt::Display for ProbePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbePhase::Connecting => "connecting to the node",
            ProbePhase::Sending => "sending the request",
            ProbePhase::AwaitingReply => {
                "awaiting the reply (wrong key or cipher, or target unreachable from the node)"
            }
        })
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The whole probe took longer than its timeout.
    #[error("probe timed out after {after:?} while {phase}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
        /// Where the probe was stuck.
        phase: ProbePhase,
    },
    /// TCP to the node failed (refused, unreachable, DNS).
    #[error("connecting to the node failed: {0}")]
    ConnectFailed(#[source] io::Error),
    /// Writing the request through the node failed.
    #[error("sending through the node failed: {0}")]
    SendFailed(#[source] io::Error),
    /// The node closed or reset the stream, or its reply did not decrypt.
    #[error("no reply through the node: {reason}")]
    NoReply {
        /// EOF, reset, or decryption failure.
        reason: String,
    },
    /// The node's stored configuration is invalid.
    #[error("bad node configuration: {0}")]
    BadConfig(#[from] EndpointError),
}

impl ProbeError {
    /// A short, stable label for metrics and storage (`timeout`, `connect`, `send`,
    /// `no_reply`, `bad_config`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Timeout { .. } => "timeout",
            ProbeError::ConnectFailed(_) => "connect",
            ProbeError::SendFailed(_) => "send",
            ProbeError::NoReply { .. } => "no_reply",
            ProbeError::BadConfig(_) => "bad_config",
        }
    }
}

/// Runs probes; holds the shadowsocks client context (create once, share, clone cheaply).
#[derive(Clone)]
pub struct Prober {
    context: SharedContext,
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

impl Prober {
    /// A prober with its own shadowsocks client context.
    pub fn new() -> Self {
        Prober {
            context: Context::new_shared(ServerType::Local),
        }
    }

    /// Connects through `node` to `target`, sends the target's request and waits for the first
    /// reply byte. Returns the latency from the start of the connect to that byte.
    pub async fn probe(
        &self,
        node: &NodeEndpoint,
        target: &ProbeTarget,
        timeout: Duration,
    ) -> Result<Duration, ProbeError> {
        let config = node.server_config()?;
        let started = Instant::now();
        let mut phase = ProbePhase::Connecting;
        let attempt = async {
            let mut stream =
                ProxyClientStream::connect(self.context.clone(), &config, target.address())
                    .await
                    .map_err(ProbeError::ConnectFailed)?;
            phase = ProbePhase::Sending;
            stream
                .write_all(target.request())
                .await
                .map_err(ProbeError::SendFailed)?;
            stream.flush().await.map_err(ProbeError::SendFailed)?;
            phase = ProbePhase::AwaitingReply;
            let mut reply = [0u8; 512];
            match stream.read(&mut reply).await {
                Ok(0) => Err(ProbeError::NoReply {
                    reason: "the node closed the stream before any reply (wrong key or cipher?)"
                        .to_owned(),
                }),
                Ok(_) => Ok(started.elapsed()),
                Err(err) => Err(ProbeError::NoReply {
                    reason: format!("{} ({:?})", err, err.kind()),
                }),
            }
        };
        let result = tokio::time::timeout(timeout, attempt).await;
        match result {
            Ok(outcome) => outcome,
            Err(_) => Err(ProbeError::Timeout {
                after: timeout,
                phase,
            }),
        }
    }
}
