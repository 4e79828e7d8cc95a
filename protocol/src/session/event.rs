//! What a session hands its driver: events for the application, and datagrams to send.

use alloc::collections::VecDeque;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::wire::{Frame, FrameKind, Reason, SEQ_FLAG, SEQ_LEN, Text};

/// Something the application learns from the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed: the server welcomed this client under `connection_id` (on a
    /// server: it welcomed the client).
    Connected {
        /// The id the server assigned.
        connection_id: u64,
        /// The token that resumes this session in a later Hello (empty: the server keeps none).
        session_token: Bytes,
        /// This connection continues an earlier session (the Hello's resume token named one).
        resumed: bool,
        /// On resume: reliable messages the server dropped while the client was away.
        missed: u32,
    },
    /// A message arrived on its channel, in the order the channel's kind promises.
    Frame(Frame),
    /// A message from the peer was refused unread: its frame length is above the limit agreed in
    /// the handshake. It comes where the message would have, in its channel's order, and what
    /// follows it on the channel is delivered as usual. The application answers it (a server: a
    /// Response with `PAYLOAD_TOO_LARGE` for an operation with an id, else an Error).
    Oversized(Oversized),
    /// The session is over. No more events follow.
    Closed {
        /// Why.
        reason: Reason,
        /// The peer's explanation, if the peer closed.
        message: Text,
        /// Who ended it.
        by: Closer,
    },
}

/// What a refused message's first bytes say of it (see [`Event::Oversized`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// Its kind byte.
    pub kind: u8,
    /// Its channel.
    pub channel: u8,
    /// Its operation id, for the kinds whose body starts with one (every hub kind but Message); 0
    /// otherwise.
    pub id: u32,
    /// Its frame length; for a message refused by its fragment count, the most it can be (the
    /// count times its first piece's length).
    pub len: usize,
    /// The agreed limit.
    pub max: usize,
}

impl Oversized {
    /// Reads the header of a refused message's frame body (or of its first piece), `head`, whose
    /// frame length is `len`: what it says, and its sequence number if it has one; `None` if
    /// `head` is too short to hold a frame header.
    pub(crate) fn read(head: &[u8], len: usize, max: usize) -> Option<(Self, Option<u32>)> {
        use FrameKind as K;
        let [kind, flags, channel, rest @ ..] = head else {
            return None;
        };
        let seq = usize::from(flags & SEQ_FLAG != 0) * SEQ_LEN;
        let has_id = matches!(
            FrameKind::from_u8(*kind),
            Some(
                K::Subscribe
                    | K::Unsubscribe
                    | K::Publish
                    | K::Request
                    | K::Response
                    | K::Register
                    | K::Unregister
                    | K::QueuePush
                    | K::QueueFetch
                    | K::QueueDelivery
                    | K::QueueAck
                    | K::QueueNack
                    | K::QueueExtend
            )
        );
        let u32_at = |at: usize| match rest.get(at..at + 4) {
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        };
        let id = if has_id { u32_at(seq).unwrap_or(0) } else { 0 };
        let seq = if seq > 0 { u32_at(0) } else { None };
        let refused = Self {
            kind: *kind,
            channel: *channel,
            id,
            len,
            max,
        };
        Some((refused, seq))
    }
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// This side: `close` was called, or a timer or a protocol violation ended it.
    Local,
    /// The peer sent a Close.
    Peer,
}

/// A datagram for the driver to send: `len` bytes at the start of the buffer given to
/// `poll_transmit`, to `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the datagram must be sent"]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer to send.
    pub len: usize,
}

/// The events a session has for its application, in order. Each `Event` is a whole frame wide, and
/// an idle session (of which a server holds thousands) should hold no buffer; but a session passing
/// messages that gave its buffer back at every drain would pay an allocation and three regrowths
/// (each a copy of what it held) per batch. So the buffer is kept after a drain that ended with a
/// message, if it holds at most [`KEPT_EVENTS`] (a burst's larger buffer is not kept by every
/// session that had one); it is given back after a drain that ended with anything else (the
/// handshake's event, the close), and by an idle session at its next timer
/// ([`EventQueue::release_if_empty`]).
#[derive(Debug, Default)]
pub(crate) struct EventQueue(VecDeque<Event>);

/// The most events a drained buffer may hold and still be kept for the next batch (3 KiB).
pub(crate) const KEPT_EVENTS: usize = 32;

impl EventQueue {
    pub(crate) fn push_back(&mut self, event: Event) {
        self.0.push_back(event);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn front(&self) -> Option<&Event> {
        self.0.front()
    }

    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        let event = self.0.pop_front();
        let keep = match event {
            Some(Event::Frame(_)) => self.0.capacity() <= KEPT_EVENTS,
            Some(_) => false,
            None => true,
        };
        if !keep {
            self.release_if_empty();
        }
        event
    }

    /// Gives the buffer back if nothing waits in it (a session calls this from its timers, so one
    /// that has gone quiet holds no buffer).
    pub(crate) fn release_if_empty(&mut self) {
        if self.0.is_empty() && self.0.capacity() > 0 {
            self.0 = VecDeque::new();
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Data, Reason};

    fn message() -> Event {
        Event::Frame(Frame::new(Data {
            payload: Bytes::from_static(b"m"),
        }))
    }

    #[test]
    fn a_queue_drained_of_messages_keeps_its_buffer_until_released() {
        let mut q = EventQueue::default();
        for _ in 0..5 {
            q.push_back(message());
        }
        let grown = q.capacity();
        while q.pop_front().is_some() {}
        assert_eq!(q.capacity(), grown, "the next batch reuses the buffer");
        q.push_back(message());
        assert_eq!(q.capacity(), grown, "no regrowth");
        q.release_if_empty();
        assert_eq!(q.capacity(), grown, "not released while an event waits");
        assert!(q.pop_front().is_some());
        q.release_if_empty();
        assert_eq!(q.capacity(), 0);
    }

    #[test]
    fn a_burst_larger_than_the_kept_buffer_gives_it_back_when_drained() {
        let mut q = EventQueue::default();
        for _ in 0..=KEPT_EVENTS {
            q.push_back(message());
        }
        assert!(q.capacity() > KEPT_EVENTS);
        while q.pop_front().is_some() {}
        assert_eq!(q.capacity(), 0);
    }

    #[test]
    fn a_queue_drained_of_anything_else_gives_its_buffer_back() {
        let mut q = EventQueue::default();
        q.push_back(message());
        q.push_back(Event::Closed {
            reason: Reason::NORMAL,
            message: Text::default(),
            by: Closer::Peer,
        });
        assert!(matches!(q.pop_front(), Some(Event::Frame(_))));
        assert!(q.capacity() > 0, "the close still waits");
        assert!(matches!(q.pop_front(), Some(Event::Closed { .. })));
        assert_eq!(q.capacity(), 0);
        assert!(q.pop_front().is_none());
    }
}
