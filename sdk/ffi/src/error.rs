//! What a foreign caller sees when a tunnel cannot start or take a packet.

/// Why a call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum TunnelError {
    /// The configuration is unusable (no link, a bad link, a bad address, an MTU below 1280).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The subscription URL gave no usable link.
    #[error("subscription: {0}")]
    Subscription(String),
    /// The tunnel could not start (runtime, descriptor).
    #[error("start: {0}")]
    Start(String),
    /// The tunnel was stopped.
    #[error("the tunnel is stopped")]
    Stopped,
}
