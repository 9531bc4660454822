//! PING and PONG: exactly 8 opaque bytes, echoed unchanged in the PONG.

use super::{DecodeError, Field, FrameType};
use crate::reader::Reader;

/// The 8 opaque bytes of a PING, echoed by its PONG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PingPayload(pub [u8; 8]);

impl PingPayload {
    pub(crate) fn decode(frame_type: FrameType, r: &mut Reader) -> Result<Self, DecodeError> {
        if r.remaining() > 8 {
            return Err(DecodeError::TrailingBytes {
                frame_type,
                extra: r.remaining() - 8,
            });
        }
        Ok(PingPayload(r.fixed::<8>(Field::PingPayload)?))
    }
}
