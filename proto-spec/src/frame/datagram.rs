//! DATAGRAM: one UDP datagram of a UDP stream, in either direction.
//!
//! ```text
//! flags bit 0x01 ADDRESS: the payload starts with an address (as in STREAM_OPEN): from the
//!                client, where to send this datagram instead of the stream's target; from the
//!                server, where the datagram came from.
//! data           the datagram, to the end of the payload (may be empty)
//! ```
//!
//! Datagrams carry no flow-control credit: a receiver that cannot keep up drops them.

use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;
use crate::address::TargetAddr;
use crate::reader::Reader;
use crate::stream::StreamId;

/// DATAGRAM flag: an address precedes the data.
pub const FLAG_ADDRESS: u8 = 0x01;

/// The DATAGRAM frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The UDP stream.
    pub stream_id: StreamId,
    /// Destination (client to server) or source (server to client), when not the stream's target.
    pub addr: Option<TargetAddr>,
    /// The datagram, a zero-copy slice of the received message.
    pub data: Bytes,
}

impl Datagram {
    pub(crate) fn flags(&self) -> u8 {
        if self.addr.is_some() {
            FLAG_ADDRESS
        } else {
            0
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        self.addr.as_ref().map_or(0, TargetAddr::encoded_len) + self.data.len()
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        if let Some(addr) = &self.addr {
            addr.encode(buf);
        }
        buf.put_slice(&self.data);
    }

    pub(crate) fn decode(
        stream_id: StreamId,
        flags: u8,
        r: &mut Reader,
    ) -> Result<Self, DecodeError> {
        let addr = if flags & FLAG_ADDRESS != 0 {
            Some(TargetAddr::decode(r)?)
        } else {
            None
        };
        Ok(Datagram {
            stream_id,
            addr,
            data: r.rest(),
        })
    }
}
