//! What the hub hands the event loop: frames addressed to sessions.

use std::collections::VecDeque;

use bytes::Bytes;
use framewire_protocol::wire::{Frame, Reason, Response, SharedFrame, Status};

/// A session the hub serves, named by its transport and the event loop's key for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientId {
    /// A TCP connection, by its event-loop token.
    Tcp(usize),
    /// A UDP session, by its connection id.
    Udp(u64),
}

/// One of the two transports, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl ClientId {
    /// Which transport the session runs on.
    pub fn transport(self) -> Transport {
        match self {
            Self::Tcp(_) => Transport::Tcp,
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

/// A frame and the session it is for.
#[derive(Debug, Clone)]
pub struct Output {
    /// The session.
    pub to: ClientId,
    /// The frame.
    pub delivery: Delivery,
}

/// The queue of outputs, in the order they were produced, and a count of the operations refused,
/// by status.
#[derive(Debug, Default)]
pub(crate) struct Outputs(VecDeque<Output>, std::collections::BTreeMap<u16, u64>);

impl Outputs {
    pub(crate) fn frame(&mut self, to: ClientId, frame: Frame) {
        self.0.push_back(Output {
            to,
            delivery: Delivery::Frame(frame),
        });
    }

    pub(crate) fn close(&mut self, to: ClientId, reason: Reason, why: &'static str) {
        self.0.push_back(Output {
            to,
            delivery: Delivery::Close(reason, why),
        });
    }

    pub(crate) fn shared(&mut self, to: ClientId, frame: SharedFrame) {
        self.0.push_back(Output {
            to,
            delivery: Delivery::Shared(frame),
        });
    }

    /// A Response to operation `id`; none for id 0, which asks for none (section 5).
    pub(crate) fn respond(&mut self, to: ClientId, id: u32, status: Status, payload: Bytes) {
        if id != 0 {
            self.frame(
                to,
                Frame::new(Response {
                    id,
                    status,
                    payload,
                }),
            );
        }
    }

    /// A success with no payload.
    pub(crate) fn ok(&mut self, to: ClientId, id: u32) {
        self.respond(to, id, Status::OK, Bytes::new());
    }

    /// A failure, explained in the payload (and counted, whether or not a Response was asked for).
    pub(crate) fn fail(&mut self, to: ClientId, id: u32, status: Status, why: &str) {
        *self.1.entry(status.0).or_default() += 1;
        self.respond(to, id, status, Bytes::copy_from_slice(why.as_bytes()));
    }

    /// Operations refused so far, by status code.
    pub(crate) fn refused(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        self.1.iter().map(|(&code, &n)| (Status(code), n))
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        let out = self.0.pop_front();
        if self.0.is_empty() && self.0.capacity() > 4096 {
            // A big fan-out's queue is given back rather than kept for ever.
            self.0 = VecDeque::new();
        }
        out
    }
}
