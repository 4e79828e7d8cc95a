//! What a session hands its driver: events for the application, and datagrams to send.

use alloc::collections::VecDeque;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::wire::{Frame, Reason, Text};

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

/// The events a session has for its application, in order. Once drained it gives its buffer back:
/// each `Event` is a whole frame wide, and an idle session (of which a server holds thousands) should
/// hold no buffer.
#[derive(Debug, Default)]
pub(crate) struct EventQueue(VecDeque<Event>);

impl EventQueue {
    pub(crate) fn push_back(&mut self, event: Event) {
        self.0.push_back(event);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        let event = self.0.pop_front();
        if self.0.is_empty() && self.0.capacity() > 0 {
            self.0 = VecDeque::new();
        }
        event
    }
}
