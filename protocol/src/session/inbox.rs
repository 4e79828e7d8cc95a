//! The receive side of a datagram session: reassembly of fragments, and per-channel delivery
//! rules (docs/PROTOCOL.md section 3.4): ordered, unordered, sequenced and unreliable.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use super::config::SessionConfig;
use super::event::Oversized;
use super::outbox::channel_kind;
use super::received::seq_diff;
use super::time::Instant;
use crate::wire::{ChannelKind, Fragment, Frame};

/// What the inbox hands on in a channel's order: a message, or the place of one refused unread.
#[derive(Debug)]
pub(crate) enum Arrival {
    Frame(Frame),
    Oversized(Oversized),
    /// A message of a critical kind this side does not know (its kind byte): refused, its
    /// place passed over.
    UnknownKind(u8),
}

#[derive(Debug)]
enum RecvChannel {
    Ordered {
        next: u32,
        held: BTreeMap<u32, Arrival>,
    },
    Unordered {
        next: u32,
        above: BTreeSet<u32>,
    },
    Sequenced {
        newest: Option<u32>,
    },
    Unreliable,
}

impl RecvChannel {
    fn new(kind: ChannelKind) -> Self {
        match kind {
            ChannelKind::ReliableOrdered => Self::Ordered {
                next: 0,
                held: BTreeMap::new(),
            },
            ChannelKind::ReliableUnordered => Self::Unordered {
                next: 0,
                above: BTreeSet::new(),
            },
            ChannelKind::UnreliableSequenced => Self::Sequenced { newest: None },
            ChannelKind::Unreliable => Self::Unreliable,
        }
    }
}

/// Where a message on a reliable channel falls: its sequence number and its distance from the next
/// one expected, or why it is not taken (no sequence number, already seen, beyond the window).
fn place(
    seq: Option<u32>,
    next: u32,
    window: u32,
    seen: impl FnOnce(u32) -> bool,
) -> Result<(u32, i64), Disposition> {
    let seq = seq.ok_or(Disposition::Refused)?;
    let d = seq_diff(seq, next);
    if d < 0 || seen(seq) {
        return Err(Disposition::Duplicate);
    }
    if d >= i64::from(window) {
        return Err(Disposition::Refused);
    }
    Ok((seq, d))
}

#[derive(Debug)]
struct Partial {
    channel: u8,
    /// On a reliable channel: its pieces' packets have been acknowledged, so they will not be
    /// sent again, and the message is kept while the sender makes progress.
    reliable: bool,
    parts: Vec<Option<Bytes>>,
    missing: u16,
    bytes: usize,
    started: Instant,
    last_progress: Instant,
}

/// What the inbox did with a frame, for the session's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Delivered (possibly with held frames after it).
    Delivered,
    /// Held until earlier frames arrive, or waiting for more fragments.
    Held,
    /// A duplicate of something delivered.
    Duplicate,
    /// Older than a sequenced frame already delivered.
    Stale,
    /// Refused: outside the window, missing its sequence number, or over a reassembly bound.
    Refused,
}

#[derive(Debug)]
pub(crate) struct Inbox {
    kinds: Vec<ChannelKind>,
    /// Each channel's state, by number, made on its first message (a message per datagram looks
    /// its channel up: an index, not a search).
    channels: Vec<Option<RecvChannel>>,
    window: u32,
    partials: BTreeMap<u32, Partial>,
    partial_bytes: usize,
    max_partial_bytes: usize,
    max_partials: usize,
    max_fragments: u16,
    reassembly_timeout: Duration,
    reliable_timeout: Duration,
    unreliable_partials: usize,
    unreliable_bytes: usize,
    /// Fragment message ids completed lately, so late duplicates of their pieces are ignored.
    completed: VecDeque<u32>,
}

const COMPLETED_MEMORY: usize = 64;

impl Inbox {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            kinds: config.channels.clone(),
            channels: Vec::new(),
            window: config.reliable_window,
            partials: BTreeMap::new(),
            partial_bytes: 0,
            max_partial_bytes: config.max_reassembly_bytes,
            max_partials: config.max_reassembly_messages,
            max_fragments: config.max_fragments(),
            reassembly_timeout: config.reassembly_timeout,
            reliable_timeout: config.idle_timeout,
            unreliable_partials: 0,
            unreliable_bytes: 0,
            completed: VecDeque::new(),
        }
    }

    /// Takes a message frame (anything but the session's own control frames), or the place of
    /// one refused unread (its channel and sequence number), and hands what becomes deliverable to
    /// `deliver`, in delivery order.
    pub(crate) fn on_arrival(
        &mut self,
        channel: u8,
        seq: Option<u32>,
        arrival: Arrival,
        deliver: &mut impl FnMut(Arrival),
    ) -> Disposition {
        let kind = channel_kind(&self.kinds, channel);
        let window = self.window;
        let at = usize::from(channel);
        if self.channels.len() <= at {
            self.channels.resize_with(at + 1, || None);
        }
        let state = self.channels[at].get_or_insert_with(|| RecvChannel::new(kind));
        match state {
            RecvChannel::Unreliable => {
                deliver(arrival);
                Disposition::Delivered
            }
            RecvChannel::Sequenced { newest } => {
                let Some(seq) = seq else {
                    return Disposition::Refused;
                };
                if newest.is_some_and(|n| seq_diff(seq, n) <= 0) {
                    return Disposition::Stale;
                }
                *newest = Some(seq);
                deliver(arrival);
                Disposition::Delivered
            }
            RecvChannel::Unordered { next, above } => {
                let seq = match place(seq, *next, window, |s| above.contains(&s)) {
                    Ok((seq, _)) => seq,
                    Err(d) => return d,
                };
                above.insert(seq);
                while above.remove(next) {
                    *next = next.wrapping_add(1);
                }
                deliver(arrival);
                Disposition::Delivered
            }
            RecvChannel::Ordered { next, held } => {
                let (seq, d) = match place(seq, *next, window, |s| held.contains_key(&s)) {
                    Ok(placed) => placed,
                    Err(d) => return d,
                };
                if d > 0 {
                    held.insert(seq, arrival);
                    return Disposition::Held;
                }
                deliver(arrival);
                *next = next.wrapping_add(1);
                while let Some(a) = held.remove(next) {
                    deliver(a);
                    *next = next.wrapping_add(1);
                }
                Disposition::Delivered
            }
        }
    }

    /// The most pieces a message may have: one of more is refused unread.
    /// The whole sequence number on `channel` whose low 16 bits are `low`: the one nearest to the
    /// next the channel expects (a compact datagram's SEQ field, docs/PROTOCOL.md section 2.4).
    pub(crate) fn restore_seq(&self, channel: u8, low: u16) -> u32 {
        let expected = match self
            .channels
            .get(usize::from(channel))
            .and_then(Option::as_ref)
        {
            Some(RecvChannel::Ordered { next, .. } | RecvChannel::Unordered { next, .. }) => *next,
            Some(RecvChannel::Sequenced { newest: Some(n) }) => n.wrapping_add(1),
            _ => 0,
        };
        crate::wire::numbers::expand_nearest(u32::from(low), 16, expected)
    }

    pub(crate) fn max_fragments(&self) -> u16 {
        self.max_fragments
    }

    /// Takes a fragment. Returns the reassembled frame body once the last piece arrives.
    pub(crate) fn on_fragment(
        &mut self,
        channel: u8,
        f: Fragment,
        now: Instant,
    ) -> Result<Option<Bytes>, Disposition> {
        if f.count > self.max_fragments {
            return Err(Disposition::Refused);
        }
        if self.completed.contains(&f.message_id) {
            return Err(Disposition::Duplicate);
        }
        let reliable = channel_kind(&self.kinds, channel).is_reliable();
        if !self.partials.contains_key(&f.message_id) {
            // Reliable and unreliable messages are counted apart, so unreliable traffic can never
            // crowd out pieces of a reliable message whose sender has been told they arrived.
            let full = if reliable {
                self.partials.len() - self.unreliable_partials >= self.max_partials
            } else {
                self.unreliable_partials >= self.max_partials
            };
            if full {
                return Err(Disposition::Refused);
            }
            if !reliable {
                self.unreliable_partials += 1;
            }
            self.partials.insert(
                f.message_id,
                Partial {
                    channel,
                    reliable,
                    parts: vec![None; usize::from(f.count)],
                    missing: f.count,
                    bytes: 0,
                    started: now,
                    last_progress: now,
                },
            );
        }
        let Some(p) = self.partials.get_mut(&f.message_id) else {
            return Err(Disposition::Refused);
        };
        if p.channel != channel || p.parts.len() != usize::from(f.count) {
            return Err(Disposition::Refused);
        }
        let Some(slot) = p.parts.get_mut(usize::from(f.index)) else {
            return Err(Disposition::Refused);
        };
        if slot.is_some() {
            return Err(Disposition::Duplicate);
        }
        // Unreliable pieces may use half the budget; the rest is kept for reliable ones.
        let over = if p.reliable {
            self.partial_bytes + f.data.len() > self.max_partial_bytes
        } else {
            self.unreliable_bytes + f.data.len() > self.max_partial_bytes / 2
        };
        if over {
            return Err(Disposition::Refused);
        }
        self.partial_bytes += f.data.len();
        if !p.reliable {
            self.unreliable_bytes += f.data.len();
        }
        p.bytes += f.data.len();
        p.last_progress = now;
        *slot = Some(f.data);
        p.missing -= 1;
        if p.missing > 0 {
            return Ok(None);
        }
        let Some(p) = self.partials.remove(&f.message_id) else {
            return Ok(None);
        };
        self.forget(&p);
        if self.completed.len() == COMPLETED_MEMORY {
            self.completed.pop_front();
        }
        self.completed.push_back(f.message_id);
        let mut body = Vec::with_capacity(p.bytes);
        for part in p.parts.into_iter().flatten() {
            body.extend_from_slice(&part);
        }
        Ok(Some(Bytes::from(body)))
    }

    fn forget(&mut self, p: &Partial) {
        self.partial_bytes -= p.bytes;
        if !p.reliable {
            self.unreliable_partials -= 1;
            self.unreliable_bytes -= p.bytes;
        }
    }

    /// When `p` is discarded: an unreliable message `reassembly_timeout` after it started; a
    /// reliable one when no new piece has come for the idle timeout (a live sender resends
    /// missing pieces well within it, so only a dead sender or a stale duplicate gets there).
    fn expiry(&self, p: &Partial) -> Instant {
        if p.reliable {
            p.last_progress + self.reliable_timeout
        } else {
            p.started + self.reassembly_timeout
        }
    }

    /// Discards incomplete messages that are due; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let due: Vec<u32> = self
            .partials
            .iter()
            .filter(|(_, p)| self.expiry(p) <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in &due {
            if let Some(p) = self.partials.remove(id) {
                self.forget(&p);
            }
        }
        due.len()
    }

    /// When the next incomplete message expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.partials.values().map(|p| self.expiry(p)).min()
    }

    /// Frees everything held (the session is over).
    pub(crate) fn clear(&mut self) {
        self.channels.clear();
        self.partials.clear();
        self.partial_bytes = 0;
        self.unreliable_partials = 0;
        self.unreliable_bytes = 0;
    }

    /// Bytes held for incomplete messages.
    pub(crate) fn reassembly_bytes(&self) -> usize {
        self.partial_bytes
    }
}
