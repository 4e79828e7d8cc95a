//! A frame: the common header (kind, flags, channel, optional sequence number) and a typed body
//! (docs/PROTOCOL.md section 3).
//!
//! [`Frame`] is the validated representation (STYLE.md 6): [`Frame::parse`] turns a frame body, as
//! the stream deframer or a datagram hands it out, into a value whose every field has been checked,
//! and [`Frame::emit`] writes it back. Parsing then emitting gives back the same bytes.

use bytes::Bytes;

use super::frames::{
    Ack, BodyCodec, Challenge, Close, CloseAck, Data, Discover, ErrorFrame, Fragment, Hello, Here,
    Message, Ping, Pong, Publish, QueueAck, QueueDelivery, QueueExtend, QueueFetch, QueueNack,
    QueuePush, Register, Reject, Request, Reset, Response, Subscribe, Unregister, Unsubscribe,
    Welcome,
};
use super::kind::FrameKind;
use super::reader::Reader;
use super::writer::Writer;
use crate::error::{DecodeError, EncodeError, Malformation};

/// The length of the common frame header: kind, flags, channel.
pub const FRAME_HEADER_LEN: usize = 3;
/// The flag bit that says a 32-bit sequence number follows the channel.
pub const SEQ_FLAG: u8 = 0x80;
/// The length of the optional sequence number.
pub const SEQ_LEN: usize = 4;

/// A frame of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The channel the frame travels on (0 is the control channel).
    pub channel: u8,
    /// The frame's sequence number on its channel, where the channel needs one (UDP sessions).
    pub seq: Option<u32>,
    /// The kind and its fields.
    pub body: FrameBody,
}

macro_rules! frame_bodies {
    ($( $variant:ident($ty:ty), )*) => {
        /// The kind-specific part of a frame.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum FrameBody {
            $( #[doc = concat!("See [`", stringify!($ty), "`].")] $variant($ty), )*
        }

        impl FrameBody {
            /// The body's kind.
            pub fn kind(&self) -> FrameKind {
                match self {
                    $( Self::$variant(_) => <$ty as BodyCodec>::KIND, )*
                }
            }

            pub(crate) fn flags(&self) -> u8 {
                match self {
                    $( Self::$variant(b) => b.flags(), )*
                }
            }

            fn body_len(&self) -> usize {
                match self {
                    $( Self::$variant(b) => b.body_len(), )*
                }
            }

            fn check(&self) -> Result<(), EncodeError> {
                match self {
                    $( Self::$variant(b) => b.check(), )*
                }
            }

            fn emit(&self, w: &mut Writer) {
                match self {
                    $( Self::$variant(b) => b.emit(w), )*
                }
            }

            fn parse(kind: FrameKind, flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
                match kind {
                    $( <$ty as BodyCodec>::KIND => {
                        if flags & !<$ty as BodyCodec>::FLAG_MASK != 0 {
                            return Err(DecodeError::Malformed(Malformation::ReservedFlags));
                        }
                        <$ty as BodyCodec>::parse(flags, r).map(Self::$variant)
                    } )*
                }
            }
        }

        $(
            impl From<$ty> for FrameBody {
                fn from(b: $ty) -> Self {
                    Self::$variant(b)
                }
            }
        )*
    };
}

frame_bodies! {
    Hello(Hello),
    Challenge(Challenge),
    Welcome(Welcome),
    Reject(Reject),
    Discover(Discover),
    Here(Here),
    Close(Close),
    CloseAck(CloseAck),
    Ping(Ping),
    Pong(Pong),
    Ack(Ack),
    Fragment(Fragment),
    Reset(Reset),
    Data(Data),
    Error(ErrorFrame),
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Publish(Publish),
    Message(Message),
    Request(Request),
    Response(Response),
    Register(Register),
    Unregister(Unregister),
    QueuePush(QueuePush),
    QueueFetch(QueueFetch),
    QueueDelivery(QueueDelivery),
    QueueAck(QueueAck),
    QueueNack(QueueNack),
    QueueExtend(QueueExtend),
}

impl Frame {
    /// A frame on the control channel (0) with no sequence number.
    pub fn new(body: impl Into<FrameBody>) -> Self {
        Self {
            channel: 0,
            seq: None,
            body: body.into(),
        }
    }

    /// The same frame on `channel`.
    #[must_use]
    pub fn on_channel(mut self, channel: u8) -> Self {
        self.channel = channel;
        self
    }

    /// The same frame with a sequence number.
    #[must_use]
    pub fn with_seq(mut self, seq: u32) -> Self {
        self.seq = Some(seq);
        self
    }

    /// The frame's kind.
    pub fn kind(&self) -> FrameKind {
        self.body.kind()
    }

    /// The id of a client operation that asks for a Response (docs/PROTOCOL.md section 5), if
    /// this is one and its id is not 0.
    pub fn operation_id(&self) -> Option<u32> {
        let id = match &self.body {
            FrameBody::Publish(f) => f.id,
            FrameBody::Subscribe(f) => f.id,
            FrameBody::Unsubscribe(f) => f.id,
            FrameBody::Request(f) => f.id,
            FrameBody::Register(f) => f.id,
            FrameBody::Unregister(f) => f.id,
            FrameBody::QueuePush(f) => f.id,
            FrameBody::QueueFetch(f) => f.id,
            FrameBody::QueueAck(f) => f.id,
            FrameBody::QueueNack(f) => f.id,
            FrameBody::QueueExtend(f) => f.id,
            _ => 0,
        };
        (id != 0).then_some(id)
    }

    /// Parses a frame body: the bytes from the kind byte to the end of the frame, as
    /// [`crate::wire::StreamDeframer`] and [`crate::wire::Datagram::frames`] hand them out.
    ///
    /// # Errors
    /// [`DecodeError::UnknownKind`] for a kind this version does not define (the caller may skip
    /// it if [`FrameKind::is_ignorable`]), [`DecodeError::Truncated`] for a body that ends inside a
    /// field, and [`DecodeError::Malformed`] for any other broken rule.
    pub fn parse(body: Bytes) -> Result<Self, DecodeError> {
        Self::parse_with(body, |_, r| r.u32())
    }

    /// Parses a frame body of a compact datagram (section 2.4), whose SEQ field holds the low 16
    /// bits of the sequence number: `restore` gives the whole number from the channel and them.
    ///
    /// # Errors
    /// As [`Frame::parse`].
    pub fn parse_compact(
        body: Bytes,
        restore: impl FnOnce(u8, u16) -> u32,
    ) -> Result<Self, DecodeError> {
        Self::parse_with(body, |channel, r| Ok(restore(channel, r.u16()?)))
    }

    /// Parses a frame of a compact datagram as it lies there ([`FramePart`](super::FramePart)): a
    /// frame that shares the header of the one before it (version 3) is read from that header and
    /// the rest of its body, without being copied together.
    ///
    /// # Errors
    /// As [`Frame::parse`].
    pub fn parse_compact_part(
        part: super::FramePart,
        restore: impl FnOnce(u8, u16) -> u32,
    ) -> Result<Self, DecodeError> {
        let (shared, rest) = part.into_raw();
        let Some((head, len)) = shared else {
            return Self::parse_compact(rest, restore);
        };
        let head = &head[..len];
        let (kind_code, flags, channel) = (head[0], head[1], head[2]);
        let kind = FrameKind::from_u8(kind_code).ok_or(DecodeError::UnknownKind(kind_code))?;
        let seq = match head {
            [_, _, _, hi, lo] if flags & SEQ_FLAG != 0 => {
                Some(restore(channel, u16::from_be_bytes([*hi, *lo])))
            }
            _ if flags & SEQ_FLAG != 0 => return Err(DecodeError::Truncated),
            _ => None,
        };
        let mut r = Reader::new(rest);
        let body = FrameBody::parse(kind, flags & !SEQ_FLAG, &mut r)?;
        Ok(Self { channel, seq, body })
    }

    /// The frame header, then the SEQ field as `read_seq` reads it (given the channel), then the
    /// kind's fields.
    fn parse_with(
        body: Bytes,
        read_seq: impl FnOnce(u8, &mut Reader) -> Result<u32, DecodeError>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let kind_code = r.u8()?;
        let flags = r.u8()?;
        let channel = r.u8()?;
        let kind = FrameKind::from_u8(kind_code).ok_or(DecodeError::UnknownKind(kind_code))?;
        let seq = if flags & SEQ_FLAG != 0 {
            Some(read_seq(channel, &mut r)?)
        } else {
            None
        };
        let body = FrameBody::parse(kind, flags & !SEQ_FLAG, &mut r)?;
        Ok(Self { channel, seq, body })
    }

    /// The length of the encoded frame body (what [`Frame::emit`] writes).
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + if self.seq.is_some() { SEQ_LEN } else { 0 } + self.body.body_len()
    }

    /// Checks that every field fits its encoding.
    ///
    /// # Errors
    /// The first field that does not fit.
    pub fn check(&self) -> Result<(), EncodeError> {
        self.body.check()
    }

    /// Writes the frame body into `out`, returning the number of bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` is shorter than [`Frame::encoded_len`], or the
    /// first field that does not fit its encoding.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.check()?;
        let needed = self.encoded_len();
        let available = out.len();
        let out = out
            .get_mut(..needed)
            .ok_or(EncodeError::BufferTooSmall { needed, available })?;
        let mut w = Writer::new(out);
        self.emit_checked(&mut w);
        Ok(needed)
    }

    /// Writes the frame; the caller has called [`Frame::check`] and made room for
    /// [`Frame::encoded_len`] bytes.
    pub(crate) fn emit_checked(&self, w: &mut Writer) {
        let mut flags = self.body.flags();
        if self.seq.is_some() {
            flags |= SEQ_FLAG;
        }
        w.put_u8(self.kind() as u8);
        w.put_u8(flags);
        w.put_u8(self.channel);
        if let Some(seq) = self.seq {
            w.put_u32(seq);
        }
        self.body.emit(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Text;

    fn encode(frame: &Frame) -> Bytes {
        let mut out = alloc::vec![0u8; frame.encoded_len()];
        let n = frame.emit(&mut out).unwrap();
        assert_eq!(n, out.len());
        Bytes::from(out)
    }

    #[test]
    fn header_and_sequence_round_trip() {
        let f = Frame::new(Data {
            payload: Bytes::from_static(b"hi"),
        })
        .on_channel(3)
        .with_seq(0xdead_beef);
        let bytes = encode(&f);
        assert_eq!(
            &bytes[..],
            &[0x20, 0x80, 3, 0xde, 0xad, 0xbe, 0xef, b'h', b'i']
        );
        assert_eq!(Frame::parse(bytes), Ok(f));
    }

    #[test]
    fn unknown_kinds_and_reserved_flags_are_told_apart() {
        assert_eq!(
            Frame::parse(Bytes::from_static(&[0x7f, 0, 0])),
            Err(DecodeError::UnknownKind(0x7f))
        );
        assert_eq!(
            Frame::parse(Bytes::from_static(&[0x20, 0x01, 0])),
            Err(DecodeError::Malformed(Malformation::ReservedFlags))
        );
        assert_eq!(
            Frame::parse(Bytes::from_static(&[0x20, 0x80, 0, 1])),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Frame::parse(Bytes::from_static(&[0x09, 0x00, 0, 1])),
            Err(DecodeError::Malformed(Malformation::TrailingBytes))
        );
    }

    #[test]
    fn small_buffers_and_long_names_are_encode_errors() {
        let f = Frame::new(Subscribe {
            id: 1,
            filter: Text::from("a/b"),
        });
        let mut small = [0u8; 4];
        assert_eq!(
            f.emit(&mut small),
            Err(EncodeError::BufferTooSmall {
                needed: f.encoded_len(),
                available: 4
            })
        );
        let long = Frame::new(Subscribe {
            id: 1,
            filter: Text::from(alloc::string::String::from("x").repeat(2000)),
        });
        let mut big = alloc::vec![0u8; 4096];
        assert!(matches!(
            long.emit(&mut big),
            Err(EncodeError::FieldTooLong { .. })
        ));
    }
}
