//! The operations a client sends: subscriptions, publishes, requests and their answers, services,
//! queues and data, each with a fresh id its Response carries.

use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{
    Data, Frame, Publish, QueueAck, QueueExtend, QueueFetch, QueueNack, QueuePush, Register,
    Request, Response, Status, Subscribe, Text, Unregister, Unsubscribe,
};

use super::Connection;
use crate::error::ClientError;

/// How a publish travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOptions {
    /// The channel (0 is reliable-ordered; see the session's channel kinds).
    pub channel: u8,
    /// Keep it as the topic's retained message.
    pub retain: bool,
    /// Ask the server for a Response once it accepted the message.
    pub ack: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            channel: 0,
            retain: false,
            ack: true,
        }
    }
}

/// How long past a request's own deadline the client waits for the server's answer (the server
/// answers `TIMEOUT` at the deadline; this allows for the way back).
const REQUEST_GRACE: Duration = Duration::from_millis(500);

/// How long a request sent with no deadline (`Duration::ZERO`: the server's default, 5 s on the
/// reference server) is waited for, before the grace.
pub const DEFAULT_REQUEST_WAIT: Duration = Duration::from_secs(10);

impl Connection {
    /// Sends an operation with a fresh id; returns the id its Response will carry.
    fn operation(
        &mut self,
        now: std::time::Instant,
        build: impl FnOnce(u32) -> Frame,
    ) -> Result<u32, ClientError> {
        let id = self.next_id();
        let t = self.t(now);
        self.send(t, build(id))?;
        Ok(id)
    }

    /// Subscribes to a topic filter (`+` one level, `#` the rest). The filter is remembered and
    /// subscribed again after a reconnect the server did not resume.
    ///
    /// # Errors
    /// Not connected, backpressure, or a filter that cannot be encoded.
    pub fn subscribe(&mut self, now: std::time::Instant, filter: &str) -> Result<u32, ClientError> {
        let filter = Text::from(filter);
        let id = self.operation(now, |id| {
            Frame::new(Subscribe {
                id,
                filter: filter.clone(),
            })
        })?;
        if !self.filters.contains(&filter) {
            self.filters.push(filter);
        }
        Ok(id)
    }

    /// Removes a subscription.
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn unsubscribe(
        &mut self,
        now: std::time::Instant,
        filter: &str,
    ) -> Result<u32, ClientError> {
        let filter = Text::from(filter);
        self.filters.retain(|f| *f != filter);
        self.operation(now, |id| Frame::new(Unsubscribe { id, filter }))
    }

    /// Publishes `payload` to `topic`. Returns the operation id (a Response comes for it when
    /// `options.ack`; otherwise the id is 0 and none comes).
    ///
    /// # Errors
    /// Not connected, backpressure, or a topic that cannot be encoded.
    pub fn publish(
        &mut self,
        now: std::time::Instant,
        topic: &str,
        payload: Bytes,
        options: PublishOptions,
    ) -> Result<u32, ClientError> {
        let topic = Text::from(topic);
        let frame = |id| {
            Frame::new(Publish {
                retain: options.retain,
                id,
                topic,
                payload,
            })
            .on_channel(options.channel)
        };
        if options.ack {
            self.operation(now, frame)
        } else {
            let t = self.t(now);
            self.send(t, frame(0))?;
            Ok(0)
        }
    }

    /// Sends a request to a built-in method or a service; `timeout` is the deadline the server
    /// applies (zero: the server's default). Its Response always comes: the server's, or, if
    /// none has come half a second past the deadline ([`DEFAULT_REQUEST_WAIT`] for zero), one of
    /// this client's with status `TIMEOUT` (the server's answer was lost with its connection, say).
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn request(
        &mut self,
        now: std::time::Instant,
        target: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<u32, ClientError> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let target = Text::from(target);
        let id = self.operation(now, |id| {
            Frame::new(Request {
                id,
                timeout_ms,
                target,
                payload,
            })
        })?;
        let wait = if timeout.is_zero() {
            DEFAULT_REQUEST_WAIT
        } else {
            timeout
        };
        let at = self.t(now) + wait + REQUEST_GRACE;
        self.deadlines.start(id, at);
        Ok(id)
    }

    /// Answers a request routed to this client.
    ///
    /// # Errors
    /// Not connected, or backpressure.
    pub fn respond(
        &mut self,
        now: std::time::Instant,
        request_id: u32,
        status: Status,
        payload: Bytes,
    ) -> Result<(), ClientError> {
        let t = self.t(now);
        self.send(
            t,
            Frame::new(Response {
                id: request_id,
                status,
                payload,
            }),
        )
    }

    /// Registers this client as a provider of `service` (remembered across reconnects).
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn register(&mut self, now: std::time::Instant, service: &str) -> Result<u32, ClientError> {
        let service = Text::from(service);
        let id = self.operation(now, |id| {
            Frame::new(Register {
                id,
                service: service.clone(),
            })
        })?;
        if !self.services.contains(&service) {
            self.services.push(service);
        }
        Ok(id)
    }

    /// Stops providing `service`.
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn unregister(
        &mut self,
        now: std::time::Instant,
        service: &str,
    ) -> Result<u32, ClientError> {
        let service = Text::from(service);
        self.services.retain(|s| *s != service);
        self.operation(now, |id| Frame::new(Unregister { id, service }))
    }

    /// Pushes a message onto a work queue.
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn queue_push(
        &mut self,
        now: std::time::Instant,
        queue: &str,
        payload: Bytes,
    ) -> Result<u32, ClientError> {
        let queue = Text::from(queue);
        self.operation(now, |id| Frame::new(QueuePush { id, queue, payload }))
    }

    /// Fetches up to `max` messages; with a non-zero `wait` the server holds the fetch until a
    /// message arrives or the wait ends. Deliveries come as events, then the Response.
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn queue_fetch(
        &mut self,
        now: std::time::Instant,
        queue: &str,
        max: u16,
        wait: Duration,
    ) -> Result<u32, ClientError> {
        let queue = Text::from(queue);
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        self.operation(now, |id| {
            Frame::new(QueueFetch {
                id,
                max,
                wait_ms,
                queue,
            })
        })
    }

    /// Acknowledges a delivery: the queue forgets the message.
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn queue_ack(
        &mut self,
        now: std::time::Instant,
        queue: &str,
        delivery_id: u64,
    ) -> Result<u32, ClientError> {
        let queue = Text::from(queue);
        self.operation(now, |id| {
            Frame::new(QueueAck {
                id,
                delivery_id,
                queue,
            })
        })
    }

    /// Gives a delivery back: the queue delivers it again once `delay` has passed (zero: at once;
    /// the server holds it at most 300 s), marked redelivered (docs/PROTOCOL.md section 5.7).
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn queue_nack(
        &mut self,
        now: std::time::Instant,
        queue: &str,
        delivery_id: u64,
        delay: std::time::Duration,
    ) -> Result<u32, ClientError> {
        let queue = Text::from(queue);
        let delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.operation(now, |id| {
            Frame::new(QueueNack {
                id,
                delay_ms,
                delivery_id,
                queue,
            })
        })
    }

    /// Keeps a delivery longer: its visibility timeout starts again now, `timeout` long (zero:
    /// the server's own; at most 300 s).
    ///
    /// # Errors
    /// As [`Connection::subscribe`].
    pub fn queue_extend(
        &mut self,
        now: std::time::Instant,
        queue: &str,
        delivery_id: u64,
        timeout: std::time::Duration,
    ) -> Result<u32, ClientError> {
        let queue = Text::from(queue);
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.operation(now, |id| {
            Frame::new(QueueExtend {
                id,
                timeout_ms,
                delivery_id,
                queue,
            })
        })
    }

    /// Sends a Data frame (the server echoes it).
    ///
    /// # Errors
    /// Not connected, or backpressure.
    pub fn send_data(
        &mut self,
        now: std::time::Instant,
        channel: u8,
        payload: Bytes,
    ) -> Result<(), ClientError> {
        let t = self.t(now);
        self.send(t, Frame::new(Data { payload }).on_channel(channel))
    }
}
