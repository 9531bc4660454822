//! The small stream frames: STREAM_OPEN_ACK and STREAM_FIN (empty payloads) and STREAM_RESET
//! (a u16 reset code).

use super::{DecodeError, Field};
use crate::codes::ResetCode;
use crate::reader::Reader;
use crate::stream::StreamId;

/// STREAM_OPEN_ACK: the server has connected the stream's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOpenAck {
    /// The stream.
    pub stream_id: StreamId,
}

/// STREAM_FIN: the sender will send no more data on the stream (half close).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamFin {
    /// The stream.
    pub stream_id: StreamId,
}

/// STREAM_RESET: the stream is aborted in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamReset {
    /// The stream.
    pub stream_id: StreamId,
    /// Why.
    pub code: ResetCode,
}

impl StreamReset {
    pub(crate) fn decode(stream_id: StreamId, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(StreamReset {
            stream_id,
            code: ResetCode::from(r.u16(Field::Code)?),
        })
    }
}
