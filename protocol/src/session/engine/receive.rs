//! Datagrams from the peer: acknowledgements, loss detection, and the frames they carry.

use super::super::event::{Closer, Event, Oversized};
use super::super::inbox::{Arrival, Disposition};
use super::super::outbox::Item;
use super::super::time::Instant;
use super::echo::echo_or_hand;
use super::{Session, State};
use crate::seal::{OpenError, is_sealed};
use crate::wire::peek_connection_id;
use crate::wire::{
    CloseAck, Datagram, ErrorFrame, FRAME_LEN_OVERHEAD, Frame, FrameBody, FrameKind, FramePart,
    Pong, Reason, Reset, SEQ_FLAG, SEQ_LEN, Text,
};
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::SocketAddr;
use core::time::Duration;

impl Session {
    /// Takes a datagram received from `from`. Datagrams that fail any check are dropped and
    /// counted; a peer's bad datagram never ends a session (anyone can spoof one).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        if self.state == State::Closed {
            return;
        }
        if matches!(self.state, State::Connecting(_)) {
            self.handle_handshake(now, from, datagram);
            return;
        }
        let len = datagram.len();
        let Some(d) = self.parse_incoming(datagram) else {
            return;
        };
        if d.header.connection_id != self.connection_id {
            self.stats.packets_dropped += 1;
            return;
        }
        if let Some(reset) = lone_reset(&d) {
            // Outside the packet numbers: a server that lost the session numbers nothing.
            self.on_reset(reset);
            return;
        }
        let ack_eliciting = d.frame_parts().next().is_some();
        if !self
            .received
            .on_packet(d.header.packet_number, now, ack_eliciting, d.ack_now())
        {
            self.stats.packets_dropped += 1;
            return;
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += len as u64;
        self.last_received = now;
        if from != self.remote {
            self.on_new_path(from, len);
        }
        if let Some(ack) = d.header.ack {
            self.on_ack(&ack, now);
        }
        for part in d.frame_parts() {
            // A kind this side does not know is told by its first byte, before any parsing: an
            // ignorable one is skipped, a critical one refused in its channel's order. (A frame
            // that shares a header, version 3, is put together whole only for these refusals.)
            let compact = d.is_compact();
            match part.kind() {
                Some(k) if FrameKind::from_u8(k).is_none() => {
                    if !FrameKind::is_ignorable(k) {
                        let body = part.into_whole();
                        let body = if compact { self.widen_seq(&body) } else { body };
                        self.on_unknown_kind(&body, k);
                    }
                    continue;
                }
                _ => {}
            }
            if let Some(len) = self.oversized_len(&part, compact) {
                let body = part.into_whole();
                let body = if compact { self.widen_seq(&body) } else { body };
                self.on_oversized(body.get(2).copied().unwrap_or(0), &body, len);
                continue;
            }
            let parsed = if compact {
                Frame::parse_compact_part(part, |channel, low| self.inbox.restore_seq(channel, low))
            } else {
                Frame::parse(part.into_whole())
            };
            match parsed {
                Ok(frame) => self.on_frame(frame, now, from),
                Err(_) => self.stats.refused += 1,
            }
        }
    }

    /// A datagram from the peer, checked and parsed: a sealed session's opened first, after the
    /// cheap checks (docs/PROTOCOL.md section 2.3), and not checksummed again (its tag proved it
    /// whole). `None`: dropped and counted. A plain datagram reaches a sealed session only as a
    /// lone Reset (a restarted server has lost the keys; the Reset proves itself by what it
    /// echoes).
    fn parse_incoming(&mut self, datagram: Bytes) -> Option<Datagram> {
        let context = crate::wire::CompactContext {
            largest_received: self.received.largest(),
            largest_sent: self.next_pn.wrapping_sub(1),
        };
        let compact = self.is_compact();
        let refused = match self.sealer.as_mut() {
            None if compact && crate::wire::is_compact(&datagram) => {
                match Datagram::parse_compact_or_reset(datagram, &context) {
                    Ok(d) => return Some(d),
                    Err(_) => Some(OpenError::Malformed),
                }
            }
            // Of the version-1 form, a compact session takes only a server's lone Reset (a
            // server that lost the session does not know its version).
            None if compact => match plain_reset(datagram) {
                Some(d) => return Some(d),
                None => Some(OpenError::Malformed),
            },
            None => match Datagram::parse(datagram) {
                Ok(d) => return Some(d),
                Err(_) => Some(OpenError::Malformed),
            },
            // A server that lost the session answers in the clear, in the form it was sent.
            Some(_) if !is_sealed(&datagram) => match plain_reset(datagram) {
                Some(d) => return Some(d),
                None => Some(OpenError::Forged),
            },
            Some(_) if peek_connection_id(&datagram).ok() != Some(self.connection_id) => None,
            Some(sealer) => {
                // Opened where it lies: a datagram handed over whole owns its bytes, so this
                // copies nothing. Version 4's compact form (section 2.5) gives the number it
                // restored; a version-1 CRC covers the number as written, and needs no other.
                let mut plain = bytes::BytesMut::from(datagram);
                let opened = if compact {
                    sealer.open_compact_in_place(&mut plain)
                } else {
                    sealer.open_in_place(&mut plain).map(|n| (n, 0))
                };
                match opened {
                    Ok((n, pn)) => {
                        // The frames, then the CRC's place, unwritten (the tag proved it whole).
                        plain.truncate(n + crate::wire::CRC_LEN);
                        let plain = plain.freeze();
                        self.tap(true, &plain, pn);
                        let parsed = if compact {
                            Datagram::parse_compact_opened(plain, &context, pn)
                        } else {
                            Datagram::parse_opened(plain)
                        };
                        match parsed {
                            Ok(d) => return Some(d),
                            Err(_) => Some(OpenError::Malformed),
                        }
                    }
                    Err(e) => Some(e),
                }
            }
        };
        self.stats.packets_dropped += 1;
        match refused {
            Some(OpenError::Replayed) => self.stats.sealed_replayed += 1,
            Some(OpenError::Forged) => {
                self.stats.bad_datagrams += 1;
                self.stats.sealed_forged += 1;
            }
            Some(_) => self.stats.bad_datagrams += 1,
            // Another session's: dropped as a plain session drops it.
            None => {}
        }
        None
    }

    /// A server's Reset: if it echoes one of the datagrams this client sent lately, the server
    /// does not know the session (it restarted): the session ends at once with
    /// `UNKNOWN_SESSION`, and the application may connect again. Any other Reset is dropped.
    fn on_reset(&mut self, reset: Reset) {
        let ours = self
            .echoes
            .as_ref()
            .is_some_and(|e| e.contains(reset.packet_number, reset.crc));
        if !ours || !matches!(self.state, State::Established | State::Closing { .. }) {
            self.stats.packets_dropped += 1;
            return;
        }
        self.stats.packets_received += 1;
        if matches!(self.state, State::Closing { .. }) {
            // Our Close found no session to end: the close is done all the same.
            self.finish_close(Closer::Local);
            return;
        }
        self.events.push_back(Event::Closed {
            reason: Reason::UNKNOWN_SESSION,
            message: Text::from_static("the server does not know this session (Reset)"),
            by: Closer::Peer,
        });
        self.shut();
    }

    pub(super) fn on_ack(&mut self, ack: &crate::wire::AckBlock, now: Instant) {
        let result = self.sent.on_ack(ack, now);
        if let Some(sample) = result.rtt_sample {
            let delay = Duration::from_micros(u64::from(ack.delay_us)).min(self.max_ack_delay());
            self.rtt.update(sample, delay);
        }
        if !result.newly_acked.is_empty() {
            self.pto_count = 0;
        }
        if result.spurious_losses > 0 {
            self.stats.spurious_losses += u64::from(result.spurious_losses);
            self.cc.undo();
        }
        for packet in &result.newly_acked {
            self.cc
                .on_ack(packet.time, packet.size, now, self.rtt.smoothed());
            for &item in &packet.items {
                self.outbox.on_acked(item);
            }
        }
        self.sent.recycle_acked(result.newly_acked);
        self.detect_lost(now);
    }

    pub(super) fn detect_lost(&mut self, now: Instant) {
        let delay = self.sent.loss_delay(self.rtt.loss_rtt());
        let (lost, next) = self.sent.detect_lost(now, delay);
        self.loss_time = next;
        for packet in lost {
            self.stats.packets_lost += 1;
            self.cc.on_loss(packet.time, now, self.rtt.min());
            self.requeue(&packet.items);
        }
    }

    pub(super) fn requeue(&mut self, items: &[Item]) {
        for &item in items {
            if item == Item::Close {
                self.close_pending = self.close_frame.is_some();
            } else {
                self.outbox.on_lost(item);
            }
        }
    }

    pub(super) fn on_frame(&mut self, frame: Frame, now: Instant, from: SocketAddr) {
        let channel = frame.channel;
        match frame.body {
            FrameBody::Pong(p)
                if self
                    .path_check
                    .as_ref()
                    .is_some_and(|c| c.addr == from && c.token == p.timestamp_us) =>
            {
                // The new address echoed the token: it receives what is sent there.
                self.remote = from;
                self.path_check = None;
                self.stats.migrations += 1;
            }
            FrameBody::Ping(p) => self.control.push_back(Frame::new(Pong {
                timestamp_us: p.timestamp_us,
            })),
            FrameBody::Close(c) => {
                self.control.push_back(Frame::new(CloseAck));
                if matches!(self.state, State::Established | State::Closing { .. }) {
                    self.outbox.clear();
                    self.sent.clear();
                    self.close_frame = None;
                    self.close_pending = false;
                    self.events.push_back(Event::Closed {
                        reason: c.reason,
                        message: c.message,
                        by: Closer::Peer,
                    });
                    self.state = State::Draining {
                        deadline: now + self.rto() * 3,
                    };
                }
            }
            FrameBody::CloseAck(_) => {
                if matches!(self.state, State::Closing { .. }) {
                    self.finish_close(Closer::Local);
                }
            }
            FrameBody::Fragment(f) if f.count > self.inbox.max_fragments() => {
                // Refused unread for its size; its first piece tells what it was, and its place
                // in the channel is passed over so the channel does not wait for it for ever.
                if f.index == 0 {
                    let most = usize::from(f.count) * f.data.len() + FRAME_LEN_OVERHEAD;
                    self.on_oversized(channel, &f.data, most);
                } else {
                    self.stats.refused += 1;
                }
            }
            FrameBody::Fragment(f) => match self.inbox.on_fragment(channel, f, now) {
                Ok(Some(body)) => {
                    // A reassembled body is of the version-1 form in either (section 2.4).
                    let (kind, flags) = (body.first().copied(), body.get(1).copied());
                    if let Some(len) = self.oversized(kind, flags, body.len(), false) {
                        self.on_oversized(channel, &body, len);
                        return;
                    }
                    match Frame::parse(body) {
                        Ok(whole) if whole.channel == channel => self.on_message(whole),
                        _ => self.stats.refused += 1,
                    }
                }
                Ok(None) => {}
                Err(d) => self.count(d),
            },
            // Handshake frames repeated after the handshake, and discovery's, which belong to
            // handshake datagrams: nothing to do. An Ack (section 5.9) confirms the hub's numbered
            // Messages and is delivered like a message.
            FrameBody::Pong(_)
            | FrameBody::Hello(_)
            | FrameBody::Challenge(_)
            | FrameBody::Welcome(_)
            | FrameBody::Reject(_)
            | FrameBody::Discover(_)
            | FrameBody::Here(_)
            | FrameBody::Reset(_) => {}
            body => self.on_message(Frame {
                channel,
                seq: frame.seq,
                body,
            }),
        }
    }

    pub(super) fn on_message(&mut self, frame: Frame) {
        if !matches!(self.state, State::Established | State::Closing { .. }) {
            return;
        }
        let (channel, seq) = (frame.channel, frame.seq);
        self.place(channel, seq, Arrival::Frame(frame));
    }

    /// A message of a critical kind this side does not know, `kind`, in frame body `body`: refused,
    /// its place in its channel passed over (so the channel does not wait for it), and the peer
    /// told with an Error `UNKNOWN_KIND` once, in the channel's order (section 3.3).
    fn on_unknown_kind(&mut self, body: &[u8], kind: u8) {
        self.stats.refused += 1;
        if !matches!(self.state, State::Established | State::Closing { .. }) {
            return;
        }
        let (channel, seq) = match body {
            [_, flags, channel, seq @ ..] if flags & SEQ_FLAG != 0 && seq.len() >= SEQ_LEN => (
                *channel,
                Some(u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]])),
            ),
            [_, _, channel, ..] => (*channel, None),
            _ => return,
        };
        self.place(channel, seq, Arrival::UnknownKind(kind));
    }

    /// Places an arrival in its channel's order and hands on what becomes deliverable: messages
    /// and refusals to the application (Data answered by the session itself, when it echoes),
    /// and an Error to the peer for each unknown kind.
    fn place(&mut self, channel: u8, seq: Option<u32>, arrival: Arrival) {
        let established = self.is_established();
        let (events, stats) = (&mut self.events, &mut self.stats);
        let (echo, echoed, outbox) = (&mut self.echo, &mut self.echoed, &mut self.outbox);
        let mut unknown: Vec<u8> = Vec::new();
        let d = self
            .inbox
            .on_arrival(channel, seq, arrival, &mut |a| match a {
                Arrival::Frame(f) => {
                    stats.messages_delivered += 1;
                    if echo_or_hand(f, established, echo, outbox, events) {
                        *echoed += 1;
                    }
                }
                Arrival::Oversized(o) => {
                    echo.hold();
                    events.push_back(Event::Oversized(o));
                }
                Arrival::UnknownKind(kind) => unknown.push(kind),
            });
        self.count(d);
        for kind in unknown {
            // As any refusal, on channel 0; a flood of them meets the send queue's bound.
            let _ = self.send(Frame::new(ErrorFrame {
                reason: Reason::UNKNOWN_KIND,
                refused_kind: kind,
                message: Text::from_static("unknown frame kind"),
            }));
        }
    }

    /// The frame length of a whole message's frame body (docs/PROTOCOL.md section 2.1: without
    /// SEQ, plus 5), if it is above the agreed limit. A Fragment is a piece, not a message.
    fn oversized_len(&self, part: &FramePart, compact: bool) -> Option<usize> {
        self.oversized(part.kind(), part.flags(), part.whole_len(), compact)
    }

    /// [`Session::oversized_len`] of a body whose kind, flags and length are these.
    fn oversized(
        &self,
        kind: Option<u8>,
        flags: Option<u8>,
        whole_len: usize,
        compact: bool,
    ) -> Option<usize> {
        let seq = match (kind, flags) {
            (Some(kind), _) if kind == FrameKind::Fragment as u8 => return None,
            (_, Some(flags)) if flags & SEQ_FLAG != 0 && compact => 2,
            (_, Some(flags)) if flags & SEQ_FLAG != 0 => SEQ_LEN,
            _ => 0,
        };
        let len = whole_len.saturating_sub(seq) + FRAME_LEN_OVERHEAD;
        (len > self.frame_limit as usize).then_some(len)
    }

    /// A compact frame body (a 16-bit SEQ field) as a version-1 one, its sequence number restored.
    fn widen_seq(&self, body: &Bytes) -> Bytes {
        match &body[..] {
            [kind, flags, channel, hi, lo, rest @ ..] if flags & SEQ_FLAG != 0 => {
                let seq = self
                    .inbox
                    .restore_seq(*channel, u16::from_be_bytes([*hi, *lo]));
                let mut wide = Vec::with_capacity(body.len() + 2);
                wide.extend_from_slice(&[*kind, *flags, *channel]);
                wide.extend_from_slice(&seq.to_be_bytes());
                wide.extend_from_slice(rest);
                Bytes::from(wide)
            }
            _ => body.clone(),
        }
    }

    /// A message on `channel` refused unread for its size (`len`): its place in the channel is
    /// passed over, and the application hears of it there, in the channel's order.
    fn on_oversized(&mut self, channel: u8, head: &[u8], len: usize) {
        self.stats.refused += 1;
        if !matches!(self.state, State::Established | State::Closing { .. }) {
            return;
        }
        let Some((mut refused, seq)) = Oversized::read(head, len, self.frame_limit as usize) else {
            return;
        };
        refused.channel = channel;
        self.place(channel, seq, Arrival::Oversized(refused));
    }

    pub(super) fn count(&mut self, d: Disposition) {
        match d {
            Disposition::Delivered | Disposition::Held => {}
            Disposition::Duplicate => self.stats.duplicates_dropped += 1,
            Disposition::Stale => self.stats.stale_dropped += 1,
            Disposition::Refused => self.stats.refused += 1,
        }
    }
}

/// A server's lone Reset sent in the clear, of either form (docs/PROTOCOL.md section 4.11): a
/// compact one under packet number 0 with its CRC verified, or a version-1 one.
fn plain_reset(datagram: Bytes) -> Option<Datagram> {
    if crate::wire::is_compact(&datagram) {
        Datagram::compact_reset(datagram)
    } else {
        Datagram::parse(datagram)
            .ok()
            .filter(|d| lone_reset(d).is_some())
    }
}

/// The Reset of a datagram that holds one and nothing else (docs/PROTOCOL.md section 4.11).
fn lone_reset(d: &Datagram) -> Option<Reset> {
    let mut frames = d.frames();
    let body = frames.next()?;
    if body.first() != Some(&(FrameKind::Reset as u8)) || frames.next().is_some() {
        return None;
    }
    match Frame::parse(body).ok()?.body {
        FrameBody::Reset(r) => Some(r),
        _ => None,
    }
}
