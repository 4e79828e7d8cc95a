//! Stream framing for TCP: `length (u32) | version (u8) | frame body | crc32 (u32)`
//! (docs/PROTOCOL.md section 2.1).
//!
//! [`encode_stream_frame`] writes one frame into a caller-supplied buffer. [`StreamDeframer`] takes
//! the received bytes, however the stream split them, and hands out frame bodies without copying.
//! It reads the length first and refuses a length above its limit before reserving anything
//! (STYLE.md 7, as tokio-util's `LengthDelimitedCodec` does).

use bytes::{Buf, Bytes, BytesMut};

use super::crc;
use super::frame::Frame;
use super::writer::Writer;
use super::{MAX_FRAME_LEN_CEILING, MIN_FRAME_LEN, VERSION};
use crate::error::{DecodeError, EncodeError, Malformation};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Bytes a stream frame adds around a frame body: length, version and CRC.
pub const STREAM_OVERHEAD: usize = LENGTH_PREFIX_LEN + 1 + 4;

/// The encoded length of `frame` as a stream frame, length prefix included.
pub fn stream_frame_len(frame: &Frame) -> usize {
    STREAM_OVERHEAD + frame.encoded_len()
}

/// Writes `frame` as a stream frame into `out`; returns the bytes written.
///
/// # Errors
/// [`EncodeError::BufferTooSmall`] when `out` is shorter than [`stream_frame_len`],
/// [`EncodeError::FrameTooLarge`] above [`MAX_FRAME_LEN_CEILING`], or a field that does not fit.
pub fn encode_stream_frame(frame: &Frame, out: &mut [u8]) -> Result<usize, EncodeError> {
    frame.check()?;
    let total = stream_frame_len(frame);
    let len = total - LENGTH_PREFIX_LEN;
    if len > MAX_FRAME_LEN_CEILING as usize {
        return Err(EncodeError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN_CEILING as usize,
        });
    }
    let available = out.len();
    let out = out.get_mut(..total).ok_or(EncodeError::BufferTooSmall {
        needed: total,
        available,
    })?;
    let mut w = Writer::new(out);
    w.put_u32(len as u32);
    w.put_u8(VERSION);
    frame.emit_checked(&mut w);
    let crc = crc::crc32(&w.written()[LENGTH_PREFIX_LEN..]);
    w.put_u32(crc);
    debug_assert_eq!(w.position(), total);
    Ok(total)
}

/// Appends `frame` as a stream frame to `out`, growing it by exactly the frame's length.
///
/// # Errors
/// As [`encode_stream_frame`], except that the buffer is never too small.
pub fn encode_stream_frame_into(frame: &Frame, out: &mut BytesMut) -> Result<usize, EncodeError> {
    let start = out.len();
    out.resize(start + stream_frame_len(frame), 0);
    match encode_stream_frame(frame, &mut out[start..]) {
        Ok(n) => Ok(n),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A verified frame at the front of a buffer (see [`StreamDeframer::decode_span`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpan {
    /// Where the frame body (kind byte to the end of the payload) lies in the buffer.
    pub body: core::ops::Range<usize>,
    /// How many bytes the whole frame occupies (length prefix to CRC): advance the buffer by this.
    pub total: usize,
}

impl FrameSpan {
    /// Takes the frame out of the front of `buf` and hands out its body, sharing the buffer.
    pub fn take_body(&self, buf: &mut BytesMut) -> Bytes {
        let mut frame = buf.split_to(self.total);
        frame.truncate(self.body.end);
        frame.advance(self.body.start);
        frame.freeze()
    }
}

/// Where the deframer is inside the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Waiting for a length prefix.
    Head,
    /// The length prefix said `len` bytes follow it; waiting for all of them.
    Body { len: usize },
    /// A fatal error was returned; the stream is not usable any more.
    Failed(DecodeError),
}

/// Splits a byte stream into frame bodies.
///
/// Feed it by appending received bytes to a [`BytesMut`] and calling [`StreamDeframer::decode`]
/// until it returns `Ok(None)`. Each frame body comes out as [`Bytes`] that share the buffer; the
/// length prefix, version and CRC have been checked and stripped, and [`Frame::parse`] reads the
/// rest.
///
/// Errors are fatal: the stream has lost its framing (or its integrity), so the deframer returns
/// the same error from then on and the connection should be closed with
/// [`DecodeError::close_reason`].
#[derive(Debug, Clone)]
pub struct StreamDeframer {
    max_frame_len: u32,
    state: DecodeState,
    /// Whether CRCs are checked (see [`StreamDeframer::set_checksums`]).
    checksums: bool,
}

impl StreamDeframer {
    /// A deframer that accepts frames whose length prefix is at most `max_frame_len` (clamped to
    /// [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN_CEILING`]).
    pub fn new(max_frame_len: u32) -> Self {
        Self {
            max_frame_len: max_frame_len.clamp(MIN_FRAME_LEN, MAX_FRAME_LEN_CEILING),
            state: DecodeState::Head,
            checksums: true,
        }
    }

    /// Whether frames' CRCs are checked (the default). A stream whose frames were rebuilt from a
    /// carrier that already delivers each one whole and intact (WebSocket messages, which carry
    /// no CRC: docs/PROTOCOL.md section 11.2) has nothing for a CRC to catch; its rebuilder may
    /// leave the CRC field as it likes.
    pub fn set_checksums(&mut self, check: bool) {
        self.checksums = check;
    }

    /// Whether frames' CRCs are checked.
    pub fn checks_checksums(&self) -> bool {
        self.checksums
    }

    /// Changes the limit, as after the handshake agreed one; applies from the next length prefix.
    pub fn set_max_frame_len(&mut self, max_frame_len: u32) {
        self.max_frame_len = max_frame_len.clamp(MIN_FRAME_LEN, MAX_FRAME_LEN_CEILING);
    }

    /// The limit in force.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// How many more bytes the frame in progress needs, if its length prefix has been read: what a
    /// reader may ask the socket for so that the next call yields the frame.
    pub fn bytes_needed(&self, buf: &[u8]) -> Option<usize> {
        match self.state {
            DecodeState::Body { len } => Some((LENGTH_PREFIX_LEN + len).saturating_sub(buf.len())),
            DecodeState::Head | DecodeState::Failed(_) => None,
        }
    }

    /// Takes the next frame body out of `buf`, if it is complete.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a frame; the bytes stay in `buf` and
    /// enough capacity has been reserved for the rest of the frame.
    ///
    /// # Errors
    /// [`DecodeError::Oversized`] or [`Malformation::LengthTooSmall`] for a bad length prefix (before
    /// the frame's bytes have arrived), [`DecodeError::BadChecksum`], or
    /// [`DecodeError::UnsupportedVersion`]. All are fatal; see the type's docs.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let Some(span) = self.decode_span(buf)? else {
            return Ok(None);
        };
        Ok(Some(span.take_body(buf)))
    }

    /// Verifies the next frame at the front of `buf` without taking it out: the length, CRC and
    /// version are checked exactly as by [`StreamDeframer::decode`], and the span says where the
    /// body lies. The caller reads `&buf[span.body]` in place and then must remove the frame with
    /// `buf.advance(span.total)` (or `buf.split_to(span.total)` to keep it) before the next call.
    ///
    /// For callers that only look at a frame (route it, count it) this skips the reference count
    /// that handing out `Bytes` costs.
    ///
    /// # Errors
    /// As [`StreamDeframer::decode`].
    pub fn decode_span(&mut self, buf: &mut BytesMut) -> Result<Option<FrameSpan>, DecodeError> {
        let span = self.decode_span_in(buf)?;
        if span.is_none()
            && let Some(missing) = self.bytes_needed(buf)
        {
            // Reserve once, for the whole frame, now that its length is known to be allowed.
            buf.reserve(missing);
        }
        Ok(span)
    }

    /// [`StreamDeframer::decode_span`] on bytes the caller holds elsewhere (as read, before they
    /// are copied anywhere): the same checks, nothing reserved. On `Ok(None)` the caller must keep
    /// every byte of `buf` and hand them, with what follows, to the next call.
    ///
    /// # Errors
    /// As [`StreamDeframer::decode`].
    pub fn decode_span_in(&mut self, buf: &[u8]) -> Result<Option<FrameSpan>, DecodeError> {
        let len = match self.state {
            DecodeState::Failed(e) => return Err(e),
            DecodeState::Body { len } => len,
            DecodeState::Head => {
                let Some(prefix) = buf.get(..LENGTH_PREFIX_LEN) else {
                    return Ok(None);
                };
                let declared = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                if declared < MIN_FRAME_LEN {
                    return self.fail(DecodeError::Malformed(Malformation::LengthTooSmall));
                }
                if declared > self.max_frame_len {
                    return self.fail(DecodeError::Oversized {
                        len: u64::from(declared),
                        max: u64::from(self.max_frame_len),
                    });
                }
                let len = declared as usize;
                self.state = DecodeState::Body { len };
                len
            }
        };
        let total = LENGTH_PREFIX_LEN + len;
        let Some(frame) = buf.get(..total) else {
            return Ok(None);
        };
        self.state = DecodeState::Head;
        let crc_at = total - 4;
        let carried = u32::from_be_bytes([
            frame[crc_at],
            frame[crc_at + 1],
            frame[crc_at + 2],
            frame[crc_at + 3],
        ]);
        if self.checksums
            && let Err(e) = crc::verify(&frame[LENGTH_PREFIX_LEN..crc_at], carried)
        {
            return self.fail(e);
        }
        let version = frame[LENGTH_PREFIX_LEN];
        if version != VERSION {
            return self.fail(DecodeError::UnsupportedVersion(version));
        }
        Ok(Some(FrameSpan {
            body: LENGTH_PREFIX_LEN + 1..crc_at,
            total,
        }))
    }

    fn fail<T>(&mut self, e: DecodeError) -> Result<Option<T>, DecodeError> {
        self.state = DecodeState::Failed(e);
        Err(e)
    }
}

/// Decodes exactly one complete stream frame from `bytes` and parses it: the whole input must be
/// that one frame. For tests, tools and test vectors; a connection uses [`StreamDeframer`].
///
/// # Errors
/// Any [`DecodeError`]; [`Malformation::TrailingBytes`] if bytes follow the frame and
/// [`DecodeError::Truncated`] if the frame is incomplete.
pub fn decode_stream_frame(bytes: &[u8], max_frame_len: u32) -> Result<Frame, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let mut deframer = StreamDeframer::new(max_frame_len);
    let body = deframer.decode(&mut buf)?.ok_or(DecodeError::Truncated)?;
    if !buf.is_empty() {
        return Err(DecodeError::Malformed(Malformation::TrailingBytes));
    }
    Frame::parse(body)
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::wire::frames::{Data, Ping};
    use crate::wire::{DEFAULT_MAX_FRAME_LEN, Text};

    fn sample_stream() -> (Vec<Frame>, Vec<u8>) {
        let frames = alloc::vec![
            Frame::new(Ping { timestamp_us: 42 }),
            Frame::new(Data {
                payload: Bytes::from(alloc::vec![7u8; 300]),
            })
            .on_channel(2),
            Frame::new(crate::wire::frames::Close {
                reason: crate::wire::Reason::NORMAL,
                message: Text::from("bye"),
            }),
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            encode_stream_frame_into(f, &mut out).unwrap();
        }
        (frames, out.to_vec())
    }

    fn drain(d: &mut StreamDeframer, buf: &mut BytesMut, got: &mut Vec<Frame>) {
        while let Some(body) = d.decode(buf).unwrap() {
            got.push(Frame::parse(body).unwrap());
        }
    }

    #[test]
    fn split_at_every_offset() {
        let (frames, bytes) = sample_stream();
        for cut in 0..=bytes.len() {
            let mut d = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            buf.extend_from_slice(&bytes[..cut]);
            drain(&mut d, &mut buf, &mut got);
            buf.extend_from_slice(&bytes[cut..]);
            drain(&mut d, &mut buf, &mut got);
            assert_eq!(got, frames, "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let (frames, bytes) = sample_stream();
        let mut d = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &bytes {
            buf.extend_from_slice(&[*b]);
            drain(&mut d, &mut buf, &mut got);
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut d = StreamDeframer::new(1024);
        let mut buf = BytesMut::from(&[0x00, 0x00, 0x04, 0x01][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(DecodeError::Oversized {
                len: 1025,
                max: 1024
            })
        );
        // Nothing was reserved for it, and the error sticks.
        assert!(buf.capacity() < 1025);
        assert_eq!(
            d.decode(&mut buf),
            Err(DecodeError::Oversized {
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn a_full_u32_length_never_allocates() {
        let mut d = StreamDeframer::new(MAX_FRAME_LEN_CEILING);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(DecodeError::Oversized { .. })
        ));
        assert!(buf.capacity() < 64);
    }

    #[test]
    fn tiny_length_is_malformed() {
        let mut d = StreamDeframer::new(1024);
        let mut buf = BytesMut::from(&[0, 0, 0, 7][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(DecodeError::Malformed(Malformation::LengthTooSmall))
        );
    }

    #[test]
    fn other_versions_are_named() {
        let mut bytes = [0u8; 32];
        let n = encode_stream_frame(&Frame::new(Ping { timestamp_us: 1 }), &mut bytes).unwrap();
        bytes[4] = 2;
        let crc = crc::crc32(&bytes[4..n - 4]);
        bytes[n - 4..n].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_stream_frame(&bytes[..n], DEFAULT_MAX_FRAME_LEN),
            Err(DecodeError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn spans_and_owned_bodies_agree() {
        let (frames, bytes) = sample_stream();
        let mut d = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut got = Vec::new();
        while let Some(span) = d.decode_span(&mut buf).unwrap() {
            got.push(Frame::parse(Bytes::copy_from_slice(&buf[span.body.clone()])).unwrap());
            buf.advance(span.total);
        }
        assert_eq!(got, frames);
        // A span over a corrupted frame is refused like decode refuses it.
        let mut bad = BytesMut::from(&bytes[..]);
        bad[6] ^= 1;
        assert!(matches!(
            StreamDeframer::new(DEFAULT_MAX_FRAME_LEN).decode_span(&mut bad),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn a_deframer_told_to_skip_checksums_takes_any_crc_field() {
        let (frames, bytes) = sample_stream();
        let mut zeroed = BytesMut::from(&bytes[..]);
        // Every frame's CRC field zeroed, as a WebSocket rebuilder may leave it.
        let mut at = 0;
        while at < zeroed.len() {
            let len =
                u32::from_be_bytes([zeroed[at], zeroed[at + 1], zeroed[at + 2], zeroed[at + 3]]);
            let end = at + 4 + len as usize;
            zeroed[end - 4..end].fill(0);
            at = end;
        }
        let mut strict = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        assert!(strict.decode(&mut zeroed.clone()).is_err());
        let mut d = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        d.set_checksums(false);
        let mut got = Vec::new();
        while let Some(body) = d.decode(&mut zeroed).unwrap() {
            got.push(Frame::parse(body).unwrap());
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn reserves_once_for_a_partial_frame() {
        let mut out = BytesMut::new();
        let f = Frame::new(Data {
            payload: Bytes::from(alloc::vec![1u8; 5000]),
        });
        encode_stream_frame_into(&f, &mut out).unwrap();
        let mut d = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&out[..10]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= out.len());
        assert_eq!(d.bytes_needed(&buf), Some(out.len() - 10));
    }
}
