//! Publishes a worker may deliver itself, without the hub.
//!
//! The hub's answer to a Publish depends on its state: the subscription tree, which subscribers
//! number what they get (section 5.9), who is parked, the token's permissions, whether the node
//! is in a cluster. For a Publish without an id (no answer owed) and without `RETAIN`, to a topic
//! whose subscribers are all live sessions that number nothing on that channel, the answer is
//! only "this frame to those sessions". The hub says so once ([`Hub::local_route`]), stamped with
//! its [`RouteEpoch`]; a worker that holds every one of those sessions keeps the answer and
//! delivers the topic's next Publishes itself while the epoch has not moved, reading it without
//! the hub's lock. Every change that could change such an answer moves the epoch, under the lock:
//! a subscription held or released, a holder moved (parked, resumed, taken over), a session that
//! starts numbering, a new policy for tokens, the node joining a cluster.
//!
//! The worker counts what it delivered and hands the count over once per turn
//! ([`Hub::count_local_publishes`]), so `sys.stats` reads as if each Publish had come here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use framewire_protocol::wire::{ChannelKind, Text};

use super::Hub;
use super::auth::Action;
use super::output::{ClientId, Transport};
use super::topic::check_topic;

/// A count of changes to what the hub would answer a Publish, readable without the hub's lock.
#[derive(Debug, Clone, Default)]
pub struct RouteEpoch(Arc<AtomicU64>);

impl RouteEpoch {
    /// The epoch now. A worker compares it with the one its route was stamped with.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the epoch: every route handed out before is stale. Called with the hub held.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// The hub's answer to "where does a Publish of this topic go?", for a worker to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRoute {
    /// The [`RouteEpoch`] it holds for.
    pub epoch: u64,
    /// Whether the publishing session's token allows it.
    pub allowed: bool,
    /// The sessions a Publish of the topic on the channel goes to, as the hub lists them;
    /// `None`: only the hub can serve it (a subscriber that is parked or numbers its messages, a
    /// name the hub refuses, a cluster).
    pub to: Option<Vec<ClientId>>,
}

/// What a worker's sessions published without the hub since its last count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPublishes {
    /// How many sessions each Publish went to, one entry per Publish.
    pub fanouts: Vec<u32>,
    /// Frames in (the Publishes) and out (the Messages), by transport, as
    /// [`Transport::index`] orders them.
    pub frames: [(u64, u64); Transport::COUNT],
}

impl LocalPublishes {
    /// Counts one Publish from `from`, delivered to `to` sessions (`delivered` of them took it).
    pub fn count(&mut self, from: ClientId, delivered: &[ClientId]) {
        self.fanouts
            .push(u32::try_from(delivered.len()).unwrap_or(u32::MAX));
        self.frames[from.transport().index()].0 += 1;
        for to in delivered {
            self.frames[to.transport().index()].1 += 1;
        }
    }

    /// Whether there is nothing to count.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fanouts.is_empty()
    }
}

impl Hub {
    /// The hub's route epoch, for the workers to read without its lock.
    #[must_use]
    pub fn route_epoch(&self) -> RouteEpoch {
        self.pubsub.epoch().clone()
    }

    /// Where a Publish of `topic` from `client` on `channel` (of kind `kind` in its session) goes,
    /// if the hub would do nothing with it but deliver it: no id, no `RETAIN` (the caller checks
    /// both), a name the hub takes, no cluster, and every subscriber a live session that numbers
    /// nothing on that channel; and whether `client`'s token allows it.
    #[must_use]
    pub fn local_route(
        &self,
        client: ClientId,
        topic: &Text,
        channel: u8,
        kind: ChannelKind,
    ) -> LocalRoute {
        let takes = !self.clustered
            && !topic.is_empty()
            && topic.len() <= self.config.max_name_len
            && check_topic(topic.as_str()).is_ok();
        LocalRoute {
            epoch: self.pubsub.epoch().get(),
            allowed: self.gate.allows(client, Action::Publish(topic.as_str())),
            to: takes
                .then(|| {
                    self.pubsub
                        .live_subscribers(topic, channel, kind.is_reliable())
                })
                .flatten(),
        }
    }

    /// Counts what a worker's sessions published without the hub, as [`Hub::handle_frame`] would
    /// have counted each, and empties `local`.
    pub fn count_local_publishes(&mut self, local: &mut LocalPublishes) {
        for fanout in local.fanouts.drain(..) {
            self.stats.published += 1;
            self.stats.published_by_workers += 1;
            self.stats.delivered += u64::from(fanout);
            self.stats.fanout.observe(u64::from(fanout));
        }
        for (t, (frames_in, frames_out)) in Transport::ALL.into_iter().zip(&mut local.frames) {
            let stats = self.stats.transport(t);
            stats.frames_in += std::mem::take(frames_in);
            stats.frames_out += std::mem::take(frames_out);
        }
    }
}
