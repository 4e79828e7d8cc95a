//! Publishes a worker delivers itself (see `crate::hub::local_route`): a Publish at the front of
//! a TCP, TLS or WebSocket connection's frames for the hub, with no id and no `RETAIN`, to a topic
//! whose subscribers are all this worker's sessions (stream or UDP), goes from the read straight
//! to their outputs: one encoding of the Message in a buffer the worker keeps, no hub lock, no
//! output queue, no inbox. The worker keeps what the hub said of each topic and of each
//! publisher's permission, stamped with the hub's route epoch, and uses it only while the epoch
//! has not moved; what it does not know it asks the hub under the lock of the turn's dispatch,
//! and the Publish goes to the hub as before.
//!
//! Order: only frames at the front of a session's queue are taken, so nothing its client sent
//! earlier is still waiting for the hub; and the hub's answers to earlier turns are delivered by
//! those turns' dispatches. So a subscriber gets one publisher's messages in the order they were
//! sent, whichever way each went.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use bytes::BytesMut;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{ChannelKind, Frame, FrameBody, Message, SharedFrame, Text};
use log::warn;
use mio::Token;

use super::Worker;
use crate::connection::Connection;
use crate::hub::{ClientId, Delivery, Hub, LocalPublishes};
use crate::id_map::IdMap;
use crate::udp::UdpService;

/// Topics whose routes a worker keeps, at most; past it, it forgets them all and learns again.
const MAX_TOPICS: usize = 4096;

/// Sessions named by all the routes a worker keeps, at most (8 bytes each).
const MAX_ROUTED: usize = 256 * 1024;

/// Topics a publisher's permission is kept for, at most (the oldest is replaced).
const PERMITS_PER_PUBLISHER: usize = 4;

/// Where a Publish of a topic goes, as the hub said at `epoch`.
#[derive(Debug)]
struct Route {
    channel: u8,
    reliable: bool,
    epoch: u64,
    /// `None`: to the hub.
    to: Option<Arc<[ClientId]>>,
}

/// A topic a publisher may publish to, as the hub said at `epoch`.
#[derive(Debug)]
struct Permit {
    topic: Text,
    epoch: u64,
    allowed: bool,
}

/// What a worker knows of where a Publish goes.
#[derive(Debug)]
enum Known<'a> {
    /// To these sessions, all the worker's.
    Here(&'a Arc<[ClientId]>),
    /// To the hub.
    Hub,
    /// Nothing (or nothing at this epoch): ask the hub.
    Unknown,
}

/// A Publish the worker has no route for: asked of the hub in the dispatch.
#[derive(Debug)]
struct Wanted {
    from: Token,
    topic: Text,
    channel: u8,
    kind: ChannelKind,
}

/// What a worker knows of where its sessions' Publishes go.
#[derive(Debug, Default)]
pub(super) struct LocalRoutes {
    routes: HashMap<Text, Vec<Route>>,
    routed: usize,
    permits: HashMap<Token, Vec<Permit>>,
    wanted: Vec<Wanted>,
    /// Where each Message is encoded (`SharedFrame::new_in`).
    scratch: BytesMut,
    /// What went out since the dispatch last counted it in the hub.
    counted: LocalPublishes,
}

impl LocalRoutes {
    /// Where a Publish of `topic` on `channel` from `from` goes, as far as it is known at `epoch`.
    fn find(
        &self,
        epoch: u64,
        from: Token,
        topic: &Text,
        channel: u8,
        reliable: bool,
    ) -> Known<'_> {
        let permit = self.permits.get(&from).and_then(|permits| {
            permits
                .iter()
                .find(|p| p.epoch == epoch && p.topic == *topic)
        });
        let route = self.routes.get(topic).and_then(|routes| {
            routes
                .iter()
                .find(|r| r.epoch == epoch && r.channel == channel && r.reliable == reliable)
        });
        match (permit, route) {
            (Some(p), Some(r)) => match &r.to {
                Some(to) if p.allowed => Known::Here(to),
                _ => Known::Hub,
            },
            _ => Known::Unknown,
        }
    }

    fn want(&mut self, from: Token, topic: &Text, channel: u8, kind: ChannelKind) {
        // A connection asks once per read (its frames after this one wait for the hub).
        let asked = self
            .wanted
            .last()
            .is_some_and(|w| w.from == from && w.topic == *topic && w.channel == channel);
        if !asked {
            self.wanted.push(Wanted {
                from,
                topic: topic.clone(),
                channel,
                kind,
            });
        }
    }

    /// Asks the hub what the turn's reads did not know, keeping only routes whose every session
    /// `is_local` says this worker holds.
    fn learn(&mut self, hub: &Hub, is_local: impl Fn(ClientId) -> bool) {
        for w in std::mem::take(&mut self.wanted) {
            let answer = hub.local_route(ClientId::Tcp(w.from.0), &w.topic, w.channel, w.kind);
            let to = answer
                .to
                .filter(|to| to.iter().all(|&c| is_local(c)))
                .map(Arc::<[ClientId]>::from);
            self.keep_permit(w.from, &w.topic, answer.epoch, answer.allowed);
            self.keep_route(w.topic, w.channel, w.kind.is_reliable(), answer.epoch, to);
        }
    }

    fn keep_permit(&mut self, from: Token, topic: &Text, epoch: u64, allowed: bool) {
        let permits = self.permits.entry(from).or_default();
        permits.retain(|p| p.epoch == epoch && p.topic != *topic);
        if permits.len() >= PERMITS_PER_PUBLISHER {
            permits.remove(0);
        }
        permits.push(Permit {
            topic: topic.clone(),
            epoch,
            allowed,
        });
    }

    fn keep_route(
        &mut self,
        topic: Text,
        channel: u8,
        reliable: bool,
        epoch: u64,
        to: Option<Arc<[ClientId]>>,
    ) {
        let len = to.as_ref().map_or(0, |t| t.len());
        if self.routes.len() >= MAX_TOPICS || self.routed + len > MAX_ROUTED {
            self.routes.clear();
            self.routed = 0;
        }
        let routes = match self.routes.entry(topic) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Vec::new()),
        };
        routes.retain(|r| {
            let keep = r.epoch == epoch && (r.channel, r.reliable) != (channel, reliable);
            if !keep {
                self.routed -= r.to.as_ref().map_or(0, |t| t.len());
            }
            keep
        });
        self.routed += len;
        routes.push(Route {
            channel,
            reliable,
            epoch,
            to,
        });
    }

    /// In the dispatch, with the hub held: learns the routes the turn's reads asked for (keeping
    /// those whose every session is among `connections` or `udp`'s, this worker's), and counts
    /// what the worker delivered itself.
    pub(super) fn settle(
        &mut self,
        hub: &mut Hub,
        connections: &IdMap<Token, Box<Connection>>,
        udp: Option<&UdpService>,
    ) {
        self.learn(hub, |c| match c {
            ClientId::Tcp(t) => connections.contains_key(&Token(t)),
            ClientId::Udp(id) => udp.is_some_and(|u| u.holds(id)),
        });
        if !self.counted.is_empty() {
            hub.count_local_publishes(&mut self.counted);
        }
    }

    /// A connection ended: its permits go.
    pub(super) fn forget(&mut self, from: Token) {
        self.permits.remove(&from);
    }
}

impl Worker {
    /// Delivers the Publishes at the front of `token`'s frames for the hub that the worker has a
    /// route for; the first it has none for is asked of the hub in the dispatch, and waits for
    /// the hub with whatever follows it.
    pub(super) fn publish_locally(&mut self, now: Instant, token: Token) {
        let epoch = self.shared.routes.get();
        let from = ClientId::Tcp(token.0);
        loop {
            let Some(conn) = self.connections.get_mut(&token) else {
                return;
            };
            let Some((channel, p)) = conn.front_publish() else {
                return;
            };
            let kind = conn.channel_kind(channel);
            let routes = &mut self.local_routes;
            let to = match routes.find(epoch, token, &p.topic, channel, kind.is_reliable()) {
                Known::Here(to) => to.clone(),
                Known::Hub => return,
                Known::Unknown => return routes.want(token, &p.topic, channel, kind),
            };
            let Some(FrameBody::Publish(p)) = conn.take_frame().map(|f| f.body) else {
                return;
            };
            let message = Frame::new(Message {
                retained: false,
                number: None,
                topic: p.topic,
                payload: p.payload,
            })
            .on_channel(channel);
            // A stream session copies the encoding into its output; a datagram session keeps it
            // until acknowledged, and must not keep a scratch block alive with it: its own
            // buffer then. The Publish parsed, so its Message fits; a failure is a fault.
            let keeps = to.iter().any(|c| matches!(c, ClientId::Udp(_)));
            let encoded = if keeps {
                SharedFrame::new(&message)
            } else {
                SharedFrame::new_in(&message, &mut routes.scratch)
            };
            let shared = match encoded {
                Ok(s) => Delivery::Shared(s),
                Err(e) => return warn!("cannot encode a message: {e}"),
            };
            for &client in to.iter() {
                match client {
                    ClientId::Tcp(t) => {
                        if let Some(sub) = self.connections.get_mut(&Token(t)) {
                            sub.deliver(now, &shared, &self.shared, client);
                            if sub.mark_dirty() {
                                self.dirty_tcp.push(Token(t));
                            }
                        }
                    }
                    ClientId::Udp(id) => {
                        if let Some(udp) = self.udp.as_mut() {
                            udp.deliver(id, now, shared.clone(), &self.shared);
                            if udp.mark_dirty(id) {
                                self.dirty_udp.push(id);
                            }
                        }
                    }
                }
            }
            self.local_routes.counted.count(from, &to);
        }
    }
}
