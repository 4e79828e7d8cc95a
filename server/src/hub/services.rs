//! Request/response between clients: services that clients register, requests routed to one
//! provider in turn, and the responses routed back under the requester's id (docs/PROTOCOL.md
//! sections 5.4-5.6). Every routed request has a deadline; at it the requester gets `TIMEOUT` and a
//! late response is dropped.

use std::collections::HashMap;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{Frame, Request, Response, Status, Text};
use log::debug;

use super::config::HubConfig;
use super::output::{ClientId, Outputs};
use crate::cluster::ClusterOut;

/// A routed request's key: the provider and the id the hub gave the request.
pub(crate) type RoutedKey = (ClientId, u32);

#[derive(Debug, Default)]
struct Providers {
    list: Vec<ClientId>,
    /// The next provider to get a request (round robin).
    next: usize,
}

/// Who waits for a routed request's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requester {
    /// A session of this node.
    Session(ClientId),
    /// Another node of the cluster, at this NATS reply subject (docs/PROTOCOL.md section 12.4).
    Cluster(Text),
}

impl Requester {
    /// Answers the request `id` of this requester.
    fn answer(&self, out: &mut Outputs, id: u32, status: Status, payload: Bytes) {
        match self {
            Self::Session(c) => out.frame(
                *c,
                Frame::new(Response {
                    id,
                    status,
                    payload,
                }),
            ),
            Self::Cluster(reply) => out.for_cluster(ClusterOut::Reply {
                reply: reply.clone(),
                status,
                payload,
            }),
        }
    }

    /// Refuses the request `id` of this requester (a session's refusal is counted and explained
    /// as [`Outputs::fail`] does; another node's requester gets the status and why).
    fn fail(&self, out: &mut Outputs, id: u32, status: Status, why: &str) {
        match self {
            Self::Session(c) => out.fail(*c, id, status, why),
            Self::Cluster(_) => {
                self.answer(out, id, status, Bytes::copy_from_slice(why.as_bytes()));
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    requester: Requester,
    requester_id: u32,
    /// When it was routed.
    at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Services {
    by_name: HashMap<Text, Providers>,
    /// Each session's registrations, to remove them when it ends.
    registered: HashMap<ClientId, Vec<Text>>,
    pending: HashMap<RoutedKey, Pending>,
    /// Routed requests waiting, per requester.
    waiting: HashMap<ClientId, usize>,
    /// Routed requests waiting, per provider.
    assigned: HashMap<ClientId, usize>,
    next_id: u32,
}

/// What the caller does with the deadline of a routed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Sent to a provider: set this timer.
    Sent(RoutedKey, Instant),
    /// Answered at once (no responder, a limit).
    Answered,
}

impl Services {
    pub(crate) fn services(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether `client` is registered for `name`.
    pub(crate) fn serves(&self, client: ClientId, name: &Text) -> bool {
        self.registered
            .get(&client)
            .is_some_and(|m| m.contains(name))
    }

    /// The services `client` is registered for.
    pub(crate) fn names_of(&self, client: ClientId) -> Vec<Text> {
        self.registered.get(&client).cloned().unwrap_or_default()
    }

    /// Every service, with how many sessions serve it.
    pub(crate) fn responders(&self) -> Vec<(String, usize)> {
        self.by_name
            .iter()
            .filter(|(_, p)| !p.list.is_empty())
            .map(|(name, p)| (name.as_str().to_string(), p.list.len()))
            .collect()
    }

    /// Every registration: each service once per session registered for it.
    pub(crate) fn registrations(&self) -> impl Iterator<Item = &Text> {
        self.registered.values().flatten()
    }

    pub(crate) fn register(
        &mut self,
        config: &HubConfig,
        client: ClientId,
        id: u32,
        name: Text,
        out: &mut Outputs,
    ) {
        if name.as_str().starts_with("sys.") {
            return out.fail(
                client,
                id,
                Status::FORBIDDEN,
                "sys.* names are the server's",
            );
        }
        let mine = self.registered.entry(client).or_default();
        if !mine.contains(&name) {
            if mine.len() >= config.max_services_per_session {
                return out.fail(
                    client,
                    id,
                    Status::LIMIT_REACHED,
                    "too many services for one session",
                );
            }
            mine.push(name.clone());
            self.by_name.entry(name).or_default().list.push(client);
        }
        out.ok(client, id);
    }

    pub(crate) fn unregister(&mut self, client: ClientId, id: u32, name: &Text, out: &mut Outputs) {
        let removed = self
            .registered
            .get_mut(&client)
            .is_some_and(|mine| super::remove_one(mine, name));
        if removed {
            self.drop_provider(name, client);
            out.ok(client, id);
        } else {
            out.fail(
                client,
                id,
                Status::NOT_FOUND,
                "not registered for that service",
            );
        }
    }

    fn drop_provider(&mut self, name: &Text, client: ClientId) {
        if let Some(p) = self.by_name.get_mut(name) {
            p.list.retain(|&c| c != client);
            if p.list.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// Routes a request to the next provider of its target.
    pub(crate) fn route(
        &mut self,
        config: &HubConfig,
        now: Instant,
        requester: Requester,
        request: Request,
        out: &mut Outputs,
    ) -> Routed {
        let Some(providers) = self.by_name.get_mut(&request.target) else {
            requester.fail(
                out,
                request.id,
                Status::NO_RESPONDER,
                "no service of that name",
            );
            return Routed::Answered;
        };
        if let Requester::Session(client) = requester {
            let waiting = self.waiting.entry(client).or_default();
            if *waiting >= config.max_pending_requests_per_session {
                requester.fail(
                    out,
                    request.id,
                    Status::LIMIT_REACHED,
                    "too many requests waiting for responses",
                );
                return Routed::Answered;
            }
            *waiting += 1;
        }
        let provider = providers.list[providers.next % providers.list.len()];
        providers.next = providers.next.wrapping_add(1);
        let routed_id = loop {
            self.next_id = self.next_id.wrapping_add(1);
            if self.next_id != 0 && !self.pending.contains_key(&(provider, self.next_id)) {
                break self.next_id;
            }
        };
        let timeout = config.request_timeout(request.timeout_ms);
        *self.assigned.entry(provider).or_default() += 1;
        self.pending.insert(
            (provider, routed_id),
            Pending {
                requester,
                requester_id: request.id,
                at: now,
            },
        );
        out.frame(
            provider,
            Frame::new(Request {
                id: routed_id,
                timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
                target: request.target,
                payload: request.payload,
            }),
        );
        Routed::Sent((provider, routed_id), now + timeout)
    }

    /// A provider answered: the response goes back to the requester under its own id. Returns the
    /// key whose timer to cancel and when the request was routed, or `None` for a response nobody
    /// waits for (late, or unknown).
    pub(crate) fn answer(
        &mut self,
        provider: ClientId,
        response: Response,
        out: &mut Outputs,
    ) -> Option<(RoutedKey, Instant)> {
        let key = (provider, response.id);
        let Some(p) = self.take(key) else {
            debug!(
                "{provider:?}: response {} answers nothing waiting",
                response.id
            );
            return None;
        };
        p.requester
            .answer(out, p.requester_id, response.status, response.payload);
        Some((key, p.at))
    }

    /// A routed request's deadline passed.
    pub(crate) fn expire(&mut self, key: RoutedKey, out: &mut Outputs) {
        if let Some(p) = self.take(key) {
            p.requester.fail(
                out,
                p.requester_id,
                Status::TIMEOUT,
                "no response before the deadline",
            );
        }
    }

    fn take(&mut self, key: RoutedKey) -> Option<Pending> {
        let p = self.pending.remove(&key)?;
        if let Requester::Session(client) = p.requester {
            decrement(&mut self.waiting, client);
        }
        decrement(&mut self.assigned, key.0);
        Some(p)
    }

    /// A session ended: its registrations go, and the requests waiting on it are answered with
    /// `RESPONDER_GONE`. Returns the keys whose timers to cancel. Requests it made itself are left
    /// to their deadlines, which free them.
    pub(crate) fn forget(&mut self, client: ClientId, out: &mut Outputs) -> Vec<RoutedKey> {
        if let Some(names) = self.registered.remove(&client) {
            for name in &names {
                self.drop_provider(name, client);
            }
        }
        if !self.assigned.contains_key(&client) {
            return Vec::new();
        }
        let gone: Vec<RoutedKey> = self
            .pending
            .keys()
            .filter(|(provider, _)| *provider == client)
            .copied()
            .collect();
        for &key in &gone {
            if let Some(p) = self.take(key) {
                p.requester.answer(
                    out,
                    p.requester_id,
                    Status::RESPONDER_GONE,
                    Bytes::from_static(b"the responder's session ended"),
                );
            }
        }
        gone
    }
}

fn decrement(counts: &mut HashMap<ClientId, usize>, client: ClientId) {
    if let Some(n) = counts.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&client);
        }
    }
}
