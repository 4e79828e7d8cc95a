//! The cluster's retained messages on the bridge's thread (docs/PROTOCOL.md section 12.5): the
//! `JetStream` stream they are kept in, and the follower that hands every topic's last one, then
//! each new one, to the loops.

use std::time::Duration;

use async_nats::jetstream;
use framewire_protocol::wire::Text;
use futures_util::StreamExt;
use log::{debug, info, warn};

use super::Remote;
use super::bridge::Forward;
use super::envelope::Envelope;
use super::subject::{RETAINED_PREFIX, topic_of_retained};

/// The `JetStream` stream the cluster's retained messages are kept in (docs/PROTOCOL.md section
/// 12.5): one message per subject, on NATS's disk.
pub(crate) const RETAINED_STREAM: &str = "FW_RETAINED";

/// Makes sure the retained messages' stream exists and follows it: every topic's last retained
/// message, then each new one, into the loops' inbox, so that this node keeps what any node
/// retained. Until the stream can be had (NATS away, or without `JetStream`: logged once), it tries
/// again every [`RETAINED_RETRY`]; meanwhile retained messages stay with the node that kept them.
pub(crate) async fn follow_retained(js: jetstream::Context, inbox: String, to: Forward) {
    let mut warned = false;
    loop {
        let consumer = async {
            let stream = retained_stream(&js).await?;
            let consumer = stream
                .create_consumer(jetstream::consumer::push::OrderedConfig {
                    deliver_subject: inbox.clone(),
                    deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                    // Required with last-per-subject (NATS refuses it without one).
                    filter_subject: format!("{RETAINED_PREFIX}.>"),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        match consumer.await {
            Ok(messages) => {
                info!("cluster: retained messages shared through JetStream ({RETAINED_STREAM})");
                return keep_retained(messages, to).await;
            }
            Err(e) if !warned => {
                warned = true;
                warn!(
                    "cluster: no JetStream stream for retained messages yet ({e}); they stay with the node that kept them until there is one (nats-server -js)"
                );
            }
            Err(e) => debug!("cluster: the retained messages' stream: {e}"),
        }
        tokio::time::sleep(RETAINED_RETRY).await;
    }
}

/// The retained messages' stream, made if it is not there yet.
pub(crate) async fn retained_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: RETAINED_STREAM.into(),
        subjects: vec![format!("{RETAINED_PREFIX}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

/// How often a node tries again to have the retained messages' stream.
const RETAINED_RETRY: Duration = Duration::from_secs(5);

/// Hands each retained message of the stream to the loops.
async fn keep_retained(mut messages: jetstream::consumer::push::Ordered, to: Forward) {
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                debug!("cluster: the retained messages' stream: {e}");
                continue;
            }
        };
        let topic = topic_of_retained(message.subject.as_str());
        match (topic, Envelope::parse(&message.payload)) {
            (Some(topic), Ok(envelope)) => {
                to.counters().count_received(1);
                to.hand(Remote::Retained {
                    topic: Text::from(topic),
                    channel: envelope.channel,
                    payload: envelope.payload,
                });
            }
            _ => to.counters().count_malformed(),
        }
    }
}
