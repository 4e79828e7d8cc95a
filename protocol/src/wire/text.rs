//! Validated UTF-8 held in shared [`Bytes`], so names and messages parse without copying.

use core::fmt;

use bytes::Bytes;

use crate::error::{DecodeError, Malformation};

/// UTF-8 text that shares the buffer it was received in.
///
/// It can only be built from bytes that are valid UTF-8, so [`Text::as_str`] never fails.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Bytes);

impl Text {
    /// Text from received bytes, checked.
    ///
    /// # Errors
    /// [`Malformation::InvalidUtf8`] when the bytes are not UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, DecodeError> {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(DecodeError::Malformed(Malformation::InvalidUtf8)),
        }
    }

    /// Text from a static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text. Validated at construction; the check here is repeated only because this crate
    /// forbids the `unsafe` that would skip it.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<alloc::string::String> for Text {
    fn from(s: alloc::string::String) -> Self {
        Self(Bytes::from(s.into_bytes()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(
            Text::from_utf8(Bytes::from_static(&[0x66, 0xff])),
            Err(DecodeError::Malformed(Malformation::InvalidUtf8))
        );
        assert_eq!(
            Text::from_utf8(Bytes::from_static("héllo".as_bytes())).unwrap(),
            "héllo"
        );
    }
}
