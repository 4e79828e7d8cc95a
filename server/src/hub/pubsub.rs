//! Publish/subscribe: subscriptions by filter, retained messages, the fan-out of a publish to every
//! matching subscriber with one encoding shared by all (docs/PROTOCOL.md sections 5.1-5.3), and
//! parked sessions: the subscriptions of a session that ended without a Close, kept until it
//! resumes or expires, with the reliable messages published to them meanwhile (bounded; the oldest
//! go first, and are counted as missed). A session whose client confirms what it receives has its
//! reliable Messages numbered and kept until confirmed ([`Unconfirmed`]), and a resume or a
//! takeover sends it again every one it did not confirm.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use framewire_protocol::wire::{
    ChannelKind, Frame, FrameBody, Message, NumberedMessage, SharedFrame, Status, Text,
};
use log::warn;

use super::config::HubConfig;
use super::local_route::RouteEpoch;
use super::output::{ClientId, Outputs};
use super::topic::{SubscriptionTree, check_filter, check_topic, matches};
use super::unconfirmed::Unconfirmed;
use crate::store::record::retained_len;
use crate::store::{KeptMessage, Record, SessionRecord, State, StoredRetained};

/// A topic's retained message and the channel it was published on.
#[derive(Debug)]
struct Retained {
    payload: Bytes,
    channel: u8,
}

/// Who holds a subscription: a live session, or a parked one waiting to be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Subscriber {
    Live(ClientId),
    Parked(u64),
}

/// A session's state kept after it ended without a Close.
#[derive(Debug)]
struct Parked {
    /// The session's key.
    origin: u64,
    messages: VecDeque<SharedFrame>,
    missed: u32,
    /// When it was parked, in milliseconds since the UNIX epoch.
    at_ms: u64,
}

/// A parked session as a snapshot of the log writes it.
#[derive(Debug)]
pub(crate) struct ParkedView {
    pub(crate) key: u64,
    pub(crate) filters: Vec<Text>,
    pub(crate) at_ms: u64,
    pub(crate) kept: Vec<KeptMessage>,
}

/// A Message frame as the log keeps it (parsed back from its encoding: only when parking or
/// compacting).
fn kept_message(frame: &SharedFrame) -> Option<KeptMessage> {
    let f = Frame::parse(frame.body()).ok()?;
    match f.body {
        FrameBody::Message(m) => Some(KeptMessage {
            channel: f.channel,
            topic: m.topic,
            payload: m.payload,
        }),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub(crate) struct PubSub {
    tree: SubscriptionTree<Subscriber>,
    /// Each holder's filters, to move or remove them.
    filters: HashMap<Subscriber, Vec<Text>>,
    retained: HashMap<Text, Retained>,
    subscriptions: usize,
    parked: HashMap<u64, Parked>,
    /// Parked sessions by key.
    parked_by_origin: HashMap<u64, u64>,
    next_parked: u64,
    /// The numbering of each holder whose client confirms, live or parked.
    confirming: HashMap<Subscriber, Unconfirmed>,
    /// In a cluster: the filters that got their first holder (`true`) or lost their last since
    /// the last [`PubSub::take_interest`]. `None` on a node alone.
    interest: Option<Vec<(Text, bool)>>,
    /// Moved by every change to who holds what and who numbers (the workers' routes,
    /// [`super::local_route`]).
    epoch: RouteEpoch,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fanout {
    pub(crate) deliveries: usize,
    /// The last log record it made (the retained message it set, the messages kept for parked
    /// sessions), if it made any: its OK waits for it.
    pub(crate) seq: Option<u64>,
}

/// A parked session handed back to a resuming one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resumed {
    pub(crate) parked: u64,
    pub(crate) missed: u32,
}

impl PubSub {
    /// Starts telling which filters this node holds: every filter held now comes first.
    pub(crate) fn track_interest(&mut self) {
        let mut held: Vec<&Text> = self.filters.values().flatten().collect();
        held.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        held.dedup();
        self.interest = Some(held.into_iter().map(|f| (f.clone(), true)).collect());
    }

    /// The changes to the filters held since the last call.
    pub(crate) fn take_interest(&mut self) -> Vec<(Text, bool)> {
        self.interest
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub(crate) fn epoch(&self) -> &RouteEpoch {
        &self.epoch
    }

    /// The live sessions a publish of `topic` on `channel` goes to, if those are all it touches:
    /// no parked holder, and none that numbers what it gets on that channel (when the publish is
    /// `reliable`). `None` otherwise.
    pub(crate) fn live_subscribers(
        &self,
        topic: &Text,
        channel: u8,
        reliable: bool,
    ) -> Option<Vec<ClientId>> {
        self.tree
            .subscribers(topic.as_str())
            .into_iter()
            .map(|s| match s {
                Subscriber::Live(client)
                    if !reliable
                        || !self
                            .confirming
                            .get(&s)
                            .is_some_and(|u| u.is_reliable(channel)) =>
                {
                    Some(client)
                }
                _ => None,
            })
            .collect()
    }

    fn hold(&mut self, filter: &Text, holder: Subscriber) {
        self.epoch.bump();
        let first = self.interest.is_some() && !self.tree.is_held(filter.as_str());
        self.tree.insert(filter.as_str(), holder);
        if first && let Some(changes) = self.interest.as_mut() {
            changes.push((filter.clone(), true));
        }
    }

    fn release(&mut self, filter: &Text, holder: Subscriber) {
        self.epoch.bump();
        let removed = self.tree.remove(filter.as_str(), holder);
        if removed
            && !self.tree.is_held(filter.as_str())
            && let Some(changes) = self.interest.as_mut()
        {
            changes.push((filter.clone(), false));
        }
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    pub(crate) fn retained(&self) -> usize {
        self.retained.len()
    }

    pub(crate) fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Subscribes `client` to `filter`, then sends it the retained messages the filter covers.
    /// `record` is called when the filter is new to the session: the OK waits for the record it
    /// returns, if any.
    pub(crate) fn subscribe(
        &mut self,
        config: &HubConfig,
        client: ClientId,
        id: u32,
        filter: &Text,
        out: &mut Outputs,
        record: impl FnOnce(&mut Outputs) -> Option<u64>,
    ) {
        if let Err(e) = check_filter(filter.as_str()) {
            return out.fail(client, id, Status::INVALID_TOPIC, &e.to_string());
        }
        let me = Subscriber::Live(client);
        let mine = self.filters.entry(me).or_default();
        if mine.contains(filter) {
            out.ok(client, id);
        } else {
            if mine.len() >= config.max_subscriptions_per_session {
                return out.fail(
                    client,
                    id,
                    Status::LIMIT_REACHED,
                    "too many subscriptions for one session",
                );
            }
            mine.push(filter.clone());
            self.hold(filter, me);
            self.subscriptions += 1;
            let seq = record(out);
            out.ok_once(client, id, seq);
        }
        // Late joiners get the retained state of every topic the filter covers (MQTT 3.3.1.3).
        for (topic, r) in &self.retained {
            if matches(filter.as_str(), topic.as_str()) {
                let frame = Frame::new(Message {
                    retained: true,
                    number: None,
                    topic: topic.clone(),
                    payload: r.payload.clone(),
                })
                .on_channel(r.channel);
                out.frame(client, frame);
            }
        }
    }

    /// Takes `filter` from `client`'s subscriptions; `record` as for [`PubSub::subscribe`], told
    /// whether the session has subscriptions left.
    pub(crate) fn unsubscribe(
        &mut self,
        client: ClientId,
        id: u32,
        filter: &Text,
        out: &mut Outputs,
        record: impl FnOnce(&mut Outputs, bool) -> Option<u64>,
    ) {
        let me = Subscriber::Live(client);
        let removed = self
            .filters
            .get_mut(&me)
            .is_some_and(|mine| super::remove_one(mine, filter));
        if removed {
            self.release(filter, me);
            self.subscriptions -= 1;
            let left = !self.filters.get(&me).is_some_and(Vec::is_empty);
            if !left {
                self.filters.remove(&me);
            }
            let seq = record(out, left);
            out.ok_once(client, id, seq);
        } else {
            out.fail(
                client,
                id,
                Status::NOT_FOUND,
                "no subscription with that filter",
            );
        }
    }

    /// Publishes to every matching subscriber; `retain` also keeps (or, when empty, clears) the
    /// topic's retained message. A parked subscriber keeps the message if it travels `reliable`.
    /// On error nothing was published.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &mut self,
        config: &HubConfig,
        channel: u8,
        reliable: bool,
        retain: bool,
        topic: &Text,
        payload: &Bytes,
        out: &mut Outputs,
    ) -> Result<Fanout, (Status, String)> {
        check_topic(topic.as_str()).map_err(|e| (Status::INVALID_TOPIC, e.to_string()))?;
        let mut seq = if retain {
            self.keep_retained(config, channel, topic, payload, out)?
        } else {
            None
        };
        let subscribers = self.tree.subscribers(topic.as_str());
        if subscribers.is_empty() {
            return Ok(Fanout { deliveries: 0, seq });
        }
        let message = Frame::new(Message {
            retained: false,
            number: None,
            topic: topic.clone(),
            payload: payload.clone(),
        })
        .on_channel(channel);
        // The topic and payload came in a frame that parsed, so they fit; this is a fault.
        let shared = SharedFrame::new(&message).map_err(|e| {
            warn!("cannot encode a message on {topic}: {e}");
            (Status::INTERNAL, e.to_string())
        })?;
        let mut deliveries = 0;
        let bound = (config.max_parked_messages, config.max_unconfirmed_bytes);
        // Encoded with a number slot when the first subscriber that confirms is met.
        let mut numbered: Option<NumberedMessage> = None;
        for subscriber in subscribers {
            // Most fan-outs number nothing: no lookup per subscriber then.
            let numbering = if reliable && !self.confirming.is_empty() {
                self.confirming
                    .get_mut(&subscriber)
                    .filter(|u| u.is_reliable(channel))
                    .and_then(|u| {
                        if numbered.is_none() {
                            numbered = NumberedMessage::new(&message).ok().flatten();
                        }
                        Some((u, numbered.as_ref()?))
                    })
            } else {
                None
            };
            match (subscriber, numbering) {
                (Subscriber::Live(client), Some((u, numbered))) => {
                    out.shared(client, u.number(numbered, bound));
                    deliveries += 1;
                }
                (Subscriber::Live(client), None) => {
                    out.shared(client, shared.clone());
                    deliveries += 1;
                }
                (Subscriber::Parked(n), Some((u, numbered))) => {
                    u.number(numbered, bound);
                    if let Some(p) = self.parked.get(&n) {
                        seq = record_kept(p.origin, channel, topic, payload, out).or(seq);
                    }
                }
                (Subscriber::Parked(n), None) if reliable => {
                    if let Some(p) = self.parked.get_mut(&n) {
                        if p.messages.len() >= config.max_parked_messages {
                            p.messages.pop_front();
                            p.missed = p.missed.saturating_add(1);
                        }
                        p.messages.push_back(shared.clone());
                        seq = record_kept(p.origin, channel, topic, payload, out).or(seq);
                    }
                }
                (Subscriber::Parked(_), None) => {}
            }
        }
        Ok(Fanout { deliveries, seq })
    }

    /// Keeps (or, when `payload` is empty, clears) the retained message of `topic`; the log
    /// record's sequence number, if there is a log.
    pub(crate) fn keep_retained(
        &mut self,
        config: &HubConfig,
        channel: u8,
        topic: &Text,
        payload: &Bytes,
        out: &mut Outputs,
    ) -> Result<Option<u64>, (Status, String)> {
        let before = self
            .retained
            .get(topic)
            .map_or(0, |r| retained_len(topic, &r.payload));
        if payload.is_empty() {
            self.retained.remove(topic);
        } else if self.retained.len() >= config.max_retained && !self.retained.contains_key(topic) {
            return Err((
                Status::LIMIT_REACHED,
                "the server keeps no more retained topics".into(),
            ));
        } else {
            self.retained.insert(
                topic.clone(),
                Retained {
                    payload: payload.clone(),
                    channel,
                },
            );
        }
        let after = if payload.is_empty() {
            0
        } else {
            retained_len(topic, payload)
        };
        Ok(out.record(
            || Record::Retained {
                channel,
                topic: topic.clone(),
                payload: payload.clone(),
            },
            after,
            before,
        ))
    }

    /// Starts numbering the reliable Messages of a live session whose client confirms them; its
    /// layout (the kinds of channels 1..=N) says which channels are reliable for it.
    pub(crate) fn number_for(&mut self, client: ClientId, layout: Vec<ChannelKind>) {
        self.epoch.bump();
        self.confirming
            .insert(Subscriber::Live(client), Unconfirmed::new(layout));
    }

    /// A client's Ack: the Messages it numbers are delivered and need not be kept.
    pub(crate) fn confirm(&mut self, client: ClientId, through: u32) {
        if let Some(u) = self.confirming.get_mut(&Subscriber::Live(client)) {
            u.confirm(through);
        }
    }

    /// Messages kept until confirmed, in every session.
    pub(crate) fn unconfirmed(&self) -> usize {
        self.confirming.values().map(Unconfirmed::len).sum()
    }

    /// Moves every subscription of `from` to `to`, and its numbering.
    fn rekey(&mut self, from: Subscriber, to: Subscriber) {
        self.epoch.bump();
        if let Some(u) = self.confirming.remove(&from) {
            self.confirming.insert(to, u);
        }
        let Some(list) = self.filters.remove(&from) else {
            return;
        };
        for filter in &list {
            self.tree.remove(filter.as_str(), from);
            self.tree.insert(filter.as_str(), to);
        }
        self.filters.entry(to).or_default().extend(list);
    }

    /// Parks the subscriptions of a session (key `key`) that ended without a Close at `at_ms`
    /// (milliseconds since the UNIX epoch); returns the parked session's number (for its expiry
    /// timer), or `None` when there is nothing to keep or no room (then they are dropped). The
    /// log, if it has the session, records it parked with the messages it had not confirmed.
    pub(crate) fn park(
        &mut self,
        config: &HubConfig,
        client: ClientId,
        key: u64,
        at_ms: u64,
        out: &mut Outputs,
    ) -> Option<u64> {
        let live = Subscriber::Live(client);
        let unconfirmed = self.confirming.get(&live).is_some_and(|u| u.len() > 0);
        if !self.filters.contains_key(&live) && !unconfirmed {
            self.confirming.remove(&live);
            return None;
        }
        if self.parked.len() >= config.max_parked_sessions {
            self.forget(client);
            return None;
        }
        self.next_parked += 1;
        let n = self.next_parked;
        self.rekey(live, Subscriber::Parked(n));
        self.parked.insert(
            n,
            Parked {
                origin: key,
                messages: VecDeque::new(),
                missed: 0,
                at_ms,
            },
        );
        self.parked_by_origin.insert(key, n);
        if out
            .record_session(SessionRecord::Parked { key, at_ms })
            .is_some()
            && let Some(u) = self.confirming.get(&Subscriber::Parked(n))
        {
            for m in u.kept().filter_map(kept_message) {
                out.record_session(SessionRecord::Kept { key, message: m });
            }
        }
        Some(n)
    }

    /// Takes up a session the data directory held, parked at `at_ms` with `kept` messages (the
    /// newest of them, within the bound); its number, for its expiry timer.
    pub(crate) fn restore_parked(
        &mut self,
        config: &HubConfig,
        key: u64,
        filters: &[Text],
        kept: &[KeptMessage],
        at_ms: u64,
    ) -> u64 {
        self.next_parked += 1;
        let n = self.next_parked;
        let holder = Subscriber::Parked(n);
        for filter in filters {
            self.hold(filter, holder);
        }
        self.subscriptions += filters.len();
        self.filters.insert(holder, filters.to_vec());
        let skip = kept.len().saturating_sub(config.max_parked_messages);
        let messages = kept[skip..]
            .iter()
            .filter_map(|m| {
                let frame = Frame::new(Message {
                    retained: false,
                    number: None,
                    topic: m.topic.clone(),
                    payload: m.payload.clone(),
                })
                .on_channel(m.channel);
                SharedFrame::new(&frame).ok()
            })
            .collect();
        self.parked.insert(
            n,
            Parked {
                origin: key,
                messages,
                missed: u32::try_from(skip).unwrap_or(u32::MAX),
                at_ms,
            },
        );
        self.parked_by_origin.insert(key, n);
        n
    }

    /// The live sessions that hold subscriptions.
    pub(crate) fn live_holders(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.filters.keys().filter_map(|h| match h {
            Subscriber::Live(c) => Some(*c),
            Subscriber::Parked(_) => None,
        })
    }

    /// A live session's filters.
    pub(crate) fn filters_of(&self, client: ClientId) -> Vec<Text> {
        self.filters
            .get(&Subscriber::Live(client))
            .cloned()
            .unwrap_or_default()
    }

    /// The parked sessions, as a snapshot writes them.
    pub(crate) fn parked_views(&self) -> Vec<ParkedView> {
        self.parked
            .iter()
            .map(|(n, p)| {
                let holder = Subscriber::Parked(*n);
                let unconfirmed = self.confirming.get(&holder);
                let kept = unconfirmed
                    .into_iter()
                    .flat_map(Unconfirmed::kept)
                    .chain(p.messages.iter())
                    .filter_map(kept_message)
                    .collect();
                ParkedView {
                    key: p.origin,
                    filters: self.filters.get(&holder).cloned().unwrap_or_default(),
                    at_ms: p.at_ms,
                    kept,
                }
            })
            .collect()
    }

    /// Gives the parked session of key `origin` to `client`: its subscriptions, then the
    /// messages kept for it, in order. `confirms` is the new client's layout if it confirms what
    /// it receives (the messages it did not confirm come again, numbered), `None` if not.
    pub(crate) fn resume(
        &mut self,
        origin: u64,
        client: ClientId,
        confirms: Option<Vec<ChannelKind>>,
        out: &mut Outputs,
    ) -> Option<Resumed> {
        let n = self.parked_by_origin.remove(&origin)?;
        let p = self.parked.remove(&n)?;
        self.rekey(Subscriber::Parked(n), Subscriber::Live(client));
        let missed = self.send_unconfirmed(client, confirms, out);
        for m in p.messages {
            out.shared(client, m);
        }
        Some(Resumed {
            parked: n,
            missed: p.missed.saturating_add(missed),
        })
    }

    /// Gives the subscriptions of a live session to the one that takes it over, and sends it again
    /// the messages the old connection had not had confirmed (`confirms` as for
    /// [`PubSub::resume`]); returns whether it had any subscriptions, and the number missed.
    pub(crate) fn take_over(
        &mut self,
        from: ClientId,
        to: ClientId,
        confirms: Option<Vec<ChannelKind>>,
        out: &mut Outputs,
    ) -> (bool, u32) {
        let had = self.filters.contains_key(&Subscriber::Live(from))
            || self.confirming.contains_key(&Subscriber::Live(from));
        self.rekey(Subscriber::Live(from), Subscriber::Live(to));
        (had, self.send_unconfirmed(to, confirms, out))
    }

    /// A resumed session's numbered messages, sent again: numbered to a client that confirms
    /// (which starts numbering if the old one did not), without numbers to one that does not.
    /// Returns how many the bound pushed out.
    fn send_unconfirmed(
        &mut self,
        client: ClientId,
        confirms: Option<Vec<ChannelKind>>,
        out: &mut Outputs,
    ) -> u32 {
        let live = Subscriber::Live(client);
        let (frames, missed) = match (self.confirming.get_mut(&live), confirms) {
            (Some(u), Some(layout)) => {
                let (floor, kept, missed) = u.resend(layout);
                out.frame(client, floor);
                for m in kept {
                    out.shared(client, m);
                }
                return missed;
            }
            (None, Some(layout)) => {
                self.number_for(client, layout);
                return 0;
            }
            (Some(_), None) => match self.confirming.remove(&live) {
                Some(u) => u.into_unnumbered(),
                None => return 0,
            },
            (None, None) => return 0,
        };
        for frame in frames {
            out.frame(client, frame);
        }
        missed
    }

    /// A parked session expired: its subscriptions and messages go.
    /// Returns the key of the session it was parked for.
    pub(crate) fn expire(&mut self, n: u64) -> Option<u64> {
        let p = self.parked.remove(&n)?;
        self.parked_by_origin.remove(&p.origin);
        self.confirming.remove(&Subscriber::Parked(n));
        self.drop_filters(Subscriber::Parked(n));
        Some(p.origin)
    }

    /// Drops every subscription of a session that ended for good.
    pub(crate) fn forget(&mut self, client: ClientId) {
        self.confirming.remove(&Subscriber::Live(client));
        self.drop_filters(Subscriber::Live(client));
    }

    fn drop_filters(&mut self, holder: Subscriber) {
        if let Some(list) = self.filters.remove(&holder) {
            for filter in &list {
                self.release(filter, holder);
            }
            self.subscriptions -= list.len();
        }
    }
}

/// Records a message kept for the parked session of `key`, if the log has that session; the
/// record's sequence number (the publish's OK waits for it).
fn record_kept(
    key: u64,
    channel: u8,
    topic: &Text,
    payload: &Bytes,
    out: &mut Outputs,
) -> Option<u64> {
    if !out.is_durable() {
        return None;
    }
    out.record_session(SessionRecord::Kept {
        key,
        message: KeptMessage {
            channel,
            topic: topic.clone(),
            payload: payload.clone(),
        },
    })
}

impl PubSub {
    /// Takes up the retained messages a data directory held; the size they take in the log.
    pub(crate) fn restore(&mut self, state: &State) -> u64 {
        let mut live = 0;
        for (topic, r) in &state.retained {
            live += retained_len(topic, &r.payload) as u64;
            self.retained.insert(
                topic.clone(),
                Retained {
                    payload: r.payload.clone(),
                    channel: r.channel,
                },
            );
        }
        live
    }

    /// The retained messages' part of a snapshot.
    pub(crate) fn snapshot_into(&self, state: &mut State) {
        state
            .retained
            .extend(self.retained.iter().map(|(topic, r)| {
                (
                    topic.clone(),
                    StoredRetained {
                        channel: r.channel,
                        payload: r.payload.clone(),
                    },
                )
            }));
    }
}
