//! [`DatagramBuilder`]: one datagram written into a caller-supplied buffer, frames coalesced, in
//! the version-1 form (section 2.2) or the compact form (section 2.4).

use super::compact::{
    COMPACT_ACK, COMPACT_ACK_DELAY_UNIT_US, COMPACT_ACK_NOW, COMPACT_FORM, COMPACT_ONE_FRAME,
    SHARED_HEADER, pn_len_code,
};
use super::crc;
use super::datagram::{ACK_FLAG, ACK_NOW_FLAG, CRC_LEN, FRAME_LEN_PREFIX, PacketHeader};
use super::frame::{FRAME_HEADER_LEN, Frame, SEQ_FLAG};
use super::numbers::{packet_number_len, put_varint, varint_len};
use super::writer::Writer;
use super::{MAGIC, VERSION};
use crate::error::EncodeError;

/// Where the flags live: byte 3 of a version-1 datagram, byte 0 of a compact one.
const V1_FLAGS_AT: usize = 3;

/// Writes one datagram into a caller-supplied buffer, whose length is the datagram size limit.
///
/// Push frames until [`DatagramBuilder::push`] says one does not fit, then
/// [`DatagramBuilder::finish`] to write the checksum. In the compact form each frame's length is a
/// varint and a SEQ field is written as its low 16 bits; [`DatagramBuilder::remaining`] counts as
/// for the version-1 form (a two-byte length, four-byte SEQ), so what a caller sized by it fits
/// in either.
#[derive(Debug)]
#[must_use = "a datagram is only complete after finish()"]
pub struct DatagramBuilder<'a> {
    buf: &'a mut [u8],
    len: usize,
    has_ack: bool,
    frames: usize,
    compact: bool,
    /// Where the frames start. A compact datagram's first frame goes in without its length, as
    /// if it were the only one (`ONE_FRAME`); a second frame puts the first one's length in front
    /// of it (moving the first frame, typically small when more follow).
    frames_at: usize,
    /// A compact datagram's packet number, whole, and the bytes it takes on the wire: its CRC
    /// covers the number whole.
    packet_number: (u32, usize),
    /// Version 3: a frame whose header is the last one's (its SEQ one more) goes as
    /// [`SHARED_HEADER`] and the rest of its body.
    share_headers: bool,
    /// What goes in the datagram's last four bytes.
    trailer: Trailer,
    /// The last frame's header (kind, flags, channel, and its whole SEQ if it has one).
    last_head: Option<Head>,
}

/// A datagram's last four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trailer {
    /// Its CRC.
    Crc,
    /// Unwritten: the datagram is sealed next, and the tag takes their place.
    LeftForTag,
}

/// A frame's header, as a frame that shares it compares it: kind, flags, channel, and the whole
/// sequence number when the SEQ flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    kind: u8,
    flags: u8,
    channel: u8,
    seq: Option<u32>,
}

impl Head {
    /// The header at the start of an encoded frame body (version-1 form), and its length.
    fn read(body: &[u8]) -> Option<(Self, usize)> {
        let (&[kind, flags, channel], rest) = body.split_first_chunk::<3>()?;
        if flags & SEQ_FLAG == 0 {
            return Some((
                Self {
                    kind,
                    flags,
                    channel,
                    seq: None,
                },
                FRAME_HEADER_LEN,
            ));
        }
        let seq = rest.first_chunk::<4>().map(|s| u32::from_be_bytes(*s))?;
        Some((
            Self {
                kind,
                flags,
                channel,
                seq: Some(seq),
            },
            FRAME_HEADER_LEN + 4,
        ))
    }

    /// Whether a frame with this header may share `last`'s: the same kind, flags and channel,
    /// and a sequence number one above its (or neither has one).
    fn follows(&self, last: &Self) -> bool {
        (self.kind, self.flags, self.channel) == (last.kind, last.flags, last.channel)
            && match (self.seq, last.seq) {
                (None, None) => true,
                (Some(s), Some(l)) => s == l.wrapping_add(1),
                _ => false,
            }
    }
}

impl<'a> DatagramBuilder<'a> {
    /// Starts a version-1 datagram with `header`.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] if the header and checksum alone do not fit.
    pub fn new(buf: &'a mut [u8], header: &PacketHeader) -> Result<Self, EncodeError> {
        let needed = header.len() + CRC_LEN;
        if buf.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let mut w = Writer::new(buf);
        w.put_slice(&MAGIC);
        w.put_u8(VERSION);
        w.put_u8(if header.ack.is_some() { ACK_FLAG } else { 0 });
        w.put_u64(header.connection_id);
        w.put_u32(header.packet_number);
        if let Some(ack) = header.ack {
            w.put_u32(ack.largest);
            w.put_u16(ack.delay_us);
            w.put_u64(ack.bits);
        }
        let len = w.position();
        Ok(Self {
            buf,
            len,
            has_ack: header.ack.is_some(),
            frames: 0,
            compact: false,
            frames_at: len,
            packet_number: (header.packet_number, 4),
            share_headers: false,
            trailer: Trailer::Crc,
            last_head: None,
        })
    }

    /// Starts a compact datagram (section 2.4) with `header`, its packet number as short as the
    /// peer's acknowledgements allow: `largest_acked` is the largest of this side's packets the
    /// peer has acknowledged.
    ///
    /// # Errors
    /// [`EncodeError::InvalidValue`] for a connection id above `u32`;
    /// [`EncodeError::BufferTooSmall`] if the header and checksum alone do not fit.
    pub fn new_compact(
        buf: &'a mut [u8],
        header: &PacketHeader,
        largest_acked: Option<u32>,
    ) -> Result<Self, EncodeError> {
        let connection_id = u32::try_from(header.connection_id).map_err(|_| {
            EncodeError::InvalidValue("a compact datagram's connection id is at most 32 bits")
        })?;
        let pn_len = packet_number_len(header.packet_number, largest_acked);
        let ack_len = header.ack.map_or(0, |a| 3 + varint_len(a.bits));
        let needed = 1 + 4 + pn_len + ack_len + CRC_LEN;
        if buf.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let mut first = COMPACT_FORM | pn_len_code(pn_len);
        if header.ack.is_some() {
            first |= COMPACT_ACK;
        }
        let mut w = Writer::new(buf);
        w.put_u8(first);
        w.put_u32(connection_id);
        w.put_slice(&header.packet_number.to_be_bytes()[4 - pn_len..]);
        if let Some(ack) = header.ack {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "the low 16 bits, by design"
            )]
            w.put_u16(ack.largest as u16);
            let delay = (ack.delay_us / COMPACT_ACK_DELAY_UNIT_US).min(255);
            #[allow(clippy::cast_possible_truncation, reason = "at most 255")]
            w.put_u8(delay as u8);
        }
        let mut len = w.position();
        if let Some(ack) = header.ack {
            len += put_varint(&mut buf[len..], ack.bits);
        }
        Ok(Self {
            buf,
            len,
            has_ack: header.ack.is_some(),
            frames: 0,
            compact: true,
            frames_at: len,
            packet_number: (header.packet_number, pn_len),
            share_headers: false,
            trailer: Trailer::Crc,
            last_head: None,
        })
    }

    /// Bytes still free for frames, counting each frame's length prefix as part of the frame (as
    /// the version-1 form spends them: a compact frame never needs more).
    pub fn remaining(&self) -> usize {
        let free = self.buf.len() - self.len - CRC_LEN - self.pending_prefix();
        // A compact frame of 16,384 bytes or more has a three-byte length, one more than the
        // version-1 form's (and may carry no SEQ to make up for it).
        if self.compact && free > (1 << 14) + FRAME_LEN_PREFIX {
            free - 1
        } else {
            free
        }
    }

    /// The length a compact datagram's lone first frame will take in front of it if another
    /// frame joins it.
    fn pending_prefix(&self) -> usize {
        if self.compact && self.frames == 1 {
            varint_len((self.len - self.frames_at) as u64)
        } else {
            0
        }
    }

    /// How many frames have been pushed.
    pub fn frame_count(&self) -> usize {
        self.frames
    }

    /// Lets frames share headers (version 3, docs/PROTOCOL.md section 2.4): a frame pushed with
    /// [`DatagramBuilder::push_encoded_parts`] whose kind, flags and channel are the last frame's,
    /// and whose sequence number is one above it (or neither has one), goes as the marker
    /// [`SHARED_HEADER`](super::compact::SHARED_HEADER) and the rest of its body. Compact
    /// datagrams only; for a peer that agreed version 3.
    pub fn share_headers(&mut self) {
        self.share_headers = self.compact;
    }

    /// The datagram is sealed once finished (docs/PROTOCOL.md section 2.3):
    /// [`DatagramBuilder::finish`] leaves the checksum's four bytes unwritten, as the tag takes
    /// their place.
    pub fn for_sealing(&mut self) {
        self.trailer = Trailer::LeftForTag;
    }

    /// Sets the `ACK_NOW` flag: the receiver is asked to acknowledge this datagram at once.
    pub fn ask_ack_now(&mut self) {
        if self.compact {
            self.buf[0] |= COMPACT_ACK_NOW;
        } else {
            self.buf[V1_FLAGS_AT] |= ACK_NOW_FLAG;
        }
    }

    /// Writes a frame's length prefix; returns the bytes taken, or `None` when the prefix and a
    /// body of `len` bytes do not fit.
    fn put_prefix(&mut self, len: usize) -> Option<usize> {
        let free = self.buf.len() - self.len - CRC_LEN;
        if self.compact {
            if self.frames == 0 {
                // Without a length until another frame joins it.
                return (len <= free).then_some(0);
            }
            let pending = self.pending_prefix();
            let n = varint_len(len as u64);
            if pending + n + len > free {
                return None;
            }
            if pending > 0 {
                let first = self.frames_at..self.len;
                let first_len = first.len();
                self.buf.copy_within(first, self.frames_at + pending);
                put_varint(&mut self.buf[self.frames_at..], first_len as u64);
                self.len += pending;
            }
            Some(put_varint(&mut self.buf[self.len..], len as u64))
        } else {
            if len > usize::from(u16::MAX) || FRAME_LEN_PREFIX + len > free {
                return None;
            }
            #[allow(clippy::cast_possible_truncation, reason = "checked above")]
            self.buf[self.len..self.len + 2].copy_from_slice(&(len as u16).to_be_bytes());
            Some(FRAME_LEN_PREFIX)
        }
    }

    /// Appends `frame` if it fits; returns whether it did. A frame that does not fit leaves the
    /// datagram as it was.
    ///
    /// # Errors
    /// A field of `frame` that does not fit its encoding.
    pub fn push(&mut self, frame: &Frame) -> Result<bool, EncodeError> {
        frame.check()?;
        let full = frame.encoded_len();
        let short = self.compact && frame.seq.is_some();
        let body = if short { full - 2 } else { full };
        if body == 0 || full > usize::from(u16::MAX) {
            return Ok(false);
        }
        let Some(prefix) = self.put_prefix(body) else {
            return Ok(false);
        };
        let at = self.len + prefix;
        if short {
            // Written whole where there is room for it (the CRC's place at worst), then the
            // SEQ field's two high bytes taken out.
            let end = (at + full).min(self.buf.len());
            if end - at < full {
                return Ok(false);
            }
            let mut w = Writer::new(&mut self.buf[at..end]);
            frame.emit_checked(&mut w);
            self.buf
                .copy_within(at + FRAME_HEADER_LEN + 2..at + full, at + FRAME_HEADER_LEN);
        } else {
            let mut w = Writer::new(&mut self.buf[at..at + body]);
            frame.emit_checked(&mut w);
        }
        self.len = at + body;
        self.frames += 1;
        self.last_head = Some(Head {
            kind: frame.kind() as u8,
            flags: frame.body.flags() | if frame.seq.is_some() { SEQ_FLAG } else { 0 },
            channel: frame.channel,
            seq: frame.seq,
        });
        Ok(true)
    }

    /// Appends an already-encoded frame body (as [`Frame::emit`] writes it) if it fits.
    pub fn push_encoded(&mut self, body: &[u8]) -> bool {
        self.push_encoded_parts(body, &[])
    }

    /// Appends a frame body given in two parts (a header and a shared payload, say) if it fits.
    /// In the compact form a SEQ field in `head` (it holds the whole frame header) is written as
    /// its low 16 bits.
    pub fn push_encoded_parts(&mut self, head: &[u8], rest: &[u8]) -> bool {
        let read = Head::read(head);
        if self.share_headers
            && let (Some((h, head_len)), Some(last)) = (read, self.last_head)
            && h.follows(&last)
        {
            return self.push_shared(h, &head[head_len..], rest);
        }
        if !self.push_parts(head, rest) {
            return false;
        }
        self.last_head = read.map(|(h, _)| h);
        true
    }

    /// A frame that shares the last one's header: the marker, then `after` (what followed the
    /// header in the head given) and `rest`.
    fn push_shared(&mut self, head: Head, after: &[u8], rest: &[u8]) -> bool {
        let len = 1 + after.len() + rest.len();
        let Some(prefix) = self.put_prefix(len) else {
            return false;
        };
        let mut w = Writer::new(&mut self.buf[self.len + prefix..]);
        w.put_u8(SHARED_HEADER);
        w.put_slice(after);
        w.put_slice(rest);
        self.len += prefix + len;
        self.frames += 1;
        self.last_head = Some(head);
        true
    }

    fn push_parts(&mut self, head: &[u8], rest: &[u8]) -> bool {
        let short = self.compact
            && head.len() >= FRAME_HEADER_LEN + 4
            && head.get(1).is_some_and(|f| f & SEQ_FLAG != 0);
        let len = head.len() + rest.len() - if short { 2 } else { 0 };
        if len == 0 {
            return false;
        }
        let Some(prefix) = self.put_prefix(len) else {
            return false;
        };
        let mut w = Writer::new(&mut self.buf[self.len + prefix..]);
        if short {
            w.put_slice(&head[..FRAME_HEADER_LEN]);
            w.put_slice(&head[FRAME_HEADER_LEN + 2..]);
        } else {
            w.put_slice(head);
        }
        w.put_slice(rest);
        self.len += prefix + len;
        self.frames += 1;
        true
    }

    /// Writes the checksum (unless [`DatagramBuilder::for_sealing`]) and returns the datagram's
    /// length.
    ///
    /// # Errors
    /// [`EncodeError::InvalidValue`] for a datagram with neither an ack nor a frame.
    pub fn finish(self) -> Result<usize, EncodeError> {
        if self.frames == 0 && !self.has_ack {
            return Err(EncodeError::InvalidValue(
                "a datagram needs an ack block or a frame",
            ));
        }
        if self.compact && self.frames == 1 {
            // One frame, written without its length: it goes without saying (`ONE_FRAME`).
            self.buf[0] |= COMPACT_ONE_FRAME;
        }
        if self.trailer == Trailer::Crc {
            let crc = if self.compact {
                let (pn, pn_len) = self.packet_number;
                super::compact::compact_crc(&self.buf[..self.len], pn_len, pn)
            } else {
                crc::crc32(&self.buf[..self.len])
            };
            self.buf[self.len..self.len + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
        }
        Ok(self.len + CRC_LEN)
    }
}
