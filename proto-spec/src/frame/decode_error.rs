//! Why a message is not a valid frame. Every variant has a stable name (used by the conformance
//! vectors) and maps to the session [`ErrorCode`] sent in the ERROR frame that answers it.

use crate::codes::ErrorCode;
use crate::frame::FrameType;

/// A field of a frame payload, named in decode errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Field {
    Versions,
    Version,
    DeviceId,
    DeviceToken,
    ClientName,
    ClientVersion,
    ResumeToken,
    Region,
    StreamWindow,
    SessionWindow,
    MaxFrameSize,
    Extension,
    SessionId,
    MaxStreams,
    HeartbeatInterval,
    IdleTimeout,
    Code,
    RetryAfter,
    Message,
    StreamKind,
    AddressType,
    Address,
    Domain,
    Port,
    Increment,
    PingPayload,
    LastStreamId,
    Reason,
}

impl Field {
    /// The field's name in the spec.
    pub fn name(self) -> &'static str {
        use Field::*;
        match self {
            Versions => "versions",
            Version => "version",
            DeviceId => "device_id",
            DeviceToken => "device_token",
            ClientName => "client_name",
            ClientVersion => "client_version",
            ResumeToken => "resume_token",
            Region => "region",
            StreamWindow => "stream_window",
            SessionWindow => "session_window",
            MaxFrameSize => "max_frame_size",
            Extension => "extension",
            SessionId => "session_id",
            MaxStreams => "max_streams",
            HeartbeatInterval => "heartbeat_interval_ms",
            IdleTimeout => "idle_timeout_ms",
            Code => "code",
            RetryAfter => "retry_after_ms",
            Message => "message",
            StreamKind => "kind",
            AddressType => "address_type",
            Address => "address",
            Domain => "domain",
            Port => "port",
            Increment => "increment",
            PingPayload => "opaque",
            LastStreamId => "last_stream_id",
            Reason => "reason",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A message that is not a valid HTTVPS/1 frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the 6 header bytes.
    #[error("message of {len} bytes is shorter than the 6-byte frame header")]
    TruncatedHeader {
        /// Bytes received.
        len: usize,
    },
    /// The payload ended inside a field.
    #[error("payload ends inside field `{field}`")]
    Truncated {
        /// The field being read.
        field: Field,
    },
    /// The payload is larger than the receiver's maximum frame size.
    #[error("payload of {len} bytes exceeds the maximum frame size {max}")]
    FrameTooLarge {
        /// Payload bytes received.
        len: usize,
        /// The limit in force.
        max: u32,
    },
    /// A type byte this version does not define, without the IGNORABLE flag.
    #[error("unknown frame type 0x{0:02x} without the IGNORABLE flag")]
    UnknownFrameType(u8),
    /// A session frame with a non-zero stream id.
    #[error("{} must have stream id 0", frame_type.name())]
    StreamIdNotZero {
        /// The frame's type.
        frame_type: FrameType,
    },
    /// A stream frame with stream id 0.
    #[error("{} must have a non-zero stream id", frame_type.name())]
    StreamIdZero {
        /// The frame's type.
        frame_type: FrameType,
    },
    /// An address type other than 1 (IPv4), 3 (domain) or 4 (IPv6).
    #[error("address type {0} is not 1 (IPv4), 3 (domain) or 4 (IPv6)")]
    BadAddressType(u8),
    /// A domain that is empty, too long, or has characters or labels a host name cannot have.
    #[error("domain name is not a valid host name")]
    BadDomain,
    /// Port 0 as a target.
    #[error("port 0 is not a valid target port")]
    ZeroPort,
    /// A text field that is not UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: Field,
    },
    /// A field shorter than its minimum.
    #[error("field `{field}` has {len} bytes, fewer than the minimum {min}")]
    FieldTooShort {
        /// The field.
        field: Field,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A field longer than its maximum.
    #[error("field `{field}` has {len} bytes, more than the maximum {max}")]
    FieldTooLong {
        /// The field.
        field: Field,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Bytes left over after the last field of a fixed-layout frame.
    #[error("{extra} unexpected bytes after the end of {}", frame_type.name())]
    TrailingBytes {
        /// The frame's type.
        frame_type: FrameType,
        /// Bytes left over.
        extra: usize,
    },
    /// A WINDOW_UPDATE of 0.
    #[error("window increment of 0")]
    ZeroWindowIncrement,
    /// A WINDOW_UPDATE above 2^31 - 1.
    #[error("window increment {0} exceeds 2^31-1")]
    WindowIncrementTooLarge(u32),
    /// A stream kind other than 1 (TCP) or 2 (UDP).
    #[error("stream kind {0} is not 1 (tcp) or 2 (udp)")]
    BadStreamKind(u8),
    /// A UDP STREAM_OPEN with bytes after the target.
    #[error("a udp STREAM_OPEN cannot carry early data")]
    EarlyDataOnUdp,
    /// A STREAM_DATA with no bytes.
    #[error("STREAM_DATA without data")]
    EmptyData,
    /// A limit or setting outside the range the spec allows.
    #[error("{setting} = {value} is outside the range the spec allows")]
    BadSetting {
        /// The setting's name.
        setting: &'static str,
        /// The value received.
        value: u32,
    },
    /// The same extension type twice in one handshake frame.
    #[error("extension type {0} appears twice")]
    DuplicateExtension(u16),
    /// More extensions than [`crate::frame::MAX_EXTENSIONS`].
    #[error("more than {} extensions", crate::frame::MAX_EXTENSIONS)]
    TooManyExtensions,
}

impl DecodeError {
    /// The stable snake_case name of the error, as used in the conformance vectors.
    pub fn name(&self) -> &'static str {
        use DecodeError::*;
        match self {
            TruncatedHeader { .. } => "truncated_header",
            Truncated { .. } => "truncated",
            FrameTooLarge { .. } => "frame_too_large",
            UnknownFrameType(_) => "unknown_frame_type",
            StreamIdNotZero { .. } => "stream_id_not_zero",
            StreamIdZero { .. } => "stream_id_zero",
            BadAddressType(_) => "bad_address_type",
            BadDomain => "bad_domain",
            ZeroPort => "zero_port",
            InvalidUtf8 { .. } => "invalid_utf8",
            FieldTooShort { .. } => "field_too_short",
            FieldTooLong { .. } => "field_too_long",
            TrailingBytes { .. } => "trailing_bytes",
            ZeroWindowIncrement => "zero_window_increment",
            WindowIncrementTooLarge(_) => "window_increment_too_large",
            BadStreamKind(_) => "bad_stream_kind",
            EarlyDataOnUdp => "early_data_on_udp",
            EmptyData => "empty_data",
            BadSetting { .. } => "bad_setting",
            DuplicateExtension(_) => "duplicate_extension",
            TooManyExtensions => "too_many_extensions",
        }
    }

    /// The session error code the receiver sends in its ERROR frame.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::FrameTooLarge { .. } => ErrorCode::FrameSize,
            DecodeError::UnknownFrameType(_) => ErrorCode::UnknownFrame,
            DecodeError::StreamIdNotZero { .. } | DecodeError::StreamIdZero { .. } => {
                ErrorCode::StreamId
            }
            _ => ErrorCode::ProtocolError,
        }
    }
}
