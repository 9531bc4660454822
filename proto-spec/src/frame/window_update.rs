//! WINDOW_UPDATE: more flow-control credit. Stream id 0 grants session credit; any other id,
//! credit for that stream. The payload is the increment, a u32 in 1..=2^31-1.

use super::{DecodeError, Field};
use crate::limits::MAX_WINDOW;
use crate::reader::Reader;
use crate::stream::StreamId;

/// The WINDOW_UPDATE frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or [`StreamId::SESSION`] for the session window.
    pub stream_id: StreamId,
    /// Bytes of credit added.
    pub increment: u32,
}

impl WindowUpdate {
    pub(crate) fn decode(stream_id: StreamId, r: &mut Reader) -> Result<Self, DecodeError> {
        let increment = r.u32(Field::Increment)?;
        if increment == 0 {
            return Err(DecodeError::ZeroWindowIncrement);
        }
        if increment > MAX_WINDOW {
            return Err(DecodeError::WindowIncrementTooLarge(increment));
        }
        Ok(WindowUpdate {
            stream_id,
            increment,
        })
    }
}
