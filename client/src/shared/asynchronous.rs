//! [`AsyncClient`], the async front end (feature `tokio`): the same connection thread as
//! [`SharedClient`], with calls that are futures. Every handle is a cheap clone usable from any
//! task; a call's future resolves with the server's answer, or fails at its deadline; dropping it
//! before then takes the operation back if it has not left (cancel-safe: nothing is sent twice
//! by a retry). Each [`AsyncSubscription`] is a bounded inbox of its own (the oldest message goes
//! when it is full, counted). The runtime drives no socket: the connection's own thread does, so
//! the client works the same under any runtime's executor, with tokio's timers for the deadlines.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::Status;

use super::driver::{Answer, Channel, Control, MAX_QUEUED, Op, Outcome, Reply};
use super::inbox::Inbox;
use super::{DEFAULT_INBOX, SharedClient};
use crate::connection::PublishOptions;
use crate::error::{ClientError, Error};
use crate::event::{ClientEvent, Delivery, IncomingRequest, Message};
use crate::options::ClientOptions;

/// An async handle on one connection; see the module's documentation.
#[derive(Debug, Clone)]
pub struct AsyncClient(SharedClient);

/// Takes an operation back when its caller's future is dropped before the answer came.
struct TakeBack<'a> {
    channel: &'a Channel,
    ticket: u64,
    armed: bool,
}

impl Drop for TakeBack<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.channel.send(Control::Cancel(self.ticket));
        }
    }
}

impl AsyncClient {
    /// Connects (trying each of the options' servers once) and starts the connection's thread.
    ///
    /// # Errors
    /// As [`SharedClient::connect`].
    pub async fn connect(options: ClientOptions) -> Result<Self, ClientError> {
        tokio::task::spawn_blocking(move || SharedClient::connect(options))
            .await
            .map_err(|_| ClientError::NotConnected)?
            .map(Self)
    }

    async fn call(&self, op: Op) -> Outcome {
        let owner = &self.0.0;
        let wait = op.wait(owner.request_timeout);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ticket = owner.tickets.fetch_add(1, Ordering::Relaxed);
        owner.channel.send(Control::Op {
            ticket,
            op,
            reply: Some(Reply::Async(reply)),
        });
        let mut take_back = TakeBack {
            channel: &owner.channel,
            ticket,
            armed: true,
        };
        let result = match tokio::time::timeout(wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::NotConnected.into()),
            Err(_) => return Err(ClientError::TimedOut.into()),
        };
        take_back.armed = false;
        result
    }

    /// Publishes on the reliable channel; resolves once the server has accepted the message.
    ///
    /// # Errors
    /// As [`SharedClient::publish`].
    pub async fn publish(&self, topic: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.publish_with(topic, payload, PublishOptions::default())
            .await
    }

    /// Publishes with explicit options; waits for the server's answer only if `options.ack`.
    ///
    /// # Errors
    /// As [`SharedClient::publish`].
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let op = Op::publish(topic, payload.into(), options);
        if !options.ack {
            return self.queue_unanswered(op).await;
        }
        self.call(op).await.map(|_| ())
    }

    /// Queues a publish that asks for no answer, waiting only while the connection's thread has
    /// [`MAX_QUEUED`] operations before it (backpressure instead of an unbounded buffer). It goes
    /// out in order with the others; while the connection is down it waits in the offline buffer
    /// as any operation does.
    async fn queue_unanswered(&self, op: Op) -> Result<(), Error> {
        let channel = &self.0.0.channel;
        loop {
            let drained = channel.drained.notified();
            if channel.queued() < MAX_QUEUED {
                break;
            }
            drained.await;
        }
        channel.unanswered(op);
        Ok(())
    }

    /// Subscribes with an inbox of [`DEFAULT_INBOX`] messages; resolves once the server
    /// confirmed.
    ///
    /// # Errors
    /// As [`SharedClient::subscribe`].
    pub async fn subscribe(&self, filter: &str) -> Result<AsyncSubscription, Error> {
        self.subscribe_with_inbox(filter, DEFAULT_INBOX).await
    }

    /// Subscribes with an inbox of `capacity` messages (when full, the oldest goes).
    ///
    /// # Errors
    /// As [`SharedClient::subscribe`].
    pub async fn subscribe_with_inbox(
        &self,
        filter: &str,
        capacity: usize,
    ) -> Result<AsyncSubscription, Error> {
        let inbox = Arc::new(Inbox::new(capacity));
        let op = Op::subscribe(filter, &inbox);
        self.call(op).await?;
        Ok(AsyncSubscription {
            inbox,
            channel: Arc::clone(&self.0.0.channel),
        })
    }

    /// Sends a request; resolves with its response, or fails at its deadline (`timeout` is also
    /// the server's; zero leaves it to the server).
    ///
    /// # Errors
    /// As [`SharedClient::request`].
    pub async fn request(
        &self,
        target: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let op = Op::request(target, payload.into(), timeout);
        self.call(op).await.map(Answer::payload)
    }

    /// Registers `service`; requests routed to it wait in the [`AsyncService`]. Dropping it
    /// unregisters.
    ///
    /// # Errors
    /// As [`SharedClient::register`].
    pub async fn register(&self, service: &str) -> Result<AsyncService, Error> {
        let inbox = Arc::new(Inbox::new(DEFAULT_INBOX));
        let op = Op::register(service, &inbox);
        self.call(op).await?;
        Ok(AsyncService {
            inbox,
            client: self.clone(),
        })
    }

    async fn respond(
        &self,
        request: &IncomingRequest,
        status: Status,
        payload: Bytes,
    ) -> Result<(), Error> {
        let op = Op::respond(request, status, payload);
        self.call(op).await.map(|_| ())
    }

    /// Pushes a message onto a work queue; resolves once the server has it.
    ///
    /// # Errors
    /// As [`SharedClient::queue_push`].
    pub async fn queue_push(&self, queue: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        let op = Op::queue_push(queue, payload.into());
        self.call(op).await.map(|_| ())
    }

    /// Fetches up to `max` messages, the server waiting up to `wait` for the first.
    ///
    /// # Errors
    /// As [`SharedClient::queue_fetch`].
    pub async fn queue_fetch(
        &self,
        queue: &str,
        max: u16,
        wait: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        let op = Op::queue_fetch(queue, max, wait);
        self.call(op).await.map(Answer::deliveries)
    }

    /// Acknowledges a delivery.
    ///
    /// # Errors
    /// As [`SharedClient::queue_ack`].
    pub async fn queue_ack(&self, delivery: &Delivery) -> Result<(), Error> {
        let op = Op::queue_ack(delivery);
        self.call(op).await.map(|_| ())
    }

    /// Gives a delivery back, to be delivered again once `delay` has passed (zero: at once).
    ///
    /// # Errors
    /// As [`SharedClient::queue_nack`](crate::SharedClient::queue_nack).
    pub async fn queue_nack(&self, delivery: &Delivery, delay: Duration) -> Result<(), Error> {
        self.call(Op::queue_nack(delivery, delay)).await.map(|_| ())
    }

    /// Keeps a delivery longer: its visibility timeout starts again, `timeout` long.
    ///
    /// # Errors
    /// As [`SharedClient::queue_extend`](crate::SharedClient::queue_extend).
    pub async fn queue_extend(&self, delivery: &Delivery, timeout: Duration) -> Result<(), Error> {
        self.call(Op::queue_extend(delivery, timeout))
            .await
            .map(|_| ())
    }

    /// The connection's ups and downs since the last call, oldest first.
    pub fn connection_events(&self) -> Vec<ClientEvent> {
        self.0.connection_events()
    }
}

/// The requests routed to a service this client registered; dropping it unregisters.
#[derive(Debug)]
pub struct AsyncService {
    inbox: Arc<Inbox<IncomingRequest>>,
    client: AsyncClient,
}

impl AsyncService {
    /// The next request; `None` once none will come.
    pub async fn next(&self) -> Option<IncomingRequest> {
        self.inbox.next_async().await
    }

    /// Answers `request`.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn respond(
        &self,
        request: &IncomingRequest,
        status: Status,
        payload: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.client.respond(request, status, payload.into()).await
    }
}

impl Drop for AsyncService {
    fn drop(&mut self) {
        self.client.0.0.channel.unanswered(Op::Unregister {
            inbox: Arc::clone(&self.inbox),
        });
    }
}

/// The messages of one subscription, for one reader; dropping it unsubscribes.
#[derive(Debug)]
pub struct AsyncSubscription {
    inbox: Arc<Inbox<Message>>,
    channel: Arc<Channel>,
}

impl AsyncSubscription {
    /// The next message; `None` once none will come (the connection is over for good). Cancel-safe:
    /// a message is taken only when the future resolves.
    pub async fn next(&self) -> Option<Message> {
        self.inbox.next_async().await
    }

    /// Messages dropped because the inbox was full (the oldest go first).
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }
}

impl Drop for AsyncSubscription {
    fn drop(&mut self) {
        self.channel.unanswered(Op::Unsubscribe {
            inbox: Arc::clone(&self.inbox),
        });
    }
}

impl futures_core::Stream for AsyncSubscription {
    type Item = Message;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        self.inbox.poll_next(cx)
    }
}

impl futures_core::Stream for AsyncService {
    type Item = IncomingRequest;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<IncomingRequest>> {
        self.inbox.poll_next(cx)
    }
}

type Fetch =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Delivery>, Error>> + Send>>;

/// A work queue's messages as a stream ([`AsyncClient::queue_stream`]): long polls one after the
/// other, each delivery handed out in order; acknowledge each with [`AsyncClient::queue_ack`]. A
/// failed fetch ends the stream with its error.
pub struct QueueStream {
    client: AsyncClient,
    queue: String,
    batch: u16,
    ready: std::collections::VecDeque<Delivery>,
    fetch: Option<Fetch>,
    done: bool,
}

impl std::fmt::Debug for QueueStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueStream")
            .field("queue", &self.queue)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

/// How long each of a queue stream's long polls waits on the server.
const QUEUE_POLL: Duration = Duration::from_secs(20);

impl AsyncClient {
    /// The messages of `queue` as a stream, fetched `batch` at a time with long polls.
    pub fn queue_stream(&self, queue: &str, batch: u16) -> QueueStream {
        QueueStream {
            client: self.clone(),
            queue: queue.to_owned(),
            batch: batch.max(1),
            ready: std::collections::VecDeque::new(),
            fetch: None,
            done: false,
        }
    }
}

impl futures_core::Stream for QueueStream {
    type Item = Result<Delivery, Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if let Some(d) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(d)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if self.fetch.is_none() {
                let (client, queue, batch) = (self.client.clone(), self.queue.clone(), self.batch);
                self.fetch = Some(Box::pin(async move {
                    client.queue_fetch(&queue, batch, QUEUE_POLL).await
                }));
            }
            let Some(fetch) = self.fetch.as_mut() else {
                continue;
            };
            match fetch.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    self.fetch = None;
                    match result {
                        Ok(got) => self.ready.extend(got),
                        Err(e) => {
                            self.done = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
            }
        }
    }
}
