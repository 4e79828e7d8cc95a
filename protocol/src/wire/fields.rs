//! Encodings of the compound fields that several frame kinds share (docs/PROTOCOL.md section 3.5).

use bytes::Bytes;

use super::MAX_NAME_LEN;
use super::reader::Reader;
use super::text::Text;
use super::writer::Writer;
use crate::error::{DecodeError, EncodeError, Malformation};

/// `name`: u16 length, then that many bytes of UTF-8; at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn read_name(r: &mut Reader) -> Result<Text, DecodeError> {
    let len = usize::from(r.u16()?);
    if len > MAX_NAME_LEN {
        return Err(DecodeError::Malformed(Malformation::NameTooLong));
    }
    Text::from_utf8(r.bytes(len)?)
}

pub(crate) fn name_len(name: &Text) -> usize {
    2 + name.len()
}

pub(crate) fn check_name(field: &'static str, name: &Text) -> Result<(), EncodeError> {
    if name.len() > MAX_NAME_LEN {
        return Err(EncodeError::FieldTooLong {
            field,
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    Ok(())
}

pub(crate) fn write_name(w: &mut Writer, name: &Text) {
    w.put_u16(name.len() as u16);
    w.put_slice(name.as_bytes());
}

/// `short bytes`: u8 length, then that many opaque bytes (cookies, session tokens).
pub(crate) fn read_short(r: &mut Reader) -> Result<Bytes, DecodeError> {
    let len = usize::from(r.u8()?);
    r.bytes(len)
}

pub(crate) fn short_len(b: &Bytes) -> usize {
    1 + b.len()
}

pub(crate) fn check_short(field: &'static str, b: &Bytes) -> Result<(), EncodeError> {
    if b.len() > usize::from(u8::MAX) {
        return Err(EncodeError::FieldTooLong {
            field,
            len: b.len(),
            max: usize::from(u8::MAX),
        });
    }
    Ok(())
}

pub(crate) fn write_short(w: &mut Writer, b: &Bytes) {
    w.put_u8(b.len() as u8);
    w.put_slice(b);
}

/// `text`: UTF-8 to the end of the frame body.
pub(crate) fn read_text_rest(r: &mut Reader) -> Result<Text, DecodeError> {
    Text::from_utf8(r.rest())
}
