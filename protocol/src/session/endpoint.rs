//! The server side of the UDP handshake: a stateless challenge before any session exists
//! (docs/PROTOCOL.md section 4.1.2).
//!
//! [`Endpoint::handle`] looks at every datagram the server's socket receives. Datagrams under a
//! connection id go to that session; datagrams under id 0 are handshakes: a Hello without a cookie
//! gets a Challenge and leaves no state, a Hello with a valid cookie creates a [`Session`]. Replies
//! go only to Hellos of at least [`MIN_HELLO_DATAGRAM`] bytes and are always smaller, so the server
//! never sends an unvalidated address more bytes than it received from it.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::hash::Hasher;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use siphasher::sip::SipHasher24;

use super::config::SessionConfig;
use super::cookie::{CookieError, CookieJar};
use super::engine::Session;
use super::terms::{
    Admission, Admit, agree_frame_len, agree_heartbeat, agree_idle, millis, refusal_reject,
    version_reject,
};
use super::time::Instant;
use crate::seal::{SEAL_OVERHEAD, Sealer, SessionKeys};
use crate::wire::{
    COMPACT_VERSION, Challenge, ChannelKind, Datagram, DatagramBuilder, Frame, FrameBody, Hello,
    MIN_HELLO_DATAGRAM, PacketHeader, PacketView, Reset, SEALED_COMPACT_VERSION,
    SHARED_HEADERS_VERSION, VERSION, Welcome, peek_connection_id,
};

/// How the server's endpoint behaves.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The configuration each accepted session starts from. Its channel kinds are replaced by the
    /// ones the client asks for.
    pub session: SessionConfig,
    /// How long a challenge cookie stays valid. Default 10 s.
    pub cookie_lifetime: Duration,
    /// How many completed handshakes are remembered, so that a client whose Welcome was lost gets
    /// it again instead of a second session. Default 4096.
    pub max_recent_handshakes: usize,
    /// Connection ids this endpoint gives out satisfy `id % id_lanes == id_lane`. Default 1 and 0
    /// (any id).
    pub id_lanes: u64,
    /// See `id_lanes`.
    pub id_lane: u64,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            cookie_lifetime: Duration::from_secs(10),
            max_recent_handshakes: 4096,
            id_lanes: 1,
            id_lane: 0,
        }
    }
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a valid framewire datagram.
    Malformed,
    /// A handshake datagram whose first frame is neither a Hello nor a Discover.
    NotHello,
    /// A Hello in a datagram shorter than [`MIN_HELLO_DATAGRAM`].
    ShortHello,
    /// A cookie that did not verify.
    BadCookie(CookieError),
    /// A Hello refused without an answer ([`crate::session::Refusal::silent`]).
    Refused,
}

/// What the driver does with a datagram after [`Endpoint::handle`].
#[derive(Debug)]
#[must_use]
pub enum Outcome {
    /// It belongs to the session with this connection id: pass it to that session's
    /// [`Session::handle_datagram`] (and drop it if there is none).
    Route(u64),
    /// Send the first `len` bytes of the output buffer back to the sender.
    Reply(usize),
    /// A new session, established; send the first `reply` bytes of the output buffer (the
    /// Welcome) back to the sender, and route the session's connection id to it from now on.
    Accept {
        /// The new session (boxed: it is large, and the other outcomes are small).
        session: Box<Session>,
        /// Bytes of the Welcome datagram.
        reply: usize,
    },
    /// A LAN discovery request (docs/PROTOCOL.md section 4.12): the driver may answer it with
    /// [`crate::discovery::answer`], within its [`crate::discovery::Limiter`]. Nothing is kept.
    Discover {
        /// The Discover's nonce.
        nonce: u64,
    },
    /// Ignore it.
    Drop(DropReason),
}

/// Counts of what the endpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Hellos answered with a Challenge.
    pub challenges: u64,
    /// Sessions created.
    pub accepted: u64,
    /// Welcomes sent again for a repeated Hello.
    pub welcomes_repeated: u64,
    /// Hellos refused for their version.
    pub rejected: u64,
    /// Datagrams dropped, any reason.
    pub dropped: u64,
    /// Cookies that did not verify.
    pub bad_cookies: u64,
    /// LAN discovery requests seen.
    pub discovers: u64,
}

#[derive(Debug, Clone)]
struct Recent {
    connection_id: u64,
    welcome: WelcomeTerms,
    admission: Admission,
    /// The sealed session's keys: a repeated Welcome is sealed again, identically.
    seal: Option<SessionKeys>,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct WelcomeTerms {
    /// The version chosen: for a plaintext session the highest of 1 to 3 both sides speak, for a
    /// sealed one 4 when both speak it, else 1.
    version: u8,
    idle_timeout_ms: u32,
    max_frame_len: u32,
    heartbeat_interval_ms: u32,
}

/// The server's handshake state: its cookie secrets and the handshakes it completed lately.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    cookies: CookieJar,
    id_key: [u8; 16],
    id_counter: u64,
    recent: BTreeMap<(SocketAddr, u64), Recent>,
    recent_order: VecDeque<(SocketAddr, u64)>,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with a random cookie secret and a random key for connection ids (both from the
    /// driver's random source: this crate has none).
    pub fn new(config: EndpointConfig, cookie_secret: [u8; 16], id_key: [u8; 16]) -> Self {
        Self {
            cookies: CookieJar::new(cookie_secret, config.cookie_lifetime),
            config,
            id_key,
            id_counter: 0,
            recent: BTreeMap::new(),
            recent_order: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// Starts a new cookie generation (call it every cookie lifetime or so, with fresh randomness).
    pub fn rotate_secret(&mut self, secret: [u8; 16]) {
        self.cookies.rotate(secret);
    }

    /// What the endpoint has done.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// The version a Welcome answering `hello` chooses for a session `sealed` or not: the highest
    /// both sides speak of those the session may (a sealed one 1 or 4, a plaintext one 1 to 3,
    /// section 4.1); below the Hello's lowest when there is none.
    fn version_for(&self, hello: &Hello, sealed: bool) -> u8 {
        match (sealed, hello.max_version.min(self.highest_version())) {
            (true, SEALED_COMPACT_VERSION) => SEALED_COMPACT_VERSION,
            (true, _) => VERSION,
            (false, v) => v.min(SHARED_HEADERS_VERSION),
        }
    }

    /// The highest version this endpoint's sessions speak: 4 (a sealed session's compact
    /// datagrams, sealed; a plaintext one's frames share headers), 2 (compact datagrams, and a
    /// sealed session the version-1 form) or 1, as configured.
    fn highest_version(&self) -> u8 {
        let session = &self.config.session;
        if !session.compact_datagrams {
            VERSION
        } else if session.shared_headers {
            SEALED_COMPACT_VERSION
        } else {
            COMPACT_VERSION
        }
    }

    /// An unpredictable, non-zero connection id below 2^32 (a compact datagram carries 32 bits,
    /// section 2.4), in this endpoint's lane (`id % id_lanes == id_lane`: a server with several
    /// endpoints, one per worker, tells from an id alone which one owns the session), and unique
    /// by construction: `lane + lanes * p`, `p` a keyed permutation of a counter over the values
    /// that fit. A run of the endpoint gives out 2^32 / `id_lanes` ids before they repeat.
    fn new_connection_id(&mut self) -> u64 {
        let lanes = self.config.id_lanes.clamp(1, 1 << 16);
        let lane = self.config.id_lane % lanes;
        let lane_bits = 64 - (lanes - 1).leading_zeros();
        let bits = 32 - lane_bits;
        loop {
            let counter = self.id_counter & ((1u64 << bits) - 1);
            self.id_counter = self.id_counter.wrapping_add(1);
            let id = lane + lanes * self.permute(counter, bits);
            if id != 0 {
                return id;
            }
        }
    }

    /// A permutation of `[0, 2^bits)` keyed by the id key: a four-round Feistel network over the
    /// even number of bits at or above `bits`, walked until it lands in range.
    fn permute(&self, x: u64, bits: u32) -> u64 {
        let half = bits.div_ceil(2);
        let mask = (1u64 << half) - 1;
        let mut v = x;
        loop {
            let (mut left, mut right) = (v >> half, v & mask);
            for round in 0..4u8 {
                let mut h = SipHasher24::new_with_key(&self.id_key);
                h.write_u8(round);
                h.write_u64(right);
                let next = left ^ (h.finish() & mask);
                left = right;
                right = next;
            }
            v = (left << half) | right;
            if v < 1u64 << bits {
                return v;
            }
        }
    }

    /// Looks at a datagram from `from`; any reply is written into `out` (at least 1200 bytes).
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Outcome {
        self.handle_with(now, from, datagram, out, |_: &Hello, _| {
            Ok(Admission::default())
        })
    }

    /// As [`Endpoint::handle`]; when a Hello with a valid cookie would create a session, `admit`
    /// decides what its Welcome says about resuming (a session token, the `RESUMED` flag, missed
    /// messages), or refuses it: then a Reject goes back and no session is made. A repeated Hello
    /// gets the same Welcome without asking again.
    pub fn handle_with(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        admit: impl Admit,
    ) -> Outcome {
        let outcome = self.classify(now, from, datagram, out, admit);
        if matches!(outcome, Outcome::Drop(_)) {
            self.stats.dropped += 1;
        }
        outcome
    }

    fn classify(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        admit: impl Admit,
    ) -> Outcome {
        // A session's datagram goes to its session, which checks it whole; only a handshake is
        // checked here.
        match peek_connection_id(datagram) {
            Err(_) => return Outcome::Drop(DropReason::Malformed),
            Ok(0) => {}
            Ok(id) => return Outcome::Route(id),
        }
        let Ok(d) = Datagram::parse(Bytes::copy_from_slice(datagram)) else {
            return Outcome::Drop(DropReason::Malformed);
        };
        let hello = match d.frames().next().map(Frame::parse) {
            Some(Ok(Frame {
                body: FrameBody::Hello(hello),
                ..
            })) => hello,
            Some(Ok(Frame {
                body: FrameBody::Discover(discover),
                ..
            })) => {
                self.stats.discovers += 1;
                return Outcome::Discover {
                    nonce: discover.nonce,
                };
            }
            _ => return Outcome::Drop(DropReason::NotHello),
        };
        if datagram.len() < MIN_HELLO_DATAGRAM {
            return Outcome::Drop(DropReason::ShortHello);
        }
        // No version both speak that its session may (4 is a sealed session's alone), told from
        // the Hello: a token that carries keys seals the session if it opens, and one that does
        // not open is refused anyway.
        if self.version_for(&hello, claims_keys(&hello)) < hello.min_version
            || hello.max_version < VERSION
        {
            self.stats.rejected += 1;
            return Self::reply(&version_reject(self.highest_version()), datagram.len(), out);
        }
        self.expire_recent(now);
        let Some(cookie) = hello.options.cookie() else {
            self.stats.challenges += 1;
            let cookie = self.cookies.issue(now, from, hello.nonce);
            let challenge = Frame::new(Challenge {
                nonce: hello.nonce,
                cookie: Bytes::copy_from_slice(&cookie),
            });
            return Self::reply(&challenge, datagram.len(), out);
        };
        if let Err(e) = self.cookies.verify(now, from, hello.nonce, &cookie) {
            self.stats.bad_cookies += 1;
            return Outcome::Drop(DropReason::BadCookie(e));
        }
        if let Some(recent) = self.recent.get(&(from, hello.nonce)) {
            self.stats.welcomes_repeated += 1;
            let again = welcome(
                recent.connection_id,
                recent.welcome,
                recent.admission.clone(),
            );
            return match &recent.seal {
                // The same bytes as the first time: the same keys, number 0, the same frame.
                Some(keys) => {
                    Self::reply_sealed(&again, datagram.len(), out, recent.connection_id, keys).0
                }
                None => Self::reply(&again, datagram.len(), out),
            };
        }
        self.accept(now, from, &hello, datagram.len(), out, admit)
    }

    fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hello: &Hello,
        received: usize,
        out: &mut [u8],
        mut admit: impl Admit,
    ) -> Outcome {
        let mut config = self.config.session.clone();
        config.idle_timeout = agree_idle(config.idle_timeout, hello.idle_timeout_ms);
        config.heartbeat_interval =
            agree_heartbeat(config.heartbeat_interval, 0, config.idle_timeout);
        // The client's layout; a Hello that names none has every channel reliable-ordered
        // (section 3.4), whatever this server's own configuration says.
        let mut channels: Vec<ChannelKind> = Vec::new();
        channels.push(ChannelKind::ReliableOrdered);
        if let Some(kinds) = hello.options.channels() {
            channels.extend(kinds);
        }
        config.channels = channels;
        let connection_id = self.new_connection_id();
        let agreed = agree_frame_len(config.frame_limit(), hello)
            .and_then(|max_frame_len| Ok((max_frame_len, admit(hello, connection_id)?)));
        let version = self.version_for(hello, agreed.as_ref().is_ok_and(|(_, a)| a.seal.is_some()));
        let terms = WelcomeTerms {
            version,
            idle_timeout_ms: millis(config.idle_timeout),
            max_frame_len: agreed.as_ref().map_or(0, |a| a.0),
            heartbeat_interval_ms: millis(config.heartbeat_interval),
        };
        let mut seed = SipHasher24::new_with_key(&self.id_key);
        seed.write_u64(!connection_id);
        config.seed = seed.finish();
        let mut session = Session::established(config, connection_id, from, now);
        session.use_version(version);
        session.agree_frame_len(terms.max_frame_len);
        let admission = match agreed {
            Ok((_, a)) => a,
            Err(refusal) => {
                self.stats.rejected += 1;
                if refusal.silent {
                    return Outcome::Drop(DropReason::Refused);
                }
                return Self::reply(&refusal_reject(refusal), received, out);
            }
        };
        let cookie = hello.options.cookie().unwrap_or_default();
        let seal = admission
            .seal
            .as_ref()
            .map(|keys| SessionKeys::derive(keys, connection_id, hello.nonce, &cookie, true));
        if self.recent_order.len() >= self.config.max_recent_handshakes
            && let Some(oldest) = self.recent_order.pop_front()
        {
            self.recent.remove(&oldest);
        }
        self.recent.insert(
            (from, hello.nonce),
            Recent {
                connection_id,
                welcome: terms,
                admission: admission.clone(),
                seal: seal.clone(),
                expires: now + self.config.cookie_lifetime,
            },
        );
        self.recent_order.push_back((from, hello.nonce));
        self.stats.accepted += 1;
        let welcome = welcome(connection_id, terms, admission);
        let outcome = match &seal {
            Some(keys) => {
                // For a packet capture: the Welcome as it reads in the clear.
                let plain = self
                    .config
                    .session
                    .tap_plaintext
                    .then(|| {
                        let limit = received.saturating_sub(SEAL_OVERHEAD);
                        Self::write_reply(&welcome, limit, out, connection_id, SEAL_OVERHEAD)
                            .map(|n| Bytes::copy_from_slice(&out[..n]))
                    })
                    .flatten();
                let (outcome, sealer) =
                    Self::reply_sealed(&welcome, received, out, connection_id, keys);
                session.seal_with(sealer);
                if let Some(plain) = plain {
                    // The Welcome: version 1, its CRC needs no other number.
                    session.tap(false, &plain, 0);
                }
                outcome
            }
            None => Self::reply(&welcome, received, out),
        };
        match outcome {
            Outcome::Reply(reply) => Outcome::Accept {
                session: Box::new(session),
                reply,
            },
            other => other,
        }
    }

    fn expire_recent(&mut self, now: Instant) {
        while let Some(key) = self.recent_order.front() {
            match self.recent.get(key) {
                Some(r) if r.expires > now => break,
                _ => {
                    let key = *key;
                    self.recent.remove(&key);
                    self.recent_order.pop_front();
                }
            }
        }
    }

    /// The Reset answering `datagram`, written into `out`: its length, if the datagram checks
    /// (of either form, or sealed: its header), names a session (a connection id other than 0)
    /// and is large enough that the answer is not larger (docs/PROTOCOL.md section 4.11). For a
    /// server that finds no session of that id; it keeps no state, and rate-limits what it sends.
    /// The Reset echoes the packet number as the datagram carried it (a compact datagram's low
    /// bits) and its last four bytes, in a datagram of the same form under packet number 0.
    pub fn reset(datagram: &[u8], out: &mut [u8]) -> Option<usize> {
        let (connection_id, packet_number) =
            if crate::seal::is_sealed(datagram) && crate::wire::is_compact(datagram) {
                let (id, (pn, _)) = crate::seal::check_sealed_compact(datagram).ok()?;
                (u64::from(id), pn)
            } else if crate::wire::is_compact(datagram) {
                let fields = crate::wire::compact::check_compact(datagram).ok()?;
                (u64::from(fields.connection_id), fields.packet_number.0)
            } else {
                let view = PacketView::new_checked_or_sealed(datagram).ok()?;
                (view.connection_id(), view.packet_number())
            };
        if connection_id == 0 {
            return None;
        }
        let crc = datagram.get(datagram.len().checked_sub(4)?..)?;
        let reset = Frame::new(Reset {
            packet_number,
            crc: u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]),
        });
        let header = PacketHeader {
            connection_id,
            packet_number: 0,
            ack: None,
        };
        let limit = out.len().min(datagram.len());
        // A compact datagram is answered in the compact form (21 bytes, so that a session's
        // smallest datagrams, its heartbeats, get one), a version-1 one in version 1 (33).
        let mut b = if crate::wire::is_compact(datagram) {
            DatagramBuilder::new_compact(&mut out[..limit], &header, None).ok()?
        } else {
            DatagramBuilder::new(&mut out[..limit], &header).ok()?
        };
        if !b.push(&reset).ok()? {
            return None;
        }
        b.finish().ok()
    }

    /// Writes a handshake datagram carrying `frame`, if it is smaller than what was received.
    fn reply(frame: &Frame, received: usize, out: &mut [u8]) -> Outcome {
        match Self::write_reply(frame, received, out, 0, 0) {
            Some(len) => Outcome::Reply(len),
            None => Outcome::Drop(DropReason::Malformed),
        }
    }

    /// Writes `frame` (a Welcome) sealed under `keys`, packet number 0, under the session's
    /// connection id (docs/PROTOCOL.md section 2.3), if it is smaller than what was received; and
    /// the sealer the session goes on with.
    fn reply_sealed(
        frame: &Frame,
        received: usize,
        out: &mut [u8],
        connection_id: u64,
        keys: &SessionKeys,
    ) -> (Outcome, Sealer) {
        let mut sealer = Sealer::new(keys);
        let limit = received.saturating_sub(SEAL_OVERHEAD);
        let outcome = Self::write_reply(frame, limit, out, connection_id, SEAL_OVERHEAD)
            .and_then(|len| sealer.seal(out, len))
            .map_or(Outcome::Drop(DropReason::Malformed), Outcome::Reply);
        (outcome, sealer)
    }

    /// Writes a handshake datagram of `frame` under `connection_id`, at most `received - 1`
    /// bytes, with `reserve` bytes of `out` left after it.
    fn write_reply(
        frame: &Frame,
        received: usize,
        out: &mut [u8],
        connection_id: u64,
        reserve: usize,
    ) -> Option<usize> {
        let header = PacketHeader {
            connection_id,
            packet_number: 0,
            ack: None,
        };
        let limit = out
            .len()
            .saturating_sub(reserve)
            .min(received.saturating_sub(1));
        let mut b = DatagramBuilder::new(&mut out[..limit], &header).ok()?;
        if !b.push(frame).unwrap_or(false) {
            return None;
        }
        b.finish().ok()
    }
}

/// Whether `hello` carries a token of the format that carries keys (docs/PROTOCOL.md section
/// 4.1.3): read from its first byte, nothing verified.
fn claims_keys(hello: &Hello) -> bool {
    hello
        .options
        .auth_token()
        .is_some_and(|t| t.first() == Some(&crate::auth::TOKEN_VERSION_SEALED))
}

fn welcome(connection_id: u64, terms: WelcomeTerms, admission: Admission) -> Frame {
    Frame::new(Welcome {
        resumed: admission.resumed,
        version: terms.version,
        connection_id,
        idle_timeout_ms: terms.idle_timeout_ms,
        max_frame_len: terms.max_frame_len,
        heartbeat_interval_ms: terms.heartbeat_interval_ms,
        missed: admission.missed,
        session_token: admission.session_token,
    })
}
