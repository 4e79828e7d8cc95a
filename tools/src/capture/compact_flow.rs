//! Compact datagrams (docs/PROTOCOL.md section 2.4) in a capture. A compact datagram carries the
//! low bits of its packet number and of its frames' sequence numbers, and its CRC covers the
//! packet number whole: a reader restores them as the receiving session does, from what it saw
//! before in the same direction. [`CompactFlow`] keeps that for one UDP connection.
//!
//! A capture that starts after the session did has nothing to restore from: its first compact
//! datagrams in a direction are read without their CRC (the numbers they show may be off by a
//! multiple of their field's range) until one verifies.

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::DecodeError;
use framewire_protocol::wire::compact::{PN_AT, check_compact, pn_len_of_code};
use framewire_protocol::wire::numbers::expand_nearest;
use framewire_protocol::wire::{CRC_LEN, CompactContext, Datagram, Frame, is_compact};

use super::coalesced::{Run, split_into};

/// What one UDP connection's compact datagrams let a reader restore.
#[derive(Debug, Default)]
pub struct CompactFlow {
    /// The largest packet number seen each way (0: to the server, 1: to the client).
    largest: [Option<u32>; 2],
    /// The latest sequence number seen each way on each channel.
    seqs: HashMap<(usize, u8), u32>,
}

impl CompactFlow {
    fn context(&self, way: usize) -> CompactContext {
        CompactContext {
            largest_received: self.largest[way],
            largest_sent: self.largest[1 - way].unwrap_or(0),
        }
    }

    /// Opens one compact datagram sent `way` (0: to the server, 1: to the client).
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn open(&mut self, way: usize, payload: &Bytes) -> Result<Datagram, DecodeError> {
        let context = self.context(way);
        let opened = Datagram::parse_compact_or_reset(payload.clone(), &context)?;
        self.note(way, &opened);
        Ok(opened)
    }

    /// Reads a compact datagram sent `way` that did not verify, when nothing verified before in
    /// that direction (a capture that joined the session late): unverified, its numbers as
    /// restored from nothing. `None` once something has verified that way.
    pub fn open_unverified(&mut self, way: usize, payload: &Bytes) -> Option<Datagram> {
        if self.largest[way].is_some() {
            return None;
        }
        let opened =
            Datagram::parse_compact_unverified(payload.clone(), &self.context(way)).ok()?;
        Some(opened)
    }

    fn note(&mut self, way: usize, opened: &Datagram) {
        let pn = opened.header.packet_number;
        if self.largest[way].is_none_or(|l| pn.wrapping_sub(l).cast_signed() > 0) {
            self.largest[way] = Some(pn);
        }
    }

    /// A frame body of a compact datagram sent `way`, its sequence number restored.
    ///
    /// # Errors
    /// As [`Frame::parse_compact`].
    pub fn frame(&mut self, way: usize, body: Bytes) -> Result<Frame, DecodeError> {
        let seqs = &mut self.seqs;
        Frame::parse_compact(body, |channel, low| {
            let expected = seqs.get(&(way, channel)).map_or(0, |s| s.wrapping_add(1));
            let seq = expand_nearest(u32::from(low), 16, expected);
            if seqs
                .get(&(way, channel))
                .is_none_or(|s| seq.wrapping_sub(*s).cast_signed() > 0)
            {
                seqs.insert((way, channel), seq);
            }
            seq
        })
    }

    /// Splits a packet holding a run of compact datagrams sent `way` (segmentation offload, as
    /// [`super::split_run`] does for version-1 ones): the segment length and each datagram, or
    /// `None` when it is not a clean run. The first datagram's end is the first place where the
    /// four bytes after it are its CRC (the packet number restored) and what comes before checks.
    pub fn split_run(&mut self, way: usize, payload: &Bytes) -> Option<Run> {
        let segment_len = self.first_len(way, payload)?;
        split_into(payload, segment_len, |piece| {
            if is_compact(&piece) {
                self.open(way, &piece).ok()
            } else {
                None
            }
        })
    }

    fn first_len(&self, way: usize, bytes: &[u8]) -> Option<usize> {
        let pn_len = pn_len_of_code(*bytes.first()?)?;
        let field = bytes.get(PN_AT..PN_AT + pn_len)?;
        let low = field.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b));
        let expected = self.largest[way].map_or(0, |l| l.wrapping_add(1));
        #[allow(clippy::cast_possible_truncation, reason = "at most 4 bytes: 32 bits")]
        let pn = expand_nearest(low, 8 * pn_len as u32, expected);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[..PN_AT]);
        crc.update(&pn.to_be_bytes());
        let mut at = PN_AT + pn_len;
        while at + CRC_LEN < bytes.len() {
            if crc.clone().finalize().to_be_bytes() == bytes[at..at + CRC_LEN]
                && check_compact(&bytes[..at + CRC_LEN]).is_ok()
            {
                return Some(at + CRC_LEN);
            }
            crc.update(&bytes[at..=at]);
            at += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use framewire_protocol::wire::{Data, DatagramBuilder, FrameBody, PacketHeader};

    use super::*;

    fn compact(pn: u32, seq: u32, len: usize) -> Vec<u8> {
        let header = PacketHeader {
            connection_id: 9,
            packet_number: pn,
            ack: None,
        };
        let mut frame = Frame::new(Data {
            payload: Bytes::from(vec![0xAB; len]),
        });
        frame.seq = Some(seq);
        let mut buf = vec![0u8; 1200];
        let mut b = DatagramBuilder::new_compact(&mut buf, &header, pn.checked_sub(1)).unwrap();
        assert!(b.push(&frame).unwrap());
        let n = b.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn numbers_are_restored_from_what_came_before() {
        let mut flow = CompactFlow::default();
        let first = Bytes::from(compact(0, 0, 5));
        for n in 0..300u32 {
            let d = flow.open(0, &Bytes::from(compact(n, n, 5))).unwrap();
            assert_eq!(d.header.packet_number, n);
            let f = flow.frame(0, d.frames().next().unwrap()).unwrap();
            assert_eq!(f.seq, Some(n));
            assert!(matches!(f.body, FrameBody::Data(_)));
        }
        // The first datagram again, 300 later: its one-byte number restores to another, whose
        // CRC it does not have.
        assert!(matches!(
            flow.open(0, &first),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn a_run_of_compact_datagrams_splits() {
        let mut flow = CompactFlow::default();
        let mut run = compact(0, 0, 100);
        let segment = run.len();
        run.extend(compact(1, 1, 100));
        run.extend(compact(2, 2, 30));
        let run = flow.split_run(0, &Bytes::from(run)).unwrap();
        assert_eq!(run.segment_len, segment);
        let numbers: Vec<u32> = run
            .datagrams
            .iter()
            .map(|d| d.header.packet_number)
            .collect();
        assert_eq!(numbers, [0, 1, 2]);
        // One datagram alone is no run; a damaged one splits into nothing.
        assert!(flow.split_run(0, &Bytes::from(compact(3, 3, 10))).is_none());
        let mut damaged = compact(4, 4, 100);
        damaged.extend(compact(5, 5, 100));
        damaged[20] ^= 1;
        assert!(flow.split_run(0, &Bytes::from(damaged)).is_none());
    }
}
