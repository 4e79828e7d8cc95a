//! Cutting a reassembled TCP stream into framewire frames, and finding the frames again after a
//! gap or in a stream captured mid-way.

use framewire_protocol::error::{DecodeError, Malformation};
use framewire_protocol::wire::{Frame, LENGTH_PREFIX_LEN, MIN_FRAME_LEN, decode_stream_frame};

use super::StreamPiece;

/// What a [`FrameScanner`] found, in stream order. Offsets count every byte of the stream, the
/// ones never captured included.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanEvent {
    /// A frame whose length, version and CRC verified and whose body parsed.
    Frame {
        /// Where its length prefix starts.
        offset: u64,
        /// Its bytes on the wire, length prefix and CRC included.
        wire_len: usize,
        /// The frame.
        frame: Frame,
    },
    /// Where a frame was expected (the scanner was in step) the bytes did not verify. The scanner
    /// looks for the next frame from the byte after `offset`.
    BadFrame {
        /// Where the supposed frame starts.
        offset: u64,
        /// What was wrong with it.
        error: DecodeError,
    },
    /// Bytes passed over while looking for a frame boundary.
    Skipped {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// Bytes the capture does not hold.
    Gap {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u64,
    },
}

/// Frames out of one direction of a TCP stream (fed by a
/// [`TcpReassembler`](super::TcpReassembler)).
///
/// In step, it reads a length prefix and takes that frame; a frame that does not verify is a
/// [`ScanEvent::BadFrame`] and puts it out of step. Out of step (at a stream captured mid-way,
/// after a gap, after a bad frame) it tries each offset in turn for a length in bounds whose frame
/// verifies and parses, and resumes there; the bytes before it are [`ScanEvent::Skipped`]. It holds
/// at most one frame's worth of bytes (`max_frame_len` plus the prefix).
#[derive(Debug, Clone)]
pub struct FrameScanner {
    /// Bytes received; those before `start` are consumed (compacted away once per push, not per
    /// frame).
    buf: Vec<u8>,
    start: usize,
    /// Stream offset of `buf[start]`.
    buf_offset: u64,
    in_step: bool,
    max_frame_len: u32,
    /// Skipped bytes not yet reported: (offset, len).
    skipping: Option<(u64, u64)>,
}

impl FrameScanner {
    /// A scanner for frames of at most `max_frame_len` bytes (the length prefix's value).
    /// `from_start` says the stream's first byte is known to start a frame (the SYN was captured).
    pub fn new(max_frame_len: u32, from_start: bool) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            buf_offset: 0,
            in_step: from_start,
            max_frame_len: max_frame_len.max(MIN_FRAME_LEN),
            skipping: None,
        }
    }

    /// Takes the next piece of the stream; what it completes is appended to `out`.
    pub fn push(&mut self, piece: StreamPiece, out: &mut Vec<ScanEvent>) {
        match piece {
            StreamPiece::Data(bytes) => {
                self.buf.drain(..self.start);
                self.start = 0;
                self.buf.extend_from_slice(&bytes);
                self.scan(out);
            }
            StreamPiece::Gap(len) => {
                // A frame cut by the gap can never complete.
                self.skip(self.pending().len());
                self.flush_skipped(out);
                out.push(ScanEvent::Gap {
                    offset: self.buf_offset,
                    len,
                });
                self.buf_offset += len;
                self.in_step = false;
            }
        }
    }

    /// The stream has ended: bytes left over (a frame cut short by the capture) are skipped.
    pub fn finish(&mut self, out: &mut Vec<ScanEvent>) {
        self.skip(self.pending().len());
        self.flush_skipped(out);
    }

    fn scan(&mut self, out: &mut Vec<ScanEvent>) {
        loop {
            if self.in_step {
                match self.frame_at(0) {
                    Candidate::Incomplete => return,
                    Candidate::Frame(frame, wire_len) => {
                        self.flush_skipped(out);
                        out.push(ScanEvent::Frame {
                            offset: self.buf_offset,
                            wire_len,
                            frame,
                        });
                        self.consume(wire_len);
                    }
                    Candidate::Bad(error) => {
                        self.flush_skipped(out);
                        out.push(ScanEvent::BadFrame {
                            offset: self.buf_offset,
                            error,
                        });
                        self.in_step = false;
                        self.skip(1);
                    }
                }
            } else {
                match self.find_frame() {
                    Some(at) => {
                        self.skip(at);
                        self.in_step = true;
                    }
                    None => return,
                }
            }
        }
    }

    /// Out of step: the offset of the first frame that verifies. Without one, skips what cannot
    /// start a frame and keeps the bytes from the first plausible frame still arriving (a real
    /// frame that is incomplete has no complete frame after it in the buffer).
    fn find_frame(&mut self) -> Option<usize> {
        let mut first_incomplete = None;
        let mut at = 0;
        while self.pending().len() - at >= LENGTH_PREFIX_LEN {
            match self.frame_at(at) {
                Candidate::Frame(..) => return Some(at),
                Candidate::Incomplete => {
                    first_incomplete.get_or_insert(at);
                }
                Candidate::Bad(_) => {}
            }
            at += 1;
        }
        self.skip(first_incomplete.unwrap_or(at));
        None
    }

    fn frame_at(&self, at: usize) -> Candidate {
        let Some(prefix) = self.pending().get(at..at + LENGTH_PREFIX_LEN) else {
            return Candidate::Incomplete;
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len < MIN_FRAME_LEN {
            return Candidate::Bad(DecodeError::Malformed(Malformation::LengthTooSmall));
        }
        if len > self.max_frame_len {
            return Candidate::Bad(DecodeError::Oversized {
                len: u64::from(len),
                max: u64::from(self.max_frame_len),
            });
        }
        let wire_len = LENGTH_PREFIX_LEN + len as usize;
        let Some(bytes) = self.pending().get(at..at + wire_len) else {
            return Candidate::Incomplete;
        };
        match decode_stream_frame(bytes, self.max_frame_len) {
            Ok(frame) => Candidate::Frame(frame, wire_len),
            Err(e) => Candidate::Bad(e),
        }
    }

    /// The bytes not yet consumed.
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.buf_offset += n as u64;
    }

    fn skip(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        match &mut self.skipping {
            Some((start, len)) if *start + *len == self.buf_offset => *len += n as u64,
            _ => self.skipping = Some((self.buf_offset, n as u64)),
        }
        self.consume(n);
    }

    fn flush_skipped(&mut self, out: &mut Vec<ScanEvent>) {
        if let Some((offset, len)) = self.skipping.take() {
            out.push(ScanEvent::Skipped { offset, len });
        }
    }
}

enum Candidate {
    Frame(Frame, usize),
    Incomplete,
    Bad(DecodeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use framewire_protocol::wire::{Data, Publish, Text, encode_stream_frame_into};
    use proptest::prelude::*;

    const MAX: u32 = 65_536;

    fn stream_of(frames: &[Frame]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = BytesMut::new();
        let mut starts = Vec::new();
        for f in frames {
            starts.push(buf.len());
            encode_stream_frame_into(f, &mut buf).unwrap();
        }
        (buf.to_vec(), starts)
    }

    fn sample(n: usize) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    Frame::new(Data {
                        payload: Bytes::from(vec![i as u8; 10 + i * 7]),
                    })
                } else {
                    Frame::new(Publish {
                        retain: false,
                        id: i as u32,
                        topic: Text::from("sensors/a/temp"),
                        payload: Bytes::from(format!("reading {i}")),
                    })
                }
            })
            .collect()
    }

    fn frames_of(events: &[ScanEvent]) -> Vec<(u64, Frame)> {
        events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::Frame { offset, frame, .. } => Some((*offset, frame.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let frames = sample(6);
        let (bytes, starts) = stream_of(&frames);
        let mut s = FrameScanner::new(MAX, true);
        let mut out = Vec::new();
        for b in &bytes {
            s.push(StreamPiece::Data(vec![*b]), &mut out);
        }
        s.finish(&mut out);
        let got = frames_of(&out);
        assert_eq!(got.len(), 6);
        for (i, (offset, frame)) in got.iter().enumerate() {
            assert_eq!(*offset, starts[i] as u64);
            assert_eq!(frame, &frames[i]);
        }
        assert_eq!(got.len(), out.len(), "nothing else: {out:?}");
    }

    #[test]
    fn a_stream_captured_mid_frame_resynchronises_on_the_next_frame() {
        let frames = sample(5);
        let (bytes, starts) = stream_of(&frames);
        let cut = starts[1] + 3;
        let mut s = FrameScanner::new(MAX, false);
        let mut out = Vec::new();
        s.push(StreamPiece::Data(bytes[cut..].to_vec()), &mut out);
        s.finish(&mut out);
        assert_eq!(
            out[0],
            ScanEvent::Skipped {
                offset: 0,
                len: (starts[2] - cut) as u64
            }
        );
        let got: Vec<Frame> = frames_of(&out).into_iter().map(|(_, f)| f).collect();
        assert_eq!(got, frames[2..]);
    }

    #[test]
    fn a_gap_and_a_corrupt_frame_lose_only_their_frames() {
        let frames = sample(6);
        let (mut bytes, starts) = stream_of(&frames);
        // Corrupt a payload byte of frame 4: its CRC fails.
        bytes[starts[4] + 12] ^= 0xff;
        let mut s = FrameScanner::new(MAX, true);
        let mut out = Vec::new();
        // Frame 1 is cut by a gap of 5 bytes.
        let gap_at = starts[1] + 6;
        s.push(StreamPiece::Data(bytes[..gap_at].to_vec()), &mut out);
        s.push(StreamPiece::Gap(5), &mut out);
        s.push(StreamPiece::Data(bytes[gap_at + 5..].to_vec()), &mut out);
        s.finish(&mut out);
        let got: Vec<Frame> = frames_of(&out).into_iter().map(|(_, f)| f).collect();
        assert_eq!(
            got,
            vec![
                frames[0].clone(),
                frames[2].clone(),
                frames[3].clone(),
                frames[5].clone()
            ]
        );
        assert!(out.contains(&ScanEvent::Gap {
            offset: gap_at as u64,
            len: 5
        }));
        assert!(out.iter().any(|e| matches!(
            e,
            ScanEvent::BadFrame { offset, error: DecodeError::BadChecksum { .. } }
                if *offset == starts[4] as u64
        )));
    }

    proptest! {
        /// Any bytes, in any chunks: no panic, and never more than one frame's worth held.
        #[test]
        fn garbage_is_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..40),
            from_start in any::<bool>(),
        ) {
            let mut s = FrameScanner::new(1024, from_start);
            let mut out = Vec::new();
            for c in chunks {
                s.push(StreamPiece::Data(c), &mut out);
                prop_assert!(s.pending().len() <= 1024 + LENGTH_PREFIX_LEN);
            }
            s.finish(&mut out);
            prop_assert!(s.pending().is_empty());
        }

        /// A stream of frames entered at any byte yields every frame that starts after the entry
        /// point and the first frame boundary, in order.
        #[test]
        fn entering_anywhere_finds_the_following_frames(
            n in 2usize..12,
            entry in any::<prop::sample::Index>(),
            chunk in 1usize..64,
        ) {
            let frames = sample(n);
            let (bytes, starts) = stream_of(&frames);
            let cut = entry.index(bytes.len());
            let mut s = FrameScanner::new(MAX, false);
            let mut out = Vec::new();
            for c in bytes[cut..].chunks(chunk) {
                s.push(StreamPiece::Data(c.to_vec()), &mut out);
            }
            s.finish(&mut out);
            let first = starts.iter().position(|&st| st >= cut).unwrap_or(n);
            let got: Vec<Frame> = frames_of(&out).into_iter().map(|(_, f)| f).collect();
            prop_assert_eq!(&got[..], &frames[first..]);
        }
    }
}
