//! GOAWAY: the sender is draining. Streams up to `last_stream_id` are processed to the end; no
//! new streams are accepted, and the client moves new streams to a new session.
//!
//! ```text
//! last_stream_id  u32
//! code            u16   an ErrorCode (no_error, shutting_down, max_lifetime, ...)
//! reason          UTF-8 to the end of the payload, at most 256 bytes
//! ```

use bytes::{BufMut, BytesMut};

use super::{truncate_utf8, DecodeError, Field, MAX_MESSAGE_LEN};
use crate::codes::ErrorCode;
use crate::reader::Reader;
use crate::stream::StreamId;

/// The GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// The highest stream id the sender has processed or will process.
    pub last_stream_id: StreamId,
    /// Why.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub reason: String,
}

impl GoAway {
    pub(crate) fn payload_len(&self) -> usize {
        6 + truncate_utf8(&self.reason, MAX_MESSAGE_LEN).len()
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        buf.put_u32(self.last_stream_id.0);
        buf.put_u16(self.code.to_u16());
        buf.put_slice(truncate_utf8(&self.reason, MAX_MESSAGE_LEN).as_bytes());
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let last_stream_id = StreamId(r.u32(Field::LastStreamId)?);
        let code = ErrorCode::from(r.u16(Field::Code)?);
        let reason = r.rest_utf8(Field::Reason, MAX_MESSAGE_LEN)?;
        Ok(GoAway {
            last_stream_id,
            code,
            reason,
        })
    }
}
