//! The durable state the log's records add up to: each queue's messages with their delivery
//! counts, the retained messages, and the sessions a client may resume. Recovery replays the
//! records into it; a compaction writes it out as a snapshot.

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::wire::{LastWill, Text};

use super::record::Record;
use super::session_record::{KeptMessage, SessionRecord};

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

/// A session as the log keeps it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The connect token's identity, if it presented one.
    pub identity: Option<Text>,
    /// Its last will, while it has not been published: the session was live when the log ended.
    pub will: Option<LastWill>,
    /// Its subscriptions, in the order they were made.
    pub filters: Vec<Text>,
    /// When it was parked (milliseconds since the UNIX epoch); `None`: it was live.
    pub parked_at_ms: Option<u64>,
    /// The reliable messages kept for it while parked, oldest first.
    pub kept: Vec<KeptMessage>,
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
    /// The sessions a client may resume, by key.
    pub sessions: HashMap<u64, StoredSession>,
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
        for (&key, session) in &self.sessions {
            session.to_records(key, &mut out);
        }
        out.push(Record::Removed {
            id: self.last_id,
            queue: Text::from(""),
        });
        out
    }
}

impl StoredSession {
    /// The records that write this session out, appended to `out`.
    pub fn to_records(&self, key: u64, out: &mut Vec<Record>) {
        out.push(Record::Session(SessionRecord::Opened {
            key,
            identity: self.identity.clone(),
            will: self.will.clone(),
        }));
        if !self.filters.is_empty() {
            out.push(Record::Session(SessionRecord::Subscribed {
                key,
                filters: self.filters.clone(),
            }));
        }
        if let Some(at_ms) = self.parked_at_ms {
            out.push(Record::Session(SessionRecord::Parked { key, at_ms }));
        }
        out.extend(self.kept.iter().map(|m| {
            Record::Session(SessionRecord::Kept {
                key,
                message: m.clone(),
            })
        }));
    }

    /// Applies a record about this session (not `Ended`, which removes it).
    fn apply(&mut self, record: SessionRecord) {
        match record {
            SessionRecord::Opened { identity, will, .. } => {
                *self = Self {
                    identity,
                    will,
                    ..Self::default()
                };
            }
            SessionRecord::Subscribed { filters, .. } => {
                for f in filters {
                    if !self.filters.contains(&f) {
                        self.filters.push(f);
                    }
                }
            }
            SessionRecord::Unsubscribed { filters, .. } => {
                self.filters.retain(|f| !filters.contains(f));
            }
            SessionRecord::Parked { at_ms, .. } => {
                self.parked_at_ms = Some(at_ms);
                self.will = None;
            }
            SessionRecord::Kept { message, .. } => self.kept.push(message),
            SessionRecord::Ended { .. } => {}
        }
    }
}

/// Replays records, in the order they were written, into a [`State`].
#[derive(Debug, Default)]
pub struct Replay {
    messages: HashMap<u64, (Text, u32, Bytes)>,
    retained: HashMap<Text, StoredRetained>,
    last_id: u64,
    sessions: HashMap<u64, StoredSession>,
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
            Record::Session(SessionRecord::Ended { key }) => {
                self.sessions.remove(&key);
            }
            Record::Session(s) => self.sessions.entry(s.key()).or_default().apply(s),
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
            sessions: self.sessions,
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

    fn session(record: SessionRecord) -> Record {
        Record::Session(record)
    }

    #[test]
    fn replay_keeps_the_sessions_not_ended_with_their_filters_will_and_kept_messages() {
        let will = LastWill {
            retain: true,
            channel: 0,
            topic: Text::from("dev/1/online"),
            payload: Bytes::from_static(b"no"),
        };
        let kept = KeptMessage {
            channel: 2,
            topic: Text::from("a/b"),
            payload: Bytes::from_static(b"m"),
        };
        let mut r = Replay::default();
        for record in [
            // 1: live with a will and two filters, one taken back.
            SessionRecord::Opened {
                key: 1,
                identity: Some(Text::from("dev-1")),
                will: Some(will.clone()),
            },
            SessionRecord::Subscribed {
                key: 1,
                filters: vec![Text::from("a/#"), Text::from("c")],
            },
            SessionRecord::Unsubscribed {
                key: 1,
                filters: vec![Text::from("c")],
            },
            // 2: parked (its will published) with a message kept.
            SessionRecord::Opened {
                key: 2,
                identity: None,
                will: Some(will.clone()),
            },
            SessionRecord::Subscribed {
                key: 2,
                filters: vec![Text::from("a/+")],
            },
            SessionRecord::Parked { key: 2, at_ms: 77 },
            SessionRecord::Kept {
                key: 2,
                message: kept.clone(),
            },
            // 3: closed.
            SessionRecord::Opened {
                key: 3,
                identity: None,
                will: None,
            },
            SessionRecord::Ended { key: 3 },
        ] {
            r.apply(session(record));
        }
        let state = r.finish();
        assert_eq!(state.sessions.len(), 2);
        assert_eq!(
            state.sessions[&1],
            StoredSession {
                identity: Some(Text::from("dev-1")),
                will: Some(will),
                filters: vec![Text::from("a/#")],
                parked_at_ms: None,
                kept: vec![],
            }
        );
        assert_eq!(
            state.sessions[&2],
            StoredSession {
                identity: None,
                will: None,
                filters: vec![Text::from("a/+")],
                parked_at_ms: Some(77),
                kept: vec![kept],
            }
        );
        let mut again = Replay::default();
        for record in state.to_records() {
            again.apply(record);
        }
        assert_eq!(again.finish(), state);
    }
}
