//! The shortened numbers of the compact datagram form (docs/PROTOCOL.md section 2.4): packet
//! numbers and sequence numbers sent as their low bits and restored by the receiver from what it
//! expects (as QUIC restores packet numbers, RFC 9000 appendix A), and variable-length integers
//! (LEB128: seven bits a byte, least significant first, the high bit saying another byte
//! follows; only the shortest encoding is accepted, so each number has one).

use crate::error::{DecodeError, Malformation};

/// The number nearest to `expected` whose low `bits` bits are `truncated` (ties go to the larger),
/// in the wrapping serial-number space of `u32`. `bits` is 1 to 32.
pub fn expand_nearest(truncated: u32, bits: u32, expected: u32) -> u32 {
    if bits >= 32 {
        return truncated;
    }
    let window = 1u32 << bits;
    let mask = window - 1;
    let diff = truncated.wrapping_sub(expected) & mask;
    if diff > window / 2 {
        expected.wrapping_add(diff).wrapping_sub(window)
    } else {
        expected.wrapping_add(diff)
    }
}

/// The largest number at or below `reference` (wrapping) whose low `bits` bits are `truncated`.
pub fn expand_at_most(truncated: u32, bits: u32, reference: u32) -> u32 {
    if bits >= 32 {
        return truncated;
    }
    let mask = (1u32 << bits) - 1;
    reference.wrapping_sub(reference.wrapping_sub(truncated) & mask)
}

/// How many bytes (1, 2 or 4) a packet number needs so that the receiver, which has seen at least
/// `largest_acked`, restores it: twice the distance must fit (RFC 9000 section 17.1).
pub fn packet_number_len(pn: u32, largest_acked: Option<u32>) -> usize {
    let unacked = match largest_acked {
        Some(acked) => u64::from(pn.wrapping_sub(acked)),
        None => u64::from(pn) + 1,
    };
    if 2 * unacked < 1 << 8 {
        1
    } else if 2 * unacked < 1 << 16 {
        2
    } else {
        4
    }
}

/// The bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Writes `v` as LEB128 at the start of `out`, returning the bytes written. `out` holds at least
/// [`varint_len`] bytes (the caller checked).
pub fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    loop {
        let low = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = low;
            return i + 1;
        }
        out[i] = low | 0x80;
        i += 1;
    }
}

/// Reads a LEB128 number of at most `max_len` bytes from the start of `bytes`: the value and the
/// bytes it took.
///
/// # Errors
/// [`DecodeError::Truncated`] when `bytes` ends inside it; [`Malformation::BadVarint`] when it is
/// longer than `max_len` bytes, not in its shortest form, or above `u64`.
pub fn get_varint(bytes: &[u8], max_len: usize) -> Result<(u64, usize), DecodeError> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i >= max_len || i >= 10 {
            return Err(DecodeError::Malformed(Malformation::BadVarint));
        }
        let low = u64::from(b & 0x7F);
        if i == 9 && low > 1 {
            return Err(DecodeError::Malformed(Malformation::BadVarint));
        }
        v |= low << (7 * i);
        if b & 0x80 == 0 {
            // A last byte of zero after the first adds nothing: a longer form than needed.
            if i > 0 && b == 0 {
                return Err(DecodeError::Malformed(Malformation::BadVarint));
            }
            return Ok((v, i + 1));
        }
    }
    Err(DecodeError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expansion_examples() {
        // RFC 9000 appendix A.3's example: expected 0xa82f30eb, 16 bits 0x9b32.
        assert_eq!(expand_nearest(0x9b32, 16, 0xa82f_30eb), 0xa82f_9b32);
        assert_eq!(expand_nearest(0x01, 8, 0x1234_00ff), 0x1234_0101);
        assert_eq!(expand_nearest(0xfe, 8, 0x1234_00ff), 0x1234_00fe);
        assert_eq!(expand_nearest(0xff, 8, 0), u32::MAX, "wraps below zero");
        assert_eq!(expand_nearest(0x05, 8, u32::MAX), 5, "wraps above the top");
        assert_eq!(expand_at_most(0x10, 8, 0x1234_0120), 0x1234_0110);
        assert_eq!(expand_at_most(0x30, 8, 0x1234_0120), 0x1234_0030);
        assert_eq!(expand_at_most(0xffff, 16, 3), u32::MAX);
        assert_eq!(packet_number_len(0, None), 1);
        assert_eq!(packet_number_len(127, None), 2);
        assert_eq!(packet_number_len(200, Some(100)), 1);
        assert_eq!(packet_number_len(228, Some(100)), 2);
        assert_eq!(
            packet_number_len(5, Some(u32::MAX - 3)),
            1,
            "across the wrap"
        );
        assert_eq!(packet_number_len(100_000, Some(1)), 4);
    }

    #[test]
    fn varints_are_shortest_and_bounded() {
        let mut buf = [0u8; 10];
        for (v, bytes) in [
            (0u64, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let n = put_varint(&mut buf, v);
            assert_eq!(&buf[..n], bytes, "{v}");
            assert_eq!(varint_len(v), n);
            assert_eq!(get_varint(bytes, 10), Ok((v, n)));
        }
        let bad = DecodeError::Malformed(Malformation::BadVarint);
        assert_eq!(get_varint(&[0x80, 0x00], 10), Err(bad), "not shortest");
        assert_eq!(get_varint(&[0x80, 0x80, 0x01], 2), Err(bad), "too long");
        assert_eq!(get_varint(&[0xff; 9], 10), Err(DecodeError::Truncated));
        assert_eq!(
            get_varint(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                10
            ),
            Err(bad),
            "above u64"
        );
        assert_eq!(get_varint(&[], 10), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn a_number_within_half_the_window_comes_back(expected: u32, offset in -127i32..=128, wide in -32_767i32..=32_768) {
            let pn = expected.wrapping_add(offset.cast_unsigned());
            prop_assert_eq!(expand_nearest(pn & 0xff, 8, expected), pn);
            let pn = expected.wrapping_add(wide.cast_unsigned());
            prop_assert_eq!(expand_nearest(pn & 0xffff, 16, expected), pn);
        }

        #[test]
        fn at_most_restores_anything_within_the_window_below(reference: u32, back in 0u32..65_536) {
            let v = reference.wrapping_sub(back);
            prop_assert_eq!(expand_at_most(v & 0xffff, 16, reference), v);
        }

        #[test]
        fn the_chosen_length_restores_the_number(acked: u32, ahead in 1u32..1_000_000) {
            let pn = acked.wrapping_add(ahead);
            let len = packet_number_len(pn, Some(acked));
            let bits = 8 * len as u32;
            let truncated = if bits >= 32 { pn } else { pn & ((1 << bits) - 1) };
            // The receiver has seen at least `acked`: it expects anything from acked + 1 on.
            for seen in [acked, pn.wrapping_sub(1)] {
                prop_assert_eq!(expand_nearest(truncated, bits, seen.wrapping_add(1)), pn);
            }
        }

        #[test]
        fn varints_round_trip_and_any_bytes_fail_cleanly(v: u64, bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, v);
            prop_assert_eq!(get_varint(&buf[..n], 10), Ok((v, n)));
            if let Ok((w, m)) = get_varint(&bytes, 10) {
                let n = put_varint(&mut buf, w);
                prop_assert_eq!(&buf[..n], &bytes[..m]);
            }
        }
    }
}
