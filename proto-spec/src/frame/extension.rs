//! Handshake extensions: type-length-value records at the end of HELLO and HELLO_ACK. A receiver
//! ignores extension types it does not know, which is how later versions add handshake fields
//! without a new protocol version.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, Field};
use crate::reader::Reader;

/// At most this many extensions in one handshake frame.
pub const MAX_EXTENSIONS: usize = 16;
/// The longest extension value, in bytes.
pub const MAX_EXTENSION_LEN: usize = 1024;

/// One handshake extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension's type; receivers skip types they do not know.
    pub ext_type: u16,
    /// The value, opaque to this layer.
    pub value: Bytes,
}

pub(crate) fn payload_len(exts: &[Extension]) -> usize {
    exts.iter()
        .map(|e| 4 + e.value.len().min(MAX_EXTENSION_LEN))
        .sum()
}

pub(crate) fn encode(exts: &[Extension], buf: &mut BytesMut) {
    for e in exts {
        let value = &e.value[..e.value.len().min(MAX_EXTENSION_LEN)];
        buf.put_u16(e.ext_type);
        buf.put_u16(value.len() as u16);
        buf.put_slice(value);
    }
}

/// Reads extension records up to the end of the payload.
pub(crate) fn decode(r: &mut Reader) -> Result<Vec<Extension>, DecodeError> {
    let mut exts: Vec<Extension> = Vec::new();
    while !r.is_empty() {
        if exts.len() == MAX_EXTENSIONS {
            return Err(DecodeError::TooManyExtensions);
        }
        let ext_type = r.u16(Field::Extension)?;
        let len = usize::from(r.u16(Field::Extension)?);
        crate::reader::check_len(Field::Extension, len, 0, MAX_EXTENSION_LEN)?;
        let value = r.bytes(len, Field::Extension)?;
        if exts.iter().any(|e| e.ext_type == ext_type) {
            return Err(DecodeError::DuplicateExtension(ext_type));
        }
        exts.push(Extension { ext_type, value });
    }
    Ok(exts)
}
