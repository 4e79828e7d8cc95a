//! What the hub hands the event loop: frames addressed to sessions.

use std::collections::VecDeque;

use bytes::Bytes;
use framewire_protocol::session::Oversized;
use framewire_protocol::wire::{
    ErrorFrame, Frame, FrameBody, FrameKind, Reason, Response, SharedFrame, Status, Text,
};

use crate::store::{Journal, Record, SessionRecord};

/// The bit of a connection's token that marks it as a WebSocket connection (from the HTTP
/// listener): the hub serves it as any stream session and counts it apart.
pub const WEB_TOKEN_BIT: usize = 1 << 47;
/// With [`WEB_TOKEN_BIT`]: a session an HTTP request holds for a Server-Sent Events stream.
pub const SSE_TOKEN_BIT: usize = 1 << 46;
/// With [`WEB_TOKEN_BIT`]: a session an HTTP request holds for a poll, a publish, a request or a
/// queue operation (docs/PROTOCOL.md section 11.4).
pub const HTTP_TOKEN_BIT: usize = 1 << 45;

/// A session the hub serves, named by its transport and the event loop's key for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientId {
    /// A stream connection (TCP, TLS or WebSocket), by its event-loop token.
    Tcp(usize),
    /// A UDP session, by its connection id.
    Udp(u64),
}

/// The transports, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP (and TLS).
    Tcp,
    /// UDP.
    Udp,
    /// WebSocket.
    WebSocket,
    /// Server-Sent Events (an HTTP response that streams Messages).
    Sse,
    /// HTTP requests: polls, publishes, requests and queue operations.
    Http,
}

impl Transport {
    /// How many transports there are.
    pub const COUNT: usize = 5;

    /// Every transport, in the order of [`Transport::index`].
    pub const ALL: [Self; Self::COUNT] =
        [Self::Tcp, Self::Udp, Self::WebSocket, Self::Sse, Self::Http];

    /// This transport's place in [`Transport::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Tcp => 0,
            Self::Udp => 1,
            Self::WebSocket => 2,
            Self::Sse => 3,
            Self::Http => 4,
        }
    }
}

impl ClientId {
    /// Which transport the session runs on.
    pub fn transport(self) -> Transport {
        match self {
            Self::Tcp(token) if token & WEB_TOKEN_BIT == 0 => Transport::Tcp,
            Self::Tcp(token) if token & SSE_TOKEN_BIT != 0 => Transport::Sse,
            Self::Tcp(token) if token & HTTP_TOKEN_BIT != 0 => Transport::Http,
            Self::Tcp(_) => Transport::WebSocket,
            Self::Udp(_) => Transport::Udp,
        }
    }
}

/// A frame for one session.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A frame for this session alone.
    Frame(Frame),
    /// A frame encoded once and shared by every session it goes to (a fan-out).
    Shared(SharedFrame),
    /// Close the session with this reason (another connection took it over).
    Close(Reason, &'static str),
}

impl Delivery {
    /// What this delivery answers, if it is a Response: enough (and cheap to keep) to refuse the
    /// operation instead when the Response is too large for its session
    /// ([`Answering::too_large`]).
    pub fn answering(&self) -> Option<Answering> {
        match self {
            Self::Frame(Frame {
                channel,
                body: FrameBody::Response(r),
                ..
            }) => Some(Answering {
                id: r.id,
                channel: *channel,
            }),
            _ => None,
        }
    }
}

/// The operation a Response answers, by id, and the channel the Response travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answering {
    /// The operation's id.
    pub id: u32,
    /// The Response's channel.
    pub channel: u8,
}

impl Answering {
    /// The Response that goes instead of one (`len` bytes) above the limit its session agreed
    /// (`max`): the operation refused with `PAYLOAD_TOO_LARGE`, so the requester is not left
    /// waiting. Anything but a Response (a Message, a queue delivery) too large is not sent and is
    /// counted as dropped, as MQTT 5 does with a packet above a client's maximum packet size
    /// (docs/PROTOCOL.md section 6.2).
    pub fn too_large(self, len: usize, max: usize) -> Frame {
        let why = format!("the response of {len} bytes is above this session's frame limit {max}");
        Frame::new(Response {
            id: self.id,
            status: Status::PAYLOAD_TOO_LARGE,
            payload: Bytes::from(why),
        })
        .on_channel(self.channel)
    }
}

/// The answer to a message the session refused unread for its size: an operation with an id gets
/// a Response with `PAYLOAD_TOO_LARGE` (its requester is waiting for one), anything else an Error
/// with `FRAME_TOO_LARGE` naming its kind (docs/PROTOCOL.md section 6.2).
pub fn oversized_answer(refused: &Oversized) -> Frame {
    let kind = FrameKind::from_u8(refused.kind).map_or("?", FrameKind::name);
    let why = format!(
        "{kind} of up to {} bytes on channel {} is above the agreed frame limit {}",
        refused.len, refused.channel, refused.max
    );
    let answered = refused.id != 0
        && !matches!(
            FrameKind::from_u8(refused.kind),
            Some(FrameKind::Response | FrameKind::QueueDelivery)
        );
    if answered {
        Frame::new(Response {
            id: refused.id,
            status: Status::PAYLOAD_TOO_LARGE,
            payload: Bytes::from(why),
        })
    } else {
        Frame::new(ErrorFrame {
            reason: Reason::FRAME_TOO_LARGE,
            refused_kind: refused.kind,
            message: Text::from(why.as_str()),
        })
    }
}

fn response(id: u32, status: Status, payload: Bytes) -> Frame {
    Frame::new(Response {
        id,
        status,
        payload,
    })
}

/// A frame and the session it is for.
#[derive(Debug, Clone)]
pub struct Output {
    /// The session.
    pub to: ClientId,
    /// The frame.
    pub delivery: Delivery,
}

/// The queue of outputs, in the order they were produced; a count of the operations refused, by
/// status; the kind of the client frame being handled (what an Error refusing it names); and,
/// with a data directory, the log that durable operations are recorded in and the confirmations
/// held until their records are durable.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    queue: VecDeque<Output>,
    /// For the other nodes of a cluster, in order: what this node's sessions published,
    /// registered and asked, and the answers to the other nodes' requests.
    cluster: Vec<crate::cluster::ClusterOut>,
    refused: std::collections::BTreeMap<u16, u64>,
    handling: u8,
    durable: Option<Durable>,
}

/// The log, and what waits on it.
#[derive(Debug)]
struct Durable {
    journal: Box<dyn Journal>,
    /// Confirmations, each after the sequence number of the record it confirms.
    held: VecDeque<(u64, Output)>,
    /// What the live state would take in the log: the size of a snapshot.
    live_bytes: u64,
    /// The sessions the log has, by key, with the bytes of their records.
    sessions: std::collections::HashMap<u64, usize>,
}

impl Outputs {
    /// Records durable operations in `journal` from now on.
    pub(crate) fn keep_in(&mut self, journal: Box<dyn Journal>, live_bytes: u64) {
        self.durable = Some(Durable {
            journal,
            held: VecDeque::new(),
            live_bytes,
            sessions: std::collections::HashMap::new(),
        });
    }

    /// Whether there is a log.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Whether the log has the session of `key`.
    pub(crate) fn has_session(&self, key: u64) -> bool {
        self.durable
            .as_ref()
            .is_some_and(|d| d.sessions.contains_key(&key))
    }

    /// Counts a session the data directory held, whose records take `bytes`.
    pub(crate) fn restored_session(&mut self, key: u64, bytes: usize) {
        if let Some(d) = self.durable.as_mut() {
            d.sessions.insert(key, bytes);
        }
    }

    /// Records a change to a session: `session.opened` puts it in the log, any other change is
    /// recorded only for a session the log has, and `session.ended` takes it out. Its sequence
    /// number, if it wrote one.
    pub(crate) fn record_session(&mut self, record: SessionRecord) -> Option<u64> {
        let d = self.durable.as_mut()?;
        let key = record.key();
        let record = Record::Session(record);
        match &record {
            Record::Session(SessionRecord::Opened { .. }) => {
                let len = record.encoded_len();
                let old = d.sessions.insert(key, len).unwrap_or(0);
                d.live_bytes = (d.live_bytes + len as u64).saturating_sub(old as u64);
            }
            Record::Session(SessionRecord::Ended { .. }) => {
                let old = d.sessions.remove(&key)?;
                d.live_bytes = d.live_bytes.saturating_sub(old as u64);
            }
            _ => {
                let len = record.encoded_len();
                *d.sessions.get_mut(&key)? += len;
                d.live_bytes += len as u64;
            }
        }
        Some(d.journal.append(record))
    }

    /// Whether a record of `len` more bytes would take the log past its limit (or the log cannot
    /// be written at all): if so, the operation is refused with `STORAGE_FULL`.
    pub(crate) fn storage_full(&mut self, to: ClientId, id: u32, len: usize) -> bool {
        let Some(d) = &self.durable else {
            return false;
        };
        let why = if d.journal.failed() {
            "the server cannot write its data directory; nothing was kept"
        } else if d.journal.log_bytes() + len as u64 > d.journal.max_bytes() {
            "the server's data directory is at its size limit; nothing was kept"
        } else {
            return false;
        };
        self.fail(to, id, Status::STORAGE_FULL, why);
        true
    }

    /// Records a change to the durable state (nothing without a log); its sequence number.
    /// The change makes the live state `grows` bytes larger and `shrinks` bytes smaller.
    /// The record is made only when there is a log: the in-memory path pays nothing for it.
    pub(crate) fn record(
        &mut self,
        record: impl FnOnce() -> Record,
        grows: usize,
        shrinks: usize,
    ) -> Option<u64> {
        let d = self.durable.as_mut()?;
        d.live_bytes = (d.live_bytes + grows as u64).saturating_sub(shrinks as u64);
        Some(d.journal.append(record()))
    }

    /// The operation's OK, sent once record `seq` is durable (at once without one).
    pub(crate) fn ok_once(&mut self, to: ClientId, id: u32, seq: Option<u64>) {
        match (seq, self.durable.as_mut()) {
            (Some(seq), Some(d)) if id != 0 => d.held.push_back((
                seq,
                Output {
                    to,
                    delivery: Delivery::Frame(response(id, Status::OK, Bytes::new())),
                },
            )),
            _ => self.ok(to, id),
        }
    }

    /// Whether the log asks for a snapshot now.
    pub(crate) fn wants_snapshot(&self) -> bool {
        self.durable
            .as_ref()
            .is_some_and(|d| d.journal.wants_snapshot(d.live_bytes))
    }

    /// Hands the log a snapshot of the whole state.
    pub(crate) fn snapshot(&mut self, records: Vec<Record>) {
        if let Some(d) = self.durable.as_mut() {
            d.journal.snapshot(records);
        }
    }

    /// Moves the confirmations whose records are durable into the output; if the log failed,
    /// the ones that never will be become `STORAGE_FULL` failures.
    fn release(&mut self) {
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        let Some(&(first, _)) = d.held.front() else {
            return;
        };
        let durable = d.journal.durable();
        let failed = first > durable && d.journal.failed();
        while let Some((seq, _)) = d.held.front() {
            if *seq > durable && !failed {
                break;
            }
            let Some((seq, mut out)) = d.held.pop_front() else {
                break;
            };
            if seq > durable
                && let Delivery::Frame(Frame {
                    body: FrameBody::Response(r),
                    ..
                }) = &mut out.delivery
            {
                *self.refused.entry(Status::STORAGE_FULL.0).or_default() += 1;
                r.status = Status::STORAGE_FULL;
                r.payload = Bytes::from_static(
                    b"the server could not write its data directory; it may not have been kept",
                );
            }
            self.queue.push_back(out);
        }
    }

    /// Confirmations waiting for the log.
    pub(crate) fn held(&self) -> usize {
        self.durable.as_ref().map_or(0, |d| d.held.len())
    }

    /// Something for the other nodes of the cluster.
    pub(crate) fn for_cluster(&mut self, item: crate::cluster::ClusterOut) {
        self.cluster.push(item);
    }

    /// What waits for the cluster.
    pub(crate) fn take_cluster(&mut self) -> Vec<crate::cluster::ClusterOut> {
        std::mem::take(&mut self.cluster)
    }

    pub(crate) fn frame(&mut self, to: ClientId, frame: Frame) {
        self.queue.push_back(Output {
            to,
            delivery: Delivery::Frame(frame),
        });
    }

    pub(crate) fn close(&mut self, to: ClientId, reason: Reason, why: &'static str) {
        self.queue.push_back(Output {
            to,
            delivery: Delivery::Close(reason, why),
        });
    }

    pub(crate) fn shared(&mut self, to: ClientId, frame: SharedFrame) {
        self.queue.push_back(Output {
            to,
            delivery: Delivery::Shared(frame),
        });
    }

    /// A Response to operation `id`; none for id 0, which asks for none (section 5).
    pub(crate) fn respond(&mut self, to: ClientId, id: u32, status: Status, payload: Bytes) {
        if id != 0 {
            self.frame(to, response(id, status, payload));
        }
    }

    /// A success with no payload.
    pub(crate) fn ok(&mut self, to: ClientId, id: u32) {
        self.respond(to, id, Status::OK, Bytes::new());
    }

    /// The hub starts handling a client frame of `kind`.
    pub(crate) fn handling(&mut self, kind: FrameKind) {
        self.handling = kind as u8;
    }

    /// A failure, counted: explained in a Response when one was asked for (`id` not 0), else in
    /// an Error with reason `REFUSED` naming the frame's kind and, in its message, the status,
    /// so that a publish without an ack to a topic it may not use is not refused in silence
    /// (as NATS answers a denied publish with `-ERR`).
    pub(crate) fn fail(&mut self, to: ClientId, id: u32, status: Status, why: &str) {
        *self.refused.entry(status.0).or_default() += 1;
        if id == 0 {
            let error = ErrorFrame {
                reason: Reason::REFUSED,
                refused_kind: self.handling,
                message: Text::from(format!("{status}: {why}").as_str()),
            };
            self.frame(to, Frame::new(error));
        } else {
            self.respond(to, id, status, Bytes::copy_from_slice(why.as_bytes()));
        }
    }

    /// Operations refused so far, by status code.
    pub(crate) fn refused(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        self.refused.iter().map(|(&code, &n)| (Status(code), n))
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        if self.queue.is_empty() {
            self.release();
        }
        let out = self.queue.pop_front();
        if self.queue.is_empty() && self.queue.capacity() > 4096 {
            // A big fan-out's queue is given back rather than kept for ever.
            self.queue = VecDeque::new();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_protocol::wire::Message;

    fn refused(kind: FrameKind, id: u32) -> Oversized {
        Oversized {
            kind: kind as u8,
            channel: 0,
            id,
            len: 5020,
            max: 4096,
        }
    }

    #[test]
    fn a_refused_operation_with_an_id_gets_a_response_and_anything_else_an_error() {
        let answer = oversized_answer(&refused(FrameKind::Publish, 9));
        let FrameBody::Response(r) = answer.body else {
            panic!("{answer:?}");
        };
        assert_eq!((r.id, r.status), (9, Status::PAYLOAD_TOO_LARGE));
        assert!(String::from_utf8_lossy(&r.payload).contains("Publish of up to 5020 bytes"));
        for (kind, id) in [
            (FrameKind::Publish, 0),
            (FrameKind::Data, 0),
            (FrameKind::Response, 4),
        ] {
            let answer = oversized_answer(&refused(kind, id));
            let FrameBody::Error(e) = answer.body else {
                panic!("{kind:?}: {answer:?}");
            };
            assert_eq!(
                (e.reason, e.refused_kind),
                (Reason::FRAME_TOO_LARGE, kind as u8)
            );
        }
    }

    #[test]
    fn a_response_too_large_becomes_a_refusal_and_a_message_is_dropped() {
        let response = Delivery::Frame(Frame::new(Response {
            id: 3,
            status: Status::OK,
            payload: Bytes::from(vec![0u8; 2000]),
        }));
        let refusal = response
            .answering()
            .expect("a Response")
            .too_large(2012, 600);
        let FrameBody::Response(r) = &refusal.body else {
            panic!("{refusal:?}");
        };
        assert_eq!((r.id, r.status), (3, Status::PAYLOAD_TOO_LARGE));
        assert!(framewire_protocol::wire::stream_frame_len(&refusal) - 4 <= 600);
        let message = Delivery::Frame(Frame::new(Message {
            retained: false,
            number: None,
            topic: Text::from("t"),
            payload: Bytes::from(vec![0u8; 2000]),
        }));
        assert_eq!(message.answering(), None);
    }
}
