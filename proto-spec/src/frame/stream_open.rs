//! STREAM_OPEN: the client opens a stream to a target.
//!
//! ```text
//! kind        u8    1 = tcp, 2 = udp
//! target      address type u8 (1 IPv4 | 3 domain | 4 IPv6), address, port u16 (non-zero)
//! early_data  bytes to the end of the payload (tcp only); counts against flow control
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, Field};
use crate::address::TargetAddr;
use crate::reader::Reader;
use crate::stream::StreamId;

/// Whether a stream carries a TCP byte stream or UDP datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// A reliable byte stream, flow controlled, carried in STREAM_DATA.
    Tcp,
    /// Datagrams, carried in DATAGRAM frames, not flow controlled and droppable.
    Udp,
}

impl StreamKind {
    fn to_u8(self) -> u8 {
        match self {
            StreamKind::Tcp => 1,
            StreamKind::Udp => 2,
        }
    }

    /// `"tcp"` or `"udp"`.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Tcp => "tcp",
            StreamKind::Udp => "udp",
        }
    }
}

/// The STREAM_OPEN frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOpen {
    /// The new stream's id, allocated by the client.
    pub stream_id: StreamId,
    /// TCP or UDP.
    pub kind: StreamKind,
    /// Where the stream goes.
    pub target: TargetAddr,
    /// The first bytes of the stream (TCP only), sent before STREAM_OPEN_ACK to save a round trip.
    pub early_data: Bytes,
}

impl StreamOpen {
    pub(crate) fn payload_len(&self) -> usize {
        1 + self.target.encoded_len() + self.early_data.len()
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        buf.put_u8(self.kind.to_u8());
        self.target.encode(buf);
        buf.put_slice(&self.early_data);
    }

    pub(crate) fn decode(stream_id: StreamId, r: &mut Reader) -> Result<Self, DecodeError> {
        let kind = match r.u8(Field::StreamKind)? {
            1 => StreamKind::Tcp,
            2 => StreamKind::Udp,
            other => return Err(DecodeError::BadStreamKind(other)),
        };
        let target = TargetAddr::decode(r)?;
        let early_data = r.rest();
        if kind == StreamKind::Udp && !early_data.is_empty() {
            return Err(DecodeError::EarlyDataOnUdp);
        }
        Ok(StreamOpen {
            stream_id,
            kind,
            target,
            early_data,
        })
    }
}
