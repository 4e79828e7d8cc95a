//! The hub's frames: publish/subscribe, request/response, services and queues
//! (docs/PROTOCOL.md section 5).
//!
//! Every client operation carries an `id`. A non-zero id asks for a [`Response`] with that id once
//! the server has handled the operation; 0 asks for none (fire and forget).

use bytes::Bytes;

use super::BodyCodec;
use crate::error::{DecodeError, EncodeError};
use crate::wire::code::Status;
use crate::wire::fields::{check_name, name_len, read_name, write_name};
use crate::wire::kind::FrameKind;
use crate::wire::reader::Reader;
use crate::wire::text::Text;
use crate::wire::writer::Writer;

/// Bodies that are an operation id and one name: subscribe, unsubscribe, register, unregister.
macro_rules! id_and_name_body {
    ($(#[$meta:meta])* $ty:ident, $field:ident, $label:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty {
            /// Operation id for the Response; 0 for none.
            pub id: u32,
            #[doc = concat!("The ", $label, ".")]
            pub $field: Text,
        }

        impl BodyCodec for $ty {
            const KIND: FrameKind = FrameKind::$ty;

            fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
                let id = r.u32()?;
                let $field = read_name(r)?;
                r.finish()?;
                Ok(Self { id, $field })
            }

            fn body_len(&self) -> usize {
                4 + name_len(&self.$field)
            }

            fn check(&self) -> Result<(), EncodeError> {
                check_name($label, &self.$field)
            }

            fn emit(&self, w: &mut Writer) {
                w.put_u32(self.id);
                write_name(w, &self.$field);
            }
        }
    };
}

id_and_name_body!(
    /// Subscribe to a topic filter (`+` matches one level, `#` the rest).
    Subscribe, filter, "topic filter"
);
id_and_name_body!(
    /// Remove the subscription with exactly this filter.
    Unsubscribe, filter, "topic filter"
);
id_and_name_body!(
    /// Answer requests sent to `service`.
    Register, service, "service name"
);
id_and_name_body!(
    /// Stop answering requests sent to `service`.
    Unregister, service, "service name"
);

/// Publish `payload` to `topic`; the frame's channel says how reliably it travels on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Keep as the topic's retained message (flag bit 0).
    pub retain: bool,
    /// Operation id for the Response; 0 for none.
    pub id: u32,
    /// The topic (no wildcards).
    pub topic: Text,
    /// The message.
    pub payload: Bytes,
}

/// A published message pushed to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// This is the topic's retained message, sent on subscribe (flag bit 0).
    pub retained: bool,
    /// The delivery number (flag bit 1 `NUMBERED`, then a `u32` before the topic): given to the
    /// reliable Messages of a session whose client confirms them with Ack (Hello option
    /// `CONFIRMS`), one more for each, kept across resumes; a Message sent again after a break
    /// carries the number it had.
    pub number: Option<u32>,
    /// The topic it was published to.
    pub topic: Text,
    /// The message.
    pub payload: Bytes,
}

const RETAIN: u8 = 0x01;

impl BodyCodec for Publish {
    const KIND: FrameKind = FrameKind::Publish;
    const FLAG_MASK: u8 = RETAIN;

    fn flags(&self) -> u8 {
        if self.retain { RETAIN } else { 0 }
    }

    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            retain: flags & RETAIN != 0,
            id: r.u32()?,
            topic: read_name(r)?,
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + name_len(&self.topic) + self.payload.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("topic", &self.topic)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        write_name(w, &self.topic);
        w.put_slice(&self.payload);
    }
}

const NUMBERED: u8 = 0x02;

impl BodyCodec for Message {
    const KIND: FrameKind = FrameKind::Message;
    const FLAG_MASK: u8 = RETAIN | NUMBERED;

    fn flags(&self) -> u8 {
        let retained = if self.retained { RETAIN } else { 0 };
        let numbered = if self.number.is_some() { NUMBERED } else { 0 };
        retained | numbered
    }

    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let number = if flags & NUMBERED != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        Ok(Self {
            retained: flags & RETAIN != 0,
            number,
            topic: read_name(r)?,
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        let number = if self.number.is_some() { 4 } else { 0 };
        number + name_len(&self.topic) + self.payload.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("topic", &self.topic)
    }

    fn emit(&self, w: &mut Writer) {
        if let Some(n) = self.number {
            w.put_u32(n);
        }
        write_name(w, &self.topic);
        w.put_slice(&self.payload);
    }
}

/// A request to a built-in method (`sys.*`) or a registered service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Correlation id; the Response carries it back. Must be non-zero.
    pub id: u32,
    /// How long the requester waits, in milliseconds; 0 means the server's default.
    pub timeout_ms: u32,
    /// The method or service name.
    pub target: Text,
    /// The request body.
    pub payload: Bytes,
}

impl BodyCodec for Request {
    const KIND: FrameKind = FrameKind::Request;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            timeout_ms: r.u32()?,
            target: read_name(r)?,
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + 4 + name_len(&self.target) + self.payload.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("target", &self.target)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        w.put_u32(self.timeout_ms);
        write_name(w, &self.target);
        w.put_slice(&self.payload);
    }
}

/// The outcome of the operation with the same `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The id of the operation answered.
    pub id: u32,
    /// Its outcome.
    pub status: Status,
    /// The response body (for a failure: an explanation in UTF-8, by convention).
    pub payload: Bytes,
}

impl BodyCodec for Response {
    const KIND: FrameKind = FrameKind::Response;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            status: Status(r.u16()?),
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + 2 + self.payload.len()
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        w.put_u16(self.status.0);
        w.put_slice(&self.payload);
    }
}

/// Push `payload` onto `queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePush {
    /// Operation id for the Response; 0 for none.
    pub id: u32,
    /// The queue's name.
    pub queue: Text,
    /// The message.
    pub payload: Bytes,
}

impl BodyCodec for QueuePush {
    const KIND: FrameKind = FrameKind::QueuePush;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            queue: read_name(r)?,
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + name_len(&self.queue) + self.payload.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("queue", &self.queue)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        write_name(w, &self.queue);
        w.put_slice(&self.payload);
    }
}

/// Fetch up to `max` messages from `queue`, waiting up to `wait_ms` for the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFetch {
    /// Correlation id: the deliveries and the closing Response carry it.
    pub id: u32,
    /// The most messages to hand out.
    pub max: u16,
    /// 0: answer at once (a poll). Otherwise hold the fetch until a message arrives or this many
    /// milliseconds pass (a long poll).
    pub wait_ms: u32,
    /// The queue's name.
    pub queue: Text,
}

impl BodyCodec for QueueFetch {
    const KIND: FrameKind = FrameKind::QueueFetch;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let f = Self {
            id: r.u32()?,
            max: r.u16()?,
            wait_ms: r.u32()?,
            queue: read_name(r)?,
        };
        r.finish()?;
        Ok(f)
    }

    fn body_len(&self) -> usize {
        4 + 2 + 4 + name_len(&self.queue)
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("queue", &self.queue)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        w.put_u16(self.max);
        w.put_u32(self.wait_ms);
        write_name(w, &self.queue);
    }
}

/// A queue message handed to the consumer that fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDelivery {
    /// Delivered before and not acknowledged in time (flag bit 0).
    pub redelivered: bool,
    /// The id of the fetch this answers.
    pub id: u32,
    /// Names this delivery in a [`QueueAck`].
    pub delivery_id: u64,
    /// The queue's name.
    pub queue: Text,
    /// The message.
    pub payload: Bytes,
}

const REDELIVERED: u8 = 0x01;

impl BodyCodec for QueueDelivery {
    const KIND: FrameKind = FrameKind::QueueDelivery;
    const FLAG_MASK: u8 = REDELIVERED;

    fn flags(&self) -> u8 {
        if self.redelivered { REDELIVERED } else { 0 }
    }

    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            redelivered: flags & REDELIVERED != 0,
            id: r.u32()?,
            delivery_id: r.u64()?,
            queue: read_name(r)?,
            payload: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + 8 + name_len(&self.queue) + self.payload.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("queue", &self.queue)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        w.put_u64(self.delivery_id);
        write_name(w, &self.queue);
        w.put_slice(&self.payload);
    }
}

/// Acknowledge a delivery: the message is done and will not be delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueAck {
    /// Operation id for the Response; 0 for none.
    pub id: u32,
    /// The delivery acknowledged.
    pub delivery_id: u64,
    /// The queue's name.
    pub queue: Text,
}

impl BodyCodec for QueueAck {
    const KIND: FrameKind = FrameKind::QueueAck;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let a = Self {
            id: r.u32()?,
            delivery_id: r.u64()?,
            queue: read_name(r)?,
        };
        r.finish()?;
        Ok(a)
    }

    fn body_len(&self) -> usize {
        4 + 8 + name_len(&self.queue)
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_name("queue", &self.queue)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u32(self.id);
        w.put_u64(self.delivery_id);
        write_name(w, &self.queue);
    }
}

/// A consumer gives a delivery back: it is ready again once `delay_ms` has passed (0: at once),
/// counted as delivered (section 5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNack {
    /// Operation id for the Response; 0 for none.
    pub id: u32,
    /// Milliseconds before it is ready again.
    pub delay_ms: u32,
    /// The delivery given back.
    pub delivery_id: u64,
    /// The queue's name.
    pub queue: Text,
}

/// A consumer needs longer: the delivery's visibility timeout starts again, `timeout_ms` long
/// (0: the server's default) (section 5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueExtend {
    /// Operation id for the Response; 0 for none.
    pub id: u32,
    /// The new visibility timeout in milliseconds, from now.
    pub timeout_ms: u32,
    /// The delivery kept.
    pub delivery_id: u64,
    /// The queue's name.
    pub queue: Text,
}

// `QueueNack` and `QueueExtend` share a layout: `id`, a duration in ms, `delivery id`, `queue`.
macro_rules! delivery_with_duration {
    ($ty:ident, $kind:ident, $ms:ident) => {
        impl BodyCodec for $ty {
            const KIND: FrameKind = FrameKind::$kind;

            fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
                let a = Self {
                    id: r.u32()?,
                    $ms: r.u32()?,
                    delivery_id: r.u64()?,
                    queue: read_name(r)?,
                };
                r.finish()?;
                Ok(a)
            }

            fn body_len(&self) -> usize {
                4 + 4 + 8 + name_len(&self.queue)
            }

            fn check(&self) -> Result<(), EncodeError> {
                check_name("queue", &self.queue)
            }

            fn emit(&self, w: &mut Writer) {
                w.put_u32(self.id);
                w.put_u32(self.$ms);
                w.put_u64(self.delivery_id);
                write_name(w, &self.queue);
            }
        }
    };
}

delivery_with_duration!(QueueNack, QueueNack, delay_ms);
delivery_with_duration!(QueueExtend, QueueExtend, timeout_ms);
