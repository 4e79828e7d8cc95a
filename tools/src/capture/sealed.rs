//! A captured UDP packet of sealed datagrams (docs/PROTOCOL.md sections 2.3 and 2.5, the
//! version-1 form and the compact one): one, or a run of them sent in one call (see
//! [`super::coalesced`] for runs). Without the session's keys nothing past a header can be read or
//! verified, so a run is told by its headers alone.

use framewire_protocol::seal::{TAG_LEN, check_sealed_compact, is_sealed};
use framewire_protocol::wire::compact::PN_AT;
use framewire_protocol::wire::{MAGIC, PACKET_HEADER_LEN, VERSION, is_compact};

/// A sealed datagram's header: its connection id, its packet number as the wire carries it (a
/// compact one's low bits), and the range of numbers its field holds (`2^32` for the version-1
/// form, `2^(8 x bytes)` for a compact one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    connection_id: u64,
    packet_number: u32,
    range: u64,
    /// The shortest datagram of this form and packet number length.
    least: usize,
}

impl Header {
    fn read(bytes: &[u8]) -> Option<Self> {
        if is_compact(bytes) {
            let (id, (pn, pn_len)) = check_sealed_compact(bytes).ok()?;
            return Some(Self {
                connection_id: u64::from(id),
                packet_number: pn,
                range: 1 << (8 * pn_len),
                least: PN_AT + pn_len + 1 + TAG_LEN,
            });
        }
        let h = bytes.get(..PACKET_HEADER_LEN)?;
        if h[..2] != MAGIC || h[2] != VERSION || !is_sealed(h) {
            return None;
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[4..12]);
        let mut pn = [0u8; 4];
        pn.copy_from_slice(&h[12..16]);
        Some(Self {
            connection_id: u64::from_be_bytes(id),
            packet_number: u32::from_be_bytes(pn),
            range: 1 << 32,
            least: PACKET_HEADER_LEN + 1 + TAG_LEN,
        })
    }

    /// The header `n` datagrams after this one in a run: the same session and form, the number
    /// `n` more within its field.
    fn after(&self, n: u64) -> Self {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "reduced modulo the field's range"
        )]
        let packet_number = ((u64::from(self.packet_number) + n) % self.range) as u32;
        Self {
            packet_number,
            ..*self
        }
    }
}

/// The headers of a packet that holds sealed datagrams of either form: one, or a run of them sent
/// in one call, where every piece of one length (the last no longer) starts with a sealed header
/// of the same form and connection id, the packet numbers one apart. Each is `(connection id,
/// packet number as on the wire, length)`; `None` if the packet is neither.
pub fn sealed_headers(payload: &[u8]) -> Option<Vec<(u64, u32, usize)>> {
    // A header read from the bytes at `at` on, which must hold at least a whole datagram of it.
    let header = |at: usize| -> Option<Header> {
        let h = Header::read(payload.get(at..)?)?;
        (payload.len() - at >= h.least).then_some(h)
    };
    let first = header(0)?;
    let least = first.least;
    // The first later place a header of the next packet number of this session starts, if any.
    let segment_len = (least..=payload.len().saturating_sub(least))
        .find(|&at| header(at) == Some(first.after(1)));
    let Some(segment_len) = segment_len else {
        return Some(vec![(
            first.connection_id,
            first.packet_number,
            payload.len(),
        )]);
    };
    let mut out = Vec::with_capacity(payload.len().div_ceil(segment_len));
    let mut at = 0;
    while at < payload.len() {
        let len = segment_len.min(payload.len() - at);
        let expected = first.after(out.len() as u64);
        if len < least || header(at) != Some(expected) {
            return None;
        }
        out.push((expected.connection_id, expected.packet_number, len));
        at += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sealed_run(count: u32, size: usize) -> Vec<u8> {
        use framewire_protocol::seal::{SEAL_OVERHEAD, Sealer, SessionKeys, TokenKeys};
        let keys = TokenKeys {
            client_to_server: [1; 32],
            server_to_client: [2; 32],
        };
        let mut sealer = Sealer::new(&SessionKeys::derive(&keys, 9, 9, b"c", false));
        let mut out = Vec::new();
        for pn in 0..count {
            let payload = vec![0x55u8; if pn + 1 == count { size / 2 } else { size }];
            let frame = framewire_protocol::wire::Frame::new(framewire_protocol::wire::Data {
                payload: Bytes::from(payload),
            });
            let mut d = framewire_protocol::samples::datagram(9, pn, &[frame], 0);
            let len = d.len();
            d.resize(len + SEAL_OVERHEAD, 0);
            let n = sealer.seal(&mut d, len).unwrap();
            out.extend_from_slice(&d[..n]);
        }
        out
    }

    #[test]
    fn sealed_datagrams_are_told_by_their_headers_alone_one_or_a_run() {
        let one = sealed_run(1, 100);
        assert_eq!(sealed_headers(&one), Some(vec![(9, 0, one.len())]));
        let run = sealed_run(4, 100);
        let heads = sealed_headers(&run).unwrap();
        assert_eq!(heads.len(), 4);
        assert_eq!(heads.iter().map(|h| h.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(heads.iter().map(|h| h.2).sum::<usize>(), run.len());
        // A plain datagram is not sealed; a damaged run is neither.
        assert_eq!(sealed_headers(&crate_sample()), None);
        let mut broken = run.clone();
        let second = heads[0].2;
        broken[second + 12] ^= 0xFF;
        // The second header no longer follows the first: no run, so one sealed datagram.
        assert_eq!(sealed_headers(&broken), Some(vec![(9, 0, broken.len())]));
    }

    /// Sealed compact datagrams (version 4) numbered `pns`, each acknowledged up to the one before
    /// it (so their numbers take one byte), back to back.
    fn sealed_compact_run(pns: std::ops::Range<u32>, size: usize) -> Vec<u8> {
        use framewire_protocol::seal::{SEAL_OVERHEAD, Sealer, SessionKeys, TokenKeys};
        use framewire_protocol::wire::{Data, DatagramBuilder, Frame, PacketHeader};
        let keys = TokenKeys {
            client_to_server: [1; 32],
            server_to_client: [2; 32],
        };
        let mut sealer = Sealer::new(&SessionKeys::derive(&keys, 9, 9, b"c", false));
        let mut out = Vec::new();
        for pn in pns.clone() {
            let mut buf = vec![0u8; 1200];
            let header = PacketHeader {
                connection_id: 9,
                packet_number: pn,
                ack: None,
            };
            let mut b = DatagramBuilder::new_compact(
                &mut buf[..1200 - SEAL_OVERHEAD],
                &header,
                Some(pn.wrapping_sub(1)),
            )
            .unwrap();
            b.for_sealing();
            let last = pn + 1 == pns.end;
            let payload = vec![0x55u8; if last { size / 2 } else { size }];
            assert!(
                b.push(&Frame::new(Data {
                    payload: Bytes::from(payload),
                }))
                .unwrap()
            );
            let len = b.finish().unwrap();
            let n = sealer.seal_compact(&mut buf, len, pn).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn sealed_compact_datagrams_are_told_by_their_headers_alone_one_or_a_run() {
        let one = sealed_compact_run(7..8, 100);
        assert_eq!(sealed_headers(&one), Some(vec![(9, 7, one.len())]));
        // One-byte numbers, across their wrap: 254, 255, 0, 1 as the wire has them.
        let run = sealed_compact_run(254..258, 100);
        let heads = sealed_headers(&run).unwrap();
        assert_eq!(
            heads.iter().map(|h| h.1).collect::<Vec<_>>(),
            [254, 255, 0, 1]
        );
        assert_eq!(heads.iter().map(|h| h.2).sum::<usize>(), run.len());
        assert!(heads.iter().all(|h| h.0 == 9));
        let mut broken = run.clone();
        broken[heads[0].2 + 1] ^= 0xFF;
        assert_eq!(
            sealed_headers(&broken),
            Some(vec![(9, 254, broken.len())]),
            "the second header's connection id no longer matches: one datagram"
        );
        // A plain compact datagram is not sealed.
        let mut plain = one.clone();
        plain[0] &= !framewire_protocol::seal::COMPACT_SEALED;
        assert_eq!(sealed_headers(&plain), None);
    }

    fn crate_sample() -> Vec<u8> {
        framewire_protocol::samples::datagrams()[0].encode()
    }
}
