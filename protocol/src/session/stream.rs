//! The session in stream mode, for TCP (docs/PROTOCOL.md sections 2.1, 4 and 7b).
//!
//! The stream is reliable and ordered already, so there are no packet numbers, acks,
//! retransmissions or fragments: the session adds the handshake (Hello, then Welcome or Reject),
//! heartbeats that measure the round trip, the idle timeout, an acknowledged close with a reason,
//! the first-frame deadline, and a bounded output buffer. It does no I/O: the driver feeds it the
//! bytes read from the socket and writes out what it produces.
//!
//! # Driving a stream session
//!
//! 1. **Input**: [`StreamSession::handle_bytes`] with what the socket read,
//!    [`StreamSession::handle_timeout`] when `poll_timeout`'s instant has passed, and
//!    [`StreamSession::send`] / [`StreamSession::close`] for the application.
//! 2. **Output**: write [`StreamSession::pending_output`] to the socket and report what was
//!    written with [`StreamSession::consume_output`].
//! 3. **Events**: [`StreamSession::poll_event`] until `None`.
//! 4. **Timer**: [`StreamSession::poll_timeout`]. When [`StreamSession::is_closed`] and the output
//!    is empty, close the socket.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use core::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use super::config::SessionConfig;
use super::error::SendError;
use super::event::{Closer, Event, EventQueue};
use super::outbox::channel_kind;
use super::rtt::RttEstimator;
use super::stats::Stats;
use super::terms::{
    Admission, Admit, agree_frame_len, agree_heartbeat, agree_idle, millis, refusal_reject,
    version_reject,
};
use super::time::Instant;

mod echo;
use super::echo::Echo;
use crate::DecodeError;
use crate::wire::{
    ChannelKind, Close, CloseAck, DEFAULT_MAX_FRAME_LEN, FRAME_LEN_OVERHEAD, Frame, FrameBody,
    FrameKind, Hello, LENGTH_PREFIX_LEN, Ping, Pong, Reason, SEQ_LEN, SharedFrame, StreamDeframer,
    Text, VERSION, Welcome, encode_stream_frame_into,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// Server: waiting for the Hello until the first-frame deadline.
    AwaitHello {
        deadline: Instant,
    },
    /// Client: Hello sent, waiting for the Welcome until the handshake deadline.
    AwaitWelcome {
        deadline: Instant,
    },
    Established,
    /// Our Close is sent; waiting for the `CloseAck` until the deadline.
    Closing {
        deadline: Instant,
    },
    Closed,
}

/// One end of a framewire session over a byte stream (TCP), with no I/O.
#[derive(Debug)]
pub struct StreamSession {
    /// Shared by every session the driver creates with the same settings (a server's thousands).
    config: Arc<SessionConfig>,
    /// The idle timeout and heartbeat interval in force: the configured ones until the handshake
    /// agrees others.
    idle_timeout: Duration,
    heartbeat_interval: Duration,
    state: StreamState,
    connection_id: u64,
    deframer: StreamDeframer,
    input: BytesMut,
    output: BytesMut,
    events: EventQueue,
    /// Boxed: a session spends almost all its life without one.
    close_reason: Option<Box<(Reason, Text)>>,
    last_received: Instant,
    last_sent: Instant,
    /// The timestamp of the Ping waiting for its Pong.
    ping_outstanding: Option<u64>,
    rtt: RttEstimator,
    stats: StreamStats,
    /// On a server: the channel kinds the client's Hello asked for (index 0 is channel 0), empty
    /// when it named none (every channel reliable-ordered, section 3.4). A client uses its own
    /// configuration's.
    channels: Option<Box<[ChannelKind]>>,
    echo: Echo,
}

/// What a stream session counts: the part of [`Stats`] that applies to a stream, kept small
/// (a server holds one per connection).
#[derive(Debug, Clone, Copy, Default)]
struct StreamStats {
    frames_sent: u64,
    frames_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    unreliable_dropped: u64,
    refused: u64,
    messages_delivered: u64,
    /// Data frames answered by the session itself, not yet taken by `take_echoed`.
    echoed: u64,
}

impl StreamSession {
    fn new(
        config: Arc<SessionConfig>,
        connection_id: u64,
        state: StreamState,
        now: Instant,
    ) -> Self {
        Self {
            rtt: RttEstimator::new(config.initial_rtt),
            idle_timeout: config.idle_timeout,
            heartbeat_interval: config.heartbeat_interval,
            echo: Echo::new(config.echo_data),
            // Before the handshake: the protocol's default limit, or ours if it is lower.
            deframer: StreamDeframer::new(config.frame_limit().min(DEFAULT_MAX_FRAME_LEN)),
            config,
            state,
            connection_id,
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: EventQueue::default(),
            close_reason: None,
            last_received: now,
            last_sent: now,
            ping_outstanding: None,
            stats: StreamStats::default(),
            channels: None,
        }
    }

    /// A client session: the Hello is queued at once.
    pub fn client(config: impl Into<Arc<SessionConfig>>, now: Instant) -> Self {
        let config = config.into();
        let deadline = now + config.handshake_timeout;
        let mut s = Self::new(config, 0, StreamState::AwaitWelcome { deadline }, now);
        let hello = Frame::new(Hello {
            min_version: VERSION,
            max_version: VERSION,
            idle_timeout_ms: millis(s.idle_timeout),
            max_frame_len: s.config.frame_limit(),
            nonce: 0,
            options: s.config.hello_options.clone(),
        });
        s.emit(&hello, now);
        s
    }

    /// A server session for a new connection; it must receive a Hello within the configured
    /// handshake timeout (the first-frame deadline) or it closes with `HANDSHAKE_TIMEOUT`. A
    /// server passes one `Arc<SessionConfig>` to all its sessions.
    pub fn server(config: impl Into<Arc<SessionConfig>>, connection_id: u64, now: Instant) -> Self {
        let config = config.into();
        let deadline = now + config.handshake_timeout;
        Self::new(
            config,
            connection_id,
            StreamState::AwaitHello { deadline },
            now,
        )
    }

    /// The connection id (the server's; a client learns it from the Welcome).
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// Whether the handshake is done and the session not closing.
    pub fn is_established(&self) -> bool {
        self.state == StreamState::Established
    }

    /// Whether the session is over. Write what output is left, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == StreamState::Closed
    }

    /// Counters and the round-trip estimate.
    pub fn stats(&self) -> Stats {
        Stats {
            rtt: self.rtt.smoothed(),
            rtt_var: self.rtt.var(),
            packets_sent: self.stats.frames_sent,
            packets_received: self.stats.frames_received,
            bytes_sent: self.stats.bytes_sent,
            bytes_received: self.stats.bytes_received,
            unreliable_dropped: self.stats.unreliable_dropped,
            refused: self.stats.refused,
            messages_delivered: self.stats.messages_delivered,
            queued_bytes: self.output.len(),
            ..Stats::default()
        }
    }

    /// The kind of a channel in this session: as the client's Hello laid them out (a server), or
    /// as this side's configuration does (a client).
    pub fn channel_kind(&self, channel: u8) -> ChannelKind {
        match &self.channels {
            Some(kinds) => channel_kind(kinds, channel),
            None => self.config.channel_kind(channel),
        }
    }

    /// The idle timeout in force (agreed in the handshake).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    fn emit(&mut self, frame: &Frame, now: Instant) {
        match encode_stream_frame_into(frame, &mut self.output) {
            Ok(n) => {
                self.stats.frames_sent += 1;
                self.stats.bytes_sent += n as u64;
                self.last_sent = now;
            }
            // Only our own frames get here, built from values that fit.
            Err(_) => self.stats.refused += 1,
        }
    }

    /// Bytes waiting to be written to the socket.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of the pending output were written.
    pub fn consume_output(&mut self, n: usize) {
        self.output.advance(n.min(self.output.len()));
        if self.output.is_empty() {
            // An idle connection holds no output buffer.
            self.output = BytesMut::new();
        }
    }

    /// Queues `frame` for the peer.
    ///
    /// On a reliable channel, a full output buffer (`max_queued_bytes`) is backpressure. On an
    /// unreliable channel, a message that finds the buffer above half of that is dropped (the
    /// newest state wins; docs/PROTOCOL.md section 3.4) and counted, and `Ok` is returned.
    ///
    /// # Errors
    /// [`SendError::QueueFull`], [`SendError::TooLarge`] for a frame above the agreed frame
    /// length, [`SendError::Closed`] (also before the handshake is done), or a field that cannot be
    /// encoded. Nothing is queued then, and the session goes on.
    pub fn send(&mut self, frame: &Frame, now: Instant) -> Result<(), SendError> {
        if self.state != StreamState::Established {
            return Err(SendError::Closed);
        }
        frame.check().map_err(SendError::Encode)?;
        let seq = if frame.seq.is_some() { SEQ_LEN } else { 0 };
        self.check_len(frame.encoded_len() - seq + FRAME_LEN_OVERHEAD)?;
        let reliable = self.channel_kind(frame.channel).is_reliable();
        if !reliable && self.output.len() > self.config.max_queued_bytes / 2 {
            self.stats.unreliable_dropped += 1;
            return Ok(());
        }
        if reliable && self.output.len() >= self.config.max_queued_bytes {
            return Err(SendError::QueueFull);
        }
        // A stream frame carries no sequence number (the stream orders it); clear one only if set.
        if frame.seq.is_some() {
            let mut unsequenced = frame.clone();
            unsequenced.seq = None;
            self.emit(&unsequenced, now);
        } else {
            self.emit(frame, now);
        }
        Ok(())
    }

    /// Queues a frame encoded once for many sessions (a fan-out): its stream bytes are appended to
    /// the output as they are. The rules of [`StreamSession::send`] apply.
    ///
    /// # Errors
    /// [`SendError::QueueFull`], [`SendError::TooLarge`] or [`SendError::Closed`].
    pub fn send_shared(&mut self, frame: &SharedFrame, now: Instant) -> Result<(), SendError> {
        if self.state != StreamState::Established {
            return Err(SendError::Closed);
        }
        self.check_len(frame.stream_bytes().len() - LENGTH_PREFIX_LEN)?;
        let reliable = self.channel_kind(frame.channel()).is_reliable();
        if !reliable && self.output.len() > self.config.max_queued_bytes / 2 {
            self.stats.unreliable_dropped += 1;
            return Ok(());
        }
        if reliable && self.output.len() >= self.config.max_queued_bytes {
            return Err(SendError::QueueFull);
        }
        let bytes = frame.stream_bytes();
        self.output.extend_from_slice(bytes);
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.last_sent = now;
        Ok(())
    }

    /// The frame length limit agreed in the handshake (before it: this side's own, or the
    /// protocol's default if lower). Frames above it are neither sent nor accepted.
    pub fn max_frame_len(&self) -> u32 {
        self.deframer.max_frame_len()
    }

    /// The stream's frames come from a carrier that delivers each whole and intact (a WebSocket
    /// connection's messages, rebuilt into frames by the server): their CRCs are not checked
    /// ([`StreamDeframer::set_checksums`]).
    pub fn skip_checksums(&mut self) {
        self.deframer.set_checksums(false);
    }

    fn check_len(&self, len: usize) -> Result<(), SendError> {
        let max = self.deframer.max_frame_len() as usize;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Starts closing with `reason`: a Close is queued and the session waits for the `CloseAck` for
    /// 3 round-trip timeouts.
    pub fn close(&mut self, now: Instant, reason: Reason, message: &str) {
        match self.state {
            StreamState::Closed | StreamState::Closing { .. } => {}
            StreamState::AwaitHello { .. } | StreamState::AwaitWelcome { .. } => {
                self.emit_close(now, reason, message);
                self.finish(reason, Text::from(message), Closer::Local);
            }
            StreamState::Established => {
                self.emit_close(now, reason, message);
                self.close_reason = Some(Box::new((reason, Text::from(message))));
                self.state = StreamState::Closing {
                    deadline: now + self.rto() * 3,
                };
            }
        }
    }

    fn emit_close(&mut self, now: Instant, reason: Reason, message: &str) {
        self.emit(
            &Frame::new(Close {
                reason,
                message: Text::from(message),
            }),
            now,
        );
    }

    fn rto(&self) -> Duration {
        self.rtt
            .rto(Duration::ZERO, self.config.min_rto, self.config.max_rto)
    }

    fn finish(&mut self, reason: Reason, message: Text, by: Closer) {
        if self.state != StreamState::Closed {
            self.state = StreamState::Closed;
            self.input = BytesMut::new();
            self.events.push_back(Event::Closed {
                reason,
                message,
                by,
            });
        }
    }

    /// Ends the session because of bad input: a Close with the reason, then closed.
    fn fail(&mut self, now: Instant, reason: Reason, message: &str) {
        self.stats.refused += 1;
        self.emit_close(now, reason, message);
        self.finish(reason, Text::from(message), Closer::Local);
    }

    /// Takes bytes read from the socket. A server's Welcome offers no session token (see
    /// [`StreamSession::handle_bytes_with`]).
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.handle_bytes_with(now, data, |_: &Hello, _| Ok(Admission::default()));
    }

    /// Takes bytes read from the socket; a server asks `admit` what its Welcome says about the
    /// session (a token to resume it by, whether it resumed one), given the client's Hello, or
    /// whether to refuse it with a Reject.
    pub fn handle_bytes_with(&mut self, now: Instant, data: &[u8], mut admit: impl Admit) {
        if self.state == StreamState::Closed {
            return;
        }
        self.stats.bytes_received += data.len() as u64;
        self.last_received = now;
        let data = if self.input.is_empty() {
            self.take_in_place(now, data, &mut admit)
        } else {
            data
        };
        self.input.extend_from_slice(data);
        while self.state != StreamState::Closed {
            match self.deframer.decode_span(&mut self.input) {
                Ok(None) => break,
                Ok(Some(span)) => {
                    self.stats.frames_received += 1;
                    if self.echoes(&self.input[span.body.clone()]) {
                        self.output.extend_from_slice(&self.input[..span.total]);
                        self.input.advance(span.total);
                        self.count_echo(span.total, now);
                        continue;
                    }
                    let body = span.take_body(&mut self.input);
                    self.on_body(body, now, &mut admit);
                }
                Err(e) => self.fail(now, e.close_reason(), &e.to_string()),
            }
        }
        if self.input.is_empty() {
            // An idle connection holds no input buffer either.
            self.input = BytesMut::new();
        }
    }

    fn on_body(&mut self, body: Bytes, now: Instant, admit: &mut impl Admit) {
        match Frame::parse(body) {
            Ok(frame) => self.on_frame(frame, now, admit),
            Err(DecodeError::UnknownKind(k)) if FrameKind::is_ignorable(k) => {}
            Err(e) => self.fail(now, e.close_reason(), &e.to_string()),
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant, admit: &mut impl Admit) {
        match self.state {
            StreamState::AwaitHello { .. } => self.on_hello(frame, now, admit),
            StreamState::AwaitWelcome { .. } => self.on_welcome(frame, now),
            StreamState::Established | StreamState::Closing { .. } => {
                self.on_session_frame(frame, now);
            }
            StreamState::Closed => {}
        }
    }

    fn on_hello(&mut self, frame: Frame, now: Instant, admit: &mut impl Admit) {
        let FrameBody::Hello(hello) = frame.body else {
            let what = alloc::format!("expected Hello, got {}", frame.body.kind());
            return self.fail(now, Reason::PROTOCOL_ERROR, &what);
        };
        if !(hello.min_version..=hello.max_version).contains(&VERSION) {
            self.emit(&version_reject(VERSION), now);
            return self.finish(Reason::UNSUPPORTED_VERSION, Text::default(), Closer::Local);
        }
        self.idle_timeout = agree_idle(self.idle_timeout, hello.idle_timeout_ms);
        self.heartbeat_interval = agree_heartbeat(self.heartbeat_interval, 0, self.idle_timeout);
        let agreed = agree_frame_len(self.config.frame_limit(), &hello)
            .and_then(|max_frame_len| Ok((max_frame_len, admit(&hello, self.connection_id)?)));
        let (max_frame_len, admission) = match agreed {
            Ok(a) => a,
            Err(refusal) => {
                let reason = refusal.reason;
                self.emit(&refusal_reject(refusal), now);
                return self.finish(reason, Text::default(), Closer::Local);
            }
        };
        // The one limit both ways: what the deframer accepts and what `send` lets out.
        self.deframer.set_max_frame_len(max_frame_len);
        self.channels = Some(match hello.options.channels() {
            Some(kinds) => core::iter::once(ChannelKind::ReliableOrdered)
                .chain(kinds)
                .collect(),
            None => Box::default(),
        });
        self.state = StreamState::Established;
        self.emit(
            &Frame::new(Welcome {
                resumed: admission.resumed,
                version: VERSION,
                connection_id: self.connection_id,
                idle_timeout_ms: millis(self.idle_timeout),
                max_frame_len,
                heartbeat_interval_ms: millis(self.heartbeat_interval),
                missed: admission.missed,
                session_token: admission.session_token.clone(),
            }),
            now,
        );
        let welcome_token = admission.session_token;
        self.events.push_back(Event::Connected {
            connection_id: self.connection_id,
            session_token: welcome_token,
            resumed: admission.resumed,
            missed: admission.missed,
        });
    }

    fn on_welcome(&mut self, frame: Frame, now: Instant) {
        match frame.body {
            FrameBody::Welcome(w) => {
                self.connection_id = w.connection_id;
                self.idle_timeout = agree_idle(self.idle_timeout, w.idle_timeout_ms);
                self.heartbeat_interval = agree_heartbeat(
                    self.heartbeat_interval,
                    w.heartbeat_interval_ms,
                    self.idle_timeout,
                );
                self.deframer
                    .set_max_frame_len(w.max_frame_len.min(self.config.frame_limit()));
                self.state = StreamState::Established;
                self.events.push_back(Event::Connected {
                    connection_id: w.connection_id,
                    session_token: w.session_token,
                    resumed: w.resumed,
                    missed: w.missed,
                });
            }
            FrameBody::Reject(r) => self.finish(r.reason, r.message, Closer::Peer),
            other => {
                let what = alloc::format!("expected Welcome, got {}", other.kind());
                self.fail(now, Reason::PROTOCOL_ERROR, &what);
            }
        }
    }

    fn on_session_frame(&mut self, frame: Frame, now: Instant) {
        match frame.body {
            FrameBody::Ping(p) => self.emit(
                &Frame::new(Pong {
                    timestamp_us: p.timestamp_us,
                }),
                now,
            ),
            FrameBody::Pong(p) => {
                if self.ping_outstanding == Some(p.timestamp_us) {
                    self.ping_outstanding = None;
                    let sent = Instant::from_micros(p.timestamp_us);
                    self.rtt
                        .update(now.saturating_duration_since(sent), Duration::ZERO);
                }
            }
            FrameBody::Close(c) => {
                self.emit(&Frame::new(CloseAck), now);
                self.finish(c.reason, c.message, Closer::Peer);
            }
            FrameBody::CloseAck(_) => {
                if let Some(close) = self.close_reason.take() {
                    let (reason, message) = *close;
                    self.finish(reason, message, Closer::Local);
                }
            }
            // The stream is reliable: packet-level and fragment frames have no place on it.
            FrameBody::Hello(_)
            | FrameBody::Challenge(_)
            | FrameBody::Welcome(_)
            | FrameBody::Reject(_)
            | FrameBody::Fragment(_)
            | FrameBody::Discover(_)
            | FrameBody::Here(_)
            | FrameBody::Reset(_) => {
                let what = alloc::format!("{} is not allowed here", frame.body.kind());
                self.fail(now, Reason::PROTOCOL_ERROR, &what);
            }
            // Ack (section 5.9) confirms the hub's numbered Messages: the application's business.
            body => {
                if matches!(self.state, StreamState::Established) {
                    self.stats.messages_delivered += 1;
                    self.echo.hold();
                    self.events.push_back(Event::Frame(Frame {
                        channel: frame.channel,
                        seq: None,
                        body,
                    }));
                }
            }
        }
    }

    /// The next instant at which [`StreamSession::handle_timeout`] must be called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            StreamState::Closed => None,
            StreamState::AwaitHello { deadline }
            | StreamState::AwaitWelcome { deadline }
            | StreamState::Closing { deadline } => Some(deadline),
            StreamState::Established => Some(
                (self.last_sent + self.heartbeat_interval)
                    .min(self.last_received + self.idle_timeout),
            ),
        }
    }

    /// Runs the timers due at `now`: the handshake and first-frame deadlines, heartbeats, the idle
    /// timeout and the close deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.events.release_if_empty();
        match self.state {
            StreamState::AwaitHello { deadline } if now >= deadline => {
                self.emit_close(now, Reason::HANDSHAKE_TIMEOUT, "no Hello in time");
                self.finish(Reason::HANDSHAKE_TIMEOUT, Text::default(), Closer::Local);
            }
            StreamState::AwaitWelcome { deadline } if now >= deadline => {
                self.finish(Reason::HANDSHAKE_TIMEOUT, Text::default(), Closer::Local);
            }
            StreamState::Closing { deadline } if now >= deadline => {
                let (reason, message) = self
                    .close_reason
                    .take()
                    .map_or((Reason::NORMAL, Text::default()), |c| *c);
                self.finish(reason, message, Closer::Local);
            }
            StreamState::Established => {
                if now >= self.last_received + self.idle_timeout {
                    self.emit_close(
                        now,
                        Reason::IDLE_TIMEOUT,
                        "nothing heard within the idle timeout",
                    );
                    self.finish(Reason::IDLE_TIMEOUT, Text::default(), Closer::Local);
                } else if now >= self.last_sent + self.heartbeat_interval {
                    let timestamp_us = now.as_micros();
                    self.ping_outstanding = Some(timestamp_us);
                    self.emit(&Frame::new(Ping { timestamp_us }), now);
                }
            }
            _ => {}
        }
    }

    /// Whether [`poll_event`](Self::poll_event) has something (without taking it).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event [`poll_event`](Self::poll_event) would give, left in place: a driver that
    /// serves some frames itself looks before it takes.
    #[must_use]
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// The next event for the application, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
