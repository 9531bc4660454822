//! HELLO_ERROR: the server refuses the handshake and closes the session.
//!
//! ```text
//! code            u16   a HelloErrorCode
//! retry_after_ms  u32   when the client may try again (0: no advice)
//! message         UTF-8 to the end of the payload, at most 256 bytes
//! ```

use bytes::{BufMut, BytesMut};

use super::{truncate_utf8, DecodeError, Field, MAX_MESSAGE_LEN};
use crate::codes::HelloErrorCode;
use crate::reader::Reader;

/// The HELLO_ERROR frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloError {
    /// Why the HELLO was refused.
    pub code: HelloErrorCode,
    /// Milliseconds the client should wait before its next HELLO (0: no advice).
    pub retry_after_ms: u32,
    /// Human-readable detail; never contains secrets.
    pub message: String,
}

impl HelloError {
    /// A refusal with a message cut to the 256-byte limit.
    pub fn new(code: HelloErrorCode, retry_after_ms: u32, message: &str) -> Self {
        HelloError {
            code,
            retry_after_ms,
            message: truncate_utf8(message, MAX_MESSAGE_LEN).into(),
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        6 + truncate_utf8(&self.message, MAX_MESSAGE_LEN).len()
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        buf.put_u16(self.code.to_u16());
        buf.put_u32(self.retry_after_ms);
        buf.put_slice(truncate_utf8(&self.message, MAX_MESSAGE_LEN).as_bytes());
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let code = HelloErrorCode::from(r.u16(Field::Code)?);
        let retry_after_ms = r.u32(Field::RetryAfter)?;
        let message = r.rest_utf8(Field::Message, MAX_MESSAGE_LEN)?;
        Ok(HelloError {
            code,
            retry_after_ms,
            message,
        })
    }
}
