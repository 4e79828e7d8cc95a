//! Sealing a plain datagram in place, and opening a sealed one back into the plain datagram it
//! stands for (docs/PROTOCOL.md section 2.3).

use bytes::{BufMut, Bytes, BytesMut};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use super::compact::COMPACT_SEALED;
use super::keys::SessionKeys;
use super::replay::ReplayWindow;
use crate::wire::{ACK_FLAG, ACK_NOW_FLAG, CRC_LEN, MAGIC, PACKET_HEADER_LEN, VERSION, crc32};

/// Flag bit 2: the datagram is sealed.
pub const SEALED_FLAG: u8 = 0x04;
/// Bytes of the Poly1305 tag at a sealed datagram's end.
pub const TAG_LEN: usize = 16;
/// How much longer a sealed datagram is than the plain one with the same frames: the tag, less
/// the CRC it replaces.
pub const SEAL_OVERHEAD: usize = TAG_LEN - CRC_LEN;

/// Offsets of the header fields sealing reads.
const FLAGS: usize = 3;
const PACKET_NUMBER: core::ops::Range<usize> = 12..16;

/// Why a sealed datagram was not opened. Each is dropped and counted; none ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a sealed datagram of this version: bad magic or version, no SEALED flag, reserved
    /// flags set, or too short to hold a header, one byte and the tag.
    Malformed,
    /// Its packet number was opened before, or is too far behind the largest to tell.
    Replayed,
    /// The tag does not verify: tampered with, or sealed under another key.
    Forged,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not a sealed datagram",
            Self::Replayed => "a sealed datagram replayed",
            Self::Forged => "a sealed datagram that does not open (tampered, or another key)",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OpenError {}

/// Whether `datagram` says it is sealed (its SEALED flag, of either form; nothing is verified).
pub fn is_sealed(datagram: &[u8]) -> bool {
    match datagram.first() {
        // A compact datagram (version 4) says so in its first byte (section 2.5): its byte 3 is
        // part of its connection id.
        Some(&b) if crate::wire::is_compact(datagram) => b & COMPACT_SEALED != 0,
        Some(&b) => {
            b == crate::wire::MAGIC[0] && datagram.get(FLAGS).is_some_and(|f| f & SEALED_FLAG != 0)
        }
        None => false,
    }
}

/// One session's sealing: its two keys, the wraps of its own packet numbers, and the replay window
/// of the peer's.
pub struct Sealer {
    pub(super) send: LessSafeKey,
    pub(super) receive: LessSafeKey,
    /// The packet number last sealed, counted from the session's start.
    pub(super) last_sent: Option<u64>,
    pub(super) replay: ReplayWindow,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("last_sent", &self.last_sent)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

/// Where a form of sealed datagram keeps what sealing touches: the header (the associated data)
/// is its first `header_len` bytes, its SEALED bit `flag` in byte `flag_at`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sealed {
    pub(super) header_len: usize,
    pub(super) flag_at: usize,
    pub(super) flag: u8,
}

/// The version-1 form: the 16-byte header, its SEALED flag in byte 3.
const VERSION_1: Sealed = Sealed {
    header_len: PACKET_HEADER_LEN,
    flag_at: FLAGS,
    flag: SEALED_FLAG,
};

/// The nonce of the packet numbered `pn` since the session's start: four zero bytes, then `pn`
/// big-endian.
pub(super) fn nonce(pn: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&pn.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// A ChaCha20-Poly1305 key (32 bytes: ring refuses no other length).
fn key(bytes: &[u8; super::KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, bytes).unwrap_or_else(|_| unreachable!("32 bytes")),
    )
}

/// The full packet number nearest `expected` whose low 32 bits are `truncated` (RFC 9000
/// appendix A.3, for a 32-bit encoding).
pub(super) fn full_packet_number(expected: u64, truncated: u32) -> u64 {
    const WINDOW: u64 = 1 << 32;
    const HALF: u64 = WINDOW / 2;
    let candidate = (expected & !(WINDOW - 1)) | u64::from(truncated);
    if candidate + HALF <= expected && candidate < u64::MAX - WINDOW {
        candidate + WINDOW
    } else if candidate > expected + HALF && candidate >= WINDOW {
        candidate - WINDOW
    } else {
        candidate
    }
}

impl Sealer {
    /// Sealing under one session's keys.
    pub fn new(keys: &SessionKeys) -> Self {
        Self {
            send: key(&keys.send),
            receive: key(&keys.receive),
            last_sent: None,
            replay: ReplayWindow::default(),
        }
    }

    /// The packet number this sealer sealed last, counted from the session's start.
    pub fn last_sealed(&self) -> Option<u64> {
        self.last_sent
    }

    /// Seals the plain datagram `buf[..len]` (as [`DatagramBuilder`](crate::wire::DatagramBuilder)
    /// wrote it; its last four bytes, the CRC's place, are not read: the tag takes them) in
    /// place, and returns the sealed datagram's length, `len` plus [`SEAL_OVERHEAD`]. `None`, and `buf` untouched, if `buf` has no room for that, `len` is not
    /// a datagram's, or the packet number does not follow the last one sealed (a nonce is never
    /// used twice).
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let sealed_len = len.checked_add(SEAL_OVERHEAD)?;
        if len < PACKET_HEADER_LEN + CRC_LEN + 1 || buf.len() < sealed_len {
            return None;
        }
        let mut truncated = [0u8; 4];
        truncated.copy_from_slice(&buf[PACKET_NUMBER]);
        let truncated = u32::from_be_bytes(truncated);
        self.seal_parts(buf, len, truncated, VERSION_1)?;
        Some(sealed_len)
    }

    /// Seals the plain datagram `buf[..len]` of `form` numbered `truncated` (its low 32 bits) in
    /// place: sets its SEALED bit, encrypts what follows the header up to the CRC's place, and
    /// writes the tag after it. `None`, and `buf` untouched, if the number does not follow the
    /// last one sealed. The caller checked the lengths.
    pub(super) fn seal_parts(
        &mut self,
        buf: &mut [u8],
        len: usize,
        truncated: u32,
        form: Sealed,
    ) -> Option<()> {
        let pn = match self.last_sent {
            None => u64::from(truncated),
            Some(last) => {
                let pn = full_packet_number(last + 1, truncated);
                if pn <= last {
                    return None;
                }
                pn
            }
        };
        buf[form.flag_at] |= form.flag;
        let (aad, rest) = buf.split_at_mut(form.header_len);
        let body_len = len - form.header_len - CRC_LEN;
        let Ok(tag) = self.send.seal_in_place_separate_tag(
            nonce(pn),
            Aad::from(&*aad),
            &mut rest[..body_len],
        ) else {
            aad[form.flag_at] &= !form.flag;
            return None;
        };
        rest[body_len..body_len + TAG_LEN].copy_from_slice(tag.as_ref());
        self.last_sent = Some(pn);
        Some(())
    }

    /// Opens the sealed datagram `datagram` of `form` numbered `pn` (counted from the session's
    /// start) in place, once its header checked: the replay window, then the tag (the header as
    /// sent, SEALED set, is the associated data); clears SEALED and moves the window. Returns
    /// where the tag starts.
    pub(super) fn open_parts(
        &mut self,
        datagram: &mut [u8],
        pn: u64,
        form: Sealed,
    ) -> Result<usize, OpenError> {
        if !self.replay.may_accept(pn) {
            return Err(OpenError::Replayed);
        }
        let tag_at = datagram.len() - TAG_LEN;
        let (header, rest) = datagram.split_at_mut(form.header_len);
        let (body, tag) = rest.split_at_mut(tag_at - form.header_len);
        let tag = Tag::try_from(&*tag).map_err(|_| OpenError::Malformed)?;
        self.receive
            .open_in_place_separate_tag(nonce(pn), Aad::from(&*header), tag, body, 0..)
            .map_err(|_| OpenError::Forged)?;
        header[form.flag_at] &= !form.flag;
        self.replay.accept(pn);
        Ok(tag_at)
    }

    /// Opens a sealed datagram from the peer: the plain datagram it stands for (its header with
    /// SEALED clear, what it carried, a CRC), as a copy. See [`Sealer::open_in_place`], which
    /// neither copies nor computes the CRC.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub fn open(&mut self, sealed: &[u8]) -> Result<Bytes, OpenError> {
        let mut plain = BytesMut::from(sealed);
        let n = self.open_in_place(&mut plain)?;
        plain.truncate(n);
        let crc = crc32(&plain);
        plain.put_u32(crc);
        Ok(plain.freeze())
    }

    /// Opens a sealed datagram from the peer where it lies: afterwards `datagram[..n]`, for the
    /// `n` returned, is the plain datagram's header (SEALED clear) and what it carried, without a
    /// CRC (the tag proved it whole); what follows is the tag's bytes. Checks the header, then the
    /// replay window, then the tag; the window moves only when the tag verified. On an error the
    /// bytes after the header are not the datagram's any more.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub fn open_in_place(&mut self, datagram: &mut [u8]) -> Result<usize, OpenError> {
        if datagram.len() < PACKET_HEADER_LEN + 1 + TAG_LEN
            || datagram[..2] != MAGIC
            || datagram[2] != VERSION
            || datagram[FLAGS] & !(ACK_FLAG | ACK_NOW_FLAG | SEALED_FLAG) != 0
            || datagram[FLAGS] & SEALED_FLAG == 0
        {
            return Err(OpenError::Malformed);
        }
        let mut truncated = [0u8; 4];
        truncated.copy_from_slice(&datagram[PACKET_NUMBER]);
        let expected = self.replay.largest().map_or(0, |l| l + 1);
        let pn = full_packet_number(expected, u32::from_be_bytes(truncated));
        self.open_parts(datagram, pn, VERSION_1)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::seal::{SessionKeys, TokenKeys};
    use crate::wire::{Data, DatagramBuilder, Frame, PacketHeader};
    use proptest::prelude::*;

    /// A client's and a server's sealer of one session.
    pub(in crate::seal) fn pair() -> (Sealer, Sealer) {
        let keys = TokenKeys {
            client_to_server: [3; 32],
            server_to_client: [4; 32],
        };
        (
            Sealer::new(&SessionKeys::derive(&keys, 5, 6, b"c", false)),
            Sealer::new(&SessionKeys::derive(&keys, 5, 6, b"c", true)),
        )
    }

    fn plain(pn: u32, payload: &[u8]) -> ([u8; 1400], usize) {
        let mut buf = [0u8; 1400];
        let header = PacketHeader {
            connection_id: 5,
            packet_number: pn,
            ack: None,
        };
        let mut b = DatagramBuilder::new(&mut buf[..1400 - SEAL_OVERHEAD], &header).unwrap();
        assert!(
            b.push(&Frame::new(Data {
                payload: Bytes::copy_from_slice(payload),
            }))
            .unwrap()
        );
        let len = b.finish().unwrap();
        (buf, len)
    }

    #[test]
    fn a_sealed_datagram_opens_to_the_plain_one_and_hides_its_payload() {
        let (mut client, mut server) = pair();
        let (mut buf, len) = plain(0, b"secret telemetry");
        let original = buf[..len].to_vec();
        let sealed_len = client.seal(&mut buf, len).unwrap();
        assert_eq!(sealed_len, len + SEAL_OVERHEAD);
        let sealed = &buf[..sealed_len];
        assert!(is_sealed(sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(&server.open(sealed).unwrap()[..], &original[..]);
    }

    #[test]
    fn sealing_reads_no_crc_and_opening_in_place_writes_none() {
        let (mut client, mut server) = pair();
        let (mut client_again, _) = pair();
        let (buf, len) = plain(0, b"in place");
        let mut summed = buf;
        let mut unsummed = buf;
        unsummed[len - CRC_LEN..len].fill(0xee);
        let n = client.seal(&mut summed, len).unwrap();
        assert_eq!(client_again.seal(&mut unsummed, len), Some(n));
        assert_eq!(summed[..n], unsummed[..n], "the CRC's place is not sealed");
        let mut sealed = summed[..n].to_vec();
        let opened = server.open_in_place(&mut sealed).unwrap();
        assert_eq!(opened, len - CRC_LEN);
        assert_eq!(sealed[..opened], buf[..opened]);
        assert_eq!(
            server.open_in_place(&mut summed[..n]),
            Err(OpenError::Replayed)
        );
    }

    #[test]
    fn a_replay_a_flipped_bit_and_the_wrong_key_are_each_refused() {
        let (mut client, mut server) = pair();
        let (mut buf, len) = plain(0, b"x");
        let n = client.seal(&mut buf, len).unwrap();
        let sealed = buf[..n].to_vec();
        for i in 0..n {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(server.open(&bad).is_err(), "byte {i} flipped");
        }
        assert!(
            server.open(&sealed).is_ok(),
            "a forgery does not move the window"
        );
        assert_eq!(server.open(&sealed), Err(OpenError::Replayed));
        // What the client sealed does not open as the server's (each direction has its key).
        let (mut other, _) = pair();
        assert_eq!(other.open(&sealed), Err(OpenError::Forged));
    }

    #[test]
    fn a_packet_number_that_does_not_move_forward_is_not_sealed() {
        let (mut client, _) = pair();
        let (mut buf, len) = plain(7, b"x");
        assert!(client.seal(&mut buf, len).is_some());
        let (mut again, len) = plain(7, b"x");
        assert_eq!(client.seal(&mut again, len), None);
        let (mut older, len) = plain(3, b"x");
        assert_eq!(client.seal(&mut older, len), None);
    }

    #[test]
    fn packet_numbers_wrap_into_a_new_nonce() {
        assert_eq!(full_packet_number(u64::from(u32::MAX) + 1, 0), 1 << 32);
        assert_eq!(full_packet_number(1 << 32, u32::MAX), u64::from(u32::MAX));
        assert_eq!(full_packet_number(5, 3), 3);
        let (mut client, mut server) = pair();
        for pn in [u32::MAX - 1, u32::MAX, 0, 1] {
            let (mut buf, len) = plain(pn, b"x");
            let n = client
                .seal(&mut buf, len)
                .expect("the wrap is a new packet");
            assert!(server.open(&buf[..n]).is_ok(), "{pn}");
        }
        assert_eq!(client.last_sent, Some((1 << 32) + 1));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, mut server) = pair();
            prop_assert!(server.open(&bytes).is_err());
        }

        #[test]
        fn datagrams_opened_out_of_order_each_open_once(order in Just((0u32..40).collect::<Vec<_>>()).prop_shuffle()) {
            let (mut client, mut server) = pair();
            let sealed: Vec<Vec<u8>> = (0u32..40).map(|pn| {
                let (mut buf, len) = plain(pn, &pn.to_be_bytes());
                let n = client.seal(&mut buf, len).unwrap();
                buf[..n].to_vec()
            }).collect();
            for &i in &order {
                prop_assert!(server.open(&sealed[i as usize]).is_ok());
                prop_assert_eq!(server.open(&sealed[i as usize]), Err(OpenError::Replayed));
            }
        }
    }
}
