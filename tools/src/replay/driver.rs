//! Runs a [`Script`] against a live server: every captured session re-created with a fresh
//! handshake over its own socket, all of them from one mio loop, each client frame sent at its
//! captured time (scaled by the speed) or as soon as allowed (`--max`), the server's answers
//! handed to the [`Matcher`].
//!
//! A client frame is sent only once every server frame captured before it has been answered or
//! given up on (after the timeout): a subscriber's Subscribe is answered before a publisher's
//! Publish goes out, as in the capture, however fast the replay runs. Data echoes are the one
//! exception across sessions: a Data frame is only ever echoed to its sender, so another session
//! never waits for it, and sessions that only echo run side by side.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use framewire_client::Link;
use framewire_protocol::session::{Closer, Event, Instant, SendError, SessionConfig};
use framewire_protocol::wire::{ChannelKind, Frame, FrameBody, Hello, Reason};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::gate::Gate;
use super::matcher::{Difference, Matcher, Tally};
use super::script::{Action, Script};
use crate::capture::Carrier;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The captured timing divided by this factor (1.0: as captured).
    Speed(f64),
    /// Each frame as soon as what came before it in the capture has been answered.
    Max,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The server to replay against.
    pub target: SocketAddr,
    /// How fast.
    pub pace: Pace,
    /// How long to wait for an answer before calling it missing.
    pub timeout: Duration,
    /// A connect token every replayed Hello carries in place of the captured one (which may
    /// have expired, or been signed with another server's key); `None`: the captured one.
    pub token: Option<Bytes>,
    /// The keys issued beside `token`: the replayed UDP sessions are sealed with them, as a
    /// server that seals (or requires encryption) needs (docs/PROTOCOL.md section 2.3).
    pub seal_keys: Option<framewire_protocol::seal::TokenKeys>,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Sessions re-created.
    pub sessions: usize,
    /// Captured connections that could not be (no Hello in the capture).
    pub skipped_connections: usize,
    /// Sessions whose socket could not be opened.
    pub sessions_not_opened: usize,
    /// Client frames sent (Hellos not counted).
    pub frames_sent: u64,
    /// Client frames not sent: their session had ended, or the session refused them.
    pub frames_not_sent: u64,
    /// The comparison's counts.
    pub tally: Tally,
    /// Round trips from an operation to its Response, and from a Data frame to its echo, in
    /// microseconds.
    pub latency_us: Histogram<u64>,
    /// The differences found, each with the captured client's address.
    pub differences: Vec<(SocketAddr, Carrier, Difference)>,
    /// How long the replay took.
    pub elapsed: Duration,
}

impl Report {
    /// Whether the server answered exactly as captured.
    pub fn is_clean(&self) -> bool {
        let t = &self.tally;
        t.mismatched == 0
            && t.missing == 0
            && t.unexpected == 0
            && self.frames_not_sent == 0
            && self.sessions_not_opened == 0
    }
}

/// One re-created session.
#[derive(Debug)]
struct Live {
    link: Link,
    /// When each operation that asked for a Response was sent, by its id.
    sent_at: HashMap<u32, WallClock>,
    /// When each Data frame not yet echoed was sent, by channel, oldest first (the server echoes
    /// Data on its channel, in order).
    data_sent: HashMap<u8, VecDeque<WallClock>>,
}

impl Live {
    /// A frame went out at `now`: an operation awaiting its Response (`id`), or a Data frame
    /// awaiting its echo on `data_channel`; the time is kept for the latency report.
    fn note_sent(&mut self, id: Option<u32>, data_channel: Option<u8>, now: WallClock) {
        if let Some(id) = id {
            self.sent_at.insert(id, now);
        }
        if let Some(channel) = data_channel {
            let queue = self.data_sent.entry(channel).or_default();
            if queue.len() == MAX_DATA_AWAITED {
                queue.pop_front();
            }
            queue.push_back(now);
        }
    }
}

/// Data frames remembered per channel for their echo's latency; beyond this the oldest are
/// forgotten (a server that does not echo must not grow the replay without bound).
const MAX_DATA_AWAITED: usize = 1 << 16;

/// Runs `script` against `config.target`. `progress` is told (steps done, steps in all) as the
/// replay goes.
///
/// # Errors
/// The event loop cannot be set up (sockets of single sessions that fail count as their
/// answers missing).
///
/// # Panics
/// If the latency histogram's fixed bounds are rejected (they are valid).
pub fn replay(
    script: &Script,
    config: &ReplayConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> io::Result<Report> {
    let mut run = Run {
        script,
        config,
        epoch: WallClock::now(),
        poll: Poll::new()?,
        live: HashMap::new(),
        matcher: Matcher::new(script),
        scratch: vec![0u8; 64 * 1024],
        report: Report {
            sessions: script.sessions.len(),
            skipped_connections: script.skipped_connections,
            sessions_not_opened: 0,
            frames_sent: 0,
            frames_not_sent: 0,
            tally: Tally::default(),
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
            differences: Vec::new(),
            elapsed: Duration::ZERO,
        },
        next_step: 0,
        gate: Gate::new(script),
        dirty: HashSet::new(),
        gate_since: None,
    };
    run.go(progress)?;
    run.finish();
    let mut report = run.report;
    report.tally = run.matcher.tally();
    report.differences = run
        .matcher
        .differences()
        .iter()
        .map(|d| {
            let s = &script.sessions[d.session];
            (s.client, s.carrier, d.clone())
        })
        .collect();
    report.elapsed = run.epoch.elapsed();
    Ok(report)
}

struct Run<'a> {
    script: &'a Script,
    config: &'a ReplayConfig,
    epoch: WallClock,
    poll: Poll,
    live: HashMap<usize, Live>,
    matcher: Matcher<'a>,
    scratch: Vec<u8>,
    report: Report,
    /// The next step to take.
    next_step: usize,
    /// What each step waits for.
    gate: Gate,
    /// Sessions with frames queued this turn, to write once the turn's steps are taken.
    dirty: HashSet<usize>,
    /// Since when the next step has waited for earlier answers.
    gate_since: Option<WallClock>,
}

impl Run<'_> {
    fn t(&self, now: WallClock) -> Instant {
        Instant::from_micros(
            u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
                .unwrap_or(u64::MAX),
        )
    }

    fn wall(&self, t: Instant) -> WallClock {
        self.epoch + Duration::from_micros(t.as_micros())
    }

    fn go(&mut self, progress: &mut dyn FnMut(usize, usize)) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let total = self.script.steps.len();
        loop {
            let now = WallClock::now();
            let wake = self.take_steps(now);
            let mut dirty: Vec<usize> = self.dirty.drain().collect();
            dirty.sort_unstable();
            for session in dirty {
                self.drive(session, now);
            }
            progress(self.next_step, total);
            if self.next_step == total && self.gate.all_settled(&self.matcher) {
                return Ok(());
            }
            let mut deadline = wake;
            for live in self.live.values() {
                if let Some(t) = live.link.poll_timeout() {
                    let t = self.wall(t);
                    deadline = Some(deadline.map_or(t, |d| d.min(t)));
                }
            }
            let wait = deadline.map(|d| d.saturating_duration_since(WallClock::now()));
            match self.poll.poll(&mut events, wait) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = WallClock::now();
            let t = self.t(now);
            let mut due: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            due.extend(
                self.live
                    .iter()
                    .filter(|(_, l)| l.link.poll_timeout().is_some_and(|d| d <= t))
                    .map(|(&s, _)| s),
            );
            due.sort_unstable();
            due.dedup();
            for session in due {
                self.drive(session, now);
            }
        }
    }

    /// Takes every step that is due and allowed; returns when to look again.
    fn take_steps(&mut self, now: WallClock) -> Option<WallClock> {
        let steps = &self.script.steps;
        while self.next_step <= steps.len() {
            let at_end = self.next_step == steps.len();
            if !at_end {
                let step = &steps[self.next_step];
                if matches!(step.action, Action::Expect(_)) {
                    self.next_step += 1;
                    continue;
                }
                if let Pace::Speed(speed) = self.config.pace {
                    let due = self.epoch + step.time.div_f64(speed);
                    if due > now {
                        return Some(due);
                    }
                }
            }
            let open = if at_end {
                self.gate.all_settled(&self.matcher)
            } else {
                let session = steps[self.next_step].session;
                self.gate.open(&self.matcher, self.next_step, session)
            };
            if !open {
                let since = *self.gate_since.get_or_insert(now);
                let give_up_at = since + self.config.timeout;
                if now < give_up_at {
                    return Some(give_up_at);
                }
                let session = (!at_end).then(|| steps[self.next_step].session);
                for step in self.gate.blocking(&self.matcher, self.next_step, session) {
                    self.matcher.give_up(step);
                }
                continue;
            }
            self.gate_since = None;
            if at_end {
                return None;
            }
            let step = self.next_step;
            self.next_step += 1;
            self.take(step, now);
        }
        None
    }

    fn take(&mut self, step: usize, now: WallClock) {
        let script = self.script;
        let step = &script.steps[step];
        let session = step.session;
        let t = self.t(now);
        match &step.action {
            Action::Connect => self.connect(session, now),
            Action::Send(captured) => {
                let data_channel =
                    matches!(captured.body, FrameBody::Data(_)).then_some(captured.channel);
                // The rewrite never touches an operation's own id.
                let id = captured.operation_id();
                if self.send(session, captured, now) {
                    self.report.frames_sent += 1;
                    if let Some(live) = self.live.get_mut(&session) {
                        live.note_sent(id, data_channel, now);
                    }
                    // Written with the others of this turn (one write per session, not per frame).
                    self.dirty.insert(session);
                } else {
                    self.report.frames_not_sent += 1;
                }
            }
            Action::Close(reason) => {
                if let Some(live) = self.live.get_mut(&session) {
                    live.link.close(t, *reason, "");
                }
                self.dirty.insert(session);
            }
            Action::Vanish => self.end(session),
            Action::Expect(_) => {}
        }
    }

    /// Queues the captured frame, rewritten for the target, on `session`'s link; when its queue
    /// is full, writes what is queued first and tries once more. Whether it was queued.
    fn send(&mut self, session: usize, captured: &Frame, now: WallClock) -> bool {
        let t = self.t(now);
        let mut frame = captured.clone();
        self.matcher.rewrite(session, &mut frame);
        let Some(live) = self.live.get_mut(&session) else {
            return false;
        };
        match live.link.send(frame, t) {
            Ok(()) => true,
            Err(SendError::QueueFull) => {
                self.drive(session, now);
                let mut frame = captured.clone();
                self.matcher.rewrite(session, &mut frame);
                self.live
                    .get_mut(&session)
                    .is_some_and(|live| live.link.send(frame, t).is_ok())
            }
            Err(_) => false,
        }
    }

    fn connect(&mut self, session: usize, now: WallClock) {
        let scripted = &self.script.sessions[session];
        let udp = scripted.carrier == Carrier::Udp;
        let mut config = session_config(&scripted.hello);
        config.hello_options =
            self.matcher
                .hello_options(&scripted.hello, !udp, self.config.token.as_deref());
        if udp {
            config.seal_keys.clone_from(&self.config.seal_keys);
        }
        let nonce = mix(self.epoch.elapsed().as_nanos() as u64 ^ session as u64);
        let link = Link::open(self.config.target, udp, None, config, nonce, self.t(now));
        let registered = link.and_then(|mut link| {
            self.poll.registry().register(
                link.source(),
                Token(session),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(link)
        });
        if let Ok(link) = registered {
            self.live.insert(
                session,
                Live {
                    link,
                    sent_at: HashMap::new(),
                    data_sent: HashMap::new(),
                },
            );
            self.drive(session, now);
        } else {
            self.report.sessions_not_opened += 1;
            self.matcher.give_up_session(session);
        }
    }

    /// Lets `session`'s link do its I/O and timers, and hands what it yields to the matcher.
    fn drive(&mut self, session: usize, now: WallClock) {
        let t = self.t(now);
        let Some(live) = self.live.get_mut(&session) else {
            return;
        };
        // A socket error ends the session; what it still waited for is then missing.
        let mut ended = live.link.drive(t, &mut self.scratch).is_err();
        while let Some(event) = live.link.poll_event() {
            match event {
                Event::Connected {
                    session_token,
                    resumed,
                    missed,
                    ..
                } => self
                    .matcher
                    .connected(session, &session_token, resumed, missed),
                Event::Frame(frame) => {
                    let answered = self.matcher.received(session, &frame).is_some();
                    let sent = match &frame.body {
                        FrameBody::Response(r) if answered => live.sent_at.remove(&r.id),
                        FrameBody::Data(_) => live
                            .data_sent
                            .get_mut(&frame.channel)
                            .and_then(VecDeque::pop_front)
                            .filter(|_| answered),
                        _ => None,
                    };
                    if let Some(sent) = sent {
                        let us =
                            u64::try_from(now.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                        let _ = self.report.latency_us.record(us.max(1));
                    }
                }
                Event::Closed { reason, by, .. } => {
                    if by == Closer::Peer {
                        self.matcher.closed_by_server(session, reason);
                    }
                    ended = true;
                }
                _ => {}
            }
        }
        if ended || live.link.is_closed() {
            self.end(session);
        }
    }

    fn end(&mut self, session: usize) {
        if let Some(mut live) = self.live.remove(&session) {
            let _ = self.poll.registry().deregister(live.link.source());
        }
        self.matcher.give_up_session(session);
    }

    /// Closes what the capture left open, and waits (a little) for the closes to be answered.
    fn finish(&mut self) {
        let now = WallClock::now();
        let t = self.t(now);
        for live in self.live.values_mut() {
            live.link.close(t, Reason::NORMAL, "");
        }
        let deadline = now + Duration::from_secs(2);
        let mut events = Events::with_capacity(1024);
        let sessions: Vec<usize> = self.live.keys().copied().collect();
        for &s in &sessions {
            self.drive(s, now);
        }
        while !self.live.is_empty() {
            let now = WallClock::now();
            if now >= deadline {
                break;
            }
            let wait = Duration::from_millis(10).min(deadline - now);
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                break;
            }
            let sessions: Vec<usize> = self.live.keys().copied().collect();
            for s in sessions {
                self.drive(s, WallClock::now());
            }
        }
    }
}

/// The session configuration a captured Hello asked for: its channels and idle timeout.
fn session_config(hello: &Hello) -> SessionConfig {
    let mut config = SessionConfig {
        channels: vec![ChannelKind::ReliableOrdered],
        ..SessionConfig::default()
    };
    if let Some(kinds) = hello.options.channels() {
        config.channels.extend(kinds);
    }
    if hello.idle_timeout_ms > 0 {
        config.idle_timeout = Duration::from_millis(u64::from(hello.idle_timeout_ms));
    }
    config
}

/// A 64-bit mix (splitmix64's finaliser), for nonces that differ per session and run.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
