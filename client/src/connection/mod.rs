//! The poll-driven client: one connection to a server that survives failures, with no threads and
//! no clock reads of its own. A game loop or an embedded main loop calls
//! [`Connection::update`] with the time, then takes [`Connection::poll_event`] until `None`.
//!
//! # Reconnecting
//!
//! When the connection fails (the socket drops, the server closes it, a heartbeat goes unanswered,
//! the handshake times out), the client waits with exponential backoff and jitter and connects
//! again, presenting its session token: if the server kept the session, its subscriptions are back
//! and the reliable messages published meanwhile follow; if not, the client subscribes and
//! registers again by itself. Operations waiting for a response when the connection failed get a
//! `Disconnected` first: their responses will not come.
//!
//! # Nothing lost in flight
//!
//! With [`ClientOptions::confirm_delivery`] (the default) the client confirms the reliable
//! messages it delivers with Ack, 50 ms after the first it has not confirmed or at once when 32
//! wait (an Ack per 32 messages of a steady stream); the server keeps each until then and
//! sends again, after a resume, those not confirmed. One that comes twice (before the break and
//! after it) is delivered once.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{Closer, Event, Instant, SendError, Stats};
use framewire_protocol::wire::{
    Frame, FrameBody, HelloOptions, Reason, Register, Status, Subscribe, Text,
};

mod confirmations;
mod deadlines;
mod learned_nodes;
mod offline;
mod operations;

pub use operations::{DEFAULT_REQUEST_WAIT, PublishOptions};

use confirmations::Confirmations;
use deadlines::RequestDeadlines;
use offline::OfflineBuffer;

use crate::error::ClientError;
use crate::event::{ClientEvent, Delivery, IncomingRequest, Message};
use crate::link::Link;
use crate::options::{ClientOptions, TokenRefresh, Transport};

/// What a failed link of an established session means for the application: a TCP end of stream
/// or reset without a Close is `CONNECTION_LOST` (the server crashed, or the network failed), never
/// an orderly close; a UDP port unreachable says nothing listens there now.
fn lost(e: std::io::Error) -> ClientError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionAborted | K::ConnectionReset | K::BrokenPipe | K::UnexpectedEof => {
            ClientError::Closed {
                reason: Reason::CONNECTION_LOST,
                message: Text::from(e.to_string().as_str()),
            }
        }
        _ => ClientError::Unreachable(e.into()),
    }
}

/// What the server would refuse, or the handshake could not carry, found before connecting.
pub(crate) fn check_options(options: &ClientOptions) -> Result<(), ClientError> {
    let channels = options.session.channels.len();
    if channels > 256 {
        return Err(ClientError::Invalid(format!(
            "{channels} channels: a session has at most 256 (0 to 255)"
        )));
    }
    if options.seal_keys.is_some()
        && (options.transport != Transport::Udp || options.auth_token.is_none())
    {
        return Err(ClientError::Invalid(
            "seal keys are for a UDP session, with the connect token they came with".into(),
        ));
    }
    if options.transport == Transport::Udp
        && options.seal_keys.is_none()
        && options
            .auth_token
            .as_ref()
            .is_some_and(|t| t.first() == Some(&framewire_protocol::auth::TOKEN_VERSION_SEALED))
    {
        // The server would seal the session with the token's keys, and this client could not
        // open a word of it.
        return Err(ClientError::Invalid(
            "the connect token carries keys for a sealed UDP session: give them too (seal_keys)"
                .into(),
        ));
    }
    if options.tls.is_some() && options.transport == Transport::Udp {
        return Err(ClientError::Invalid(
            "TLS is for TCP; a UDP session is sealed with its connect token's keys".into(),
        ));
    }
    if let Some(will) = &options.last_will {
        framewire_protocol::topic::check_topic(will.topic.as_str()).map_err(|e| {
            ClientError::Invalid(format!("last will topic {:?}: {e}", will.topic.as_str()))
        })?;
    }
    Ok(())
}

#[derive(Debug)]
enum State {
    /// Connecting: the link is up or coming up, the handshake not done by `deadline`.
    Connecting {
        link: Link,
        deadline: Instant,
    },
    Connected {
        link: Link,
    },
    /// Waiting to reconnect.
    Waiting {
        until: Instant,
    },
    /// Over: closed by the application, or failed with reconnects off.
    Closed,
}

/// A client connection driven by its caller.
#[derive(Debug)]
pub struct Connection {
    options: ClientOptions,
    epoch: std::time::Instant,
    state: State,
    /// The session token of the last Welcome, to resume with.
    token: Option<Bytes>,
    /// Filters and services to restore if the server did not keep the session.
    filters: Vec<Text>,
    services: Vec<Text>,
    next_id: u32,
    /// Attempts that failed in a row since the last connection.
    attempt: u32,
    /// Which of the options' servers the next attempt goes to.
    server_index: usize,
    /// When the client was last without a connection since having one (or since it started).
    down_since: Instant,
    rng: u64,
    events: VecDeque<ClientEvent>,
    scratch: Vec<u8>,
    /// Bumped each time a new socket is opened (so a caller waiting on it registers the new one).
    generation: u64,
    /// Operations sent while reconnecting, to send once connected (`options.offline_buffer`).
    offline: OfflineBuffer,
    /// Requests waiting for their Response, and when this client stops waiting.
    deadlines: RequestDeadlines,
    /// The delivery numbers of the session's messages that reached the application.
    confirmations: Confirmations,
    /// The id of this client's own `sys.nodes` request, while its answer is due
    /// (`options.learn_nodes`).
    nodes_request: Option<u32>,
    /// Servers added to the options' by [`Connection::learn_nodes`].
    learned: usize,
    /// When to ask for the nodes again while connected (a cluster's nodes come and go).
    nodes_due: Option<Instant>,
}

impl Connection {
    /// Starts connecting to the server. `now` is the caller's clock; every later call takes the
    /// same clock.
    ///
    /// # Errors
    /// The socket cannot be created.
    pub fn new(options: ClientOptions, now: std::time::Instant) -> Result<Self, ClientError> {
        check_options(&options)?;
        let mut seed = options.seed;
        if seed == 0 {
            let mut b = [0u8; 8];
            // Without the OS's randomness, a fixed seed: jitter and nonces still work, only less
            // spread across clients.
            let _ = getrandom::fill(&mut b);
            seed = u64::from_le_bytes(b) | 1;
        }
        let mut c = Self {
            options,
            epoch: now,
            state: State::Closed,
            token: None,
            filters: Vec::new(),
            services: Vec::new(),
            next_id: 0,
            attempt: 0,
            server_index: 0,
            down_since: Instant::ZERO,
            rng: seed,
            events: VecDeque::new(),
            scratch: vec![0u8; 64 * 1024],
            generation: 0,
            offline: OfflineBuffer::default(),
            deadlines: RequestDeadlines::default(),
            confirmations: Confirmations::default(),
            nodes_request: None,
            learned: 0,
            nodes_due: None,
        };
        c.open(Instant::ZERO)?;
        Ok(c)
    }

    fn t(&self, now: std::time::Instant) -> Instant {
        Instant::from_micros(
            u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
                .unwrap_or(u64::MAX),
        )
    }

    fn wall(&self, t: Instant) -> std::time::Instant {
        self.epoch + Duration::from_micros(t.as_micros())
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn open(&mut self, now: Instant) -> Result<(), ClientError> {
        if let Some(fresh) = self
            .options
            .token_refresh
            .as_ref()
            .and_then(TokenRefresh::fetch)
        {
            self.options.auth_token = Some(fresh.token);
            if let Some(keys) = fresh.seal_keys {
                self.options.seal_keys = Some(keys);
            }
        }
        let server = self
            .options
            .servers()
            .nth(self.server_index)
            .unwrap_or(self.options.server);
        let mut config = self.options.session.clone();
        let mut hello = HelloOptions::builder();
        if let Some(token) = &self.token {
            hello = hello.resume_token(token);
        }
        if let Some(name) = &self.options.client_name {
            hello = hello.client_name(name);
        }
        if let Some(will) = &self.options.last_will {
            hello = hello.last_will(will);
        }
        if let Some(token) = &self.options.auth_token {
            hello = hello.auth_token(token);
        }
        if self.options.confirm_delivery {
            hello = hello.confirms();
        }
        config.seal_keys.clone_from(&self.options.seal_keys);
        config.hello_options = hello
            .build()
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let nonce = self.random();
        let link = Link::open(
            server,
            self.options.transport == Transport::Udp,
            self.options.tls.as_ref(),
            config,
            nonce,
            now,
        )
        .map_err(|e| ClientError::Unreachable(e.into()))?;
        self.generation += 1;
        self.state = State::Connecting {
            link,
            deadline: now + self.options.connect_timeout,
        };
        Ok(())
    }

    /// Turns automatic reconnects on or off from now on.
    pub fn set_reconnect(&mut self, reconnect: Option<crate::options::Reconnect>) {
        self.nodes_due = match (&reconnect, self.nodes_due) {
            (None, _) => None,
            (Some(_), None) if self.options.learn_nodes && self.is_connected() => {
                Some(Instant::ZERO)
            }
            (Some(_), due) => due,
        };
        self.options.reconnect = reconnect;
    }

    /// Whether the handshake is done and operations can be sent.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Whether the connection is over for good.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The session's counters and round-trip estimate, while a link is up.
    pub fn stats(&self) -> Option<Stats> {
        match &self.state {
            State::Connecting { link, .. } | State::Connected { link } => Some(link.stats()),
            _ => None,
        }
    }

    /// Writes what the operations since the last update queued, now, without reading: call it
    /// after a frame's sends so they leave this frame rather than at the next
    /// [`Connection::update`] (the rule: operations are queued; `update` and `flush` send them).
    /// A failure it meets is reported as [`Connection::update`] reports one.
    pub fn flush(&mut self, now: std::time::Instant) {
        let t = self.t(now);
        if let State::Connected { link } = &mut self.state
            && let Err(e) = link.flush(t)
        {
            self.link_failed(t, e);
        }
    }

    /// Does the I/O and the timers due at `now`: reads what arrived, sends what is queued,
    /// reconnects when it is time. Call it whenever the socket may be ready or
    /// [`Connection::poll_timeout`] has passed (or simply once per frame of a game loop).
    pub fn update(&mut self, now: std::time::Instant) {
        let t = self.t(now);
        self.expire_requests(t);
        loop {
            match &mut self.state {
                State::Closed => return,
                State::Waiting { until } => {
                    if t < *until {
                        return;
                    }
                    if let Err(e) = self.open(t) {
                        self.fail(t, e);
                        return;
                    }
                }
                State::Connecting { link, deadline } => {
                    if let Err(e) = link.drive(t, &mut self.scratch) {
                        return self.link_failed(t, e);
                    }
                    let deadline = *deadline;
                    self.take_events(t);
                    match &self.state {
                        State::Connecting { .. } if t >= deadline => {
                            self.fail(t, ClientError::TimedOut);
                            return;
                        }
                        State::Connected { .. } => {}
                        _ => return,
                    }
                }
                State::Connected { link } => {
                    if let Err(e) = link.drive(t, &mut self.scratch) {
                        return self.link_failed(t, e);
                    }
                    self.take_events(t);
                    self.confirm(t);
                    if self.nodes_due.is_some_and(|due| t >= due) {
                        self.ask_for_nodes(t);
                    }
                    if !self.offline.is_empty() {
                        self.flush_offline(t);
                    }
                    if let State::Connected { link } = &mut self.state {
                        // Flush what the events queued (a re-subscribe, an answer to a Ping),
                        // and take what that turn read.
                        if let Err(e) = link.drive(t, &mut self.scratch) {
                            return self.link_failed(t, e);
                        }
                        self.take_events(t);
                    }
                    return;
                }
            }
        }
    }

    /// The link failed: what it read before the failure (a Welcome, a Close) counts first, and
    /// unless that already ended the connection, the failure does.
    fn link_failed(&mut self, t: Instant, e: std::io::Error) {
        self.take_events(t);
        if !matches!(self.state, State::Waiting { .. } | State::Closed) {
            self.fail(t, lost(e));
        }
    }

    fn take_events(&mut self, t: Instant) {
        loop {
            let event = match &mut self.state {
                State::Connecting { link, .. } | State::Connected { link } => link.poll_event(),
                _ => None,
            };
            let Some(event) = event else { return };
            match event {
                Event::Connected {
                    session_token,
                    resumed,
                    missed,
                    ..
                } => self.on_connected(t, session_token, resumed, missed),
                Event::Frame(frame) => self.on_frame(t, frame),
                Event::Closed {
                    reason,
                    message,
                    by,
                } => {
                    // Before the Welcome: the server's Reject, or this side's handshake timer.
                    let error = match (&self.state, by) {
                        (State::Connecting { .. }, Closer::Peer) => {
                            ClientError::Rejected { reason, message }
                        }
                        (State::Connecting { .. }, Closer::Local) => ClientError::TimedOut,
                        _ => ClientError::Closed { reason, message },
                    };
                    self.fail(t, error);
                    return;
                }
                _ => {}
            }
        }
    }

    fn on_connected(&mut self, t: Instant, token: Bytes, resumed: bool, missed: u32) {
        let State::Connecting { link, .. } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return;
        };
        self.state = State::Connected { link };
        self.attempt = 0;
        if !token.is_empty() {
            self.token = Some(token);
        }
        if !resumed {
            // A new session numbers its messages from 1 again.
            self.confirmations.reset();
            // The server has none of this client's state: ask for it again (no Response wanted).
            // Ahead of what waited in the offline buffer: a publish kept from the outage reaches
            // this client's own subscriptions too.
            for filter in self.filters.clone() {
                let _ = self.send_now(t, Frame::new(Subscribe { id: 0, filter }));
            }
            for service in self.services.clone() {
                let _ = self.send_now(t, Frame::new(Register { id: 0, service }));
            }
        }
        // Learned nodes serve only a reconnect: a client that will not reconnect asks nothing.
        if self.options.learn_nodes && self.options.reconnect.is_some() {
            self.nodes_due = Some(t);
        }
        self.events
            .push_back(ClientEvent::Connected { resumed, missed });
        self.flush_offline(t);
    }

    /// Sends the Ack for what reached the application since the last one, if anything did.
    fn confirm(&mut self, t: Instant) {
        if let Some(through) = self.confirmations.ack_due(t)
            && self
                .send_now(t, Frame::new(framewire_protocol::wire::Ack { through }))
                .is_ok()
        {
            self.confirmations.acked(through);
        }
    }

    /// Messages the server sent again after a break that had already been delivered, and were
    /// not delivered twice.
    pub fn duplicates_suppressed(&self) -> u64 {
        self.confirmations.duplicates()
    }

    fn on_frame(&mut self, t: Instant, frame: Frame) {
        let channel = frame.channel;
        let event = match frame.body {
            FrameBody::Message(m)
                if m.number.is_some_and(|n| !self.confirmations.arrived(n, t)) =>
            {
                return;
            }
            FrameBody::Ack(a) => return self.confirmations.settle(a.through),
            FrameBody::Message(m) => ClientEvent::Message(Message {
                topic: m.topic,
                payload: m.payload,
                retained: m.retained,
                channel,
            }),
            FrameBody::Response(r) if self.nodes_request == Some(r.id) => {
                self.nodes_request = None;
                if r.status == Status::OK {
                    self.learn_nodes(&r.payload);
                }
                return;
            }
            FrameBody::Response(r) => {
                self.deadlines.end(r.id);
                ClientEvent::Response {
                    id: r.id,
                    status: r.status,
                    payload: r.payload,
                }
            }
            FrameBody::QueueDelivery(d) => ClientEvent::Delivery(Delivery {
                fetch_id: d.id,
                delivery_id: d.delivery_id,
                queue: d.queue,
                payload: d.payload,
                redelivered: d.redelivered,
            }),
            FrameBody::Request(r) => ClientEvent::Request(IncomingRequest {
                id: r.id,
                target: r.target,
                payload: r.payload,
                timeout_ms: r.timeout_ms,
            }),
            FrameBody::Data(d) => ClientEvent::Data {
                channel,
                payload: d.payload,
            },
            // The server refused a frame that has no Response to carry it (a publish without an
            // ack, say).
            FrameBody::Error(e) => ClientEvent::Refused {
                reason: e.reason,
                kind: e.refused_kind,
                message: e.message,
            },
            _ => return,
        };
        self.events.push_back(event);
    }

    /// The connection failed: tell the application, and reconnect later if allowed.
    fn fail(&mut self, t: Instant, error: ClientError) {
        let final_error = matches!(
            error,
            ClientError::Rejected { reason, .. } if reason != Reason::GOING_AWAY && reason != Reason::SERVER_FULL
        );
        if matches!(self.state, State::Connected { .. }) {
            // The server that was serving is tried again first: it may have kept the session.
            self.down_since = t;
        } else {
            // An attempt failed: the next goes to the next server.
            self.server_index = (self.server_index + 1) % self.options.servers().count();
        }
        self.attempt = self.attempt.saturating_add(1);
        let retry_in = match (self.options.reconnect.clone(), final_error) {
            (Some(r), false) if !self.given_up(t, &r) => Some(self.backoff(&r)),
            _ => None,
        };
        self.state = match retry_in {
            Some(wait) => State::Waiting { until: t + wait },
            None => State::Closed,
        };
        if retry_in.is_none() {
            // No connection will come to send them.
            self.offline.clear();
        }
        self.events
            .push_back(ClientEvent::Disconnected { error, retry_in });
    }

    /// Whether the reconnect policy's limits are reached: the attempts failed in a row, or the
    /// time without a connection (counting the wait the next attempt would add).
    fn given_up(&self, t: Instant, r: &crate::options::Reconnect) -> bool {
        let attempts = r.max_attempts.is_some_and(|max| self.attempt >= max);
        let down = r
            .give_up_after
            .is_some_and(|limit| t.saturating_duration_since(self.down_since) >= limit);
        attempts || down
    }

    /// The wait before the next attempt: `initial * multiplier^(failures - 1)`, at most `max`,
    /// shortened by a random part of up to `jitter`.
    fn backoff(&mut self, r: &crate::options::Reconnect) -> Duration {
        let exponent = i32::try_from(self.attempt.saturating_sub(1).min(30)).unwrap_or(30);
        let base = (r.initial.as_secs_f64() * r.multiplier.powi(exponent)).min(r.max.as_secs_f64());
        // 32 random bits as a fraction in [0, 1).
        let unit = f64::from((self.random() >> 32) as u32) / f64::from(u32::MAX);
        Duration::from_secs_f64(base * (1.0 - r.jitter.clamp(0.0, 1.0) * unit))
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Connection::update`] must run next at the latest (a timer, or a reconnect).
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        let t = match &self.state {
            State::Connecting { link, deadline } => {
                Some(link.poll_timeout().map_or(*deadline, |x| x.min(*deadline)))
            }
            State::Connected { link } => [
                link.poll_timeout(),
                self.confirmations.next_ack(),
                self.nodes_due,
            ]
            .into_iter()
            .flatten()
            .min(),
            State::Waiting { until } => Some(*until),
            State::Closed => None,
        };
        let request = self.deadlines.next();
        let t = match (t, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        t.map(|t| self.wall(t))
    }

    /// Resolves every request whose wait is over with a `TIMEOUT` Response of this client's own
    /// (its answer did not come: the server's was lost with a connection, or never sent).
    fn expire_requests(&mut self, t: Instant) {
        while let Some(id) = self.deadlines.pop_expired(t) {
            self.events.push_back(ClientEvent::Response {
                id,
                status: Status::TIMEOUT,
                payload: Bytes::from_static(b"no response came within the deadline"),
            });
        }
    }

    fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// Sends an operation now, or keeps it for the reconnect (behind what already waits, in
    /// order).
    fn send(&mut self, t: Instant, frame: Frame) -> Result<(), ClientError> {
        if matches!(self.state, State::Connected { .. }) && self.offline.is_empty() {
            self.send_now(t, frame)
        } else {
            self.keep_offline(frame)
        }
    }

    fn send_now(&mut self, t: Instant, frame: Frame) -> Result<(), ClientError> {
        let State::Connected { link } = &mut self.state else {
            return Err(ClientError::NotConnected);
        };
        match link.send(frame, t) {
            Ok(()) => Ok(()),
            Err(SendError::QueueFull) => Err(ClientError::Backpressure),
            Err(SendError::Closed) => Err(ClientError::NotConnected),
            Err(SendError::TooLarge { len, max }) => Err(ClientError::TooLarge { len, max }),
            Err(e) => Err(ClientError::Invalid(e.to_string())),
        }
    }

    /// Keeps an operation sent while reconnecting, if the offline buffer has room.
    fn keep_offline(&mut self, frame: Frame) -> Result<(), ClientError> {
        if matches!(self.state, State::Closed) || self.options.reconnect.is_none() {
            return Err(ClientError::NotConnected);
        }
        let len = frame.encoded_len();
        let max = self.options.session.frame_limit() as usize;
        if len + framewire_protocol::wire::FRAME_LEN_OVERHEAD > max {
            return Err(ClientError::TooLarge {
                len: len + framewire_protocol::wire::FRAME_LEN_OVERHEAD,
                max,
            });
        }
        if !self.offline.push(frame, len, self.options.offline_buffer) {
            return Err(if self.options.offline_buffer == 0 {
                ClientError::NotConnected
            } else {
                ClientError::Backpressure
            });
        }
        Ok(())
    }

    /// Sends what waited in the offline buffer, in order, as far as the link takes it. An
    /// operation the server's agreed limit refuses is answered here (`PAYLOAD_TOO_LARGE`), so its
    /// caller does not wait for ever.
    fn flush_offline(&mut self, t: Instant) {
        while let State::Connected { link } = &mut self.state
            && let Some(frame) = self.offline.pop()
        {
            let id = frame.operation_id();
            match link.send(frame.clone(), t) {
                Ok(()) => {}
                Err(SendError::QueueFull) => {
                    self.offline.unpop(frame);
                    return;
                }
                Err(e) => {
                    if let Some(id) = id {
                        self.events.push_back(ClientEvent::Response {
                            id,
                            status: Status::PAYLOAD_TOO_LARGE,
                            payload: Bytes::from(e.to_string()),
                        });
                    }
                }
            }
        }
    }

    /// Whether operation `id` waits in the offline buffer (sent while reconnecting, not yet out).
    pub fn is_waiting_offline(&self, id: u32) -> bool {
        id != 0 && self.offline.holds(id)
    }

    /// Takes operation `id` out of the offline buffer before it is sent; whether it was there
    /// (a caller that gave up on it makes sure it is never sent).
    pub fn cancel(&mut self, id: u32) -> bool {
        if id == 0 || !self.offline.remove(id) {
            return false;
        }
        self.deadlines.end(id);
        true
    }

    /// Ends the session with a Close (NORMAL): the server forgets it, and publishes no last will.
    /// Keep calling [`Connection::update`] until [`Connection::is_closed`] to let the Close out.
    pub fn close(&mut self, now: std::time::Instant) {
        let t = self.t(now);
        match &mut self.state {
            State::Connected { link } | State::Connecting { link, .. } => {
                link.close(t, Reason::NORMAL, "client closing");
                let _ = link.drive(t, &mut self.scratch);
                if link.is_closed() {
                    self.state = State::Closed;
                }
                self.options.reconnect = None;
            }
            State::Waiting { .. } => self.state = State::Closed,
            State::Closed => {}
        }
    }

    /// The current socket's file descriptor, for a caller's own poll loop: wait for it to be
    /// readable (and writable while output waits), or for [`Connection::poll_timeout`], then call
    /// [`Connection::update`]. `None` while there is no socket (waiting to reconnect, closed). A
    /// reconnect opens a new socket: [`Connection::generation`] says when to take it again.
    #[cfg(unix)]
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.state {
            State::Connecting { link, .. } | State::Connected { link } => Some(link.raw_fd()),
            State::Waiting { .. } | State::Closed => None,
        }
    }

    /// The socket's generation: it changes whenever a new socket is opened (a caller waiting on
    /// readiness registers the new one).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the socket has output it has not taken yet (the caller waits for it to be
    /// writable).
    pub(crate) fn wants_write(&self) -> bool {
        match &self.state {
            State::Connecting { link, .. } | State::Connected { link } => link.wants_write(),
            _ => false,
        }
    }

    /// Registers (or, with `reregister`, updates) the current socket with a mio registry, for
    /// callers that wait on readiness; writable interest only while output waits.
    ///
    /// # Errors
    /// The registry refused.
    pub fn register_socket(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        reregister: bool,
    ) -> std::io::Result<bool> {
        let connecting = matches!(self.state, State::Connecting { .. });
        let (State::Connecting { link, .. } | State::Connected { link }) = &mut self.state else {
            return Ok(false);
        };
        let interest = if link.wants_write() || connecting {
            mio::Interest::READABLE | mio::Interest::WRITABLE
        } else {
            mio::Interest::READABLE
        };
        if reregister {
            registry.reregister(link.source(), token, interest)?;
        } else {
            registry.register(link.source(), token, interest)?;
        }
        Ok(true)
    }
}
