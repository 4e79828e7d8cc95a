//! One worker's mio event loop: accepts TCP connections, moves bytes between sockets and sessions,
//! and runs the sessions' timers. A server runs one worker per thread ([`crate::Server`]); the
//! workers share the hub and hand each other frames through their inboxes ([`crate::shared`]).
//!
//! Readiness is edge-triggered, so every accept, read and write goes on until `WouldBlock`
//! (STYLE.md 12); a connection is registered for writable only while it has output queued. The
//! clock is read once per turn. Every connection's and session's next deadline sits in one
//! hierarchical timing wheel (insert and cancel in O(1)), and the loop sleeps until the first.
//!
//! A turn: read what is ready and hand each session's frames to the [`Hub`] (what a session
//! answers by itself, a Data echo or a Pong, is written as soon as its read is done); run the
//! timers that are due (the sessions' and the hub's); then hand the hub's output to the sessions
//! it is for and write each touched connection's output once (a fan-out to a subscriber costs one
//! write per turn, not one per message).

use crate::id_map::IdMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use framewire_protocol::session::{Instant, SessionConfig};
use framewire_protocol::wire::Reason;
use log::{error, info, warn};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::ServerConfig;
use crate::connection::{Connection, End, Readable};
use crate::hub::{ClientId, Transport};
use crate::shared::{Inbound, Shared};
use crate::timer_wheel::{TimerHandle, TimerWheel};
use crate::udp::{Next, UdpService};
use crate::web::http_connection::HttpConnection;

/// The connections of the HTTP listener: their turns, and their upgrade to WebSocket sessions.
#[path = "event_loop_http.rs"]
mod http;

/// Taking connections at the listeners: limits, refusals, TLS, and which kind each becomes.
#[path = "event_loop_accept.rs"]
mod accept;

/// Publishes the worker delivers itself, without the hub.
#[path = "event_loop_publish.rs"]
mod publish;

const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
const UDP: Token = Token(2);
const SIGNALS: Token = Token(3);
const TLS_LISTENER: Token = Token(4);
const HTTP_LISTENER: Token = Token(5);
const HTTPS_LISTENER: Token = Token(6);
const FIRST_CONNECTION: usize = 7;
/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long a shutdown waits for the Close frames to be written.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// The event loop's read buffer, shared by all its connections (and large enough for any
/// datagram).
const SCRATCH_LEN: usize = 64 * 1024;
/// Bytes read from one connection per loop turn before the others get their turn.
const READ_BUDGET: usize = 4 * SCRATCH_LEN;
/// Datagrams read from the UDP socket per loop turn.
const DATAGRAM_BUDGET: usize = 1024;
/// How often the UDP cookie secret rotates (the endpoint accepts the previous generation too).
const COOKIE_ROTATION: Duration = Duration::from_secs(10);

/// A worker's listening sockets.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    /// Plain TCP; `None` when the server serves none.
    pub(crate) tcp: Option<TcpListener>,
    /// TLS; `None` when the server serves none.
    pub(crate) tls: Option<TcpListener>,
    /// HTTP (WebSocket, metrics); `None` when the server serves none.
    pub(crate) http: Option<TcpListener>,
    /// HTTP over TLS; `None` when the server serves none.
    pub(crate) https: Option<TcpListener>,
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Door {
    Plain,
    Tls,
    Http,
    Https,
}

impl Door {
    /// Whether what comes in is HTTP (and may become a WebSocket session).
    fn is_web(self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }
}

/// What a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKey {
    RetryAccept(Door),
    RotateCookieSecret,
    Hub,
    Tcp(Token),
    Http(Token),
    Udp(u64),
}

/// One worker: a poller, its share of the listening sockets, and the sessions it owns.
#[derive(Debug)]
pub(crate) struct Worker {
    index: usize,
    poll: Poll,
    listeners: Listeners,
    config: ServerConfig,
    /// Shared by every TCP session.
    session_config: Arc<SessionConfig>,
    /// Boxed: a session is several hundred bytes, and a map of 10,000 grows to 16,384 slots.
    connections: IdMap<Token, Box<Connection>>,
    /// Connections at the HTTP listener not (yet) upgraded to WebSocket sessions.
    http: IdMap<Token, Box<HttpConnection>>,
    /// The sessions HTTP requests hold while the hub answers them (docs/PROTOCOL.md section
    /// 11.4), by the token their `ClientId` carries: the HTTP connection each belongs to.
    exchanges: IdMap<usize, Token>,
    /// HTTP connections whose exchange has news from the hub (or a timeout) to settle this turn.
    dirty_http: Vec<Token>,
    udp: Option<UdpService>,
    /// Every deadline: each connection's, each UDP session's, the hub's first, and the loop's own.
    /// Each owner keeps the handle of its timer.
    timers: TimerWheel<TimerKey>,
    hub_timer: Option<TimerHandle>,
    accept_timer: Option<TimerHandle>,
    tls_accept_timer: Option<TimerHandle>,
    http_accept_timer: Option<TimerHandle>,
    https_accept_timer: Option<TimerHandle>,
    rotate_timer: Option<TimerHandle>,
    /// Connections with output to write at the end of this turn.
    dirty_tcp: Vec<Token>,
    /// UDP sessions to transmit for and reschedule at the end of this turn.
    dirty_udp: Vec<u64>,
    /// Connections whose read budget ran out: read again next turn without waiting.
    read_again: Vec<Token>,
    /// HTTP connections that stopped reading with bytes perhaps left in the socket (a request
    /// handed to the hub, or upgraded, in the middle of a full read): read again without waiting,
    /// since an edge-triggered poller says nothing more of bytes already there.
    http_read_again: Vec<Token>,
    /// The UDP socket's read budget ran out: read again next turn without waiting.
    udp_read_again: bool,
    next_seq: usize,
    shared: Arc<Shared>,
    /// Frames and datagrams for this worker's sessions, taken from the hub each turn.
    local: Vec<Inbound>,
    /// Frames for other workers' sessions, one list per worker, before they go to the inboxes.
    staged: Vec<Vec<Inbound>>,
    signals: Option<SignalSource>,
    /// Set while accepting is paused for want of file descriptors (logged once per episode).
    out_of_descriptors: bool,
    /// Data frames the TCP sessions echoed this turn: counted in the hub's statistics under the
    /// lock the turn's dispatch takes anyway.
    echoed: u64,
    /// Connections whose reads this turn gave their sessions frames for the hub: served under
    /// the lock the turn's dispatch takes, not one lock per read.
    to_serve: Vec<Token>,
    /// The same for UDP sessions.
    to_serve_udp: Vec<u64>,
    /// Where the sessions' Publishes go when the worker delivers them itself.
    local_routes: publish::LocalRoutes,
}

/// The registered SIGINT/SIGTERM handlers (a wrapper, for a `Debug` the crate does not provide).
struct SignalSource(Signals);

impl std::fmt::Debug for SignalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalSource(SIGINT, SIGTERM)")
    }
}

impl Worker {
    /// A worker over its own sockets, registered with its own poller (whose waker `shared` holds).
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        mut listeners: Listeners,
        udp: Option<UdpSocket>,
        config: &ServerConfig,
        shared: Arc<Shared>,
    ) -> io::Result<Self> {
        if let Some(listener) = listeners.tcp.as_mut() {
            poll.registry()
                .register(listener, LISTENER, Interest::READABLE)?;
        }
        if let Some(listener) = listeners.tls.as_mut() {
            poll.registry()
                .register(listener, TLS_LISTENER, Interest::READABLE)?;
        }
        if let Some(listener) = listeners.http.as_mut() {
            poll.registry()
                .register(listener, HTTP_LISTENER, Interest::READABLE)?;
        }
        if let Some(listener) = listeners.https.as_mut() {
            poll.registry()
                .register(listener, HTTPS_LISTENER, Interest::READABLE)?;
        }
        let mut session_config = config.session_config();
        // A packet capture records sealed UDP sessions as the plain datagrams they carried.
        session_config.tap_plaintext = shared.capturing();
        let udp = match udp {
            Some(mut socket) => {
                poll.registry()
                    .register(&mut socket, UDP, Interest::READABLE)?;
                Some(UdpService::new(
                    socket,
                    session_config.clone(),
                    shared.workers() as u64,
                    index as u64,
                    config.udp_offload,
                )?)
            }
            None => None,
        };
        let mut worker = Self {
            index,
            poll,
            listeners,
            config: config.clone(),
            session_config: Arc::new(session_config),
            connections: IdMap::default(),
            http: IdMap::default(),
            exchanges: IdMap::default(),
            dirty_http: Vec::new(),
            udp,
            timers: TimerWheel::default(),
            hub_timer: None,
            accept_timer: None,
            tls_accept_timer: None,
            http_accept_timer: None,
            https_accept_timer: None,
            rotate_timer: None,
            dirty_tcp: Vec::new(),
            dirty_udp: Vec::new(),
            read_again: Vec::new(),
            http_read_again: Vec::new(),
            udp_read_again: false,
            next_seq: FIRST_CONNECTION,
            staged: (0..shared.workers()).map(|_| Vec::new()).collect(),
            local: Vec::new(),
            shared,
            signals: None,
            out_of_descriptors: false,
            echoed: 0,
            to_serve: Vec::new(),
            to_serve_udp: Vec::new(),
            local_routes: publish::LocalRoutes::default(),
        };
        if worker.udp.is_some() {
            let first = worker.now() + COOKIE_ROTATION;
            worker.schedule(TimerKey::RotateCookieSecret, Some(first));
        }
        Ok(worker)
    }

    /// Shuts the server down gracefully on SIGINT or SIGTERM (see [`crate::Server::handle_signals`]).
    pub(crate) fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(SignalSource(signals));
        Ok(())
    }

    fn on_signals(&mut self) {
        if let Some(SignalSource(signals)) = self.signals.as_mut() {
            for signal in signals.pending() {
                if signal == SIGHUP {
                    reload(&self.config, &self.shared);
                } else {
                    info!("signal {signal}: shutting down");
                    self.shared.stop_all();
                }
            }
        }
    }

    /// Sets (or, with `None`, cancels) the timer of `key`, whose handle its owner keeps.
    fn schedule(&mut self, key: TimerKey, deadline: Option<Instant>) {
        let slot = match key {
            TimerKey::Tcp(token) => match self.connections.get_mut(&token) {
                Some(conn) => conn.timer_mut(),
                None => return,
            },
            TimerKey::Http(token) => match self.http.get_mut(&token) {
                Some(conn) => conn.timer_mut(),
                None => return,
            },
            TimerKey::Udp(id) => match self.udp.as_mut().and_then(|u| u.timer_mut(id)) {
                Some(slot) => slot,
                None => return,
            },
            TimerKey::Hub => &mut self.hub_timer,
            TimerKey::RetryAccept(Door::Plain) => &mut self.accept_timer,
            TimerKey::RetryAccept(Door::Tls) => &mut self.tls_accept_timer,
            TimerKey::RetryAccept(Door::Http) => &mut self.http_accept_timer,
            TimerKey::RetryAccept(Door::Https) => &mut self.https_accept_timer,
            TimerKey::RotateCookieSecret => &mut self.rotate_timer,
        };
        self.timers.reset(slot, key, deadline);
    }

    /// The protocol clock: time since the server started.
    fn now(&self) -> Instant {
        let since = self.shared.epoch.elapsed();
        Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    /// How long the poll may sleep: until the first deadline, or for ever when there is none.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Serves until the server stops (see [`crate::ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// The poller failed.
    pub(crate) fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; SCRATCH_LEN];
        while !self.shared.stopping() {
            let timeout = if self.read_again.is_empty()
                && self.http_read_again.is_empty()
                && !self.udp_read_again
            {
                self.poll_timeout(self.now())
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.now();
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(now, Door::Plain),
                    TLS_LISTENER => self.accept(now, Door::Tls),
                    HTTP_LISTENER => self.accept(now, Door::Http),
                    HTTPS_LISTENER => self.accept(now, Door::Https),
                    WAKER => {}
                    SIGNALS => self.on_signals(),
                    UDP => self.udp_readable(now, &mut scratch),
                    token if self.http.contains_key(&token) => {
                        self.http_event(now, token, &mut scratch);
                    }
                    token => {
                        if event.is_read_closed()
                            && let Some(conn) = self.connections.get_mut(&token)
                        {
                            conn.note_read_closed();
                        }
                        if event.is_readable() || event.is_read_closed() {
                            self.tcp_readable(now, token, &mut scratch);
                        } else {
                            self.mark_dirty(token);
                        }
                    }
                }
            }
            for token in std::mem::take(&mut self.read_again) {
                self.tcp_readable(now, token, &mut scratch);
            }
            for token in std::mem::take(&mut self.http_read_again) {
                self.http_event(now, token, &mut scratch);
            }
            if std::mem::take(&mut self.udp_read_again) {
                self.udp_readable(now, &mut scratch);
            }
            self.run_timers(now);
            self.take_from_cluster(now);
            self.dispatch(now);
            // The capture file stays readable while the server runs: what a turn saw is written.
            self.shared.flush_capture();
        }
        self.close_all();
        self.shared.flush_capture();
        Ok(())
    }

    /// Reads from a connection (within its budget). What its session answered by itself is
    /// written at once; the hub's answers at the end of the turn.
    fn tcp_readable(&mut self, now: Instant, token: Token, scratch: &mut [u8]) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let readable = conn.on_readable(
            now,
            scratch,
            READ_BUDGET,
            &self.shared,
            ClientId::Tcp(token.0),
        );
        self.echoed += conn.take_echoed();
        if let Readable::Ended(end) = readable {
            // What it read before it ended reaches the hub before its end does.
            if conn.has_hub_events() {
                conn.serve(
                    now,
                    &mut self.shared.hub(),
                    &self.shared.counters,
                    ClientId::Tcp(token.0),
                );
            }
            return self.settle(now, token, Some(end));
        }
        conn.write_early(&self.shared);
        if conn.has_hub_events() {
            self.publish_locally(now, token);
        }
        if self
            .connections
            .get(&token)
            .is_some_and(|c| c.has_hub_events())
        {
            self.to_serve.push(token);
        }
        if readable == Readable::MoreLeft {
            self.read_again.push(token);
        }
        self.mark_dirty(token);
    }

    /// Publishes here what other nodes of the cluster published (whichever worker looks first
    /// takes it all; the bridge wakes the first). The inbox is emptied with the hub held, so two
    /// workers cannot publish two batches out of their order.
    fn take_from_cluster(&mut self, now: Instant) {
        if !self.shared.cluster_inbox.has_pending() {
            return;
        }
        let mut hub = self.shared.hub();
        let Some(remotes) = self.shared.cluster_inbox.take() else {
            return;
        };
        self.shared
            .counters
            .cluster
            .count_received(remotes.len() as u64);
        for remote in remotes {
            hub.from_cluster(now, remote);
        }
    }

    /// Puts a connection on the list to write at the end of this turn (once).
    fn mark_dirty(&mut self, token: Token) {
        if let Some(conn) = self.connections.get_mut(&token)
            && conn.mark_dirty()
        {
            self.dirty_tcp.push(token);
        }
    }

    /// Puts a UDP session on the list to transmit for at the end of this turn (once).
    fn mark_udp_dirty(&mut self, id: u64) {
        if self.udp.as_mut().is_some_and(|u| u.mark_dirty(id)) {
            self.dirty_udp.push(id);
        }
    }

    fn udp_readable(&mut self, now: Instant, scratch: &mut [u8]) {
        let Some(udp) = self.udp.as_mut() else {
            return;
        };
        let (touched, more) = udp.on_readable(now, scratch, DATAGRAM_BUDGET, &self.shared);
        for id in touched {
            self.to_serve_udp.push(id);
            self.mark_udp_dirty(id);
        }
        self.udp_read_again = more;
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Tcp(token) => {
                    if let Some(conn) = self.connections.get_mut(&token) {
                        conn.on_timeout(now, &self.shared, ClientId::Tcp(token.0));
                        self.mark_dirty(token);
                    }
                }
                TimerKey::Http(token) => self.http_timeout(now, token),
                TimerKey::Udp(id) => {
                    if let Some(udp) = self.udp.as_mut() {
                        udp.on_timeout(id, now, &self.shared);
                        self.mark_udp_dirty(id);
                    }
                }
                TimerKey::Hub => self.shared.hub().handle_timeout(now),
                TimerKey::RetryAccept(door) => self.accept(now, door),
                TimerKey::RotateCookieSecret => {
                    if let Some(udp) = self.udp.as_mut()
                        && let Err(e) = udp.rotate_secret()
                    {
                        error!("cannot rotate the cookie secret: {e}");
                    }
                    self.schedule(key, Some(now + COOKIE_ROTATION));
                }
            }
        }
    }

    /// Hands the hub's output to the sessions it is for, then writes each touched connection's
    /// output once and brings its interest and timer up to date. A connection that ends on the
    /// way tells the hub, which may have more output (a `RESPONDER_GONE`, a redelivery): the loop
    /// goes on until there is none.
    fn dispatch(&mut self, now: Instant) {
        loop {
            {
                let mut hub = self.shared.hub();
                // The frames this turn's reads gave the sessions, in the order they were read.
                for token in self.to_serve.drain(..) {
                    if let Some(conn) = self.connections.get_mut(&token) {
                        conn.serve(now, &mut hub, &self.shared.counters, ClientId::Tcp(token.0));
                    }
                }
                if let Some(udp) = self.udp.as_mut() {
                    for id in self.to_serve_udp.drain(..) {
                        udp.serve(id, now, &mut hub, &self.shared.counters);
                    }
                }
                hub.count_echoed(Transport::Tcp, std::mem::take(&mut self.echoed));
                self.local_routes
                    .settle(&mut hub, &self.connections, self.udp.as_ref());
                let to_cluster = hub.take_cluster_output();
                if !to_cluster.is_empty() {
                    self.shared.tell_cluster(to_cluster);
                }
                self.shared
                    .route(&mut hub, self.index, &mut self.local, &mut self.staged);
            }
            let mut local = std::mem::take(&mut self.local);
            for item in local.drain(..) {
                match item {
                    Inbound::Deliver(to, delivery) => self.deliver(now, to, delivery),
                    Inbound::Datagram(from, datagram) => {
                        if let Some(udp) = self.udp.as_mut()
                            && let Some(id) =
                                udp.handle_forwarded(now, from, datagram, &self.shared)
                        {
                            self.mark_udp_dirty(id);
                        }
                    }
                }
            }
            // Keep the buffer's capacity for the next turn.
            self.local = local;
            if self.dirty_tcp.is_empty() && self.dirty_udp.is_empty() && self.dirty_http.is_empty()
            {
                break;
            }
            for token in std::mem::take(&mut self.dirty_http) {
                self.settle_exchange(now, token);
            }
            for token in std::mem::take(&mut self.dirty_tcp) {
                let end = self
                    .connections
                    .get_mut(&token)
                    .and_then(|c| c.flush(&self.shared));
                self.settle(now, token, end);
            }
            for id in std::mem::take(&mut self.dirty_udp) {
                let Some(udp) = self.udp.as_mut() else {
                    break;
                };
                udp.transmit(id, now, &self.shared);
                match udp.next(id) {
                    Next::At(deadline) => self.schedule(TimerKey::Udp(id), Some(deadline)),
                    Next::Ended { clean, timer } => {
                        if let Some(h) = timer {
                            self.timers.cancel(h);
                        }
                        self.shared.close_udp_session();
                        self.shared
                            .hub()
                            .session_ended(now, ClientId::Udp(id), clean);
                    }
                    Next::Gone => {}
                }
            }
        }
        let hub_deadline = self.shared.hub().poll_timeout();
        self.schedule(TimerKey::Hub, hub_deadline);
    }

    /// Hands a frame from the hub to one of this worker's sessions.
    fn deliver(&mut self, now: Instant, to: ClientId, delivery: crate::hub::Delivery) {
        match to {
            ClientId::Tcp(t) => {
                let token = Token(t);
                if let Some(conn) = self.connections.get_mut(&token) {
                    conn.deliver(now, &delivery, &self.shared, to);
                    self.mark_dirty(token);
                } else if let Some(&http) = self.exchanges.get(&t) {
                    self.deliver_to_exchange(http, to, &delivery);
                }
            }
            ClientId::Udp(id) => {
                if let Some(udp) = self.udp.as_mut() {
                    udp.deliver(id, now, delivery, &self.shared);
                    self.mark_udp_dirty(id);
                }
            }
        }
    }

    /// Removes a connection that ended, or brings its interest and its timer up to date.
    fn settle(&mut self, now: Instant, token: Token, end: Option<End>) {
        self.schedule(TimerKey::Tcp(token), None);
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if let Some(end) = end {
            let peer = conn.peer();
            match end {
                End::PeerClosed => info!("{peer}: closed by the peer"),
                End::SessionOver => info!("{peer}: connection closed"),
                End::Failed(kind) => info!("{peer}: socket error: {kind}"),
                End::Tls(why) => info!("{peer}: TLS: {why}"),
            }
            self.local_routes.forget(token);
            if let Some(mut conn) = self.connections.remove(&token) {
                let _ = self.poll.registry().deregister(conn.stream_mut());
                self.shared.close_connection(conn.peer().ip());
                self.shared.capture(|c| c.tcp_close(conn.peer()));
                if conn.is_open_in_hub() {
                    let clean = conn.ended_cleanly();
                    self.shared
                        .hub()
                        .session_ended(now, ClientId::Tcp(token.0), clean);
                }
            }
            return;
        }
        if let Some(writable) = conn.interest_change() {
            let peer = conn.peer();
            reregister(&self.poll, conn.stream_mut(), token, writable, peer);
        }
        let deadline = conn.deadline();
        self.schedule(TimerKey::Tcp(token), deadline);
    }

    /// Stops accepting, sends every session a Close (`GOING_AWAY`), and keeps writing until every
    /// Close is out or [`SHUTDOWN_FLUSH`] has passed.
    fn close_all(&mut self) {
        for listener in [
            self.listeners.tcp.as_mut(),
            self.listeners.tls.as_mut(),
            self.listeners.http.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(listener);
        }
        // An HTTP connection owes nothing but the response it may be writing: it is dropped.
        let http: Vec<Token> = self.http.keys().copied().collect();
        for token in http {
            self.settle_http(token, Some(End::SessionOver));
        }
        let now = self.now();
        let count = self.connections.len();
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            let end = self.connections.get_mut(&token).and_then(|conn| {
                conn.close(now, Reason::GOING_AWAY, "server shutting down");
                conn.flush(&self.shared)
                    .or_else(|| conn.going_away(&self.shared))
            });
            self.settle(now, token, end);
        }
        if let Some(udp) = self.udp.as_mut() {
            udp.close_all(now, &self.shared);
        }
        let deadline = std::time::Instant::now() + SHUTDOWN_FLUSH;
        let mut events = Events::with_capacity(1024);
        while self.connections.values().any(|conn| conn.wants_write()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.poll.poll(&mut events, Some(left)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            for event in &events {
                let token = event.token();
                if let Some(conn) = self.connections.get_mut(&token) {
                    let end = conn.flush(&self.shared);
                    self.settle(now, token, end);
                }
            }
        }
        for conn in self.connections.values() {
            if conn.wants_write() {
                warn!("{}: shutdown Close not fully written in time", conn.peer());
            }
        }
        self.connections.clear();
        self.timers = TimerWheel::default();
        info!("shut down; closed {count} connections");
    }
}

/// SIGHUP: reads the TLS certificate and key and the connect-token key again. Connections and
/// sessions already up keep what they started with; what cannot be read is logged, and the old
/// material stays in use.
fn reload(config: &ServerConfig, shared: &Shared) {
    if let Some(tls) = shared.tls.as_ref() {
        match tls.reload() {
            Ok(()) => info!("SIGHUP: TLS certificate and key read again"),
            Err(e) => error!("SIGHUP: TLS certificate and key kept as they were: {e}"),
        }
    }
    match crate::server::load_auth(config) {
        Ok(auth) => {
            shared.hub().reconfigure_auth(auth);
            info!("SIGHUP: connect-token key read again");
        }
        Err(e) => error!("SIGHUP: connect-token key kept as it was: {e}"),
    }
}

/// Registers a connection for readability, and for writability too while it has output waiting.
fn reregister(
    poll: &Poll,
    stream: &mut mio::net::TcpStream,
    token: Token,
    writable: bool,
    peer: SocketAddr,
) {
    let interest = if writable {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    if let Err(e) = poll.registry().reregister(stream, token, interest) {
        warn!("{peer}: cannot reregister: {e}");
    }
}
