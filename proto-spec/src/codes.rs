//! The three code spaces of HTTVPS/1: HELLO_ERROR codes, stream reset codes and session error
//! codes (ERROR and GOAWAY). Codes are `u16` on the wire; a value this version does not know is
//! kept as `Other(n)` so a newer peer's code is reported, not rejected.

macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A code this implementation does not know; treat it like `internal`.
            Other(u16),
        }

        impl $name {
            /// Every code this version defines, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value on the wire.
            pub fn to_u16(self) -> u16 {
                match self {
                    $($name::$variant => $value,)*
                    $name::Other(n) => n,
                }
            }

            /// The stable snake_case name used in logs, metrics, the spec and the vectors.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(_) => "other",
                }
            }

            /// The code with the given stable name, if this version defines one.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl From<u16> for $name {
            fn from(value: u16) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    n => $name::Other(n),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $name::Other(n) => write!(f, "other({n})"),
                    known => f.write_str(known.name()),
                }
            }
        }
    };
}

// The tables below are data for `codes!` (each code's value, name and meaning, once); their
// likeness to each other is the shape of that data, not repeated logic.
codes! {
    /// Why a HELLO was refused (HELLO_ERROR). The session is closed after it.
    HelloErrorCode {
        /// Unknown device or wrong token.
        AuthFailed = 0x01 => "auth_failed",
        /// The device or its user was revoked or disabled.
        Revoked = 0x02 => "revoked",
        /// The subscription has ended.
        Expired = 0x03 => "expired",
        /// The byte quota of the current period is used up.
        QuotaExceeded = 0x04 => "quota_exceeded",
        /// The device or plan already has its maximum of concurrent sessions.
        TooManySessions = 0x05 => "too_many_sessions",
        /// Too many failed HELLOs from this address or for this device; see `retry_after_ms`.
        RateLimited = 0x06 => "rate_limited",
        /// No protocol version in common.
        UnsupportedVersion = 0x07 => "unsupported_version",
        /// The gateway could not decide (control plane unreachable, ...); retry later.
        Internal = 0x08 => "internal",
        /// The requested region is not in the plan.
        RegionNotAllowed = 0x09 => "region_not_allowed",
    }
}

codes! {
    /// Why a stream was reset (STREAM_RESET), by either side.
    ResetCode {
        /// The sender abandoned the stream; no error.
        Cancel = 0x00 => "cancel",
        /// The target refused the connection.
        Refused = 0x01 => "refused",
        /// The target could not be reached.
        Unreachable = 0x02 => "unreachable",
        /// Connecting to the target, or the stream itself, timed out.
        Timeout = 0x03 => "timeout",
        /// Policy forbids this target (private ranges, blocked ports, ...).
        NotAllowed = 0x04 => "not_allowed",
        /// No pool node could carry the stream.
        NodeUnavailable = 0x05 => "node_unavailable",
        /// The target's domain name did not resolve.
        NameNotResolved = 0x06 => "name_not_resolved",
        /// The target reset the connection.
        ConnectionReset = 0x07 => "connection_reset",
        /// Too many open or pending streams; open fewer at once.
        StreamLimit = 0x08 => "stream_limit",
        /// The stream's id is above the last id of a GOAWAY; open it on a new session.
        GoingAway = 0x09 => "going_away",
        /// The byte quota ran out.
        QuotaExceeded = 0x0A => "quota_exceeded",
        /// The peer sent more than the stream's window.
        FlowControl = 0x0B => "flow_control",
        /// A frame broke the stream's rules (e.g. a datagram on a TCP stream).
        ProtocolError = 0x0C => "protocol_error",
        /// An internal failure on the sender.
        Internal = 0x0D => "internal",
    }
}

codes! {
    /// Why a whole session ends (ERROR, GOAWAY).
    ErrorCode {
        /// Orderly shutdown.
        NoError = 0x00 => "no_error",
        /// The peer broke a protocol rule.
        ProtocolError = 0x01 => "protocol_error",
        /// A frame exceeded the negotiated maximum size.
        FrameSize = 0x02 => "frame_size",
        /// The peer sent beyond its flow-control credit.
        FlowControl = 0x03 => "flow_control",
        /// A stream id was zero where forbidden, reused, or never opened.
        StreamId = 0x04 => "stream_id",
        /// An unknown frame type without the IGNORABLE flag.
        UnknownFrame = 0x05 => "unknown_frame",
        /// No HELLO arrived in time.
        HandshakeTimeout = 0x06 => "handshake_timeout",
        /// The session was idle for too long.
        IdleTimeout = 0x07 => "idle_timeout",
        /// An internal failure.
        Internal = 0x08 => "internal",
        /// The device or user was revoked while connected.
        Revoked = 0x09 => "revoked",
        /// The byte quota ran out while connected.
        QuotaExceeded = 0x0A => "quota_exceeded",
        /// The gateway is shutting down or restarting.
        ShuttingDown = 0x0B => "shutting_down",
        /// The session reached its maximum lifetime; reconnect.
        MaxLifetime = 0x0C => "max_lifetime",
        /// The subscription ended while connected.
        Expired = 0x0D => "expired",
    }
}

impl ErrorCode {
    /// The WebSocket close code that follows an ERROR with this code (SPEC §2.6), sent by the
    /// side that ended the session and echoed by the side that received the ERROR.
    pub fn websocket_close_code(self) -> u16 {
        match self {
            ErrorCode::NoError => 1000,
            ErrorCode::ProtocolError
            | ErrorCode::FrameSize
            | ErrorCode::FlowControl
            | ErrorCode::StreamId
            | ErrorCode::UnknownFrame => 1002,
            ErrorCode::Revoked | ErrorCode::Expired | ErrorCode::QuotaExceeded => 1008,
            ErrorCode::HandshakeTimeout
            | ErrorCode::IdleTimeout
            | ErrorCode::MaxLifetime
            | ErrorCode::ShuttingDown => 1001,
            ErrorCode::Internal | ErrorCode::Other(_) => 1011,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_u16_and_names() {
        for &c in HelloErrorCode::ALL {
            assert_eq!(HelloErrorCode::from(c.to_u16()), c);
            assert_eq!(HelloErrorCode::from_name(c.name()), Some(c));
        }
        for &c in ResetCode::ALL {
            assert_eq!(ResetCode::from(c.to_u16()), c);
            assert_eq!(ResetCode::from_name(c.name()), Some(c));
        }
        for &c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from(c.to_u16()), c);
            assert_eq!(ErrorCode::from_name(c.name()), Some(c));
        }
        assert_eq!(ResetCode::from(0x7777), ResetCode::Other(0x7777));
        assert_eq!(ResetCode::Other(0x7777).to_u16(), 0x7777);
    }
}
