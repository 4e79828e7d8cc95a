//! The cluster's queues (docs/PROTOCOL.md section 12.6), on the bridge's thread: one `JetStream`
//! stream, `FW_QUEUES`, with work-queue retention (a message is gone once acknowledged), a
//! subject per queue (`fw.q.<queue as one escaped token>`), and per queue one durable pull
//! consumer every node shares, so that each message goes to one fetcher wherever it fetches.
//!
//! A fetch's messages are held here, by a delivery id of this node's, until the consumer's session
//! acknowledges, gives back or extends them through this node; `JetStream` delivers one again
//! (`REDELIVERED`) when its ack wait (the hub's visibility timeout) passes first, on any node:
//! that is what becomes of what was delivered through a node that died.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use log::debug;

use super::subject::token_of_name;
use super::{QueueDelivered, QueueOp, Remote};
use framewire_protocol::wire::{Status, Text};

/// The stream every queue of the cluster is kept in.
pub(crate) const QUEUE_STREAM: &str = "FW_QUEUES";
/// The prefix of the queues' subjects.
pub const QUEUE_PREFIX: &str = "fw.q";

/// The subject `queue`'s messages are kept under.
pub fn subject_of_queue(queue: &str) -> String {
    format!("{QUEUE_PREFIX}.{}", token_of_name(queue))
}

/// The name of `queue`'s consumer: NATS names hold no `.`, `*`, `>` or white space and should be
/// short, so a fixed-key hash of the queue's name (a collision, one in 2^64 per pair, would make
/// the second queue's fetches fail: its filter differs).
pub fn consumer_of_queue(queue: &str) -> String {
    let mut h =
        siphasher::sip::SipHasher24::new_with_keys(0x6677_5f71_7565_7565, 0x7300_0000_0000_0001);
    h.write(queue.as_bytes());
    format!("fwq-{:016x}", h.finish())
}

/// What the cluster's queues need to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueTerms {
    /// How long a delivery waits for its ack before `JetStream` delivers it again.
    pub(crate) ack_wait: Duration,
    /// Deliveries of one message at most (0: no limit).
    pub(crate) max_deliveries: u32,
}

/// The messages fetched through this node and not yet done with, by delivery id.
#[derive(Default)]
struct Held {
    next: u64,
    by_id: HashMap<u64, (jetstream::Message, Instant)>,
}

/// The bridge's side of the cluster's queues.
#[derive(Clone)]
pub(crate) struct ClusterQueues {
    js: jetstream::Context,
    terms: QueueTerms,
    held: Arc<Mutex<Held>>,
}

impl std::fmt::Debug for ClusterQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterQueues")
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

/// An operation's outcome: what a fetch took, the status, why.
type Outcome = (Vec<QueueDelivered>, Status, String);

fn failed(status: Status, why: impl std::fmt::Display) -> Outcome {
    (Vec::new(), status, why.to_string())
}

impl ClusterQueues {
    pub(crate) fn new(js: jetstream::Context, terms: QueueTerms) -> Self {
        Self {
            js,
            terms,
            held: Arc::default(),
        }
    }

    /// Makes the queues' stream if it is not there (once at the bridge's start, so that the first
    /// push finds it; a push that finds none makes it then).
    pub(crate) async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, String> {
        self.js
            .get_or_create_stream(jetstream::stream::Config {
                name: QUEUE_STREAM.into(),
                subjects: vec![format!("{QUEUE_PREFIX}.>")],
                retention: jetstream::stream::RetentionPolicy::WorkQueue,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Carries out `op` on `queue`; the outcome goes to the loops as a [`Remote::QueueAnswer`]
    /// through `answer`.
    pub(crate) async fn apply(self, queue: Text, op: QueueOp) -> Outcome {
        self.forget_expired();
        match op {
            QueueOp::Push(payload) => self.push(&queue, payload).await,
            QueueOp::Fetch { max, wait_ms } => self.fetch(&queue, max, wait_ms).await,
            QueueOp::Ack(id) => self.settle(id, AckKind::Ack, true).await,
            QueueOp::Nack {
                delivery_id,
                delay_ms,
            } => {
                let delay = Duration::from_millis(u64::from(delay_ms));
                let kind = AckKind::Nak((!delay.is_zero()).then_some(delay));
                self.settle(delivery_id, kind, true).await
            }
            QueueOp::Extend(id) => self.settle(id, AckKind::Progress, false).await,
        }
    }

    async fn push(&self, queue: &Text, payload: bytes::Bytes) -> Outcome {
        let subject = subject_of_queue(queue.as_str());
        let acked = match self.js.publish(subject.clone(), payload.clone()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(first) = acked {
            // No stream yet (NATS restarted without its store, say): make it, then once more.
            debug!("cluster: a push to {queue} refused ({first}); making the stream");
            if let Err(e) = self.ensure_stream().await {
                return failed(Status::INTERNAL, format!("the cluster's queues: {e}"));
            }
            let again = match self.js.publish(subject, payload).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = again {
                return failed(Status::INTERNAL, format!("the cluster's queue: {e}"));
            }
        }
        (Vec::new(), Status::OK, String::new())
    }

    async fn consumer(
        &self,
        queue: &str,
    ) -> Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>, String> {
        let stream = self.ensure_stream().await?;
        let name = consumer_of_queue(queue);
        stream
            .get_or_create_consumer(
                &name,
                jetstream::consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subject_of_queue(queue),
                    ack_wait: self.terms.ack_wait,
                    max_deliver: if self.terms.max_deliveries == 0 {
                        -1
                    } else {
                        i64::from(self.terms.max_deliveries)
                    },
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    async fn fetch(&self, queue: &Text, max: u16, wait_ms: u32) -> Outcome {
        let consumer = match self.consumer(queue.as_str()).await {
            Ok(c) => c,
            Err(e) => return failed(Status::INTERNAL, format!("the cluster's queue: {e}")),
        };
        let max = usize::from(max.max(1));
        let batch = if wait_ms == 0 {
            consumer.fetch().max_messages(max).messages().await
        } else {
            consumer
                .batch()
                .max_messages(max)
                .expires(Duration::from_millis(u64::from(wait_ms)))
                .messages()
                .await
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => return failed(Status::INTERNAL, format!("the cluster's queue: {e}")),
        };
        let mut delivered = Vec::new();
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    debug!("cluster: a fetch from {queue}: {e}");
                    break;
                }
            };
            let redelivered = message.info().is_ok_and(|i| i.delivered > 1);
            let payload = message.payload.clone();
            let mut held = self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.next += 1;
            let delivery_id = held.next;
            let expires = Instant::now() + self.terms.ack_wait;
            held.by_id.insert(delivery_id, (message, expires));
            delivered.push(QueueDelivered {
                delivery_id,
                redelivered,
                payload,
            });
        }
        (delivered, Status::OK, String::new())
    }

    /// Acknowledges, gives back or extends a delivery held here; `done`: it is let go.
    async fn settle(&self, delivery_id: u64, kind: AckKind, done: bool) -> Outcome {
        let message = {
            let mut held = self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if done {
                held.by_id.remove(&delivery_id).map(|(m, _)| m)
            } else {
                held.by_id.get_mut(&delivery_id).map(|(m, expires)| {
                    *expires = Instant::now() + self.terms.ack_wait;
                    m.clone()
                })
            }
        };
        let Some(message) = message else {
            return failed(
                Status::NOT_FOUND,
                "no such delivery waiting here (in a cluster, a delivery is settled through the node it came from)",
            );
        };
        match message.ack_with(kind).await {
            Ok(()) => (Vec::new(), Status::OK, String::new()),
            Err(e) => failed(Status::INTERNAL, format!("the cluster's queue: {e}")),
        }
    }

    /// Lets go of deliveries whose ack wait has passed: `JetStream` delivers them again.
    fn forget_expired(&self) {
        let now = Instant::now();
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .retain(|_, (_, expires)| *expires > now);
    }
}

/// The loops' message for an operation's outcome.
pub(crate) fn answer(token: u64, (delivered, status, message): Outcome) -> Remote {
    Remote::QueueAnswer {
        token,
        delivered,
        status,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_have_a_subject_and_a_consumer_name_nats_takes() {
        assert_eq!(subject_of_queue("jobs"), "fw.q.jobs");
        assert_eq!(subject_of_queue("a.b c"), "fw.q.a%2Eb%20c");
        for name in ["jobs", "a.b c", "", "é/>*"] {
            let c = consumer_of_queue(name);
            assert_eq!(c.len(), 20);
            assert!(
                c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{c}"
            );
        }
        assert_ne!(consumer_of_queue("a"), consumer_of_queue("b"));
        assert_eq!(consumer_of_queue("jobs"), consumer_of_queue("jobs"));
    }
}
