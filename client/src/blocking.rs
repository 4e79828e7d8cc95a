//! The blocking client: each call sends an operation and waits for its answer, driving the
//! [`Connection`] underneath (reconnects included) and sleeping on the socket between turns.
//! Messages, deliveries and requests that arrive while a call waits are kept for
//! [`Client::next_message`], [`Client::queue_fetch`] and [`Client::next_request`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::session::Stats;
use framewire_protocol::wire::Status;

use crate::connection::{Connection, PublishOptions};
use crate::error::{ClientError, Error};
use crate::event::{ClientEvent, Delivery, IncomingRequest, Message};
use crate::options::ClientOptions;

const SOCKET: mio::Token = mio::Token(0);

/// How many connection events [`Client::connection_events`] keeps for its caller.
pub const CONNECTION_EVENTS_KEPT: usize = 64;

/// A connection used one call at a time.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    poll: mio::Poll,
    events: mio::Events,
    registered: u64,
    /// Events no call was waiting for, oldest first.
    inbox: VecDeque<ClientEvent>,
    /// The connection's ups and downs (`Connected`, `Disconnected`) seen by the calls, oldest
    /// first, the last [`CONNECTION_EVENTS_KEPT`].
    connection_log: VecDeque<ClientEvent>,
    /// How long a call waits for its Response.
    pub timeout: Duration,
}

impl Client {
    /// Connects and waits for the handshake (at most the options' connect timeout).
    ///
    /// # Errors
    /// The server is unreachable, refused the handshake, or did not answer in time.
    pub fn connect(options: ClientOptions) -> Result<Self, ClientError> {
        let servers = options.servers().count();
        let deadline =
            Instant::now() + options.connect_timeout * u32::try_from(servers).unwrap_or(1);
        let timeout = options.request_timeout;
        // The first round's failure is the caller's answer: one attempt per server, then no
        // reconnect loop behind connect.
        let reconnect = options.reconnect.clone();
        let mut first = options;
        first.reconnect = (servers > 1).then(|| crate::options::Reconnect {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            max_attempts: u32::try_from(servers).ok(),
            ..crate::options::Reconnect::default()
        });
        let conn = Connection::new(first, Instant::now())?;
        let mut c = Self {
            conn,
            poll: mio::Poll::new().map_err(|e| ClientError::Unreachable(e.into()))?,
            events: mio::Events::with_capacity(16),
            registered: 0,
            inbox: VecDeque::new(),
            connection_log: VecDeque::new(),
            timeout,
        };
        loop {
            match c.wait_event(deadline)? {
                Some(ClientEvent::Connected { .. }) => break,
                Some(ClientEvent::Disconnected {
                    error,
                    retry_in: None,
                }) => return Err(error),
                // The next server of the first round.
                Some(ClientEvent::Disconnected { .. }) => {}
                Some(other) => c.inbox.push_back(other),
                None => return Err(ClientError::TimedOut),
            }
        }
        c.conn.set_reconnect(reconnect);
        Ok(c)
    }

    /// The connection underneath (for the poll-driven calls, or its stats).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection's ups and downs since the last call (`Connected { resumed, .. }` after each
    /// handshake, `Disconnected { error, retry_in }` after each failure), oldest first; the last
    /// [`CONNECTION_EVENTS_KEPT`] are kept. Every call of this client drives the connection,
    /// reconnects included: a publish during an outage waits in the offline buffer
    /// ([`ClientOptions::offline_buffer`]) and goes out once the client is back.
    pub fn connection_events(&mut self) -> Vec<ClientEvent> {
        self.connection_log.drain(..).collect()
    }

    /// The session's round-trip estimate and counters.
    pub fn stats(&self) -> Option<Stats> {
        self.conn.stats()
    }

    /// Every call drives the connection before it sends: a failure not yet noticed is found, and
    /// a reconnect that is due starts, so a client that only publishes reconnects too.
    fn drive(&mut self) {
        self.conn.update(Instant::now());
    }

    /// Drives the connection until it has an event or `deadline` passes.
    fn wait_event(&mut self, deadline: Instant) -> Result<Option<ClientEvent>, ClientError> {
        loop {
            self.conn.update(Instant::now());
            if let Some(e) = self.conn.poll_event() {
                if matches!(
                    e,
                    ClientEvent::Connected { .. } | ClientEvent::Disconnected { .. }
                ) {
                    if self.connection_log.len() == CONNECTION_EVENTS_KEPT {
                        self.connection_log.pop_front();
                    }
                    self.connection_log.push_back(e.clone());
                }
                return Ok(Some(e));
            }
            if self.conn.is_closed() {
                return Err(ClientError::NotConnected);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wake = self
                .conn
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let again = self.registered == self.conn.generation();
            let registered = self
                .conn
                .register_socket(self.poll.registry(), SOCKET, again)
                .map_err(|e| ClientError::Unreachable(e.into()))?;
            if registered {
                self.registered = self.conn.generation();
            }
            let wait = wake.saturating_duration_since(now);
            // Sleep on the socket (or until the next timer); an interrupted poll just loops.
            let _ = self.poll.poll(&mut self.events, Some(wait));
        }
    }

    /// Waits for the Response to operation `id`, keeping other events for later. A disconnect
    /// while waiting fails the call (its Response will not come), unless the operation still
    /// waits in the offline buffer: it goes out after the reconnect. If time runs out while it
    /// still waits there, it is taken out (never sent) and the call fails with `NotConnected`.
    fn wait_response(&mut self, id: u32, timeout: Duration) -> Result<Bytes, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.wait_event(deadline)? {
                Some(ClientEvent::Response {
                    id: got,
                    status,
                    payload,
                }) if got == id => {
                    return if status == Status::OK {
                        Ok(payload)
                    } else {
                        Err(Error::Status {
                            status,
                            message: String::from_utf8_lossy(&payload).into_owned(),
                        })
                    };
                }
                Some(ClientEvent::Disconnected {
                    retry_in: Some(_), ..
                }) if self.conn.is_waiting_offline(id) => {}
                Some(ClientEvent::Disconnected { error, .. }) => return Err(error.into()),
                Some(ClientEvent::Connected { .. }) => {}
                Some(other) => self.inbox.push_back(other),
                None if self.conn.cancel(id) => return Err(ClientError::NotConnected.into()),
                None => return Err(ClientError::TimedOut.into()),
            }
        }
    }

    /// Publishes on the reliable channel and waits until the server has accepted the message.
    ///
    /// # Errors
    /// The connection failed, or the server refused (`INVALID_TOPIC`, `FORBIDDEN`, ...).
    pub fn publish(&mut self, topic: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.publish_with(topic, payload, PublishOptions::default())
    }

    /// Publishes with explicit options; waits for the server's answer only if `options.ack`.
    ///
    /// # Errors
    /// As [`Client::publish`].
    pub fn publish_with(
        &mut self,
        topic: &str,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<(), Error> {
        self.drive();
        let id = self
            .conn
            .publish(Instant::now(), topic, payload.into(), options)?;
        if options.ack {
            self.wait_response(id, self.timeout)?;
        } else {
            self.conn.update(Instant::now());
        }
        Ok(())
    }

    /// Subscribes and waits for the server to confirm. Messages then arrive through
    /// [`Client::next_message`] or [`Client::messages`] (retained ones first).
    ///
    /// # Errors
    /// The connection failed, or the filter was refused (`INVALID_TOPIC`, `LIMIT_REACHED`, ...).
    pub fn subscribe(&mut self, filter: &str) -> Result<(), Error> {
        self.drive();
        let id = self.conn.subscribe(Instant::now(), filter)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// Removes a subscription.
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn unsubscribe(&mut self, filter: &str) -> Result<(), Error> {
        self.drive();
        let id = self.conn.unsubscribe(Instant::now(), filter)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// The next message of a subscription, waiting at most `timeout`; `None` if none came.
    ///
    /// # Errors
    /// The connection is over.
    pub fn next_message(&mut self, timeout: Duration) -> Result<Option<Message>, Error> {
        self.next_of(timeout, |e| match e {
            ClientEvent::Message(m) => Ok(m),
            other => Err(other),
        })
    }

    /// The next event that `pick` takes (kept ones first), waiting at most `timeout`; other
    /// events are kept for later calls, and a reconnect in progress is waited through.
    fn next_of<T>(
        &mut self,
        timeout: Duration,
        pick: impl Fn(ClientEvent) -> Result<T, ClientEvent>,
    ) -> Result<Option<T>, Error> {
        let mut kept = std::mem::take(&mut self.inbox);
        let mut found = None;
        while let Some(e) = kept.pop_front() {
            match pick(e) {
                Ok(t) => {
                    found = Some(t);
                    break;
                }
                Err(other) => self.inbox.push_back(other),
            }
        }
        self.inbox.extend(kept);
        if found.is_some() {
            return Ok(found);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.wait_event(deadline)? {
                Some(ClientEvent::Disconnected {
                    error,
                    retry_in: None,
                }) => return Err(error.into()),
                Some(ClientEvent::Disconnected { .. } | ClientEvent::Connected { .. }) => {}
                Some(event) => match pick(event) {
                    Ok(t) => return Ok(Some(t)),
                    Err(other) => self.inbox.push_back(other),
                },
                None => return Ok(None),
            }
        }
    }

    /// Messages as they come, until the connection is over; calls `f` for each.
    ///
    /// # Errors
    /// The connection is over for good.
    pub fn for_each_message(&mut self, mut f: impl FnMut(Message)) -> Result<(), Error> {
        loop {
            if let Some(m) = self.next_message(Duration::from_secs(3600))? {
                f(m);
            }
        }
    }

    /// An iterator over the messages of this client's subscriptions; it ends when the connection
    /// is over for good.
    pub fn messages(&mut self) -> Messages<'_> {
        Messages { client: self }
    }

    /// Sends a request and waits for its response. `timeout` is also the server's deadline;
    /// `Duration::ZERO` leaves the deadline to the server (its default, 5 s on the reference
    /// server), and this call then waits for the server's answer up to [`Client::timeout`].
    ///
    /// # Errors
    /// The connection failed or timed out, or the server answered with a failure status
    /// (`NO_RESPONDER`, `TIMEOUT`, `FORBIDDEN`, ...).
    pub fn request(
        &mut self,
        target: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        self.drive();
        let id = self
            .conn
            .request(Instant::now(), target, payload.into(), timeout)?;
        // The server answers TIMEOUT at the deadline; wait a little past it for that answer.
        let wait = if timeout.is_zero() {
            self.timeout
        } else {
            timeout + Duration::from_millis(500)
        };
        self.wait_response(id, wait)
    }

    /// Registers this client as a provider of `service`.
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn register(&mut self, service: &str) -> Result<(), Error> {
        self.drive();
        let id = self.conn.register(Instant::now(), service)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// The next request routed to this client, waiting at most `timeout`.
    ///
    /// # Errors
    /// The connection is over.
    pub fn next_request(&mut self, timeout: Duration) -> Result<Option<IncomingRequest>, Error> {
        self.next_of(timeout, |e| match e {
            ClientEvent::Request(r) => Ok(r),
            other => Err(other),
        })
    }

    /// Answers a request routed to this client.
    ///
    /// # Errors
    /// The connection failed.
    pub fn respond(
        &mut self,
        request: &IncomingRequest,
        status: Status,
        payload: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.conn
            .respond(Instant::now(), request.id, status, payload.into())?;
        self.conn.update(Instant::now());
        Ok(())
    }

    /// Pushes a message onto a queue and waits until the server has queued it.
    ///
    /// # Errors
    /// The connection failed, or the queue is full (`QUEUE_FULL`).
    pub fn queue_push(&mut self, queue: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.drive();
        let id = self
            .conn
            .queue_push(Instant::now(), queue, payload.into())?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// Fetches up to `max` messages, waiting up to `wait` for the first (0: a short poll).
    /// Acknowledge each with [`Client::queue_ack`], or it comes back after the visibility timeout.
    ///
    /// # Errors
    /// The connection failed, or the server refused the fetch.
    pub fn queue_fetch(
        &mut self,
        queue: &str,
        max: u16,
        wait: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        self.drive();
        let id = self.conn.queue_fetch(Instant::now(), queue, max, wait)?;
        self.wait_response(id, wait + self.timeout)?;
        let mut got = Vec::new();
        self.inbox.retain(|e| match e {
            ClientEvent::Delivery(d) if d.fetch_id == id => {
                got.push(d.clone());
                false
            }
            _ => true,
        });
        Ok(got)
    }

    /// Acknowledges a delivery.
    ///
    /// # Errors
    /// The connection failed, or the delivery is not this client's (`NOT_FOUND`).
    pub fn queue_ack(&mut self, queue: &str, delivery_id: u64) -> Result<(), Error> {
        self.drive();
        let id = self.conn.queue_ack(Instant::now(), queue, delivery_id)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// Gives a delivery back: the queue delivers it again once `delay` has passed (zero: at once).
    ///
    /// # Errors
    /// The connection failed, or the delivery no longer waits for an ack (`NOT_FOUND`).
    pub fn queue_nack(
        &mut self,
        queue: &str,
        delivery_id: u64,
        delay: Duration,
    ) -> Result<(), Error> {
        self.drive();
        let id = self
            .conn
            .queue_nack(Instant::now(), queue, delivery_id, delay)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// Keeps a delivery longer: its visibility timeout starts again now, `timeout` long (zero: the
    /// server's own).
    ///
    /// # Errors
    /// The connection failed, or the delivery no longer waits for an ack (`NOT_FOUND`).
    pub fn queue_extend(
        &mut self,
        queue: &str,
        delivery_id: u64,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.drive();
        let id = self
            .conn
            .queue_extend(Instant::now(), queue, delivery_id, timeout)?;
        self.wait_response(id, self.timeout).map(|_| ())
    }

    /// Closes the session (the server forgets it; no last will) and waits briefly for the Close to
    /// go out.
    pub fn close(mut self) {
        self.conn.close(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.conn.is_closed() && Instant::now() < deadline {
            if self.wait_event(deadline).is_err() {
                break;
            }
        }
    }
}

/// Messages of a [`Client`]'s subscriptions, as they come.
#[derive(Debug)]
pub struct Messages<'a> {
    client: &'a mut Client,
}

impl Iterator for Messages<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        loop {
            match self.client.next_message(Duration::from_secs(3600)) {
                Ok(Some(m)) => return Some(m),
                Ok(None) => {}
                Err(_) => return None,
            }
        }
    }
}
