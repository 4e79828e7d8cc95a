//! The send side of a datagram session: per-channel queues, reliable messages kept until
//! acknowledged, retransmissions, and fragmentation of messages larger than a datagram.
//!
//! Messages are encoded once when queued. A reliable message stays in `in_flight` until every
//! packet that carried it (or each of its fragments) is acknowledged; a lost packet puts its items
//! back on the retransmission queue, which is served before new messages, in new packets.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;

use super::config::SessionConfig;
use super::error::SendError;
use crate::wire::{ChannelKind, DatagramBuilder, Frame, FrameBody, FrameKind, SEQ_FLAG};

/// Something a sent packet carried that must reach the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// A whole reliable message.
    Message(u64),
    /// One fragment of a reliable message.
    Fragment { uid: u64, index: u16 },
    /// The session's Close frame.
    Close,
}

/// A frame body encoded once: a header of up to 7 bytes (kind, flags, channel, seq) and the rest,
/// which shares the caller's buffer.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    head: [u8; 7],
    head_len: u8,
    rest: Bytes,
}

impl Encoded {
    /// Encodes a frame without a sequence number. A Data frame's payload is taken as it is (no
    /// copy, and no reference count to raise and drop again: the frame is consumed); other kinds
    /// are encoded once into a buffer of their own.
    pub(crate) fn from_frame(frame: Frame) -> Result<Self, SendError> {
        match frame {
            Frame {
                channel,
                seq: None,
                body: FrameBody::Data(d),
            } => Ok(Self::data(channel, d.payload)),
            frame => {
                let mut out = vec![0u8; frame.encoded_len()];
                frame.emit(&mut out).map_err(SendError::Encode)?;
                Ok(Self::from_body(Bytes::from(out)))
            }
        }
    }

    /// A Data frame on `channel` carrying `payload` (shared, not copied).
    pub(crate) fn data(channel: u8, payload: Bytes) -> Self {
        let mut head = [0u8; 7];
        head[0] = FrameKind::Data as u8;
        head[2] = channel;
        Self {
            head,
            head_len: 3,
            rest: payload,
        }
    }

    /// The length of [`Encoded::data`]'s body for `payload`, without a sequence number.
    pub(crate) fn data_len(payload: &Bytes) -> usize {
        3 + payload.len()
    }

    /// Wraps an encoded frame body (at least 3 bytes, no sequence number).
    pub(crate) fn from_body(mut body: Bytes) -> Self {
        let mut head = [0u8; 7];
        let n = body.len().min(3);
        let first = body.split_to(n);
        head[..n].copy_from_slice(&first);
        Self {
            head,
            head_len: n as u8,
            rest: body,
        }
    }

    fn with_seq(mut self, seq: u32) -> Self {
        self.head[1] |= SEQ_FLAG;
        self.head[3..7].copy_from_slice(&seq.to_be_bytes());
        self.head_len = 7;
        self
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.head_len) + self.rest.len()
    }

    fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    fn to_bytes(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(self.head());
        v.extend_from_slice(&self.rest);
        Bytes::from(v)
    }
}

/// The most fragmented reliable messages a sender keeps in flight; a receiver accepts at least
/// this many under reassembly (docs/PROTOCOL.md section 7a.5).
pub(crate) const MAX_FRAGMENTED_IN_FLIGHT: usize = 8;

/// The header of a Fragment frame: kind, flags, channel, message id, index, count.
pub(crate) const FRAGMENT_HEAD_LEN: usize = 3 + 4 + 2 + 2;

fn fragment_head(channel: u8, id: u32, index: u16, count: u16) -> [u8; FRAGMENT_HEAD_LEN] {
    let mut h = [0u8; FRAGMENT_HEAD_LEN];
    h[0] = FrameKind::Fragment as u8;
    h[2] = channel;
    h[3..7].copy_from_slice(&id.to_be_bytes());
    h[7..9].copy_from_slice(&index.to_be_bytes());
    h[9..11].copy_from_slice(&count.to_be_bytes());
    h
}

#[derive(Debug)]
struct Fragments {
    id: u32,
    data: Bytes,
    count: u16,
    piece: usize,
    acked: Vec<bool>,
    remaining: u16,
}

impl Fragments {
    fn piece(&self, index: u16) -> &[u8] {
        let start = usize::from(index) * self.piece;
        &self.data[start..(start + self.piece).min(self.data.len())]
    }
}

#[derive(Debug)]
enum Body {
    Whole(Encoded),
    Fragmented(Fragments),
}

#[derive(Debug)]
struct InFlight {
    channel: u8,
    len: usize,
    body: Body,
}

/// Reliable messages in flight by id. Ids are handed out in order, so a deque indexed from the
/// oldest id finds any message in O(1) and costs no allocation per message; acknowledged entries
/// become holes, trimmed from the front.
#[derive(Debug, Default)]
struct InFlightTable {
    base: u64,
    slots: VecDeque<Option<InFlight>>,
    len: usize,
}

impl InFlightTable {
    /// Adds the message with the next id.
    fn insert(&mut self, uid: u64, message: InFlight) {
        if self.slots.is_empty() {
            self.base = uid;
        }
        debug_assert_eq!(uid, self.base + self.slots.len() as u64);
        self.slots.push_back(Some(message));
        self.len += 1;
    }

    fn index(&self, uid: u64) -> Option<usize> {
        let i = usize::try_from(uid.checked_sub(self.base)?).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    fn get(&self, uid: u64) -> Option<&InFlight> {
        self.slots.get(self.index(uid)?)?.as_ref()
    }

    fn get_mut(&mut self, uid: u64) -> Option<&mut InFlight> {
        let i = self.index(uid)?;
        self.slots.get_mut(i)?.as_mut()
    }

    fn contains(&self, uid: u64) -> bool {
        self.get(uid).is_some()
    }

    fn remove(&mut self, uid: u64) -> Option<InFlight> {
        let i = self.index(uid)?;
        let message = self.slots[i].take()?;
        self.len -= 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(message)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.base += self.slots.len() as u64;
        self.slots.clear();
        self.len = 0;
    }
}

#[derive(Debug, Default)]
struct SendChannel {
    next_seq: u32,
    queue: VecDeque<Encoded>,
    /// Reliable messages sent and not yet fully acknowledged.
    unacked: u32,
}

/// A first transmission waiting for room: a reliable fragment, or an unreliable one (encoded).
#[derive(Debug)]
enum Pending {
    Reliable(Item),
    Unreliable(Bytes),
}

/// Counts the caller can read in [`super::Stats`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutboxCounters {
    pub(crate) unreliable_dropped: u64,
    pub(crate) retransmitted: u64,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    kinds: Vec<ChannelKind>,
    channels: Vec<SendChannel>,
    in_flight: InFlightTable,
    retransmit: VecDeque<Item>,
    pending: VecDeque<Pending>,
    next_uid: u64,
    next_fragment_id: u32,
    queued_reliable_bytes: usize,
    max_queued_bytes: usize,
    max_unreliable_queued: usize,
    window: u32,
    rr: usize,
    fragmented_in_flight: usize,
    pub(crate) counters: OutboxCounters,
}

impl Outbox {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            kinds: config.channels.clone(),
            channels: Vec::new(),
            in_flight: InFlightTable::default(),
            retransmit: VecDeque::new(),
            pending: VecDeque::new(),
            next_uid: 0,
            next_fragment_id: 0,
            queued_reliable_bytes: 0,
            max_queued_bytes: config.max_queued_bytes,
            max_unreliable_queued: config.max_unreliable_queued,
            window: config.reliable_window,
            rr: 0,
            fragmented_in_flight: 0,
            counters: OutboxCounters::default(),
        }
    }

    fn kind(&self, channel: u8) -> ChannelKind {
        channel_kind(&self.kinds, channel)
    }

    fn channel(&mut self, channel: u8) -> &mut SendChannel {
        let i = usize::from(channel);
        if self.channels.len() <= i {
            self.channels.resize_with(i + 1, SendChannel::default);
        }
        &mut self.channels[i]
    }

    /// Queues an encoded message on `channel` (its length already checked against the session's
    /// agreed frame length).
    pub(crate) fn queue(&mut self, channel: u8, msg: Encoded) -> Result<(), SendError> {
        let kind = self.kind(channel);
        // Counted at the length the message is sent with (sequence number included), the length
        // released when it is acknowledged.
        let sent_len = msg.len()
            + if kind == ChannelKind::Unreliable {
                0
            } else {
                4
            };
        if kind.is_reliable() {
            if self.queued_reliable_bytes + sent_len > self.max_queued_bytes {
                return Err(SendError::QueueFull);
            }
            self.queued_reliable_bytes += sent_len;
        }
        let max_unreliable = self.max_unreliable_queued;
        let ch = self.channel(channel);
        let msg = if kind == ChannelKind::Unreliable {
            msg
        } else {
            let seq = ch.next_seq;
            ch.next_seq = seq.wrapping_add(1);
            msg.with_seq(seq)
        };
        debug_assert_eq!(msg.len(), sent_len);
        let mut dropped = false;
        if !kind.is_reliable() && ch.queue.len() >= max_unreliable {
            // A full unreliable queue drops its oldest: the newest state matters most.
            ch.queue.pop_front();
            dropped = true;
        }
        ch.queue.push_back(msg);
        if dropped {
            self.counters.unreliable_dropped += 1;
        }
        Ok(())
    }

    /// Whether [`Outbox::queue`] would take a message of `len` bytes (without a sequence number)
    /// on `channel`: an unreliable channel always does (its oldest may go).
    pub(crate) fn has_room(&self, channel: u8, len: usize) -> bool {
        !self.kind(channel).is_reliable()
            || self.queued_reliable_bytes + len + 4 <= self.max_queued_bytes
    }

    /// Whether anything is waiting to be sent.
    pub(crate) fn has_data(&self) -> bool {
        !self.retransmit.is_empty()
            || !self.pending.is_empty()
            || self
                .channels
                .iter()
                .enumerate()
                .any(|(i, c)| !c.queue.is_empty() && self.may_send(i, c))
    }

    fn may_send(&self, channel: usize, c: &SendChannel) -> bool {
        !channel_kind(&self.kinds, channel as u8).is_reliable() || c.unacked < self.window
    }

    /// Reliable messages sent and not yet acknowledged.
    pub(crate) fn unacked_messages(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes of reliable messages queued or in flight.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_reliable_bytes
    }

    /// Writes retransmissions, pending fragments, then new messages (one per channel in turn)
    /// into `b` until it is full; records the reliable items written in `items`. `max_body` is the
    /// largest frame body a datagram of the session's size holds: larger messages are fragmented.
    pub(crate) fn fill(
        &mut self,
        b: &mut DatagramBuilder<'_>,
        items: &mut Vec<Item>,
        max_body: usize,
    ) {
        let piece = max_body - FRAGMENT_HEAD_LEN;
        while let Some(item) = self.retransmit.pop_front() {
            match self.write_item(b, item) {
                Some(true) => {
                    self.counters.retransmitted += 1;
                    items.push(item);
                }
                Some(false) => {
                    self.retransmit.push_front(item);
                    return;
                }
                None => {} // acknowledged meanwhile
            }
        }
        if !self.drain_pending(b, items) {
            return;
        }
        let n = self.channels.len();
        let mut progress = true;
        while progress {
            progress = false;
            for k in 0..n {
                let i = (self.rr + k) % n;
                let c = &self.channels[i];
                let Some(front) = c.queue.front() else {
                    continue;
                };
                if !self.may_send(i, c) {
                    continue;
                }
                let kind = self.kind(i as u8);
                let needs_fragments = front.len() > max_body;
                if needs_fragments
                    && kind.is_reliable()
                    && self.fragmented_in_flight >= MAX_FRAGMENTED_IN_FLIGHT
                {
                    continue;
                }
                if needs_fragments {
                    let Some(msg) = self.channels[i].queue.pop_front() else {
                        continue;
                    };
                    self.fragment(i as u8, kind, &msg, piece);
                    if !self.drain_pending(b, items) {
                        self.rr = (i + 1) % n;
                        return;
                    }
                    progress = true;
                    continue;
                }
                if !b.push_encoded_parts(front.head(), &front.rest) {
                    self.rr = i;
                    return;
                }
                let Some(msg) = self.channels[i].queue.pop_front() else {
                    continue;
                };
                if kind.is_reliable() {
                    let uid = self.next_uid;
                    self.next_uid += 1;
                    self.channels[i].unacked += 1;
                    self.in_flight.insert(
                        uid,
                        InFlight {
                            channel: i as u8,
                            len: msg.len(),
                            body: Body::Whole(msg),
                        },
                    );
                    items.push(Item::Message(uid));
                }
                progress = true;
            }
            self.rr = (self.rr + 1) % n.max(1);
        }
    }

    /// Writes pending first transmissions of fragments; returns whether the datagram has room left.
    fn drain_pending(&mut self, b: &mut DatagramBuilder<'_>, items: &mut Vec<Item>) -> bool {
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Reliable(item) => match self.write_item(b, item) {
                    Some(true) => items.push(item),
                    Some(false) => {
                        self.pending.push_front(Pending::Reliable(item));
                        return false;
                    }
                    None => {}
                },
                Pending::Unreliable(body) => {
                    if !b.push_encoded(&body) {
                        self.pending.push_front(Pending::Unreliable(body));
                        return false;
                    }
                }
            }
        }
        true
    }

    fn fragment(&mut self, channel: u8, kind: ChannelKind, msg: &Encoded, piece: usize) {
        let data = msg.to_bytes();
        let count = data.len().div_ceil(piece);
        let Ok(count) = u16::try_from(count) else {
            // Unreachable while max_message_len / piece < 65536 (checked in the config).
            return;
        };
        let id = self.next_fragment_id;
        self.next_fragment_id = id.wrapping_add(1);
        if kind.is_reliable() {
            let uid = self.next_uid;
            self.next_uid += 1;
            self.fragmented_in_flight += 1;
            self.channel(channel).unacked += 1;
            self.in_flight.insert(
                uid,
                InFlight {
                    channel,
                    len: data.len(),
                    body: Body::Fragmented(Fragments {
                        id,
                        data,
                        count,
                        piece,
                        acked: vec![false; usize::from(count)],
                        remaining: count,
                    }),
                },
            );
            for index in 0..count {
                self.pending
                    .push_back(Pending::Reliable(Item::Fragment { uid, index }));
            }
        } else {
            // All or nothing: the receiver keeps the pieces until every one arrives or expires.
            for index in 0..count {
                let start = usize::from(index) * piece;
                let slice = &data[start..(start + piece).min(data.len())];
                let mut body = Vec::with_capacity(FRAGMENT_HEAD_LEN + slice.len());
                body.extend_from_slice(&fragment_head(channel, id, index, count));
                body.extend_from_slice(slice);
                self.pending
                    .push_back(Pending::Unreliable(Bytes::from(body)));
            }
        }
    }

    /// Writes a reliable item. `None`: it needs no sending (acknowledged); `Some(fit)` otherwise.
    fn write_item(&self, b: &mut DatagramBuilder<'_>, item: Item) -> Option<bool> {
        match item {
            Item::Message(uid) => match &self.in_flight.get(uid)?.body {
                Body::Whole(msg) => Some(b.push_encoded_parts(msg.head(), &msg.rest)),
                Body::Fragmented(_) => None,
            },
            Item::Fragment { uid, index } => {
                let f = self.in_flight.get(uid)?;
                let Body::Fragmented(frags) = &f.body else {
                    return None;
                };
                if frags.acked[usize::from(index)] {
                    return None;
                }
                let head = fragment_head(f.channel, frags.id, index, frags.count);
                Some(b.push_encoded_parts(&head, frags.piece(index)))
            }
            Item::Close => None,
        }
    }

    /// Writes the reliable `items` that still need sending into `b` (a redundant copy); returns
    /// those written.
    pub(crate) fn write_copies(&self, b: &mut DatagramBuilder<'_>, items: &[Item]) -> Vec<Item> {
        items
            .iter()
            .copied()
            .filter(|&item| self.write_item(b, item) == Some(true))
            .collect()
    }

    /// A packet carrying `item` was acknowledged.
    pub(crate) fn on_acked(&mut self, item: Item) {
        let uid = match item {
            Item::Message(uid) => uid,
            Item::Fragment { uid, index } => {
                let Some(f) = self.in_flight.get_mut(uid) else {
                    return;
                };
                let Body::Fragmented(frags) = &mut f.body else {
                    return;
                };
                let acked = &mut frags.acked[usize::from(index)];
                if *acked {
                    return;
                }
                *acked = true;
                frags.remaining -= 1;
                if frags.remaining > 0 {
                    return;
                }
                uid
            }
            Item::Close => return,
        };
        if let Some(done) = self.in_flight.remove(uid) {
            self.queued_reliable_bytes -= done.len;
            if matches!(done.body, Body::Fragmented(_)) {
                self.fragmented_in_flight -= 1;
            }
            let ch = self.channel(done.channel);
            ch.unacked = ch.unacked.saturating_sub(1);
        }
    }

    /// A packet carrying `item` was lost: send it again unless it has been acknowledged since.
    pub(crate) fn on_lost(&mut self, item: Item) {
        let still_needed = match item {
            Item::Message(uid) => self.in_flight.contains(uid),
            Item::Fragment { uid, index } => self.in_flight.get(uid).is_some_and(
                |f| matches!(&f.body, Body::Fragmented(fr) if !fr.acked[usize::from(index)]),
            ),
            Item::Close => false,
        };
        if still_needed && !self.retransmit.contains(&item) {
            self.retransmit.push_back(item);
        }
    }

    /// Drops everything (the session is over).
    pub(crate) fn clear(&mut self) {
        self.channels.clear();
        self.in_flight.clear();
        self.retransmit.clear();
        self.pending.clear();
        self.queued_reliable_bytes = 0;
        self.fragmented_in_flight = 0;
    }
}

/// The kind of `channel` under `kinds`: channel 0 and channels not listed are reliable-ordered
/// (docs/PROTOCOL.md section 3.4).
pub(crate) fn channel_kind(kinds: &[ChannelKind], channel: u8) -> ChannelKind {
    if channel == 0 {
        return ChannelKind::ReliableOrdered;
    }
    kinds
        .get(usize::from(channel))
        .copied()
        .unwrap_or(ChannelKind::ReliableOrdered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> InFlight {
        InFlight {
            channel: 0,
            len,
            body: Body::Whole(Encoded::from_body(Bytes::from_static(&[0x20, 0, 0]))),
        }
    }

    #[test]
    fn in_flight_table_finds_removes_and_trims() {
        let mut t = InFlightTable::default();
        for uid in 10..15 {
            t.insert(uid, message(uid as usize));
        }
        assert_eq!(t.len(), 5);
        assert!(t.remove(12).is_some(), "a hole in the middle");
        assert!(t.remove(12).is_none(), "removed once");
        assert!(!t.contains(12) && t.contains(13));
        assert!(t.remove(10).is_some() && t.remove(11).is_some());
        // 10, 11 and the hole at 12 are trimmed: 13 is at the front.
        assert_eq!(t.slots.len(), 2);
        assert_eq!(t.get(13).map(|m| m.len), Some(13));
        assert!(t.get(9).is_none() && t.get(99).is_none());
        t.clear();
        assert_eq!(t.len(), 0);
        t.insert(15, message(15));
        assert_eq!(t.get(15).map(|m| m.len), Some(15));
    }
}
