//! Sealed compact datagrams (version 4, docs/PROTOCOL.md section 2.5): the compact form of
//! section 2.4 with its CRC's place taken by the tag, and the SEALED bit (the compact form's bit 2)
//! set in its first byte.
//!
//! ```text
//! first byte (1 1 A N O S P P, S set) | connection id (u32) | packet number (1, 2 or 4 bytes)
//!                                                               in the clear: associated data
//! ChaCha20-Poly1305( [ack block] frames... )                    as a compact datagram carries
//! tag (16 bytes)
//! ```
//!
//! The nonce is the one of section 2.3, the sender's packet count since the session began: the
//! sender knows it whole, the receiver restores it from the low bits on the wire, first the 32-bit
//! number as any compact datagram's (nearest the largest opened plus one), then its wraps.

use super::datagram::{OpenError, Sealed, Sealer, TAG_LEN, full_packet_number};
use crate::wire::CRC_LEN;
use crate::wire::compact::{
    COMPACT_RESERVED, PN_AT, is_compact, peek_compact_connection_id, pn_len_of_code,
    wire_packet_number,
};
use crate::wire::numbers::expand_nearest;

/// First-byte bit 2 of a compact datagram: the datagram is sealed (the bit a plain compact
/// datagram keeps reserved).
pub const COMPACT_SEALED: u8 = COMPACT_RESERVED;
/// The shortest sealed compact datagram: first byte, connection id, a one-byte packet number, one
/// sealed byte, the tag.
pub const SEALED_COMPACT_MIN_LEN: usize = PN_AT + 1 + 1 + TAG_LEN;

/// Checks a sealed compact datagram's header without its keys: the form, the SEALED bit, the
/// packet number's length code, and room for a sealed byte and the tag. Returns its connection id,
/// and its packet number's low bits with how many bytes carried them.
///
/// # Errors
/// [`OpenError::Malformed`].
pub fn check_sealed_compact(bytes: &[u8]) -> Result<(u32, (u32, usize)), OpenError> {
    let first = *bytes.first().ok_or(OpenError::Malformed)?;
    if !is_compact(bytes) || first & COMPACT_SEALED == 0 {
        return Err(OpenError::Malformed);
    }
    let pn_len = pn_len_of_code(first).ok_or(OpenError::Malformed)?;
    if bytes.len() < PN_AT + pn_len + 1 + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    let id = peek_compact_connection_id(bytes).map_err(|_| OpenError::Malformed)?;
    let low = wire_packet_number(bytes).ok_or(OpenError::Malformed)?;
    Ok((id, (low, pn_len)))
}

/// The compact form: a header of `header_len` bytes, the SEALED bit in the first.
fn form(header_len: usize) -> Sealed {
    Sealed {
        header_len,
        flag_at: 0,
        flag: COMPACT_SEALED,
    }
}

impl Sealer {
    /// Seals the compact datagram `buf[..len]` numbered `packet_number` (as
    /// [`DatagramBuilder::new_compact`](crate::wire::DatagramBuilder::new_compact) wrote it, for
    /// sealing: its last four bytes, the CRC's place, are not read) in place, and returns the
    /// sealed datagram's length, `len` plus [`SEAL_OVERHEAD`](super::SEAL_OVERHEAD). `None`, and
    /// `buf` untouched, if `buf` has no room for that, `len` is not a compact datagram's, or the
    /// number does not follow the last one sealed (a nonce is never used twice).
    pub fn seal_compact(
        &mut self,
        buf: &mut [u8],
        len: usize,
        packet_number: u32,
    ) -> Option<usize> {
        let sealed_len = len.checked_add(super::SEAL_OVERHEAD)?;
        let first = *buf.first()?;
        if !is_compact(buf) || first & COMPACT_SEALED != 0 {
            return None;
        }
        let header_len = PN_AT + pn_len_of_code(first)?;
        if len < header_len + 1 + CRC_LEN || buf.len() < sealed_len {
            return None;
        }
        self.seal_parts(buf, len, packet_number, form(header_len))?;
        Some(sealed_len)
    }

    /// Opens a sealed compact datagram from the peer where it lies: afterwards `datagram[..n]`,
    /// for the `n` returned, is the compact datagram's header (SEALED clear) and what it carried,
    /// without a CRC (the tag proved it whole); returned with it, its packet number restored (32
    /// bits, as its ack refers to it). Checks the header, then the replay window, then the tag;
    /// the window moves only when the tag verified. A datagram so late that its number restores
    /// to another does not open (`Forged`). On an error the bytes after the header are not the
    /// datagram's any more.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub fn open_compact_in_place(
        &mut self,
        datagram: &mut [u8],
    ) -> Result<(usize, u32), OpenError> {
        let (_, (low, pn_len)) = check_sealed_compact(datagram)?;
        let expected = self.replay.largest().map_or(0, |l| l + 1);
        #[allow(clippy::cast_possible_truncation, reason = "the low 32 bits, as sent")]
        let expected_low = expected as u32;
        #[allow(clippy::cast_possible_truncation, reason = "at most 4 bytes: 32 bits")]
        let restored = expand_nearest(low, (8 * pn_len) as u32, expected_low);
        let pn = full_packet_number(expected, restored);
        let tag_at = self.open_parts(datagram, pn, form(PN_AT + pn_len))?;
        Ok((tag_at, restored))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::super::datagram::tests::pair;
    use super::super::{SEAL_OVERHEAD, is_sealed};
    use super::*;
    use crate::wire::compact::check_compact;
    use crate::wire::{AckBlock, Data, DatagramBuilder, Frame, PacketHeader};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// A compact datagram numbered `pn` whose peer acknowledged `acked`, written for sealing
    /// (`sealing`) or with its CRC; and its length.
    fn compact(pn: u32, acked: Option<u32>, payload: &[u8], sealing: bool) -> (Vec<u8>, usize) {
        let mut buf = alloc::vec![0u8; 1400];
        let header = PacketHeader {
            connection_id: 5,
            packet_number: pn,
            ack: Some(AckBlock {
                largest: 9,
                delay_us: 512,
                bits: 3,
            }),
        };
        let mut b =
            DatagramBuilder::new_compact(&mut buf[..1400 - SEAL_OVERHEAD], &header, acked).unwrap();
        if sealing {
            b.for_sealing();
        }
        let frame = Frame::new(Data {
            payload: Bytes::copy_from_slice(payload),
        });
        assert!(b.push(&frame).unwrap());
        assert!(b.push(&frame).unwrap());
        let len = b.finish().unwrap();
        (buf, len)
    }

    fn seal(sealer: &mut Sealer, pn: u32, acked: Option<u32>, payload: &[u8]) -> Vec<u8> {
        let (mut buf, len) = compact(pn, acked, payload, true);
        let n = sealer.seal_compact(&mut buf, len, pn).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_sealed_compact_datagram_opens_to_the_compact_one_and_hides_its_payload() {
        let (mut client, mut server) = pair();
        let (plain, len) = compact(0, None, b"secret telemetry", false);
        let mut sealed = seal(&mut client, 0, None, b"secret telemetry");
        assert_eq!(sealed.len(), len + SEAL_OVERHEAD);
        assert!(is_sealed(&sealed));
        assert_eq!(sealed[0] & COMPACT_SEALED, COMPACT_SEALED);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(check_sealed_compact(&sealed), Ok((5, (0, 1))));
        let (n, pn) = server.open_compact_in_place(&mut sealed).unwrap();
        assert_eq!((n, pn), (len - CRC_LEN, 0));
        assert_eq!(
            sealed[..n],
            plain[..n],
            "the compact datagram, SEALED clear"
        );
        assert!(!is_sealed(&sealed[..n]));
        // With the CRC's place after it, it checks as the compact datagram it is.
        assert_eq!(
            check_compact(&sealed[..n + CRC_LEN]),
            check_compact(&plain[..len])
        );
    }

    #[test]
    fn a_replay_a_flipped_bit_and_the_wrong_key_are_each_refused() {
        let (mut client, mut server) = pair();
        let sealed = seal(&mut client, 0, None, b"x");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                server.open_compact_in_place(&mut bad).is_err(),
                "byte {i} flipped"
            );
        }
        assert!(
            server.open_compact_in_place(&mut sealed.clone()).is_ok(),
            "a forgery does not move the window"
        );
        assert_eq!(
            server.open_compact_in_place(&mut sealed.clone()),
            Err(OpenError::Replayed)
        );
        let (mut other, _) = pair();
        assert_eq!(
            other.open_compact_in_place(&mut sealed.clone()),
            Err(OpenError::Forged),
            "what the client sealed does not open as the server's"
        );
    }

    #[test]
    fn what_is_not_a_sealed_compact_datagram_is_malformed_before_any_decryption() {
        let (mut client, mut server) = pair();
        let sealed = seal(&mut client, 0, None, b"x");
        let mut plain = sealed.clone();
        plain[0] &= !COMPACT_SEALED;
        let mut reserved_len = sealed.clone();
        reserved_len[0] |= 0x03;
        let mut v1 = sealed.clone();
        v1[0] = 0x46;
        for mut bad in [
            plain,
            reserved_len,
            v1,
            sealed[..SEALED_COMPACT_MIN_LEN - 1].to_vec(),
        ] {
            assert_eq!(
                server.open_compact_in_place(&mut bad),
                Err(OpenError::Malformed)
            );
        }
        assert!(server.open_compact_in_place(&mut sealed.clone()).is_ok());
    }

    #[test]
    fn one_byte_numbers_restore_across_their_wraps_and_the_32_bit_one() {
        let (mut client, mut server) = pair();
        // Two runs, each begun before any ack (its first number written long), then acknowledged
        // as they go: one byte on the wire each.
        for pn in (250u32..262).chain(u32::MAX - 3..=u32::MAX).chain(0..4) {
            let first = pn == 250 || pn == u32::MAX - 3;
            let acked = (!first).then(|| pn.wrapping_sub(1));
            let mut sealed = seal(&mut client, pn, acked, b"x");
            if !first {
                assert_eq!(check_sealed_compact(&sealed).unwrap().1.1, 1);
            }
            let restored = server.open_compact_in_place(&mut sealed).map(|r| r.1);
            assert_eq!(restored, Ok(pn), "{pn}");
        }
        assert_eq!(client.last_sent, Some((1 << 32) + 3));
        assert_eq!(server.replay.largest(), Some((1 << 32) + 3));
    }

    #[test]
    fn a_datagram_so_late_its_number_restores_to_another_does_not_open() {
        let (mut client, mut server) = pair();
        let late = seal(&mut client, 0, None, b"late");
        for pn in 1..=200 {
            let mut s = seal(&mut client, pn, Some(pn - 1), b"x");
            server.open_compact_in_place(&mut s).unwrap();
        }
        // Number 0 in one byte, 200 opened since: it restores to 256, a nonce it was not sealed
        // under.
        assert_eq!(
            server.open_compact_in_place(&mut late.clone()),
            Err(OpenError::Forged)
        );
        assert_eq!(
            server.replay.largest(),
            Some(200),
            "the window did not move"
        );
    }

    #[test]
    fn a_number_that_does_not_move_forward_or_a_sealed_one_is_not_sealed_again() {
        let (mut client, _) = pair();
        let (mut buf, len) = compact(7, None, b"x", true);
        let n = client.seal_compact(&mut buf, len, 7).unwrap();
        assert_eq!(client.seal_compact(&mut buf, n, 8), None, "already sealed");
        let (mut again, len) = compact(7, None, b"x", true);
        assert_eq!(client.seal_compact(&mut again, len, 7), None);
        let (mut v1, len) = compact(8, None, b"x", true);
        v1[0] = 0x46;
        assert_eq!(client.seal_compact(&mut v1, len, 8), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, mut server) = pair();
            prop_assert!(server.open_compact_in_place(&mut bytes).is_err());
        }

        #[test]
        fn datagrams_opened_out_of_order_each_open_once(order in Just((0u32..40).collect::<Vec<_>>()).prop_shuffle()) {
            let (mut client, mut server) = pair();
            let sealed: Vec<Vec<u8>> = (0u32..40).map(|pn| seal(&mut client, pn, None, &pn.to_be_bytes())).collect();
            for &i in &order {
                let opened = server.open_compact_in_place(&mut sealed[i as usize].clone());
                prop_assert_eq!(opened.map(|r| r.1), Ok(i));
                prop_assert_eq!(server.open_compact_in_place(&mut sealed[i as usize].clone()), Err(OpenError::Replayed));
            }
        }
    }
}
