//! HELLO_ACK: the server accepts the handshake.
//!
//! ```text
//! version               u16   the version chosen from the client's list
//! session_id            16 bytes
//! resume_token          u8 len (1..=64), bytes
//! max_streams           u32 (>= 1)  streams the client may have open at once
//! stream_window         u32   the server's initial per-stream receive window
//! session_window        u32   the server's initial session receive window
//! max_frame_size        u32   the largest payload the server accepts
//! heartbeat_interval_ms u32   how often the client should PING (0 = never required)
//! idle_timeout_ms       u32   the session closes after this long without frames (0 = never)
//! extensions            TLV records to the end of the payload
//! ```

use bytes::{BufMut, BytesMut};

use super::hello::{validate_extensions, Token, MAX_RESUME_TOKEN_LEN};
use super::{bytes8_len, extension, put_bytes8, DecodeError, Extension, Field};
use crate::limits::Limits;
use crate::reader::{check_len, Reader};

/// The HELLO_ACK frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloAck {
    /// The chosen protocol version.
    pub version: u16,
    /// The session's id, for logs and support.
    pub session_id: [u8; 16],
    /// A token the client presents in a later HELLO to resume this session's identity.
    pub resume_token: Token,
    /// Streams the client may have open at once (pending opens included).
    pub max_streams: u32,
    /// What the server can receive.
    pub limits: Limits,
    /// How often the client should send PING, in milliseconds (0: not required).
    pub heartbeat_interval_ms: u32,
    /// Idle time after which the server closes the session, in milliseconds (0: never).
    pub idle_timeout_ms: u32,
    /// Handshake extensions.
    pub extensions: Vec<Extension>,
}

impl HelloAck {
    pub(crate) fn payload_len(&self) -> usize {
        2 + 16 + bytes8_len(&self.resume_token.0) + 4 * 6 + extension::payload_len(&self.extensions)
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        buf.put_u16(self.version);
        buf.put_slice(&self.session_id);
        put_bytes8(buf, &self.resume_token.0);
        buf.put_u32(self.max_streams);
        buf.put_u32(self.limits.stream_window);
        buf.put_u32(self.limits.session_window);
        buf.put_u32(self.limits.max_frame_size);
        buf.put_u32(self.heartbeat_interval_ms);
        buf.put_u32(self.idle_timeout_ms);
        extension::encode(&self.extensions, buf);
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let version = r.u16(Field::Version)?;
        let session_id = r.fixed::<16>(Field::SessionId)?;
        let resume_token = Token(r.bytes8(Field::ResumeToken, 1, MAX_RESUME_TOKEN_LEN)?);
        let max_streams = r.u32(Field::MaxStreams)?;
        if max_streams == 0 {
            return Err(DecodeError::BadSetting {
                setting: "max_streams",
                value: 0,
            });
        }
        let limits = Limits {
            stream_window: r.u32(Field::StreamWindow)?,
            session_window: r.u32(Field::SessionWindow)?,
            max_frame_size: r.u32(Field::MaxFrameSize)?,
        };
        limits.validate()?;
        let heartbeat_interval_ms = r.u32(Field::HeartbeatInterval)?;
        let idle_timeout_ms = r.u32(Field::IdleTimeout)?;
        let extensions = extension::decode(r)?;
        Ok(HelloAck {
            version,
            session_id,
            resume_token,
            max_streams,
            limits,
            heartbeat_interval_ms,
            idle_timeout_ms,
            extensions,
        })
    }

    /// Checks the fields the decoder would check.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_len(
            Field::ResumeToken,
            self.resume_token.0.len(),
            1,
            MAX_RESUME_TOKEN_LEN,
        )?;
        if self.max_streams == 0 {
            return Err(DecodeError::BadSetting {
                setting: "max_streams",
                value: 0,
            });
        }
        self.limits.validate()?;
        validate_extensions(&self.extensions)?;
        super::hello::validate_handshake_size(self.payload_len())
    }
}
