//! The hub: what the server does for its clients (docs/PROTOCOL.md section 5), with no I/O.
//!
//! Publish/subscribe with MQTT-style wildcards and retained messages ([`topic`], `pubsub`);
//! request/response to the built-in `sys.*` methods and to services that clients register, with
//! deadlines (`services`, `sys`); work queues with short and long polls, acks and redelivery
//! (`queues`). Data frames are echoed on their channel (an echo service for measurements).
//!
//! # Driving the hub
//!
//! Like the protocol's sessions, the hub takes input with the time and hands back output:
//! [`Hub::handle_frame`] for each frame an established session delivers, [`Hub::session_opened`]
//! and [`Hub::session_ended`] around each session, and [`Hub::handle_timeout`] at
//! [`Hub::poll_timeout`]. After each call, drain [`Hub::poll_output`]: frames addressed to sessions,
//! which the event loop hands to those sessions. A frame for a session that no longer exists is
//! dropped by the caller. A fan-out's frame is encoded once and shared by every subscriber.
//!
//! # Not here yet
//!
//! Session resume (a reconnecting client getting its subscriptions and missed messages back) and
//! last-will messages need the handshake's `RESUME_TOKEN` and `LAST_WILL` options served.

mod config;
mod output;
mod pubsub;
mod queues;
mod services;
mod stats;
mod sys;
pub mod topic;

use std::sync::Arc;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{Data, ErrorFrame, Frame, FrameBody, Reason, Request, Status, Text};
use log::debug;

pub use config::HubConfig;
pub use output::{ClientId, Delivery, Output, Transport};
pub use stats::{HubStats, TransportStats};
pub use sys::ServerInfo;

use crate::counters::Counters;
use crate::deadlines::Deadlines;
use output::Outputs;
use pubsub::PubSub;
use queues::{QueueTimer, Queues, TimerChanges};
use services::{Routed, RoutedKey, Services};

/// A timer of the hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum HubTimer {
    Request(RoutedKey),
    Queue(QueueTimer),
}

/// The hub's state: subscriptions, retained messages, services, routed requests and queues.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    info: ServerInfo,
    counters: Arc<Counters>,
    pubsub: PubSub,
    services: Services,
    queues: Queues,
    timers: Deadlines<HubTimer>,
    outputs: Outputs,
    stats: HubStats,
}

impl Hub {
    /// An empty hub. `counters` are the server's, reported by `sys.stats`.
    pub fn new(config: HubConfig, info: ServerInfo, counters: Arc<Counters>) -> Self {
        Self {
            config,
            info,
            counters,
            pubsub: PubSub::default(),
            services: Services::default(),
            queues: Queues::default(),
            timers: Deadlines::default(),
            outputs: Outputs::default(),
            stats: HubStats::default(),
        }
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        self.stats
    }

    /// A session was established.
    pub fn session_opened(&mut self, client: ClientId) {
        let t = self.stats.transport(client.transport());
        t.sessions += 1;
        t.sessions_total += 1;
    }

    /// A session is over (closed, timed out, or its socket failed): its subscriptions and
    /// services go, requests waiting on it fail with `RESPONDER_GONE`, and queue messages it
    /// fetched without acknowledging are delivered again. Call it once per opened session.
    pub fn session_ended(&mut self, now: Instant, client: ClientId) {
        let t = self.stats.transport(client.transport());
        t.sessions = t.sessions.saturating_sub(1);
        self.pubsub.forget(client);
        for key in self.services.forget(client, &mut self.outputs) {
            self.timers.set(HubTimer::Request(key), None);
        }
        let changes = self
            .queues
            .forget(&self.config, now, client, &mut self.outputs);
        self.apply(changes);
    }

    /// Counts frames a session could not take.
    pub fn count_dropped(&mut self, client: ClientId, frames: u64) {
        self.stats.transport(client.transport()).dropped += frames;
    }

    /// Counts a session closed for not reading fast enough.
    pub fn count_slow_consumer(&mut self, client: ClientId) {
        self.stats.transport(client.transport()).slow_consumers += 1;
    }

    /// The next frame for a session, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        let out = self.outputs.pop()?;
        self.stats.transport(out.to.transport()).frames_out += 1;
        Some(out)
    }

    /// When [`Hub::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    /// Runs the timers due at `now`: request deadlines, long-poll waits, visibility timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                HubTimer::Request(key) => {
                    self.stats.request_timeouts += 1;
                    self.services.expire(key, &mut self.outputs);
                }
                HubTimer::Queue(t) => {
                    let changes = self
                        .queues
                        .on_timer(&self.config, now, t, &mut self.outputs);
                    self.apply(changes);
                }
            }
        }
    }

    fn apply(&mut self, changes: TimerChanges) {
        for (timer, deadline) in changes {
            self.timers.set(HubTimer::Queue(timer), deadline);
        }
    }

    /// Whether `name` is within the configured length; if not, the operation is refused.
    fn name_ok(&mut self, client: ClientId, id: u32, name: &Text) -> bool {
        if name.len() > self.config.max_name_len {
            self.outputs.fail(
                client,
                id,
                Status::NAME_TOO_LONG,
                "the name is longer than this server allows",
            );
            return false;
        }
        true
    }

    /// Serves one frame from an established session.
    pub fn handle_frame(&mut self, now: Instant, client: ClientId, frame: Frame) {
        self.stats.transport(client.transport()).frames_in += 1;
        let channel = frame.channel;
        match frame.body {
            FrameBody::Data(d) => self.outputs.frame(
                client,
                Frame::new(Data { payload: d.payload }).on_channel(channel),
            ),
            FrameBody::Subscribe(s) => {
                if self.name_ok(client, s.id, &s.filter) {
                    self.pubsub
                        .subscribe(&self.config, client, s.id, &s.filter, &mut self.outputs);
                }
            }
            FrameBody::Unsubscribe(u) => {
                self.pubsub
                    .unsubscribe(client, u.id, &u.filter, &mut self.outputs);
            }
            FrameBody::Publish(p) => {
                if !self.name_ok(client, p.id, &p.topic) {
                    return;
                }
                match self.pubsub.publish(
                    &self.config,
                    channel,
                    p.retain,
                    &p.topic,
                    &p.payload,
                    &mut self.outputs,
                ) {
                    Ok(fanout) => {
                        self.stats.published += 1;
                        self.stats.delivered += fanout.deliveries as u64;
                        self.outputs.ok(client, p.id);
                    }
                    Err((status, why)) => self.outputs.fail(client, p.id, status, &why),
                }
            }
            FrameBody::Request(r) => self.request(now, client, r),
            FrameBody::Response(r) => {
                if let Some(key) = self.services.answer(client, r, &mut self.outputs) {
                    self.timers.set(HubTimer::Request(key), None);
                }
            }
            FrameBody::Register(r) => {
                if self.name_ok(client, r.id, &r.service) {
                    self.services.register(
                        &self.config,
                        client,
                        r.id,
                        r.service,
                        &mut self.outputs,
                    );
                }
            }
            FrameBody::Unregister(u) => {
                self.services
                    .unregister(client, u.id, &u.service, &mut self.outputs);
            }
            FrameBody::QueuePush(p) => {
                if self.name_ok(client, p.id, &p.queue) {
                    let changes = self
                        .queues
                        .push(&self.config, now, client, p, &mut self.outputs);
                    self.apply(changes);
                }
            }
            FrameBody::QueueFetch(f) => {
                if self.name_ok(client, f.id, &f.queue) {
                    let changes =
                        self.queues
                            .fetch(&self.config, now, client, &f, &mut self.outputs);
                    self.apply(changes);
                }
            }
            FrameBody::QueueAck(a) => {
                let changes =
                    self.queues
                        .ack(client, a.id, a.delivery_id, &a.queue, &mut self.outputs);
                self.apply(changes);
            }
            other => {
                // Message and QueueDelivery travel from the server only; the session frames never
                // get here (the session consumes them).
                debug!("{client:?}: refused a {:?} frame", other.kind());
                self.outputs.frame(
                    client,
                    Frame::new(ErrorFrame {
                        reason: Reason::PROTOCOL_ERROR,
                        refused_kind: other.kind() as u8,
                        message: Text::from_static("clients do not send this kind"),
                    }),
                );
            }
        }
    }

    fn request(&mut self, now: Instant, client: ClientId, r: Request) {
        self.stats.requests += 1;
        if r.id == 0 {
            // A request with id 0 could not be answered (section 5.4: ids are non-zero).
            self.outputs.frame(
                client,
                Frame::new(ErrorFrame {
                    reason: Reason::PROTOCOL_ERROR,
                    refused_kind: framewire_protocol::wire::FrameKind::Request as u8,
                    message: Text::from_static("a request's id must not be 0"),
                }),
            );
            return;
        }
        if r.target.as_str().starts_with("sys.") {
            let view = sys::SysView {
                info: &self.info,
                now_micros: now.as_micros(),
                stats: &self.stats,
                refused: self.counters.snapshot(),
                subscriptions: self.pubsub.subscriptions(),
                retained: self.pubsub.retained(),
                services: self.services.services(),
                pending_requests: self.services.pending(),
                queues: self.queues.queues(),
                queued_messages: self.queues.messages(),
            };
            let (status, payload) = sys::call(r.target.as_str(), &view).unwrap_or((
                Status::NOT_FOUND,
                Bytes::from_static(b"no built-in method of that name"),
            ));
            self.outputs.respond(client, r.id, status, payload);
            return;
        }
        if !self.name_ok(client, r.id, &r.target) {
            return;
        }
        if let Routed::Sent(key, deadline) =
            self.services
                .route(&self.config, now, client, r, &mut self.outputs)
        {
            self.timers.set(HubTimer::Request(key), Some(deadline));
        }
    }
}

#[cfg(test)]
mod tests;
