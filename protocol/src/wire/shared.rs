//! A frame encoded once and sent to many peers (a publish fanned out to its subscribers).
//!
//! The stream frame (`length | version | body | crc32`, section 2.1) is written once; the frame
//! body that a datagram carries (section 2.2) is a slice of the same buffer. Handing either to a
//! session copies no payload and computes no CRC per subscriber.

use bytes::{Bytes, BytesMut};

use super::frame::{Frame, FrameBody};
use super::stream::{LENGTH_PREFIX_LEN, encode_stream_frame_into};
use crate::error::EncodeError;

/// The block [`SharedFrame::new_in`] reserves when its scratch buffer has no room left.
pub const SCRATCH_BLOCK: usize = 64 * 1024;

/// One frame, encoded for both transports, without a sequence number (a datagram session assigns
/// its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFrame {
    channel: u8,
    stream: Bytes,
}

impl SharedFrame {
    /// Encodes `frame` (any sequence number in it is left out).
    ///
    /// # Errors
    /// A field that does not fit its encoding, or a frame above the protocol's ceiling.
    pub fn new(frame: &Frame) -> Result<Self, EncodeError> {
        let mut out = BytesMut::new();
        if frame.seq.is_some() {
            let mut unsequenced = frame.clone();
            unsequenced.seq = None;
            encode_stream_frame_into(&unsequenced, &mut out)?;
        } else {
            encode_stream_frame_into(frame, &mut out)?;
        }
        Ok(Self {
            channel: frame.channel,
            stream: out.freeze(),
        })
    }

    /// Encodes `frame` as [`SharedFrame::new`] does, into the end of `scratch`, and splits the
    /// encoding off: a caller that keeps `scratch` between frames allocates once per
    /// [`SCRATCH_BLOCK`] of encodings, not once per frame (each encoding shares the block until
    /// the last session has copied it).
    ///
    /// # Errors
    /// As [`SharedFrame::new`]; `scratch` is left empty.
    pub fn new_in(frame: &Frame, scratch: &mut BytesMut) -> Result<Self, EncodeError> {
        scratch.clear();
        let len = super::stream::stream_frame_len(frame);
        if scratch.capacity() < len {
            scratch.reserve(len.max(SCRATCH_BLOCK));
        }
        if frame.seq.is_some() {
            let mut unsequenced = frame.clone();
            unsequenced.seq = None;
            encode_stream_frame_into(&unsequenced, scratch)?;
        } else {
            encode_stream_frame_into(frame, scratch)?;
        }
        Ok(Self {
            channel: frame.channel,
            stream: scratch.split().freeze(),
        })
    }

    /// The channel the frame travels on.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// The whole stream frame, length prefix to CRC, as a TCP connection writes it.
    pub fn stream_bytes(&self) -> &[u8] {
        &self.stream
    }

    /// The frame body (kind byte to the end of the payload), as a datagram carries it. Shares the
    /// encoded buffer.
    pub fn body(&self) -> Bytes {
        self.stream
            .slice(LENGTH_PREFIX_LEN + 1..self.stream.len() - super::CRC_LEN)
    }
}

/// A Message encoded once with a slot for its delivery number (docs/PROTOCOL.md section 5.9):
/// each subscriber's numbered copy is the same bytes with its number and CRC written in, one copy
/// and one CRC per subscriber instead of an encoding.
#[derive(Debug, Clone)]
pub struct NumberedMessage {
    channel: u8,
    stream: Bytes,
}

/// Where the number lies in the stream frame: after the length prefix, the version byte and the
/// frame header (kind, flags, channel; a shared frame has no SEQ).
const NUMBER_AT: usize = LENGTH_PREFIX_LEN + 1 + 3;

impl NumberedMessage {
    /// Encodes `message` (a Message frame; any number or sequence number in it is left out).
    /// `None` if it is not a Message.
    ///
    /// # Errors
    /// As [`SharedFrame::new`].
    pub fn new(message: &Frame) -> Result<Option<Self>, EncodeError> {
        let FrameBody::Message(m) = &message.body else {
            return Ok(None);
        };
        let mut m = m.clone();
        m.number = Some(0);
        let template = Frame::new(m).on_channel(message.channel);
        let shared = SharedFrame::new(&template)?;
        Ok(Some(Self {
            channel: shared.channel,
            stream: shared.stream,
        }))
    }

    /// The Message numbered `n`.
    pub fn numbered(&self, n: u32) -> SharedFrame {
        let mut out = BytesMut::from(&self.stream[..]);
        out[NUMBER_AT..NUMBER_AT + 4].copy_from_slice(&n.to_be_bytes());
        let end = out.len() - super::CRC_LEN;
        let crc = super::crc32(&out[LENGTH_PREFIX_LEN..end]);
        out[end..].copy_from_slice(&crc.to_be_bytes());
        SharedFrame {
            channel: self.channel,
            stream: out.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, Text, decode_stream_frame};

    #[test]
    fn an_encoding_in_scratch_is_the_same_bytes_and_shares_the_block() {
        let frame = |n: u8| {
            Frame::new(Message {
                retained: false,
                number: None,
                topic: Text::from("room/1"),
                payload: Bytes::from(alloc::vec![n; 40]),
            })
            .on_channel(3)
        };
        let mut scratch = BytesMut::new();
        let first = SharedFrame::new_in(&frame(1), &mut scratch).unwrap();
        let second = SharedFrame::new_in(&frame(2).with_seq(7), &mut scratch).unwrap();
        assert_eq!(first, SharedFrame::new(&frame(1)).unwrap());
        assert_eq!(second, SharedFrame::new(&frame(2)).unwrap());
        // The second encoding lies right after the first, in the block the first reserved.
        let end_of_first = first.stream_bytes().as_ptr_range().end;
        assert_eq!(second.stream_bytes().as_ptr(), end_of_first);
        assert!(scratch.capacity() >= SCRATCH_BLOCK - 2 * first.stream_bytes().len());
        assert!(scratch.is_empty());
    }

    #[test]
    fn both_encodings_parse_back_to_the_frame() {
        let frame = Frame::new(Message {
            retained: true,
            number: None,
            topic: Text::from("room/1"),
            payload: Bytes::from_static(b"state"),
        })
        .on_channel(2);
        let shared = SharedFrame::new(&frame.clone().with_seq(9)).unwrap();
        assert_eq!(shared.channel(), 2);
        assert_eq!(
            decode_stream_frame(shared.stream_bytes(), 1 << 16).unwrap(),
            frame
        );
        assert_eq!(Frame::parse(shared.body()).unwrap(), frame);
    }

    #[test]
    fn a_numbered_copy_is_the_message_encoded_with_its_number() {
        let frame = Frame::new(Message {
            retained: false,
            number: None,
            topic: Text::from("room/1"),
            payload: Bytes::from_static(b"state"),
        })
        .on_channel(3);
        let template = NumberedMessage::new(&frame).unwrap().unwrap();
        for n in [1, 7, u32::MAX] {
            let mut want = frame.clone();
            if let FrameBody::Message(m) = &mut want.body {
                m.number = Some(n);
            }
            let copy = template.numbered(n);
            assert_eq!(copy, SharedFrame::new(&want).unwrap(), "{n}");
            assert_eq!(
                decode_stream_frame(copy.stream_bytes(), 1 << 16).unwrap(),
                want
            );
        }
        let ping = Frame::new(crate::wire::Ping { timestamp_us: 1 });
        assert!(NumberedMessage::new(&ping).unwrap().is_none());
    }
}
