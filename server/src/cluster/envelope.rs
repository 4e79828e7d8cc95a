//! A framewire message as the payload of a NATS message (docs/PROTOCOL.md section 12.2): one
//! version byte (`1`), the channel the message was published on, a flags byte (bit 0: the
//! channel is reliable), then the payload. Its topic is the NATS subject's ([`super::subject`]).

use bytes::{BufMut, Bytes, BytesMut};

/// The version byte of the envelope.
pub const ENVELOPE_VERSION: u8 = 1;
const RELIABLE: u8 = 1;

/// A message published on one node, as the others receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The channel it was published on.
    pub channel: u8,
    /// Whether that channel is reliable (a parked subscriber keeps only reliable messages).
    pub reliable: bool,
    /// The message.
    pub payload: Bytes,
}

/// Why a NATS message is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than the three header bytes.
    Short,
    /// Another version of the envelope.
    Version(u8),
    /// Flags this version does not define.
    Flags(u8),
}

impl Envelope {
    /// The NATS payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(3 + self.payload.len());
        out.put_u8(ENVELOPE_VERSION);
        out.put_u8(self.channel);
        out.put_u8(if self.reliable { RELIABLE } else { 0 });
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// Reads a NATS payload; the payload shares its bytes.
    ///
    /// # Errors
    /// [`EnvelopeError`]: the message is dropped and counted.
    pub fn parse(bytes: &Bytes) -> Result<Self, EnvelopeError> {
        let &[version, channel, flags, ..] = &bytes[..] else {
            return Err(EnvelopeError::Short);
        };
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(version));
        }
        if flags & !RELIABLE != 0 {
            return Err(EnvelopeError::Flags(flags));
        }
        Ok(Self {
            channel,
            reliable: flags & RELIABLE != 0,
            payload: bytes.slice(3..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_vector() {
        let e = Envelope {
            channel: 2,
            reliable: true,
            payload: Bytes::from_static(b"hi"),
        };
        assert_eq!(&e.encode()[..], b"\x01\x02\x01hi");
        assert_eq!(
            Envelope::parse(&Bytes::from_static(b"\x01\x02")),
            Err(EnvelopeError::Short)
        );
        assert_eq!(
            Envelope::parse(&Bytes::from_static(b"\x02\x00\x00")),
            Err(EnvelopeError::Version(2))
        );
        assert_eq!(
            Envelope::parse(&Bytes::from_static(b"\x01\x00\x02")),
            Err(EnvelopeError::Flags(2))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_and_what_parses_encodes_back(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let bytes = Bytes::from(bytes);
            if let Ok(e) = Envelope::parse(&bytes) {
                prop_assert_eq!(e.encode(), bytes);
            }
        }
    }
}
