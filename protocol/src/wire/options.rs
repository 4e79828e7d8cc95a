//! Hello options: a list of type-length-value entries after the Hello's fixed fields
//! (docs/PROTOCOL.md section 4.1.1).
//!
//! The list is validated once when the Hello is parsed and then kept as the received bytes, so a
//! parsed Hello re-encodes to exactly the bytes it came from, options of later versions included.

use alloc::vec::Vec;

use bytes::Bytes;

use super::kind::ChannelKind;
use super::text::Text;
use super::will::LastWill;
use crate::error::{DecodeError, EncodeError, Malformation};

/// Option type codes. A receiver ignores a type it does not know.
pub mod option {
    /// Ignored; makes a UDP Hello large enough that the Challenge is never an amplifier.
    pub const PADDING: u8 = 0x00;
    /// The cookie from a Challenge, echoed (UDP).
    pub const COOKIE: u8 = 0x01;
    /// Resume the session this token names (from an earlier Welcome).
    pub const RESUME_TOKEN: u8 = 0x02;
    /// The kinds of channels 1..=N, one byte each (a channel kind code); channel 0 is always
    /// reliable-ordered.
    pub const CHANNELS: u8 = 0x03;
    /// A UTF-8 name for logs.
    pub const CLIENT_NAME: u8 = 0x04;
    /// Empty: the client confirms the reliable Messages it receives with Ack, and the server
    /// numbers them and sends again, after a break, those not confirmed (docs/PROTOCOL.md 5.9).
    pub const CONFIRMS: u8 = 0x05;
    /// A signed connect token ([`ConnectToken`](crate::auth::ConnectToken)).
    pub const AUTH_TOKEN: u8 = 0x10;
    /// A message the server publishes if the session ends without a Close
    /// ([`LastWill`](crate::wire::LastWill)).
    pub const LAST_WILL: u8 = 0x11;
}

/// The length of an option's header: type (u8) and value length (u16).
pub const OPTION_HEADER_LEN: usize = 3;

/// A validated Hello option list.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HelloOptions(Bytes);

/// One entry of a [`HelloOptions`] list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOption {
    /// The option's type code (see [`option`]).
    pub code: u8,
    /// The option's value.
    pub value: Bytes,
}

impl HelloOptions {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates an option list: every entry complete, and the known types well-formed.
    ///
    /// # Errors
    /// [`Malformation::BadOption`] for an entry that runs past the end or a known option with a bad
    /// value.
    pub fn parse(bytes: Bytes) -> Result<Self, DecodeError> {
        let bad = DecodeError::Malformed(Malformation::BadOption);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let [code, hi, lo, tail @ ..] = rest else {
                return Err(bad);
            };
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let value = tail.get(..len).ok_or(bad)?;
            validate_known(*code, value)?;
            rest = &tail[len..];
        }
        Ok(Self(bytes))
    }

    /// Starts building a list.
    pub fn builder() -> HelloOptionsBuilder {
        HelloOptionsBuilder::default()
    }

    /// The entries in wire order.
    pub fn iter(&self) -> HelloOptionIter {
        HelloOptionIter {
            bytes: self.0.clone(),
        }
    }

    /// The value of the first entry of type `code`. A sender must not repeat a type; a receiver
    /// uses the first.
    pub fn get(&self, code: u8) -> Option<Bytes> {
        self.iter().find(|o| o.code == code).map(|o| o.value)
    }

    /// The echoed challenge cookie.
    pub fn cookie(&self) -> Option<Bytes> {
        self.get(option::COOKIE)
    }

    /// The token of the session to resume.
    pub fn resume_token(&self) -> Option<Bytes> {
        self.get(option::RESUME_TOKEN)
    }

    /// The kinds of channels 1..=N the client asks for.
    pub fn channels(&self) -> Option<Vec<ChannelKind>> {
        self.get(option::CHANNELS)
            .map(|v| v.iter().filter_map(|&c| ChannelKind::from_u8(c)).collect())
    }

    /// The connect token, as sent (the server verifies it).
    pub fn auth_token(&self) -> Option<Bytes> {
        self.get(option::AUTH_TOKEN)
    }

    /// The message to publish if the session ends without a Close.
    pub fn last_will(&self) -> Option<LastWill> {
        self.get(option::LAST_WILL)
            .and_then(|v| LastWill::parse(v).ok())
    }

    /// Whether the client confirms numbered Messages with Ack (option `CONFIRMS`).
    pub fn confirms(&self) -> bool {
        self.get(option::CONFIRMS).is_some()
    }

    /// The client's name, for logs.
    pub fn client_name(&self) -> Option<Text> {
        self.get(option::CLIENT_NAME)
            .and_then(|v| Text::from_utf8(v).ok())
    }

    /// The encoded list.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn validate_known(code: u8, value: &[u8]) -> Result<(), DecodeError> {
    let ok = match code {
        option::CHANNELS => {
            value.len() < 256 && value.iter().all(|&c| ChannelKind::from_u8(c).is_some())
        }
        option::CLIENT_NAME => core::str::from_utf8(value).is_ok(),
        option::CONFIRMS => value.is_empty(),
        option::LAST_WILL => LastWill::parse(Bytes::copy_from_slice(value)).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Malformed(Malformation::BadOption))
    }
}

impl IntoIterator for &HelloOptions {
    type Item = HelloOption;
    type IntoIter = HelloOptionIter;

    fn into_iter(self) -> HelloOptionIter {
        self.iter()
    }
}

impl core::fmt::Debug for HelloOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterates over a validated option list.
#[derive(Debug, Clone)]
pub struct HelloOptionIter {
    bytes: Bytes,
}

impl Iterator for HelloOptionIter {
    type Item = HelloOption;

    fn next(&mut self) -> Option<HelloOption> {
        // The list was validated when it was built, so these reads are in bounds; `get` keeps a
        // broken invariant from panicking all the same.
        let header = self.bytes.get(..OPTION_HEADER_LEN)?;
        let code = header[0];
        let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
        let end = OPTION_HEADER_LEN.checked_add(len)?;
        if end > self.bytes.len() {
            self.bytes.clear();
            return None;
        }
        let value = self.bytes.slice(OPTION_HEADER_LEN..end);
        bytes::Buf::advance(&mut self.bytes, end);
        Some(HelloOption { code, value })
    }
}

/// Builds a [`HelloOptions`] list.
#[derive(Debug, Default)]
#[must_use]
pub struct HelloOptionsBuilder {
    buf: Vec<u8>,
    error: Option<EncodeError>,
}

impl HelloOptionsBuilder {
    /// Adds an option of any type.
    pub fn raw(mut self, code: u8, value: &[u8]) -> Self {
        let Ok(len) = u16::try_from(value.len()) else {
            self.error.get_or_insert(EncodeError::FieldTooLong {
                field: "Hello option",
                len: value.len(),
                max: usize::from(u16::MAX),
            });
            return self;
        };
        self.buf.push(code);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    /// Echoes a challenge cookie.
    pub fn cookie(self, cookie: &[u8]) -> Self {
        self.raw(option::COOKIE, cookie)
    }

    /// Asks to resume the session this token names.
    pub fn resume_token(self, token: &[u8]) -> Self {
        self.raw(option::RESUME_TOKEN, token)
    }

    /// Asks for channels 1..=N of these kinds (at most 255).
    pub fn channels(mut self, kinds: &[ChannelKind]) -> Self {
        if kinds.len() > 255 {
            self.error.get_or_insert(EncodeError::FieldTooLong {
                field: "channel list",
                len: kinds.len(),
                max: 255,
            });
            return self;
        }
        let codes: Vec<u8> = kinds.iter().map(|&k| k as u8).collect();
        self.raw(option::CHANNELS, &codes)
    }

    /// Presents a connect token.
    pub fn auth_token(self, token: &[u8]) -> Self {
        self.raw(option::AUTH_TOKEN, token)
    }

    /// Leaves a message to publish if the session ends without a Close.
    pub fn last_will(mut self, will: &LastWill) -> Self {
        match will.encode() {
            Ok(value) => self.raw(option::LAST_WILL, &value),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Says the client confirms numbered Messages with Ack, so that none is lost to a break.
    pub fn confirms(self) -> Self {
        self.raw(option::CONFIRMS, &[])
    }

    /// Names the client, for logs.
    pub fn client_name(self, name: &str) -> Self {
        self.raw(option::CLIENT_NAME, name.as_bytes())
    }

    /// Adds a padding option whose value is `len` zero bytes (the option itself is
    /// [`OPTION_HEADER_LEN`] bytes longer).
    pub fn padding(self, len: usize) -> Self {
        self.raw(option::PADDING, &alloc::vec![0u8; len])
    }

    /// The length of the list built so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Finishes the list.
    ///
    /// # Errors
    /// The first option that was too long for its length field.
    pub fn build(self) -> Result<HelloOptions, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(HelloOptions(Bytes::from(self.buf))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_parses_and_reads_back() {
        let opts = HelloOptions::builder()
            .client_name("sensor-7")
            .channels(&[
                ChannelKind::UnreliableSequenced,
                ChannelKind::ReliableOrdered,
            ])
            .raw(0x7e, b"future")
            .padding(5)
            .build()
            .unwrap();
        let parsed = HelloOptions::parse(Bytes::copy_from_slice(opts.as_bytes())).unwrap();
        assert_eq!(parsed, opts);
        assert_eq!(parsed.client_name().unwrap(), "sensor-7");
        assert_eq!(
            parsed.channels().unwrap(),
            [
                ChannelKind::UnreliableSequenced,
                ChannelKind::ReliableOrdered
            ]
        );
        assert_eq!(parsed.get(0x7e).unwrap(), &b"future"[..]);
        assert_eq!(parsed.cookie(), None);
        assert_eq!(parsed.iter().count(), 4);
    }

    #[test]
    fn rejects_entries_that_run_past_the_end() {
        let bad = DecodeError::Malformed(Malformation::BadOption);
        for input in [&[0x01][..], &[0x01, 0x00], &[0x01, 0x00, 0x02, 0xaa]] {
            assert_eq!(
                HelloOptions::parse(Bytes::copy_from_slice(input)),
                Err(bad),
                "{input:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_known_values() {
        let bad = DecodeError::Malformed(Malformation::BadOption);
        let name = [option::CLIENT_NAME, 0, 1, 0xff];
        assert_eq!(HelloOptions::parse(Bytes::copy_from_slice(&name)), Err(bad));
        let channels = [option::CHANNELS, 0, 1, 9];
        assert_eq!(
            HelloOptions::parse(Bytes::copy_from_slice(&channels)),
            Err(bad)
        );
    }

    #[test]
    fn too_long_values_are_an_encode_error() {
        let err = HelloOptions::builder().padding(70_000).build().unwrap_err();
        assert!(matches!(err, EncodeError::FieldTooLong { .. }));
    }
}
