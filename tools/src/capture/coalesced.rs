//! A captured UDP packet that holds a run of datagrams back to back.
//!
//! A sender that passes a run of same-size datagrams to the kernel in one call (Linux
//! `UDP_SEGMENT`, as framewire's client and server do) is captured on its own host, and on any
//! NIC with segmentation offload, as one UDP packet whose payload is the whole run: every datagram
//! but the last is the segment size, the last may be shorter, and each carries its own CRC. Such a
//! packet does not verify as one datagram. [`split_run`] finds the segment size and opens each
//! datagram, or says the packet is not a clean run (it then stays one bad datagram).
//!
//! The segment size is the first datagram's length, found by walking its structure: after the
//! header, each frame's length prefix names the next possible end, and the first place where the
//! four bytes after a frame are the CRC of everything before them is the end. A chance match
//! elsewhere has odds of 2^-32 per frame, so only that first match is tried: the cost stays one
//! pass over the packet, whatever its bytes.

use bytes::Bytes;
use framewire_protocol::wire::{
    ACK_BLOCK_LEN, ACK_FLAG, CRC_LEN, Datagram, FRAME_LEN_PREFIX, MAGIC, PACKET_HEADER_LEN, VERSION,
};

/// The datagrams of a packet that holds a run of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The length of every datagram but the last (the sender's segment size).
    pub segment_len: usize,
    /// Each datagram, opened, in the order sent.
    pub datagrams: Vec<Datagram>,
}

/// Splits `payload` into the run of datagrams it holds, if it is one: at least two, all but the
/// last of one length, the last no longer, each verifying on its own. `None` for anything else
/// (a single datagram, damaged bytes, unequal pieces), so the caller reports it as it would any
/// other bad datagram.
pub fn split_run(payload: &Bytes) -> Option<Run> {
    let segment_len = first_datagram_len(payload)?;
    split_into(payload, segment_len, |piece| Datagram::parse(piece).ok())
}

/// `payload` cut into pieces of `segment_len` (the last may be shorter), each opened by `open`:
/// the run, if there are at least two pieces and every one opens.
pub(super) fn split_into(
    payload: &Bytes,
    segment_len: usize,
    mut open: impl FnMut(Bytes) -> Option<Datagram>,
) -> Option<Run> {
    if segment_len == 0 || segment_len >= payload.len() {
        return None;
    }
    let mut datagrams = Vec::with_capacity(payload.len().div_ceil(segment_len));
    let mut at = 0;
    while at < payload.len() {
        let end = (at + segment_len).min(payload.len());
        datagrams.push(open(payload.slice(at..end))?);
        at = end;
    }
    Some(Run {
        segment_len,
        datagrams,
    })
}

/// The length of the datagram that starts `bytes`, found by its structure and its CRC, if it ends
/// before `bytes` does.
fn first_datagram_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(..2)? != MAGIC || *bytes.get(2)? != VERSION {
        return None;
    }
    let header_len = if bytes.get(3)? & ACK_FLAG != 0 {
        PACKET_HEADER_LEN + ACK_BLOCK_LEN
    } else {
        PACKET_HEADER_LEN
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(bytes.get(..header_len)?);
    let mut at = header_len;
    loop {
        if let Some(carried) = bytes.get(at..at + CRC_LEN)
            && at + CRC_LEN < bytes.len()
            && crc.clone().finalize().to_be_bytes() == carried
        {
            return Some(at + CRC_LEN);
        }
        let prefix = bytes.get(at..at + FRAME_LEN_PREFIX)?;
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len == 0 {
            return None;
        }
        let frame = bytes.get(at..at + FRAME_LEN_PREFIX + len)?;
        crc.update(frame);
        at += frame.len();
    }
}

#[cfg(test)]
mod tests {
    use framewire_protocol::wire::{
        AckBlock, Data, DatagramBuilder, FRAME_HEADER_LEN, Frame, PacketHeader,
    };

    use super::*;

    /// A datagram of exactly `len` bytes (one Data frame, its payload the padding) with packet
    /// number `pn`.
    fn datagram(pn: u32, len: usize) -> Vec<u8> {
        let header = PacketHeader {
            connection_id: 7,
            packet_number: pn,
            ack: None,
        };
        let overhead = PACKET_HEADER_LEN + FRAME_LEN_PREFIX + FRAME_HEADER_LEN + CRC_LEN;
        let data = Frame::new(Data {
            payload: Bytes::from(vec![0xAB; len - overhead]),
        });
        let mut buf = vec![0u8; len];
        let mut b = DatagramBuilder::new(&mut buf, &header).unwrap();
        assert!(b.push(&data).unwrap());
        assert_eq!(b.finish().unwrap(), len);
        buf
    }

    fn run_of(lens: &[usize]) -> Bytes {
        let mut out = Vec::new();
        for (pn, &len) in lens.iter().enumerate() {
            out.extend(datagram(pn as u32, len));
        }
        Bytes::from(out)
    }

    #[test]
    fn a_run_of_equal_datagrams_splits_into_them() {
        let payload = run_of(&[43, 43]);
        let run = split_run(&payload).unwrap();
        assert_eq!(run.segment_len, 43);
        let numbers: Vec<u32> = run
            .datagrams
            .iter()
            .map(|d| d.header.packet_number)
            .collect();
        assert_eq!(numbers, [0, 1]);
    }

    #[test]
    fn the_last_datagram_of_a_run_may_be_shorter() {
        let payload = run_of(&[200, 200, 200, 61]);
        let run = split_run(&payload).unwrap();
        assert_eq!(run.segment_len, 200);
        assert_eq!(run.datagrams.len(), 4);
    }

    #[test]
    fn one_datagram_is_not_a_run() {
        assert_eq!(split_run(&run_of(&[120])), None);
    }

    #[test]
    fn unequal_datagrams_are_not_a_run() {
        // A longer last one, and a shorter one in the middle.
        assert_eq!(split_run(&run_of(&[60, 80])), None);
        assert_eq!(split_run(&run_of(&[80, 60, 80])), None);
    }

    #[test]
    fn a_damaged_datagram_spoils_the_run() {
        let mut bytes = run_of(&[50, 50, 50]).to_vec();
        bytes[120] ^= 1;
        assert_eq!(split_run(&Bytes::from(bytes)), None);
    }

    #[test]
    fn a_run_with_ack_blocks_splits() {
        let header = PacketHeader {
            connection_id: 9,
            packet_number: 3,
            ack: Some(AckBlock {
                largest: 5,
                delay_us: 10,
                bits: 3,
            }),
        };
        let mut one = vec![0u8; 64];
        let n = DatagramBuilder::new(&mut one, &header)
            .unwrap()
            .finish()
            .unwrap();
        one.truncate(n);
        let payload = Bytes::from([one.clone(), one].concat());
        let run = split_run(&payload).unwrap();
        assert_eq!(run.segment_len, n);
        assert!(run.datagrams.iter().all(|d| d.header.ack.is_some()));
    }

    proptest::proptest! {
        #[test]
        fn any_run_of_equal_datagrams_splits_back(
            len in 26usize..1400,
            count in 2usize..8,
            last_cut in 0usize..1400,
        ) {
            let last = len - last_cut % (len - 25);
            let mut lens = vec![len; count - 1];
            lens.push(last);
            let run = split_run(&run_of(&lens)).unwrap();
            proptest::prop_assert_eq!(run.segment_len, len);
            proptest::prop_assert_eq!(run.datagrams.len(), count);
        }

        #[test]
        fn any_bytes_split_into_whole_pieces_or_not_at_all(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            prefix in 0usize..2,
        ) {
            // Half the inputs start as a real datagram would, so the walk gets past the header.
            let mut bytes = bytes;
            if prefix == 1 && bytes.len() >= 4 {
                bytes[..3].copy_from_slice(&[b'F', b'W', VERSION]);
            }
            let payload = Bytes::from(bytes);
            if let Some(run) = split_run(&payload) {
                proptest::prop_assert!(run.datagrams.len() >= 2);
                proptest::prop_assert!(run.segment_len < payload.len());
            }
        }
    }
}
