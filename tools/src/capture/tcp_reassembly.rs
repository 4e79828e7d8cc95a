//! One direction of a captured TCP connection, put back in order.

use std::collections::BTreeMap;

/// What a [`TcpReassembler`] hands on, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPiece {
    /// Bytes that follow on from everything handed on before.
    Data(Vec<u8>),
    /// This many bytes of the stream were never captured; the next `Data` follows them.
    Gap(u64),
}

/// Bookkeeping charged per out-of-order segment on top of its bytes, so that many tiny segments
/// cannot slip past the bound.
const SEGMENT_OVERHEAD: usize = 64;

/// Reassembles one direction of one TCP connection from its segments, in whatever order the
/// capture holds them.
///
/// Sequence numbers are unwrapped against the next byte expected, so a stream may cross `u32`
/// wrap-around. A retransmission of bytes already handed on is dropped; where segments overlap,
/// the bytes that arrived first win (as Wireshark's default). Segments ahead of a hole wait, up to
/// `max_buffered` bytes; past that, or at [`TcpReassembler::finish`], the hole is given up as a
/// [`StreamPiece::Gap`]. A connection whose SYN was not captured starts at its first segment.
#[derive(Debug, Clone)]
pub struct TcpReassembler {
    /// Sequence number of stream offset 0, once known.
    isn: Option<u32>,
    /// Whether that was learnt from a SYN (the stream's real start), not a segment mid-way.
    from_syn: bool,
    /// Stream offset of the next byte to hand on.
    delivered: u64,
    /// Segments ahead of `delivered`, by stream offset.
    pending: BTreeMap<u64, Vec<u8>>,
    /// Bytes (and per-segment overhead) in `pending`.
    buffered: usize,
    max_buffered: usize,
}

impl TcpReassembler {
    /// A reassembler that holds at most `max_buffered` bytes of out-of-order segments.
    pub fn new(max_buffered: usize) -> Self {
        Self {
            isn: None,
            from_syn: false,
            delivered: 0,
            pending: BTreeMap::new(),
            buffered: 0,
            max_buffered,
        }
    }

    /// Whether the stream's first byte is known to be its real start (a SYN was seen first).
    pub fn from_syn(&self) -> bool {
        self.from_syn
    }

    /// Stream offset of the next byte to be handed on (gaps included).
    pub fn offset(&self) -> u64 {
        self.delivered
    }

    /// Bytes of out-of-order segments waiting for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// A segment: its sequence number, whether it carries SYN, and its payload. Whatever it lets
    /// through is appended to `out`.
    pub fn segment(&mut self, seq: u32, syn: bool, payload: &[u8], out: &mut Vec<StreamPiece>) {
        // The SYN takes one sequence number; data (as with TCP Fast Open) follows it.
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        if self.isn.is_none() {
            self.from_syn = syn;
        }
        let isn = *self.isn.get_or_insert(seq);
        if payload.is_empty() {
            return;
        }
        let expected = isn.wrapping_add(self.delivered as u32);
        // Distance from the next expected byte, either way round the sequence space: behind is a
        // retransmission, ahead a hole.
        let (start, bytes) = match seq.wrapping_sub(expected) {
            ahead if ahead < 1 << 31 => (self.delivered + u64::from(ahead), payload),
            _ => {
                let behind = expected.wrapping_sub(seq) as usize;
                let Some(fresh) = payload.get(behind..).filter(|f| !f.is_empty()) else {
                    return;
                };
                (self.delivered, fresh)
            }
        };
        if start == self.delivered {
            self.delivered += bytes.len() as u64;
            out.push(StreamPiece::Data(bytes.to_vec()));
            self.drain(false, out);
        } else {
            self.hold(start, bytes);
            if self.buffered > self.max_buffered {
                self.give_up_hole(out);
            }
        }
    }

    /// The capture has ended (or the connection closed): everything held is handed on, with a gap
    /// for each hole.
    pub fn finish(&mut self, out: &mut Vec<StreamPiece>) {
        self.drain(true, out);
    }

    fn hold(&mut self, start: u64, bytes: &[u8]) {
        match self.pending.get_mut(&start) {
            Some(held) if held.len() >= bytes.len() => {}
            Some(held) => {
                self.buffered += bytes.len() - held.len();
                *held = bytes.to_vec();
            }
            None => {
                self.buffered += bytes.len() + SEGMENT_OVERHEAD;
                self.pending.insert(start, bytes.to_vec());
            }
        }
    }

    /// Skips the first hole, then hands on what follows it.
    fn give_up_hole(&mut self, out: &mut Vec<StreamPiece>) {
        if let Some((&start, _)) = self.pending.first_key_value() {
            out.push(StreamPiece::Gap(start - self.delivered));
            self.delivered = start;
            self.drain(false, out);
        }
        // Still over the bound (one hole after another): keep skipping.
        while self.buffered > self.max_buffered {
            let Some((&start, _)) = self.pending.first_key_value() else {
                break;
            };
            out.push(StreamPiece::Gap(start - self.delivered));
            self.delivered = start;
            self.drain(false, out);
        }
    }

    /// Hands on held segments that now follow on; with `force`, skips holes too.
    fn drain(&mut self, force: bool, out: &mut Vec<StreamPiece>) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.delivered && !force {
                break;
            }
            let bytes = entry.remove();
            self.buffered -= bytes.len() + SEGMENT_OVERHEAD;
            if start > self.delivered {
                out.push(StreamPiece::Gap(start - self.delivered));
                self.delivered = start;
            }
            let end = start + bytes.len() as u64;
            if end <= self.delivered {
                continue;
            }
            let fresh = &bytes[(self.delivered - start) as usize..];
            self.delivered = end;
            out.push(StreamPiece::Data(fresh.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Joins the pieces: data as is, a gap as that many `?`.
    fn joined(pieces: &[StreamPiece]) -> Vec<u8> {
        let mut all = Vec::new();
        for p in pieces {
            match p {
                StreamPiece::Data(d) => all.extend_from_slice(d),
                StreamPiece::Gap(n) => all.extend(std::iter::repeat_n(b'?', *n as usize)),
            }
        }
        all
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut r = TcpReassembler::new(1 << 20);
        let mut out = Vec::new();
        r.segment(999, true, b"", &mut out);
        r.segment(1000, false, b"hello", &mut out);
        r.segment(1010, false, b"world", &mut out);
        assert_eq!(joined(&out), b"hello");
        r.segment(1000, false, b"hello", &mut out);
        r.segment(1003, false, b"lo, ", &mut out);
        r.segment(1007, false, b"ZZZ", &mut out);
        assert_eq!(joined(&out), b"hello, ZZZworld");
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = TcpReassembler::new(1 << 20);
        let mut out = Vec::new();
        r.segment(u32::MAX - 3, false, b"abc", &mut out);
        r.segment(1, false, b"fgh", &mut out);
        r.segment(u32::MAX, false, b"de", &mut out);
        assert_eq!(joined(&out), b"abcdefgh");
    }

    #[test]
    fn a_hole_is_given_up_at_the_bound_and_at_the_end() {
        let mut r = TcpReassembler::new(100);
        let mut out = Vec::new();
        r.segment(0, false, b"ab", &mut out);
        r.segment(10, false, &[b'x'; 20], &mut out);
        assert_eq!(joined(&out), b"ab");
        r.segment(40, false, &[b'y'; 30], &mut out);
        // 50 bytes + 2 x 64 of overhead is over 100: the first hole goes.
        assert_eq!(out[1], StreamPiece::Gap(8));
        let mut r2 = TcpReassembler::new(1 << 20);
        let mut out2 = Vec::new();
        r2.segment(0, false, b"ab", &mut out2);
        r2.segment(5, false, b"f", &mut out2);
        r2.finish(&mut out2);
        assert_eq!(joined(&out2), b"ab???f");
    }

    proptest! {
        /// Any segmentation of a stream, shuffled, with some segments sent twice and the
        /// sequence numbers starting anywhere (wrap included), comes out as the stream.
        #[test]
        fn any_order_reassembles(
            data in proptest::collection::vec(any::<u8>(), 1..3000),
            cuts in proptest::collection::vec(1usize..200, 1..60),
            isn in any::<u32>(),
            seed in any::<u64>(),
            syn in any::<bool>(),
        ) {
            let mut segments = Vec::new();
            let mut at = 0;
            for c in cuts.iter().cycle() {
                if at >= data.len() { break; }
                let end = (at + c).min(data.len());
                segments.push((at, end));
                // Overlapping retransmission of a neighbouring range, now and then.
                if c % 3 == 0 && at > 5 {
                    segments.push((at - 5, end));
                }
                at = end;
            }
            // A seeded shuffle that keeps the first segment first (so the stream's start is known).
            let mut state = seed | 1;
            for i in (2..segments.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                let j = 1 + (state as usize) % i;
                segments.swap(i, j);
            }
            let mut r = TcpReassembler::new(1 << 20);
            let mut out = Vec::new();
            let first = if syn { r.segment(isn, true, b"", &mut out); isn.wrapping_add(1) } else { isn };
            for &(s, e) in &segments {
                r.segment(first.wrapping_add(s as u32), false, &data[s..e], &mut out);
            }
            r.finish(&mut out);
            prop_assert_eq!(joined(&out), data);
            prop_assert!(out.iter().all(|p| !matches!(p, StreamPiece::Gap(_))));
        }

        /// Arbitrary segments never panic, and the bound on held bytes holds.
        #[test]
        fn arbitrary_segments_stay_bounded(
            segs in proptest::collection::vec((any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..100),
        ) {
            let mut r = TcpReassembler::new(2000);
            let mut out = Vec::new();
            for (seq, syn, payload) in &segs {
                r.segment(*seq, *syn, payload, &mut out);
                prop_assert!(r.buffered() <= 2000);
            }
            r.finish(&mut out);
            prop_assert_eq!(r.buffered(), 0);
        }
    }
}
