//! A session's life in the hub: admitted with its Hello (resuming a parked session or taking over
//! a live one), ended (parked for resume, its will published), expired; and, with a data
//! directory, the sessions the last run left taken up again at start (docs/PROTOCOL.md sections
//! 4.3, 5.8 and 10.1).

use std::net::IpAddr;
use std::time::Duration;

use framewire_protocol::session::{Admission, Instant, Refusal};
use framewire_protocol::wire::{ChannelKind, Hello, LastWill, Reason, Text};
use log::{debug, info};

use super::auth::Action;
use super::output::ClientId;
use super::{Hub, HubTimer, token, topic};
use crate::store::{Record, SessionRecord, State, StoredSession};

impl Hub {
    /// A client's Hello arrived: the session is counted, its last will kept, and the Welcome's
    /// terms decided: a token to resume this session by, and whether the Hello's token resumed a
    /// parked session (its subscriptions and kept messages follow the Welcome) or took over a live
    /// one (which is closed with `SESSION_TAKEN_OVER`).
    ///
    /// # Errors
    /// A [`Refusal`] (`AUTH_FAILED`) for a missing (when required), forged, expired or
    /// misused connect token; the Reject carries it, and no session is counted.
    pub fn admit(
        &mut self,
        now: Instant,
        client: ClientId,
        hello: &Hello,
        peer: IpAddr,
    ) -> Result<Admission, Refusal> {
        self.admit_as(now, client, hello, peer, None)
    }

    /// [`Hub::admit`] for a client that showed a verified certificate whose subject's common name
    /// is `identity` (mutual TLS): the session's identity, its permissions from the `acl` rules.
    ///
    /// # Errors
    /// As [`Hub::admit`]; also a connect token naming another identity.
    pub fn admit_certified(
        &mut self,
        now: Instant,
        client: ClientId,
        hello: &Hello,
        peer: IpAddr,
        identity: &str,
    ) -> Result<Admission, Refusal> {
        self.admit_as(now, client, hello, peer, Some(identity))
    }

    /// The refusal for a client whose verified certificate names no usable identity.
    pub fn refuse_certificate(
        &mut self,
        client: ClientId,
        peer: IpAddr,
        why: crate::tls::SubjectError,
    ) -> Refusal {
        info!("{client:?} from {peer}: refused: {why}");
        self.stats.auth_refused += 1;
        Refusal {
            silent: false,
            reason: Reason::AUTH_FAILED,
            message: Text::from(why.to_string()),
        }
    }

    fn admit_as(
        &mut self,
        now: Instant,
        client: ClientId,
        hello: &Hello,
        peer: IpAddr,
        certified: Option<&str>,
    ) -> Result<Admission, Refusal> {
        let now_unix = (self.info.unix_micros_at_zero + now.as_micros()) / 1_000_000;
        let admitted = self
            .gate
            .admit(client, hello, peer, now_unix, certified)
            .inspect_err(|_| {
                self.stats.auth_refused += 1;
            })?;
        let identity = admitted.identity;
        let will = hello.options.last_will();
        if let Some(will) = &will {
            self.check_will(client, will)?;
        }
        let t = self.stats.transport(client.transport());
        t.sessions += 1;
        t.sessions_total += 1;
        let key = self.sessions.open(client, identity.clone());
        if let Some(will) = will {
            // A will must outlive a crash: a device that never comes back is still reported gone.
            self.sessions
                .recorded(client, Some(&will), &mut self.outputs);
            self.wills.insert(client, will);
        }
        let mut admission = Admission {
            session_token: token::issue(&self.info.token_key, client, key),
            // A UDP session is sealed with its token's keys; a TCP one has TLS for that.
            seal: admitted.keys.filter(|_| matches!(client, ClientId::Udp(_))),
            ..Admission::default()
        };
        // A client that confirms what it receives has its reliable Messages numbered (section
        // 5.9); its layout says which channels are reliable for it.
        let confirms = hello
            .options
            .confirms()
            .then(|| hello.options.channels().unwrap_or_default());
        let origin = hello
            .options
            .resume_token()
            .and_then(|t| token::verify(&self.info.token_key, &t))
            // A token whose session was resumed names the session that resumed it.
            .map(|(tag, key)| (tag, self.sessions.current(key)))
            .filter(|&(tag, key)| {
                // A session belongs to the identity that opened it: another client's session
                // token resumes nothing.
                let same = self.sessions.owner(tag, key) == identity.as_ref();
                if !same {
                    info!("{client:?}: resume token of another identity's session ignored");
                }
                same
            });
        match origin {
            Some((tag, origin)) => {
                self.resume_from(client, (tag, origin), confirms, &mut admission);
            }
            None => {
                if let Some(layout) = confirms {
                    self.pubsub.number_for(client, layout);
                }
            }
        }
        Ok(admission)
    }

    /// Refuses a will the server could never publish now, rather than find out when the client
    /// is gone (MQTT 5 refuses such a CONNECT too).
    fn check_will(&mut self, client: ClientId, will: &LastWill) -> Result<(), Refusal> {
        let topic = will.topic.as_str();
        let problem = if let Err(e) = topic::check_topic(topic) {
            Some((Reason::PROTOCOL_ERROR, e.to_string()))
        } else if will.topic.len() > self.config.max_name_len {
            Some((Reason::PROTOCOL_ERROR, "name too long".to_string()))
        } else if !self.gate.allows(client, Action::Publish(topic)) {
            Some((
                Reason::AUTH_FAILED,
                "the token does not allow publishing it".to_string(),
            ))
        } else {
            None
        };
        let Some((reason, why)) = problem else {
            return Ok(());
        };
        debug!("{client:?}: refused: last will on {topic:?}: {why}");
        self.gate.forget(client);
        Err(Refusal {
            silent: false,
            reason,
            message: Text::from(format!("last will on {topic:?}: {why}").as_str()),
        })
    }

    /// `client` presented the token of session `origin` (on transport `tag`): it resumes it if
    /// parked, or takes it over if its connection is still open (the server has not noticed it
    /// is gone). The old connection is then closed (a Close to a connection that no longer exists
    /// goes nowhere), and its will is void: its client is back.
    fn resume_from(
        &mut self,
        client: ClientId,
        (tag, origin): (u8, u64),
        confirms: Option<Vec<ChannelKind>>,
        admission: &mut Admission,
    ) {
        if let Some(r) = self
            .pubsub
            .resume(origin, client, confirms.clone(), &mut self.outputs)
        {
            self.timers.set(HubTimer::ParkedExpiry(r.parked), None);
            self.sessions.unpark(origin);
            info!(
                "{client:?}: resumed session {origin:016x} ({} missed)",
                r.missed
            );
            admission.resumed = true;
            admission.missed = r.missed;
        } else if let Some(old) = self
            .sessions
            .client_of(tag, origin)
            .filter(|&c| c != client)
        {
            let (had, missed) = self
                .pubsub
                .take_over(old, client, confirms, &mut self.outputs);
            admission.resumed = had;
            admission.missed = missed;
            if had {
                info!("{client:?}: took over the live session of {old:?}");
            }
            self.wills.remove(&old);
            self.outputs.close(
                old,
                Reason::SESSION_TAKEN_OVER,
                "another connection resumed this session",
            );
        } else {
            if let Some(layout) = confirms {
                self.pubsub.number_for(client, layout);
            }
            return;
        }
        self.sessions
            .succeeded(origin, self.sessions.key_of(client));
        // The log moves the session to its new key.
        let filters = self.pubsub.filters_of(client);
        if !filters.is_empty() {
            self.sessions
                .recorded(client, self.wills.get(&client), &mut self.outputs);
            let key = self.sessions.key_of(client);
            self.outputs
                .record_session(SessionRecord::Subscribed { key, filters });
        }
        self.outputs
            .record_session(SessionRecord::Ended { key: origin });
    }

    /// A session is over. `clean` is a Close with reason `NORMAL` from the client: the session
    /// ends for good. Otherwise (the socket dropped, the idle timeout, a protocol error) its last
    /// will is published and its subscriptions are parked for resume. Either way its services go,
    /// requests waiting on it fail with `RESPONDER_GONE`, and queue messages it fetched without
    /// acknowledging are delivered again. Call it exactly once per admitted session.
    pub fn session_ended(&mut self, now: Instant, client: ClientId, clean: bool) {
        let t = self.stats.transport(client.transport());
        t.sessions = t.sessions.saturating_sub(1);
        let will = self.wills.remove(&client);
        self.gate.forget(client);
        let identity = self.sessions.identity(client).cloned();
        let key = self.sessions.close(client);
        let mut parked = None;
        if clean {
            self.pubsub.forget(client);
        } else {
            if let Some(will) = will {
                self.publish_will(&will);
            }
            let at_ms = self.unix_ms(now);
            parked = self
                .pubsub
                .park(&self.config, client, key, at_ms, &mut self.outputs);
            if let Some(n) = parked {
                let expiry = now + self.config.session_expiry;
                self.timers.set(HubTimer::ParkedExpiry(n), Some(expiry));
                // A parked session keeps its identity until it is resumed or expires.
                self.sessions.park(key, identity);
            }
        }
        if parked.is_none() {
            self.sessions.forget_lineage(key);
            // Nothing if the log does not have it (or another connection took it over, and the
            // log has it under that one's key).
            self.outputs.record_session(SessionRecord::Ended { key });
        }
        for name in self.services.names_of(client) {
            self.tell_cluster_serves(name, false);
        }
        for key in self.services.forget(client, &mut self.outputs) {
            self.timers.set(HubTimer::Request(key), None);
        }
        let changes = self
            .queues
            .forget(&self.config, now, client, &mut self.outputs);
        self.apply(changes);
    }

    /// A parked session's time is up: its subscriptions and kept messages go.
    pub(super) fn expire_parked(&mut self, n: u64) {
        if let Some(key) = self.pubsub.expire(n) {
            self.sessions.unpark(key);
            self.sessions.forget_lineage(key);
            self.outputs.record_session(SessionRecord::Ended { key });
        }
    }

    pub(super) fn publish_will(&mut self, will: &LastWill) {
        // A will is what a device's watchers must hear: kept for parked subscribers too.
        match self.pubsub.publish(
            &self.config,
            will.channel,
            true,
            will.retain,
            &will.topic,
            &will.payload,
            &mut self.outputs,
        ) {
            Ok(fanout) => {
                self.stats.published += 1;
                self.stats.delivered += fanout.deliveries as u64;
                self.tell_cluster(&will.topic, will.channel, true, will.retain, &will.payload);
            }
            Err((status, why)) => {
                debug!("last will on {} not published: {status} {why}", will.topic);
            }
        }
    }

    /// The wall clock at `now`, in milliseconds since the UNIX epoch.
    fn unix_ms(&self, now: Instant) -> u64 {
        (self.info.unix_micros_at_zero + now.as_micros()) / 1_000
    }

    /// The sessions of a data directory, taken up at start (`now`): each with subscriptions is
    /// parked for resume, for what is left of its expiry (counted from the crash for one that
    /// was live then); the wills of the sessions the last run left live are published, as for
    /// any session that ended without a Close.
    pub(super) fn restore_sessions(&mut self, now: Instant, state: &State) {
        let now_ms = self.unix_ms(now);
        let expiry_ms = u64::try_from(self.config.session_expiry.as_millis()).unwrap_or(u64::MAX);
        let mut wills = Vec::new();
        let mut parked = 0;
        for (&key, s) in &state.sessions {
            self.outputs.restored_session(key, session_bytes(key, s));
            let at_ms = s.parked_at_ms.unwrap_or(now_ms);
            wills.extend(s.will.clone());
            let left = (at_ms.saturating_add(expiry_ms)).saturating_sub(now_ms);
            if s.filters.is_empty()
                || left == 0
                || self.pubsub.parked() >= self.config.max_parked_sessions
            {
                self.outputs.record_session(SessionRecord::Ended { key });
                continue;
            }
            let n = self
                .pubsub
                .restore_parked(&self.config, key, &s.filters, &s.kept, at_ms);
            self.sessions.park(key, s.identity.clone());
            let deadline = now + Duration::from_millis(left);
            self.timers.set(HubTimer::ParkedExpiry(n), Some(deadline));
            if s.parked_at_ms.is_none() {
                self.outputs
                    .record_session(SessionRecord::Parked { key, at_ms });
            }
            parked += 1;
        }
        if !state.sessions.is_empty() {
            info!(
                "sessions: {parked} of {} kept for resume; {} wills of sessions the last run \
                 left published",
                state.sessions.len(),
                wills.len()
            );
        }
        for will in &wills {
            self.publish_will(will);
        }
    }

    /// The sessions' part of a snapshot: every session the log has, live or parked.
    pub(super) fn snapshot_sessions(&self, state: &mut State) {
        for view in self.pubsub.parked_views() {
            if self.outputs.has_session(view.key) {
                let identity = self.sessions.parked_identity(view.key).cloned();
                state.sessions.insert(
                    view.key,
                    StoredSession {
                        identity,
                        will: None,
                        filters: view.filters,
                        parked_at_ms: Some(view.at_ms),
                        kept: view.kept,
                    },
                );
            }
        }
        // A live session the log has has a will or subscriptions (it is ended in the log when
        // it unsubscribes from its last filter without a will).
        let live: std::collections::BTreeSet<ClientId> = self
            .pubsub
            .live_holders()
            .chain(self.wills.keys().copied())
            .collect();
        for client in live {
            let key = self.sessions.key_of(client);
            if self.outputs.has_session(key) {
                state.sessions.insert(
                    key,
                    StoredSession {
                        identity: self.sessions.identity(client).cloned(),
                        will: self.wills.get(&client).cloned(),
                        filters: self.pubsub.filters_of(client),
                        parked_at_ms: None,
                        kept: Vec::new(),
                    },
                );
            }
        }
    }
}

/// The bytes a stored session's records take in a snapshot.
pub(super) fn session_bytes(key: u64, s: &StoredSession) -> usize {
    let mut records = Vec::new();
    s.to_records(key, &mut records);
    records.iter().map(Record::encoded_len).sum()
}
