//! What a connection tells its application.

use bytes::Bytes;
use framewire_protocol::wire::{Reason, Status, Text};

use crate::error::ClientError;

/// A message pushed to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: Text,
    /// The message.
    pub payload: Bytes,
    /// The topic's retained message, sent on subscribe.
    pub retained: bool,
    /// The channel it came on.
    pub channel: u8,
}

/// A queue message handed to this client by a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The fetch it answers.
    pub fetch_id: u32,
    /// Acknowledge with this.
    pub delivery_id: u64,
    /// The queue.
    pub queue: Text,
    /// The message.
    pub payload: Bytes,
    /// Delivered before and not acknowledged in time.
    pub redelivered: bool,
}

/// A request routed to a service this client registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// Answer with this id.
    pub id: u32,
    /// The service named.
    pub target: Text,
    /// The request.
    pub payload: Bytes,
    /// How long the requester waits, in milliseconds.
    pub timeout_ms: u32,
}

/// Something the connection has for its application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The handshake completed. After a reconnect, `resumed` says whether the server kept the
    /// session (subscriptions, and the reliable messages meanwhile, of which `missed` were
    /// dropped); if it did not, the client has subscribed and registered again by itself.
    Connected {
        /// The server continued the earlier session.
        resumed: bool,
        /// Reliable messages the server dropped while away.
        missed: u32,
    },
    /// The connection failed; with reconnects on, the next attempt is `retry_in` away.
    Disconnected {
        /// Why.
        error: ClientError,
        /// When the next attempt starts; `None`: no more attempts (the connection is over).
        retry_in: Option<std::time::Duration>,
    },
    /// A published message.
    Message(Message),
    /// The answer to an operation this client sent (`id` as returned when it was sent).
    Response {
        /// The operation's id.
        id: u32,
        /// Its outcome.
        status: Status,
        /// The response body (a failure's explanation, by convention).
        payload: Bytes,
    },
    /// A queue message from a fetch.
    Delivery(Delivery),
    /// A request for a service this client registered; answer with `Connection::respond`.
    Request(IncomingRequest),
    /// A Data frame (the server echoes them).
    Data {
        /// The channel.
        channel: u8,
        /// The bytes.
        payload: Bytes,
    },
    /// The server refused a frame of this client's that has no Response to say so (an Error
    /// frame, docs/PROTOCOL.md section 4.10): a publish without an ack to a topic it cannot take,
    /// say. The session goes on.
    Refused {
        /// Why (`FRAME_TOO_LARGE`, `PROTOCOL_ERROR`, ...).
        reason: Reason,
        /// The kind byte of the refused frame (`FrameKind::Publish as u8`, ...), 0 if none.
        kind: u8,
        /// The server's explanation.
        message: Text,
    },
}
