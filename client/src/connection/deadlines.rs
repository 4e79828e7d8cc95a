//! When a poll-driven client stops waiting for each request's Response: the requests still
//! waiting, and their deadlines in order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use framewire_protocol::session::Instant;

/// Requests waiting for their Response, and when this client gives up on each.
#[derive(Debug, Default)]
pub(super) struct RequestDeadlines {
    waiting: HashSet<u32>,
    /// By deadline; an answered request's entry stays until it passes (or a prune).
    by_deadline: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl RequestDeadlines {
    /// Request `id` waits until `at`.
    pub(super) fn start(&mut self, id: u32, at: Instant) {
        self.waiting.insert(id);
        self.by_deadline.push(Reverse((at, id)));
        if self.by_deadline.len() > 2 * self.waiting.len() + 1024 {
            // Answered requests leave their deadline behind until it passes: drop them, so the
            // deadlines held stay in proportion to the requests waiting.
            let waiting = &self.waiting;
            self.by_deadline
                .retain(|Reverse((_, id))| waiting.contains(id));
        }
    }

    /// Request `id` is answered (or will never be sent): no longer waited for.
    pub(super) fn end(&mut self, id: u32) {
        self.waiting.remove(&id);
    }

    /// The next deadline held.
    pub(super) fn next(&self) -> Option<Instant> {
        self.by_deadline.peek().map(|Reverse((at, _))| *at)
    }

    /// The next request still waiting whose deadline is `t` or before, taken out.
    pub(super) fn pop_expired(&mut self, t: Instant) -> Option<u32> {
        while let Some(&Reverse((at, id))) = self.by_deadline.peek() {
            if at > t {
                return None;
            }
            self.by_deadline.pop();
            if self.waiting.remove(&id) {
                return Some(id);
            }
        }
        None
    }
}
