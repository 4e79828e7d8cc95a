//! A captured UDP packet of sealed datagrams (docs/PROTOCOL.md section 2.3): one, or a run of them
//! sent in one call (see [`super::coalesced`] for runs). Without the session's keys nothing past a
//! header can be read or verified, so a run is told by its headers alone.

use framewire_protocol::seal::{TAG_LEN, is_sealed};
use framewire_protocol::wire::{MAGIC, PACKET_HEADER_LEN, VERSION};

/// The headers of a packet that holds sealed datagrams: one, or a run of them sent in one call,
/// where every piece of one length (the last no longer) starts with a sealed header of the same
/// connection id, the packet numbers one apart. Each is `(connection id, packet number, length)`;
/// `None` if the packet is neither.
pub fn sealed_headers(payload: &[u8]) -> Option<Vec<(u64, u32, usize)>> {
    let header = |at: usize| -> Option<(u64, u32)> {
        let h = payload.get(at..at + PACKET_HEADER_LEN)?;
        let sealed = h[..2] == MAGIC && h[2] == VERSION && is_sealed(h);
        sealed.then(|| {
            let mut id = [0u8; 8];
            id.copy_from_slice(&h[4..12]);
            let mut pn = [0u8; 4];
            pn.copy_from_slice(&h[12..16]);
            (u64::from_be_bytes(id), u32::from_be_bytes(pn))
        })
    };
    let (id, pn) = header(0)?;
    let least = PACKET_HEADER_LEN + 1 + TAG_LEN;
    if payload.len() < least {
        return None;
    }
    // The first later place a header of the next packet number of this session starts, if any.
    let segment_len =
        (least..=payload.len() - least).find(|&at| header(at) == Some((id, pn.wrapping_add(1))));
    let Some(segment_len) = segment_len else {
        return Some(vec![(id, pn, payload.len())]);
    };
    let mut out = Vec::with_capacity(payload.len().div_ceil(segment_len));
    let mut at = 0;
    while at < payload.len() {
        let len = segment_len.min(payload.len() - at);
        let expected = (id, pn.wrapping_add(out.len() as u32));
        if len < least || header(at) != Some(expected) {
            return None;
        }
        out.push((id, expected.1, len));
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

    fn crate_sample() -> Vec<u8> {
        framewire_protocol::samples::datagrams()[0].encode()
    }
}
