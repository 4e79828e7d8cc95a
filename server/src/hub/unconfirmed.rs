//! The numbered Messages of a session whose client confirms them (Hello option `CONFIRMS`,
//! docs/PROTOCOL.md section 5.9): each reliable Message gets the session's next delivery number and
//! is kept until the client's Ack covers it, so that after a break (the connection dropped with
//! messages in the socket, or a new path took the session over with messages in flight on the old
//! one) the resumed session is sent again every one it did not confirm. Kept messages are bounded:
//! beyond the bound the oldest goes, counted as missed. As MQTT 5 keeps unacknowledged at-least-once
//! messages for a session, with the client's duplicate detection by number instead of a DUP flag.

use std::collections::VecDeque;

use framewire_protocol::wire::{Ack, ChannelKind, Frame, FrameBody, NumberedMessage, SharedFrame};

/// One session's delivery numbers and the Messages it has not confirmed.
#[derive(Debug)]
pub(crate) struct Unconfirmed {
    /// The number the next Message gets (numbers start at 1 and wrap).
    next: u32,
    /// Sent and not confirmed, oldest first, as encoded; their numbers run without a gap up to
    /// `next - 1`.
    kept: VecDeque<SharedFrame>,
    /// The encoded bytes of `kept`.
    bytes: usize,
    /// Kept messages pushed out by the bound since the session last resumed.
    missed: u32,
    /// The kinds of the client's channels 1..=N (unnamed channels are reliable-ordered).
    layout: Vec<ChannelKind>,
}

impl Unconfirmed {
    pub(crate) fn new(layout: Vec<ChannelKind>) -> Self {
        Self {
            next: 1,
            kept: VecDeque::new(),
            bytes: 0,
            missed: 0,
            layout,
        }
    }

    /// Whether the client's layout makes `channel` reliable (channel 0 always is).
    pub(crate) fn is_reliable(&self, channel: u8) -> bool {
        match usize::from(channel).checked_sub(1) {
            None => true,
            Some(i) => self.layout.get(i).is_none_or(|k| k.is_reliable()),
        }
    }

    /// Gives `message` the next number, keeps it, and returns the frame to send. Past the bounds
    /// (`bound.0` messages, `bound.1` bytes) the oldest kept messages go, counted as missed; the
    /// newest is always kept.
    pub(crate) fn number(
        &mut self,
        message: &NumberedMessage,
        bound: (usize, usize),
    ) -> SharedFrame {
        let message = message.numbered(self.next);
        self.next = self.next.wrapping_add(1);
        let len = message.stream_bytes().len();
        while !self.kept.is_empty()
            && (self.kept.len() >= bound.0.max(1) || self.bytes + len > bound.1)
        {
            if let Some(old) = self.kept.pop_front() {
                self.bytes -= old.stream_bytes().len();
            }
            self.missed = self.missed.saturating_add(1);
        }
        self.bytes += len;
        self.kept.push_back(message.clone());
        message
    }

    /// The client's Ack: every kept message numbered up to and including `through` goes. An Ack
    /// for a number not yet given out confirms only what was given out.
    pub(crate) fn confirm(&mut self, through: u32) {
        // The oldest kept number is `next - len`; `through` covers `through - oldest + 1` of them.
        let oldest = self.oldest();
        let covered = through.wrapping_sub(oldest).wrapping_add(1);
        let covered = usize::try_from(covered).unwrap_or(usize::MAX);
        let released = if covered <= self.kept.len() {
            covered
        } else if i32::try_from(through.wrapping_sub(oldest)).is_ok() {
            // Beyond the newest given out (in wrapping order): all of them.
            self.kept.len()
        } else {
            0
        };
        for m in self.kept.drain(..released) {
            self.bytes -= m.stream_bytes().len();
        }
    }

    fn oldest(&self) -> u32 {
        // `kept` is bounded far below 2^32, so the length fits.
        self.next
            .wrapping_sub(u32::try_from(self.kept.len()).unwrap_or(u32::MAX))
    }

    /// What a resumed session is sent first: an Ack that settles every number before the oldest
    /// kept (the client stops waiting for numbers that will never come), then every kept message
    /// again, in order, with the number it had; and the number missed since the last resume.
    pub(crate) fn resend(&mut self, layout: Vec<ChannelKind>) -> (Frame, Vec<SharedFrame>, u32) {
        self.layout = layout;
        let floor = Frame::new(Ack {
            through: self.oldest().wrapping_sub(1),
        });
        let kept = self.kept.iter().cloned().collect();
        (floor, kept, std::mem::take(&mut self.missed))
    }

    /// The kept messages without their numbers, for a session resumed by a client that does not
    /// confirm (it could not read a number), and the number missed.
    pub(crate) fn into_unnumbered(self) -> (Vec<Frame>, u32) {
        // Rare (a client that changed its mind): each parsed back from what was sent.
        let frames = self
            .kept
            .into_iter()
            .filter_map(|s| Frame::parse(s.body()).ok())
            .map(|mut f| {
                if let FrameBody::Message(m) = &mut f.body {
                    m.number = None;
                }
                f
            })
            .collect();
        (frames, self.missed)
    }

    /// Messages kept.
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }

    /// The messages kept, oldest first, as encoded.
    pub(crate) fn kept(&self) -> impl Iterator<Item = &SharedFrame> {
        self.kept.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use framewire_protocol::wire::{Message, Text};

    fn message(payload: &'static [u8]) -> NumberedMessage {
        let frame = Frame::new(Message {
            retained: false,
            number: None,
            topic: Text::from("t"),
            payload: Bytes::from_static(payload),
        });
        NumberedMessage::new(&frame).unwrap().unwrap()
    }

    fn numbers(frames: &[SharedFrame]) -> Vec<Option<u32>> {
        frames
            .iter()
            .map(|s| match Frame::parse(s.body()).unwrap().body {
                FrameBody::Message(m) => m.number,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn floor(f: &Frame) -> u32 {
        match &f.body {
            FrameBody::Ack(a) => a.through,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers_run_from_one_and_an_ack_releases_what_it_covers() {
        let mut u = Unconfirmed::new(Vec::new());
        let sent: Vec<SharedFrame> = [b"a", b"b", b"c"]
            .into_iter()
            .map(|p| u.number(&message(p), (10, usize::MAX)))
            .collect();
        assert_eq!(numbers(&sent), [Some(1), Some(2), Some(3)]);
        u.confirm(2);
        assert_eq!(u.len(), 1);
        // An old or repeated Ack changes nothing; one beyond what was given out releases all.
        u.confirm(1);
        u.confirm(0);
        assert_eq!(u.len(), 1);
        u.confirm(1000);
        assert_eq!(u.len(), 0);
        let next = u.number(&message(b"d"), (10, usize::MAX));
        assert_eq!(numbers(&[next]), [Some(4)]);
    }

    #[test]
    fn a_resume_settles_what_went_and_sends_the_rest_again_with_their_numbers() {
        let mut u = Unconfirmed::new(Vec::new());
        for p in [b"a", b"b", b"c", b"d", b"e"] {
            u.number(&message(p), (3, usize::MAX));
        }
        // The bound of 3 pushed out 1 and 2: the floor Ack settles them.
        let (ack, kept, missed) = u.resend(Vec::new());
        assert_eq!((floor(&ack), missed), (2, 2));
        assert_eq!(numbers(&kept), [Some(3), Some(4), Some(5)]);
        // Counted once; kept until confirmed.
        let (_, kept, missed) = u.resend(Vec::new());
        assert_eq!((kept.len(), missed), (3, 0));
        u.confirm(4);
        let (ack, kept, _) = u.resend(Vec::new());
        assert_eq!((floor(&ack), numbers(&kept)), (4, vec![Some(5)]));
        let (unnumbered, _) = u.into_unnumbered();
        assert_eq!(unnumbered.len(), 1);
        let FrameBody::Message(m) = &unnumbered[0].body else {
            panic!("{unnumbered:?}");
        };
        assert_eq!((m.number, &m.payload[..]), (None, &b"e"[..]));
    }

    #[test]
    fn kept_bytes_are_bounded_too() {
        let mut u = Unconfirmed::new(Vec::new());
        let one = u
            .number(&message(b"aaaa"), (10, usize::MAX))
            .stream_bytes()
            .len();
        for _ in 0..4 {
            u.number(&message(b"aaaa"), (10, 3 * one));
        }
        assert_eq!((u.len(), u.bytes), (3, 3 * one));
        let (_, kept, missed) = u.resend(Vec::new());
        assert_eq!(
            (numbers(&kept), missed),
            (vec![Some(3), Some(4), Some(5)], 2)
        );
        u.confirm(5);
        assert_eq!((u.len(), u.bytes), (0, 0));
        // A message larger than the bound is still kept, alone.
        u.number(&message(b"aaaa"), (10, 1));
        assert_eq!(u.len(), 1);
    }

    #[test]
    fn numbers_wrap() {
        let mut u = Unconfirmed::new(Vec::new());
        u.next = u32::MAX;
        let a = u.number(&message(b"a"), (10, usize::MAX));
        let b = u.number(&message(b"b"), (10, usize::MAX));
        assert_eq!(numbers(&[a, b]), [Some(u32::MAX), Some(0)]);
        u.confirm(u32::MAX);
        assert_eq!(u.len(), 1);
        u.confirm(0);
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn the_layout_decides_which_channels_are_reliable() {
        let u = Unconfirmed::new(vec![
            ChannelKind::Unreliable,
            ChannelKind::ReliableUnordered,
        ]);
        assert!(u.is_reliable(0));
        assert!(!u.is_reliable(1));
        assert!(u.is_reliable(2));
        assert!(u.is_reliable(9), "unnamed channels are reliable-ordered");
    }
}
