//! STREAM_DATA: bytes of a TCP stream. The payload is the data (at least one byte); it counts
//! against both the stream's and the session's flow-control credit.

use bytes::Bytes;

use super::DecodeError;
use crate::reader::Reader;
use crate::stream::StreamId;

/// The STREAM_DATA frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamData {
    /// The stream.
    pub stream_id: StreamId,
    /// The bytes, a zero-copy slice of the received message.
    pub data: Bytes,
}

impl StreamData {
    /// The 6-byte header of a STREAM_DATA frame carrying `len` bytes, for drivers that write the
    /// header and the payload into their output separately.
    pub fn header(stream_id: StreamId) -> [u8; crate::limits::HEADER_LEN] {
        let id = stream_id.0.to_be_bytes();
        [
            super::FrameType::StreamData as u8,
            0,
            id[0],
            id[1],
            id[2],
            id[3],
        ]
    }

    pub(crate) fn decode(stream_id: StreamId, r: &mut Reader) -> Result<Self, DecodeError> {
        let data = r.rest();
        if data.is_empty() {
            return Err(DecodeError::EmptyData);
        }
        Ok(StreamData { stream_id, data })
    }
}
