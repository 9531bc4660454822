//! Constants of HTTVPS/1 and the receive limits each side advertises in its handshake frame.

use crate::frame::DecodeError;

/// The protocol version this crate speaks, as carried in HELLO and HELLO_ACK.
pub const PROTOCOL_VERSION: u16 = 1;
/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`) of HTTVPS/1.
pub const SUBPROTOCOL: &str = "httvps.v1";
/// Bytes in every frame header: type, flags, stream id.
pub const HEADER_LEN: usize = 6;

/// The smallest maximum frame payload a side may advertise; also the limit before negotiation.
pub const MIN_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest maximum frame payload a side may advertise.
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;
/// The maximum frame payload advertised when nothing else is configured.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 32_768;
/// The smallest initial window (stream or session) a side may advertise.
pub const MIN_WINDOW: u32 = 65_536;
/// The largest window a flow-control credit may ever reach (2^31 - 1).
pub const MAX_WINDOW: u32 = 0x7FFF_FFFF;
/// Initial per-stream receive window when nothing else is configured.
pub const DEFAULT_STREAM_WINDOW: u32 = 256 * 1024;
/// Initial per-session receive window when nothing else is configured.
pub const DEFAULT_SESSION_WINDOW: u32 = 1024 * 1024;

/// What one side is able to receive; advertised in HELLO (client) and HELLO_ACK (server). The
/// other side's initial send credit and largest frame follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Initial credit for each stream, in bytes of STREAM_DATA (and early data).
    pub stream_window: u32,
    /// Initial credit shared by all streams of the session.
    pub session_window: u32,
    /// The largest frame payload accepted.
    pub max_frame_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stream_window: DEFAULT_STREAM_WINDOW,
            session_window: DEFAULT_SESSION_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl Limits {
    /// Checks every value against the ranges the spec allows.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let window_ok = |w: u32| (MIN_WINDOW..=MAX_WINDOW).contains(&w);
        if !window_ok(self.stream_window) {
            return Err(DecodeError::BadSetting {
                setting: "stream_window",
                value: self.stream_window,
            });
        }
        if !window_ok(self.session_window) {
            return Err(DecodeError::BadSetting {
                setting: "session_window",
                value: self.session_window,
            });
        }
        if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&self.max_frame_size) {
            return Err(DecodeError::BadSetting {
                setting: "max_frame_size",
                value: self.max_frame_size,
            });
        }
        Ok(())
    }
}
