//! ERROR: a session-fatal error. The sender closes the WebSocket right after it.
//!
//! ```text
//! code     u16   an ErrorCode
//! message  UTF-8 to the end of the payload, at most 256 bytes
//! ```

use bytes::{BufMut, BytesMut};

use super::{truncate_utf8, DecodeError, Field, MAX_MESSAGE_LEN};
use crate::codes::ErrorCode;
use crate::reader::Reader;

/// The ERROR frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFrame {
    /// Why the session ends.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl ErrorFrame {
    /// An ERROR with its message cut to the 256-byte limit.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        ErrorFrame {
            code,
            message: truncate_utf8(message, MAX_MESSAGE_LEN).into(),
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        2 + truncate_utf8(&self.message, MAX_MESSAGE_LEN).len()
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        buf.put_u16(self.code.to_u16());
        buf.put_slice(truncate_utf8(&self.message, MAX_MESSAGE_LEN).as_bytes());
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let code = ErrorCode::from(r.u16(Field::Code)?);
        let message = r.rest_utf8(Field::Message, MAX_MESSAGE_LEN)?;
        Ok(ErrorFrame { code, message })
    }
}
