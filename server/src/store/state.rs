//! The durable state the log's records add up to: each queue's messages with their delivery
//! counts, and the retained messages. Recovery replays the records into it; a compaction writes
//! it out as a snapshot.

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::wire::Text;

use super::record::Record;

/// A queued message as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its delivery id.
    pub id: u64,
    /// Deliveries so far.
    pub deliveries: u32,
    /// The message.
    pub payload: Bytes,
}

/// A retained message as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRetained {
    /// The channel it was published on.
    pub channel: u8,
    /// The message.
    pub payload: Bytes,
}

/// What the records add up to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    /// Each queue's messages, in the order they were pushed (by delivery id).
    pub queues: HashMap<Text, Vec<StoredMessage>>,
    /// The retained message of each topic that has one.
    pub retained: HashMap<Text, StoredRetained>,
    /// The largest delivery id the log has seen: new messages are numbered above it.
    pub last_id: u64,
}

impl State {
    /// How many queued messages the state holds.
    pub fn messages(&self) -> usize {
        self.queues.values().map(Vec::len).sum()
    }

    /// The records that write this state out: a snapshot. It ends with the removal of the
    /// largest delivery id given out, from no queue (an empty name), so that ids are never given
    /// out twice (a late ack of an old delivery must not remove a new message).
    pub fn to_records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.messages() + self.retained.len() + 1);
        for (queue, messages) in &self.queues {
            out.extend(messages.iter().map(|m| Record::Queued {
                id: m.id,
                queue: queue.clone(),
                deliveries: m.deliveries,
                payload: m.payload.clone(),
            }));
        }
        out.extend(self.retained.iter().map(|(topic, r)| Record::Retained {
            channel: r.channel,
            topic: topic.clone(),
            payload: r.payload.clone(),
        }));
        out.push(Record::Removed {
            id: self.last_id,
            queue: Text::from(""),
        });
        out
    }
}

/// Replays records, in the order they were written, into a [`State`].
#[derive(Debug, Default)]
pub struct Replay {
    messages: HashMap<u64, (Text, u32, Bytes)>,
    retained: HashMap<Text, StoredRetained>,
    last_id: u64,
}

impl Replay {
    /// Applies one record.
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Queued {
                id,
                queue,
                deliveries,
                payload,
            } => {
                self.last_id = self.last_id.max(id);
                match self.messages.get_mut(&id) {
                    // A later record for a known message: it was delivered again.
                    Some(m) => m.1 = deliveries,
                    None => {
                        self.messages.insert(id, (queue, deliveries, payload));
                    }
                }
            }
            Record::Delivered { id, deliveries, .. } => {
                if let Some(m) = self.messages.get_mut(&id) {
                    m.1 = deliveries;
                }
            }
            Record::Removed { id, queue } => {
                self.last_id = self.last_id.max(id);
                // Only from the queue named: a snapshot's closing mark names none.
                if self.messages.get(&id).is_some_and(|m| m.0 == queue) {
                    self.messages.remove(&id);
                }
            }
            Record::Retained {
                channel,
                topic,
                payload,
            } => {
                if payload.is_empty() {
                    self.retained.remove(&topic);
                } else {
                    self.retained
                        .insert(topic, StoredRetained { channel, payload });
                }
            }
        }
    }

    /// The state the records added up to.
    pub fn finish(self) -> State {
        let mut queues: HashMap<Text, Vec<StoredMessage>> = HashMap::new();
        for (id, (queue, deliveries, payload)) in self.messages {
            queues.entry(queue).or_default().push(StoredMessage {
                id,
                deliveries,
                payload,
            });
        }
        for messages in queues.values_mut() {
            messages.sort_unstable_by_key(|m| m.id);
        }
        State {
            queues,
            retained: self.retained.into_iter().collect(),
            last_id: self.last_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: u64, queue: &str, deliveries: u32, payload: &'static [u8]) -> Record {
        Record::Queued {
            id,
            queue: Text::from(queue),
            deliveries,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn replay_keeps_what_was_not_removed_with_its_latest_delivery_count() {
        let mut r = Replay::default();
        for record in [
            q(1, "a", 0, b"one"),
            q(2, "a", 0, b"two"),
            q(3, "b", 0, b"three"),
            // Message 2 delivered twice (the log's form of a delivery), then 1 acknowledged.
            q(2, "a", 1, b""),
            q(2, "a", 2, b""),
            Record::Removed {
                id: 1,
                queue: Text::from("a"),
            },
            Record::Retained {
                channel: 2,
                topic: Text::from("t"),
                payload: Bytes::from_static(b"on"),
            },
            Record::Retained {
                channel: 0,
                topic: Text::from("u"),
                payload: Bytes::from_static(b"x"),
            },
            Record::Retained {
                channel: 0,
                topic: Text::from("u"),
                payload: Bytes::new(),
            },
        ] {
            r.apply(record);
        }
        let state = r.finish();
        assert_eq!(state.last_id, 3);
        assert_eq!(
            state.queues[&Text::from("a")],
            vec![StoredMessage {
                id: 2,
                deliveries: 2,
                payload: Bytes::from_static(b"two"),
            }]
        );
        assert_eq!(state.queues[&Text::from("b")].len(), 1);
        assert_eq!(state.retained.len(), 1);
        assert_eq!(state.retained[&Text::from("t")].channel, 2);
        // Its snapshot replays to the same state.
        let mut again = Replay::default();
        for record in state.to_records() {
            again.apply(record);
        }
        assert_eq!(again.finish(), state);
    }
}
