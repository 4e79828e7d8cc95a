//! Many servers as one, through NATS (docs/PROTOCOL.md section 12).
//!
//! A node started with `--cluster nats://...` runs a bridge on a thread of its own
//! (`bridge.rs`): an async-nats client on a current-thread tokio runtime, the only runtime in the
//! server. The hub says what the node holds and what its clients publish ([`ClusterOut`], taken
//! by the loops once per turn under the hub's lock and handed to the bridge through a bounded
//! channel); the bridge hands what other nodes published to the loops through a bounded inbox
//! ([`ClusterInbox`]) and wakes the first worker with its `mio::Waker`. The loops never wait on
//! the bridge: when either side is full, the message is dropped and counted.
//!
//! Pub/sub: a node subscribes to a topic's NATS subject only while one of its sessions (live or
//! parked) holds a filter that covers it, and publishes every message its clients publish under
//! the topic's subject ([`subject`]), in an [`envelope`] that keeps its channel. The NATS
//! connection is made with `no_echo`, so a node never hears its own publishes back: its
//! subscribers got them from its hub directly, and other nodes' subscribers get them once (a
//! node whose subscriptions overlap takes the first copy of each: [`seen`]).

pub(crate) mod bridge;
pub mod envelope;
pub mod nodes;
pub mod queues;
mod retained;
pub mod seen;
pub mod subject;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use framewire_protocol::wire::{Status, Text};

/// The `cluster` fuzz target's check, shared with the test that replays its corpus: arbitrary
/// bytes as what a node reads from NATS, a subject (up to the first NUL) and a payload (after it).
/// A topic read must map back to the same subject, an envelope must encode back to its bytes, and
/// a node's announcement must read back the same from its encoding.
///
/// # Panics
/// When either does not: the fuzzer's finding.
pub fn fuzz_check(data: &[u8]) {
    let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (subject, rest) = data.split_at(at);
    if let Ok(subject) = std::str::from_utf8(subject)
        && let Some(topic) = subject::topic_of(subject)
    {
        assert_eq!(subject::subject_of_topic(&topic), subject);
    }
    if let Ok(subject) = std::str::from_utf8(subject)
        && let Some(topic) = subject::topic_of_retained(subject)
    {
        assert_eq!(subject::retained_subject_of_topic(&topic), subject);
    }
    let payload = Bytes::copy_from_slice(rest.get(1..).unwrap_or_default());
    if let Ok(e) = envelope::Envelope::parse(&payload) {
        assert_eq!(e.encode(), payload);
    }
    if let Ok(r) = envelope::RequestEnvelope::parse(&payload) {
        assert_eq!(r.encode(), payload);
    }
    if let Ok(r) = envelope::ReplyEnvelope::parse(&payload) {
        assert_eq!(r.encode(), payload);
    }
    if let Ok(n) = nodes::NodeInfo::parse(&payload) {
        assert_eq!(nodes::NodeInfo::parse(&n.encode().0), Ok(n));
    }
}

/// What the hub asks of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOut {
    /// The node's sessions now hold `filter` (`true`: the first holder came) or no longer do.
    Interest(Text, bool),
    /// A message a client of this node published, for the other nodes' subscribers.
    Publish {
        /// Its topic.
        topic: Text,
        /// The channel it was published on.
        channel: u8,
        /// Whether the channel is reliable.
        reliable: bool,
        /// The message.
        payload: Bytes,
    },
    /// A message a client of this node published with `retain`: the topic's retained message
    /// for the cluster (an empty payload clears it), kept in NATS's `JetStream` (section 12.5).
    Retain {
        /// Its topic.
        topic: Text,
        /// The channel it was published on.
        channel: u8,
        /// The message (empty: none is retained any more).
        payload: Bytes,
    },
    /// A queue operation of one of this node's sessions, on the cluster's queue (section 12.6);
    /// its outcome comes back as [`Remote::QueueAnswer`] with the same `token`.
    Queue {
        /// The hub's name for the operation.
        token: u64,
        /// The queue.
        queue: Text,
        /// What to do.
        op: QueueOp,
    },
    /// A session of this node registered `service` (`true`: one responder more) or let one
    /// registration go.
    Serve(Text, bool),
    /// A request of one of this node's sessions, for whichever responder NATS picks; its answer
    /// comes back as [`Remote::Reply`] with the same `token`.
    Request {
        /// The hub's name for the request.
        token: u64,
        /// The service.
        service: Text,
        /// How long the requester waits, in milliseconds.
        timeout_ms: u32,
        /// The request.
        payload: Bytes,
    },
    /// The answer to a [`Remote::Request`], for the node that sent it.
    Reply {
        /// Where to send it (the request's NATS reply subject).
        reply: Text,
        /// The responder's status (or the node's: `NO_RESPONDER`, `RESPONDER_GONE`, ...).
        status: Status,
        /// The response.
        payload: Bytes,
    },
}

/// A queue operation as the cluster's queues take it (section 12.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOp {
    /// Push a message.
    Push(Bytes),
    /// Take up to `max` messages, waiting up to `wait_ms` for the first.
    Fetch {
        /// Most messages.
        max: u16,
        /// Milliseconds to wait for one (0: not at all).
        wait_ms: u32,
    },
    /// A delivery is done with.
    Ack(u64),
    /// A delivery given back, to be delivered again after `delay_ms`.
    Nack {
        /// The delivery.
        delivery_id: u64,
        /// Milliseconds before it is delivered again.
        delay_ms: u32,
    },
    /// A delivery needs longer.
    Extend(u64),
}

/// One message a fetch on the cluster's queue took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDelivered {
    /// This node's id for it (what the consumer acknowledges).
    pub delivery_id: u64,
    /// Delivered before and not acknowledged in time.
    pub redelivered: bool,
    /// The message.
    pub payload: Bytes,
}

/// What the bridge received for this node's hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A message another node published.
    Message {
        /// Its topic.
        topic: Text,
        /// Its channel, reliability, origin and payload.
        envelope: envelope::Envelope,
    },
    /// A topic's retained message as the cluster keeps it (set on any node, this one included):
    /// kept here too, delivered to no one now (live subscribers had the message when it was
    /// published).
    Retained {
        /// Its topic.
        topic: Text,
        /// The channel it was published on.
        channel: u8,
        /// The message (empty: none is retained any more).
        payload: Bytes,
    },
    /// A request for a service this node's sessions serve.
    Request {
        /// Where its answer goes.
        reply: Text,
        /// The service.
        service: Text,
        /// How long the requester waits, in milliseconds.
        timeout_ms: u32,
        /// The request.
        payload: Bytes,
    },
    /// The outcome of a [`ClusterOut::Queue`]: the messages a fetch took (none for the other
    /// operations), then its status.
    QueueAnswer {
        /// The hub's name for the operation.
        token: u64,
        /// What a fetch took.
        delivered: Vec<QueueDelivered>,
        /// `OK`, `NOT_FOUND` (no such delivery waiting here), or why the cluster failed it.
        status: Status,
        /// Why, when not `OK`.
        message: String,
    },
    /// The answer to a request this node sent.
    Reply {
        /// The hub's name for the request ([`ClusterOut::Request`]).
        token: u64,
        /// The status.
        status: Status,
        /// The response.
        payload: Bytes,
    },
}

/// How many messages from other nodes wait for the loops at most; more are dropped and counted.
pub const INBOX_CAPACITY: usize = 65_536;

/// Messages from other nodes, waiting for a worker to publish them to the hub.
#[derive(Debug, Default)]
pub struct ClusterInbox {
    queue: Mutex<VecDeque<Remote>>,
    /// Set when the queue holds something: the loops look at it each turn without the lock.
    pending: AtomicBool,
}

impl ClusterInbox {
    /// Queues `remote`; `Ok(true)` if the queue was empty (the loops must be woken), `Err` if it
    /// is full (the message is dropped).
    pub(crate) fn push(&self, remote: Remote) -> Result<bool, Remote> {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() >= INBOX_CAPACITY {
            return Err(remote);
        }
        q.push_back(remote);
        Ok(!self.pending.swap(true, Ordering::AcqRel))
    }

    /// Whether anything is queued (without the lock).
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Everything queued, if anything is.
    pub(crate) fn take(&self) -> Option<VecDeque<Remote>> {
        if !self.has_pending() {
            return None;
        }
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.pending.store(false, Ordering::Release);
        Some(std::mem::take(&mut *q))
    }
}

/// What the cluster counts, reported by `sys.stats` (`cluster`), and the nodes it knows, by
/// `sys.nodes`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// The nodes heard from, and this one (in a cluster).
    pub(crate) nodes: Mutex<nodes::NodeTable>,
    connected: AtomicBool,
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    malformed: AtomicU64,
}

/// A snapshot of [`ClusterCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// Whether the bridge is connected to NATS now.
    pub connected: bool,
    /// Messages this node's clients published that the bridge handed to NATS.
    pub published: u64,
    /// Messages from other nodes handed to this node's hub.
    pub received: u64,
    /// Messages dropped because the bridge's channel or the loops' inbox was full, or NATS
    /// refused them.
    pub dropped: u64,
    /// NATS messages under our subjects that were not ours to read (a bad subject or envelope).
    pub malformed: u64,
}

impl ClusterCounters {
    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub(crate) fn count_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// `sys.nodes`' answer.
    pub fn nodes_json(&self) -> String {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .to_json()
    }

    /// `sys.services`' answer, with the services registered here and how many sessions serve
    /// each.
    pub fn services_json(&self, here: &[(String, usize)]) -> String {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .services_json(here)
    }

    /// The current values.
    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
        }
    }
}
