//! The hub: what the server does for its clients (docs/PROTOCOL.md section 5), with no I/O.
//!
//! Publish/subscribe with MQTT-style wildcards and retained messages ([`topic`], `pubsub`);
//! request/response to the built-in `sys.*` methods and to services that clients register, with
//! deadlines (`services`, `sys`); work queues with short and long polls, acks and redelivery
//! (`queues`). Data frames are echoed on their channel (an echo service for measurements).
//!
//! Sessions resume: every Welcome carries a session token ([`token`]); a session that ends without
//! the client's Close (NORMAL) leaves its subscriptions parked for `session_expiry`, collecting the
//! reliable messages published to them (bounded, oldest dropped and counted), and a client that
//! presents the token gets them back. A token naming a live session takes it over: the old
//! connection is closed with `SESSION_TAKEN_OVER`. A session's last will (Hello option
//! `LAST_WILL`) is published when it ends without a Close.
//!
//! # Driving the hub
//!
//! Like the protocol's sessions, the hub takes input with the time and hands back output:
//! [`Hub::admit`] with each client's Hello (its answer goes in the Welcome), [`Hub::handle_frame`]
//! for each frame an established session delivers, [`Hub::session_ended`] once when a session
//! is over, and [`Hub::handle_timeout`] at
//! [`Hub::poll_timeout`]. After each call, drain [`Hub::poll_output`]: frames addressed to sessions,
//! which the event loop hands to those sessions. A frame for a session that no longer exists is
//! dropped by the caller. A fan-out's frame is encoded once and shared by every subscriber.

mod acl;
mod auth;
mod cluster;
mod config;
mod lifecycle;
mod local_route;
mod output;
mod pubsub;
mod queue_limits;
mod queues;
mod services;
mod sessions;
pub(crate) mod stats;
pub(crate) mod sys;
pub mod token;
pub mod topic;
mod unconfirmed;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{
    ChannelKind, Data, ErrorFrame, Frame, FrameBody, LastWill, Reason, Request, Status, Text,
};
use log::debug;

pub use acl::AclRule;
pub use auth::{AuthConfig, AuthStats};
pub use config::HubConfig;
pub use local_route::{LocalPublishes, LocalRoute, RouteEpoch};
pub use output::{
    Answering, ClientId, Delivery, HTTP_TOKEN_BIT, Output, SSE_TOKEN_BIT, Transport, WEB_TOKEN_BIT,
    oversized_answer,
};
pub use queue_limits::QueueRule;
pub use stats::{Histogram, HubStats, TransportStats};
pub use sys::ServerInfo;
pub use token::TokenKey;

use crate::counters::Counters;
use crate::deadlines::Deadlines;
use crate::store::{Journal, SessionRecord, State};
use auth::{Action, Gatekeeper};
use output::Outputs;
use pubsub::PubSub;
use queues::{QueueTimer, Queues, TimerChanges};
use services::{Routed, RoutedKey, Services};
use sessions::Sessions;

/// A timer of the hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum HubTimer {
    Request(RoutedKey),
    /// A request sent through the cluster, by its token.
    ClusterRequest(u64),
    Queue(QueueTimer),
    ParkedExpiry(u64),
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
    /// Last wills, by session.
    wills: HashMap<ClientId, LastWill>,
    gate: Gatekeeper,
    /// Sessions by key (what session tokens name), with their identities.
    sessions: Sessions,
    /// Whether this hub is a node of a cluster: then what its sessions publish, register and ask
    /// waits in the outputs' cluster queue for [`Hub::take_cluster_output`].
    clustered: bool,
    /// Requests this node's sessions sent through the cluster, waiting for their answers.
    sent: cluster::SentRequests,
}

impl Hub {
    /// An empty hub. `counters` are the server's, reported by `sys.stats`.
    pub fn new(config: HubConfig, info: ServerInfo, counters: Arc<Counters>) -> Self {
        Self {
            gate: Gatekeeper::new(info.auth.clone()),
            sessions: Sessions::new(info.session_seed),
            config,
            info,
            counters,
            pubsub: PubSub::default(),
            services: Services::default(),
            queues: Queues::default(),
            timers: Deadlines::default(),
            outputs: Outputs::default(),
            stats: HubStats::default(),
            wills: HashMap::new(),
            clustered: false,
            sent: cluster::SentRequests::default(),
        }
    }

    /// Keeps queues, retained messages and sessions in `journal` from now on (`now`), starting
    /// from `state` (what the data directory held): confirmations of durable operations wait for
    /// their records (docs/PROTOCOL.md section 10). Session tokens are signed with `token_key`,
    /// the directory's, so that they resume their sessions after a restart.
    pub fn keep_in(
        &mut self,
        now: Instant,
        journal: Box<dyn Journal>,
        state: &State,
        token_key: TokenKey,
    ) {
        let sessions: usize = state
            .sessions
            .iter()
            .map(|(&key, s)| lifecycle::session_bytes(key, s))
            .sum();
        let live = self.queues.restore(state) + self.pubsub.restore(state) + sessions as u64;
        self.outputs.keep_in(journal, live);
        self.info.token_key = token_key;
        self.restore_sessions(now, state);
        self.compact_if_asked();
    }

    /// Hands the log a snapshot of the whole durable state when it asks for one.
    fn compact_if_asked(&mut self) {
        if self.outputs.wants_snapshot() {
            let mut state = State::default();
            self.queues.snapshot_into(&mut state);
            self.pubsub.snapshot_into(&mut state);
            self.snapshot_sessions(&mut state);
            self.outputs.snapshot(state.to_records());
        }
    }

    /// The filters a session is subscribed to.
    pub(crate) fn subscriptions_of(&self, client: ClientId) -> Vec<Text> {
        self.pubsub.filters_of(client)
    }

    /// What `sys.stats` and the metrics report, read now.
    pub(crate) fn sys_view(&self, now: Instant) -> sys::SysView<'_> {
        sys::SysView {
            info: &self.info,
            now_micros: now.as_micros(),
            stats: &self.stats,
            refused: self.counters.snapshot(),
            subscriptions: self.pubsub.subscriptions(),
            retained: self.pubsub.retained(),
            parked_sessions: self.pubsub.parked(),
            unconfirmed_messages: self.pubsub.unconfirmed(),
            waiting_for_disk: self.outputs.held(),
            dead_lettered: self.queues.dead_lettered(),
            services: self.services.services(),
            responders: &self.services,
            pending_requests: self.services.pending(),
            queues: self.queues.queues(),
            queued_messages: self.queues.messages(),
            refused_ops: self.outputs.refused().collect(),
            counters: &self.counters,
        }
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        self.stats
    }

    /// Counts Data frames sessions of `transport` echoed themselves (`SessionConfig::echo_data`):
    /// each a frame in and a frame out, as if it had passed through [`Hub::handle_frame`].
    pub fn count_echoed(&mut self, transport: Transport, frames: u64) {
        let stats = self.stats.transport(transport);
        stats.frames_in += frames;
        stats.frames_out += frames;
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
                HubTimer::ClusterRequest(token) => {
                    self.stats.request_timeouts += 1;
                    self.cluster_request_expired(token);
                }
                HubTimer::Queue(t) => {
                    let changes = self
                        .queues
                        .on_timer(&self.config, now, t, &mut self.outputs);
                    self.apply(changes);
                }
                HubTimer::ParkedExpiry(n) => self.expire_parked(n),
            }
        }
    }

    fn apply(&mut self, changes: TimerChanges) {
        for (timer, deadline) in changes {
            self.timers.set(HubTimer::Queue(timer), deadline);
        }
    }

    /// Whether `name` is not empty and within the configured length; if not, the operation is
    /// refused (`BAD_REQUEST`, `NAME_TOO_LONG`).
    fn name_ok(&mut self, client: ClientId, id: u32, name: &Text) -> bool {
        if name.is_empty() {
            self.outputs
                .fail(client, id, Status::BAD_REQUEST, "the name is empty");
            return false;
        }
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

    /// Whether `client`'s token allows `action`; if not, the operation is refused with
    /// Takes a new connect-token key and policy (the server reads them again on SIGHUP): new
    /// handshakes are checked with it; sessions already admitted are left as they are.
    pub fn reconfigure_auth(&mut self, auth: AuthConfig) {
        self.gate.reconfigure(auth);
        // A worker's routes were checked against the old policy.
        self.pubsub.epoch().bump();
    }

    /// `FORBIDDEN`.
    fn permitted(&mut self, client: ClientId, id: u32, action: Action<'_>) -> bool {
        if self.gate.allows(client, action) {
            return true;
        }
        self.stats.forbidden += 1;
        debug!("{client:?}: forbidden: {action:?}");
        self.outputs.fail(
            client,
            id,
            Status::FORBIDDEN,
            "the connect token does not allow this",
        );
        false
    }

    /// Serves one frame from an established session; `kind` is the kind of the channel it came on
    /// in that session (a reliable publish is kept for parked subscribers).
    pub fn handle_frame(
        &mut self,
        now: Instant,
        client: ClientId,
        frame: Frame,
        kind: ChannelKind,
    ) {
        self.stats.transport(client.transport()).frames_in += 1;
        self.serve(now, client, frame, kind);
        self.compact_if_asked();
    }

    fn serve(&mut self, now: Instant, client: ClientId, frame: Frame, kind: ChannelKind) {
        let channel = frame.channel;
        self.outputs.handling(frame.kind());
        match frame.body {
            FrameBody::Data(d) => self.outputs.frame(
                client,
                Frame::new(Data { payload: d.payload }).on_channel(channel),
            ),
            FrameBody::Subscribe(s) => {
                if self.name_ok(client, s.id, &s.filter)
                    && self.permitted(client, s.id, Action::Subscribe(s.filter.as_str()))
                {
                    let (sessions, wills) = (&self.sessions, &self.wills);
                    let record = |out: &mut Outputs| {
                        // With a data directory the subscription outlives a crash: its OK
                        // waits for the record.
                        sessions.recorded(client, wills.get(&client), out);
                        out.record_session(SessionRecord::Subscribed {
                            key: sessions.key_of(client),
                            filters: vec![s.filter.clone()],
                        })
                    };
                    self.pubsub.subscribe(
                        &self.config,
                        client,
                        s.id,
                        &s.filter,
                        &mut self.outputs,
                        record,
                    );
                }
            }
            FrameBody::Unsubscribe(u) => {
                let key = self.sessions.key_of(client);
                let will = self.wills.contains_key(&client);
                let record = |out: &mut Outputs, left: bool| {
                    // A session with nothing left to keep leaves the log.
                    out.record_session(if left || will {
                        SessionRecord::Unsubscribed {
                            key,
                            filters: vec![u.filter.clone()],
                        }
                    } else {
                        SessionRecord::Ended { key }
                    })
                };
                self.pubsub
                    .unsubscribe(client, u.id, &u.filter, &mut self.outputs, record);
            }
            FrameBody::Publish(p) => self.publish(client, channel, kind, &p),
            FrameBody::Ack(a) => self.pubsub.confirm(client, a.through),
            FrameBody::Request(r) => self.request(now, client, r),
            FrameBody::Response(r) => {
                if let Some((key, routed_at)) = self.services.answer(client, r, &mut self.outputs) {
                    self.timers.set(HubTimer::Request(key), None);
                    let took = now.saturating_duration_since(routed_at);
                    self.stats
                        .routed_request_us
                        .observe(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                }
            }
            FrameBody::Register(r) => {
                if self.name_ok(client, r.id, &r.service)
                    && self.permitted(client, r.id, Action::Serve(r.service.as_str()))
                {
                    let before = self.services.serves(client, &r.service);
                    let name = r.service.clone();
                    self.services.register(
                        &self.config,
                        client,
                        r.id,
                        r.service,
                        &mut self.outputs,
                    );
                    if !before && self.services.serves(client, &name) {
                        self.tell_cluster_serves(name, true);
                    }
                }
            }
            FrameBody::Unregister(u) => {
                let before = self.services.serves(client, &u.service);
                self.services
                    .unregister(client, u.id, &u.service, &mut self.outputs);
                if before && !self.services.serves(client, &u.service) {
                    self.tell_cluster_serves(u.service, false);
                }
            }
            body @ (FrameBody::QueuePush(_)
            | FrameBody::QueueFetch(_)
            | FrameBody::QueueAck(_)
            | FrameBody::QueueNack(_)
            | FrameBody::QueueExtend(_)) => self.serve_queue(now, client, body),
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

    /// Serves a queue frame (section 5.7): the queue's name checked (for a push or a fetch, which
    /// may create it) and the token's permission for it, then the operation.
    fn serve_queue(&mut self, now: Instant, client: ClientId, body: FrameBody) {
        let (id, queue, creates) = match &body {
            FrameBody::QueuePush(p) => (p.id, &p.queue, true),
            FrameBody::QueueFetch(f) => (f.id, &f.queue, true),
            FrameBody::QueueAck(a) => (a.id, &a.queue, false),
            FrameBody::QueueNack(n) => (n.id, &n.queue, false),
            FrameBody::QueueExtend(e) => (e.id, &e.queue, false),
            _ => return,
        };
        let queue = queue.clone();
        if (creates && !self.name_ok(client, id, &queue))
            || !self.permitted(client, id, Action::Queue(queue.as_str()))
        {
            return;
        }
        if self.clustered && self.config.cluster_queues {
            return self.queue_via_cluster(now, client, body);
        }
        let (config, out) = (&self.config, &mut self.outputs);
        let changes = match body {
            FrameBody::QueuePush(p) => self.queues.push(config, now, client, p, out),
            FrameBody::QueueFetch(f) => self.queues.fetch(config, now, client, &f, out),
            FrameBody::QueueAck(a) => self.queues.ack(client, a.id, a.delivery_id, &queue, out),
            FrameBody::QueueNack(n) => self.queues.nack(config, now, client, &n, out),
            FrameBody::QueueExtend(e) => self.queues.extend(config, now, client, &e, out),
            _ => Vec::new(),
        };
        self.apply(changes);
    }

    fn publish(
        &mut self,
        client: ClientId,
        channel: u8,
        kind: ChannelKind,
        p: &framewire_protocol::wire::Publish,
    ) {
        if !self.name_ok(client, p.id, &p.topic)
            || !self.permitted(client, p.id, Action::Publish(p.topic.as_str()))
        {
            return;
        }
        if p.retain
            && self.outputs.storage_full(
                client,
                p.id,
                crate::store::record::retained_len(&p.topic, &p.payload),
            )
        {
            return;
        }
        match self.pubsub.publish(
            &self.config,
            channel,
            kind.is_reliable(),
            p.retain,
            &p.topic,
            &p.payload,
            &mut self.outputs,
        ) {
            Ok(fanout) => {
                self.stats.published += 1;
                self.stats.delivered += fanout.deliveries as u64;
                self.stats.fanout.observe(fanout.deliveries as u64);
                self.outputs.ok_once(client, p.id, fanout.seq);
                self.tell_cluster(&p.topic, channel, kind.is_reliable(), p.retain, &p.payload);
            }
            Err((status, why)) => self.outputs.fail(client, p.id, status, &why),
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
            let view = self.sys_view(now);
            let (status, payload) = sys::call(r.target.as_str(), &view).unwrap_or((
                Status::NOT_FOUND,
                Bytes::from_static(b"no built-in method of that name"),
            ));
            self.outputs.respond(client, r.id, status, payload);
            return;
        }
        if !self.name_ok(client, r.id, &r.target)
            || !self.permitted(client, r.id, Action::Request(r.target.as_str()))
        {
            return;
        }
        if self.clustered {
            return self.request_via_cluster(now, client, r);
        }
        if let Routed::Sent(key, deadline) = self.services.route(
            &self.config,
            now,
            services::Requester::Session(client),
            r,
            &mut self.outputs,
        ) {
            self.timers.set(HubTimer::Request(key), Some(deadline));
        }
    }
}

/// Removes one `item` from an unordered list; whether it was there.
fn remove_one<T: PartialEq>(list: &mut Vec<T>, item: &T) -> bool {
    match list.iter().position(|x| x == item) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
