//! Datagram framing for UDP (docs/PROTOCOL.md section 2.2):
//!
//! ```text
//! magic "FW" | version | flags | connection id (u64) | packet number (u32)
//!   [ largest acked (u32) | ack delay µs (u16) | ack bits (u64) ]   if flags & ACK
//!   { frame length (u16) | frame body }*
//! crc32 (u32)
//! ```
//!
//! [`Datagram::parse`] checks the whole datagram at once (magic, version, checksum, header, and that
//! the frame lengths tile the rest exactly), so iterating over its frames cannot fail.
//! [`DatagramBuilder`](super::DatagramBuilder) coalesces frames into a caller-supplied buffer of the datagram size.

use bytes::Bytes;

use super::crc;
use super::{MAGIC, VERSION};
use crate::error::{DecodeError, Malformation};

/// Bytes of the packet header without the ack block.
pub const PACKET_HEADER_LEN: usize = 16;
/// Bytes of the ack block.
pub const ACK_BLOCK_LEN: usize = 14;
/// Bytes of the trailing CRC32.
pub const CRC_LEN: usize = 4;
/// Bytes of each frame's length prefix inside a datagram.
pub const FRAME_LEN_PREFIX: usize = 2;
/// The packet flag bit that says an ack block follows the packet number.
pub const ACK_FLAG: u8 = 0x01;
/// The packet flag bit by which the sender asks for this datagram to be acknowledged at once,
/// without the receiver's usual ack delay (docs/PROTOCOL.md section 7a.2).
pub const ACK_NOW_FLAG: u8 = 0x02;

/// Acknowledgement of received packets, carried in the packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBlock {
    /// The largest packet number received.
    pub largest: u32,
    /// How long the sender held this ack after receiving `largest`, in microseconds (saturating).
    pub delay_us: u16,
    /// Bit `n` set: packet `largest - 1 - n` (wrapping) was received.
    pub bits: u64,
}

impl AckBlock {
    /// The packet numbers this block acknowledges, largest first.
    pub fn acked(&self) -> impl Iterator<Item = u32> + '_ {
        core::iter::once(self.largest).chain(
            (0..64u32)
                .filter(|n| self.bits & (1u64 << n) != 0)
                .map(|n| self.largest.wrapping_sub(1 + n)),
        )
    }
}

/// The validated packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Names the session, whatever address the datagram came from; 0 before the Welcome.
    pub connection_id: u64,
    /// This packet's number, increasing by one per packet sent (wrapping).
    pub packet_number: u32,
    /// Packets from the peer that this packet acknowledges.
    pub ack: Option<AckBlock>,
}

impl PacketHeader {
    /// The encoded length of the header.
    pub fn len(&self) -> usize {
        PACKET_HEADER_LEN + if self.ack.is_some() { ACK_BLOCK_LEN } else { 0 }
    }

    /// Whether the header is empty (never: kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A checked view of a received datagram's fixed fields (STYLE.md 6). Only built by
/// [`PacketView::new_checked`], after which no accessor can go out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    bytes: &'a [u8],
}

mod field {
    use core::ops::Range;
    pub(super) const MAGIC: Range<usize> = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const FLAGS: usize = 3;
    pub(super) const CONNECTION_ID: Range<usize> = 4..12;
    pub(super) const PACKET_NUMBER: Range<usize> = 12..16;
    pub(super) const ACK_LARGEST: Range<usize> = 16..20;
    pub(super) const ACK_DELAY: Range<usize> = 20..22;
    pub(super) const ACK_BITS: Range<usize> = 22..30;
}

fn be<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    out
}

/// The connection id of `bytes` (of either form, section 2.4), checking only the magic, the
/// version and the length (a compact datagram: its first byte and length): enough to
/// route a datagram to the session that owns it, which checks the rest (the CRC above all) when it
/// parses it. A datagram's checksum is computed once, by its session, not once per routing step.
///
/// # Errors
/// As [`PacketView::new_checked`], less the checksum and flag checks.
pub fn peek_connection_id(bytes: &[u8]) -> Result<u64, DecodeError> {
    if super::compact::is_compact(bytes) {
        return super::compact::peek_compact_connection_id(bytes).map(u64::from);
    }
    check_fixed_header(bytes)?;
    Ok(u64::from_be_bytes(be(&bytes[field::CONNECTION_ID])))
}

/// The checks every reader of a datagram starts with: the magic (so stray traffic costs two byte
/// compares), the version, and room for the header and the CRC.
fn check_fixed_header(bytes: &[u8]) -> Result<(), DecodeError> {
    match bytes.get(field::MAGIC) {
        Some(m) if m == MAGIC => {}
        Some(_) => return Err(DecodeError::Malformed(Malformation::BadMagic)),
        None if bytes.first().is_some_and(|&b| b != MAGIC[0]) => {
            return Err(DecodeError::Malformed(Malformation::BadMagic));
        }
        None => return Err(DecodeError::Truncated),
    }
    let version = *bytes.get(field::VERSION).ok_or(DecodeError::Truncated)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    if bytes.len() < PACKET_HEADER_LEN + CRC_LEN {
        return Err(DecodeError::Truncated);
    }
    Ok(())
}

impl<'a> PacketView<'a> {
    /// Checks, in this order: the magic (so stray traffic costs two byte compares), the version, the
    /// length, the checksum, and the reserved flag bits.
    ///
    /// # Errors
    /// [`Malformation::BadMagic`], [`DecodeError::UnsupportedVersion`], [`DecodeError::Truncated`],
    /// [`DecodeError::BadChecksum`] or [`Malformation::ReservedFlags`].
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::checked(bytes, true)
    }

    /// [`PacketView::new_checked`], with or without the checksum (a datagram a session's keys
    /// just opened has had its integrity proved by the tag, and its CRC computed by the opening).
    fn checked(bytes: &'a [u8], verify_crc: bool) -> Result<Self, DecodeError> {
        check_fixed_header(bytes)?;
        if verify_crc {
            let crc_at = bytes.len() - CRC_LEN;
            crc::verify(&bytes[..crc_at], u32::from_be_bytes(be(&bytes[crc_at..])))?;
        }
        let flags = bytes[field::FLAGS];
        if flags & !(ACK_FLAG | ACK_NOW_FLAG) != 0 {
            return Err(DecodeError::Malformed(Malformation::ReservedFlags));
        }
        if flags & ACK_FLAG != 0 && bytes.len() < PACKET_HEADER_LEN + ACK_BLOCK_LEN + CRC_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// As [`PacketView::new_checked`], and also takes a sealed datagram (docs/PROTOCOL.md section
    /// 2.3), of which only the header can be checked without its session's keys: for a server
    /// that has no such session and answers with a Reset.
    ///
    /// # Errors
    /// As [`PacketView::new_checked`]; for a sealed datagram, reserved flags or a length too short
    /// for a header, one byte and the tag.
    pub fn new_checked_or_sealed(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if !crate::seal::is_sealed(bytes) {
            return Self::new_checked(bytes);
        }
        check_fixed_header(bytes)?;
        if bytes[field::FLAGS] & !(ACK_FLAG | ACK_NOW_FLAG | crate::seal::SEALED_FLAG) != 0 {
            return Err(DecodeError::Malformed(Malformation::ReservedFlags));
        }
        if bytes.len() < PACKET_HEADER_LEN + 1 + crate::seal::TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// The connection id.
    pub fn connection_id(&self) -> u64 {
        u64::from_be_bytes(be(&self.bytes[field::CONNECTION_ID]))
    }

    /// The packet number.
    pub fn packet_number(&self) -> u32 {
        u32::from_be_bytes(be(&self.bytes[field::PACKET_NUMBER]))
    }

    /// The ack block, if the ACK flag is set.
    pub fn ack(&self) -> Option<AckBlock> {
        (self.bytes[field::FLAGS] & ACK_FLAG != 0).then(|| AckBlock {
            largest: u32::from_be_bytes(be(&self.bytes[field::ACK_LARGEST])),
            delay_us: u16::from_be_bytes(be(&self.bytes[field::ACK_DELAY])),
            bits: u64::from_be_bytes(be(&self.bytes[field::ACK_BITS])),
        })
    }

    /// Whether the sender asked for an immediate acknowledgement (the `ACK_NOW` flag).
    pub fn ack_now(&self) -> bool {
        self.bytes[field::FLAGS] & ACK_NOW_FLAG != 0
    }

    /// The datagram's CRC32 (its last four bytes, verified); of a sealed datagram, the last four
    /// bytes of its tag (what a Reset echoes).
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(be(&self.bytes[self.bytes.len() - CRC_LEN..]))
    }

    /// The datagram's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the datagram is empty (never: a checked one holds at least a header and a CRC).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The validated header.
    pub fn header(&self) -> PacketHeader {
        PacketHeader {
            connection_id: self.connection_id(),
            packet_number: self.packet_number(),
            ack: self.ack(),
        }
    }

    /// The range of the frame region: after the header, before the CRC.
    fn frames_range(&self) -> core::ops::Range<usize> {
        self.header().len()..self.bytes.len() - CRC_LEN
    }
}

/// A received, fully validated datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The packet header.
    pub header: PacketHeader,
    ack_now: bool,
    frames: Bytes,
    form: Form,
}

/// How a datagram's frame region is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// Version 1: each frame after a `u16` length.
    Standard,
    /// Compact (section 2.4): each frame after a varint length, SEQ fields of 16 bits.
    Compact,
    /// Compact, one frame and no length.
    CompactOne,
}

impl Datagram {
    /// Validates a datagram: the [`PacketView`] checks, then that the frame lengths tile the frame
    /// region exactly, no frame is empty, and the datagram carries an ack or at least one frame.
    ///
    /// Frame bodies are not parsed here: [`Frame::parse`](super::Frame::parse) each one from [`Datagram::frames`], so that
    /// one frame of an unknown ignorable kind does not cost the others.
    ///
    /// # Errors
    /// As [`PacketView::new_checked`], then [`DecodeError::Truncated`] for a frame length running
    /// past the end, [`Malformation::EmptyFrame`] or [`Malformation::EmptyDatagram`].
    pub fn parse(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::parse_checked(bytes, true)
    }

    /// [`Datagram::parse`] for a datagram a session opened
    /// ([`Sealer::open_in_place`](crate::seal::Sealer::open_in_place)): its tag proved it whole,
    /// so its last four bytes, the CRC's place, are not read.
    ///
    /// # Errors
    /// As [`Datagram::parse`], less the checksum.
    pub fn parse_opened(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::parse_checked(bytes, false)
    }

    fn parse_checked(bytes: Bytes, verify_crc: bool) -> Result<Self, DecodeError> {
        let view = PacketView::checked(&bytes, verify_crc)?;
        let header = view.header();
        let ack_now = view.ack_now();
        let range = view.frames_range();
        let mut region = &bytes[range.clone()];
        if region.is_empty() && header.ack.is_none() {
            return Err(DecodeError::Malformed(Malformation::EmptyDatagram));
        }
        while !region.is_empty() {
            let [hi, lo, rest @ ..] = region else {
                return Err(DecodeError::Truncated);
            };
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len == 0 {
                return Err(DecodeError::Malformed(Malformation::EmptyFrame));
            }
            region = rest.get(len..).ok_or(DecodeError::Truncated)?;
        }
        let mut frames = bytes;
        frames.truncate(range.end);
        bytes::Buf::advance(&mut frames, range.start);
        Ok(Self::from_parts(header, ack_now, frames, Form::Standard))
    }

    /// A datagram from its checked parts: the frame region tiles exactly in its form.
    pub(super) fn from_parts(
        header: PacketHeader,
        ack_now: bool,
        frames: Bytes,
        form: Form,
    ) -> Self {
        Self {
            header,
            ack_now,
            frames,
            form,
        }
    }

    /// Whether it came in the compact form (section 2.4), whose frame bodies carry 16-bit
    /// sequence numbers.
    pub fn is_compact(&self) -> bool {
        self.form != Form::Standard
    }

    /// Whether the sender asked for an immediate acknowledgement (the `ACK_NOW` flag).
    pub fn ack_now(&self) -> bool {
        self.ack_now
    }

    /// The frame bodies in the datagram, in order, each ready for [`Frame::parse`](super::Frame::parse) (of a compact one,
    /// [`Frame::parse_compact`](super::Frame::parse_compact)).
    pub fn frames(&self) -> DatagramFrames {
        DatagramFrames {
            parts: self.frame_parts(),
        }
    }

    /// The frames as they lie in the datagram: what a receiver reads each from without copying a
    /// frame that shares a header (version 3) into a body of its own.
    pub fn frame_parts(&self) -> FrameParts {
        FrameParts {
            region: self.frames.clone(),
            form: self.form,
            previous: None,
        }
    }
}

/// Iterates over the frame bodies of a validated [`Datagram`]. In a compact datagram, a frame that
/// shares the header of the one before it (version 3, section 2.4) comes out whole: that header,
/// its SEQ field one more, then the rest of its body ([`FramePart::into_whole`]).
#[derive(Debug, Clone)]
pub struct DatagramFrames {
    parts: FrameParts,
}

impl Iterator for DatagramFrames {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.parts.next().map(FramePart::into_whole)
    }
}

/// A frame of a datagram as it lies in it: its body, or (version 3) the header it shares and the
/// rest of its body, so that a receiver reads it without putting it together first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePart {
    /// The header it shares (kind, flags, channel, and a 16-bit SEQ field already one more) and
    /// that header's length, 3 or 5; `None` for a frame whose body is all there.
    shared: Option<([u8; 5], usize)>,
    /// The body as the datagram holds it: after the `0x00` marker when `shared`.
    body: Bytes,
}

impl FramePart {
    /// The frame's kind byte.
    pub fn kind(&self) -> Option<u8> {
        match &self.shared {
            Some((head, _)) => Some(head[0]),
            None => self.body.first().copied(),
        }
    }

    /// The flags of the frame's header, if it has one.
    pub fn flags(&self) -> Option<u8> {
        match &self.shared {
            Some((head, _)) => Some(head[1]),
            None => self.body.get(1).copied(),
        }
    }

    /// The length of the whole body it stands for.
    pub fn whole_len(&self) -> usize {
        self.shared.map_or(0, |(_, len)| len) + self.body.len()
    }

    /// The header it shares, if any, and the rest of its body.
    pub(crate) fn into_raw(self) -> (Option<([u8; 5], usize)>, Bytes) {
        (self.shared, self.body)
    }

    /// The frame body whole: copied together for a frame that shares a header.
    pub fn into_whole(self) -> Bytes {
        match self.shared {
            None => self.body,
            Some((head, len)) => {
                let mut whole = alloc::vec::Vec::with_capacity(len + self.body.len());
                whole.extend_from_slice(&head[..len]);
                whole.extend_from_slice(&self.body);
                Bytes::from(whole)
            }
        }
    }
}

/// Iterates over the frames of a validated [`Datagram`] as they lie ([`FramePart`]).
#[derive(Debug, Clone)]
pub struct FrameParts {
    region: Bytes,
    form: Form,
    /// The last compact frame's header as the wire has it (kind, flags, channel, and the SEQ
    /// field's two bytes when SEQ is set), and its length.
    previous: Option<([u8; 5], usize)>,
}

impl FrameParts {
    /// A compact frame body: the header it shares, if it starts with the marker, which then
    /// becomes the last header; else its own.
    fn part(&mut self, mut body: Bytes) -> FramePart {
        if body.first() == Some(&super::compact::SHARED_HEADER)
            && let Some((mut head, len)) = self.previous
        {
            if len == 5 {
                let seq = u16::from_be_bytes([head[3], head[4]]).wrapping_add(1);
                head[3..5].copy_from_slice(&seq.to_be_bytes());
            }
            self.previous = Some((head, len));
            bytes::Buf::advance(&mut body, 1);
            return FramePart {
                shared: Some((head, len)),
                body,
            };
        }
        self.previous = match &body[..] {
            [kind, flags, channel, hi, lo, ..] if flags & super::frame::SEQ_FLAG != 0 => {
                Some(([*kind, *flags, *channel, *hi, *lo], 5))
            }
            [_, flags, ..] if flags & super::frame::SEQ_FLAG != 0 => None,
            [kind, flags, channel, ..] => Some(([*kind, *flags, *channel, 0, 0], 3)),
            _ => None,
        };
        FramePart { shared: None, body }
    }
}

impl Iterator for FrameParts {
    type Item = FramePart;

    fn next(&mut self) -> Option<FramePart> {
        if self.region.is_empty() {
            return None;
        }
        let (len, prefix) = if self.form == Form::CompactOne {
            (self.region.len(), 0)
        } else if self.form == Form::Compact {
            let (len, n) =
                super::numbers::get_varint(&self.region, super::compact::FRAME_LEN_VARINT_MAX)
                    .ok()?;
            (usize::try_from(len).ok()?, n)
        } else {
            let prefix = self.region.get(..FRAME_LEN_PREFIX)?;
            (
                usize::from(u16::from_be_bytes([prefix[0], prefix[1]])),
                FRAME_LEN_PREFIX,
            )
        };
        let end = prefix + len;
        if end > self.region.len() {
            // Unreachable for a validated datagram; end quietly rather than panic.
            self.region.clear();
            return None;
        }
        let body = self.region.slice(prefix..end);
        bytes::Buf::advance(&mut self.region, end);
        if self.form == Form::Compact {
            return Some(self.part(body));
        }
        Some(FramePart { shared: None, body })
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::wire::DatagramBuilder;
    use crate::wire::frame::Frame;
    use crate::wire::frames::{Data, Ping};

    fn header(ack: bool) -> PacketHeader {
        PacketHeader {
            connection_id: 0x0102_0304_0506_0708,
            packet_number: 9,
            ack: ack.then_some(AckBlock {
                largest: 100,
                delay_us: 250,
                bits: 0b101,
            }),
        }
    }

    #[test]
    fn coalesces_until_full_then_round_trips() {
        let mut buf = [0u8; 120];
        let mut b = DatagramBuilder::new(&mut buf, &header(true)).unwrap();
        let mut pushed = Vec::new();
        for i in 0..100u64 {
            let f = Frame::new(Ping { timestamp_us: i });
            if !b.push(&f).unwrap() {
                break;
            }
            pushed.push(f);
        }
        // 120 - 30 header - 4 crc = 86 bytes; each ping is 2 + 3 + 8 = 13.
        assert_eq!(pushed.len(), 6);
        let n = b.finish().unwrap();
        let d = Datagram::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
        assert_eq!(d.header, header(true));
        let got: Vec<Frame> = d.frames().map(|b| Frame::parse(b).unwrap()).collect();
        assert_eq!(got, pushed);
    }

    #[test]
    fn ack_block_lists_packets() {
        let got: Vec<u32> = header(true).ack.unwrap().acked().collect();
        assert_eq!(got, [100, 99, 97]);
        let wrap = AckBlock {
            largest: 0,
            delay_us: 0,
            bits: 1,
        };
        assert_eq!(wrap.acked().collect::<Vec<_>>(), [0, u32::MAX]);
    }

    #[test]
    fn rejects_stray_empty_and_broken_datagrams() {
        assert_eq!(
            Datagram::parse(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n")),
            Err(DecodeError::Malformed(Malformation::BadMagic))
        );
        assert_eq!(
            Datagram::parse(Bytes::from_static(b"X")),
            Err(DecodeError::Malformed(Malformation::BadMagic))
        );
        assert_eq!(
            Datagram::parse(Bytes::from_static(b"F")),
            Err(DecodeError::Truncated)
        );
        let mut buf = [0u8; 64];
        let b = DatagramBuilder::new(&mut buf, &header(false)).unwrap();
        assert!(b.finish().is_err());
        // A frame length that runs past the end.
        let mut buf = [0u8; 64];
        let mut b = DatagramBuilder::new(&mut buf, &header(false)).unwrap();
        assert!(
            b.push(&Frame::new(Data {
                payload: Bytes::from_static(b"x")
            }))
            .unwrap()
        );
        let n = b.finish().unwrap();
        buf[PACKET_HEADER_LEN + 1] += 1;
        let crc = crc::crc32(&buf[..n - 4]);
        buf[n - 4..n].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            Datagram::parse(Bytes::copy_from_slice(&buf[..n])),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn a_peek_reads_the_connection_id_without_the_checksum() {
        let mut buf = [0u8; 64];
        let mut b = DatagramBuilder::new(&mut buf, &header(false)).unwrap();
        assert!(b.push(&Frame::new(Ping { timestamp_us: 1 })).unwrap());
        let n = b.finish().unwrap();
        assert_eq!(
            peek_connection_id(&buf[..n]),
            Ok(header(false).connection_id)
        );
        // A damaged checksum still routes: the session that owns the id refuses it.
        buf[n - 1] ^= 1;
        assert_eq!(
            peek_connection_id(&buf[..n]),
            Ok(header(false).connection_id)
        );
        assert!(Datagram::parse(Bytes::copy_from_slice(&buf[..n])).is_err());
        assert_eq!(
            peek_connection_id(b"GET / HTTP/1.1"),
            Err(DecodeError::Malformed(Malformation::BadMagic))
        );
        assert_eq!(peek_connection_id(b"FW"), Err(DecodeError::Truncated));
        assert_eq!(peek_connection_id(b"F"), Err(DecodeError::Truncated));
        assert_eq!(
            peek_connection_id(&[0x46, 0x57, 9, 0]),
            Err(DecodeError::UnsupportedVersion(9))
        );
        assert_eq!(peek_connection_id(&buf[..19]), Err(DecodeError::Truncated));
    }

    #[test]
    fn ack_now_is_a_flag_and_the_bits_above_it_stay_reserved() {
        let frame = Frame::new(Data {
            payload: Bytes::from_static(b"x"),
        });
        let mut buf = [0u8; 64];
        let mut b = DatagramBuilder::new(&mut buf, &header(true)).unwrap();
        assert!(b.push(&frame).unwrap());
        b.ask_ack_now();
        let n = b.finish().unwrap();
        assert_eq!(buf[3], ACK_FLAG | ACK_NOW_FLAG);
        let d = Datagram::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
        assert!(d.ack_now());
        assert_eq!(d.header, header(true));
        for bit in 2..8 {
            let mut bad = buf;
            bad[3] |= 1 << bit;
            let crc = crc::crc32(&bad[..n - 4]);
            bad[n - 4..n].copy_from_slice(&crc.to_be_bytes());
            assert_eq!(
                Datagram::parse(Bytes::copy_from_slice(&bad[..n])),
                Err(DecodeError::Malformed(Malformation::ReservedFlags)),
                "flag bit {bit}"
            );
        }
    }

    #[test]
    fn view_accessors_match_header() {
        let mut buf = [0u8; 64];
        let b = DatagramBuilder::new(&mut buf, &header(true)).unwrap();
        let n = b.finish().unwrap();
        let v = PacketView::new_checked(&buf[..n]).unwrap();
        assert_eq!(v.connection_id(), 0x0102_0304_0506_0708);
        assert_eq!(v.packet_number(), 9);
        assert_eq!(v.header(), header(true));
    }
}
