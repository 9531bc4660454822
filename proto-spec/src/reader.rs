//! A bounds-checked cursor over a received payload. Every read returns a typed error instead of
//! panicking, and byte strings are returned as zero-copy slices of the original message.

use bytes::Bytes;

use crate::frame::{DecodeError, Field};

pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize, field: Field) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { field });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: Field) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn fixed<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        self.array(field)
    }

    /// Exactly `n` bytes, zero-copy.
    pub(crate) fn bytes(&mut self, n: usize, field: Field) -> Result<Bytes, DecodeError> {
        self.take(n, field)
    }

    /// A byte string with a one-byte length prefix, whose length must lie in `min..=max`.
    pub(crate) fn bytes8(
        &mut self,
        field: Field,
        min: usize,
        max: usize,
    ) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u8(field)?);
        check_len(field, len, min, max)?;
        self.take(len, field)
    }

    /// A UTF-8 string with a one-byte length prefix, whose length must lie in `min..=max`.
    pub(crate) fn str8(
        &mut self,
        field: Field,
        min: usize,
        max: usize,
    ) -> Result<String, DecodeError> {
        let raw = self.bytes8(field, min, max)?;
        utf8(raw, field)
    }

    /// Everything that is left, as UTF-8 of at most `max` bytes.
    pub(crate) fn rest_utf8(&mut self, field: Field, max: usize) -> Result<String, DecodeError> {
        let len = self.remaining();
        check_len(field, len, 0, max)?;
        let raw = self.take(len, field)?;
        utf8(raw, field)
    }

    /// Everything that is left, zero-copy.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }
}

pub(crate) fn check_len(
    field: Field,
    len: usize,
    min: usize,
    max: usize,
) -> Result<(), DecodeError> {
    if len < min {
        return Err(DecodeError::FieldTooShort { field, len, min });
    }
    if len > max {
        return Err(DecodeError::FieldTooLong { field, len, max });
    }
    Ok(())
}

fn utf8(raw: Bytes, field: Field) -> Result<String, DecodeError> {
    String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
}
