//! The datagram session: one connection's protocol state, driven by the caller.

mod echo;
mod handshake;
mod path;
mod receive;
mod timers;
mod transmit;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use super::config::SessionConfig;
use super::congestion::NewReno;
use super::echo::Echo;
use super::error::SendError;
use super::event::{Closer, Event, EventQueue};
use super::inbox::Inbox;
use super::outbox::{Encoded, Item, Outbox};
use super::received::ReceivedPackets;
use super::rtt::RttEstimator;
use super::sent::SentPackets;
use super::stats::Stats;
use super::time::Instant;
use crate::seal::{SEAL_OVERHEAD, Sealer};
use crate::wire::{Close, DEFAULT_MAX_FRAME_LEN, FRAME_LEN_OVERHEAD, Frame, Reason, Text};

/// How many of its last datagrams a client remembers, to recognise a Reset answering one.
const ECHOES: usize = 16;

/// The packet numbers and CRCs of a client's last datagrams (docs/PROTOCOL.md section 4.11). A
/// server's Reset echoes one: only who saw the datagram can.
#[derive(Debug, Default)]
struct Echoes {
    sent: [(u32, u32); ECHOES],
    next: usize,
    len: usize,
}

impl Echoes {
    fn note(&mut self, packet_number: u32, crc: u32) {
        self.sent[self.next] = (packet_number, crc);
        self.next = (self.next + 1) % ECHOES;
        self.len = (self.len + 1).min(ECHOES);
    }

    fn contains(&self, packet_number: u32, crc: u32) -> bool {
        self.sent[..self.len].contains(&(packet_number, crc))
    }
}

/// The largest exponent of the retransmission timeout's backoff.
const MAX_BACKOFF_EXPONENT: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Connecting {
    nonce: u64,
    cookie: Option<Bytes>,
    next_hello: Instant,
    attempts: u32,
    deadline: Instant,
}

/// A new address the peer's datagrams came from, being checked before the session moves there
/// (RFC 9000 section 9): it gets a Ping carrying `token`, and only a Pong echoing the token from
/// that address moves the session. Until then it gets at most 3 times the bytes it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathCheck {
    addr: SocketAddr,
    token: u64,
    ping_due: bool,
    received: usize,
    sent: usize,
}

/// The anti-amplification factor for an address not yet validated (RFC 9000 section 8.1).
const AMPLIFICATION_FACTOR: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A client's handshake is under way (docs/PROTOCOL.md section 4.1.2).
    Connecting(Connecting),
    Established,
    /// We sent a Close and wait for its `CloseAck` until the deadline.
    Closing {
        deadline: Instant,
    },
    /// The peer closed; we answer its retransmitted Closes until the deadline.
    Draining {
        deadline: Instant,
    },
    Closed,
}

/// One end of a framewire session over datagrams, with no I/O (docs/PROTOCOL.md sections 2.2, 3.4).
///
/// # Driving a session
///
/// The caller owns the socket and the clock. Whenever something happens, it calls the matching
/// input, then drains the outputs, in this order:
///
/// 1. **Input**: [`Session::handle_datagram`] for each datagram from the peer,
///    [`Session::handle_timeout`] when the instant from `poll_timeout` has passed, and
///    [`Session::send`] / [`Session::close`] for what the application wants.
/// 2. **Transmit**: call [`Session::poll_transmit`] until it returns `None`, sending each
///    datagram it writes.
/// 3. **Events**: call [`Session::poll_event`] until it returns `None`.
/// 4. **Timer**: call [`Session::poll_timeout`] and wake up at that instant (or on input,
///    whichever comes first).
///
/// Every method that depends on time takes `now`; the session never reads a clock.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    connection_id: u64,
    remote: SocketAddr,
    state: State,
    next_pn: u32,
    received: ReceivedPackets,
    sent: SentPackets,
    rtt: RttEstimator,
    cc: NewReno,
    outbox: Outbox,
    inbox: Inbox,
    /// Session control frames to send (`Pong`, `CloseAck`), ahead of any message.
    control: VecDeque<Frame>,
    close_frame: Option<Close>,
    close_pending: bool,
    ping_pending: bool,
    /// Packets a retransmission timeout allows past the congestion window.
    probes: u32,
    pto_count: u32,
    loss_time: Option<Instant>,
    last_received: Instant,
    last_ack_eliciting_sent: Instant,
    /// The last ack-eliciting datagram asked the peer for an immediate ack (`ACK_NOW`): its
    /// retransmission timeout does not wait out the peer's ack delay.
    tail_acked_now: bool,
    events: EventQueue,
    stats: Stats,
    path_check: Option<PathCheck>,
    rng_state: u64,
    /// Reliable items of a lone datagram, to send once more (see `lone_redundancy_max`).
    redundant: Option<Vec<Item>>,
    /// The frame length limit, both ways: agreed in the handshake; before it, this side's own or
    /// the protocol's default, whichever is lower.
    frame_limit: u32,
    /// A client's last datagrams, to recognise a Reset; a server's sessions keep none.
    echoes: Option<Box<Echoes>>,
    /// The session's keys, once it is sealed (docs/PROTOCOL.md section 2.3).
    sealer: Option<Box<Sealer>>,
    /// With `tap_plaintext`: the plain datagrams a sealed session opened (`true`) or sealed, until
    /// taken.
    tapped: Vec<(bool, Bytes)>,
    /// The version agreed: 2 makes its datagrams compact (docs/PROTOCOL.md section 2.4).
    version: u8,
    /// A server's session answers Data itself (`SessionConfig::echo_data`), when nothing handed
    /// to the application may still be answered.
    echo: Echo,
    /// Data frames the session answered itself, not yet taken by [`Session::take_echoed`].
    echoed: u64,
}

impl Session {
    /// A client session that starts the handshake with the server at `server`. `nonce` must be
    /// random (the driver's random source: this crate has none). Messages may be queued with
    /// [`Session::send`] at once; they go out after the Welcome. `poll_transmit` needs a buffer
    /// of at least [`MIN_HELLO_DATAGRAM`](crate::wire::MIN_HELLO_DATAGRAM) bytes while connecting.
    pub fn connect(config: SessionConfig, server: SocketAddr, nonce: u64, now: Instant) -> Self {
        let deadline = now + config.handshake_timeout;
        let mut s = Self::established(config, 0, server, now);
        s.rng_state ^= nonce;
        s.echoes = Some(Box::default());
        s.state = State::Connecting(Connecting {
            nonce,
            cookie: None,
            next_hello: now,
            attempts: 0,
            deadline,
        });
        s
    }

    /// A session whose handshake is complete: it talks to `remote` under `connection_id`.
    pub fn established(
        config: SessionConfig,
        connection_id: u64,
        remote: SocketAddr,
        now: Instant,
    ) -> Self {
        let datagram = config.datagram_size;
        Self {
            received: ReceivedPackets::new(config.max_ack_delay, config.ack_frequency),
            sent: SentPackets::new(0),
            rtt: RttEstimator::new(config.initial_rtt),
            cc: NewReno::new(
                datagram,
                config.initial_window_datagrams,
                config.min_window_datagrams,
            ),
            outbox: Outbox::new(&config),
            inbox: Inbox::new(&config),
            echo: Echo::new(config.echo_data),
            echoed: 0,
            frame_limit: config.frame_limit().min(DEFAULT_MAX_FRAME_LEN),
            config,
            connection_id,
            remote,
            state: State::Established,
            next_pn: 0,
            control: VecDeque::new(),
            close_frame: None,
            close_pending: false,
            ping_pending: false,
            probes: 0,
            pto_count: 0,
            loss_time: None,
            last_received: now,
            last_ack_eliciting_sent: now,
            tail_acked_now: false,
            events: EventQueue::default(),
            stats: Stats::default(),
            path_check: None,
            rng_state: 0,
            redundant: None,
            echoes: None,
            sealer: None,
            tapped: Vec::new(),
            version: crate::wire::VERSION,
        }
        .seeded()
    }

    /// Goes on in the version the handshake agreed (docs/PROTOCOL.md section 4.1): from 2 on,
    /// compact datagrams ([`Session::use_compact_datagrams`]); from 3 on, frames that share
    /// headers ([`Session::share_frame_headers`]); 4, a sealed session's, sealed compact datagrams
    /// (section 2.5: the form follows from the session being sealed). For a session that has not
    /// yet sent or received anything of its own.
    pub fn use_version(&mut self, version: u8) {
        if version >= crate::wire::COMPACT_VERSION {
            self.use_compact_datagrams();
        }
        if version >= crate::wire::SHARED_HEADERS_VERSION {
            self.share_frame_headers();
        }
        if version >= crate::wire::SEALED_COMPACT_VERSION {
            self.version = crate::wire::SEALED_COMPACT_VERSION;
        }
    }

    /// Sends and takes compact datagrams from now on (the handshake agreed version 2 or above,
    /// docs/PROTOCOL.md section 2.4; a sealed session's are sealed, section 2.5), and holds acks
    /// as those versions allow. For a session that has not yet sent or received anything of its
    /// own.
    pub fn use_compact_datagrams(&mut self) {
        self.version = crate::wire::COMPACT_VERSION;
        self.received.set_policy(
            self.config
                .compact_max_ack_delay
                .min(super::config::COMPACT_MAX_ACK_DELAY),
            self.config.compact_ack_frequency,
        );
    }

    /// Lets the frames a compact session coalesces share headers from now on (the handshake
    /// agreed version 3, docs/PROTOCOL.md section 2.4). After [`Session::use_compact_datagrams`].
    pub fn share_frame_headers(&mut self) {
        if self.is_compact() {
            self.version = crate::wire::SHARED_HEADERS_VERSION;
        }
    }

    /// Whether the session's datagrams are compact (version 2 or 3).
    pub fn uses_compact_datagrams(&self) -> bool {
        self.is_compact()
    }

    /// The version the handshake agreed (1 before it, and for a stream's).
    pub fn version(&self) -> u8 {
        self.version
    }

    pub(super) fn is_compact(&self) -> bool {
        self.version >= crate::wire::COMPACT_VERSION
    }

    /// The longest the peer holds an ack: what retransmission timeouts allow for, and the most
    /// of a reported ack delay taken off an RTT sample.
    pub(super) fn max_ack_delay(&self) -> Duration {
        if self.is_compact() {
            super::config::COMPACT_MAX_ACK_DELAY
        } else {
            self.config.max_ack_delay
        }
    }

    /// Starts a datagram of the session's form in `buf`.
    pub(super) fn start_datagram<'b>(
        &self,
        buf: &'b mut [u8],
        header: &crate::wire::PacketHeader,
    ) -> Option<crate::wire::DatagramBuilder<'b>> {
        let mut b = if self.is_compact() {
            let mut b =
                crate::wire::DatagramBuilder::new_compact(buf, header, self.sent.largest_acked())
                    .ok()?;
            if self.version >= crate::wire::SHARED_HEADERS_VERSION {
                b.share_headers();
            }
            b
        } else {
            crate::wire::DatagramBuilder::new(buf, header).ok()?
        };
        if self.sealer.is_some() {
            // `seal_out` seals it next: no CRC for the tag to overwrite.
            b.for_sealing();
        }
        Some(b)
    }

    /// Seals the session from now on with `sealer` (docs/PROTOCOL.md section 2.3): every datagram
    /// it sends is sealed, every one it takes must open. A server calls it for a session it
    /// accepted with keys, once its Welcome went out sealed under packet number 0 with the same
    /// sealer, so the session's own numbers start at 1. Datagrams shrink by the seal's overhead, so
    /// the sealed ones keep to the configured size.
    pub fn seal_with(&mut self, sealer: Sealer) {
        if self.sealer.is_none() {
            self.config.datagram_size = self.config.datagram_size.saturating_sub(SEAL_OVERHEAD);
        }
        if let Some(last) = sealer.last_sealed() {
            // Numbers go on after the last one this sealer used (a server's sealed Welcome,
            // number 0), before the session has sent anything of its own.
            let next = (last as u32).wrapping_add(1);
            if self.stats.packets_sent == 0 && next != self.next_pn {
                self.next_pn = next;
                self.sent = SentPackets::new(next);
            }
        }
        self.sealer = Some(Box::new(sealer));
    }

    /// The plain datagrams this sealed session opened (`true`) and sealed since the last call, in
    /// order, when its configuration taps them (`tap_plaintext`).
    pub fn take_plaintext(&mut self) -> Vec<(bool, Bytes)> {
        core::mem::take(&mut self.tapped)
    }

    /// Keeps a copy of a plain datagram numbered `packet_number` for [`Session::take_plaintext`],
    /// if tapped. Its last four bytes are the CRC's place, unwritten (one opened, or about to be
    /// sealed): the copy has it, of the datagram's form.
    pub(crate) fn tap(&mut self, received: bool, plain: &[u8], packet_number: u32) {
        if self.config.tap_plaintext && self.sealer.is_some() {
            let mut copy = plain.to_vec();
            let at = copy.len().saturating_sub(crate::wire::CRC_LEN);
            let crc = if crate::wire::is_compact(&copy) {
                crate::wire::compact::compact_crc_of(&copy[..at], packet_number)
            } else {
                crate::wire::crc32(&copy[..at])
            };
            if let Some(place) = copy.get_mut(at..) {
                place.copy_from_slice(&crc.to_be_bytes());
            }
            self.tapped.push((received, Bytes::from(copy)));
        }
    }

    /// Whether the session is sealed.
    pub fn is_sealed(&self) -> bool {
        self.sealer.is_some()
    }

    /// How much of `buf` a plain datagram may fill: the datagram size, less the seal's overhead
    /// when the buffer could not also hold that.
    pub(super) fn room(&self, buf: &[u8]) -> usize {
        let reserve = if self.sealer.is_some() {
            SEAL_OVERHEAD
        } else {
            0
        };
        self.config
            .datagram_size
            .min(buf.len().saturating_sub(reserve))
    }

    /// Seals the plain datagram `buf[..len]` the session just wrote, if it is sealed: the length
    /// to send. `None` if it cannot be sealed (then nothing may go out).
    pub(super) fn seal_out(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        // Not yet booked: the next number is this datagram's.
        let pn = self.next_pn;
        self.tap(false, &buf[..len], pn);
        let compact = self.is_compact();
        match self.sealer.as_mut() {
            Some(sealer) if compact => sealer.seal_compact(buf, len, pn),
            Some(sealer) => sealer.seal(buf, len),
            None => Some(len),
        }
    }

    /// The session's connection id.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the session is over: nothing more will be sent or delivered.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session still accepts messages to send.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// The kind of a channel in this session (the client's Hello chose them).
    pub fn channel_kind(&self, channel: u8) -> crate::wire::ChannelKind {
        self.config.channel_kind(channel)
    }

    /// Counters and estimates.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.rtt = self.rtt.smoothed();
        s.rtt_var = self.rtt.var();
        s.congestion_window = self.cc.window();
        s.bytes_in_flight = self.sent.bytes_in_flight();
        s.queued_bytes = self.outbox.queued_bytes();
        s.messages_in_flight = self.outbox.unacked_messages();
        s.reassembly_bytes = self.inbox.reassembly_bytes();
        s.retransmissions = self.outbox.counters.retransmitted;
        s.unreliable_dropped = self.outbox.counters.unreliable_dropped;
        s
    }

    /// Queues `frame` on its channel. The session assigns the sequence number; any in `frame` is
    /// ignored.
    ///
    /// # Errors
    /// [`SendError::QueueFull`] when the reliable queue is at its limit (nothing was queued: try
    /// again after acknowledgements), [`SendError::TooLarge`] for a frame above the agreed frame
    /// length ([`Session::max_frame_len`]), [`SendError::Closed`], or a field that cannot be
    /// encoded. Nothing is queued then, and the session goes on.
    pub fn send(&mut self, mut frame: Frame) -> Result<(), SendError> {
        if !matches!(self.state, State::Established | State::Connecting(_)) {
            return Err(SendError::Closed);
        }
        frame.seq = None;
        let channel = frame.channel;
        let msg = Encoded::from_frame(frame)?;
        self.check_len(msg.len())?;
        self.outbox.queue(channel, msg)
    }

    /// Queues an already-encoded frame body (without a sequence number) on `channel`: one encoding
    /// shared by many sessions, as a fan-out does.
    ///
    /// # Errors
    /// As [`Session::send`].
    pub fn send_encoded(&mut self, channel: u8, body: Bytes) -> Result<(), SendError> {
        if !matches!(self.state, State::Established | State::Connecting(_)) {
            return Err(SendError::Closed);
        }
        if body.len() < crate::wire::FRAME_HEADER_LEN {
            return Err(SendError::Encode(crate::EncodeError::InvalidValue(
                "a frame body has at least 3 bytes",
            )));
        }
        self.check_len(body.len())?;
        self.outbox.queue(channel, Encoded::from_body(body))
    }

    /// Queues a frame encoded once for many sessions (a fan-out), sharing its buffer.
    ///
    /// # Errors
    /// As [`Session::send`].
    pub fn send_shared(&mut self, frame: &crate::wire::SharedFrame) -> Result<(), SendError> {
        self.send_encoded(frame.channel(), frame.body())
    }

    /// The frame length limit agreed in the handshake (before it: this side's own, or the
    /// protocol's default if lower). Messages above it are neither sent nor accepted.
    pub fn max_frame_len(&self) -> u32 {
        self.frame_limit
    }

    /// Sets the limit the server's handshake agreed.
    pub(crate) fn agree_frame_len(&mut self, limit: u32) {
        self.frame_limit = limit;
    }

    /// Refuses a message whose frame body (without SEQ) is `body_len` bytes if its frame length
    /// is above the limit.
    fn check_len(&self, body_len: usize) -> Result<(), SendError> {
        let len = body_len + FRAME_LEN_OVERHEAD;
        let max = self.frame_limit as usize;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Starts closing: a Close with `reason` is sent until acknowledged or a few retransmission
    /// timeouts pass. Queued messages are dropped.
    pub fn close(&mut self, now: Instant, reason: Reason, message: &str) {
        if matches!(self.state, State::Connecting(_)) {
            // Nothing to tell a server that has no session yet.
            self.events.push_back(Event::Closed {
                reason,
                message: Text::default(),
                by: Closer::Local,
            });
            self.shut();
            return;
        }
        if self.state != State::Established {
            return;
        }
        self.outbox.clear();
        self.close_frame = Some(Close {
            reason,
            message: Text::from(message),
        });
        self.close_pending = true;
        self.state = State::Closing {
            deadline: now + self.rto() * 3,
        };
    }

    /// The retransmission timeout allowing for the peer's ack delay.
    fn rto(&self) -> Duration {
        self.rto_allowing(self.max_ack_delay())
    }

    /// The retransmission timeout for an answer the peer sends at once (a handshake reply, or
    /// the ack of a datagram that asked for one).
    fn rto_without_ack_delay(&self) -> Duration {
        self.rto_allowing(Duration::ZERO)
    }

    fn rto_allowing(&self, ack_delay: Duration) -> Duration {
        self.rtt
            .rto(ack_delay, self.config.min_rto, self.config.max_rto)
    }

    /// The timeout after the last ack-eliciting datagram, backed off by the probes sent since the
    /// last acknowledgement.
    fn backed_off_rto(&self) -> Duration {
        let rto = if self.tail_acked_now {
            self.rto_without_ack_delay()
        } else {
            self.rto()
        };
        (rto * (1u32 << self.pto_count.min(MAX_BACKOFF_EXPONENT))).min(self.config.max_rto)
    }

    /// Whether the retransmission timer runs: only while there is something to deliver (messages,
    /// or our Close). A draining session answers Closes and sends nothing else, so its timer must
    /// not arm, or it would stay due with nothing to send.
    fn probes_allowed(&self) -> bool {
        matches!(self.state, State::Established | State::Closing { .. })
    }

    /// The idle timeout in force: the configured one, but never below 3 retransmission timeouts.
    pub fn idle_timeout(&self) -> Duration {
        self.config.idle_timeout.max(self.rto() * 3)
    }

    fn finish_close(&mut self, by: Closer) {
        if let Some(c) = self.close_frame.take() {
            self.events.push_back(Event::Closed {
                reason: c.reason,
                message: Text::default(),
                by,
            });
        }
        self.shut();
    }

    fn shut(&mut self) {
        self.state = State::Closed;
        self.outbox.clear();
        self.inbox.clear();
        self.path_check = None;
        self.sent.clear();
        self.control.clear();
        self.close_pending = false;
        self.ping_pending = false;
    }

    /// Whether [`poll_event`](Self::poll_event) has something (without taking it).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event for the application, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
