//! A framewire message as the payload of a NATS message (docs/PROTOCOL.md section 12.2): one
//! version byte (`1`), the channel the message was published on, a flags byte (bit 0: the
//! channel is reliable), the publishing node's id and the message's number from it (`u64` each,
//! big-endian), then the payload. Its topic is the NATS subject's ([`super::subject`]). The id and
//! number let a node that holds overlapping subscriptions (NATS delivers a message once to each)
//! take each message once.

use bytes::{BufMut, Bytes, BytesMut};

/// The version byte of the envelope.
pub const ENVELOPE_VERSION: u8 = 1;
const RELIABLE: u8 = 1;
/// Bytes before the payload.
pub const ENVELOPE_HEADER_LEN: usize = 3 + 8 + 8;

/// A message published on one node, as the others receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The channel it was published on.
    pub channel: u8,
    /// Whether that channel is reliable (a parked subscriber keeps only reliable messages).
    pub reliable: bool,
    /// The publishing node's id (random, new at each start).
    pub origin: u64,
    /// The message's number from that node: 1, 2, 3, ...
    pub seq: u64,
    /// The message.
    pub payload: Bytes,
}

/// Why a NATS message is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than its header.
    Short,
    /// Another version of the envelope.
    Version(u8),
    /// Flags this version does not define.
    Flags(u8),
}

impl Envelope {
    /// The NATS payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(ENVELOPE_HEADER_LEN + self.payload.len());
        out.put_u8(ENVELOPE_VERSION);
        out.put_u8(self.channel);
        out.put_u8(if self.reliable { RELIABLE } else { 0 });
        out.put_u64(self.origin);
        out.put_u64(self.seq);
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// Reads a NATS payload; the payload shares its bytes.
    ///
    /// # Errors
    /// [`EnvelopeError`]: the message is dropped and counted.
    pub fn parse(bytes: &Bytes) -> Result<Self, EnvelopeError> {
        let Some(head) = bytes.get(..ENVELOPE_HEADER_LEN) else {
            return Err(EnvelopeError::Short);
        };
        let (version, channel, flags) = (head[0], head[1], head[2]);
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&head[at..at + 8]);
            u64::from_be_bytes(w)
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
            origin: word(3),
            seq: word(11),
            payload: bytes.slice(ENVELOPE_HEADER_LEN..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_vector() {
        // docs/PROTOCOL.md section 12.2's table.
        let e = Envelope {
            channel: 2,
            reliable: true,
            origin: 0x0102_0304_0506_0708,
            seq: 9,
            payload: Bytes::from_static(b"hi"),
        };
        let wire: &[u8] = b"\x01\x02\x01\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\x09hi";
        assert_eq!(&e.encode()[..], wire);
        assert_eq!(Envelope::parse(&Bytes::copy_from_slice(wire)), Ok(e));
        let with = |head: &[u8]| {
            let mut b = head.to_vec();
            b.resize(ENVELOPE_HEADER_LEN, 0);
            Envelope::parse(&Bytes::from(b))
        };
        assert_eq!(with(b"\x02\x00\x00"), Err(EnvelopeError::Version(2)));
        assert_eq!(with(b"\x01\x00\x02"), Err(EnvelopeError::Flags(2)));
        assert_eq!(
            Envelope::parse(&Bytes::copy_from_slice(&wire[..ENVELOPE_HEADER_LEN - 1])),
            Err(EnvelopeError::Short)
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

/// A request's payload over NATS (docs/PROTOCOL.md section 12.4): the version byte `1`, how long
/// the requester waits (`u32` milliseconds, big-endian), then the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEnvelope {
    /// How long the requester waits, in milliseconds.
    pub timeout_ms: u32,
    /// The request.
    pub payload: Bytes,
}

impl RequestEnvelope {
    /// The NATS payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(5 + self.payload.len());
        out.put_u8(ENVELOPE_VERSION);
        out.put_u32(self.timeout_ms);
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// Reads a NATS payload.
    ///
    /// # Errors
    /// [`EnvelopeError`]: the request is not answered.
    pub fn parse(bytes: &Bytes) -> Result<Self, EnvelopeError> {
        let Some(&[version, a, b, c, d]) = bytes.get(..5) else {
            return Err(EnvelopeError::Short);
        };
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(version));
        }
        Ok(Self {
            timeout_ms: u32::from_be_bytes([a, b, c, d]),
            payload: bytes.slice(5..),
        })
    }
}

/// A response's payload over NATS: the version byte `1`, the status (`u16`, big-endian), then the
/// response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyEnvelope {
    /// The status.
    pub status: u16,
    /// The response.
    pub payload: Bytes,
}

impl ReplyEnvelope {
    /// The NATS payload.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(3 + self.payload.len());
        out.put_u8(ENVELOPE_VERSION);
        out.put_u16(self.status);
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// Reads a NATS payload.
    ///
    /// # Errors
    /// [`EnvelopeError`]: the requester gets `INTERNAL`.
    pub fn parse(bytes: &Bytes) -> Result<Self, EnvelopeError> {
        let Some(&[version, a, b]) = bytes.get(..3) else {
            return Err(EnvelopeError::Short);
        };
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(version));
        }
        Ok(Self {
            status: u16::from_be_bytes([a, b]),
            payload: bytes.slice(3..),
        })
    }
}

#[cfg(test)]
mod rpc_tests {
    use super::*;

    #[test]
    fn the_spec_vectors_of_requests_and_replies() {
        let r = RequestEnvelope {
            timeout_ms: 5000,
            payload: Bytes::from_static(b"hi"),
        };
        assert_eq!(&r.encode()[..], b"\x01\x00\x00\x13\x88hi");
        assert_eq!(RequestEnvelope::parse(&r.encode()), Ok(r));
        let a = ReplyEnvelope {
            status: 0x0102,
            payload: Bytes::new(),
        };
        assert_eq!(&a.encode()[..], b"\x01\x01\x02");
        assert_eq!(ReplyEnvelope::parse(&a.encode()), Ok(a));
        assert_eq!(
            RequestEnvelope::parse(&Bytes::from_static(b"\x01\0\0\0")),
            Err(EnvelopeError::Short)
        );
        assert_eq!(
            ReplyEnvelope::parse(&Bytes::from_static(b"\x02\0\0")),
            Err(EnvelopeError::Version(2))
        );
    }
}
