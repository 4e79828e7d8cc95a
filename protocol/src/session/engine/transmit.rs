//! Building the datagrams to send: control frames, the Close, retransmissions and new messages,
//! and the redundant copy of a lone datagram.

use super::super::event::Transmit;
use super::super::outbox::Item;
use super::super::sent::SentPacket;
use super::super::time::Instant;
use super::{Session, State};
use crate::wire::{Frame, PacketHeader, Ping};
use alloc::vec::Vec;

impl Session {
    /// Writes the next datagram to send into `buf`, if there is one. `buf` must hold at least the
    /// configured datagram size.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match self.state {
            State::Closed => return None,
            State::Connecting(_) => return self.transmit_hello(now, buf),
            State::Established => {
                if let Some(t) = self.transmit_path_check(now, buf) {
                    return Some(t);
                }
                if let Some(t) = self.transmit_redundant(now, buf) {
                    return Some(t);
                }
            }
            _ => {}
        }
        let probing = self.probes > 0;
        let size = self.room(buf);
        let cwnd_open = self.sent.bytes_in_flight() + size <= self.cc.window() || probing;
        let want_data = cwnd_open && self.outbox.has_data();
        let want_frames =
            !self.control.is_empty() || self.close_pending || self.ping_pending || want_data;
        if !want_frames && !self.received.ack_due(now) {
            return None;
        }
        let pn = self.next_pn;
        let ack = if self.received.ack_wanted() {
            self.ack_block(now)
        } else {
            None
        };
        let header = PacketHeader {
            connection_id: self.connection_id,
            packet_number: pn,
            ack,
        };
        let mut builder = self.start_datagram(&mut buf[..size], &header)?;
        let mut items = self.sent.item_list();
        while let Some(frame) = self.control.front() {
            if !builder.push(frame).unwrap_or(false) {
                break;
            }
            self.control.pop_front();
        }
        if self.close_pending
            && let Some(close) = &self.close_frame
            && builder.push(&Frame::new(close.clone())).unwrap_or(false)
        {
            self.close_pending = false;
            items.push(Item::Close);
        }
        if self.state == State::Established && cwnd_open {
            let max_body = self.config.max_frame_body();
            self.outbox.fill(&mut builder, &mut items, max_body);
        }
        if self.ping_pending && builder.frame_count() == 0 {
            let ping = Frame::new(Ping {
                timestamp_us: now.as_micros(),
            });
            if builder.push(&ping).unwrap_or(false) {
                self.ping_pending = false;
            }
        } else if builder.frame_count() > 0 {
            // Anything ack-eliciting serves as the heartbeat.
            self.ping_pending = false;
        }
        let ack_eliciting = builder.frame_count() > 0;
        let lone = ack_eliciting && self.is_lone(&items);
        let ack_now = ack_eliciting && self.is_tail(lone, probing);
        if ack_now {
            builder.ask_ack_now();
        }
        let plain = builder.finish().ok()?;
        // A datagram that cannot be sealed is booked as sent and lost: what it carried is sent
        // again as after any loss.
        let sealed = self.seal_out(buf, plain);
        let len = sealed.unwrap_or(plain);
        self.note_echo(&buf[..len]);
        if lone {
            self.consider_copy(len, &items);
        }
        self.record_sent(now, len, header.ack.is_some(), ack_eliciting, items);
        if ack_eliciting {
            self.tail_acked_now = ack_now;
        }
        sealed.map(|len| Transmit {
            destination: self.remote,
            len,
        })
    }

    /// The ack block for a datagram sent now: a compact one reports only the recent packets.
    fn ack_block(&self, now: Instant) -> Option<crate::wire::AckBlock> {
        if self.is_compact() {
            self.received.recent_ack_block(now)
        } else {
            self.received.ack_block(now)
        }
    }

    /// Sends the redundant copy of a lone datagram's reliable messages, in a datagram of its own.
    pub(super) fn transmit_redundant(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let items = self.redundant.take()?;
        let pn = self.next_pn;
        // The copy repeats the acknowledgements the original carried: with independent delays it
        // may arrive first, and without them the peer would take its own messages for unacknowledged
        // (and stop treating its next one as lone).
        let ack = self.ack_block(now);
        let header = PacketHeader {
            connection_id: self.connection_id,
            packet_number: pn,
            ack,
        };
        let size = self.room(buf);
        let mut b = self.start_datagram(&mut buf[..size], &header)?;
        let written = self.outbox.write_copies(&mut b, &items);
        if written.is_empty() {
            return None;
        }
        // The copy of a lone datagram is as urgent as the original.
        b.ask_ack_now();
        let plain = b.finish().ok()?;
        let sealed = self.seal_out(buf, plain);
        let len = sealed.unwrap_or(plain);
        self.note_echo(&buf[..len]);
        self.stats.redundant_copies += 1;
        self.record_sent(now, len, header.ack.is_some(), true, written);
        sealed.map(|len| Transmit {
            destination: self.remote,
            len,
        })
    }

    /// Whether the datagram just filled with `items` is lone: it carries every reliable item
    /// still unacknowledged and nothing waits to be sent after it (copies of messages already
    /// acknowledged may still be in flight; they need nothing).
    fn is_lone(&self, items: &[Item]) -> bool {
        !items.is_empty()
            && !self.outbox.has_data()
            && self.outbox.unacked_messages() <= items.len()
    }

    /// Whether a datagram is the tail of what there is to deliver: `lone`, or a timeout's probe
    /// with nothing waiting after it, and no control frame left behind. Only a timeout would
    /// recover its loss, so it asks the peer not to hold its ack (`ACK_NOW`), and its timeout need
    /// not allow for that delay. A datagram in a stream, or one of unreliable messages only, does
    /// not ask: its ack may wait.
    fn is_tail(&self, lone: bool, probing: bool) -> bool {
        self.control.is_empty() && (lone || (probing && !self.outbox.has_data()))
    }

    /// The datagram just written is lone: if it is also small and carries whole messages only,
    /// schedules a copy of them (see `SessionConfig::lone_redundancy_max`).
    fn consider_copy(&mut self, len: usize, items: &[Item]) {
        if len <= self.config.lone_redundancy_max
            && items.iter().all(|i| matches!(i, Item::Message(_)))
        {
            self.redundant = Some(items.to_vec());
        }
    }

    /// A client remembers what identifies the datagram just written (its packet number and CRC),
    /// to recognise a server's Reset answering it.
    fn note_echo(&mut self, datagram: &[u8]) {
        if let Some(echoes) = self.echoes.as_mut()
            && let Some(&[a, b, c, d]) = datagram.get(datagram.len().saturating_sub(4)..)
        {
            // A Reset echoes the packet number as the datagram carried it: a compact one's low
            // bits (docs/PROTOCOL.md section 4.11).
            let pn = crate::wire::compact::wire_packet_number(datagram).unwrap_or(self.next_pn);
            echoes.note(pn, u32::from_be_bytes([a, b, c, d]));
        }
    }

    /// Books a datagram just written: its packet number, the counters, the ack it carried, and
    /// (if it carries frames the peer must acknowledge) its place among the packets in flight.
    pub(super) fn record_sent(
        &mut self,
        now: Instant,
        len: usize,
        carried_ack: bool,
        ack_eliciting: bool,
        items: Vec<Item>,
    ) {
        let pn = self.next_pn;
        if carried_ack {
            self.received.on_ack_sent();
        }
        self.next_pn = pn.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        if ack_eliciting {
            self.last_ack_eliciting_sent = now;
            self.probes = self.probes.saturating_sub(1);
        }
        self.sent.on_sent(
            pn,
            SentPacket {
                time: now,
                size: if ack_eliciting { len } else { 0 },
                ack_eliciting,
                items,
            },
        );
    }
}
