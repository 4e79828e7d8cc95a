//! A frame encoded once and sent to many peers (a publish fanned out to its subscribers).
//!
//! The stream frame (`length | version | body | crc32`, section 2.1) is written once; the frame
//! body that a datagram carries (section 2.2) is a slice of the same buffer. Handing either to a
//! session copies no payload and computes no CRC per subscriber.

use bytes::{Bytes, BytesMut};

use super::frame::Frame;
use super::stream::{LENGTH_PREFIX_LEN, encode_stream_frame_into};
use crate::error::EncodeError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, Text, decode_stream_frame};

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
}
