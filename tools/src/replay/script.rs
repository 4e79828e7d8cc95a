//! What a replay does, read out of an [`Inspection`]: for each client session captured from its
//! Hello, the frames the client sent (to send again) and the frames the server answered with (to
//! expect), in capture order. Session machinery is left out: pings, pongs, acks, challenges and
//! close acknowledgements are the new session's own business. Over UDP, frames the session resent
//! are taken once (by channel and sequence number) and fragments are joined into their message.
//! A server's Close `GOING_AWAY` (it was shutting down) is not expected of the target.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_protocol::wire::{Frame, FrameBody, Hello, Reason, option};

use crate::capture::{Carrier, Connection, Direction, Inspection, Record, Seen};

/// The most pieces a message may claim: 64 KiB messages in pieces of at least 16 bytes. A piece
/// claiming more is ignored, as a receiving session would refuse it.
const MAX_PIECES: usize = 4096;

/// Fragmented messages held incomplete at once over the whole capture; pieces of a further one
/// are ignored, so a capture cannot make the script hold memory without bound.
const MAX_INCOMPLETE: usize = 1024;

/// Pieces of one fragmented message held while its other pieces are awaited.
#[derive(Debug, Default)]
struct Pieces {
    parts: Vec<Option<Bytes>>,
    have: usize,
}

/// One client session to re-create.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedSession {
    /// TCP or UDP.
    pub carrier: Carrier,
    /// The captured client's address (for reports).
    pub client: SocketAddr,
    /// The Hello the client sent first (its options carry the resume token, will, name, ...).
    pub hello: Hello,
}

/// What happens at one point of the replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open the session: connect and send the Hello.
    Connect,
    /// Send this frame.
    Send(Frame),
    /// The client closed with this reason.
    Close(Reason),
    /// The client's TCP connection ended without a Close (the process vanished): the session is
    /// dropped the same way, and the server keeps it for a resume.
    Vanish,
    /// The server answered with this frame (Welcome and Reject included, Close for a server
    /// that ended the session).
    Expect(Frame),
}

/// One step: when it happened in the capture, in which session, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Capture time, from the capture's first packet.
    pub time: Duration,
    /// Index into [`Script::sessions`].
    pub session: usize,
    /// What.
    pub action: Action,
}

/// Everything a replay of one capture does, in capture order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// The sessions, in the order their Hellos were captured.
    pub sessions: Vec<ScriptedSession>,
    /// The steps, in capture order.
    pub steps: Vec<Step>,
    /// Captured connections that cannot be replayed (their Hello was not captured).
    pub skipped_connections: usize,
}

impl Script {
    /// Reads the replay out of a whole inspection.
    pub fn from_inspection(inspection: &Inspection) -> Self {
        let mut builder = ScriptBuilder::default();
        for record in &inspection.records {
            builder.record(record, &inspection.connections);
        }
        builder.finish(inspection.connections.len())
    }

    /// How many frames the replay sends (Hellos not counted).
    pub fn frames_to_send(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Send(_)))
            .count()
    }

    /// How many server frames the replay expects.
    pub fn frames_expected(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Expect(_)))
            .count()
    }
}

/// Builds a [`Script`] from an inspection's records as they are made, so a long capture need not
/// be held whole: feed it every record in order, then [`ScriptBuilder::finish`].
#[derive(Debug, Default)]
pub struct ScriptBuilder {
    script: Script,
    /// The first record's time: steps are timed from it.
    start: Option<Duration>,
    /// Captured connection → the session its frames belong to now.
    current: HashMap<usize, usize>,
    /// Sessions the client closed or dropped.
    ended: HashSet<usize>,
    /// Sessions whose handshake was answered (a later Hello without a cookie starts another).
    answered: HashSet<usize>,
    /// Over UDP: (session, direction, channel, seq) already taken.
    seen: HashSet<(usize, bool, u8, u32)>,
    /// Over UDP: fragments under reassembly, by (session, direction, message id).
    fragments: HashMap<(usize, bool, u32), Pieces>,
}

impl ScriptBuilder {
    /// Takes the next record of the inspection; `connections` are the inspection's connections
    /// so far (the record names one by index).
    pub fn record(&mut self, record: &Record, connections: &[Connection]) {
        let Some(connection) = connections.get(record.connection) else {
            return;
        };
        let start = *self.start.get_or_insert(record.time);
        let time = record.time.saturating_sub(start);
        match &record.what {
            Seen::Frame { frame, .. } => self.frame(
                record.connection,
                connection.carrier,
                connection.client,
                record.direction,
                time,
                frame,
            ),
            Seen::End if record.direction == Direction::ToServer => {
                self.end(record.connection, time);
            }
            _ => {}
        }
    }

    /// The script, once every record is in; `connections` is how many the inspection found.
    pub fn finish(mut self, connections: usize) -> Script {
        let opened: HashSet<usize> = self.current.keys().copied().collect();
        self.script.skipped_connections = connections.saturating_sub(opened.len());
        self.script
    }

    fn frame(
        &mut self,
        connection: usize,
        carrier: Carrier,
        client: SocketAddr,
        direction: Direction,
        time: Duration,
        frame: &Frame,
    ) {
        let to_server = direction == Direction::ToServer;
        if let FrameBody::Hello(hello) = &frame.body {
            if !to_server {
                return;
            }
            let again = self.current.get(&connection).copied();
            let echo = hello.options.get(option::COOKIE).is_some();
            match again {
                Some(s) if echo || !self.answered.contains(&s) => return,
                _ => {}
            }
            let session = self.script.sessions.len();
            self.script.sessions.push(ScriptedSession {
                carrier,
                client,
                hello: hello.clone(),
            });
            self.current.insert(connection, session);
            self.push(time, session, Action::Connect);
            return;
        }
        let Some(&session) = self.current.get(&connection) else {
            return;
        };
        if carrier == Carrier::Udp {
            if let Some(seq) = frame.seq
                && !self.seen.insert((session, to_server, frame.channel, seq))
            {
                return;
            }
            if let FrameBody::Fragment(f) = &frame.body {
                if let Some(whole) = self.join(session, to_server, f) {
                    self.take(session, to_server, time, &whole);
                }
                return;
            }
        }
        self.take(session, to_server, time, frame);
    }

    /// Files a frame of `session` as a step, or leaves it to the new session's machinery.
    fn take(&mut self, session: usize, to_server: bool, time: Duration, frame: &Frame) {
        let action = match (&frame.body, to_server) {
            (
                FrameBody::Challenge(_)
                | FrameBody::Ping(_)
                | FrameBody::Pong(_)
                | FrameBody::Ack(_)
                | FrameBody::CloseAck(_)
                | FrameBody::Fragment(_),
                _,
            )
            | (FrameBody::Hello(_) | FrameBody::Welcome(_) | FrameBody::Reject(_), true) => return,
            (FrameBody::Welcome(_) | FrameBody::Reject(_), false) => {
                if !self.answered.insert(session) {
                    return;
                }
                Action::Expect(frame.clone())
            }
            // The captured server was shutting down; a target that is not has no cause to.
            (FrameBody::Close(c), false) if c.reason == Reason::GOING_AWAY => return,
            (FrameBody::Close(c), true) => {
                self.ended.insert(session);
                Action::Close(c.reason)
            }
            (_, true) => Action::Send(frame.clone()),
            (_, false) => Action::Expect(frame.clone()),
        };
        self.push(time, session, action);
    }

    /// The client's side of a TCP connection ended: without a Close before it, it vanished.
    fn end(&mut self, connection: usize, time: Duration) {
        if let Some(&session) = self.current.get(&connection)
            && self.ended.insert(session)
        {
            self.push(time, session, Action::Vanish);
        }
    }

    fn push(&mut self, time: Duration, session: usize, action: Action) {
        self.script.steps.push(Step {
            time,
            session,
            action,
        });
    }

    /// Adds a piece; the whole frame once every piece is in (a message that does not parse is
    /// dropped, as the receiving session would).
    fn join(
        &mut self,
        session: usize,
        to_server: bool,
        f: &framewire_protocol::wire::Fragment,
    ) -> Option<Frame> {
        let key = (session, to_server, f.message_id);
        let count = usize::from(f.count);
        let index = usize::from(f.index);
        if count > MAX_PIECES
            || (!self.fragments.contains_key(&key) && self.fragments.len() >= MAX_INCOMPLETE)
        {
            return None;
        }
        let pieces = self.fragments.entry(key).or_default();
        if pieces.parts.len() != count {
            // A new message under this id (or the first piece): start over.
            pieces.parts = vec![None; count];
            pieces.have = 0;
        }
        let slot = pieces.parts.get_mut(index)?;
        if slot.is_none() {
            *slot = Some(f.data.clone());
            pieces.have += 1;
        }
        if pieces.have < count {
            return None;
        }
        let pieces = self.fragments.remove(&key)?;
        let mut body = BytesMut::new();
        for part in pieces.parts.into_iter().flatten() {
            body.extend_from_slice(&part);
        }
        Frame::parse(body.freeze()).ok()
    }
}
