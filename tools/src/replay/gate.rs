//! When a replay step may be taken: once the answers it waits for have come (or been given up
//! on). A step waits for every earlier expectation of its own session, and for every earlier
//! expectation of the other sessions except Data echoes, which only their sender sees.

use framewire_protocol::wire::FrameBody;

use super::matcher::{Matcher, Outcome};
use super::script::{Action, Script};

/// The answers a step waits for: every earlier expectation of its own session, and every earlier
/// expectation of the others except Data echoes (which only their sender sees).
#[derive(Debug)]
pub(super) struct Gate {
    /// Expectations that every later step waits for, in step order.
    shared: Vec<usize>,
    shared_next: usize,
    /// Each session's expectations, in step order.
    own: Vec<Vec<usize>>,
    own_next: Vec<usize>,
}

impl Gate {
    pub(super) fn new(script: &Script) -> Self {
        let mut shared = Vec::new();
        let mut own = vec![Vec::new(); script.sessions.len()];
        for (i, step) in script.steps.iter().enumerate() {
            if let Action::Expect(frame) = &step.action {
                if !matches!(frame.body, FrameBody::Data(_)) {
                    shared.push(i);
                }
                if let Some(list) = own.get_mut(step.session) {
                    list.push(i);
                }
            }
        }
        let own_next = vec![0; own.len()];
        Self {
            shared,
            shared_next: 0,
            own,
            own_next,
        }
    }

    /// Moves `next` past the settled expectations of `list`; whether none before `step` waits.
    fn settled_before(list: &[usize], next: &mut usize, matcher: &Matcher, step: usize) -> bool {
        while *next < list.len() && matcher.outcome(list[*next]) != Outcome::Waiting {
            *next += 1;
        }
        list.get(*next).is_none_or(|&first| first >= step)
    }

    /// Whether step `step` of `session` may be taken.
    pub(super) fn open(&mut self, matcher: &Matcher, step: usize, session: usize) -> bool {
        let shared = Self::settled_before(&self.shared, &mut self.shared_next, matcher, step);
        let own = match (self.own.get(session), self.own_next.get_mut(session)) {
            (Some(list), Some(next)) => Self::settled_before(list, next, matcher, step),
            _ => true,
        };
        shared && own
    }

    /// Whether every expectation is settled.
    pub(super) fn all_settled(&mut self, matcher: &Matcher) -> bool {
        (0..self.own.len())
            .all(|s| Self::settled_before(&self.own[s], &mut self.own_next[s], matcher, usize::MAX))
    }

    /// The expectations that hold step `step` of `session` (`None`: the end, which waits for
    /// all) and still wait, to give up on after the timeout.
    pub(super) fn blocking(
        &self,
        matcher: &Matcher,
        step: usize,
        session: Option<usize>,
    ) -> Vec<usize> {
        let lists: Vec<&Vec<usize>> = match session {
            Some(s) => std::iter::once(&self.shared)
                .chain(self.own.get(s))
                .collect(),
            None => self.own.iter().collect(),
        };
        let mut waiting: Vec<usize> = lists
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| i < step && matcher.outcome(i) == Outcome::Waiting)
            .collect();
        waiting.sort_unstable();
        waiting.dedup();
        waiting
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use framewire_protocol::wire::{Data, Frame, Hello, HelloOptions, Response, Status};

    use super::*;
    use crate::capture::Carrier;
    use crate::replay::script::{ScriptedSession, Step};

    fn step(session: usize, action: Action) -> Step {
        Step {
            time: Duration::ZERO,
            session,
            action,
        }
    }

    /// Session 0 sends and awaits `answer`; then session 1 sends, then session 0 sends again.
    fn script(answer: Frame) -> Script {
        let session = ScriptedSession {
            carrier: Carrier::Tcp,
            client: "127.0.0.1:1".parse().unwrap(),
            hello: Hello::new(0, HelloOptions::new()),
        };
        let data = Frame::new(Data {
            payload: Bytes::from_static(b"x"),
        });
        Script {
            sessions: vec![session.clone(), session],
            steps: vec![
                step(0, Action::Send(data.clone())),
                step(0, Action::Expect(answer)),
                step(1, Action::Send(data.clone())),
                step(0, Action::Send(data)),
            ],
            skipped_connections: 0,
        }
    }

    #[test]
    fn another_sessions_data_echo_holds_nobody_else() {
        let script = script(Frame::new(Data {
            payload: Bytes::from_static(b"x"),
        }));
        let matcher = Matcher::new(&script);
        let mut gate = Gate::new(&script);
        assert!(
            gate.open(&matcher, 2, 1),
            "session 1 does not wait for 0's echo"
        );
        assert!(
            !gate.open(&matcher, 3, 0),
            "session 0 waits for its own echo"
        );
        assert_eq!(gate.blocking(&matcher, 3, Some(0)), [1]);
        assert!(gate.blocking(&matcher, 2, Some(1)).is_empty());
        assert!(!gate.all_settled(&matcher));
    }

    #[test]
    fn another_sessions_response_holds_every_later_step() {
        let script = script(Frame::new(Response {
            id: 1,
            status: Status::OK,
            payload: Bytes::new(),
        }));
        let mut matcher = Matcher::new(&script);
        let mut gate = Gate::new(&script);
        assert!(
            !gate.open(&matcher, 2, 1),
            "a Response may be what session 1 depends on"
        );
        assert_eq!(gate.blocking(&matcher, 2, Some(1)), [1]);
        matcher.give_up(1);
        assert!(gate.open(&matcher, 2, 1));
        assert!(gate.open(&matcher, 3, 0));
        assert!(gate.all_settled(&matcher));
    }
}
