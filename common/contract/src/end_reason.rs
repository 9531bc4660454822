//! Why a session ended: what a gateway reports at `sessions/{id}/end`, what the control plane
//! tells a gateway in a heartbeat (`killed`, `revoked`, `expired`), and what it records itself
//! (`stale`, `gateway_lost`, `lease_lost`). On the wire a snake_case string of at most
//! [`MAX_END_REASON_LEN`](crate::limits::MAX_END_REASON_LEN) bytes; a reason this version does
//! not know is kept as [`EndReason::Other`], so a newer peer's reason is recorded, not refused.

use httvps_proto::ErrorCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::MAX_END_REASON_LEN;

/// What may follow the end of a session: whether its resume token is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resumption {
    /// The client may come back (to any gateway) as the same session: a lost connection, a
    /// drain or a timeout.
    Resumable,
    /// The session lives on elsewhere (it was resumed on another connection).
    Superseded,
    /// The session is over; a new HELLO starts a new one.
    Final,
}

/// A reason that is not one of [`EndReason`]'s named ones: 1 to
/// [`MAX_END_REASON_LEN`](crate::limits::MAX_END_REASON_LEN) bytes, never a known name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OtherReason(String);

impl OtherReason {
    /// The reason as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reason of the wrong length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reason must have 1 to {MAX_END_REASON_LEN} bytes")]
pub struct InvalidEndReason;

macro_rules! end_reasons {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// Why a session ended.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum EndReason {
            $($(#[$doc])* $variant,)*
            /// A reason this version does not name (from a newer peer).
            Other(OtherReason),
        }

        impl EndReason {
            /// Every named reason.
            pub const ALL: &'static [EndReason] = &[$(EndReason::$variant,)*];

            /// The reason as it travels and is stored.
            pub fn as_str(&self) -> &str {
                match self {
                    $(EndReason::$variant => $text,)*
                    EndReason::Other(other) => other.as_str(),
                }
            }

            /// The named reason, or [`EndReason::Other`] for any other text of 1 to
            /// [`MAX_END_REASON_LEN`] bytes.
            pub fn parse(text: &str) -> Result<Self, InvalidEndReason> {
                match text {
                    $($text => Ok(EndReason::$variant),)*
                    _ if text.is_empty() || text.len() > MAX_END_REASON_LEN => Err(InvalidEndReason),
                    other => Ok(EndReason::Other(OtherReason(other.to_owned()))),
                }
            }
        }
    };
}

end_reasons! {
    /// The client closed the connection or it was lost (the default).
    ClientClosed => "client_closed",
    /// The gateway drained the session (GOAWAY, then no streams left).
    Drained => "drained",
    /// The gateway shut down.
    Shutdown => "shutdown",
    /// The session was resumed on another connection.
    Resumed => "resumed",
    /// An operator ended the session.
    Killed => "killed",
    /// The device or its user was revoked or disabled.
    Revoked => "revoked",
    /// The subscription ended.
    Expired => "expired",
    /// The byte quota ran out.
    QuotaExceeded => "quota_exceeded",
    /// The client broke a protocol rule.
    ProtocolError => "protocol_error",
    /// A message exceeded the negotiated maximum frame size.
    FrameSize => "frame_size",
    /// The client sent beyond its flow-control credit.
    FlowControl => "flow_control",
    /// A stream id was zero where forbidden, reused or never opened.
    StreamId => "stream_id",
    /// An unknown frame type without the IGNORABLE flag.
    UnknownFrame => "unknown_frame",
    /// No HELLO arrived in time.
    HandshakeTimeout => "handshake_timeout",
    /// The session was idle for too long.
    IdleTimeout => "idle_timeout",
    /// An internal failure.
    Internal => "internal",
    /// The gateway was going away (GOAWAY `shutting_down`) without shutting down itself.
    ShuttingDown => "shutting_down",
    /// The session reached its maximum lifetime.
    MaxLifetime => "max_lifetime",
    /// A session error code this version does not know.
    UnknownError => "other",
    /// The control plane heard no heartbeat for too long (recorded by the control plane).
    Stale => "stale",
    /// The session's gateway stopped its registry heartbeat (recorded by the control plane).
    GatewayLost => "gateway_lost",
    /// The session held no live slot in the shared state (recorded by the control plane).
    LeaseLost => "lease_lost",
}

impl EndReason {
    /// Whether the session's resume token outlives this end. A client's explicit goodbye makes
    /// any end final; the session decides that, not the reason.
    pub fn resumption(&self) -> Resumption {
        match self {
            EndReason::Resumed => Resumption::Superseded,
            EndReason::ClientClosed
            | EndReason::Drained
            | EndReason::Shutdown
            | EndReason::MaxLifetime
            | EndReason::IdleTimeout => Resumption::Resumable,
            _ => Resumption::Final,
        }
    }

    /// Shorthand for `resumption() == Resumption::Resumable`.
    pub fn is_resumable(&self) -> bool {
        self.resumption() == Resumption::Resumable
    }

    /// The reason a session ended with this ERROR code records, for a gateway that is not
    /// itself shutting down (it records [`EndReason::Shutdown`] then). `no_error` is a drain.
    pub fn from_error_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NoError => EndReason::Drained,
            ErrorCode::ProtocolError => EndReason::ProtocolError,
            ErrorCode::FrameSize => EndReason::FrameSize,
            ErrorCode::FlowControl => EndReason::FlowControl,
            ErrorCode::StreamId => EndReason::StreamId,
            ErrorCode::UnknownFrame => EndReason::UnknownFrame,
            ErrorCode::HandshakeTimeout => EndReason::HandshakeTimeout,
            ErrorCode::IdleTimeout => EndReason::IdleTimeout,
            ErrorCode::Internal => EndReason::Internal,
            ErrorCode::Revoked => EndReason::Revoked,
            ErrorCode::QuotaExceeded => EndReason::QuotaExceeded,
            ErrorCode::ShuttingDown => EndReason::ShuttingDown,
            ErrorCode::MaxLifetime => EndReason::MaxLifetime,
            ErrorCode::Expired => EndReason::Expired,
            ErrorCode::Other(_) => EndReason::UnknownError,
        }
    }

    /// The ERROR code a gateway closes a session with when the control plane (or a shared
    /// event) ends it for this reason: `expired` and `quota_exceeded` say so, `resumed` is
    /// no error, and `killed`, `revoked` and anything newer mean it is no longer allowed.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            EndReason::Expired => ErrorCode::Expired,
            EndReason::QuotaExceeded => ErrorCode::QuotaExceeded,
            EndReason::Resumed => ErrorCode::NoError,
            _ => ErrorCode::Revoked,
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EndReason {
    type Err = InvalidEndReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndReason::parse(s)
    }
}

impl Serialize for EndReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EndReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        EndReason::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EndReason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Why a session ended: one of the named reasons, or (from a newer peer) any \
                 other text of 1 to 64 bytes.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_END_REASON_LEN))
            .examples(EndReason::ALL.iter().map(|r| r.as_str()))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EndReason {}

#[cfg(test)]
mod tests;
