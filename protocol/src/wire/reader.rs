//! A bounds-checked reader over received bytes (STYLE.md 8).
//!
//! Every read either returns the value or [`DecodeError::Truncated`]; slices are handed out as
//! [`Bytes`] that share the received buffer, so parsing copies nothing.

use bytes::Bytes;

use crate::error::{DecodeError, Malformation};

#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).ok_or(DecodeError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take_array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take_array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take_array().map(u64::from_be_bytes)
    }

    /// The next `len` bytes, sharing the underlying buffer.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        if end > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// Everything not read yet (the payload of kinds that end with one). Takes the buffer rather
    /// than slicing it, so handing out the payload costs no reference-count traffic.
    pub(crate) fn rest(&mut self) -> Bytes {
        let mut out = core::mem::take(&mut self.buf);
        bytes::Buf::advance(&mut out, self.pos);
        self.pos = 0;
        out
    }

    /// Rejects trailing bytes: a body that has been read to its last field must end there
    /// (rustls `Reader::all`, STYLE.md 8).
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(Malformation::TrailingBytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_truncation() {
        let mut r = Reader::new(Bytes::from_static(&[1, 2, 3, 4, 5, 6]));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Err(DecodeError::Truncated));
        // A failed read consumes nothing.
        assert_eq!(r.bytes(3).map(|b| b.to_vec()), Ok(vec![4, 5, 6]));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8(), Err(DecodeError::Truncated));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut r = Reader::new(Bytes::from_static(&[0; 4]));
        r.u8().unwrap();
        assert_eq!(r.bytes(usize::MAX), Err(DecodeError::Truncated));
    }

    #[test]
    fn finish_rejects_leftovers() {
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 9]));
        r.u16().unwrap();
        assert_eq!(
            r.finish(),
            Err(DecodeError::Malformed(Malformation::TrailingBytes))
        );
    }
}
