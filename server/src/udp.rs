//! Serving UDP: one socket, the protocol's stateless handshake [`Endpoint`], and a datagram
//! [`Session`] per connection id.
//!
//! The socket is read until `WouldBlock`. Each datagram goes through the endpoint, which answers
//! handshakes without keeping state and routes everything else by connection id; a session's
//! frames go to the hub, and what it has to send goes out once per loop turn. A datagram the
//! socket will not take now is dropped: the session resends what must arrive.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use framewire_client::udp_io::{self, Received, RecvBatch};
use framewire_protocol::seal::{check_sealed_compact, is_sealed};
use framewire_protocol::session::{
    Closer, Endpoint, EndpointConfig, Event, Instant, Outcome, Refusal, SendError, Session,
    SessionConfig, Stats,
};
use framewire_protocol::wire::compact::check_compact;
use framewire_protocol::wire::{Hello, PacketView, Reason, Text, is_compact, peek_connection_id};
use log::{debug, info, warn};
use mio::net::UdpSocket;

use crate::capture::Way;
use crate::config::UdpOffload;
use crate::counters::Counters;
use crate::hub::{ClientId, Delivery, Hub, Transport, oversized_answer};
use crate::id_map::IdMap;
use crate::shared::{Inbound, Shared};
use crate::timer_wheel::TimerHandle;
use crate::udp_send::UdpOutput;

/// Fresh random bytes from the operating system.
///
/// # Errors
/// The operating system's random source failed.
pub(crate) fn random_key() -> io::Result<[u8; 16]> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(key)
}

/// Where a session stands after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Live: its next deadline.
    At(Instant),
    /// It ended now and is forgotten; `clean`: the client closed it with reason NORMAL; `timer`:
    /// its timer, to cancel.
    Ended {
        clean: bool,
        timer: Option<TimerHandle>,
    },
    /// No such session (it ended before).
    Gone,
}

/// A datagram session and how it ended.
#[derive(Debug)]
struct Peer {
    session: Session,
    /// The client closed the session with reason NORMAL.
    clean_close: bool,
    /// The handle of this session's timer in the loop's wheel.
    timer: Option<TimerHandle>,
    /// What of the session's counts the server's counters already hold.
    counted: Counted,
    /// In the loop's list of sessions to transmit for this turn.
    dirty: bool,
}

/// A session's refusals, reassembly expiries and bad datagrams already added to the server's
/// counters: each turn adds only what is new.
#[derive(Debug, Default)]
struct Counted {
    refused: u64,
    reassembly_expired: u64,
    bad_datagrams: u64,
    sealed_forged: u64,
    sealed_replayed: u64,
}

impl Counted {
    fn add_new(&mut self, stats: &Stats, counters: &Counters) {
        counters.count_udp_refusals(
            stats.refused.saturating_sub(self.refused),
            stats
                .reassembly_expired
                .saturating_sub(self.reassembly_expired),
        );
        counters.count_udp_dropped(stats.bad_datagrams.saturating_sub(self.bad_datagrams));
        self.refused = stats.refused;
        self.reassembly_expired = stats.reassembly_expired;
        self.bad_datagrams = stats.bad_datagrams;
        counters.count_sealed_drops(
            stats.sealed_forged.saturating_sub(self.sealed_forged),
            stats.sealed_replayed.saturating_sub(self.sealed_replayed),
        );
        self.sealed_forged = stats.sealed_forged;
        self.sealed_replayed = stats.sealed_replayed;
    }
}

#[derive(Debug)]
pub(crate) struct UdpService {
    socket: UdpSocket,
    endpoint: Endpoint,
    sessions: IdMap<u64, Peer>,
    sender: UdpOutput,
    /// This worker's index among `workers`: the lane of the connection ids it gives out.
    lane: u64,
    workers: u64,
    /// Buffers to receive many datagrams per system call; `None`: one per call.
    batch: Option<Box<RecvBatch>>,
}

impl UdpService {
    /// The UDP side of worker `lane` of `workers`.
    pub(crate) fn new(
        socket: UdpSocket,
        session: SessionConfig,
        workers: u64,
        lane: u64,
        offload: UdpOffload,
    ) -> io::Result<Self> {
        let config = EndpointConfig {
            session,
            id_lanes: workers.max(1),
            id_lane: lane,
            ..EndpointConfig::default()
        };
        let local = socket.local_addr()?;
        if offload.segment_receive
            && let Err(e) = udp_io::enable_coalesced_receive(&socket)
        {
            info!("udp receive coalescing refused ({e}); one datagram per read");
        }
        Ok(Self {
            socket,
            endpoint: Endpoint::new(config, random_key()?, random_key()?),
            sessions: IdMap::default(),
            sender: UdpOutput::new(local, offload.segment_send),
            lane,
            workers: workers.max(1),
            batch: offload.batch_receive.then(|| Box::new(RecvBatch::new())),
        })
    }

    /// Starts a new cookie generation (the loop calls this once per cookie lifetime).
    pub(crate) fn rotate_secret(&mut self) -> io::Result<()> {
        self.endpoint.rotate_secret(random_key()?);
        Ok(())
    }

    /// Reads datagrams until the socket would block or `budget` have been read (many per system
    /// call where the platform allows: [`RecvBatch`]) into their sessions; returns the sessions
    /// touched (for the loop to serve under its dispatch's lock with [`UdpService::serve`], then
    /// to transmit for and reschedule), each once, and whether datagrams may be left to read.
    pub(crate) fn on_readable(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        budget: usize,
        shared: &Shared,
    ) -> (Vec<u64>, bool) {
        let mut touched = Vec::new();
        let mut read = 0;
        let mut batch = self.batch.take();
        let more = loop {
            if read >= budget {
                break true;
            }
            let result = match batch.as_deref_mut() {
                Some(batch) => batch.recv(&self.socket).map(|n| {
                    for i in 0..n {
                        if let Some(r) = batch.get(i) {
                            read += self.on_read(now, r, shared, &mut touched);
                        }
                    }
                }),
                None => udp_io::recv_coalesced(&self.socket, scratch)
                    .map(|r| read += self.on_read(now, r, shared, &mut touched)),
            };
            if let Err(e) = result {
                match e.kind() {
                    io::ErrorKind::WouldBlock => break false,
                    // Interrupted, or one read dropped (larger than the buffer, or from an
                    // address that is not IP): read on.
                    io::ErrorKind::Interrupted | io::ErrorKind::InvalidData => {}
                    _ => {
                        warn!("udp receive failed: {e}");
                        break false;
                    }
                }
            }
        };
        self.batch = batch;
        touched.sort_unstable();
        touched.dedup();
        (touched, more)
    }

    /// One read: a datagram, or several of one size from one sender where the kernel coalesced
    /// them; returns how many.
    fn on_read(
        &mut self,
        now: Instant,
        read: Received<'_>,
        shared: &Shared,
        touched: &mut Vec<u64>,
    ) -> usize {
        let mut count = 0;
        for datagram in read.datagrams() {
            count += 1;
            self.on_datagram(now, read.from, datagram, shared, touched);
        }
        count
    }

    /// One datagram: a handshake for the endpoint, or a session's (this worker's, or another's
    /// to hand over).
    fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        shared: &Shared,
        touched: &mut Vec<u64>,
    ) {
        let local = self.sender.local();
        if !is_sealed(datagram) {
            // A sealed session's datagrams are captured as they open (`capture_plaintext`).
            shared.capture(|c| c.udp(from, local, Way::In, datagram));
        }
        let handshake = peek_connection_id(datagram) == Ok(0);
        if handshake && !shared.allow_handshake(from.ip(), now) {
            // Past the address's handshake rate: no answer, and nothing kept.
            debug!("{from}: handshake rate exceeded");
            return;
        }
        let mut admitted = None;
        let admit = |hello: &Hello, id: u64| {
            if !shared.open_udp_session() {
                // Told only to an address that proved itself with a cookie, in a Reject
                // smaller than its Hello.
                info!("{from}: udp session refused: the session limit is reached");
                shared.counters.count_session_limit();
                return Err(Refusal {
                    silent: false,
                    reason: Reason::SESSION_LIMIT,
                    message: Text::from_static("session limit"),
                });
            }
            if shared.require_encryption && !carries_keys(hello) {
                shared.close_udp_session();
                info!("{from}: udp session refused: not sealed, and this server requires it");
                return Err(Refusal {
                    silent: false,
                    reason: Reason::AUTH_FAILED,
                    message: Text::from_static(
                        "this server requires sealed sessions: a connect token with keys",
                    ),
                });
            }
            let admission = shared.hub().admit(now, ClientId::Udp(id), hello, from.ip());
            if admission.is_ok() {
                admitted = Some(id);
            } else {
                shared.close_udp_session();
            }
            admission
        };
        let outcome = self
            .endpoint
            .handle_with(now, from, datagram, self.sender.scratch(), admit);
        if let Some(id) = admitted
            && !matches!(outcome, Outcome::Accept { .. })
        {
            // Admitted, but no session came of it (its Welcome could not be written).
            shared.close_udp_session();
            shared.hub().session_ended(now, ClientId::Udp(id), true);
        }
        match outcome {
            Outcome::Reply(n) => self.sender.send_scratch(&self.socket, n, from, shared),
            Outcome::Accept { session, reply } => {
                let id = session.connection_id();
                info!(
                    "{from}: udp session {id} established{}",
                    if session.is_sealed() { " (sealed)" } else { "" }
                );
                self.sender.send_scratch(&self.socket, reply, from, shared);
                let mut session = *session;
                capture_plaintext(&mut session, local, shared);
                self.sessions.insert(
                    id,
                    Peer {
                        session,
                        clean_close: false,
                        timer: None,
                        counted: Counted::default(),
                        dirty: false,
                    },
                );
                touched.push(id);
            }
            Outcome::Route(id) => {
                if let Some(Peer { session, .. }) = self.sessions.get_mut(&id) {
                    session.handle_datagram(now, from, Bytes::copy_from_slice(datagram));
                    capture_plaintext(session, local, shared);
                    touched.push(id);
                } else if id % self.workers != self.lane {
                    // Another worker's session, whose client moved to an address the kernel
                    // hashes here: hand the datagram over.
                    let owner = (id % self.workers) as usize;
                    let bytes = Bytes::copy_from_slice(datagram);
                    shared.push(owner, vec![Inbound::Datagram(from, bytes)]);
                } else {
                    self.reset_unknown(now, from, id, datagram, shared);
                }
            }
            Outcome::Discover { nonce } => {
                self.answer_discover(now, from, nonce, datagram.len(), shared);
            }
            Outcome::Drop(reason) => {
                debug!("{from}: datagram dropped: {reason:?}");
                shared.counters.count_udp_dropped(1);
            }
        }
    }

    /// A LAN discovery request of `received` bytes: answered when discovery is on and its
    /// limits allow (docs/PROTOCOL.md section 4.12).
    fn answer_discover(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        received: usize,
        shared: &Shared,
    ) {
        let n = shared.discovery_answer(now, from, nonce, received, self.sender.scratch());
        if let Some(n) = n {
            debug!("{from}: discovery request answered");
            self.sender.send_scratch(&self.socket, n, from, shared);
        }
    }

    /// A datagram naming session `id`, which this server does not have (it restarted, or ended
    /// it): one that fails its checks is dropped and counted; one that verifies gets a Reset that
    /// tells its client at once, within the address's handshake rate and never larger than what
    /// came.
    fn reset_unknown(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: u64,
        datagram: &[u8],
        shared: &Shared,
    ) {
        let verifies = if is_compact(datagram) {
            check_compact(datagram).is_ok() || check_sealed_compact(datagram).is_ok()
        } else {
            PacketView::new_checked_or_sealed(datagram).is_ok()
        };
        if !verifies {
            shared.counters.count_udp_dropped(1);
            return;
        }
        if shared.allow_handshake(from.ip(), now)
            && let Some(n) = Endpoint::reset(datagram, self.sender.scratch())
        {
            debug!("{from}: udp session {id} unknown: reset");
            self.sender.send_scratch(&self.socket, n, from, shared);
        }
    }

    /// A datagram of one of this worker's sessions that arrived at another worker's socket;
    /// returns the session, to transmit for and reschedule.
    pub(crate) fn handle_forwarded(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: Bytes,
        shared: &Shared,
    ) -> Option<u64> {
        let id = peek_connection_id(&datagram).ok()?;
        let Peer { session, .. } = self.sessions.get_mut(&id)?;
        // Served now, its answers routed only on the loop's next round: Data must not be echoed
        // ahead of them, nor of those of the frames before it.
        session.hold_echo();
        session.handle_datagram(now, from, datagram);
        capture_plaintext(session, self.sender.local(), shared);
        self.serve(id, now, &mut shared.hub(), &shared.counters);
        Some(id)
    }

    /// Runs a session's timers.
    pub(crate) fn on_timeout(&mut self, id: u64, now: Instant, shared: &Shared) {
        let Some(Peer { session, .. }) = self.sessions.get_mut(&id) else {
            return;
        };
        session.handle_timeout(now);
        if session.has_events() {
            self.serve(id, now, &mut shared.hub(), &shared.counters);
        }
    }

    /// Whether a session must join the loop's list of sessions to transmit for this turn: once
    /// per turn, however many messages it was given (so the list needs no sorting to be unique).
    pub(crate) fn mark_dirty(&mut self, id: u64) -> bool {
        self.sessions
            .get_mut(&id)
            .is_some_and(|p| !std::mem::replace(&mut p.dirty, true))
    }

    /// Whether session `id` is this worker's.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Where the loop keeps a session's timer handle.
    pub(crate) fn timer_mut(&mut self, id: u64) -> Option<&mut Option<TimerHandle>> {
        self.sessions.get_mut(&id).map(|p| &mut p.timer)
    }

    /// Where a session stands after a turn.
    pub(crate) fn next(&mut self, id: u64) -> Next {
        let Some(peer) = self.sessions.get(&id) else {
            return Next::Gone;
        };
        if let Some(deadline) = peer.session.poll_timeout() {
            Next::At(deadline)
        } else {
            let (clean, timer) = (peer.clean_close, peer.timer);
            self.sessions.remove(&id);
            Next::Ended { clean, timer }
        }
    }

    /// Queues a frame from the hub. A session whose reliable queue is full is closed as a slow
    /// consumer.
    pub(crate) fn deliver(&mut self, id: u64, now: Instant, delivery: Delivery, shared: &Shared) {
        let Some(Peer { session, .. }) = self.sessions.get_mut(&id) else {
            return;
        };
        let me = ClientId::Udp(id);
        let answering = delivery.answering();
        let sent = match delivery {
            Delivery::Frame(frame) => session.send(frame),
            Delivery::Shared(frame) => session.send_shared(&frame),
            Delivery::Close(reason, why) => {
                info!("udp session {id}: closing: {why}");
                session.close(now, reason, why);
                return;
            }
        };
        match sent {
            Ok(()) => {}
            Err(SendError::Closed) => shared.hub().count_dropped(me, 1),
            Err(SendError::TooLarge { len, max }) => {
                debug!("udp session {id}: a frame of {len} B is above its limit {max}");
                match answering {
                    Some(a) => {
                        let _ = session.send(a.too_large(len, max));
                    }
                    None => shared.hub().count_dropped(me, 1),
                }
            }
            Err(SendError::QueueFull) => {
                info!("udp session {id}: send queue full; closing a peer that does not keep up");
                let mut hub = shared.hub();
                hub.count_dropped(me, 1);
                hub.count_slow_consumer(me);
                drop(hub);
                session.close(now, Reason::SLOW_CONSUMER, "send queue full");
            }
            Err(e) => warn!("udp session {id}: cannot send a frame: {e}"),
        }
    }

    /// Hands a session's events to the hub.
    pub(crate) fn serve(&mut self, id: u64, now: Instant, hub: &mut Hub, counters: &Counters) {
        let Some(peer) = self.sessions.get_mut(&id) else {
            return;
        };
        hub.count_echoed(Transport::Udp, peer.session.take_echoed());
        while let Some(event) = peer.session.poll_event() {
            match event {
                Event::Frame(frame) => {
                    let kind = peer.session.channel_kind(frame.channel);
                    hub.handle_frame(now, ClientId::Udp(id), frame, kind);
                }
                Event::Oversized(refused) => {
                    info!("udp session {id}: refused {refused:?}");
                    let _ = peer.session.send(oversized_answer(&refused));
                }
                Event::Closed {
                    reason,
                    message,
                    by,
                } => {
                    info!("udp session {id}: closed by {by:?}: {reason} {message}");
                    peer.clean_close = by == Closer::Peer && reason == Reason::NORMAL;
                    if by == Closer::Local {
                        counters.count_closed(reason);
                    }
                }
                other => debug!("udp session {id}: {other:?}"),
            }
        }
    }

    /// Sends what a session has to send now, and adds what it refused since the last turn to the
    /// server's counters.
    pub(crate) fn transmit(&mut self, id: u64, now: Instant, shared: &Shared) {
        let counters = &shared.counters;
        let Some(Peer {
            session,
            counted,
            dirty,
            ..
        }) = self.sessions.get_mut(&id)
        else {
            return;
        };
        *dirty = false;
        // The hub's answers to the frames it was handed are queued: Data may be echoed again.
        session.resume_echo();
        counted.add_new(&session.stats(), counters);
        self.sender.send_all(session, now, &self.socket, shared);
        capture_plaintext(session, self.sender.local(), shared);
    }

    /// Closes every session with `GOING_AWAY`, sending each its Close once.
    pub(crate) fn close_all(&mut self, now: Instant, shared: &Shared) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(Peer { session, .. }) = self.sessions.get_mut(&id) {
                session.close(now, Reason::GOING_AWAY, "server shutting down");
                self.sender.send_all(session, now, &self.socket, shared);
            }
        }
        self.sessions.clear();
    }
}

/// Whether a Hello's connect token is one that carries keys (version 2): the only kind a sealed
/// session can start from. Whether they open is the hub's to find.
fn carries_keys(hello: &Hello) -> bool {
    hello
        .options
        .auth_token()
        .is_some_and(|t| t.first() == Some(&framewire_protocol::auth::TOKEN_VERSION_SEALED))
}

/// Hands the packet capture what a sealed session opened and sealed since the last call, as the
/// plain datagrams they stand for (`--capture` records what was said; tcpdump sees the seals).
fn capture_plaintext(session: &mut Session, local: SocketAddr, shared: &Shared) {
    if !session.is_sealed() || !shared.capturing() {
        return;
    }
    let peer = session.remote();
    for (received, plain) in session.take_plaintext() {
        let way = if received { Way::In } else { Way::Out };
        shared.capture(|c| c.udp(peer, local, way, &plain));
    }
}
