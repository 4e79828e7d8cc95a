//! Publish/subscribe: subscriptions by filter, retained messages, and the fan-out of a publish to
//! every matching subscriber with one encoding shared by all (docs/PROTOCOL.md sections 5.1-5.3).

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::wire::{Frame, Message, SharedFrame, Status, Text};
use log::warn;

use super::config::HubConfig;
use super::output::{ClientId, Outputs};
use super::topic::{SubscriptionTree, check_filter, check_topic, matches};

/// A topic's retained message and the channel it was published on.
#[derive(Debug)]
struct Retained {
    payload: Bytes,
    channel: u8,
}

#[derive(Debug, Default)]
pub(crate) struct PubSub {
    tree: SubscriptionTree<ClientId>,
    /// Each session's filters, to remove them when it ends.
    filters: HashMap<ClientId, Vec<Text>>,
    retained: HashMap<Text, Retained>,
    subscriptions: usize,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fanout {
    pub(crate) deliveries: usize,
}

impl PubSub {
    pub(crate) fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    pub(crate) fn retained(&self) -> usize {
        self.retained.len()
    }

    pub(crate) fn subscribe(
        &mut self,
        config: &HubConfig,
        client: ClientId,
        id: u32,
        filter: &Text,
        out: &mut Outputs,
    ) {
        if let Err(e) = check_filter(filter.as_str()) {
            return out.fail(client, id, Status::INVALID_TOPIC, &e.to_string());
        }
        let mine = self.filters.entry(client).or_default();
        if !mine.contains(filter) {
            if mine.len() >= config.max_subscriptions_per_session {
                return out.fail(
                    client,
                    id,
                    Status::LIMIT_REACHED,
                    "too many subscriptions for one session",
                );
            }
            self.tree.insert(filter.as_str(), client);
            mine.push(filter.clone());
            self.subscriptions += 1;
        }
        out.ok(client, id);
        // Late joiners get the retained state of every topic the filter covers (MQTT 3.3.1.3).
        for (topic, r) in &self.retained {
            if matches(filter.as_str(), topic.as_str()) {
                let frame = Frame::new(Message {
                    retained: true,
                    topic: topic.clone(),
                    payload: r.payload.clone(),
                })
                .on_channel(r.channel);
                out.frame(client, frame);
            }
        }
    }

    pub(crate) fn unsubscribe(
        &mut self,
        client: ClientId,
        id: u32,
        filter: &Text,
        out: &mut Outputs,
    ) {
        let removed = self.filters.get_mut(&client).is_some_and(|mine| {
            let at = mine.iter().position(|f| f == filter);
            if let Some(i) = at {
                mine.swap_remove(i);
            }
            at.is_some()
        });
        if removed {
            self.tree.remove(filter.as_str(), client);
            self.subscriptions -= 1;
            if self.filters.get(&client).is_some_and(Vec::is_empty) {
                self.filters.remove(&client);
            }
            out.ok(client, id);
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
    /// topic's retained message. On error nothing was published.
    pub(crate) fn publish(
        &mut self,
        config: &HubConfig,
        channel: u8,
        retain: bool,
        topic: &Text,
        payload: &Bytes,
        out: &mut Outputs,
    ) -> Result<Fanout, (Status, String)> {
        check_topic(topic.as_str()).map_err(|e| (Status::INVALID_TOPIC, e.to_string()))?;
        if retain {
            if payload.is_empty() {
                self.retained.remove(topic);
            } else if self.retained.len() >= config.max_retained
                && !self.retained.contains_key(topic)
            {
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
        }
        let subscribers = self.tree.subscribers(topic.as_str());
        if subscribers.is_empty() {
            return Ok(Fanout { deliveries: 0 });
        }
        let message = Frame::new(Message {
            retained: false,
            topic: topic.clone(),
            payload: payload.clone(),
        })
        .on_channel(channel);
        // The topic and payload came in a frame that parsed, so they fit; this is a fault.
        let shared = SharedFrame::new(&message).map_err(|e| {
            warn!("cannot encode a message on {topic}: {e}");
            (Status::INTERNAL, e.to_string())
        })?;
        let deliveries = subscribers.len();
        for subscriber in subscribers {
            out.shared(subscriber, shared.clone());
        }
        Ok(Fanout { deliveries })
    }

    /// Drops every subscription of a session that ended.
    pub(crate) fn forget(&mut self, client: ClientId) {
        if let Some(mine) = self.filters.remove(&client) {
            for filter in &mine {
                self.tree.remove(filter.as_str(), client);
            }
            self.subscriptions -= mine.len();
        }
    }
}
