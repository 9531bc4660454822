//! Errors of the connection state machine: session-fatal violations by the peer, and refusals
//! of operations the local caller asked for.

use crate::codes::ErrorCode;
use crate::frame::DecodeError;
use crate::stream::StreamId;

/// The peer broke the protocol; the session is over. The connection has already queued the
/// ERROR frame that tells the peer why: flush [`crate::Connection::poll_transmit`], then close
/// the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// A message that is not a valid frame.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// A valid frame that breaks the session's rules.
    #[error("{code}: {reason}")]
    Violation {
        /// The code sent in the ERROR frame.
        code: ErrorCode,
        /// What happened, as sent in the ERROR frame.
        reason: String,
    },
    /// A message arrived after the session was closed.
    #[error("the session is closed")]
    Closed,
}

impl ConnectionError {
    /// The code this error is reported to the peer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnectionError::Decode(e) => e.error_code(),
            ConnectionError::Violation { code, .. } => *code,
            ConnectionError::Closed => ErrorCode::ProtocolError,
        }
    }
}

/// An operation the local caller asked for that the session cannot do now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Only the other role can do this.
    #[error("only the {0} side can do this")]
    WrongRole(&'static str),
    /// The handshake is not at the stage this needs.
    #[error("the handshake is not at the stage this needs")]
    HandshakeState,
    /// The session has ended.
    #[error("the session is closed")]
    Closed,
    /// No such stream (never opened, or already closed).
    #[error("stream {0} does not exist")]
    UnknownStream(StreamId),
    /// The stream already sent FIN or was reset.
    #[error("stream {0} is finished for sending")]
    StreamFinished(StreamId),
    /// The stream is waiting for STREAM_OPEN_ACK, or has been acknowledged already.
    #[error("stream {0} is not waiting to be accepted")]
    NotPending(StreamId),
    /// Server: the stream must be accepted (STREAM_OPEN_ACK) before anything is sent on it.
    #[error("stream {0} has not been accepted yet")]
    NotAccepted(StreamId),
    /// The operation does not fit the stream's kind (data on UDP, datagram on TCP).
    #[error("stream {0} is of the other kind (tcp/udp)")]
    WrongKind(StreamId),
    /// The server's stream limit is reached; wait for a stream to close.
    #[error("the server allows at most {0} streams at once")]
    StreamLimit(u32),
    /// The peer sent GOAWAY; open new streams on a new session.
    #[error("the session is draining after GOAWAY")]
    GoingAway,
    /// All 2^32 - 1 stream ids have been used; open a new session.
    #[error("stream ids are exhausted")]
    IdsExhausted,
    /// A datagram larger than the peer's maximum frame size.
    #[error("datagram of {len} bytes exceeds the limit of {max}")]
    DatagramTooLarge {
        /// Its size with address.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A handshake field outside its allowed range.
    #[error("invalid handshake: {0}")]
    InvalidHandshake(DecodeError),
}
