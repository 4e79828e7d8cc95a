//! The datagram session: one connection's protocol state, driven by the caller.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use super::config::SessionConfig;
use super::congestion::NewReno;
use super::error::SendError;
use super::event::{Closer, Event, Transmit};
use super::inbox::{Disposition, Inbox};
use super::outbox::{Encoded, Item, Outbox};
use super::received::ReceivedPackets;
use super::rtt::RttEstimator;
use super::sent::{SentPacket, SentPackets};
use super::stats::Stats;
use super::time::Instant;
use crate::DecodeError;
use crate::wire::{
    CRC_LEN, Close, CloseAck, DEFAULT_MAX_FRAME_LEN, Datagram, DatagramBuilder, FRAME_LEN_PREFIX,
    Frame, FrameBody, FrameKind, Hello, HelloOptions, MIN_HELLO_DATAGRAM, OPTION_HEADER_LEN,
    PACKET_HEADER_LEN, PacketHeader, Ping, Pong, Reason, Text, VERSION,
};

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
    delivered: VecDeque<Frame>,
    events: VecDeque<Event>,
    stats: Stats,
    path_check: Option<PathCheck>,
    rng_state: u64,
}

impl Session {
    /// A client session that starts the handshake with the server at `server`. `nonce` must be
    /// random (the driver's random source: this crate has none). Messages may be queued with
    /// [`Session::send`] at once; they go out after the Welcome. `poll_transmit` needs a buffer
    /// of at least [`MIN_HELLO_DATAGRAM`] bytes while connecting.
    pub fn connect(config: SessionConfig, server: SocketAddr, nonce: u64, now: Instant) -> Self {
        let deadline = now + config.handshake_timeout;
        let mut s = Self::established(config, 0, server, now);
        s.rng_state ^= nonce;
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
            delivered: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            path_check: None,
            rng_state: 0,
        }
        .seeded()
    }

    fn seeded(mut self) -> Self {
        self.rng_state = self.config.seed;
        self
    }

    /// The next value of the session's seeded generator (splitmix64).
    fn random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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

    /// Counters and estimates.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.rtt = self.rtt.smoothed();
        s.rtt_var = self.rtt.var();
        s.congestion_window = self.cc.window();
        s.bytes_in_flight = self.sent.bytes_in_flight();
        s.queued_bytes = self.outbox.queued_bytes();
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
    /// again after acknowledgements), [`SendError::TooLarge`], [`SendError::Closed`], or a field
    /// that cannot be encoded.
    pub fn send(&mut self, mut frame: Frame) -> Result<(), SendError> {
        if !matches!(self.state, State::Established | State::Connecting(_)) {
            return Err(SendError::Closed);
        }
        frame.seq = None;
        let msg = Encoded::from_frame(&frame)?;
        self.outbox.queue(frame.channel, msg)
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
        self.outbox.queue(channel, Encoded::from_body(body))
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

    fn rto(&self) -> Duration {
        self.rtt.rto(
            self.config.max_ack_delay,
            self.config.min_rto,
            self.config.max_rto,
        )
    }

    fn backed_off_rto(&self) -> Duration {
        (self.rto() * (1u32 << self.pto_count.min(MAX_BACKOFF_EXPONENT))).min(self.config.max_rto)
    }

    /// The idle timeout in force: the configured one, but never below 3 retransmission timeouts.
    pub fn idle_timeout(&self) -> Duration {
        self.config.idle_timeout.max(self.rto() * 3)
    }

    /// Takes a datagram received from `from`. Datagrams that fail any check are dropped and
    /// counted; a peer's bad datagram never ends a session (anyone can spoof one).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        if self.state == State::Closed {
            return;
        }
        if matches!(self.state, State::Connecting(_)) {
            self.handle_handshake(now, from, datagram);
            return;
        }
        let len = datagram.len();
        let Ok(d) = Datagram::parse(datagram) else {
            self.stats.packets_dropped += 1;
            return;
        };
        if d.header.connection_id != self.connection_id {
            self.stats.packets_dropped += 1;
            return;
        }
        let ack_eliciting = d.frames().next().is_some();
        if !self
            .received
            .on_packet(d.header.packet_number, now, ack_eliciting)
        {
            self.stats.packets_dropped += 1;
            return;
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += len as u64;
        self.last_received = now;
        if from != self.remote {
            self.on_new_path(from, len);
        }
        if let Some(ack) = d.header.ack {
            self.on_ack(&ack, now);
        }
        for body in d.frames() {
            match Frame::parse(body) {
                Ok(frame) => self.on_frame(frame, now, from),
                Err(DecodeError::UnknownKind(k)) if FrameKind::is_ignorable(k) => {}
                Err(_) => self.stats.refused += 1,
            }
        }
        while let Some(f) = self.delivered.pop_front() {
            self.stats.messages_delivered += 1;
            self.events.push_back(Event::Frame(f));
        }
    }

    fn handle_handshake(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let accepted = match Datagram::parse(datagram) {
            Ok(d) if from == self.remote && d.header.connection_id == 0 => d,
            _ => {
                self.stats.packets_dropped += 1;
                return;
            }
        };
        self.stats.packets_received += 1;
        for body in accepted.frames() {
            let Ok(frame) = Frame::parse(body) else {
                self.stats.refused += 1;
                continue;
            };
            let State::Connecting(c) = &mut self.state else {
                return;
            };
            match frame.body {
                FrameBody::Challenge(ch) if ch.nonce == c.nonce => {
                    c.cookie = Some(ch.cookie);
                    c.next_hello = now;
                }
                FrameBody::Welcome(w) if w.connection_id != 0 => {
                    self.connection_id = w.connection_id;
                    let agreed = |mine: Duration, theirs: u32| {
                        if theirs == 0 {
                            mine
                        } else {
                            mine.min(Duration::from_millis(u64::from(theirs)))
                        }
                    };
                    self.config.idle_timeout = agreed(self.config.idle_timeout, w.idle_timeout_ms);
                    self.config.heartbeat_interval =
                        agreed(self.config.heartbeat_interval, w.heartbeat_interval_ms);
                    self.state = State::Established;
                    self.last_received = now;
                    self.last_ack_eliciting_sent = now;
                    self.events.push_back(Event::Connected {
                        connection_id: w.connection_id,
                    });
                    return;
                }
                FrameBody::Reject(r) => {
                    self.events.push_back(Event::Closed {
                        reason: r.reason,
                        message: r.message,
                        by: Closer::Peer,
                    });
                    self.shut();
                    return;
                }
                _ => self.stats.refused += 1,
            }
        }
    }

    /// Writes the next Hello, padded so the datagram is at least [`MIN_HELLO_DATAGRAM`] bytes.
    fn transmit_hello(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let rto = self.rto();
        let max_rto = self.config.max_rto;
        let channels: Vec<_> = self.config.channels.iter().skip(1).copied().collect();
        let State::Connecting(c) = &mut self.state else {
            return None;
        };
        if now < c.next_hello || buf.len() < MIN_HELLO_DATAGRAM {
            return None;
        }
        let mut options = HelloOptions::builder();
        if let Some(cookie) = &c.cookie {
            options = options.cookie(cookie);
        }
        if !channels.is_empty() {
            options = options.channels(&channels);
        }
        let hello = |options: HelloOptions| {
            Frame::new(Hello {
                min_version: VERSION,
                max_version: VERSION,
                idle_timeout_ms: u32::try_from(self.config.idle_timeout.as_millis())
                    .unwrap_or(u32::MAX),
                max_frame_len: DEFAULT_MAX_FRAME_LEN,
                nonce: c.nonce,
                options,
            })
        };
        let unpadded = PACKET_HEADER_LEN
            + FRAME_LEN_PREFIX
            + CRC_LEN
            + hello(HelloOptions::new()).encoded_len()
            + options.len();
        let short = MIN_HELLO_DATAGRAM.saturating_sub(unpadded);
        if short > 0 {
            options = options.padding(short.saturating_sub(OPTION_HEADER_LEN));
        }
        let frame = hello(options.build().ok()?);
        let header = PacketHeader {
            connection_id: 0,
            packet_number: c.attempts,
            ack: None,
        };
        let mut b = DatagramBuilder::new(buf, &header).ok()?;
        if !b.push(&frame).ok()? {
            return None;
        }
        let len = b.finish().ok()?;
        // Resend with exponential backoff until the Welcome comes or the deadline passes.
        c.next_hello = now + (rto * (1u32 << c.attempts.min(MAX_BACKOFF_EXPONENT))).min(max_rto);
        c.attempts += 1;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        Some(Transmit {
            destination: self.remote,
            len,
        })
    }

    /// A valid datagram came from an address other than the peer's: check that address before
    /// sending it anything but the check.
    fn on_new_path(&mut self, from: SocketAddr, len: usize) {
        if let Some(check) = self.path_check.as_mut()
            && check.addr == from
        {
            check.received += len;
            check.ping_due = true;
            return;
        }
        let token = self.random();
        self.path_check = Some(PathCheck {
            addr: from,
            token,
            ping_due: true,
            received: len,
            sent: 0,
        });
    }

    /// Writes the path check's Ping to the new address, within its amplification budget.
    fn transmit_path_check(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let check = self.path_check.as_ref()?;
        if !check.ping_due {
            return None;
        }
        let header = PacketHeader {
            connection_id: self.connection_id,
            packet_number: self.next_pn,
            ack: None,
        };
        let size = self.config.datagram_size.min(buf.len());
        let mut b = DatagramBuilder::new(&mut buf[..size], &header).ok()?;
        let ping = Frame::new(Ping {
            timestamp_us: check.token,
        });
        if !b.push(&ping).ok()? {
            return None;
        }
        let len = b.finish().ok()?;
        let check = self.path_check.as_mut()?;
        check.ping_due = false;
        if check.sent + len > check.received * AMPLIFICATION_FACTOR {
            return None;
        }
        check.sent += len;
        let destination = check.addr;
        // Numbered like any packet, but not tracked for loss: the next datagram from that address
        // asks for another check.
        self.sent.on_sent(
            self.next_pn,
            SentPacket {
                time: now,
                size: 0,
                ack_eliciting: false,
                items: Vec::new(),
            },
        );
        self.next_pn = self.next_pn.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        Some(Transmit { destination, len })
    }

    fn on_ack(&mut self, ack: &crate::wire::AckBlock, now: Instant) {
        let result = self.sent.on_ack(ack, now);
        if let Some(sample) = result.rtt_sample {
            let delay =
                Duration::from_micros(u64::from(ack.delay_us)).min(self.config.max_ack_delay);
            self.rtt.update(sample, delay);
        }
        if !result.newly_acked.is_empty() {
            self.pto_count = 0;
        }
        for packet in result.newly_acked {
            self.cc.on_ack(packet.time, packet.size);
            for item in packet.items {
                self.outbox.on_acked(item);
            }
        }
        self.detect_lost(now);
    }

    fn detect_lost(&mut self, now: Instant) {
        let (lost, next) = self.sent.detect_lost(now, self.rtt.loss_delay());
        self.loss_time = next;
        for packet in lost {
            self.stats.packets_lost += 1;
            self.cc.on_loss(packet.time, now);
            self.requeue(&packet.items);
        }
    }

    fn requeue(&mut self, items: &[Item]) {
        for &item in items {
            if item == Item::Close {
                self.close_pending = self.close_frame.is_some();
            } else {
                self.outbox.on_lost(item);
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant, from: SocketAddr) {
        let channel = frame.channel;
        match frame.body {
            FrameBody::Pong(p)
                if self
                    .path_check
                    .as_ref()
                    .is_some_and(|c| c.addr == from && c.token == p.timestamp_us) =>
            {
                // The new address echoed the token: it receives what is sent there.
                self.remote = from;
                self.path_check = None;
                self.stats.migrations += 1;
            }
            FrameBody::Ping(p) => self.control.push_back(Frame::new(Pong {
                timestamp_us: p.timestamp_us,
            })),
            FrameBody::Close(c) => {
                self.control.push_back(Frame::new(CloseAck));
                if matches!(self.state, State::Established | State::Closing { .. }) {
                    self.outbox.clear();
                    self.sent.clear();
                    self.close_frame = None;
                    self.close_pending = false;
                    self.events.push_back(Event::Closed {
                        reason: c.reason,
                        message: c.message,
                        by: Closer::Peer,
                    });
                    self.state = State::Draining {
                        deadline: now + self.rto() * 3,
                    };
                }
            }
            FrameBody::CloseAck(_) => {
                if matches!(self.state, State::Closing { .. }) {
                    self.finish_close(Closer::Local);
                }
            }
            FrameBody::Fragment(f) => match self.inbox.on_fragment(channel, f, now) {
                Ok(Some(body)) => match Frame::parse(body) {
                    Ok(whole) if whole.channel == channel => self.on_message(whole),
                    _ => self.stats.refused += 1,
                },
                Ok(None) => {}
                Err(d) => self.count(d),
            },
            // Handshake frames repeated after the handshake, and stream-only frames: nothing to do.
            FrameBody::Pong(_)
            | FrameBody::Hello(_)
            | FrameBody::Challenge(_)
            | FrameBody::Welcome(_)
            | FrameBody::Reject(_)
            | FrameBody::Ack(_) => {}
            body => self.on_message(Frame {
                channel,
                seq: frame.seq,
                body,
            }),
        }
    }

    fn on_message(&mut self, frame: Frame) {
        if !matches!(self.state, State::Established | State::Closing { .. }) {
            return;
        }
        let d = self.inbox.on_message(frame, &mut self.delivered);
        self.count(d);
    }

    fn count(&mut self, d: Disposition) {
        match d {
            Disposition::Delivered | Disposition::Held => {}
            Disposition::Duplicate => self.stats.duplicates_dropped += 1,
            Disposition::Stale => self.stats.stale_dropped += 1,
            Disposition::Refused => self.stats.refused += 1,
        }
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
        self.delivered.clear();
        self.path_check = None;
        self.sent.clear();
        self.control.clear();
        self.close_pending = false;
        self.ping_pending = false;
    }

    /// The next instant at which [`Session::handle_timeout`] must be called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match &self.state {
            State::Closed => return None,
            State::Connecting(c) => return Some(c.next_hello.min(c.deadline)),
            State::Closing { deadline } | State::Draining { deadline } => consider(Some(*deadline)),
            State::Established => {
                consider(Some(
                    self.last_ack_eliciting_sent + self.config.heartbeat_interval,
                ));
            }
        }
        consider(Some(self.last_received + self.idle_timeout()));
        if self.received.ack_owed() {
            consider(self.received.ack_deadline());
        }
        consider(self.loss_time);
        if self.sent.has_ack_eliciting_in_flight() {
            consider(Some(self.last_ack_eliciting_sent + self.backed_off_rto()));
        }
        consider(self.inbox.next_expiry());
        next
    }

    /// Runs the timers due at `now`: idle timeout, loss detection, retransmission timeout,
    /// heartbeat, close deadlines and reassembly expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Closed => return,
            State::Connecting(c) => {
                if now >= c.deadline {
                    self.events.push_back(Event::Closed {
                        reason: Reason::HANDSHAKE_TIMEOUT,
                        message: Text::default(),
                        by: Closer::Local,
                    });
                    self.shut();
                }
                return;
            }
            _ => {}
        }
        if now >= self.last_received + self.idle_timeout() {
            if self.state == State::Established {
                self.events.push_back(Event::Closed {
                    reason: Reason::IDLE_TIMEOUT,
                    message: Text::default(),
                    by: Closer::Local,
                });
            } else if matches!(self.state, State::Closing { .. }) {
                self.finish_close(Closer::Local);
            }
            self.shut();
            return;
        }
        match self.state {
            State::Closing { deadline } if now >= deadline => {
                self.finish_close(Closer::Local);
                return;
            }
            State::Draining { deadline } if now >= deadline => {
                self.shut();
                return;
            }
            _ => {}
        }
        if self.loss_time.is_some_and(|t| t <= now) {
            self.detect_lost(now);
        }
        if self.sent.has_ack_eliciting_in_flight()
            && now >= self.last_ack_eliciting_sent + self.backed_off_rto()
        {
            // A retransmission timeout: probe with the oldest unacknowledged data, or a Ping
            // (RFC 9002 section 6.2.4). The probe does not wait for the congestion window.
            self.stats.rto_fired += 1;
            self.pto_count += 1;
            match self.state {
                State::Established => {
                    let items = self.sent.oldest_items(1);
                    self.requeue(&items);
                    // Every timeout sends something the peer must acknowledge, or the timer
                    // would stay due.
                    if !self.outbox.has_data() {
                        self.ping_pending = true;
                    }
                }
                State::Closing { .. } => self.close_pending = true,
                State::Draining { .. } | State::Closed | State::Connecting(_) => {}
            }
            self.probes = 1;
            // The probe's own timer starts when it is sent.
        }
        if self.state == State::Established
            && now >= self.last_ack_eliciting_sent + self.config.heartbeat_interval
        {
            self.ping_pending = true;
        }
        self.stats.reassembly_expired += self.inbox.expire(now) as u64;
    }

    /// Writes the next datagram to send into `buf`, if there is one. `buf` must hold at least the
    /// configured datagram size.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match self.state {
            State::Closed => return None,
            State::Connecting(_) => return self.transmit_hello(now, buf),
            State::Established => {
                if let Some(t) = self.transmit_path_check(now, buf) {
                    return Some(t);
                }
            }
            _ => {}
        }
        let size = self.config.datagram_size.min(buf.len());
        let cwnd_open = self.sent.bytes_in_flight() + size <= self.cc.window() || self.probes > 0;
        let want_data = cwnd_open && self.outbox.has_data();
        let want_frames =
            !self.control.is_empty() || self.close_pending || self.ping_pending || want_data;
        if !want_frames && !self.received.ack_due(now) {
            return None;
        }
        let pn = self.next_pn;
        let ack = if self.received.ack_owed() {
            self.received.ack_block(now)
        } else {
            None
        };
        let header = PacketHeader {
            connection_id: self.connection_id,
            packet_number: pn,
            ack,
        };
        let mut builder = DatagramBuilder::new(&mut buf[..size], &header).ok()?;
        let mut items = Vec::new();
        while let Some(frame) = self.control.front() {
            if !builder.push(frame).unwrap_or(false) {
                break;
            }
            self.control.pop_front();
        }
        if self.close_pending
            && let Some(close) = &self.close_frame
            && builder.push(&Frame::new(close.clone())).unwrap_or(false)
        {
            self.close_pending = false;
            items.push(Item::Close);
        }
        if self.state == State::Established && cwnd_open {
            let max_body = self.config.max_frame_body();
            self.outbox.fill(&mut builder, &mut items, max_body);
        }
        if self.ping_pending && builder.frame_count() == 0 {
            let ping = Frame::new(Ping {
                timestamp_us: now.as_micros(),
            });
            if builder.push(&ping).unwrap_or(false) {
                self.ping_pending = false;
            }
        } else if builder.frame_count() > 0 {
            // Anything ack-eliciting serves as the heartbeat.
            self.ping_pending = false;
        }
        let ack_eliciting = builder.frame_count() > 0;
        let len = builder.finish().ok()?;
        if header.ack.is_some() {
            self.received.on_ack_sent();
        }
        self.next_pn = pn.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        if ack_eliciting {
            self.last_ack_eliciting_sent = now;
            self.probes = self.probes.saturating_sub(1);
            self.sent.on_sent(
                pn,
                SentPacket {
                    time: now,
                    size: len,
                    ack_eliciting: true,
                    items,
                },
            );
        } else {
            self.sent.on_sent(
                pn,
                SentPacket {
                    time: now,
                    size: 0,
                    ack_eliciting: false,
                    items,
                },
            );
        }
        Some(Transmit {
            destination: self.remote,
            len,
        })
    }

    /// The next event for the application, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
