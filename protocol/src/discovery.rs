//! LAN discovery (docs/PROTOCOL.md section 4.12): a client broadcasts a Discover, padded to the
//! size of answer it will take; each server that hears it answers with a Here, its node card, in a
//! datagram shorter than the Discover's, at most once per client address and nonce and within a
//! rate ([`Limiter`]).
//!
//! The client writes the request with [`request`] and reads answers with [`read_answer`]; the
//! server's endpoint finds a Discover ([`crate::session::Outcome::Discover`]) and the server
//! answers with [`answer`] when its [`Limiter`] allows.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::error::{DecodeError, Malformation};
use crate::session::Instant;
use crate::wire::{
    CRC_LEN, DEFAULT_DATAGRAM_SIZE, Datagram, DatagramBuilder, Discover, FRAME_HEADER_LEN,
    FRAME_LEN_PREFIX, Frame, FrameBody, Here, NodeCard, PACKET_HEADER_LEN, PacketHeader,
};

/// The bytes of a handshake datagram around a discovery frame's own fields: the packet header,
/// the frame's length and header, the nonce, the CRC.
pub const DISCOVERY_OVERHEAD: usize =
    PACKET_HEADER_LEN + FRAME_LEN_PREFIX + FRAME_HEADER_LEN + 8 + CRC_LEN;

/// The smallest Discover datagram (no padding).
pub const MIN_DISCOVER_DATAGRAM: usize = DISCOVERY_OVERHEAD;

/// The size of Discover a client sends unless told otherwise: room for a card with every kind of
/// address and a long name.
pub const DEFAULT_DISCOVER_SIZE: usize = 512;

/// A Discover datagram of `size` bytes (clamped to [`MIN_DISCOVER_DATAGRAM`] ..=
/// [`DEFAULT_DATAGRAM_SIZE`]) with `nonce`.
pub fn request(nonce: u64, size: usize) -> Vec<u8> {
    let size = size.clamp(MIN_DISCOVER_DATAGRAM, DEFAULT_DATAGRAM_SIZE);
    let mut out = vec![0u8; size];
    let frame = Frame::new(Discover {
        nonce,
        padding: size - MIN_DISCOVER_DATAGRAM,
    });
    let written = DatagramBuilder::new(&mut out, &handshake_header())
        .and_then(|mut b| {
            b.push(&frame)?;
            b.finish()
        })
        .unwrap_or(0);
    debug_assert_eq!(written, size, "a Discover fills the size it was made for");
    out.truncate(written);
    out
}

/// Writes the Here answering a Discover of `nonce` that came in a datagram of `received` bytes:
/// `card` cut to fit a datagram of at most `received - 1` bytes (and `out`). Its length, or `None`
/// when not even the name fits.
pub fn answer(nonce: u64, card: &NodeCard, received: usize, out: &mut [u8]) -> Option<usize> {
    let limit = out.len().min(received.saturating_sub(1));
    let (card, truncated) = card.fit(limit.checked_sub(DISCOVERY_OVERHEAD)?)?;
    let frame = Frame::new(Here {
        nonce,
        truncated,
        card,
    });
    let mut b = DatagramBuilder::new(&mut out[..limit], &handshake_header()).ok()?;
    if !b.push(&frame).ok()? {
        return None;
    }
    b.finish().ok()
}

/// Reads a server's answer to a Discover.
///
/// # Errors
/// A datagram that fails its checks, or is not a handshake datagram (connection id 0) whose one
/// frame is a Here.
pub fn read_answer(datagram: &[u8]) -> Result<Here, DecodeError> {
    let d = Datagram::parse(Bytes::copy_from_slice(datagram))?;
    let mut frames = d.frames();
    let (Some(body), None) = (frames.next(), frames.next()) else {
        return Err(DecodeError::Malformed(Malformation::BadNodeCard));
    };
    if d.header.connection_id != 0 {
        return Err(DecodeError::Malformed(Malformation::BadNodeCard));
    }
    match Frame::parse(body)?.body {
        FrameBody::Here(here) => Ok(here),
        _ => Err(DecodeError::Malformed(Malformation::BadNodeCard)),
    }
}

fn handshake_header() -> PacketHeader {
    PacketHeader {
        connection_id: 0,
        packet_number: 0,
        ack: None,
    }
}

const ONE_ANSWER: u64 = 1_000_000;

/// What a server does with a Discover ([`Limiter::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it.
    Answer,
    /// This address asked with this nonce recently and was answered: a copy (a client's resend,
    /// or a broadcast heard on several sockets). Not answered again.
    Repeat,
    /// Past the server's rate of answers. Not answered.
    Limited,
}

/// A server's bound on its discovery answers: at most `rate` a second (a burst of as many), and
/// one per client address and nonce within [`Limiter::REMEMBER`].
#[derive(Debug, Clone)]
pub struct Limiter {
    rate: u32,
    /// Answers in hand, in millionths: an answer takes 1,000,000, a microsecond adds `rate`.
    tokens: u64,
    last: Option<Instant>,
    recent: VecDeque<(SocketAddr, u64, Instant)>,
}

impl Limiter {
    /// How long an answered address and nonce are remembered.
    pub const REMEMBER: Duration = Duration::from_secs(2);
    /// How many answered addresses and nonces are remembered at most.
    pub const MAX_REMEMBERED: usize = 256;

    /// A limiter of `rate` answers a second (0: none).
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            tokens: Self::full(rate),
            last: None,
            recent: VecDeque::new(),
        }
    }

    fn full(rate: u32) -> u64 {
        u64::from(rate) * ONE_ANSWER
    }

    /// Whether to answer a Discover of `nonce` from `from` at `now`; counts an answer.
    pub fn check(&mut self, now: Instant, from: SocketAddr, nonce: u64) -> Verdict {
        while let Some(&(_, _, at)) = self.recent.front() {
            if now.saturating_duration_since(at) < Self::REMEMBER {
                break;
            }
            self.recent.pop_front();
        }
        if self.recent.iter().any(|&(a, n, _)| a == from && n == nonce) {
            return Verdict::Repeat;
        }
        if let Some(last) = self.last {
            let elapsed =
                u64::try_from(now.saturating_duration_since(last).as_micros()).unwrap_or(u64::MAX);
            self.tokens = self
                .tokens
                .saturating_add(elapsed.saturating_mul(u64::from(self.rate)))
                .min(Self::full(self.rate));
        }
        self.last = Some(now);
        if self.tokens < ONE_ANSWER {
            return Verdict::Limited;
        }
        self.tokens -= ONE_ANSWER;
        if self.recent.len() >= Self::MAX_REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((from, nonce, now));
        Verdict::Answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card() -> NodeCard {
        crate::samples::here_sample().card
    }

    #[test]
    fn a_request_is_a_handshake_datagram_of_its_size() {
        for size in [0, MIN_DISCOVER_DATAGRAM, 96, 512, 5000] {
            let r = request(7, size);
            assert_eq!(
                r.len(),
                size.clamp(MIN_DISCOVER_DATAGRAM, DEFAULT_DATAGRAM_SIZE)
            );
            let d = Datagram::parse(Bytes::from(r.clone())).unwrap();
            assert_eq!(d.header.connection_id, 0);
            let frame = Frame::parse(d.frames().next().unwrap()).unwrap();
            assert!(matches!(
                frame.body,
                FrameBody::Discover(Discover { nonce: 7, .. })
            ));
        }
    }

    #[test]
    fn an_answer_is_shorter_than_its_request_and_reads_back() {
        let mut out = [0u8; 1500];
        let n = answer(9, &card(), 512, &mut out).unwrap();
        let here = read_answer(&out[..n]).unwrap();
        assert_eq!((here.nonce, here.truncated, here.card), (9, false, card()));
        let whole = n;
        // One byte less than a whole answer needs: the UDP line goes.
        let n = answer(9, &card(), whole, &mut out).unwrap();
        assert!(n < whole);
        let here = read_answer(&out[..n]).unwrap();
        assert!(here.truncated);
        assert_eq!(here.card.addrs, card().addrs[..1]);
        // Too small for the name: no answer at all.
        assert_eq!(answer(9, &card(), DISCOVERY_OVERHEAD + 5, &mut out), None);
    }

    #[test]
    fn what_is_not_an_answer_is_refused() {
        assert!(read_answer(&request(1, 64)).is_err());
        let mut out = [0u8; 512];
        let n = answer(9, &card(), 512, &mut out).unwrap();
        let mut bad = out[..n].to_vec();
        bad[n - 1] ^= 1;
        assert!(read_answer(&bad).is_err());
        assert!(read_answer(&[]).is_err());
    }

    #[test]
    fn the_limiter_answers_once_per_nonce_and_within_its_rate() {
        let t0 = Instant::from_micros(0);
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut l = Limiter::new(3);
        assert_eq!(l.check(t0, a, 1), Verdict::Answer);
        assert_eq!(l.check(t0, a, 1), Verdict::Repeat);
        assert_eq!(l.check(t0, a, 2), Verdict::Answer);
        assert_eq!(l.check(t0, a, 3), Verdict::Answer);
        assert_eq!(l.check(t0, a, 4), Verdict::Limited);
        let later = t0 + Duration::from_millis(400);
        assert_eq!(l.check(later, a, 4), Verdict::Answer);
        assert_eq!(l.check(later, a, 5), Verdict::Limited);
        // Forgotten after REMEMBER: a very late copy is answered again, within the rate.
        let much_later = t0 + Limiter::REMEMBER + Duration::from_secs(1);
        assert_eq!(l.check(much_later, a, 1), Verdict::Answer);
        assert_eq!(Limiter::new(0).check(t0, a, 1), Verdict::Limited);
    }

    proptest! {
        #[test]
        fn no_answer_is_as_long_as_its_request(received in 0usize..1300, nonce: u64) {
            let mut out = [0u8; 1500];
            if let Some(n) = answer(nonce, &card(), received, &mut out) {
                prop_assert!(n < received);
                let here = read_answer(&out[..n]).unwrap();
                prop_assert_eq!(here.nonce, nonce);
            }
        }

        #[test]
        fn any_bytes_read_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_answer(&bytes);
        }

        #[test]
        fn the_limiter_never_answers_more_than_its_rate_allows(
            gaps in proptest::collection::vec(0u64..200_000, 1..200),
            rate in 1u32..20,
        ) {
            let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
            let mut l = Limiter::new(rate);
            let mut now = Instant::from_micros(0);
            let mut answered = 0u64;
            for (nonce, gap) in (0u64..).zip(&gaps) {
                now += Duration::from_micros(*gap);
                if l.check(now, a, nonce) == Verdict::Answer {
                    answered += 1;
                }
            }
            // A full bucket, then `rate` a second: at most rate * (1 + elapsed) answers.
            let micros = now.as_micros();
            prop_assert!(
                answered * 1_000_000 <= u64::from(rate) * (1_000_000 + micros),
                "{answered} answers in {micros} us at {rate} a second"
            );
        }
    }
}
