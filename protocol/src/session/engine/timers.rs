//! The session's timers: one next wake-up, and what happens when it comes.

use super::super::event::{Closer, Event};
use super::super::time::Instant;
use super::{Session, State};
use crate::wire::{Reason, Text};

impl Session {
    /// The next instant at which [`Session::handle_timeout`] must be called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match &self.state {
            State::Closed => return None,
            State::Connecting(c) => return Some(c.next_hello.min(c.deadline)),
            State::Closing { deadline } | State::Draining { deadline } => consider(Some(*deadline)),
            State::Established => {
                consider(Some(
                    self.last_ack_eliciting_sent + self.config.heartbeat_interval,
                ));
            }
        }
        consider(Some(self.last_received + self.idle_timeout()));
        if self.received.ack_owed() {
            consider(self.received.ack_deadline());
        }
        consider(self.loss_time);
        if self.probes_allowed() && self.sent.has_ack_eliciting_in_flight() {
            consider(Some(self.last_ack_eliciting_sent + self.backed_off_rto()));
        }
        consider(self.inbox.next_expiry());
        next
    }

    /// Runs the timers due at `now`: idle timeout, loss detection, retransmission timeout,
    /// heartbeat, close deadlines and reassembly expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.events.release_if_empty();
        match &self.state {
            State::Closed => return,
            State::Connecting(c) => {
                if now >= c.deadline {
                    self.events.push_back(Event::Closed {
                        reason: Reason::HANDSHAKE_TIMEOUT,
                        message: Text::default(),
                        by: Closer::Local,
                    });
                    self.shut();
                }
                return;
            }
            _ => {}
        }
        if now >= self.last_received + self.idle_timeout() {
            if self.state == State::Established {
                self.events.push_back(Event::Closed {
                    reason: Reason::IDLE_TIMEOUT,
                    message: Text::default(),
                    by: Closer::Local,
                });
            } else if matches!(self.state, State::Closing { .. }) {
                self.finish_close(Closer::Local);
            }
            self.shut();
            return;
        }
        match self.state {
            State::Closing { deadline } if now >= deadline => {
                self.finish_close(Closer::Local);
                return;
            }
            State::Draining { deadline } if now >= deadline => {
                self.shut();
                return;
            }
            _ => {}
        }
        if self.loss_time.is_some_and(|t| t <= now) {
            self.detect_lost(now);
        }
        if self.probes_allowed()
            && self.sent.has_ack_eliciting_in_flight()
            && now >= self.last_ack_eliciting_sent + self.backed_off_rto()
        {
            // A retransmission timeout: probe with the oldest unacknowledged data, or a Ping
            // (RFC 9002 section 6.2.4). The probe does not wait for the congestion window.
            self.stats.rto_fired += 1;
            self.pto_count += 1;
            match self.state {
                State::Established => {
                    let items = self.sent.oldest_items(1);
                    self.requeue(&items);
                    // Every timeout sends something the peer must acknowledge, or the timer
                    // would stay due.
                    if !self.outbox.has_data() {
                        self.ping_pending = true;
                    }
                }
                State::Closing { .. } => self.close_pending = true,
                State::Draining { .. } | State::Closed | State::Connecting(_) => {}
            }
            self.probes = 1;
            // The probe's own timer starts when it is sent.
        }
        if self.state == State::Established
            && now >= self.last_ack_eliciting_sent + self.config.heartbeat_interval
        {
            self.ping_pending = true;
            self.sent.release_spares();
        }
        self.stats.reassembly_expired += self.inbox.expire(now) as u64;
    }
}

#[cfg(test)]
mod tests {
    use core::net::SocketAddr;
    use core::time::Duration;

    use bytes::Bytes;

    use crate::session::{Instant, Session, SessionConfig};
    use crate::wire::{Data, Frame};

    fn pump(from: &mut Session, to: &mut Session, at: SocketAddr, now: Instant) {
        let mut buf = [0u8; 2048];
        while let Some(t) = from.poll_transmit(now, &mut buf) {
            to.handle_datagram(now, at, Bytes::copy_from_slice(&buf[..t.len]));
        }
    }

    #[test]
    fn a_busy_session_keeps_spare_item_lists_and_a_quiet_one_drops_them_at_its_heartbeat() {
        let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let config = SessionConfig {
            heartbeat_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            ..SessionConfig::default()
        };
        let mut a = Session::established(config.clone(), 1, addr_b, Instant::ZERO);
        let mut b = Session::established(config, 1, addr_a, Instant::ZERO);
        let mut now = Instant::ZERO;
        for _ in 0..4 {
            now += Duration::from_millis(5);
            for _ in 0..40 {
                let payload = Bytes::from_static(&[7; 64]);
                a.send(Frame::new(Data { payload })).unwrap();
            }
            pump(&mut a, &mut b, addr_a, now);
            now += Duration::from_millis(60);
            b.handle_timeout(now);
            pump(&mut b, &mut a, addr_b, now);
            while b.poll_event().is_some() {}
        }
        assert_eq!(a.stats().queued_bytes, 0, "everything was acknowledged");
        assert!(
            a.sent.holds_spares(),
            "acknowledged packets' lists are kept"
        );
        let heartbeat = a.poll_timeout().expect("the heartbeat is armed");
        a.handle_timeout(heartbeat);
        assert!(!a.sent.holds_spares(), "a quiet session holds none");
    }
}
