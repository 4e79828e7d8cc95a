//! What the workers of one server share: the hub, each worker's inbox and waker, the connection
//! limits, and the stop flag.
//!
//! A session belongs to one worker: a TCP connection to the worker that accepted it (its token
//! carries the worker's index), a UDP session to the worker whose endpoint made its connection id
//! (the id's lane). The hub is one, behind a mutex; whichever worker drains its output routes
//! each frame to the inbox of the worker that owns the session, while still holding the hub, so
//! frames reach every session in the order the hub produced them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use framewire_protocol::discovery::{Limiter, Verdict};
use framewire_protocol::wire::{NodeCard, Reason};
use log::error;
use mio::Waker;

use crate::capture::PacketCapture;
use crate::cluster::bridge::Bridge;
use crate::cluster::{ClusterInbox, ClusterOut};
use crate::counters::Counters;
use crate::hub::{ClientId, Delivery, Hub, RouteEpoch};
use crate::tls::TlsTerms;

/// Bits of a TCP token below the worker's index.
const TOKEN_SEQ_BITS: u32 = 48;

/// What one worker receives from the others.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A frame from the hub for one of this worker's sessions.
    Deliver(ClientId, Delivery),
    /// A datagram for one of this worker's UDP sessions that arrived at another worker's socket
    /// (its client's address changed, and the kernel spread it elsewhere).
    Datagram(SocketAddr, Bytes),
}

#[derive(Debug)]
pub(crate) struct WorkerLink {
    inbox: Mutex<Vec<Inbound>>,
    waker: Waker,
}

/// Open connections, counted across workers for the server's limits.
#[derive(Debug, Default)]
struct ConnectionCounts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    hub: Mutex<Hub>,
    /// The hub's route epoch, read by the workers without its lock (`crate::local_publish`).
    pub(crate) routes: RouteEpoch,
    links: Vec<WorkerLink>,
    pub(crate) stop: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    connections: Mutex<ConnectionCounts>,
    max_connections: usize,
    max_connections_per_address: usize,
    udp_sessions: AtomicUsize,
    max_udp_sessions: usize,
    /// Handshakes (TCP accepts, UDP Hellos) per source address: a token bucket each.
    handshakes: Mutex<HashMap<IpAddr, Bucket>>,
    handshakes_per_sec: u32,
    /// Refuse sessions in the clear: plain TCP, and UDP without a token's keys.
    pub(crate) require_encryption: bool,
    /// The protocol clock's zero, the same for every worker.
    pub(crate) epoch: std::time::Instant,
    /// The packet capture (`--capture`), if one is being written.
    capture: Option<Mutex<PacketCapture>>,
    /// What TLS connections are accepted with (`--tls`), if any are.
    pub(crate) tls: Option<TlsTerms>,
    /// Messages from the other nodes of a cluster, for the loops to publish here.
    pub(crate) cluster_inbox: Arc<ClusterInbox>,
    /// The NATS bridge (`--cluster`), while the server runs in a cluster.
    bridge: Mutex<Option<Bridge>>,
    /// What LAN discovery requests are answered with, and how often; `None`: not answered.
    discovery: Option<Discovery>,
}

/// LAN discovery's answers (docs/PROTOCOL.md section 4.12): this node's card, and one limiter
/// for every worker's socket, so that a broadcast heard on each of them is answered once.
#[derive(Debug)]
pub(crate) struct Discovery {
    card: NodeCard,
    limiter: Mutex<Limiter>,
}

impl Discovery {
    pub(crate) fn new(card: NodeCard, rate: u32) -> Self {
        Self {
            card,
            limiter: Mutex::new(Limiter::new(rate)),
        }
    }
}

fn unpoisoned<T>(r: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    // A worker that panicked while holding a lock has ended the server's run; the others shut
    // down on the state as it is rather than panic too.
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The limits the workers enforce together: most connections, per address, UDP sessions, and
/// handshakes per address per second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedLimits {
    pub(crate) connections: usize,
    pub(crate) connections_per_address: usize,
    pub(crate) udp_sessions: usize,
    pub(crate) handshakes_per_address_per_sec: u32,
    pub(crate) require_encryption: bool,
}

/// A token bucket: `tokens` handshakes may start now; it refills at the rate, up to one second's
/// worth.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: framewire_protocol::session::Instant,
}

/// Source addresses whose handshake rate is remembered at most (idle ones are forgotten first).
const MAX_RATE_ENTRIES: usize = 65_536;

impl Shared {
    pub(crate) fn new(
        hub: Hub,
        wakers: Vec<Waker>,
        counters: Arc<Counters>,
        limits: SharedLimits,
        epoch: std::time::Instant,
        capture: Option<PacketCapture>,
        tls: Option<TlsTerms>,
    ) -> Self {
        Self {
            routes: hub.route_epoch(),
            hub: Mutex::new(hub),
            links: wakers
                .into_iter()
                .map(|waker| WorkerLink {
                    inbox: Mutex::new(Vec::new()),
                    waker,
                })
                .collect(),
            stop: AtomicBool::new(false),
            counters,
            connections: Mutex::new(ConnectionCounts::default()),
            max_connections: limits.connections,
            max_connections_per_address: limits.connections_per_address,
            udp_sessions: AtomicUsize::new(0),
            max_udp_sessions: limits.udp_sessions,
            handshakes: Mutex::new(HashMap::new()),
            handshakes_per_sec: limits.handshakes_per_address_per_sec,
            require_encryption: limits.require_encryption,
            epoch,
            capture: capture.map(Mutex::new),
            tls,
            cluster_inbox: Arc::default(),
            bridge: Mutex::new(None),
            discovery: None,
        }
    }

    /// The bridge the loops hand the hub's cluster output to from now on.
    pub(crate) fn join_cluster(&self, bridge: Bridge) {
        *unpoisoned(self.bridge.lock()) = Some(bridge);
    }

    /// Stops the bridge (at shutdown): its NATS connection closes, and no more messages come.
    pub(crate) fn leave_cluster(&self) {
        let bridge = unpoisoned(self.bridge.lock()).take();
        drop(bridge);
    }

    /// Hands the hub's cluster output to the bridge (the caller holds the hub: the order is the
    /// hub's).
    pub(crate) fn tell_cluster(&self, out: Vec<ClusterOut>) {
        if let Some(bridge) = unpoisoned(self.bridge.lock()).as_ref() {
            for item in out {
                bridge.send(item);
            }
        }
    }

    /// Whether a packet capture is being written.
    pub(crate) fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Records into the packet capture, if one is being written.
    pub(crate) fn capture(&self, record: impl FnOnce(&mut PacketCapture)) {
        if let Some(capture) = &self.capture {
            record(&mut unpoisoned(capture.lock()));
        }
    }

    /// Writes out what the packet capture has buffered.
    pub(crate) fn flush_capture(&self) {
        self.capture(PacketCapture::flush);
    }

    pub(crate) fn workers(&self) -> usize {
        self.links.len()
    }

    /// The token of connection `seq` of worker `worker`.
    pub(crate) fn tcp_token(worker: usize, seq: usize) -> usize {
        (worker << TOKEN_SEQ_BITS) | seq
    }

    /// The worker that owns a session.
    pub(crate) fn worker_of(&self, client: ClientId) -> usize {
        match client {
            ClientId::Tcp(token) => token >> TOKEN_SEQ_BITS,
            ClientId::Udp(id) => (id % self.links.len() as u64) as usize,
        }
    }

    pub(crate) fn hub(&self) -> MutexGuard<'_, Hub> {
        unpoisoned(self.hub.lock())
    }

    /// Takes what the hub has for sessions, with the caller (worker `me`) holding the hub: first
    /// what other workers left in `me`'s inbox (older, since they routed it under the hub), then
    /// the hub's output, in order, into `local` for `me`'s sessions and into the other workers'
    /// inboxes (waking them) for theirs. So every session receives frames in the hub's order.
    /// `staged` is the caller's scratch, one list per worker.
    pub(crate) fn route(
        &self,
        hub: &mut Hub,
        me: usize,
        local: &mut Vec<Inbound>,
        staged: &mut [Vec<Inbound>],
    ) {
        if let Some(link) = self.links.get(me) {
            local.append(&mut unpoisoned(link.inbox.lock()));
        }
        while let Some(out) = hub.poll_output() {
            let w = self.worker_of(out.to);
            let item = Inbound::Deliver(out.to, out.delivery);
            if w == me {
                local.push(item);
            } else if let Some(s) = staged.get_mut(w) {
                s.push(item);
            }
        }
        for (w, items) in staged.iter_mut().enumerate() {
            if !items.is_empty() {
                self.push_items(w, items, true);
            }
        }
    }

    /// Appends to a worker's inbox and wakes it.
    pub(crate) fn push(&self, worker: usize, mut items: Vec<Inbound>) {
        self.push_items(worker, &mut items, true);
    }

    /// Moves `items` to a worker's inbox (leaving `items` empty, its capacity kept).
    fn push_items(&self, worker: usize, items: &mut Vec<Inbound>, wake: bool) {
        let Some(link) = self.links.get(worker) else {
            return;
        };
        unpoisoned(link.inbox.lock()).append(items);
        if wake && let Err(e) = link.waker.wake() {
            error!("cannot wake worker {worker}: {e}");
        }
    }

    /// Wakes a worker, so that its next turn takes what the hub has for its sessions.
    pub(crate) fn wake(&self, worker: usize) {
        if let Some(link) = self.links.get(worker)
            && let Err(e) = link.waker.wake()
        {
            error!("cannot wake worker {worker}: {e}");
        }
    }

    /// Asks every worker to stop.
    pub(crate) fn stop_all(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for (w, link) in self.links.iter().enumerate() {
            if let Err(e) = link.waker.wake() {
                error!("cannot wake worker {w}: {e}");
            }
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Counts a new connection from `peer`, or says which limit it would break (and counts that).
    pub(crate) fn open_connection(&self, peer: IpAddr) -> Result<(), Reason> {
        let mut c = unpoisoned(self.connections.lock());
        if c.total >= self.max_connections {
            self.counters.count_server_full();
            return Err(Reason::SERVER_FULL);
        }
        let from_peer = c.per_address.get(&peer).copied().unwrap_or(0);
        if from_peer >= self.max_connections_per_address {
            self.counters.count_address_limit();
            return Err(Reason::ADDRESS_LIMIT);
        }
        c.total += 1;
        *c.per_address.entry(peer).or_default() += 1;
        Ok(())
    }

    pub(crate) fn close_connection(&self, peer: IpAddr) {
        let mut c = unpoisoned(self.connections.lock());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_address.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                c.per_address.remove(&peer);
            }
        }
    }

    /// The same, answering LAN discovery requests with `discovery` (`None`: not answering them).
    pub(crate) fn with_discovery(mut self, discovery: Option<Discovery>) -> Self {
        self.discovery = discovery;
        self
    }

    /// The answer to a Discover of `nonce` from `from` that came in `received` bytes, written
    /// into `out`: its length, unless discovery is off, the request was answered already (a
    /// resend, or a broadcast heard on another worker's socket), the server's rate of answers is
    /// spent, or the request is too small for the name. Counted either way.
    pub(crate) fn discovery_answer(
        &self,
        now: framewire_protocol::session::Instant,
        from: SocketAddr,
        nonce: u64,
        received: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        let discovery = self.discovery.as_ref()?;
        let verdict = unpoisoned(discovery.limiter.lock()).check(now, from, nonce);
        let answer = match verdict {
            Verdict::Answer => {
                framewire_protocol::discovery::answer(nonce, &discovery.card, received, out)
            }
            Verdict::Repeat | Verdict::Limited => None,
        };
        self.counters.count_discovery(verdict, answer.is_some());
        answer
    }

    /// Whether a handshake from `peer` may start at `now` (and takes its token); past the
    /// per-address rate it may not, and is counted.
    pub(crate) fn allow_handshake(
        &self,
        peer: IpAddr,
        now: framewire_protocol::session::Instant,
    ) -> bool {
        let rate = f64::from(self.handshakes_per_sec);
        let mut table = unpoisoned(self.handshakes.lock());
        if table.len() >= MAX_RATE_ENTRIES && !table.contains_key(&peer) {
            // Forget the addresses whose buckets have refilled: they are as good as new.
            table.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * rate < rate
            });
        }
        let bucket = table.entry(peer).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            self.counters.count_rate_limited();
            false
        }
    }

    /// Counts a new UDP session, unless the limit is reached.
    pub(crate) fn open_udp_session(&self) -> bool {
        self.udp_sessions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_udp_sessions).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn close_udp_session(&self) {
        let _ = self
            .udp_sessions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}
