//! The compact datagram form of versions 2 and 3 (docs/PROTOCOL.md section 2.4), for the
//! datagrams of an established plaintext UDP session:
//!
//! ```text
//! first byte: 1 1 ACK ACK_NOW ONE_FRAME 0 PN_LEN(2) | connection id (u32)
//!   packet number (1, 2 or 4 bytes)
//!   [ largest acked (low 16 bits) | ack delay (u8, 256 µs units) | ack bits (varint) ]   if ACK
//!   { frame length (varint) | frame body, its SEQ field the low 16 bits }*
//!     (ONE_FRAME: a single frame body and no length; version 3: a body `0x00 | rest` shares the
//!     header of the frame before it, its SEQ one more)
//! crc32 (u32)
//! ```
//!
//! What it leaves out the receiver knows: [`CompactContext`] restores the packet number from the
//! largest received, the largest acked from the largest sent, and the session restores each
//! sequence number from its channel (`Frame::parse_compact`).

use bytes::Bytes;

use super::crc;
use super::datagram::{AckBlock, CRC_LEN, Datagram, Form, PacketHeader};
use super::numbers::{expand_at_most, expand_nearest, get_varint};
use crate::error::{DecodeError, Malformation};

/// The two high bits of a compact datagram's first byte (a version-1 datagram starts `0x46`).
pub const COMPACT_FORM: u8 = 0xC0;
/// First-byte flag: an ack block follows the packet number.
pub const COMPACT_ACK: u8 = 0x20;
/// First-byte flag: acknowledge this datagram at once (as `ACK_NOW`, section 7a.2).
pub const COMPACT_ACK_NOW: u8 = 0x10;
/// First-byte flag: the datagram carries exactly one frame, without a length (it runs to the CRC).
pub const COMPACT_ONE_FRAME: u8 = 0x08;
/// The first-byte bit a plain compact datagram keeps 0: set, the datagram is sealed (version 4,
/// section 2.5; [`COMPACT_SEALED`](crate::seal::COMPACT_SEALED)).
pub const COMPACT_RESERVED: u8 = 0x04;
/// First-byte bits that give the packet number's length: 0, 1, 2 for 1, 2, 4 bytes.
pub const COMPACT_PN_LEN: u8 = 0x03;
/// A frame body's first byte that says it shares the header of the frame before it in the
/// datagram (version 3): the same kind, flags and channel, its SEQ one more when it has one; the
/// rest of its body follows. Kind `0x00` is no frame's (section 3.2).
pub const SHARED_HEADER: u8 = 0x00;
/// The shortest compact datagram: first byte, connection id, a one-byte packet number, CRC.
pub const COMPACT_MIN_LEN: usize = 1 + 4 + 1 + CRC_LEN;
/// Units of a compact ack block's delay, in microseconds.
pub const COMPACT_ACK_DELAY_UNIT_US: u16 = 256;
/// The longest varint of a frame length (up to 2^21 - 1, above any datagram).
pub const FRAME_LEN_VARINT_MAX: usize = 3;
/// The longest varint of the ack bits (a `u64`).
pub const ACK_BITS_VARINT_MAX: usize = 10;

/// Whether `bytes` starts as a compact datagram.
pub fn is_compact(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|b| b & COMPACT_FORM == COMPACT_FORM)
}

/// The packet number length code's bytes (`None`: the reserved code 3).
pub fn pn_len_of_code(code: u8) -> Option<usize> {
    match code & COMPACT_PN_LEN {
        0 => Some(1),
        1 => Some(2),
        2 => Some(4),
        _ => None,
    }
}

/// The code of a packet number length of 1, 2 or 4 bytes.
pub fn pn_len_code(len: usize) -> u8 {
    match len {
        1 => 0,
        2 => 1,
        _ => 2,
    }
}

/// The connection id of a compact datagram, checking only its first byte and its length: enough
/// to route it to the session that owns it, which checks the rest.
///
/// # Errors
/// [`Malformation::BadMagic`] when it is not compact, [`DecodeError::Truncated`] when it is shorter
/// than [`COMPACT_MIN_LEN`].
pub fn peek_compact_connection_id(bytes: &[u8]) -> Result<u32, DecodeError> {
    if !is_compact(bytes) {
        return Err(DecodeError::Malformed(Malformation::BadMagic));
    }
    if bytes.len() < COMPACT_MIN_LEN {
        return Err(DecodeError::Truncated);
    }
    Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

/// A compact datagram's packet number field as it is on the wire (its low bits), read from its
/// first bytes alone; `None` for a datagram that is not compact or too short.
pub fn wire_packet_number(bytes: &[u8]) -> Option<u32> {
    if !is_compact(bytes) {
        return None;
    }
    let len = pn_len_of_code(bytes[0])?;
    let field = bytes.get(PN_AT..PN_AT + len)?;
    Some(field.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
}

/// What a receiver knows that a compact datagram leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactContext {
    /// The largest packet number received from the peer (`None`: none yet, 0 is expected).
    pub largest_received: Option<u32>,
    /// The largest packet number this side has sent: an ack block acknowledges at most it.
    pub largest_sent: u32,
}

/// A compact datagram's fields as they are on the wire, before the context restores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactFields {
    /// The connection id.
    pub connection_id: u32,
    /// The packet number's low bits, and how many bytes carried them.
    pub packet_number: (u32, usize),
    /// Largest acked (low 16 bits), delay in 256 µs units, ack bits.
    pub ack: Option<(u16, u8, u64)>,
    /// The `ACK_NOW` flag.
    pub ack_now: bool,
    /// Where the frames start and end.
    pub frames: (usize, usize),
    /// The frame region is one frame body without a length (`ONE_FRAME`).
    pub one_frame: bool,
}

/// Checks a compact datagram's structure, in this order: its form, length, reserved bits and
/// packet number length, the ack block, and that the frame lengths tile the frame region exactly
/// with no empty frame; it carries an ack or a frame. Not its CRC: that covers the whole packet
/// number, which only the receiving session can restore ([`CompactFields::verify`]).
///
/// # Errors
/// The first check that fails.
pub fn check_compact(bytes: &[u8]) -> Result<CompactFields, DecodeError> {
    let connection_id = peek_compact_connection_id(bytes)?;
    let crc_at = bytes.len() - CRC_LEN;
    let first = bytes[0];
    if first & COMPACT_RESERVED != 0 {
        return Err(DecodeError::Malformed(Malformation::ReservedFlags));
    }
    let pn_len =
        pn_len_of_code(first).ok_or(DecodeError::Malformed(Malformation::ReservedFlags))?;
    let body = &bytes[..crc_at];
    let mut at = PN_AT;
    let pn_bytes = body.get(at..at + pn_len).ok_or(DecodeError::Truncated)?;
    let packet_number = pn_bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b));
    at += pn_len;
    let ack = if first & COMPACT_ACK != 0 {
        let fixed = body.get(at..at + 3).ok_or(DecodeError::Truncated)?;
        let largest = u16::from_be_bytes([fixed[0], fixed[1]]);
        let delay = fixed[2];
        at += 3;
        let (bits, n) = get_varint(&body[at..], ACK_BITS_VARINT_MAX)?;
        at += n;
        Some((largest, delay, bits))
    } else {
        None
    };
    let start = at;
    let one_frame = first & COMPACT_ONE_FRAME != 0;
    if one_frame && start == body.len() {
        return Err(DecodeError::Malformed(Malformation::EmptyFrame));
    }
    if one_frame && body[start] == SHARED_HEADER {
        return Err(DecodeError::Malformed(Malformation::SharedHeaderFirst));
    }
    while !one_frame && at < body.len() {
        let (len, n) = get_varint(&body[at..], FRAME_LEN_VARINT_MAX)?;
        if len == 0 {
            return Err(DecodeError::Malformed(Malformation::EmptyFrame));
        }
        if at == start && body.get(at + n) == Some(&SHARED_HEADER) {
            return Err(DecodeError::Malformed(Malformation::SharedHeaderFirst));
        }
        at = at
            .checked_add(n)
            .and_then(|a| a.checked_add(usize::try_from(len).ok()?))
            .filter(|&end| end <= body.len())
            .ok_or(DecodeError::Truncated)?;
    }
    if start == body.len() && ack.is_none() {
        return Err(DecodeError::Malformed(Malformation::EmptyDatagram));
    }
    Ok(CompactFields {
        connection_id,
        packet_number: (packet_number, pn_len),
        ack,
        ack_now: first & COMPACT_ACK_NOW != 0,
        frames: (start, body.len()),
        one_frame,
    })
}

/// Where a compact datagram's packet number starts.
pub const PN_AT: usize = 5;

/// The CRC32 a compact datagram carries: over its bytes before the CRC with the packet number
/// field written whole (four bytes), so that a number restored wrongly (a datagram that arrives
/// very late) does not verify.
pub(super) fn compact_crc(bytes_before_crc: &[u8], pn_len: usize, packet_number: u32) -> u32 {
    crc::crc32_of_parts(&[
        &bytes_before_crc[..PN_AT],
        &packet_number.to_be_bytes(),
        &bytes_before_crc[PN_AT + pn_len..],
    ])
}

/// The CRC a compact datagram carries (section 2.4) of its bytes before the CRC, its packet number's length read
/// from its first byte (a reserved length code reads as four bytes): for a writer that has the
/// datagram but not its fields (a sealed session's copy of what it opened or sealed).
pub fn compact_crc_of(bytes_before_crc: &[u8], packet_number: u32) -> u32 {
    let pn_len = bytes_before_crc
        .first()
        .and_then(|&b| pn_len_of_code(b))
        .unwrap_or(4);
    if bytes_before_crc.len() < PN_AT + pn_len {
        return crc::crc32(bytes_before_crc);
    }
    compact_crc(bytes_before_crc, pn_len, packet_number)
}

impl CompactFields {
    /// Checks the CRC of `bytes` (the datagram these fields are of) with the packet number
    /// `packet_number` restored.
    ///
    /// # Errors
    /// [`DecodeError::BadChecksum`].
    pub fn verify(&self, bytes: &[u8], packet_number: u32) -> Result<(), DecodeError> {
        let crc_at = bytes.len() - CRC_LEN;
        let carried = u32::from_be_bytes([
            bytes[crc_at],
            bytes[crc_at + 1],
            bytes[crc_at + 2],
            bytes[crc_at + 3],
        ]);
        let computed = compact_crc(&bytes[..crc_at], self.packet_number.1, packet_number);
        crc::verify_computed(computed, carried)
    }

    /// The full header, restored from what the receiver knows.
    pub fn header(&self, context: &CompactContext) -> PacketHeader {
        let (truncated, len) = self.packet_number;
        let expected = context.largest_received.map_or(0, |l| l.wrapping_add(1));
        #[allow(clippy::cast_possible_truncation, reason = "at most 4 bytes: 32 bits")]
        let bits = (8 * len) as u32;
        PacketHeader {
            connection_id: u64::from(self.connection_id),
            packet_number: expand_nearest(truncated, bits, expected),
            ack: self.ack.map(|(largest, delay, bits)| AckBlock {
                largest: expand_at_most(u32::from(largest), 16, context.largest_sent),
                delay_us: u16::from(delay).saturating_mul(COMPACT_ACK_DELAY_UNIT_US),
                bits,
            }),
        }
    }
}

impl Datagram {
    /// Validates a compact datagram ([`check_compact`]), restores its header from `context`
    /// and checks its CRC with the packet number restored. Its frame bodies carry 16-bit sequence
    /// numbers: parse them with [`Frame::parse_compact`](super::Frame::parse_compact).
    ///
    /// # Errors
    /// As [`check_compact`], then [`DecodeError::BadChecksum`].
    pub fn parse_compact(bytes: Bytes, context: &CompactContext) -> Result<Self, DecodeError> {
        let fields = check_compact(&bytes)?;
        let header = fields.header(context);
        fields.verify(&bytes, header.packet_number)?;
        Ok(Self::of_compact(&fields, header, bytes))
    }

    /// [`Datagram::parse_compact`], or, if it fails, a server's lone Reset: outside the packet
    /// numbers, number 0 taken as it is (section 4.11).
    ///
    /// # Errors
    /// As [`Datagram::parse_compact`] under `context`.
    pub fn parse_compact_or_reset(
        bytes: Bytes,
        context: &CompactContext,
    ) -> Result<Self, DecodeError> {
        Self::parse_compact(bytes.clone(), context).or_else(|e| Self::compact_reset(bytes).ok_or(e))
    }

    /// A server's lone Reset in the compact form: outside the packet numbers, its number 0 taken
    /// as it is and its CRC verified with it (section 4.11). `None` for anything else.
    pub fn compact_reset(bytes: Bytes) -> Option<Self> {
        Self::parse_compact(bytes, &CompactContext::default())
            .ok()
            .filter(|d| d.header.packet_number == 0 && d.is_lone_reset())
    }

    /// Whether it holds one frame, and that a Reset (by its kind byte).
    fn is_lone_reset(&self) -> bool {
        let mut frames = self.frames();
        frames
            .next()
            .is_some_and(|f| f.first() == Some(&(super::FrameKind::Reset as u8)))
            && frames.next().is_none()
    }

    /// A sealed compact datagram just opened (section 2.5): its header (SEALED clear) and what it
    /// carried, then the four bytes of the CRC's place, unread (the tag proved the bytes whole).
    /// Its packet number is `packet_number`, as the opening restored it; the rest of the header
    /// comes from `context`.
    ///
    /// # Errors
    /// As [`check_compact`].
    pub fn parse_compact_opened(
        bytes: Bytes,
        context: &CompactContext,
        packet_number: u32,
    ) -> Result<Self, DecodeError> {
        let fields = check_compact(&bytes)?;
        let mut header = fields.header(context);
        header.packet_number = packet_number;
        Ok(Self::of_compact(&fields, header, bytes))
    }

    /// [`Datagram::parse_compact`] without the CRC, for a reader that cannot know the packet
    /// numbers (a capture tool that joined late, a test): what it restores may be wrong, and
    /// nothing proves the bytes whole.
    ///
    /// # Errors
    /// As [`check_compact`].
    pub fn parse_compact_unverified(
        bytes: Bytes,
        context: &CompactContext,
    ) -> Result<Self, DecodeError> {
        let fields = check_compact(&bytes)?;
        let header = fields.header(context);
        Ok(Self::of_compact(&fields, header, bytes))
    }

    fn of_compact(fields: &CompactFields, header: PacketHeader, mut bytes: Bytes) -> Self {
        let (start, end) = fields.frames;
        bytes.truncate(end);
        bytes::Buf::advance(&mut bytes, start);
        let form = if fields.one_frame {
            Form::CompactOne
        } else {
            Form::Compact
        };
        Self::from_parts(header, fields.ack_now, bytes, form)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::wire::{Data, DatagramBuilder, Frame, Ping};
    use proptest::prelude::*;

    fn message(seq: u32) -> Frame {
        let mut f = Frame::new(Data {
            payload: Bytes::from_static(b"hi"),
        });
        f.seq = Some(seq);
        f
    }

    fn build(
        header: &PacketHeader,
        acked: Option<u32>,
        frames: &[Frame],
        ack_now: bool,
    ) -> Vec<u8> {
        let mut buf = [0u8; 1200];
        let mut b = DatagramBuilder::new_compact(&mut buf, header, acked).unwrap();
        for f in frames {
            assert!(b.push(f).unwrap());
        }
        if ack_now {
            b.ask_ack_now();
        }
        let n = b.finish().unwrap();
        buf[..n].to_vec()
    }

    /// Two messages of one channel, built as version 3 builds them.
    fn shared_pair() -> Vec<u8> {
        let header = PacketHeader {
            connection_id: 0x0102_0304,
            packet_number: 0x0123_4567,
            ack: None,
        };
        let mut buf = [0u8; 1200];
        let mut b = DatagramBuilder::new_compact(&mut buf, &header, Some(0x0123_4560)).unwrap();
        b.share_headers();
        for seq in [0x0102, 0x0103] {
            let mut body = [0u8; 9];
            message(seq).emit(&mut body).unwrap();
            assert!(b.push_encoded(&body));
        }
        let n = b.finish().unwrap();
        buf[..n].to_vec()
    }

    /// Section 2.4's example of a frame sharing the header of the one before it: byte for byte,
    /// and read back whole.
    #[test]
    fn a_shared_header_vector() {
        let bytes = shared_pair();
        assert_eq!(
            bytes,
            [
                0xc0, 0x01, 0x02, 0x03, 0x04, 0x67, 0x07, 0x20, 0x80, 0x00, 0x01, 0x02, b'h', b'i',
                0x03, 0x00, b'h', b'i', 0x3a, 0x0f, 0x23, 0x77
            ]
        );
        let context = CompactContext {
            largest_received: Some(0x0123_4566),
            largest_sent: 0,
        };
        let d = Datagram::parse_compact(Bytes::from(bytes), &context).unwrap();
        let frames: Vec<Frame> = d
            .frames()
            .map(|b| Frame::parse_compact(b, |_, low| u32::from(low)).unwrap())
            .collect();
        assert_eq!(frames, [message(0x0102), message(0x0103)]);
    }

    #[test]
    fn a_header_is_shared_only_with_the_same_kind_flags_channel_and_the_next_seq() {
        let header = PacketHeader {
            connection_id: 9,
            packet_number: 1,
            ack: None,
        };
        let on = |channel: u8, seq: Option<u32>| {
            let mut f = message(seq.unwrap_or(0)).on_channel(channel);
            f.seq = seq;
            f
        };
        let frames = [
            on(0, Some(5)),
            on(0, Some(6)),                                     // shared
            on(0, Some(8)),                                     // a gap: not shared
            on(1, Some(9)),                                     // another channel: not shared
            on(1, None),                                        // no SEQ against SEQ: not shared
            on(1, None),                                        // shared
            Frame::new(Ping { timestamp_us: 1 }).on_channel(1), // another kind
        ];
        let mut buf = [0u8; 1200];
        let mut b = DatagramBuilder::new_compact(&mut buf, &header, Some(0)).unwrap();
        b.share_headers();
        for f in &frames {
            let mut body = vec![0u8; f.encoded_len()];
            f.emit(&mut body).unwrap();
            assert!(b.push_encoded(&body));
        }
        let n = b.finish().unwrap();
        let d = Datagram::parse_compact(
            Bytes::copy_from_slice(&buf[..n]),
            &CompactContext::default(),
        )
        .unwrap();
        let back: Vec<Frame> = d
            .frames()
            .map(|b| Frame::parse_compact(b, |_, low| u32::from(low)).unwrap())
            .collect();
        assert_eq!(back, frames);
        // On the wire: which frames began with the marker.
        let region = &buf[6..n - 4];
        let mut at = 0;
        let mut marked = Vec::new();
        while at < region.len() {
            let len = usize::from(region[at]);
            marked.push(region[at + 1] == SHARED_HEADER);
            at += 1 + len;
        }
        assert_eq!(marked, [false, true, false, false, false, true, false]);
    }

    #[test]
    fn a_first_frame_cannot_share_a_header() {
        let mut bytes = shared_pair();
        // Drop the first frame: the shared one comes first (lengths still tile).
        bytes.drain(6..14);
        assert_eq!(
            check_compact(&bytes).err(),
            Some(DecodeError::Malformed(Malformation::SharedHeaderFirst))
        );
        // As the one frame of a ONE_FRAME datagram.
        let one = [0xc8, 0, 0, 0, 9, 1, SHARED_HEADER, b'h', b'i', 0, 0, 0, 0];
        assert_eq!(
            check_compact(&one).err(),
            Some(DecodeError::Malformed(Malformation::SharedHeaderFirst))
        );
    }

    /// docs/PROTOCOL.md section 2.4's examples, byte for byte.
    #[test]
    fn the_spec_vectors() {
        let header = PacketHeader {
            connection_id: 0x0102_0304,
            packet_number: 0x0123_4567,
            ack: None,
        };
        let bytes = build(&header, Some(0x0123_4560), &[message(0x0000_0102)], false);
        assert_eq!(
            bytes,
            [
                0xc8, 0x01, 0x02, 0x03, 0x04, 0x67, 0x20, 0x80, 0x00, 0x01, 0x02, b'h', b'i', 0xd3,
                0xc2, 0xa9, 0x05
            ]
        );
        let ack_only = PacketHeader {
            connection_id: 0x0102_0304,
            packet_number: 0x0123_4567,
            ack: Some(AckBlock {
                largest: 0x89ab_cdef,
                delay_us: 1000,
                bits: 0b111,
            }),
        };
        let bytes = build(&ack_only, Some(0x0123_4560), &[], false);
        assert_eq!(
            bytes,
            [
                0xe0, 0x01, 0x02, 0x03, 0x04, 0x67, 0xcd, 0xef, 0x03, 0x07, 0x01, 0x57, 0xd2, 0x51
            ]
        );
    }

    /// A datagram so late that its one-byte packet number is restored to another number fails
    /// its CRC, instead of passing for a new datagram (an unreliable message delivered twice).
    #[test]
    fn a_number_restored_wrongly_does_not_verify() {
        let header = PacketHeader {
            connection_id: 1,
            packet_number: 10,
            ack: None,
        };
        let bytes = Bytes::from(build(&header, Some(9), &[message(3)], false));
        let on_time = CompactContext {
            largest_received: Some(9),
            largest_sent: 0,
        };
        assert!(Datagram::parse_compact(bytes.clone(), &on_time).is_ok());
        // 300 packets later the same low byte names packet 266.
        let late = CompactContext {
            largest_received: Some(300),
            largest_sent: 0,
        };
        assert!(matches!(
            Datagram::parse_compact(bytes, &late),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn round_trips_with_the_receivers_context() {
        let header = PacketHeader {
            connection_id: 7,
            packet_number: 1000,
            ack: Some(AckBlock {
                largest: 70_000,
                delay_us: 25_000,
                bits: u64::MAX,
            }),
        };
        let frames = [message(66_000), Frame::new(Ping { timestamp_us: 9 })];
        let bytes = build(&header, Some(990), &frames, true);
        assert_eq!(bytes[0] & COMPACT_PN_LEN, 0, "ten unacked: one byte");
        let context = CompactContext {
            largest_received: Some(995),
            largest_sent: 70_010,
        };
        let d = Datagram::parse_compact(Bytes::from(bytes), &context).unwrap();
        assert!(d.is_compact() && d.ack_now());
        let ack = d.header.ack.unwrap();
        // The delay travels in 256 µs units, rounded down.
        assert_eq!(
            (ack.largest, ack.delay_us, ack.bits),
            (70_000, 24_832, u64::MAX)
        );
        assert_eq!(d.header.packet_number, 1000);
        assert_eq!(d.header.connection_id, 7);
        let got: Vec<Frame> = d
            .frames()
            .map(|b| {
                Frame::parse_compact(b, |_, s| expand_nearest(u32::from(s), 16, 65_990)).unwrap()
            })
            .collect();
        assert_eq!(got, frames);
    }

    #[test]
    fn what_the_form_forbids_is_refused() {
        let header = PacketHeader {
            connection_id: 1,
            packet_number: 0,
            ack: None,
        };
        // Two frames, each after its length.
        let good = build(&header, None, &[message(0), message(1)], false);
        assert_eq!(good[0] & COMPACT_ONE_FRAME, 0);
        let ctx = CompactContext::default();
        // Packet number 0 in one byte: the CRC covers it as four.
        let resealed = |mut b: Vec<u8>| {
            let n = b.len();
            let crc = compact_crc(&b[..n - 4], 1, 0);
            b[n - 4..].copy_from_slice(&crc.to_be_bytes());
            Datagram::parse_compact(Bytes::from(b), &ctx)
        };
        assert!(resealed(good.clone()).is_ok());
        let mut bad = good.clone();
        bad[0] |= COMPACT_RESERVED;
        assert_eq!(
            resealed(bad),
            Err(DecodeError::Malformed(Malformation::ReservedFlags))
        );
        let mut bad = good.clone();
        bad[0] |= 0x03;
        assert_eq!(
            resealed(bad),
            Err(DecodeError::Malformed(Malformation::ReservedFlags)),
            "packet number length code 3"
        );
        let mut bad = good.clone();
        bad[6] += 1;
        assert_eq!(
            resealed(bad),
            Err(DecodeError::Truncated),
            "a frame past the end"
        );
        let mut bad = good.clone();
        bad[6] = 0;
        assert_eq!(
            resealed(bad),
            Err(DecodeError::Malformed(Malformation::EmptyFrame))
        );
        let mut bad = good.clone();
        bad[6] |= 0x80;
        assert!(
            resealed(bad).is_err(),
            "a length not in its shortest form or running on"
        );
        assert_eq!(
            resealed(good[..6].iter().copied().chain([0; 4]).collect()),
            Err(DecodeError::Malformed(Malformation::EmptyDatagram))
        );
        // ONE_FRAME with nothing after the header.
        assert_eq!(
            resealed(vec![0xc8, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
            Err(DecodeError::Malformed(Malformation::EmptyFrame))
        );
        let mut bad = good.clone();
        bad[9] ^= 1;
        assert!(matches!(
            Datagram::parse_compact(Bytes::from(bad), &ctx),
            Err(DecodeError::BadChecksum { .. })
        ));
        assert_eq!(
            Datagram::parse_compact(Bytes::from_static(&[0xc0, 0, 0, 0, 1, 0, 0, 0, 0]), &ctx),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            peek_compact_connection_id(b"FW\x01\x00"),
            Err(DecodeError::Malformed(Malformation::BadMagic))
        );
        assert!(!is_compact(b"FW") && is_compact(&[0xc1]));
        // Byte 3 of a compact datagram is its connection id's, not a SEALED flag (the server
        // once left such datagrams out of its capture, taking them for sealed).
        let mut sealed_looking = good.clone();
        sealed_looking[3] = 0xff;
        assert!(!crate::seal::is_sealed(&sealed_looking));
        let mut buf = [0u8; 64];
        let big = PacketHeader {
            connection_id: 1 << 32,
            ..header
        };
        assert!(DatagramBuilder::new_compact(&mut buf, &big, None).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = bytes;
            if let Some(b) = bytes.first_mut() {
                *b |= COMPACT_FORM;
            }
            if let Ok(fields) = check_compact(&bytes) {
                let n = bytes.len();
                let crc = compact_crc(&bytes[..n - 4], fields.packet_number.1, fields.header(&CompactContext::default()).packet_number);
                bytes[n - 4..].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok(d) = Datagram::parse_compact(Bytes::from(bytes), &CompactContext::default()) {
                for body in d.frames() {
                    let _ = Frame::parse_compact(body, |_, s| u32::from(s));
                }
            }
        }

        #[test]
        fn built_datagrams_come_back(pn: u32, back in 0u32..100, largest_received in proptest::option::of(any::<u32>()),
                                    acked in proptest::option::of((any::<u32>(), 0u16..=65_535, any::<u64>())),
                                    seqs in proptest::collection::vec(any::<u32>(), 0..8)) {
            let header = PacketHeader {
                connection_id: 0xdead_beef,
                packet_number: pn,
                ack: acked.map(|(largest, delay_us, bits)| AckBlock { largest, delay_us, bits }),
            };
            let frames: Vec<Frame> = seqs.iter().map(|&s| message(s)).collect();
            prop_assume!(!frames.is_empty() || header.ack.is_some());
            let bytes = build(&header, Some(pn.wrapping_sub(back + 1)), &frames, false);
            // The receiver has seen somewhere from what was acked to the packet before.
            let context = CompactContext {
                largest_received: Some(pn.wrapping_sub(1 + largest_received.map_or(0, |r| r % (back + 1)))),
                largest_sent: header.ack.map_or(0, |a| a.largest.wrapping_add(u32::from(acked.unwrap().1) % 1000)),
            };
            let d = Datagram::parse_compact(Bytes::from(bytes), &context).unwrap();
            prop_assert_eq!(d.header.packet_number, pn);
            prop_assert_eq!(d.header.ack.map(|a| (a.largest, a.bits)), header.ack.map(|a| (a.largest, a.bits)));
            let got: Vec<u16> = d.frames().map(|b| {
                let mut low = 0;
                Frame::parse_compact(b, |_, s| { low = s; u32::from(s) }).unwrap();
                low
            }).collect();
            let want: Vec<u16> = seqs.iter().map(|&s| s as u16).collect();
            prop_assert_eq!(got, want);
        }
    }
}
