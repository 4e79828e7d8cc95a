//! The thread behind a [`SharedClient`](super::SharedClient): it owns the [`Connection`], sleeps on
//! its socket and on a waker that the handles ring when they queue an operation, and routes what
//! comes back: each Response to the call waiting for it (with the queue deliveries of a fetch),
//! each Message to the inbox of every subscription whose filter matches its topic, each routed
//! Request to the inbox of the service it names.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::topic::matches;
use framewire_protocol::wire::{Status, Text};
use log::debug;

use super::inbox::Inbox;
use crate::blocking::CONNECTION_EVENTS_KEPT;
use crate::connection::{Connection, PublishOptions};
use crate::error::{ClientError, Error};
use crate::event::{ClientEvent, Delivery, IncomingRequest, Message};
use crate::options::Reconnect;

pub(super) const SOCKET: mio::Token = mio::Token(0);
pub(super) const WAKE: mio::Token = mio::Token(1);

/// An operation a handle asks for.
#[derive(Debug)]
pub(super) enum Op {
    Publish {
        topic: String,
        payload: Bytes,
        options: PublishOptions,
    },
    Subscribe {
        filter: String,
        inbox: Arc<Inbox<Message>>,
    },
    /// A subscription's handle was dropped (no answer is waited for).
    Unsubscribe {
        inbox: Arc<Inbox<Message>>,
    },
    Request {
        target: String,
        payload: Bytes,
        timeout: Duration,
    },
    Register {
        service: String,
        inbox: Arc<Inbox<IncomingRequest>>,
    },
    /// A service's handle was dropped.
    Unregister {
        inbox: Arc<Inbox<IncomingRequest>>,
    },
    Respond {
        id: u32,
        status: Status,
        payload: Bytes,
    },
    QueuePush {
        queue: String,
        payload: Bytes,
    },
    QueueFetch {
        queue: String,
        max: u16,
        wait: Duration,
    },
    QueueAck {
        queue: String,
        delivery_id: u64,
    },
    QueueNack {
        queue: String,
        delivery_id: u64,
        delay: Duration,
    },
    QueueExtend {
        queue: String,
        delivery_id: u64,
        timeout: Duration,
    },
}

impl Op {
    pub(super) fn publish(topic: &str, payload: Bytes, options: PublishOptions) -> Self {
        Self::Publish {
            topic: topic.to_owned(),
            payload,
            options,
        }
    }

    pub(super) fn subscribe(filter: &str, inbox: &Arc<Inbox<Message>>) -> Self {
        Self::Subscribe {
            filter: filter.to_owned(),
            inbox: Arc::clone(inbox),
        }
    }

    pub(super) fn request(target: &str, payload: Bytes, timeout: Duration) -> Self {
        Self::Request {
            target: target.to_owned(),
            payload,
            timeout,
        }
    }

    pub(super) fn register(service: &str, inbox: &Arc<Inbox<IncomingRequest>>) -> Self {
        Self::Register {
            service: service.to_owned(),
            inbox: Arc::clone(inbox),
        }
    }

    pub(super) fn respond(request: &IncomingRequest, status: Status, payload: Bytes) -> Self {
        Self::Respond {
            id: request.id,
            status,
            payload,
        }
    }

    pub(super) fn queue_push(queue: &str, payload: Bytes) -> Self {
        Self::QueuePush {
            queue: queue.to_owned(),
            payload,
        }
    }

    pub(super) fn queue_fetch(queue: &str, max: u16, wait: Duration) -> Self {
        Self::QueueFetch {
            queue: queue.to_owned(),
            max,
            wait,
        }
    }

    pub(super) fn queue_ack(delivery: &Delivery) -> Self {
        Self::QueueAck {
            queue: delivery.queue.as_str().to_owned(),
            delivery_id: delivery.delivery_id,
        }
    }

    pub(super) fn queue_nack(delivery: &Delivery, delay: Duration) -> Self {
        Self::QueueNack {
            queue: delivery.queue.as_str().to_owned(),
            delivery_id: delivery.delivery_id,
            delay,
        }
    }

    pub(super) fn queue_extend(delivery: &Delivery, timeout: Duration) -> Self {
        Self::QueueExtend {
            queue: delivery.queue.as_str().to_owned(),
            delivery_id: delivery.delivery_id,
            timeout,
        }
    }

    /// How long its caller waits for the answer: a request until just past its deadline (the
    /// connection answers `TIMEOUT` itself half a second after it; zero: the server's default,
    /// so `request_timeout`), a fetch its long poll and then `request_timeout`, anything else
    /// `request_timeout`.
    pub(super) fn wait(&self, request_timeout: Duration) -> Duration {
        match self {
            Self::Request { timeout, .. } if !timeout.is_zero() => {
                *timeout + Duration::from_secs(1)
            }
            Self::QueueFetch { wait, .. } => *wait + request_timeout,
            _ => request_timeout,
        }
    }
}

/// What an operation's success carries.
#[derive(Debug)]
pub(super) enum Answer {
    /// The Response's payload.
    Payload(Bytes),
    /// A fetch's queue deliveries.
    Deliveries(Vec<Delivery>),
}

impl Answer {
    pub(super) fn payload(self) -> Bytes {
        match self {
            Self::Payload(b) => b,
            Self::Deliveries(_) => Bytes::new(),
        }
    }

    pub(super) fn deliveries(self) -> Vec<Delivery> {
        match self {
            Self::Payload(_) => Vec::new(),
            Self::Deliveries(d) => d,
        }
    }
}

pub(super) type Outcome = Result<Answer, Error>;

/// Where an operation's answer goes: a blocking caller's channel, or an async caller's one-shot.
#[derive(Debug)]
pub(super) enum Reply {
    Blocking(SyncSender<Outcome>),
    #[cfg(feature = "tokio")]
    Async(tokio::sync::oneshot::Sender<Outcome>),
}

impl Reply {
    /// Hands over the answer; a caller that stopped waiting is not an error.
    fn send(self, result: Outcome) {
        match self {
            Self::Blocking(tx) => {
                let _ = tx.try_send(result);
            }
            #[cfg(feature = "tokio")]
            Self::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

#[derive(Debug)]
pub(super) enum Control {
    Op {
        ticket: u64,
        op: Op,
        reply: Option<Reply>,
    },
    /// The caller stopped waiting for this ticket's answer: take it back if it has not left.
    Cancel(u64),
    Close,
}

/// Operations queued for the thread at most, before a fire-and-forget publisher waits: the
/// queue's bound (answered calls are bounded by their callers, one each).
#[cfg(feature = "tokio")]
pub(super) const MAX_QUEUED: usize = 8192;

/// What the handles and the thread share.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) queue: Mutex<VecDeque<Control>>,
    pub(super) waker: mio::Waker,
    /// The connection's ups and downs, the last [`CONNECTION_EVENTS_KEPT`].
    pub(super) log: Mutex<VecDeque<ClientEvent>>,
    /// Rung when the thread has taken operations off the queue (a publisher waiting for room).
    #[cfg(feature = "tokio")]
    pub(super) drained: tokio::sync::Notify,
}

impl Channel {
    /// Queues `c`; returns the queue's length after it. The thread is woken only when the queue
    /// was empty: it takes everything queued each turn, so a queue that was not empty has a wake
    /// pending already (or the thread is waiting for the socket to take more).
    pub(super) fn send(&self, c: Control) -> usize {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = q.is_empty();
        q.push_back(c);
        let len = q.len();
        drop(q);
        if was_empty {
            // A waker that cannot wake means the thread is gone; the caller's wait then ends.
            let _ = self.waker.wake();
        }
        len
    }

    /// Queues an operation nobody waits an answer for.
    pub(super) fn unanswered(&self, op: Op) {
        self.send(Control::Op {
            ticket: 0,
            op,
            reply: None,
        });
    }

    pub(super) fn queued(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

pub(super) struct Driver {
    pub(super) conn: Connection,
    pub(super) poll: mio::Poll,
    pub(super) channel: Arc<Channel>,
    /// Told once: connected, or the first round of attempts failed.
    pub(super) ready: Option<SyncSender<Result<(), ClientError>>>,
    /// The reconnect policy to restore once the first connection is up.
    pub(super) reconnect: Option<Reconnect>,
    /// Operations waiting for their Response, by operation id, with their ticket.
    pub(super) pending: HashMap<u32, (u64, Reply)>,
    pub(super) tickets: HashMap<u64, u32>,
    /// Subscribe operations waiting for their Response: their inbox, to drop it on a refusal.
    pub(super) subscribing: HashMap<u32, Arc<Inbox<Message>>>,
    /// Every subscription's filter and inbox.
    pub(super) routes: Vec<(Text, Arc<Inbox<Message>>)>,
    /// Register operations waiting for their Response.
    pub(super) registering: HashMap<u32, Arc<Inbox<IncomingRequest>>>,
    /// Every service's name and inbox.
    pub(super) services: Vec<(Text, Arc<Inbox<IncomingRequest>>)>,
    /// Fetches waiting for their Response, and the deliveries that came for them so far.
    pub(super) fetching: HashMap<u32, Vec<Delivery>>,
    pub(super) registered: u64,
}

impl Driver {
    pub(super) fn run(mut self) {
        let mut events = mio::Events::with_capacity(16);
        let mut closing: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.conn.update(now);
            self.take_events();
            if self.take_controls(now) {
                closing.get_or_insert(now + Duration::from_secs(1));
            }
            self.conn.flush(now);
            self.take_events();
            if self.conn.is_closed() || closing.is_some_and(|d| now >= d) {
                return self.finish();
            }
            let mut wake = self
                .conn
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now));
            // Operations still queued (a publish the connection pushed back on) and nothing for
            // the socket to take: no wake-up is coming for them, so go round again at once.
            if !self.conn.wants_write() && self.channel.queued() > 0 {
                wake = Duration::ZERO;
            }
            let again = self.registered == self.conn.generation();
            match self
                .conn
                .register_socket(self.poll.registry(), SOCKET, again)
            {
                Ok(true) => self.registered = self.conn.generation(),
                Ok(false) => {}
                Err(e) => debug!("cannot register the socket: {e}"),
            }
            let _ = self.poll.poll(&mut events, Some(wake));
        }
    }

    /// Runs what the handles queued, in order, until the connection pushes back on a
    /// fire-and-forget publish (the rest waits for the socket to take more); whether one asked to
    /// close.
    fn take_controls(&mut self, now: Instant) -> bool {
        // One lock a turn: everything queued so far, taken at once.
        let mut queued = std::mem::take(
            &mut *self
                .channel
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut close = false;
        while let Some(c) = queued.pop_front() {
            match c {
                Control::Op {
                    ticket,
                    op:
                        Op::Publish {
                            topic,
                            payload,
                            options,
                        },
                    reply: None,
                } if self.conn.is_connected() => {
                    match self.conn.publish(now, &topic, payload.clone(), options) {
                        Err(ClientError::Backpressure) => {
                            // Back at the head, before whatever came meanwhile.
                            queued.push_front(Control::Op {
                                ticket,
                                op: Op::Publish {
                                    topic,
                                    payload,
                                    options,
                                },
                                reply: None,
                            });
                            let mut shared = self
                                .channel
                                .queue
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner);
                            queued.append(&mut shared);
                            *shared = queued;
                            break;
                        }
                        Err(e) => debug!("a publish without an answer failed: {e}"),
                        Ok(_) => {}
                    }
                }
                Control::Op { ticket, op, reply } => self.start(now, ticket, op, reply),
                Control::Cancel(ticket) => {
                    if let Some(id) = self.tickets.remove(&ticket) {
                        self.conn.cancel(id);
                        self.pending.remove(&id);
                        self.forget(id, now);
                    }
                }
                Control::Close => {
                    self.conn.close(now);
                    close = true;
                }
            }
        }
        #[cfg(feature = "tokio")]
        self.channel.drained.notify_waiters();
        close
    }

    /// What an operation that will not be answered (cancelled, or its connection failed) left
    /// behind: a subscription or a service nobody will read is unrouted, a fetch forgotten.
    fn forget(&mut self, id: u32, now: Instant) {
        if let Some(inbox) = self.subscribing.remove(&id) {
            self.unroute(&inbox, now);
        }
        if let Some(inbox) = self.registering.remove(&id) {
            self.unserve(&inbox, now);
        }
        self.fetching.remove(&id);
    }

    fn start(&mut self, now: Instant, ticket: u64, op: Op, reply: Option<Reply>) {
        let started = match op {
            Op::Publish {
                topic,
                payload,
                options,
            } => self.conn.publish(now, &topic, payload, options),
            Op::Subscribe { filter, inbox } => {
                // Routed from now: the retained messages follow the subscription's OK.
                self.routes
                    .push((Text::from(filter.as_str()), Arc::clone(&inbox)));
                let id = self.conn.subscribe(now, &filter);
                match id {
                    Ok(id) => {
                        self.subscribing.insert(id, inbox);
                    }
                    Err(_) => self.unroute(&inbox, now),
                }
                id
            }
            Op::Unsubscribe { inbox } => {
                self.unroute(&inbox, now);
                return;
            }
            Op::Request {
                target,
                payload,
                timeout,
            } => self.conn.request(now, &target, payload, timeout),
            Op::Register { service, inbox } => {
                self.services
                    .push((Text::from(service.as_str()), Arc::clone(&inbox)));
                let id = self.conn.register(now, &service);
                match id {
                    Ok(id) => {
                        self.registering.insert(id, inbox);
                    }
                    Err(_) => self.unserve(&inbox, now),
                }
                id
            }
            Op::Unregister { inbox } => {
                self.unserve(&inbox, now);
                return;
            }
            Op::Respond {
                id,
                status,
                payload,
            } => self.conn.respond(now, id, status, payload).map(|()| 0),
            Op::QueuePush { queue, payload } => self.conn.queue_push(now, &queue, payload),
            Op::QueueFetch { queue, max, wait } => {
                let id = self.conn.queue_fetch(now, &queue, max, wait);
                if let Ok(id) = id {
                    self.fetching.insert(id, Vec::new());
                }
                id
            }
            Op::QueueAck { queue, delivery_id } => self.conn.queue_ack(now, &queue, delivery_id),
            Op::QueueNack {
                queue,
                delivery_id,
                delay,
            } => self.conn.queue_nack(now, &queue, delivery_id, delay),
            Op::QueueExtend {
                queue,
                delivery_id,
                timeout,
            } => self.conn.queue_extend(now, &queue, delivery_id, timeout),
        };
        match (started, reply) {
            (Ok(0), Some(reply)) => {
                reply.send(Ok(Answer::Payload(Bytes::new())));
            }
            (Ok(id), Some(reply)) => {
                self.pending.insert(id, (ticket, reply));
                self.tickets.insert(ticket, id);
            }
            (Err(e), Some(reply)) => {
                reply.send(Err(e.into()));
            }
            (_, None) => {}
        }
    }

    /// Stops handing requests to `inbox`; the registration goes when no other inbox serves its
    /// name.
    fn unserve(&mut self, inbox: &Arc<Inbox<IncomingRequest>>, now: Instant) {
        if let Some(service) = remove_route(&mut self.services, inbox) {
            let _ = self.conn.unregister(now, service.as_str());
        }
    }

    /// Stops routing to `inbox`; the server's subscription goes when no other inbox has its
    /// filter.
    fn unroute(&mut self, inbox: &Arc<Inbox<Message>>, now: Instant) {
        if let Some(filter) = remove_route(&mut self.routes, inbox) {
            let _ = self.conn.unsubscribe(now, filter.as_str());
        }
    }

    fn take_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            match e {
                ClientEvent::Message(m) => {
                    for (filter, inbox) in &self.routes {
                        if matches(filter.as_str(), m.topic.as_str()) {
                            let _ = inbox.push(m.clone());
                        }
                    }
                }
                ClientEvent::Request(r) => self.serve(r),
                ClientEvent::Delivery(d) => {
                    // A delivery for a fetch nobody waits for comes back after its visibility
                    // timeout.
                    if let Some(got) = self.fetching.get_mut(&d.fetch_id) {
                        got.push(d);
                    }
                }
                ClientEvent::Response {
                    id,
                    status,
                    payload,
                } => self.answer(id, status, payload),
                ClientEvent::Connected { .. } => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.try_send(Ok(()));
                        self.conn.set_reconnect(self.reconnect.take());
                    }
                    self.log(e);
                }
                ClientEvent::Disconnected {
                    ref error,
                    retry_in,
                } => {
                    if retry_in.is_none()
                        && let Some(ready) = self.ready.take()
                    {
                        let _ = ready.try_send(Err(error.clone()));
                    }
                    // Their answers will not come, unless they have not left yet.
                    let gone: Vec<u32> = self
                        .pending
                        .keys()
                        .copied()
                        .filter(|&id| !self.conn.is_waiting_offline(id))
                        .collect();
                    for id in gone {
                        self.fail(id, &Error::Client(error.clone()));
                    }
                    self.log(e);
                }
                other => debug!("not routed: {other:?}"),
            }
        }
    }

    /// A request routed to a service: to the inbox of the first handle serving it. One that no
    /// handle serves (it was just dropped) gets `NO_RESPONDER`; one that pushes a full inbox's
    /// oldest out answers that oldest `LIMIT_REACHED`, so no requester waits for nothing.
    fn serve(&mut self, r: IncomingRequest) {
        let now = Instant::now();
        let inbox = self
            .services
            .iter()
            .find(|(s, _)| *s == r.target)
            .map(|(_, i)| Arc::clone(i));
        let (refused, status, why) = match inbox {
            None => (Some(r), Status::NO_RESPONDER, "no handle serves it now"),
            Some(inbox) => (
                inbox.push(r),
                Status::LIMIT_REACHED,
                "the service's inbox was full",
            ),
        };
        if let Some(r) = refused {
            let _ = self
                .conn
                .respond(now, r.id, status, Bytes::from_static(why.as_bytes()));
        }
    }

    fn answer(&mut self, id: u32, status: Status, payload: Bytes) {
        let refused = self
            .subscribing
            .remove(&id)
            .filter(|_| status != Status::OK);
        if let Some(inbox) = refused {
            self.unroute(&inbox, Instant::now());
        }
        let refused = self
            .registering
            .remove(&id)
            .filter(|_| status != Status::OK);
        if let Some(inbox) = refused {
            self.unserve(&inbox, Instant::now());
        }
        let deliveries = self.fetching.remove(&id);
        let Some((ticket, reply)) = self.pending.remove(&id) else {
            return;
        };
        self.tickets.remove(&ticket);
        let result = if status == Status::OK {
            Ok(match deliveries {
                Some(d) => Answer::Deliveries(d),
                None => Answer::Payload(payload),
            })
        } else {
            Err(Error::Status {
                status,
                message: String::from_utf8_lossy(&payload).into_owned(),
            })
        };
        reply.send(result);
    }

    fn fail(&mut self, id: u32, error: &Error) {
        self.forget(id, Instant::now());
        if let Some((ticket, reply)) = self.pending.remove(&id) {
            self.tickets.remove(&ticket);
            reply.send(Err(error.clone()));
        }
    }

    fn log(&self, e: ClientEvent) {
        let mut log = self
            .channel
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if log.len() == CONNECTION_EVENTS_KEPT {
            log.pop_front();
        }
        log.push_back(e);
    }

    /// The connection is over: every waiting call fails, every inbox ends.
    fn finish(mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.try_send(Err(ClientError::NotConnected));
        }
        let ids: Vec<u32> = self.pending.keys().copied().collect();
        for id in ids {
            self.fail(id, &Error::Client(ClientError::NotConnected));
        }
        for (_, inbox) in &self.routes {
            inbox.close();
        }
        for (_, inbox) in &self.services {
            inbox.close();
        }
    }
}

/// Takes `inbox` out of `routes` and ends it; its name if no other inbox has it any more (the
/// server's subscription or registration then goes).
fn remove_route<T>(routes: &mut Vec<(Text, Arc<Inbox<T>>)>, inbox: &Arc<Inbox<T>>) -> Option<Text> {
    let at = routes.iter().position(|(_, i)| Arc::ptr_eq(i, inbox))?;
    let (name, inbox) = routes.swap_remove(at);
    inbox.close();
    (!routes.iter().any(|(n, _)| *n == name)).then_some(name)
}
