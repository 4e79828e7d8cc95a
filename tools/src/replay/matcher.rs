//! Pairs what a replayed server answers with what the captured server answered, and rewrites what
//! the client sends so it refers to the new server's names for things.
//!
//! A server frame is paired with the oldest unanswered captured frame of the same session and key:
//! a Response by its operation id, a `QueueDelivery` by its fetch's id, a Message by its topic, a
//! routed Request by its target, Data by its channel, and the handshake's answer and a server's
//! Close each as one. So frames that race (messages from other publishers, a response overtaking a
//! delivery) still pair up. A paired frame then must agree on kind, status and payload, except
//! where the payload cannot be the same twice: `sys.time` (a number), `sys.info` and `sys.stats`
//! (a JSON object).
//!
//! Names the server chose are mapped from the captured to the replayed ones: session tokens (a
//! later Hello resumes the replayed session), the ids of requests routed to a service (the
//! service's Response goes back under the new id) and queue delivery ids (a `QueueAck` acknowledges
//! the replayed delivery).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use framewire_protocol::wire::{
    Frame, FrameBody, FrameKind, Hello, HelloOptions, QueueAck, QueueExtend, QueueNack, Reason,
    Text, Welcome, option,
};

use super::script::{Action, Script};

/// What a server frame is paired by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Handshake,
    Close,
    Response(u32),
    Delivery(u32),
    Message(Text),
    Request(Text),
    Data(u8),
    Error,
    Other(FrameKind),
}

fn key(frame: &Frame) -> Key {
    match &frame.body {
        FrameBody::Welcome(_) | FrameBody::Reject(_) => Key::Handshake,
        FrameBody::Close(_) => Key::Close,
        FrameBody::Response(r) => Key::Response(r.id),
        FrameBody::QueueDelivery(d) => Key::Delivery(d.id),
        FrameBody::Message(m) => Key::Message(m.topic.clone()),
        FrameBody::Request(r) => Key::Request(r.target.clone()),
        FrameBody::Data(_) => Key::Data(frame.channel),
        FrameBody::Error(_) => Key::Error,
        _ => Key::Other(frame.kind()),
    }
}

/// How one expected frame turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not yet answered.
    Waiting,
    /// Answered alike.
    Matched,
    /// Answered differently.
    Mismatched,
    /// Never answered.
    Missing,
}

/// One way the replayed server differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The session (index into the script's sessions).
    pub session: usize,
    /// What differed, for people.
    pub what: String,
}

/// The tally of a replay's comparisons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Server frames the capture holds.
    pub expected: u64,
    /// Answered alike.
    pub matched: u64,
    /// Answered differently.
    pub mismatched: u64,
    /// Never answered.
    pub missing: u64,
    /// Answered with something the captured server did not send.
    pub unexpected: u64,
    /// Frames after everything captured of a session whose client vanished (a TCP FIN without a
    /// Close): the captured server never answered what it had not read when the client went, and
    /// the target may have. Not compared, and not a difference.
    pub after_vanish: u64,
}

/// The comparison of one replay (see the module docs). It reads the captured frames from the
/// script it was made for, without a copy.
#[derive(Debug)]
pub struct Matcher<'a> {
    script: &'a Script,
    outcomes: Vec<Outcome>,
    /// Unanswered expectations by session and key, oldest first.
    waiting: HashMap<(usize, Key), VecDeque<usize>>,
    /// The target of each request a session sent, by its id (for the payload rules).
    targets: HashMap<(usize, u32), String>,
    /// Captured → replayed: session tokens, routed request ids (per session), delivery ids.
    tokens: HashMap<Bytes, Bytes>,
    routed_ids: HashMap<(usize, u32), u32>,
    delivery_ids: HashMap<u64, u64>,
    differences: Vec<Difference>,
    unexpected: u64,
    /// Expectations still unsettled, by session.
    unsettled: HashMap<usize, usize>,
    /// Sessions whose captured client vanished.
    vanishing: HashSet<usize>,
    after_vanish: u64,
}

impl<'a> Matcher<'a> {
    /// A matcher expecting what `script` says the server answered.
    pub fn new(script: &'a Script) -> Self {
        let mut waiting: HashMap<(usize, Key), VecDeque<usize>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(script.steps.len());
        let mut unsettled: HashMap<usize, usize> = HashMap::new();
        let mut vanishing = HashSet::new();
        for (i, step) in script.steps.iter().enumerate() {
            if step.action == Action::Vanish {
                vanishing.insert(step.session);
            }
            if let Action::Expect(frame) = &step.action {
                *unsettled.entry(step.session).or_default() += 1;
                waiting
                    .entry((step.session, key(frame)))
                    .or_default()
                    .push_back(i);
                outcomes.push(Outcome::Waiting);
            } else {
                outcomes.push(Outcome::Matched);
            }
        }
        Self {
            script,
            outcomes,
            waiting,
            targets: HashMap::new(),
            tokens: HashMap::new(),
            routed_ids: HashMap::new(),
            delivery_ids: HashMap::new(),
            differences: Vec::new(),
            unexpected: 0,
            unsettled,
            vanishing,
            after_vanish: 0,
        }
    }

    /// How step `step` turned out (steps that are not expectations count as matched).
    pub fn outcome(&self, step: usize) -> Outcome {
        self.outcomes.get(step).copied().unwrap_or(Outcome::Matched)
    }

    /// The Hello options for `session`'s replayed Hello: the captured ones without cookie and
    /// padding (the new session makes its own), a resume token mapped to the replayed session's.
    /// Over UDP the session also writes the channels itself (`keep_channels` false). A `token`
    /// given replaces the captured connect token.
    pub fn hello_options(
        &self,
        hello: &Hello,
        keep_channels: bool,
        token: Option<&[u8]>,
    ) -> HelloOptions {
        let mut options = HelloOptions::builder();
        if let Some(token) = token {
            options = options.auth_token(token);
        }
        for o in &hello.options {
            match o.code {
                option::COOKIE | option::PADDING => {}
                option::CHANNELS if !keep_channels => {}
                option::AUTH_TOKEN if token.is_some() => {}
                option::RESUME_TOKEN => {
                    let token = self.tokens.get(&o.value).unwrap_or(&o.value);
                    options = options.resume_token(token);
                }
                code => options = options.raw(code, &o.value),
            }
        }
        // The captured options were valid, and dropping some keeps them so.
        options.build().unwrap_or_default()
    }

    /// `frame` is about to be sent on `session`: names the captured server chose are replaced by
    /// the replayed server's, and a request's target is noted for its response.
    pub fn rewrite(&mut self, session: usize, frame: &mut Frame) {
        match &mut frame.body {
            FrameBody::Request(r) => {
                self.targets.insert((session, r.id), r.target.to_string());
            }
            FrameBody::Response(r) => {
                if let Some(&id) = self.routed_ids.get(&(session, r.id)) {
                    r.id = id;
                }
            }
            FrameBody::QueueAck(QueueAck { delivery_id, .. })
            | FrameBody::QueueNack(QueueNack { delivery_id, .. })
            | FrameBody::QueueExtend(QueueExtend { delivery_id, .. }) => {
                if let Some(&id) = self.delivery_ids.get(delivery_id) {
                    *delivery_id = id;
                }
            }
            _ => {}
        }
    }

    /// The replayed server sent `frame` on `session`. Returns the step it answered, if any.
    pub fn received(&mut self, session: usize, frame: &Frame) -> Option<usize> {
        let Some(step) = self.take(session, key(frame)) else {
            if self.vanishing.contains(&session) && !self.unsettled.contains_key(&session) {
                self.after_vanish += 1;
                return None;
            }
            self.unexpected += 1;
            self.differ(session, format!("unexpected {}", summary(frame)));
            return None;
        };
        let captured = self.expected(step)?;
        let difference = self.compare(session, captured, frame);
        self.settle(step, session, difference);
        Some(step)
    }

    /// The replayed handshake succeeded.
    pub fn connected(&mut self, session: usize, token: &Bytes, resumed: bool, missed: u32) {
        let Some(step) = self.take(session, Key::Handshake) else {
            return;
        };
        let difference = match self.expected(step) {
            Some(Frame {
                body: FrameBody::Welcome(w),
                ..
            }) => {
                let w: &Welcome = w;
                if !w.session_token.is_empty() {
                    self.tokens.insert(w.session_token.clone(), token.clone());
                }
                if (w.resumed, w.missed) == (resumed, missed) {
                    None
                } else {
                    Some(format!(
                        "Welcome: resumed {} missed {}, now resumed {resumed} missed {missed}",
                        w.resumed, w.missed
                    ))
                }
            }
            Some(f) => Some(format!("{}, now Welcome", summary(f))),
            None => None,
        };
        self.settle(step, session, difference);
    }

    /// The replayed server ended `session` (a Reject, or a Close) with `reason`.
    pub fn closed_by_server(&mut self, session: usize, reason: Reason) {
        let step = self
            .take(session, Key::Handshake)
            .or_else(|| self.take(session, Key::Close));
        let Some(step) = step else {
            self.unexpected += 1;
            self.differ(session, format!("the server closed the session: {reason}"));
            return;
        };
        let difference = match self.expected(step) {
            Some(Frame {
                body: FrameBody::Reject(r),
                ..
            }) if r.reason == reason => None,
            Some(Frame {
                body: FrameBody::Close(c),
                ..
            }) if c.reason == reason => None,
            Some(f) => Some(format!("{}, now closed: {reason}", summary(f))),
            None => None,
        };
        self.settle(step, session, difference);
    }

    /// Gives up on step `step`: it is missing unless answered already.
    pub fn give_up(&mut self, step: usize) {
        if self.outcome(step) != Outcome::Waiting {
            return;
        }
        let (Some(frame), Some(session)) = (
            self.expected(step),
            self.script.steps.get(step).map(|s| s.session),
        ) else {
            return;
        };
        let k = (session, key(frame));
        if let Some(queue) = self.waiting.get_mut(&k) {
            queue.retain(|&s| s != step);
            if queue.is_empty() {
                self.waiting.remove(&k);
            }
        }
        self.settled_one(session);
        self.outcomes[step] = Outcome::Missing;
        self.differ(session, format!("missing {}", summary(frame)));
    }

    /// Gives up on everything `session` still waits for (it ended).
    pub fn give_up_session(&mut self, session: usize) {
        let mut steps: Vec<usize> = self
            .waiting
            .iter()
            .filter(|((s, _), _)| *s == session)
            .flat_map(|(_, steps)| steps.iter().copied())
            .collect();
        steps.sort_unstable();
        for step in steps {
            self.give_up(step);
        }
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        let mut t = Tally {
            unexpected: self.unexpected,
            after_vanish: self.after_vanish,
            ..Tally::default()
        };
        for (i, outcome) in self.outcomes.iter().enumerate() {
            if self.expected(i).is_none() {
                continue;
            }
            t.expected += 1;
            match outcome {
                Outcome::Matched => t.matched += 1,
                Outcome::Mismatched => t.mismatched += 1,
                Outcome::Missing => t.missing += 1,
                Outcome::Waiting => {}
            }
        }
        t
    }

    /// Every difference, in the order found.
    pub fn differences(&self) -> &[Difference] {
        &self.differences
    }

    /// The captured frame step `step` expects, if it is an expectation.
    fn expected(&self, step: usize) -> Option<&'a Frame> {
        match &self.script.steps.get(step)?.action {
            Action::Expect(frame) => Some(frame),
            _ => None,
        }
    }

    fn take(&mut self, session: usize, key: Key) -> Option<usize> {
        let Entry::Occupied(mut queue) = self.waiting.entry((session, key)) else {
            return None;
        };
        let step = queue.get_mut().pop_front();
        if queue.get().is_empty() {
            queue.remove();
        }
        if step.is_some() {
            self.settled_one(session);
        }
        step
    }

    fn settled_one(&mut self, session: usize) {
        if let Some(n) = self.unsettled.get_mut(&session) {
            *n -= 1;
            if *n == 0 {
                self.unsettled.remove(&session);
            }
        }
    }

    fn settle(&mut self, step: usize, session: usize, difference: Option<String>) {
        self.outcomes[step] = if difference.is_some() {
            Outcome::Mismatched
        } else {
            Outcome::Matched
        };
        if let Some(what) = difference {
            self.differ(session, what);
        }
    }

    fn differ(&mut self, session: usize, what: String) {
        self.differences.push(Difference { session, what });
    }

    /// Why `got` does not answer like `captured`, if it does not.
    fn compare(&mut self, session: usize, captured: &Frame, got: &Frame) -> Option<String> {
        let alike = match (&captured.body, &got.body) {
            (FrameBody::Response(a), FrameBody::Response(b)) => {
                a.status == b.status
                    && match self.targets.get(&(session, b.id)).map(String::as_str) {
                        Some("sys.time") => is_number(&a.payload) == is_number(&b.payload),
                        Some("sys.info" | "sys.stats") => {
                            is_json_object(&a.payload) == is_json_object(&b.payload)
                        }
                        _ => a.payload == b.payload,
                    }
            }
            (FrameBody::QueueDelivery(a), FrameBody::QueueDelivery(b)) => {
                self.delivery_ids.insert(a.delivery_id, b.delivery_id);
                (a.redelivered, &a.queue, &a.payload) == (b.redelivered, &b.queue, &b.payload)
            }
            (FrameBody::Request(a), FrameBody::Request(b)) => {
                self.routed_ids.insert((session, a.id), b.id);
                a.payload == b.payload
            }
            (FrameBody::Message(a), FrameBody::Message(b)) => {
                captured.channel == got.channel
                    && (a.retained, &a.payload) == (b.retained, &b.payload)
            }
            (FrameBody::Error(a), FrameBody::Error(b)) => {
                (a.reason, a.refused_kind) == (b.reason, b.refused_kind)
            }
            (a, b) => a == b,
        };
        (!alike).then(|| format!("{}, now {}", summary(captured), summary(got)))
    }
}

fn is_number(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok_and(|s| s.parse::<u64>().is_ok())
}

fn is_json_object(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{') && payload.last() == Some(&b'}')
}

/// A frame in a few words: its kind, what it is about, its status, and a short payload.
pub fn summary(frame: &Frame) -> String {
    let payload = |p: &Bytes| {
        let shown = &p[..p.len().min(32)];
        let text = String::from_utf8_lossy(shown);
        if p.len() > shown.len() {
            format!(" {text:?}... ({} B)", p.len())
        } else {
            format!(" {text:?}")
        }
    };
    match &frame.body {
        FrameBody::Response(r) => {
            format!("Response id {} {}{}", r.id, r.status, payload(&r.payload))
        }
        FrameBody::Message(m) => {
            format!("Message {:?}{}", m.topic.to_string(), payload(&m.payload))
        }
        FrameBody::QueueDelivery(d) => format!(
            "QueueDelivery id {} {:?}{}",
            d.id,
            d.queue.to_string(),
            payload(&d.payload)
        ),
        FrameBody::Request(r) => {
            format!("Request {:?}{}", r.target.to_string(), payload(&r.payload))
        }
        FrameBody::Data(d) => format!("Data ch {}{}", frame.channel, payload(&d.payload)),
        FrameBody::Error(e) => format!("Error {} (kind {:#04x})", e.reason, e.refused_kind),
        FrameBody::Close(c) => format!("Close {}", c.reason),
        FrameBody::Reject(r) => format!("Reject {}", r.reason),
        FrameBody::Welcome(w) => format!("Welcome resumed {}", w.resumed),
        _ => frame.kind().to_string(),
    }
}
