//! Work queues with competing consumers (docs/PROTOCOL.md section 5.7): push; fetch with a short
//! poll (wait 0) or a long poll held until a message arrives or the wait ends; ack by delivery id;
//! redelivery after the visibility timeout or when the fetching session ends; bounded depth.
//! Delivery is at least once: a message leaves the hub only when it is acknowledged.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{
    Frame, QueueDelivery, QueueExtend, QueueFetch, QueueNack, QueuePush, Status, Text,
};
use log::debug;

use super::config::HubConfig;
use super::output::{ClientId, Outputs, Transport};
use crate::store::record::queued_len;
use crate::store::{Record, State, StoredMessage};

/// A timer the queues need: a delivery's visibility timeout, or a long poll's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum QueueTimer {
    Visibility(u64),
    Wait(u64),
}

#[derive(Debug)]
struct Ready {
    /// The message's delivery id: assigned at push, kept across redeliveries.
    id: u64,
    payload: Bytes,
    /// Times delivered so far (more than 0: the next delivery is marked redelivered).
    deliveries: u32,
}

#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<Ready>,
    unacked: usize,
    /// Long polls waiting, oldest first.
    waiting: VecDeque<u64>,
}

impl Queue {
    fn depth(&self) -> usize {
        self.ready.len() + self.unacked
    }

    fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.unacked == 0 && self.waiting.is_empty()
    }
}

#[derive(Debug)]
struct Unacked {
    queue: Text,
    consumer: ClientId,
    payload: Bytes,
    deliveries: u32,
}

#[derive(Debug)]
struct Waiter {
    queue: Text,
    client: ClientId,
    fetch_id: u32,
    max: u16,
}

#[derive(Debug, Default)]
pub(crate) struct Queues {
    by_name: HashMap<Text, Queue>,
    unacked: HashMap<u64, Unacked>,
    waiters: HashMap<u64, Waiter>,
    /// Each session's unacknowledged deliveries and long polls, to release them when it ends.
    by_client: HashMap<ClientId, ClientQueues>,
    next_delivery: u64,
    next_waiter: u64,
    dead_lettered: u64,
}

/// What a queue's dead-letter queue is called: its name and this.

#[derive(Debug, Default)]
struct ClientQueues {
    deliveries: Vec<u64>,
    waiters: Vec<u64>,
}

impl ClientQueues {
    fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.waiters.is_empty()
    }
}

/// Timers to set (`Some`) or cancel (`None`), for the hub's timer set.
pub(crate) type TimerChanges = Vec<(QueueTimer, Option<Instant>)>;

impl Queues {
    pub(crate) fn queues(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn messages(&self) -> usize {
        self.by_name.values().map(Queue::depth).sum()
    }

    fn queue_mut(&mut self, config: &HubConfig, name: &Text) -> Option<&mut Queue> {
        if !self.by_name.contains_key(name) && self.by_name.len() >= config.max_queues {
            return None;
        }
        Some(self.by_name.entry(name.clone()).or_default())
    }

    pub(crate) fn push(
        &mut self,
        config: &HubConfig,
        now: Instant,
        client: ClientId,
        push: QueuePush,
        out: &mut Outputs,
    ) -> TimerChanges {
        let QueuePush {
            id,
            queue: name,
            payload,
        } = push;
        let message_id = self.next_delivery + 1;
        let Some(queue) = self.queue_mut(config, &name) else {
            out.fail(
                client,
                id,
                Status::LIMIT_REACHED,
                "the server holds no more queues",
            );
            return Vec::new();
        };
        if queue.depth() >= config.queue_limits(name.as_str()).max_depth {
            out.fail(
                client,
                id,
                Status::QUEUE_FULL,
                "the queue is full; nothing was queued",
            );
            return Vec::new();
        }
        let live = queued_len(&name, &payload);
        if out.storage_full(client, id, live) {
            return Vec::new();
        }
        let seq = out.record(
            || Record::Queued {
                id: message_id,
                queue: name.clone(),
                deliveries: 0,
                payload: payload.clone(),
            },
            live,
            0,
        );
        queue.ready.push_back(Ready {
            id: message_id,
            payload,
            deliveries: 0,
        });
        self.next_delivery = message_id;
        out.ok_once(client, id, seq);
        self.serve_waiters(config, now, &name, out)
    }

    pub(crate) fn fetch(
        &mut self,
        config: &HubConfig,
        now: Instant,
        client: ClientId,
        fetch: &QueueFetch,
        out: &mut Outputs,
    ) -> TimerChanges {
        if fetch.max == 0 {
            out.fail(
                client,
                fetch.id,
                Status::BAD_REQUEST,
                "a fetch of 0 messages",
            );
            return Vec::new();
        }
        let Some(queue) = self.queue_mut(config, &fetch.queue) else {
            out.fail(
                client,
                fetch.id,
                Status::LIMIT_REACHED,
                "the server holds no more queues",
            );
            return Vec::new();
        };
        let mut timers = Vec::new();
        if !queue.ready.is_empty() || fetch.wait_ms == 0 {
            self.deliver(
                config,
                now,
                &fetch.queue,
                client,
                fetch.id,
                fetch.max,
                out,
                &mut timers,
            );
            out.ok(client, fetch.id);
            self.drop_if_idle(&fetch.queue);
            return timers;
        }
        let mine = self.by_client.entry(client).or_default();
        if mine.waiters.len() >= config.max_waiting_fetches_per_session {
            out.fail(
                client,
                fetch.id,
                Status::LIMIT_REACHED,
                "too many long polls waiting",
            );
            self.drop_if_idle(&fetch.queue);
            return timers;
        }
        self.next_waiter += 1;
        let waiter = self.next_waiter;
        mine.waiters.push(waiter);
        self.by_name
            .entry(fetch.queue.clone())
            .or_default()
            .waiting
            .push_back(waiter);
        self.waiters.insert(
            waiter,
            Waiter {
                queue: fetch.queue.clone(),
                client,
                fetch_id: fetch.id,
                max: fetch.max,
            },
        );
        let wait = Duration::from_millis(u64::from(fetch.wait_ms)).min(config.max_fetch_wait);
        timers.push((QueueTimer::Wait(waiter), Some(now + wait)));
        timers
    }

    pub(crate) fn ack(
        &mut self,
        client: ClientId,
        id: u32,
        delivery_id: u64,
        name: &Text,
        out: &mut Outputs,
    ) -> TimerChanges {
        if let Some(u) = self.unacked.get(&delivery_id)
            && u.queue == *name
        {
            // Delivered and waiting for its ack, by whichever session holds it.
            let consumer = u.consumer;
            let live = queued_len(name, &u.payload);
            self.unacked.remove(&delivery_id);
            if let Some(queue) = self.by_name.get_mut(name) {
                queue.unacked -= 1;
            }
            self.release_from_client(consumer, |c| &mut c.deliveries, delivery_id);
            self.drop_if_idle(name);
            let seq = out.record(|| removed(delivery_id, name), 0, live);
            out.ok_once(client, id, seq);
            return vec![(QueueTimer::Visibility(delivery_id), None)];
        }
        // Delivered, then back in the queue (its session ended, or it timed out) and not yet
        // delivered again: the ack still stands for the message.
        let requeued = self.by_name.get_mut(name).and_then(|q| {
            let at = q
                .ready
                .iter()
                .position(|r| r.id == delivery_id && r.deliveries > 0)?;
            q.ready.remove(at)
        });
        if let Some(r) = requeued {
            self.drop_if_idle(name);
            let live = queued_len(name, &r.payload);
            let seq = out.record(|| removed(delivery_id, name), 0, live);
            out.ok_once(client, id, seq);
        } else {
            out.fail(
                client,
                id,
                Status::NOT_FOUND,
                "no delivery with that id waits for an ack in this queue",
            );
        }
        Vec::new()
    }

    /// Whether `delivery_id` is a delivery of queue `name` waiting for its ack; if not, the
    /// operation is answered `NOT_FOUND`.
    fn holds(
        &self,
        client: ClientId,
        id: u32,
        delivery_id: u64,
        name: &Text,
        out: &mut Outputs,
    ) -> bool {
        if self
            .unacked
            .get(&delivery_id)
            .is_some_and(|u| u.queue == *name)
        {
            return true;
        }
        out.fail(
            client,
            id,
            Status::NOT_FOUND,
            "no delivery with that id waits for an ack in this queue",
        );
        false
    }

    /// A consumer gives a delivery back: ready again after `delay` (at once for 0), counted as a
    /// delivery. A delayed one waits out its delay as a delivery whose visibility timeout is the
    /// delay.
    pub(crate) fn nack(
        &mut self,
        config: &HubConfig,
        now: Instant,
        client: ClientId,
        nack: &QueueNack,
        out: &mut Outputs,
    ) -> TimerChanges {
        let already_back = !self.unacked.contains_key(&nack.delivery_id)
            && self.by_name.get(&nack.queue).is_some_and(|q| {
                q.ready
                    .iter()
                    .any(|r| r.id == nack.delivery_id && r.deliveries > 0)
            });
        if already_back {
            // Its session ended (or it timed out) first: it is ready again already, as asked.
            out.ok(client, nack.id);
            return Vec::new();
        }
        if !self.holds(client, nack.id, nack.delivery_id, &nack.queue, out) {
            return Vec::new();
        }
        out.ok(client, nack.id);
        let timer = QueueTimer::Visibility(nack.delivery_id);
        if nack.delay_ms > 0 {
            let delay = Duration::from_millis(u64::from(nack.delay_ms)).min(config.max_fetch_wait);
            return vec![(timer, Some(now + delay))];
        }
        let mut timers = vec![(timer, None)];
        if let Some(name) = self.requeue(config, nack.delivery_id, out) {
            timers.extend(self.serve_waiters(config, now, &name, out));
        }
        timers
    }

    /// A consumer needs longer: the delivery's visibility timeout starts again from `now`.
    pub(crate) fn extend(
        &mut self,
        config: &HubConfig,
        now: Instant,
        client: ClientId,
        extend: &QueueExtend,
        out: &mut Outputs,
    ) -> TimerChanges {
        if !self.holds(client, extend.id, extend.delivery_id, &extend.queue, out) {
            return Vec::new();
        }
        out.ok(client, extend.id);
        let timeout = match extend.timeout_ms {
            0 => {
                config
                    .queue_limits(extend.queue.as_str())
                    .visibility_timeout
            }
            ms => Duration::from_millis(u64::from(ms)).min(config.max_fetch_wait),
        };
        vec![(
            QueueTimer::Visibility(extend.delivery_id),
            Some(now + timeout),
        )]
    }

    pub(crate) fn on_timer(
        &mut self,
        config: &HubConfig,
        now: Instant,
        timer: QueueTimer,
        out: &mut Outputs,
    ) -> TimerChanges {
        match timer {
            QueueTimer::Visibility(delivery) => match self.requeue(config, delivery, out) {
                Some(name) => self.serve_waiters(config, now, &name, out),
                None => Vec::new(),
            },
            QueueTimer::Wait(waiter) => {
                if let Some(w) = self.take_waiter(waiter) {
                    // The wait ended with nothing to deliver: an empty, successful fetch.
                    out.ok(w.client, w.fetch_id);
                    self.drop_if_idle(&w.queue);
                }
                Vec::new()
            }
        }
    }

    /// A session ended: what it fetched and did not acknowledge is delivered again (but for an
    /// HTTP request's session, whose deliveries wait for their visibility timeout), and its long
    /// polls are dropped.
    pub(crate) fn forget(
        &mut self,
        config: &HubConfig,
        now: Instant,
        client: ClientId,
        out: &mut Outputs,
    ) -> TimerChanges {
        let Some(mine) = self.by_client.remove(&client) else {
            return Vec::new();
        };
        let mut timers = Vec::new();
        for waiter in mine.waiters {
            if let Some(w) = self.waiters.remove(&waiter)
                && let Some(queue) = self.by_name.get_mut(&w.queue)
            {
                queue.waiting.retain(|&x| x != waiter);
                self.drop_if_idle(&w.queue);
            }
            timers.push((QueueTimer::Wait(waiter), None));
        }
        let mut touched = Vec::new();
        if client.transport() == Transport::Http {
            // An HTTP fetch ends with its response: what it delivered stays out until its ack
            // or its visibility timeout, as a queue served over HTTP must (section 11.4).
            return timers;
        }
        for delivery in mine.deliveries {
            timers.push((QueueTimer::Visibility(delivery), None));
            if let Some(name) = self.requeue(config, delivery, out)
                && !touched.contains(&name)
            {
                touched.push(name);
            }
        }
        for name in touched {
            timers.extend(self.serve_waiters(config, now, &name, out));
        }
        timers
    }

    /// Puts an unacknowledged delivery back at the head of its queue, marked redelivered; or, if
    /// it has been delivered `max_deliveries` times, at the tail of its dead-letter queue. The
    /// queue it is ready in.
    fn requeue(&mut self, config: &HubConfig, delivery: u64, out: &mut Outputs) -> Option<Text> {
        let u = self.unacked.remove(&delivery)?;
        if let Some(c) = self.by_client.get_mut(&u.consumer) {
            super::remove_one(&mut c.deliveries, &delivery);
            if c.is_empty() {
                self.by_client.remove(&u.consumer);
            }
        }
        let queue = self.by_name.entry(u.queue.clone()).or_default();
        queue.unacked -= 1;
        let ready = Ready {
            id: delivery,
            payload: u.payload,
            deliveries: u.deliveries,
        };
        let limits = config.queue_limits(u.queue.as_str());
        let spent = limits.max_deliveries > 0 && u.deliveries >= limits.max_deliveries;
        let ready = match limits.dead_letter.filter(|_| spent) {
            Some(dead) => match self.dead_letter(config, &u.queue, dead, ready, out) {
                Ok(dead) => return Some(dead),
                Err(ready) => ready,
            },
            None => ready,
        };
        if let Some(queue) = self.by_name.get_mut(&u.queue) {
            queue.ready.push_front(ready);
        }
        Some(u.queue)
    }

    /// Moves a message delivered too often to its dead-letter queue `dead`, with its delivery
    /// count; the dead queue's name. A queue whose dead queue cannot take it (its name too long,
    /// the queue full, no more queues) keeps it: the message comes back.
    fn dead_letter(
        &mut self,
        config: &HubConfig,
        name: &Text,
        dead: Text,
        ready: Ready,
        out: &mut Outputs,
    ) -> Result<Text, Ready> {
        if dead.len() > config.max_name_len {
            return Err(ready);
        }
        let max_depth = config.queue_limits(dead.as_str()).max_depth;
        let Some(queue) = self.queue_mut(config, &dead) else {
            return Err(ready);
        };
        if queue.depth() >= max_depth {
            return Err(ready);
        }
        let (id, payload, deliveries) = (ready.id, ready.payload.clone(), ready.deliveries);
        queue.ready.push_back(ready);
        self.dead_lettered += 1;
        debug!("queue {name}: message {id} delivered {deliveries} times: moved to {dead}");
        out.record(|| removed(id, name), 0, queued_len(name, &payload));
        out.record(
            || Record::Queued {
                id,
                queue: dead.clone(),
                deliveries,
                payload: payload.clone(),
            },
            queued_len(&dead, &payload),
            0,
        );
        self.drop_if_idle(name);
        Ok(dead)
    }

    /// Messages moved to a dead-letter queue so far.
    pub(crate) fn dead_lettered(&self) -> u64 {
        self.dead_lettered
    }

    /// Hands ready messages to the long polls waiting on `name`, oldest first.
    fn serve_waiters(
        &mut self,
        config: &HubConfig,
        now: Instant,
        name: &Text,
        out: &mut Outputs,
    ) -> TimerChanges {
        let mut timers = Vec::new();
        while let Some(queue) = self.by_name.get_mut(name)
            && !queue.ready.is_empty()
            && let Some(waiter) = queue.waiting.pop_front()
        {
            let Some(w) = self.take_waiter(waiter) else {
                continue;
            };
            timers.push((QueueTimer::Wait(waiter), None));
            self.deliver(
                config,
                now,
                name,
                w.client,
                w.fetch_id,
                w.max,
                out,
                &mut timers,
            );
            out.ok(w.client, w.fetch_id);
        }
        self.drop_if_idle(name);
        timers
    }

    fn take_waiter(&mut self, waiter: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&waiter)?;
        if let Some(queue) = self.by_name.get_mut(&w.queue) {
            queue.waiting.retain(|&x| x != waiter);
        }
        self.release_from_client(w.client, |c| &mut c.waiters, waiter);
        Some(w)
    }

    fn release_from_client(
        &mut self,
        client: ClientId,
        list: impl Fn(&mut ClientQueues) -> &mut Vec<u64>,
        item: u64,
    ) {
        if let Some(c) = self.by_client.get_mut(&client) {
            super::remove_one(list(c), &item);
            if c.is_empty() {
                self.by_client.remove(&client);
            }
        }
    }

    /// Delivers up to `max` ready messages of `name` to `client` as answers to fetch `fetch_id`.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        config: &HubConfig,
        now: Instant,
        name: &Text,
        client: ClientId,
        fetch_id: u32,
        max: u16,
        out: &mut Outputs,
        timers: &mut TimerChanges,
    ) {
        let Some(queue) = self.by_name.get_mut(name) else {
            return;
        };
        let visibility = config.queue_limits(name.as_str()).visibility_timeout;
        for _ in 0..max {
            let Some(msg) = queue.ready.pop_front() else {
                break;
            };
            let delivery_id = msg.id;
            queue.unacked += 1;
            out.frame(
                client,
                Frame::new(QueueDelivery {
                    redelivered: msg.deliveries > 0,
                    id: fetch_id,
                    delivery_id,
                    queue: name.clone(),
                    payload: msg.payload.clone(),
                }),
            );
            let deliveries = msg.deliveries.saturating_add(1);
            // Nobody waits for this record: a count lost to a crash undercounts by one.
            out.record(
                || Record::Delivered {
                    id: delivery_id,
                    queue: name.clone(),
                    deliveries,
                },
                0,
                0,
            );
            self.unacked.insert(
                delivery_id,
                Unacked {
                    queue: name.clone(),
                    consumer: client,
                    payload: msg.payload,
                    deliveries,
                },
            );
            self.by_client
                .entry(client)
                .or_default()
                .deliveries
                .push(delivery_id);
            timers.push((QueueTimer::Visibility(delivery_id), Some(now + visibility)));
        }
    }

    fn drop_if_idle(&mut self, name: &Text) {
        if self.by_name.get(name).is_some_and(Queue::is_idle) {
            self.by_name.remove(name);
        }
    }
}

fn removed(id: u64, queue: &Text) -> Record {
    Record::Removed {
        id,
        queue: queue.clone(),
    }
}

impl Queues {
    /// Takes up the queues a data directory held: every message ready (none is delivered), in
    /// the order pushed, with its delivery count; new ids continue after the largest used.
    /// Returns the size of what is live in the log.
    pub(crate) fn restore(&mut self, state: &State) -> u64 {
        let mut live = 0;
        for (name, messages) in &state.queues {
            let queue = self.by_name.entry(name.clone()).or_default();
            for m in messages {
                live += queued_len(name, &m.payload) as u64;
                queue.ready.push_back(Ready {
                    id: m.id,
                    payload: m.payload.clone(),
                    deliveries: m.deliveries,
                });
            }
        }
        self.next_delivery = self.next_delivery.max(state.last_id);
        live
    }

    /// The queues' part of a snapshot: every message, ready or delivered, with its count.
    pub(crate) fn snapshot_into(&self, state: &mut State) {
        for (name, queue) in &self.by_name {
            let messages = state.queues.entry(name.clone()).or_default();
            messages.extend(queue.ready.iter().map(|r| StoredMessage {
                id: r.id,
                deliveries: r.deliveries,
                payload: r.payload.clone(),
            }));
        }
        for (&id, u) in &self.unacked {
            state
                .queues
                .entry(u.queue.clone())
                .or_default()
                .push(StoredMessage {
                    id,
                    deliveries: u.deliveries,
                    payload: u.payload.clone(),
                });
        }
        for messages in state.queues.values_mut() {
            messages.sort_unstable_by_key(|m| m.id);
        }
        state.last_id = state.last_id.max(self.next_delivery);
    }
}
