//! CRC32 (IEEE 802.3, the polynomial of zlib and Ethernet) over frames and datagrams.
//!
//! Under `cfg(fuzzing)` a mismatch is not reported, so that a fuzzer reaches the parsers behind the
//! checksum instead of spending its time guessing CRCs (STYLE.md 9, as smoltcp does), unless a
//! harness asks for the real check ([`check_even_when_fuzzing`]): the session harness does,
//! because the CRC is what refuses a datagram so late that its compact packet number restores to
//! another (docs/PROTOCOL.md section 2.4), and without it an honest but late duplicate would pass.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::error::DecodeError;

/// Whether a fuzzing build checks CRCs after all.
static CHECK_WHEN_FUZZING: AtomicBool = AtomicBool::new(false);

/// From now on, in this process, a fuzzing build checks CRCs as any other build does. No effect
/// outside `cfg(fuzzing)`.
pub(crate) fn check_even_when_fuzzing() {
    CHECK_WHEN_FUZZING.store(true, Ordering::Relaxed);
}

/// The CRC32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The CRC32 of `parts` one after the other.
pub(crate) fn crc32_of_parts(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Checks that `carried` is the CRC32 of `data`.
pub(crate) fn verify(data: &[u8], carried: u32) -> Result<(), DecodeError> {
    verify_computed(crc32(data), carried)
}

/// Checks that `carried` is `computed`.
pub(crate) fn verify_computed(computed: u32, carried: u32) -> Result<(), DecodeError> {
    if computed == carried || (cfg!(fuzzing) && !CHECK_WHEN_FUZZING.load(Ordering::Relaxed)) {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum { carried, computed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_ieee_crc32() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn verify_reports_both_values() {
        assert_eq!(verify(b"123456789", 0xCBF4_3926), Ok(()));
        assert_eq!(
            verify(b"123456789", 1),
            Err(DecodeError::BadChecksum {
                carried: 1,
                computed: 0xCBF4_3926
            })
        );
    }
}
