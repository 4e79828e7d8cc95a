//! The session's own frames: close, heartbeats, acks, fragments, data and errors
//! (docs/PROTOCOL.md sections 4.5-4.10).

use bytes::Bytes;

use super::BodyCodec;
use crate::error::{DecodeError, EncodeError, Malformation};
use crate::wire::code::Reason;
use crate::wire::fields::read_text_rest;
use crate::wire::kind::FrameKind;
use crate::wire::reader::Reader;
use crate::wire::text::Text;
use crate::wire::writer::Writer;

/// Ends the session. The receiver answers with [`CloseAck`] and stops sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Why.
    pub reason: Reason,
    /// A human-readable explanation (may be empty).
    pub message: Text,
}

impl BodyCodec for Close {
    const KIND: FrameKind = FrameKind::Close;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            reason: Reason(r.u16()?),
            message: read_text_rest(r)?,
        })
    }

    fn body_len(&self) -> usize {
        2 + self.message.len()
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u16(self.reason.0);
        w.put_slice(self.message.as_bytes());
    }
}

/// Acknowledges a [`Close`]; carries nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseAck;

impl BodyCodec for CloseAck {
    const KIND: FrameKind = FrameKind::CloseAck;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        r.finish()?;
        Ok(Self)
    }

    fn body_len(&self) -> usize {
        0
    }

    fn emit(&self, _w: &mut Writer) {}
}

/// Heartbeat. The receiver answers with a [`Pong`] echoing `timestamp_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The sender's clock in microseconds; only the sender interprets it.
    pub timestamp_us: u64,
}

/// Answer to a [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The `timestamp_us` of the Ping answered.
    pub timestamp_us: u64,
}

macro_rules! timestamp_body {
    ($ty:ident) => {
        impl BodyCodec for $ty {
            const KIND: FrameKind = FrameKind::$ty;

            fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
                let timestamp_us = r.u64()?;
                r.finish()?;
                Ok(Self { timestamp_us })
            }

            fn body_len(&self) -> usize {
                8
            }

            fn emit(&self, w: &mut Writer) {
                w.put_u64(self.timestamp_us);
            }
        }
    };
}
timestamp_body!(Ping);
timestamp_body!(Pong);

/// Cumulative confirmation of numbered Messages (docs/PROTOCOL.md sections 4.7 and 5.9). From a
/// client: every Message numbered up to and including `through` (in wrapping order) has been
/// delivered to its application, and the server may forget them. From the server: no Message
/// numbered up to `through` will be sent (again); the client stops waiting for any it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The highest delivery number settled without a gap.
    pub through: u32,
}

impl BodyCodec for Ack {
    const KIND: FrameKind = FrameKind::Ack;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let through = r.u32()?;
        r.finish()?;
        Ok(Self { through })
    }

    fn body_len(&self) -> usize {
        4
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.through);
    }
}

/// UDP only: the server's answer to a datagram that verified but named a connection id it does not
/// know (it restarted, or forgot the session), echoing that datagram's packet number and CRC. The
/// client that sent the datagram recognises the echo and ends the session at once instead of
/// waiting for its idle timeout (docs/PROTOCOL.md section 4.11; QUIC's stateless reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    /// The packet number of the datagram that found no session.
    pub packet_number: u32,
    /// That datagram's CRC32 (its last four bytes).
    pub crc: u32,
}

impl BodyCodec for Reset {
    const KIND: FrameKind = FrameKind::Reset;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let packet_number = r.u32()?;
        let crc = r.u32()?;
        r.finish()?;
        Ok(Self { packet_number, crc })
    }

    fn body_len(&self) -> usize {
        8
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.packet_number);
        w.put_u32(self.crc);
    }
}

/// One piece of an encoded frame body too large for one datagram. The pieces of one message share
/// `message_id`; joined in index order they are the body of the original frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// Identifies the message being reassembled, per sender and session.
    pub message_id: u32,
    /// This piece's position, below `count`.
    pub index: u16,
    /// How many pieces the message has; at least 1.
    pub count: u16,
    /// The piece.
    pub data: Bytes,
}

impl BodyCodec for Fragment {
    const KIND: FrameKind = FrameKind::Fragment;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let message_id = r.u32()?;
        let index = r.u16()?;
        let count = r.u16()?;
        if index >= count {
            return Err(DecodeError::Malformed(Malformation::FragmentRange));
        }
        Ok(Self {
            message_id,
            index,
            count,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + 2 + 2 + self.data.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.index >= self.count {
            return Err(EncodeError::InvalidValue("fragment index not below count"));
        }
        Ok(())
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.message_id);
        w.put_u16(self.index);
        w.put_u16(self.count);
        w.put_slice(&self.data);
    }
}

/// Application data on the frame's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The message.
    pub payload: Bytes,
}

impl BodyCodec for Data {
    const KIND: FrameKind = FrameKind::Data;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self { payload: r.rest() })
    }

    fn body_len(&self) -> usize {
        self.payload.len()
    }

    fn emit(&self, w: &mut Writer) {
        w.put_slice(&self.payload);
    }
}

/// A frame was refused, and the session goes on (an ignorable problem, a frame of a kind this side
/// does not serve). Fatal problems are a [`Close`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// Why.
    pub reason: Reason,
    /// The kind byte of the frame refused, 0 if none.
    pub refused_kind: u8,
    /// A human-readable explanation.
    pub message: Text,
}

impl BodyCodec for ErrorFrame {
    const KIND: FrameKind = FrameKind::Error;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            reason: Reason(r.u16()?),
            refused_kind: r.u8()?,
            message: read_text_rest(r)?,
        })
    }

    fn body_len(&self) -> usize {
        2 + 1 + self.message.len()
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u16(self.reason.0);
        w.put_u8(self.refused_kind);
        w.put_slice(self.message.as_bytes());
    }
}
