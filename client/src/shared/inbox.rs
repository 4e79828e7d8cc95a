//! A subscription's (or a service's) inbox: bounded, and when full the oldest item goes (the
//! newest state wins, as a game or a telemetry dashboard wants), counted, so a slow reader never
//! stalls the connection or the other subscriptions.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State<T> {
    messages: VecDeque<T>,
    dropped: u64,
    /// No more will come: the subscription ended, or the connection is over for good.
    closed: bool,
    /// The task polling the inbox as a stream, to wake.
    #[cfg(feature = "tokio")]
    waker: Option<std::task::Waker>,
}

/// Items waiting for their reader.
#[derive(Debug)]
pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    /// Wakes an async reader (it keeps a permit when none waits, so no wake-up is lost).
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl<T> Inbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                messages: VecDeque::new(),
                dropped: 0,
                closed: false,
                #[cfg(feature = "tokio")]
                waker: None,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            #[cfg(feature = "tokio")]
            notify: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A reader that panicked left the queue as it was: keep using it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an item; at capacity the oldest goes, counted, and is returned.
    pub(crate) fn push(&self, m: T) -> Option<T> {
        let mut s = self.lock();
        let mut dropped = None;
        if s.messages.len() >= self.capacity {
            dropped = s.messages.pop_front();
            s.dropped += 1;
        }
        s.messages.push_back(m);
        #[cfg(feature = "tokio")]
        let waker = s.waker.take();
        drop(s);
        #[cfg(feature = "tokio")]
        if let Some(w) = waker {
            w.wake();
        }
        self.ready.notify_one();
        #[cfg(feature = "tokio")]
        self.notify.notify_one();
        dropped
    }

    /// No more messages will come; readers are woken.
    pub(crate) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        #[cfg(feature = "tokio")]
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        drop(s);
        self.ready.notify_all();
        #[cfg(feature = "tokio")]
        {
            self.notify.notify_waiters();
            self.notify.notify_one();
        }
    }

    /// The next item if there is one, `None` once none will come, or pending (the task is woken
    /// by the next push or the close): the inbox as a `Stream`.
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_next(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        let mut s = self.lock();
        if let Some(m) = s.messages.pop_front() {
            return std::task::Poll::Ready(Some(m));
        }
        if s.closed {
            return std::task::Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }

    /// The next message, waiting as long as it takes; `None` once none will come.
    #[cfg(feature = "tokio")]
    pub(crate) async fn next_async(&self) -> Option<T> {
        loop {
            {
                let mut s = self.lock();
                if let Some(m) = s.messages.pop_front() {
                    return Some(m);
                }
                if s.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next message, waiting at most `timeout`; `None` if none came, or none will.
    pub(crate) fn next(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(m) = s.messages.pop_front() {
                return Some(m);
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Message;
    use bytes::Bytes;
    use framewire_protocol::wire::Text;

    fn m(n: u8) -> Message {
        Message {
            topic: Text::from("t"),
            payload: Bytes::from(vec![n]),
            retained: false,
            channel: 0,
        }
    }

    #[test]
    fn a_full_inbox_drops_its_oldest_and_counts_it() {
        let inbox = Inbox::new(2);
        for n in 1..=5 {
            let dropped = inbox.push(m(n));
            assert_eq!(
                dropped.map(|d| d.payload[0]),
                n.checked_sub(2).filter(|&d| d > 0)
            );
        }
        assert_eq!(inbox.dropped(), 3);
        let got: Vec<u8> = std::iter::from_fn(|| inbox.next(Duration::ZERO))
            .map(|m| m.payload[0])
            .collect();
        assert_eq!(got, [4, 5]);
    }

    #[test]
    fn a_reader_is_woken_by_a_message_or_the_end() {
        let inbox = std::sync::Arc::new(Inbox::new(8));
        let writer = std::sync::Arc::clone(&inbox);
        let t = std::thread::spawn(move || {
            let _ = writer.push(m(7));
            writer.close();
        });
        assert_eq!(inbox.next(Duration::from_secs(10)).unwrap().payload[0], 7);
        assert!(inbox.next(Duration::from_secs(10)).is_none(), "closed");
        t.join().unwrap();
    }
}
