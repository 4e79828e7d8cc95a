//! An HTTP request that holds a hub session while it is answered (docs/PROTOCOL.md section 11.4).
//!
//! The request is the client: its session is admitted with a Hello of the server's making (the
//! request's connect token in it), its plan becomes the frames a client would send (`Subscribe`,
//! `Publish`, `Request`, `QueuePush`, `QueueFetch`, `QueueAck`, `QueueNack`), and the hub's frames for it
//! become the response: Server-Sent Events as they come, or one JSON body once the operation is
//! answered. So the hub serves it as any session, with the same tokens, ACLs and limits.
//!
//! A stream (`/sse`, `/poll`) confirms its Messages (option `CONFIRMS`, section 5.9) and leaves
//! its session parked when it ends, so that the next request resumes it from a cursor (the event
//! id `EventSource` sends back as `Last-Event-ID`, or a poll's `after`): the hub keeps the
//! numbered Messages the client has not had, and sends them again.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

use framewire_protocol::session::{Instant, Refusal};
use framewire_protocol::wire::{
    Ack, ChannelKind, Frame, FrameBody, Hello, HelloOptions, Message, Publish, QueueAck,
    QueueDelivery, QueueFetch, QueueNack, QueuePush, Reason, Request, Status, Subscribe, Text,
    Unsubscribe,
};
use log::debug;

use super::http::Response;
use super::json;
use super::plan::{Call, Cursor, Plan};
use crate::hub::{ClientId, Delivery, Hub};

/// How often an idle event stream carries a comment, so that proxies and the browser see it live.
pub(crate) const SSE_HEARTBEAT: Duration = Duration::from_secs(15);
/// Messages an event stream leaves unconfirmed behind the newest it has written: what a
/// reconnecting `EventSource` can still be sent again (its `Last-Event-ID` names the last one it
/// had).
pub(crate) const SSE_REPLAY_WINDOW: u32 = 256;
/// Output an event stream may have waiting for the socket before the client counts as a slow
/// consumer and the stream ends (it resumes from its last event id).
pub(crate) const SSE_MAX_BUFFERED: usize = 1024 * 1024;
/// The most bytes of Messages one poll, or deliveries one fetch, answers with (one more item may
/// go past it).
pub(crate) const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// What a browser's `EventSource` waits before reconnecting (the stream's `retry:` field).
const SSE_RETRY_MS: u32 = 2_000;

/// What the exchange is doing, by plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sse,
    Poll { wait_ms: u32, max: usize },
    Publish,
    Request,
    Push,
    Fetch,
    Ack,
    Nack,
}

/// Where an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Waiting for the hub (or streaming).
    Running,
    /// Its response is written: the session ends (parked, for a stream), and the connection
    /// reads the next request.
    Answered,
    /// The connection ends (an event stream is over).
    Over,
}

/// See the module docs.
#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one request, not states of one machine"
)]
pub(crate) struct Exchange {
    client: ClientId,
    kind: Kind,
    /// Operations sent (ids `1..=sent`) whose Responses have not come.
    waiting: u32,
    /// The first operation that failed: its status and explanation.
    failure: Option<(Status, String)>,
    /// A request's answer.
    answer: Option<framewire_protocol::wire::Response>,
    /// The token of the Welcome this session would have had, in hex: the cursors' first part.
    session: String,
    resumed: bool,
    /// Numbered Messages the client lacks that the server no longer had.
    missed: u32,
    /// The client has every numbered Message up to here (the cursor, then what it was sent).
    through: u32,
    /// What the stream has confirmed to the hub.
    confirmed: u32,
    /// Items of the JSON answer (a poll's messages, a fetch's deliveries), comma-separated.
    items: String,
    count: usize,
    /// SSE events not yet written (they wait for the stream's head).
    events: String,
    /// Bytes for the socket.
    out: Vec<u8>,
    deadline: Option<Instant>,
    keep_alive: bool,
    head_only: bool,
    /// Another connection took the session over.
    taken_over: bool,
    progress: Progress,
    /// The status of the response written, once one is (for an event stream: its head is out).
    status: Option<u16>,
}

impl Exchange {
    /// Admits the request's session and sends the hub its first frames.
    ///
    /// # Errors
    /// The response for a session the hub refuses (a bad connect token: `401`).
    pub(crate) fn start(
        now: Instant,
        hub: &mut Hub,
        client: ClientId,
        call: &Call,
        peer: IpAddr,
        (keep_alive, head_only): (bool, bool),
    ) -> Result<Self, Response> {
        let stream = matches!(call.plan, Plan::Stream { .. });
        let mut options = HelloOptions::builder().client_name("http");
        if let Some(token) = &call.token {
            options = options.auth_token(token);
        }
        let after = match &call.plan {
            Plan::Stream { after, .. } => after.as_ref(),
            _ => None,
        };
        if stream {
            options = options.confirms();
        }
        if let Some(cursor) = after {
            options = options.resume_token(&cursor.token);
        }
        let options = options.build().map_err(|e| {
            json::failure(400, "BAD_REQUEST", Status::BAD_REQUEST.0, &e.to_string())
        })?;
        let admission = hub
            .admit(now, client, &Hello::new(0, options), peer)
            .map_err(|r| refused(&r))?;
        let kind = match &call.plan {
            Plan::Stream { sse: true, .. } => Kind::Sse,
            Plan::Stream { wait_ms, max, .. } => Kind::Poll {
                wait_ms: *wait_ms,
                max: *max,
            },
            Plan::Publish { .. } => Kind::Publish,
            Plan::Request { .. } => Kind::Request,
            Plan::Push { .. } => Kind::Push,
            Plan::Fetch { .. } => Kind::Fetch,
            Plan::Ack { .. } => Kind::Ack,
            Plan::Nack { .. } => Kind::Nack,
        };
        let through = after.filter(|_| admission.resumed).map_or(0, |c| c.through);
        let mut exchange = Self {
            client,
            kind,
            waiting: 0,
            failure: None,
            answer: None,
            session: super::form::to_hex(&admission.session_token),
            resumed: admission.resumed,
            missed: 0,
            through,
            confirmed: through,
            items: String::new(),
            count: 0,
            events: String::new(),
            out: Vec::new(),
            deadline: match kind {
                Kind::Poll { wait_ms, .. } => Some(now + Duration::from_millis(wait_ms.into())),
                _ => None,
            },
            keep_alive,
            head_only,
            taken_over: false,
            progress: Progress::Running,
            status: None,
        };
        debug!(
            "{client:?}: HTTP {kind:?} session {} (resumed: {})",
            exchange.session, admission.resumed
        );
        let held = if admission.resumed {
            hub.subscriptions_of(client)
        } else {
            Vec::new()
        };
        for frame in Self::frames(&call.plan, &held) {
            exchange.waiting += 1;
            hub.handle_frame(now, client, frame, ChannelKind::ReliableOrdered);
        }
        if admission.resumed && through != 0 {
            // What the cursor says the client has is settled: the hub need not send it again.
            let ack = Frame::new(Ack { through });
            hub.handle_frame(now, client, ack, ChannelKind::ReliableOrdered);
        }
        Ok(exchange)
    }

    /// The frames the plan sends, with ids from 1; `held` is what a resumed session is
    /// subscribed to already (it keeps that but its `unsubscribe=` filters, and gains the
    /// request's other filters).
    fn frames(plan: &Plan, held: &[Text]) -> Vec<Frame> {
        let id = 1;
        match plan {
            Plan::Stream {
                filters,
                unsubscribe,
                ..
            } => {
                let holds = |f: &String| held.iter().any(|h| h.as_str() == f.as_str());
                let dropped = unsubscribe.iter().filter(|f| holds(f)).map(|f| (false, f));
                let gained = filters.iter().filter(|f| !holds(f)).map(|f| (true, f));
                (1..)
                    .zip(dropped.chain(gained))
                    .map(|(id, (subscribe, f))| {
                        let filter = Text::from(f.as_str());
                        if subscribe {
                            Frame::new(Subscribe { id, filter })
                        } else {
                            Frame::new(Unsubscribe { id, filter })
                        }
                    })
                    .collect()
            }
            Plan::Publish {
                topic,
                retain,
                payload,
            } => vec![Frame::new(Publish {
                retain: *retain,
                id,
                topic: Text::from(topic.as_str()),
                payload: payload.clone(),
            })],
            Plan::Request {
                target,
                timeout_ms,
                payload,
            } => vec![Frame::new(Request {
                id,
                timeout_ms: *timeout_ms,
                target: Text::from(target.as_str()),
                payload: payload.clone(),
            })],
            Plan::Push { queue, payload } => vec![Frame::new(QueuePush {
                id,
                queue: Text::from(queue.as_str()),
                payload: payload.clone(),
            })],
            Plan::Fetch {
                queue,
                wait_ms,
                max,
            } => vec![Frame::new(QueueFetch {
                id,
                max: *max,
                wait_ms: *wait_ms,
                queue: Text::from(queue.as_str()),
            })],
            Plan::Ack { queue, delivery } => vec![Frame::new(QueueAck {
                id,
                delivery_id: *delivery,
                queue: Text::from(queue.as_str()),
            })],
            Plan::Nack {
                queue,
                delivery,
                delay_ms,
            } => vec![Frame::new(QueueNack {
                id,
                delay_ms: *delay_ms,
                delivery_id: *delivery,
                queue: Text::from(queue.as_str()),
            })],
        }
    }

    /// The session the hub knows this exchange as.
    pub(crate) fn client(&self) -> ClientId {
        self.client
    }

    /// Whether the session ends parked (a stream, to be resumed by its cursor) rather than for
    /// good.
    pub(crate) fn parks(&self) -> bool {
        matches!(self.kind, Kind::Sse | Kind::Poll { .. }) && self.failure.is_none()
    }

    /// The status of the response it wrote (`None`: none yet), for the count of responses.
    pub(crate) fn status(&self) -> Option<u16> {
        self.status
    }

    /// When [`Exchange::on_timeout`] is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Bytes for the socket, taken.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// A frame from the hub for this session. Returns how many it dropped (Messages past a
    /// poll's bound that the hub does not keep for it), for the hub's count.
    pub(crate) fn deliver(&mut self, delivery: &Delivery) -> u64 {
        let parsed;
        let frame = match delivery {
            Delivery::Frame(frame) => frame,
            // The fan-out's bytes were checked when the hub encoded them: only parse the body.
            Delivery::Shared(shared) => match Frame::parse(shared.body()) {
                Ok(frame) => {
                    parsed = frame;
                    &parsed
                }
                Err(e) => {
                    debug!("{:?}: a shared frame that does not parse: {e}", self.client);
                    return 1;
                }
            },
            Delivery::Close(..) => {
                self.taken_over = true;
                return 0;
            }
        };
        match &frame.body {
            FrameBody::Response(r) if r.id != 0 && r.id <= self.waiting_ids() => {
                self.waiting = self.waiting.saturating_sub(1);
                if r.status != Status::OK && self.failure.is_none() {
                    let why = String::from_utf8_lossy(&r.payload).into_owned();
                    self.failure = Some((r.status, why));
                }
                if self.kind == Kind::Request {
                    self.answer = Some(r.clone());
                }
                0
            }
            FrameBody::Message(m) => self.message(m),
            FrameBody::QueueDelivery(d) => {
                self.delivery(d);
                0
            }
            // After a resume: every number up to `through` is settled, had or gone.
            FrameBody::Ack(a) => {
                if newer(a.through, self.through) {
                    self.missed = self
                        .missed
                        .wrapping_add(a.through.wrapping_sub(self.through));
                    self.through = a.through;
                    self.confirmed = a.through;
                }
                0
            }
            _ => 0,
        }
    }

    /// The ids operations were sent with: `1..=` this.
    fn waiting_ids(&self) -> u32 {
        match self.kind {
            Kind::Sse | Kind::Poll { .. } => u32::MAX,
            _ => 1,
        }
    }

    fn message(&mut self, m: &Message) -> u64 {
        if let Some(n) = m.number
            && !newer(n, self.through)
        {
            // Had before the cursor, or sent twice across a resume (section 5.9).
            return 0;
        }
        match self.kind {
            Kind::Sse => {
                if let Some(n) = m.number {
                    self.through = n;
                    let _ = writeln!(self.events, "id: {}", Cursor::write_hex(&self.session, n));
                }
                self.events.push_str("data: ");
                message_json(&mut self.events, m, None);
                self.events.push_str("\n\n");
                0
            }
            Kind::Poll { max, .. } => {
                if self.count >= max || self.items.len() >= MAX_ANSWER_BYTES {
                    // Numbered ones stay kept for the next poll; the others are lost to it.
                    return u64::from(m.number.is_none());
                }
                let id = m.number.map(|n| {
                    self.through = n;
                    Cursor::write_hex(&self.session, n)
                });
                if self.count > 0 {
                    self.items.push(',');
                }
                message_json(&mut self.items, m, id.as_deref());
                self.count += 1;
                0
            }
            _ => 1,
        }
    }

    fn delivery(&mut self, d: &QueueDelivery) {
        if self.count > 0 {
            self.items.push(',');
        }
        self.items.push('{');
        json::field(&mut self.items, "queue", d.queue.as_str());
        let _ = write!(
            self.items,
            ",\"delivery\":\"{}\",\"redelivered\":{},",
            d.delivery_id, d.redelivered
        );
        json::payload(&mut self.items, &d.payload);
        self.items.push('}');
        self.count += 1;
    }

    /// Its deadline passed: an event stream's heartbeat, or a poll's wait.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        if self.kind == Kind::Sse {
            self.events.push_str(": keepalive\n\n");
            self.deadline = Some(now + SSE_HEARTBEAT);
        }
    }

    /// Brings the response up to date with what has arrived: the stream's head and events, or
    /// the answer once it is due. What an event stream confirms is then
    /// [`Exchange::take_confirmation`]'s.
    pub(crate) fn settle(&mut self, now: Instant) -> Progress {
        if self.progress != Progress::Running {
            return self.progress;
        }
        if self.waiting > 0 && !self.taken_over {
            return Progress::Running;
        }
        if let Some((status, why)) = self.failure.clone() {
            let response = json::failure(http_status(status), status_name(status), status.0, &why);
            return self.answer_with(&response);
        }
        match self.kind {
            Kind::Sse => self.stream_events(now),
            Kind::Poll { .. } => {
                let due =
                    self.count > 0 || self.taken_over || self.deadline.is_none_or(|d| now >= d);
                if !due {
                    return Progress::Running;
                }
                let response = self.poll_answer();
                self.answer_with(&response)
            }
            _ => {
                let response = self.operation_answer();
                self.answer_with(&response)
            }
        }
    }

    fn answer_with(&mut self, response: &Response) -> Progress {
        self.status = Some(response.status);
        response.write(self.keep_alive, self.head_only, &mut self.out);
        self.progress = Progress::Answered;
        self.progress
    }

    fn stream_events(&mut self, now: Instant) -> Progress {
        if self.taken_over {
            self.progress = Progress::Over;
            return self.progress;
        }
        if self.status.is_none() {
            self.status = Some(200);
            self.deadline = Some(now + SSE_HEARTBEAT);
            let mut head = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                 X-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
            );
            let _ = write!(
                head,
                "retry: {SSE_RETRY_MS}\n\nevent: session\nid: {}\ndata: {}\n\n",
                Cursor::write_hex(&self.session, self.through),
                self.session_json()
            );
            self.out.extend_from_slice(head.as_bytes());
            if self.head_only {
                self.progress = Progress::Over;
                return self.progress;
            }
        }
        self.out.extend_from_slice(self.events.as_bytes());
        self.events.clear();
        if self.events.capacity() > 4096 {
            self.events = String::new();
        }
        Progress::Running
    }

    /// What an event stream confirms now, for the hub: all but the window a reconnect may ask
    /// for again ([`SSE_REPLAY_WINDOW`]); `None` when that has not moved (so the hub is not
    /// locked for nothing).
    pub(crate) fn take_confirmation(&mut self) -> Option<Frame> {
        let keep_from = self.through.wrapping_sub(SSE_REPLAY_WINDOW);
        if self.kind != Kind::Sse
            || !newer(keep_from, self.confirmed)
            || self.through <= SSE_REPLAY_WINDOW
        {
            return None;
        }
        self.confirmed = keep_from;
        Some(Frame::new(Ack { through: keep_from }))
    }

    /// An event stream's output waits for a client that does not read: past
    /// [`SSE_MAX_BUFFERED`] the stream ends as a slow consumer.
    pub(crate) fn is_slow(&self, unwritten: usize) -> bool {
        self.kind == Kind::Sse && unwritten > SSE_MAX_BUFFERED
    }

    fn session_json(&self) -> String {
        let mut s = String::from("{");
        json::field(&mut s, "session", &self.session);
        let _ = write!(
            s,
            ",\"resumed\":{},\"missed\":{}}}",
            self.resumed, self.missed
        );
        s
    }

    fn poll_answer(&mut self) -> Response {
        let mut body = String::with_capacity(96 + self.items.len());
        body.push_str("{\"status\":\"OK\",\"code\":0,");
        json::field(&mut body, "session", &self.session);
        let _ = write!(
            body,
            ",\"resumed\":{},\"missed\":{},",
            self.resumed, self.missed
        );
        json::field(
            &mut body,
            "cursor",
            &Cursor::write_hex(&self.session, self.through),
        );
        let _ = write!(body, ",\"messages\":[{}]}}", self.items);
        body.push('\n');
        json::object(200, body)
    }

    fn operation_answer(&mut self) -> Response {
        let mut body = String::from("{\"status\":\"OK\",\"code\":0");
        match self.kind {
            Kind::Request => {
                if let Some(r) = &self.answer {
                    body.push(',');
                    json::payload(&mut body, &r.payload);
                }
            }
            Kind::Fetch => {
                let _ = write!(body, ",\"deliveries\":[{}]", self.items);
            }
            _ => {}
        }
        body.push_str("}\n");
        json::object(200, body)
    }
}

/// Whether delivery number `n` comes after `through` (numbers wrap, section 5.9).
fn newer(n: u32, through: u32) -> bool {
    n.wrapping_sub(through).cast_signed() > 0
}

/// A Message as JSON: `{"id":...,"topic":...,"retained":...,"payload":...,"encoding":...}`, the
/// id (its cursor) only for a poll.
fn message_json(out: &mut String, m: &Message, id: Option<&str>) {
    out.push('{');
    if let Some(id) = id {
        json::field(out, "id", id);
        out.push(',');
    }
    json::field(out, "topic", m.topic.as_str());
    let _ = write!(out, ",\"retained\":{},", m.retained);
    json::payload(out, &m.payload);
    out.push('}');
}

/// The response for a refused session.
fn refused(r: &Refusal) -> Response {
    let http = match r.reason {
        Reason::AUTH_FAILED => 401,
        Reason::SESSION_LIMIT
        | Reason::SERVER_FULL
        | Reason::ADDRESS_LIMIT
        | Reason::GOING_AWAY => 503,
        _ => 400,
    };
    json::failure(
        http,
        r.reason.name().unwrap_or("REFUSED"),
        r.reason.0,
        r.message.as_str(),
    )
}

/// The HTTP status that answers an operation's status (docs/PROTOCOL.md section 11.4).
pub(crate) fn http_status(status: Status) -> u16 {
    match status {
        Status::OK => 200,
        Status::BAD_REQUEST | Status::INVALID_TOPIC | Status::NAME_TOO_LONG => 400,
        Status::FORBIDDEN => 403,
        Status::NOT_FOUND => 404,
        Status::PAYLOAD_TOO_LARGE => 413,
        Status::QUEUE_FULL | Status::LIMIT_REACHED => 429,
        Status::INTERNAL => 500,
        Status::NO_RESPONDER | Status::SHUTTING_DOWN => 503,
        Status::TIMEOUT => 504,
        Status::STORAGE_FULL => 507,
        // The responder's end, its own status, or one this version does not name.
        _ => 502,
    }
}

fn status_name(status: Status) -> &'static str {
    status.name().unwrap_or("APPLICATION")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_wrap() {
        assert!(newer(1, 0));
        assert!(newer(0, u32::MAX));
        assert!(!newer(5, 5));
        assert!(!newer(4, 5));
    }

    #[test]
    fn every_named_status_has_an_http_status() {
        for &status in Status::ALL {
            let http = http_status(status);
            // Only the responder's going is the gateway's fault among the named ones.
            assert_eq!(
                http == 502,
                status == Status::RESPONDER_GONE,
                "{status:?} -> {http}"
            );
        }
        assert_eq!(http_status(Status(0x1234)), 502);
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod flow_tests;
