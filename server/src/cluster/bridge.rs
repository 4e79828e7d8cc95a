//! The NATS bridge: one thread, one async-nats connection, one current-thread tokio runtime.
//!
//! Commands from the loops ([`ClusterOut`]) arrive through a bounded channel and are taken in
//! batches: every command waiting is handled before the bridge waits again, and async-nats writes
//! what a batch published in one go (its connection task flushes when its own queue is empty),
//! not once per message. Each NATS subscription is a task that moves messages into the loops'
//! inbox and wakes the first worker when the inbox was empty. async-nats reconnects by itself
//! and subscribes again to what it held; the node serves its own clients meanwhile.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_nats::jetstream;
use futures_util::StreamExt;
use log::{debug, info, warn};
use tokio::sync::{mpsc, oneshot};

use super::envelope::{Envelope, ReplyEnvelope, RequestEnvelope};
use super::nodes::{ANNOUNCE_EVERY, NODE_PREFIX, NodeInfo};
use super::queues::{ClusterQueues, QueueTerms, answer};
use super::retained::{follow_retained, retained_stream};
use super::seen::Seen;
use super::subject::{
    retained_subject_of_topic, subject_of_service, subject_of_topic, subjects_of_filter, topic_of,
};
use super::{ClusterCounters, ClusterInbox, ClusterOut, Remote};
use bytes::Bytes;
use framewire_protocol::wire::{Status, Text};
use std::time::Duration;

/// Messages a NATS subscription buffers before the bridge takes them.
const SUBSCRIPTION_CAPACITY: usize = 8_192;

/// Commands waiting for the bridge at most; more are dropped and counted.
pub(crate) const COMMAND_CAPACITY: usize = 65_536;

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub(crate) struct BridgeConfig {
    /// NATS server URLs (`nats://HOST:PORT`), tried in turn.
    pub(crate) urls: Vec<String>,
    /// This node: its name (as NATS's monitoring shows the connection) and the addresses it
    /// announces.
    pub(crate) me: NodeInfo,
    /// The cluster's queues' ack wait and delivery limit.
    pub(crate) queues: QueueTerms,
}

/// The running bridge: the loops' end of its channel. Dropping it ends the bridge.
#[derive(Debug)]
pub(crate) struct Bridge {
    commands: mpsc::Sender<ClusterOut>,
    counters: Arc<ClusterCounters>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the bridge's thread; `wake` is called (from that thread) when the inbox receives a
    /// message after being empty.
    ///
    /// # Errors
    /// The thread or its runtime cannot be made.
    pub(crate) fn start(
        config: BridgeConfig,
        inbox: Arc<ClusterInbox>,
        counters: Arc<ClusterCounters>,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("framewire-cluster".into())
            .spawn(move || {
                runtime.block_on(run(config, rx, inbox, c, Arc::new(wake)));
            })?;
        Ok(Self {
            commands: tx,
            counters,
            thread: Some(thread),
        })
    }

    /// Hands a command to the bridge without waiting; a full channel drops it (counted).
    pub(crate) fn send(&self, command: ClusterOut) {
        if self.commands.try_send(command).is_err() {
            self.counters.count_dropped();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Closing the channel ends the bridge's loop; its runtime then drops the connection.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Wake = Arc<dyn Fn() + Send + Sync>;

/// Connects to NATS (retrying in the background when it is not there yet), keeping the
/// counters' `connected` up to date.
async fn connect(
    config: &BridgeConfig,
    counters: &Arc<ClusterCounters>,
    link: Link,
) -> Option<async_nats::Client> {
    let events = Arc::clone(counters);
    let urls = config.urls.join(",");
    let options = async_nats::ConnectOptions::new()
        // Far below the window in which copies are told apart (`Seen`).
        .subscription_capacity(SUBSCRIPTION_CAPACITY);
    let options = match link {
        Link::PubSub => options.name(config.me.name()).no_echo(),
        Link::Requests => options.name(format!("{}-requests", config.me.name())),
    };
    let connected = options
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |event| {
            let counters = Arc::clone(&events);
            async move {
                match (event, link) {
                    (async_nats::Event::Connected, Link::PubSub) => {
                        info!("cluster: connected to NATS");
                        counters.set_connected(true);
                    }
                    (async_nats::Event::Disconnected, Link::PubSub) => {
                        warn!("cluster: lost NATS; serving local clients only until it returns");
                        counters.set_connected(false);
                    }
                    (other, _) => debug!("cluster ({link:?}): {other}"),
                }
            }
        })
        .connect(urls.as_str())
        .await;
    match connected {
        Ok(c) => {
            if link == Link::PubSub {
                info!("cluster: node {} bridging through {urls}", config.me.name());
            }
            Some(c)
        }
        Err(e) => {
            warn!("cluster: cannot use NATS at {urls}: {e}; serving local clients only");
            None
        }
    }
}

/// The bridge's two NATS connections: publish/subscribe with `no_echo` (a node never hears its
/// own publishes back), and requests with echo (a node's requests reach its own responders too,
/// in the same queue groups as the others').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    PubSub,
    Requests,
}

/// The bridge's state between batches.
struct Bridging {
    client: async_nats::Client,
    requests: async_nats::Client,
    /// One queue subscription per registration of a service on this node, by subject, with the
    /// service's name.
    serving: HashMap<String, (Text, Vec<oneshot::Sender<()>>)>,
    /// The registrations changed since the last announcement.
    serving_changed: bool,
    /// Services left out of the last announcement (warned of when it changes).
    omitted: usize,
    /// Subscriptions by subject, with how many of the node's filters need each (`a/#` and `a`
    /// both need `fw.t.a`).
    held: HashMap<String, (usize, oneshot::Sender<()>)>,
    /// Where the cluster's retained messages are kept (NATS's `JetStream`).
    retained: jetstream::Context,
    /// The cluster's queues.
    queues: ClusterQueues,
    /// This node's id in envelopes, and the number of its last message.
    origin: u64,
    seq: u64,
    inbox: Arc<ClusterInbox>,
    counters: Arc<ClusterCounters>,
    seen: Arc<Mutex<Seen>>,
    wake: Wake,
}

impl Bridging {
    async fn apply(&mut self, command: ClusterOut) {
        match command {
            ClusterOut::Interest(filter, on) => {
                for subject in subjects_of_filter(filter.as_str()) {
                    if on {
                        let to = self.forward();
                        hold(&self.client, &mut self.held, subject, to);
                    } else {
                        release(&mut self.held, &subject);
                    }
                }
            }
            ClusterOut::Publish {
                topic,
                channel,
                reliable,
                payload,
            } => {
                self.seq += 1;
                let envelope = Envelope {
                    channel,
                    reliable,
                    origin: self.origin,
                    seq: self.seq,
                    payload,
                };
                match self
                    .client
                    .publish(subject_of_topic(topic.as_str()), envelope.encode())
                    .await
                {
                    Ok(()) => self.counters.count_published(),
                    Err(e) => {
                        debug!("cluster: a publish on {topic} not handed to NATS: {e}");
                        self.counters.count_dropped();
                    }
                }
            }
            ClusterOut::Retain {
                topic,
                channel,
                payload,
            } => self.retain(&topic, channel, payload).await,
            ClusterOut::Queue { token, queue, op } => {
                let (queues, to) = (self.queues.clone(), self.forward());
                tokio::spawn(async move {
                    let outcome = queues.apply(queue, op).await;
                    to.hand(answer(token, outcome));
                });
            }
            ClusterOut::Serve(service, on) => self.serve(service, on),
            ClusterOut::Request {
                token,
                service,
                timeout_ms,
                payload,
            } => {
                tokio::spawn(ask(
                    self.requests.clone(),
                    token,
                    subject_of_service(service.as_str()),
                    RequestEnvelope {
                        timeout_ms,
                        payload,
                    },
                    self.forward(),
                ));
            }
            ClusterOut::Reply {
                reply,
                status,
                payload,
            } => {
                let answer = ReplyEnvelope {
                    status: status.0,
                    payload,
                };
                if self
                    .requests
                    .publish(reply.as_str().to_string(), answer.encode())
                    .await
                    .is_err()
                {
                    self.counters.count_dropped();
                }
            }
        }
    }

    /// Keeps `topic`'s retained message in the cluster's stream (the last per subject is kept).
    /// The stream's answer is awaited on a task of its own: a refusal (no stream: NATS without
    /// `JetStream`) is counted as dropped, and the message stays with this node.
    async fn retain(&mut self, topic: &Text, channel: u8, payload: Bytes) {
        let js = &self.retained;
        self.seq += 1;
        let envelope = Envelope {
            channel,
            reliable: true,
            origin: self.origin,
            seq: self.seq,
            payload,
        };
        let counters = Arc::clone(&self.counters);
        match js
            .publish(retained_subject_of_topic(topic.as_str()), envelope.encode())
            .await
        {
            Ok(ack) => {
                tokio::spawn(async move {
                    if let Err(e) = ack.await {
                        debug!("cluster: a retained message not kept by JetStream: {e}");
                        counters.count_dropped();
                    }
                });
            }
            Err(e) => {
                debug!("cluster: a retained message on {topic} not handed to NATS: {e}");
                counters.count_dropped();
            }
        }
    }

    /// One more (or one fewer) registration of `service` on this node.
    fn serve(&mut self, service: Text, on: bool) {
        let subject = subject_of_service(service.as_str());
        self.serving_changed = true;
        if on {
            let (stop, stopped) = oneshot::channel();
            self.serving
                .entry(subject.clone())
                .or_insert_with(|| (service.clone(), Vec::new()))
                .1
                .push(stop);
            tokio::spawn(serve(
                self.requests.clone(),
                subject,
                service,
                stopped,
                self.forward(),
            ));
        } else if let Some((_, stops)) = self.serving.get_mut(&subject) {
            if let Some(stop) = stops.pop() {
                let _ = stop.send(());
            }
            if stops.is_empty() {
                self.serving.remove(&subject);
            }
        }
    }

    fn forward(&self) -> Forward {
        Forward {
            inbox: Arc::clone(&self.inbox),
            counters: Arc::clone(&self.counters),
            seen: Arc::clone(&self.seen),
            wake: Arc::clone(&self.wake),
        }
    }

    /// Announces this node with the services registered on it now.
    async fn announce(&mut self, me: &NodeInfo) {
        self.serving_changed = false;
        let mut me = me.clone();
        me.services = self
            .serving
            .values()
            .map(|(name, stops)| {
                let count = u32::try_from(stops.len()).unwrap_or(u32::MAX);
                (name.as_str().to_string(), count)
            })
            .collect();
        me.services.sort();
        let (bytes, omitted) = me.encode();
        if omitted != self.omitted {
            self.omitted = omitted;
            warn!(
                "cluster: {omitted} of this node's services do not fit in its announcement; other \
                 nodes' sys.services will not list them"
            );
        }
        if self
            .client
            .publish(me.subject(), bytes.into())
            .await
            .is_err()
        {
            debug!("cluster: an announcement not handed to NATS");
        }
    }
}

async fn run(
    config: BridgeConfig,
    mut commands: mpsc::Receiver<ClusterOut>,
    inbox: Arc<ClusterInbox>,
    counters: Arc<ClusterCounters>,
    wake: Wake,
) {
    let Some(client) = connect(&config, &counters, Link::PubSub).await else {
        return;
    };
    let Some(requests) = connect(&config, &counters, Link::Requests).await else {
        return;
    };
    counters
        .nodes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .set_me(config.me.clone());
    // Listening before the first announcement: a node that starts later and announces itself
    // is heard, and answered with an announcement of this one (`newcomer`).
    let newcomer = Arc::new(tokio::sync::Notify::new());
    match client.subscribe(format!("{NODE_PREFIX}.*")).await {
        Ok(sub) => {
            tokio::spawn(listen_for_nodes(
                sub,
                Arc::clone(&counters),
                Arc::clone(&newcomer),
            ));
        }
        Err(e) => warn!("cluster: cannot hear other nodes' announcements: {e}"),
    }
    let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
    // A change of the services registered here is announced within this, not five seconds.
    let mut changes = tokio::time::interval(ANNOUNCE_CHANGES_WITHIN);
    let forward = Forward {
        inbox: Arc::clone(&inbox),
        counters: Arc::clone(&counters),
        seen: Arc::new(Mutex::new(Seen::default())),
        wake: Arc::clone(&wake),
    };
    let js = jetstream::new(requests.clone());
    // The stream exists before the first command is applied, so that a retained message
    // published at once is kept; one try here (NATS away or without JetStream: the follower
    // tries again, and logs it).
    let _ = retained_stream(&js).await;
    tokio::spawn(follow_retained(
        js.clone(),
        requests.new_inbox(),
        forward.clone(),
    ));
    let queues = ClusterQueues::new(js.clone(), config.queues);
    if let Err(e) = queues.ensure_stream().await {
        debug!("cluster: no stream for the cluster's queues yet: {e}");
    }
    let mut bridging = Bridging {
        client,
        requests,
        retained: js,
        queues,
        serving: HashMap::new(),
        serving_changed: false,
        omitted: 0,
        held: HashMap::new(),
        origin: random_origin(),
        seq: 0,
        inbox,
        counters,
        seen: forward.seen,
        wake,
    };
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            got = commands.recv_many(&mut batch, 4096) => {
                if got == 0 {
                    break;
                }
            }
            () = newcomer.notified() => bridging.announce(&config.me).await,
            _ = announce.tick() => bridging.announce(&config.me).await,
            _ = changes.tick() => {
                if bridging.serving_changed {
                    bridging.announce(&config.me).await;
                }
            }
        }
        for command in batch.drain(..) {
            bridging.apply(command).await;
        }
    }
    let Bridging {
        client, mut held, ..
    } = bridging;
    for (_, (_, stop)) in held.drain() {
        let _ = stop.send(());
    }
    // What the last batch published goes out, unless NATS is away: a shutdown does not wait
    // for it longer than this.
    let _ = tokio::time::timeout(FLUSH_AT_EXIT, client.flush()).await;
}

/// How soon a change of this node's services is announced (at most one announcement per this).
const ANNOUNCE_CHANGES_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// How long the bridge waits at shutdown for its last publishes to reach NATS.
const FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the table of nodes from their announcements (docs/PROTOCOL.md section 12.3), and says
/// when a node is new.
async fn listen_for_nodes(
    mut sub: async_nats::Subscriber,
    counters: Arc<ClusterCounters>,
    newcomer: Arc<tokio::sync::Notify>,
) {
    while let Some(message) = sub.next().await {
        let now = std::time::Instant::now();
        let mut table = counters
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.forget_old(now);
        match NodeInfo::parse(&message.payload) {
            Ok(node) if message.subject.as_str() == node.subject() => {
                if table.heard(node, now) {
                    newcomer.notify_one();
                }
            }
            _ => counters.count_malformed(),
        }
    }
}

/// Into the loops' inbox, waking the first worker when it was empty.
fn deliver(inbox: &ClusterInbox, counters: &ClusterCounters, wake: &Wake, remote: Remote) {
    match inbox.push(remote) {
        Ok(true) => wake(),
        Ok(false) => {}
        Err(_) => counters.count_dropped(),
    }
}

/// One registration of a service on this node: a member of the service's queue group, handing
/// each request (with its reply subject) to the loops, until told to stop.
async fn serve(
    requests: async_nats::Client,
    subject: String,
    service: Text,
    mut stop: oneshot::Receiver<()>,
    to: Forward,
) {
    let mut sub = match requests
        .queue_subscribe(subject.clone(), subject.clone())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            warn!("cluster: cannot serve {subject}: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            message = sub.next() => {
                let Some(message) = message else { break };
                let parsed = message.reply.zip(RequestEnvelope::parse(&message.payload).ok());
                let Some((reply, request)) = parsed else {
                    to.counters.count_malformed();
                    continue;
                };
                let remote = Remote::Request {
                    reply: Text::from(reply.as_str()),
                    service: service.clone(),
                    timeout_ms: request.timeout_ms,
                    payload: request.payload,
                };
                to.hand(remote);
            }
            _ = &mut stop => {
                let _ = sub.unsubscribe().await;
                break;
            }
        }
    }
}

/// Sends one request of this node's and hands its answer to the loops: the responder's, or
/// `NO_RESPONDER` when NATS knows of none. A request that times out is left to the hub's own
/// deadline.
async fn ask(
    requests: async_nats::Client,
    token: u64,
    subject: String,
    request: RequestEnvelope,
    to: Forward,
) {
    let timeout = Duration::from_millis(u64::from(request.timeout_ms));
    let asked = async_nats::Request::new()
        .payload(request.encode())
        .timeout(Some(timeout));
    let (status, payload) = match requests.send_request(subject, asked).await {
        Ok(answer) => {
            if let Ok(r) = ReplyEnvelope::parse(&answer.payload) {
                (Status(r.status), r.payload)
            } else {
                to.counters.count_malformed();
                (Status::INTERNAL, Bytes::from_static(b"a malformed answer"))
            }
        }
        Err(e) => match e.kind() {
            async_nats::client::RequestErrorKind::NoResponders => (
                Status::NO_RESPONDER,
                Bytes::from_static(b"no service of that name in the cluster"),
            ),
            async_nats::client::RequestErrorKind::TimedOut => return,
            async_nats::client::RequestErrorKind::Other => {
                debug!("cluster: a request not handed to NATS: {e}");
                (
                    Status::INTERNAL,
                    Bytes::from_static(b"the cluster is unavailable"),
                )
            }
        },
    };
    to.hand(Remote::Reply {
        token,
        status,
        payload,
    });
}

/// A random id for this node's messages, new at each start (`Seen` tells copies apart by it).
fn random_origin() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough among nodes started at different instants.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_be_bytes(b)
}

/// Where a subscription's messages go.
#[derive(Clone)]
pub(crate) struct Forward {
    inbox: Arc<ClusterInbox>,
    counters: Arc<ClusterCounters>,
    seen: Arc<Mutex<Seen>>,
    wake: Wake,
}

impl Forward {
    /// Hands `remote` to the loops ([`deliver`]).
    pub(crate) fn hand(&self, remote: Remote) {
        deliver(&self.inbox, &self.counters, &self.wake, remote);
    }

    pub(crate) fn counters(&self) -> &ClusterCounters {
        &self.counters
    }
}

fn hold(
    client: &async_nats::Client,
    held: &mut HashMap<String, (usize, oneshot::Sender<()>)>,
    subject: String,
    to: Forward,
) {
    if let Some((n, _)) = held.get_mut(&subject) {
        *n += 1;
        return;
    }
    let (stop, stopped) = oneshot::channel();
    held.insert(subject.clone(), (1, stop));
    tokio::spawn(forward(client.clone(), subject, stopped, to));
}

fn release(held: &mut HashMap<String, (usize, oneshot::Sender<()>)>, subject: &str) {
    let Some((n, _)) = held.get_mut(subject) else {
        return;
    };
    *n -= 1;
    if *n == 0
        && let Some((_, stop)) = held.remove(subject)
    {
        let _ = stop.send(());
    }
}

/// One NATS subscription: its messages to the loops' inbox, until told to stop.
async fn forward(
    client: async_nats::Client,
    subject: String,
    mut stop: oneshot::Receiver<()>,
    to: Forward,
) {
    let Forward {
        inbox,
        counters,
        seen,
        wake,
    } = to;
    let mut sub = match client.subscribe(subject.clone()).await {
        Ok(s) => s,
        Err(e) => {
            warn!("cluster: cannot subscribe to {subject}: {e}");
            return;
        }
    };
    debug!("cluster: subscribed to {subject}");
    loop {
        tokio::select! {
            message = sub.next() => {
                let Some(message) = message else { break };
                let remote = topic_of(message.subject.as_str()).zip(Envelope::parse(&message.payload).ok());
                let Some((topic, envelope)) = remote else {
                    counters.count_malformed();
                    continue;
                };
                // Another of the node's subscriptions may have brought it already.
                let first = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .first_time(envelope.origin, envelope.seq);
                if !first {
                    continue;
                }
                let remote = Remote::Message { topic: Text::from(topic.as_str()), envelope };
                deliver(&inbox, &counters, &wake, remote);
            }
            _ = &mut stop => {
                let _ = sub.unsubscribe().await;
                debug!("cluster: unsubscribed from {subject}");
                break;
            }
        }
    }
}
