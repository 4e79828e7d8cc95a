//! [`SharedClient`]: one connection used from many threads at once. A thread of its own drives
//! the [`Connection`](crate::Connection) (reconnects, resume and confirmed delivery included);
//! every handle (`Clone`, `Send`, `Sync`) queues operations to it and waits for its own answer,
//! so a thread blocked reading a subscription never holds up another that publishes. Each
//! [`Subscription`] has its own bounded inbox: when a reader falls behind, the oldest message
//! goes and is counted ([`Subscription::dropped`]), and nothing else waits for it. A [`Service`]
//! is likewise an inbox of the requests routed to it, answered from any thread; queue pushes,
//! fetches (with their deliveries) and acks are calls like the others.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::wire::Status;

#[cfg(feature = "tokio")]
mod asynchronous;
mod driver;
mod inbox;

#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncClient, AsyncService, AsyncSubscription, QueueStream};

use driver::{Answer, Channel, Control, Driver, Op, Outcome, Reply, WAKE};
use inbox::Inbox;

use crate::connection::{Connection, PublishOptions};
use crate::error::{ClientError, Error};
use crate::event::{ClientEvent, Delivery, IncomingRequest, Message};
use crate::options::{ClientOptions, Reconnect};

/// Messages a subscription's inbox holds by default before the oldest goes.
pub const DEFAULT_INBOX: usize = 1024;

/// What the last handle's drop closes.
#[derive(Debug)]
struct Owner {
    channel: Arc<Channel>,
    thread: Mutex<Option<JoinHandle<()>>>,
    tickets: AtomicU64,
    request_timeout: Duration,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.channel.send(Control::Close);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A connection shared by threads; see the module's documentation.
#[derive(Debug, Clone)]
pub struct SharedClient(Arc<Owner>);

impl SharedClient {
    /// Connects (trying each of the options' servers once) and starts the connection's thread.
    ///
    /// # Errors
    /// The server is unreachable, refused the handshake, or did not answer within the connect
    /// timeout.
    pub fn connect(options: ClientOptions) -> Result<Self, ClientError> {
        let servers = options.servers().count();
        let wait = options.connect_timeout * u32::try_from(servers).unwrap_or(1);
        let request_timeout = options.request_timeout;
        let reconnect = options.reconnect.clone();
        let mut first = options;
        // The first round's failure is the caller's answer, as for `Client::connect`.
        first.reconnect = (servers > 1).then(|| Reconnect {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            max_attempts: u32::try_from(servers).ok(),
            ..Reconnect::default()
        });
        let conn = Connection::new(first, Instant::now())?;
        let poll = mio::Poll::new().map_err(|e| ClientError::Unreachable(e.into()))?;
        let waker = mio::Waker::new(poll.registry(), WAKE)
            .map_err(|e| ClientError::Unreachable(e.into()))?;
        let channel = Arc::new(Channel {
            queue: Mutex::new(VecDeque::new()),
            waker,
            log: Mutex::new(VecDeque::new()),
            #[cfg(feature = "tokio")]
            drained: tokio::sync::Notify::new(),
        });
        let (ready, connected) = sync_channel(1);
        let driver = Driver {
            conn,
            poll,
            channel: Arc::clone(&channel),
            ready: Some(ready),
            reconnect,
            pending: HashMap::new(),
            tickets: HashMap::new(),
            subscribing: HashMap::new(),
            routes: Vec::new(),
            registering: HashMap::new(),
            services: Vec::new(),
            fetching: HashMap::new(),
            registered: 0,
        };
        let thread = std::thread::Builder::new()
            .name("framewire-client".into())
            .spawn(move || driver.run())
            .map_err(|e| ClientError::Unreachable(e.into()))?;
        let owner = Owner {
            channel,
            thread: Mutex::new(Some(thread)),
            tickets: AtomicU64::new(1),
            request_timeout,
        };
        match connected.recv_timeout(wait) {
            Ok(Ok(())) => Ok(Self(Arc::new(owner))),
            Ok(Err(e)) => Err(e),
            // Dropping the owner closes the thread.
            Err(_) => Err(ClientError::TimedOut),
        }
    }

    /// Queues `op` and waits at most `wait` for its answer; a wait that runs out takes the
    /// operation back if it has not left (so a retry cannot send it twice).
    fn call(&self, op: Op) -> Outcome {
        let wait = op.wait(self.0.request_timeout);
        let (reply, answer) = sync_channel(1);
        let ticket = self.0.tickets.fetch_add(1, Ordering::Relaxed);
        self.0.channel.send(Control::Op {
            ticket,
            op,
            reply: Some(Reply::Blocking(reply)),
        });
        match answer.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                self.0.channel.send(Control::Cancel(ticket));
                Err(ClientError::TimedOut.into())
            }
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::NotConnected.into()),
        }
    }

    /// Publishes on the reliable channel and waits until the server has accepted the message.
    ///
    /// # Errors
    /// The connection failed, or the server refused (`INVALID_TOPIC`, `FORBIDDEN`, ...).
    pub fn publish(&self, topic: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.publish_with(topic, payload, PublishOptions::default())
    }

    /// Publishes with explicit options; waits for the server's answer only if `options.ack`.
    ///
    /// # Errors
    /// As [`SharedClient::publish`].
    pub fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let op = Op::publish(topic, payload.into(), options);
        self.call(op).map(|_| ())
    }

    /// Subscribes with an inbox of [`DEFAULT_INBOX`] messages and waits for the server to
    /// confirm.
    ///
    /// # Errors
    /// The connection failed, or the filter was refused (`INVALID_TOPIC`, `LIMIT_REACHED`, ...).
    pub fn subscribe(&self, filter: &str) -> Result<Subscription, Error> {
        self.subscribe_with_inbox(filter, DEFAULT_INBOX)
    }

    /// Subscribes with an inbox of `capacity` messages (when full, the oldest goes).
    ///
    /// # Errors
    /// As [`SharedClient::subscribe`].
    pub fn subscribe_with_inbox(
        &self,
        filter: &str,
        capacity: usize,
    ) -> Result<Subscription, Error> {
        let inbox = Arc::new(Inbox::new(capacity));
        let op = Op::subscribe(filter, &inbox);
        self.call(op)?;
        Ok(Subscription {
            inbox,
            channel: Arc::clone(&self.0.channel),
        })
    }

    /// Sends a request and waits for its response (`timeout` is also the server's deadline;
    /// zero leaves it to the server).
    ///
    /// # Errors
    /// The connection failed or timed out, or the server answered with a failure status.
    pub fn request(
        &self,
        target: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let op = Op::request(target, payload.into(), timeout);
        self.call(op).map(Answer::payload)
    }

    /// Registers `service` with an inbox of [`DEFAULT_INBOX`] requests and waits for the server
    /// to confirm; requests routed to it wait in the [`Service`] (a full inbox answers its oldest
    /// `LIMIT_REACHED`). Dropping the service unregisters it.
    ///
    /// # Errors
    /// The connection failed, or the server refused (`FORBIDDEN`, `LIMIT_REACHED`, ...).
    pub fn register(&self, service: &str) -> Result<Service, Error> {
        let inbox = Arc::new(Inbox::new(DEFAULT_INBOX));
        let op = Op::register(service, &inbox);
        self.call(op)?;
        Ok(Service {
            inbox,
            client: self.clone(),
        })
    }

    fn respond(
        &self,
        request: &IncomingRequest,
        status: Status,
        payload: Bytes,
    ) -> Result<(), Error> {
        let op = Op::respond(request, status, payload);
        self.call(op).map(|_| ())
    }

    /// Pushes a message onto a work queue and waits until the server has it.
    ///
    /// # Errors
    /// The connection failed, or the server refused (`QUEUE_FULL`, ...).
    pub fn queue_push(&self, queue: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        let op = Op::queue_push(queue, payload.into());
        self.call(op).map(|_| ())
    }

    /// Fetches up to `max` messages, waiting up to `wait` on the server for the first (a long
    /// poll; zero returns at once). Acknowledge each with [`SharedClient::queue_ack`].
    ///
    /// # Errors
    /// The connection failed, or the server refused.
    pub fn queue_fetch(
        &self,
        queue: &str,
        max: u16,
        wait: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        let op = Op::queue_fetch(queue, max, wait);
        self.call(op).map(Answer::deliveries)
    }

    /// Acknowledges a delivery: the server forgets the message.
    ///
    /// # Errors
    /// The connection failed, or the delivery is not waiting for an ack (`NOT_FOUND`).
    pub fn queue_ack(&self, delivery: &Delivery) -> Result<(), Error> {
        let op = Op::queue_ack(delivery);
        self.call(op).map(|_| ())
    }

    /// Gives a delivery back, to be delivered again once `delay` has passed (zero: at once).
    ///
    /// # Errors
    /// The connection failed, or the delivery no longer waits for an ack (`NOT_FOUND`).
    pub fn queue_nack(&self, delivery: &Delivery, delay: Duration) -> Result<(), Error> {
        self.call(Op::queue_nack(delivery, delay)).map(|_| ())
    }

    /// Keeps a delivery longer: its visibility timeout starts again, `timeout` long (zero: the
    /// server's own).
    ///
    /// # Errors
    /// The connection failed, or the delivery no longer waits for an ack (`NOT_FOUND`).
    pub fn queue_extend(&self, delivery: &Delivery, timeout: Duration) -> Result<(), Error> {
        self.call(Op::queue_extend(delivery, timeout)).map(|_| ())
    }

    /// The connection's ups and downs (`Connected`, `Disconnected`) since the last call, oldest
    /// first (the last [`CONNECTION_EVENTS_KEPT`](crate::CONNECTION_EVENTS_KEPT)).
    pub fn connection_events(&self) -> Vec<ClientEvent> {
        self.0
            .channel
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

/// The requests routed to a service this client registered; dropping it unregisters.
#[derive(Debug)]
pub struct Service {
    inbox: Arc<Inbox<IncomingRequest>>,
    client: SharedClient,
}

impl Service {
    /// The next request, waiting at most `timeout`; `None` if none came (or none will).
    pub fn next(&self, timeout: Duration) -> Option<IncomingRequest> {
        self.inbox.next(timeout)
    }

    /// Answers `request`.
    ///
    /// # Errors
    /// The connection failed.
    pub fn respond(
        &self,
        request: &IncomingRequest,
        status: Status,
        payload: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.client.respond(request, status, payload.into())
    }

    /// Requests dropped because the inbox was full (each answered `LIMIT_REACHED`).
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.client.0.channel.unanswered(Op::Unregister {
            inbox: Arc::clone(&self.inbox),
        });
    }
}

/// The messages of one subscription, for one reader; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    inbox: Arc<Inbox<Message>>,
    channel: Arc<Channel>,
}

impl Subscription {
    /// The next message, waiting at most `timeout`; `None` if none came (or the connection is
    /// over for good: [`Subscription::is_closed`]).
    pub fn next(&self, timeout: Duration) -> Option<Message> {
        self.inbox.next(timeout)
    }

    /// Messages dropped because the inbox was full (the oldest go first).
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }

    /// Whether no more messages will come.
    pub fn is_closed(&self) -> bool {
        self.inbox.is_closed()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.channel.unanswered(Op::Unsubscribe {
            inbox: Arc::clone(&self.inbox),
        });
    }
}
