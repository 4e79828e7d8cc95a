//! The records of the log: what the hub asks to keep, each one a framewire frame
//! (docs/PROTOCOL.md section 10.3), so that the tools that read frames read a data directory too.
//!
//! | record | frame | fields used |
//! |---|---|---|
//! | a message queued | QueueDelivery, first for its delivery id | `id`: deliveries so far, `delivery id`, `queue`, `payload` |
//! | a message delivered again | QueueDelivery, later for the same id | `id`: deliveries so far; the payload is empty |
//! | a message acknowledged (or moved away) | QueueAck | `delivery id`, `queue`; `id` 0 |
//! | a topic's retained message | Publish with `RETAIN` | `channel`, `topic`, `payload` (empty: removed); `id` 0 |
//! | a change to a session | Request, target `session.*` | `target`, `payload` (`session_record.rs`); `id` and `timeout` 0 |

use bytes::{Bytes, BytesMut};
use framewire_protocol::EncodeError;
use framewire_protocol::wire::{
    Frame, FrameBody, FrameKind, Publish, QueueAck, QueueDelivery, Text, encode_stream_frame_into,
};

use super::session_record::SessionRecord;

/// What a record adds around its fields: length, version, frame header (no SEQ), CRC.
const FRAMING: usize = 4 + 1 + 3 + 4;

/// The bytes of the record of a queued message (as a snapshot writes it): framing, deliveries,
/// delivery id, the queue's name, the payload.
pub fn queued_len(queue: &Text, payload: &Bytes) -> usize {
    FRAMING + 4 + 8 + 2 + queue.len() + payload.len()
}

/// The bytes of the record of a retained message: framing, id, the topic, the payload.
pub fn retained_len(topic: &Text, payload: &Bytes) -> usize {
    FRAMING + 4 + 2 + topic.len() + payload.len()
}

/// One change to the durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message joined a queue (or, in a snapshot, is in it with this many deliveries so far).
    Queued {
        /// The message's delivery id.
        id: u64,
        /// Its queue.
        queue: Text,
        /// Deliveries so far.
        deliveries: u32,
        /// The message.
        payload: Bytes,
    },
    /// A message was delivered (again): its count of deliveries so far.
    Delivered {
        /// The message's delivery id.
        id: u64,
        /// Its queue.
        queue: Text,
        /// Deliveries so far.
        deliveries: u32,
    },
    /// A message left its queue: acknowledged, or moved to another.
    Removed {
        /// The message's delivery id.
        id: u64,
        /// Its queue.
        queue: Text,
    },
    /// A topic's retained message was set (or, with an empty payload, removed).
    Retained {
        /// The channel it was published on.
        channel: u8,
        /// The topic.
        topic: Text,
        /// The message; empty for none.
        payload: Bytes,
    },
    /// A change to a session that must outlive the server.
    Session(SessionRecord),
}

/// A frame that is not a record of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotARecord(pub u8);

impl Record {
    /// The record as the frame that is written.
    pub fn to_frame(&self) -> Frame {
        match self {
            Self::Queued {
                id,
                queue,
                deliveries,
                payload,
            } => Frame::new(QueueDelivery {
                redelivered: *deliveries > 0,
                id: *deliveries,
                delivery_id: *id,
                queue: queue.clone(),
                payload: payload.clone(),
            }),
            Self::Delivered {
                id,
                queue,
                deliveries,
            } => Frame::new(QueueDelivery {
                redelivered: true,
                id: *deliveries,
                delivery_id: *id,
                queue: queue.clone(),
                payload: Bytes::new(),
            }),
            Self::Removed { id, queue } => Frame::new(QueueAck {
                id: 0,
                delivery_id: *id,
                queue: queue.clone(),
            }),
            Self::Retained {
                channel,
                topic,
                payload,
            } => Frame::new(Publish {
                retain: true,
                id: 0,
                topic: topic.clone(),
                payload: payload.clone(),
            })
            .on_channel(*channel),
            Self::Session(s) => Frame::new(s.to_request()),
        }
    }

    /// Appends the record, framed as on a TCP stream (length, version, frame, CRC), to `out`;
    /// returns its length.
    ///
    /// # Errors
    /// The frame does not fit a frame's limits (a name or payload too long).
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<usize, EncodeError> {
        encode_stream_frame_into(&self.to_frame(), out)
    }

    /// The bytes [`Record::encode_into`] appends, counted from the fields (no frame is built).
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Queued { queue, payload, .. } => queued_len(queue, payload),
            Self::Delivered { queue, .. } => queued_len(queue, &Bytes::new()),
            // Framing, header, id, delivery id, the name.
            Self::Removed { queue, .. } => FRAMING + 4 + 8 + 2 + queue.len(),
            Self::Retained { topic, payload, .. } => retained_len(topic, payload),
            Self::Session(s) => FRAMING + s.body_len(),
        }
    }

    /// The record a frame read from the log stands for. A `QueueDelivery` reads as
    /// [`Record::Queued`]: whether it is the first for its id (a message queued) or a later one (a
    /// delivery) only the reader of the whole log knows.
    ///
    /// # Errors
    /// [`NotARecord`] with the frame's kind for any other frame, and for a session record whose
    /// payload does not parse.
    pub fn from_frame(frame: Frame) -> Result<Self, NotARecord> {
        let channel = frame.channel;
        match frame.body {
            FrameBody::QueueDelivery(d) => Ok(Self::Queued {
                id: d.delivery_id,
                queue: d.queue,
                deliveries: d.id,
                payload: d.payload,
            }),
            FrameBody::QueueAck(a) if a.id == 0 => Ok(Self::Removed {
                id: a.delivery_id,
                queue: a.queue,
            }),
            FrameBody::Publish(p) if p.retain && p.id == 0 => Ok(Self::Retained {
                channel,
                topic: p.topic,
                payload: p.payload,
            }),
            FrameBody::Request(r) => match SessionRecord::from_request(&r) {
                Some(Ok(s)) => Ok(Self::Session(s)),
                _ => Err(NotARecord(FrameKind::Request as u8)),
            },
            other => Err(NotARecord(other.kind() as u8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_protocol::wire::{Ping, QueuePush};

    #[test]
    fn every_record_reads_back_from_its_frame() {
        let records = [
            Record::Queued {
                id: 7,
                queue: Text::from("jobs"),
                deliveries: 2,
                payload: Bytes::from_static(b"work"),
            },
            Record::Removed {
                id: 7,
                queue: Text::from("jobs"),
            },
            Record::Retained {
                channel: 3,
                topic: Text::from("dev/1/online"),
                payload: Bytes::from_static(b"yes"),
            },
        ];
        for r in records {
            assert_eq!(Record::from_frame(r.to_frame()), Ok(r));
        }
        // A delivery reads as a queued message with an empty payload: the log's reader tells them
        // apart by whether the id is known.
        let delivered = Record::Delivered {
            id: 9,
            queue: Text::from("q"),
            deliveries: 4,
        };
        assert_eq!(
            Record::from_frame(delivered.to_frame()),
            Ok(Record::Queued {
                id: 9,
                queue: Text::from("q"),
                deliveries: 4,
                payload: Bytes::new(),
            })
        );
    }

    #[test]
    fn the_counted_length_is_the_encoded_one() {
        let q = Text::from("jobs");
        for r in [
            Record::Queued {
                id: 7,
                queue: q.clone(),
                deliveries: 2,
                payload: Bytes::from_static(b"work"),
            },
            Record::Delivered {
                id: 7,
                queue: q.clone(),
                deliveries: 3,
            },
            Record::Removed { id: 7, queue: q },
            Record::Retained {
                channel: 1,
                topic: Text::from("t/1"),
                payload: Bytes::from_static(b"on"),
            },
        ] {
            let mut out = BytesMut::new();
            let n = r.encode_into(&mut out).expect("encodes");
            assert_eq!((r.encoded_len(), out.len()), (n, n), "{r:?}");
        }
    }

    #[test]
    fn frames_that_are_not_records_are_refused_by_kind() {
        for frame in [
            Frame::new(Ping { timestamp_us: 1 }),
            Frame::new(QueuePush {
                id: 1,
                queue: Text::from("q"),
                payload: Bytes::new(),
            }),
            Frame::new(QueueAck {
                id: 5,
                delivery_id: 1,
                queue: Text::from("q"),
            }),
        ] {
            let kind = frame.kind() as u8;
            assert_eq!(Record::from_frame(frame), Err(NotARecord(kind)));
        }
    }
}
