//! Sealed datagrams (docs/PROTOCOL.md section 2.3): a UDP session whose connect token carried
//! keys has every datagram after the handshake encrypted and authenticated with
//! ChaCha20-Poly1305 (ring's), one key per direction, as netcode.io does.
//!
//! ```text
//! magic "FW" | version | flags (SEALED set) | connection id | packet number     in the clear,
//!                                                                             associated data
//! ChaCha20-Poly1305( [ack block] frames... )                                  what a plain
//! tag (16 bytes)                                                              datagram carries
//! ```
//!
//! A sealed datagram carries no CRC: the tag covers it, so it is 12 bytes longer than the plain
//! datagram with the same frames. The nonce is the sender's packet count since the session began,
//! the 32-bit packet number with the wraps before it counted, so it never repeats under one key;
//! and a key is one session's only ([`SessionKeys::derive`] mixes in the connection id, the
//! Hello's nonce and the server's cookie), so a resume, a reconnect or a restarted server never
//! sees a nonce again either. A receiver checks the cheap things first: the header, then the
//! packet number against its replay window, then the tag; the window moves only for a datagram
//! that opened.
//!
//! This module keeps no clock and no random source; the token's keys come from the issuer, the
//! rest from the handshake.

mod compact;
mod datagram;
mod keys;
mod replay;

pub use compact::{COMPACT_SEALED, SEALED_COMPACT_MIN_LEN, check_sealed_compact};
pub use datagram::{OpenError, SEAL_OVERHEAD, SEALED_FLAG, Sealer, TAG_LEN, is_sealed};
pub use keys::{KEY_LEN, SessionKeys, TokenKeys};
pub use replay::{REPLAY_WINDOW, ReplayWindow};
