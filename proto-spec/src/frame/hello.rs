//! HELLO: the client's handshake, the first frame of every session.
//!
//! ```text
//! versions        u8 count (1..=16), then count x u16
//! device_id       u8 len (1..=64), UTF-8
//! device_token    u8 len (1..=128), bytes
//! client_name     u8 len (0..=64), UTF-8
//! client_version  u8 len (0..=64), UTF-8
//! resume_token    u8 len (0..=64; 0 = none), bytes
//! region          u8 len (0..=32; 0 = none), UTF-8
//! stream_window   u32   the client's initial per-stream receive window
//! session_window  u32   the client's initial session receive window
//! max_frame_size  u32   the largest payload the client accepts
//! extensions      TLV records to the end of the payload
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{bytes8_len, extension, put_bytes8, put_str8, str8_len, DecodeError, Extension, Field};
use crate::limits::Limits;
use crate::reader::Reader;

/// Most versions a HELLO may offer.
pub const MAX_VERSIONS: usize = 16;
/// Longest device id.
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest device token.
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest client name or client version.
pub const MAX_CLIENT_FIELD_LEN: usize = 64;
/// Longest resume token.
pub const MAX_RESUME_TOKEN_LEN: usize = 64;
/// Longest region preference.
pub const MAX_REGION_LEN: usize = 32;

/// A credential. Its `Debug` output never shows the bytes, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub Bytes);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<{} bytes redacted>)", self.0.len())
    }
}

impl Token {
    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The HELLO frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Protocol versions the client speaks, in order of preference.
    pub versions: Vec<u16>,
    /// The device's id, as issued by the control plane.
    pub device_id: String,
    /// The device's secret token.
    pub device_token: Token,
    /// Free-form client software name, for logs.
    pub client_name: String,
    /// Free-form client software version, for logs.
    pub client_version: String,
    /// A resume token from an earlier HELLO_ACK, to keep the session identity on reconnect.
    pub resume_token: Option<Token>,
    /// The region the client would like its traffic to leave from.
    pub region: Option<String>,
    /// What the client can receive.
    pub limits: Limits,
    /// Handshake extensions.
    pub extensions: Vec<Extension>,
}

impl Hello {
    pub(crate) fn payload_len(&self) -> usize {
        1 + 2 * self.versions.len().min(MAX_VERSIONS)
            + str8_len(&self.device_id)
            + bytes8_len(&self.device_token.0)
            + str8_len(&self.client_name)
            + str8_len(&self.client_version)
            + bytes8_len(self.resume_token.as_ref().map_or(&[][..], |t| &t.0[..]))
            + str8_len(self.region.as_deref().unwrap_or(""))
            + 12
            + extension::payload_len(&self.extensions)
    }

    pub(crate) fn encode_payload(&self, buf: &mut BytesMut) {
        let versions = &self.versions[..self.versions.len().min(MAX_VERSIONS)];
        buf.put_u8(versions.len() as u8);
        for v in versions {
            buf.put_u16(*v);
        }
        put_str8(buf, &self.device_id);
        put_bytes8(buf, &self.device_token.0);
        put_str8(buf, &self.client_name);
        put_str8(buf, &self.client_version);
        put_bytes8(
            buf,
            self.resume_token.as_ref().map_or(&[][..], |t| &t.0[..]),
        );
        put_str8(buf, self.region.as_deref().unwrap_or(""));
        buf.put_u32(self.limits.stream_window);
        buf.put_u32(self.limits.session_window);
        buf.put_u32(self.limits.max_frame_size);
        extension::encode(&self.extensions, buf);
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let count = usize::from(r.u8(Field::Versions)?);
        crate::reader::check_len(Field::Versions, count, 1, MAX_VERSIONS)?;
        let mut versions = Vec::with_capacity(count);
        for _ in 0..count {
            versions.push(r.u16(Field::Versions)?);
        }
        let device_id = r.str8(Field::DeviceId, 1, MAX_DEVICE_ID_LEN)?;
        let device_token = Token(r.bytes8(Field::DeviceToken, 1, MAX_TOKEN_LEN)?);
        let client_name = r.str8(Field::ClientName, 0, MAX_CLIENT_FIELD_LEN)?;
        let client_version = r.str8(Field::ClientVersion, 0, MAX_CLIENT_FIELD_LEN)?;
        let resume = r.bytes8(Field::ResumeToken, 0, MAX_RESUME_TOKEN_LEN)?;
        let region = r.str8(Field::Region, 0, MAX_REGION_LEN)?;
        let limits = Limits {
            stream_window: r.u32(Field::StreamWindow)?,
            session_window: r.u32(Field::SessionWindow)?,
            max_frame_size: r.u32(Field::MaxFrameSize)?,
        };
        limits.validate()?;
        let extensions = extension::decode(r)?;
        Ok(Hello {
            versions,
            device_id,
            device_token,
            client_name,
            client_version,
            resume_token: (!resume.is_empty()).then_some(Token(resume)),
            region: (!region.is_empty()).then_some(region),
            limits,
            extensions,
        })
    }

    /// Checks the fields the decoder would check, so a sender never emits a HELLO its peer must
    /// reject.
    pub fn validate(&self) -> Result<(), DecodeError> {
        use crate::reader::check_len;
        check_len(Field::Versions, self.versions.len(), 1, MAX_VERSIONS)?;
        check_len(Field::DeviceId, self.device_id.len(), 1, MAX_DEVICE_ID_LEN)?;
        check_len(
            Field::DeviceToken,
            self.device_token.0.len(),
            1,
            MAX_TOKEN_LEN,
        )?;
        check_len(
            Field::ClientName,
            self.client_name.len(),
            0,
            MAX_CLIENT_FIELD_LEN,
        )?;
        check_len(
            Field::ClientVersion,
            self.client_version.len(),
            0,
            MAX_CLIENT_FIELD_LEN,
        )?;
        // `Some` of an empty value would arrive as `None`: refuse it rather than change meaning.
        if let Some(t) = &self.resume_token {
            check_len(Field::ResumeToken, t.0.len(), 1, MAX_RESUME_TOKEN_LEN)?;
        }
        if let Some(r) = &self.region {
            check_len(Field::Region, r.len(), 1, MAX_REGION_LEN)?;
        }
        self.limits.validate()?;
        validate_extensions(&self.extensions)?;
        validate_handshake_size(self.payload_len())
    }
}

/// Handshake frames travel before any limit is negotiated, so they must fit the minimum.
pub(crate) fn validate_handshake_size(len: usize) -> Result<(), DecodeError> {
    let max = crate::limits::MIN_MAX_FRAME_SIZE;
    if len > max as usize {
        return Err(DecodeError::FrameTooLarge { len, max });
    }
    Ok(())
}

pub(crate) fn validate_extensions(exts: &[Extension]) -> Result<(), DecodeError> {
    if exts.len() > super::MAX_EXTENSIONS {
        return Err(DecodeError::TooManyExtensions);
    }
    for (i, e) in exts.iter().enumerate() {
        crate::reader::check_len(Field::Extension, e.value.len(), 0, super::MAX_EXTENSION_LEN)?;
        if exts[..i].iter().any(|p| p.ext_type == e.ext_type) {
            return Err(DecodeError::DuplicateExtension(e.ext_type));
        }
    }
    Ok(())
}
