//! The hub as one node of a cluster (docs/PROTOCOL.md section 12): what it tells the other nodes
//! (the filters its sessions hold, what they publish, the services they serve, the requests they
//! send and the answers to the other nodes' requests), and what it does with theirs.
//!
//! In a cluster every request for a service goes through NATS, to whichever of the cluster's
//! responders NATS picks (a queue group with one member per registration), this node's included:
//! so requests spread over every responder, wherever it is. The requester's node keeps the
//! deadline, as it does for a request routed locally.

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{Frame, FrameBody, QueueDelivery, Request, Status, Text};
use log::debug;

use super::services::{Requester, Routed};
use super::{ClientId, Hub, HubTimer};
use crate::cluster::envelope::Envelope;
use crate::cluster::{ClusterOut, QueueDelivered, QueueOp, Remote};

/// Requests this node's sessions sent through the cluster, by token.
#[derive(Debug, Default)]
pub(crate) struct SentRequests {
    pending: HashMap<u64, Sent>,
    /// Per requester, for `max_pending_requests_per_session`.
    waiting: HashMap<ClientId, usize>,
    next: u64,
}

#[derive(Debug)]
struct Sent {
    requester: ClientId,
    id: u32,
    at: Instant,
    /// The queue, for an operation on the cluster's queue (its deliveries name it).
    queue: Option<Text>,
}

impl SentRequests {
    /// A token for operation `id` of `requester`, unless `limit` of its operations wait already.
    fn start(
        &mut self,
        limit: usize,
        requester: ClientId,
        id: u32,
        at: Instant,
        queue: Option<Text>,
    ) -> Option<u64> {
        if self.waiting.get(&requester).copied().unwrap_or(0) >= limit {
            return None;
        }
        *self.waiting.entry(requester).or_default() += 1;
        self.next += 1;
        self.pending.insert(
            self.next,
            Sent {
                requester,
                id,
                at,
                queue,
            },
        );
        Some(self.next)
    }

    fn take(&mut self, token: u64) -> Option<Sent> {
        let sent = self.pending.remove(&token)?;
        if let Some(n) = self.waiting.get_mut(&sent.requester) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&sent.requester);
            }
        }
        Some(sent)
    }
}

impl Hub {
    /// Makes this hub one node of a cluster: from now on it tells which filters its sessions
    /// hold and which services they serve (those held now first), and hands on what they
    /// publish and ask, through [`Hub::take_cluster_output`].
    pub fn join_cluster(&mut self) {
        self.pubsub.track_interest();
        let serving: Vec<ClusterOut> = self
            .services
            .registrations()
            .map(|name| ClusterOut::Serve(name.clone(), true))
            .collect();
        for s in serving {
            self.outputs.for_cluster(s);
        }
        self.clustered = true;
        // What a node's sessions publish now goes to the cluster too: no worker delivers alone.
        self.pubsub.epoch().bump();
    }

    /// What the cluster must hear since the last call: changes to the filters held, then what
    /// this node's sessions published, registered and asked and its answers to the other nodes'
    /// requests, in order.
    pub fn take_cluster_output(&mut self) -> Vec<ClusterOut> {
        if !self.clustered {
            return Vec::new();
        }
        let mut out: Vec<ClusterOut> = self
            .pubsub
            .take_interest()
            .into_iter()
            .map(|(filter, on)| ClusterOut::Interest(filter, on))
            .collect();
        out.extend(self.outputs.take_cluster());
        out
    }

    /// Takes what the bridge received: another node's message, request, or answer.
    pub fn from_cluster(&mut self, now: Instant, remote: Remote) {
        match remote {
            Remote::Message { topic, envelope } => self.publish_remote(&topic, &envelope),
            Remote::Retained {
                topic,
                channel,
                payload,
            } => {
                let kept = super::topic::check_topic(topic.as_str())
                    .map_err(|e| (Status::INVALID_TOPIC, e.to_string()))
                    .and_then(|()| {
                        self.pubsub.keep_retained(
                            &self.config,
                            channel,
                            &topic,
                            &payload,
                            &mut self.outputs,
                        )
                    });
                if let Err((status, why)) = kept {
                    debug!("the cluster's retained message on {topic} not kept: {status} {why}");
                }
            }
            Remote::Request {
                reply,
                service,
                timeout_ms,
                payload,
            } => self.serve_remote(now, reply, service, timeout_ms, payload),
            Remote::Reply {
                token,
                status,
                payload,
            } => self.answered_remote(now, token, status, payload),
            Remote::QueueAnswer {
                token,
                delivered,
                status,
                message,
            } => self.queue_answered(token, delivered, status, &message),
        }
    }

    /// Publishes another node's message to this node's subscribers (not back to the cluster); a
    /// topic that is not valid here is dropped.
    fn publish_remote(&mut self, topic: &Text, e: &Envelope) {
        match self.pubsub.publish(
            &self.config,
            e.channel,
            e.reliable,
            false,
            topic,
            &e.payload,
            &mut self.outputs,
        ) {
            Ok(fanout) => {
                self.stats.delivered += fanout.deliveries as u64;
                self.stats.fanout.observe(fanout.deliveries as u64);
            }
            Err((status, why)) => {
                debug!("a message from the cluster on {topic} dropped: {status} {why}");
            }
        }
    }

    /// Hands a message published here to the cluster, if this node is in one; with `retain`,
    /// the topic's retained message too.
    pub(super) fn tell_cluster(
        &mut self,
        topic: &Text,
        channel: u8,
        reliable: bool,
        retain: bool,
        payload: &Bytes,
    ) {
        if self.clustered {
            self.outputs.for_cluster(ClusterOut::Publish {
                topic: topic.clone(),
                channel,
                reliable,
                payload: payload.clone(),
            });
            if retain {
                self.outputs.for_cluster(ClusterOut::Retain {
                    topic: topic.clone(),
                    channel,
                    payload: payload.clone(),
                });
            }
        }
    }

    /// A session registered for `service` (`true`) or let the registration go.
    pub(super) fn tell_cluster_serves(&mut self, service: Text, on: bool) {
        if self.clustered {
            self.outputs.for_cluster(ClusterOut::Serve(service, on));
        }
    }

    /// Sends a session's request (checked and permitted) through the cluster.
    pub(super) fn request_via_cluster(&mut self, now: Instant, client: ClientId, r: Request) {
        let limit = self.config.max_pending_requests_per_session;
        let Some(token) = self.sent.start(limit, client, r.id, now, None) else {
            return self.outputs.fail(
                client,
                r.id,
                Status::LIMIT_REACHED,
                "too many requests waiting for responses",
            );
        };
        let timeout = self.config.request_timeout(r.timeout_ms);
        self.timers
            .set(HubTimer::ClusterRequest(token), Some(now + timeout));
        self.outputs.for_cluster(ClusterOut::Request {
            token,
            service: r.target,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            payload: r.payload,
        });
    }

    /// Sends a session's queue operation (checked and permitted) to the cluster's queue (section
    /// 12.6). Its outcome is awaited as a request's is: a fetch until its wait and the request
    /// timeout after it, the others for the request timeout.
    pub(super) fn queue_via_cluster(&mut self, now: Instant, client: ClientId, body: FrameBody) {
        let (id, queue, op) = match body {
            FrameBody::QueuePush(p) => (p.id, p.queue, QueueOp::Push(p.payload)),
            FrameBody::QueueFetch(f) => (
                f.id,
                f.queue,
                QueueOp::Fetch {
                    max: f.max,
                    wait_ms: f.wait_ms.min(
                        u32::try_from(self.config.max_fetch_wait.as_millis()).unwrap_or(u32::MAX),
                    ),
                },
            ),
            FrameBody::QueueAck(a) => (a.id, a.queue, QueueOp::Ack(a.delivery_id)),
            FrameBody::QueueNack(n) => (
                n.id,
                n.queue,
                QueueOp::Nack {
                    delivery_id: n.delivery_id,
                    delay_ms: n.delay_ms,
                },
            ),
            FrameBody::QueueExtend(e) => (e.id, e.queue, QueueOp::Extend(e.delivery_id)),
            _ => return,
        };
        let limit = self.config.max_pending_requests_per_session;
        let Some(token) = self.sent.start(limit, client, id, now, Some(queue.clone())) else {
            return self.outputs.fail(
                client,
                id,
                Status::LIMIT_REACHED,
                "too many operations waiting for the cluster",
            );
        };
        let wait = match op {
            QueueOp::Fetch { wait_ms, .. } => std::time::Duration::from_millis(u64::from(wait_ms)),
            _ => std::time::Duration::ZERO,
        };
        self.timers.set(
            HubTimer::ClusterRequest(token),
            Some(now + wait + self.config.request_timeout(0)),
        );
        self.outputs
            .for_cluster(ClusterOut::Queue { token, queue, op });
    }

    /// The outcome of an operation on the cluster's queue: a fetch's deliveries, then the
    /// status; one that comes after its deadline is dropped (what a late fetch took is delivered
    /// again by the cluster after the visibility timeout).
    fn queue_answered(
        &mut self,
        token: u64,
        delivered: Vec<QueueDelivered>,
        status: Status,
        message: &str,
    ) {
        let Some(sent) = self.sent.take(token) else {
            debug!("the cluster's queue answered an operation no longer waiting");
            return;
        };
        self.timers.set(HubTimer::ClusterRequest(token), None);
        let queue = sent.queue.unwrap_or_default();
        for d in delivered {
            self.outputs.frame(
                sent.requester,
                Frame::new(QueueDelivery {
                    redelivered: d.redelivered,
                    id: sent.id,
                    delivery_id: d.delivery_id,
                    queue: queue.clone(),
                    payload: d.payload,
                }),
            );
        }
        if status == Status::OK {
            self.outputs.ok(sent.requester, sent.id);
        } else {
            self.outputs.fail(sent.requester, sent.id, status, message);
        }
    }

    /// The answer to a request sent through the cluster; one that comes after the deadline (or
    /// twice) is dropped.
    fn answered_remote(&mut self, now: Instant, token: u64, status: Status, payload: Bytes) {
        let Some(sent) = self.sent.take(token) else {
            debug!("an answer from the cluster for a request no longer waiting");
            return;
        };
        self.timers.set(HubTimer::ClusterRequest(token), None);
        let took = now.saturating_duration_since(sent.at);
        self.stats
            .routed_request_us
            .observe(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        self.outputs
            .respond(sent.requester, sent.id, status, payload);
    }

    /// A request sent through the cluster reached its deadline unanswered.
    pub(super) fn cluster_request_expired(&mut self, token: u64) {
        if let Some(sent) = self.sent.take(token) {
            self.outputs.fail(
                sent.requester,
                sent.id,
                Status::TIMEOUT,
                "no response before the deadline",
            );
        }
    }

    /// Another node's request for a service this node serves: routed to one of its responders,
    /// whose answer goes back through the cluster. With none left (the last just unregistered),
    /// `NO_RESPONDER` goes back at once.
    fn serve_remote(
        &mut self,
        now: Instant,
        reply: Text,
        service: Text,
        timeout_ms: u32,
        payload: Bytes,
    ) {
        self.stats.requests += 1;
        let request = Request {
            // The node's own id for the request; its answer goes back by the reply subject.
            id: 1,
            timeout_ms,
            target: service,
            payload,
        };
        if let Routed::Sent(key, deadline) = self.services.route(
            &self.config,
            now,
            Requester::Cluster(reply),
            request,
            &mut self.outputs,
        ) {
            self.timers.set(HubTimer::Request(key), Some(deadline));
        }
    }
}
