//! Random operation sequences on two sessions over the simulated network, and the guarantees that
//! must hold once the network is clean again.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use crate::session::{Event, SendError, SessionConfig};
use crate::sim::{LinkConfig, Pair};
use crate::wire::{Data, Frame, FrameBody, Reason};

/// Message ids sent, by direction (0: a to b, 1: b to a) and channel.
type Sent = [[Vec<u32>; 4]; 2];

/// Interprets `data` as a sequence of operations on two sessions joined by the simulated network
/// (send on each channel, send large messages, advance time, change loss, duplication and
/// reordering, close), then makes the network clean and checks that the pair settles within a
/// bound with every delivery guarantee kept and no protocol violation counted. Panics on a
/// broken invariant.
pub fn session_ops(data: &[u8]) {
    // Honest peers, so real CRCs: the CRC is what refuses a duplicate so late that its compact
    // packet number restores to another (section 2.4).
    crate::wire::check_even_when_fuzzing();
    let mut ops = data.iter().copied();
    let seed = u64::from(ops.next().unwrap_or(0));
    // An idle timeout well inside the settling bound: a peer whose Close was lost every time
    // learns of it only by this timeout.
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(60),
        max_queued_bytes: 256 * 1024,
        ..SessionConfig::default()
    };
    // An odd seed makes `b` a server's session that answers Data itself (`echo_data`), with no
    // application to resume it: what `b` echoes comes back to `a`, the rest reaches `b`.
    let echo = seed % 2 == 1;
    let config_b = SessionConfig {
        echo_data: echo,
        ..config.clone()
    };
    let mut pair = Pair::new(config, config_b, &LinkConfig::default(), seed);
    // A seed with bit 1 set seals the pair (version 4, docs/PROTOCOL.md section 2.5): duplicates
    // become replays, late datagrams may restore to numbers they were not sealed under.
    if seed & 2 != 0 {
        crate::sim::seal_pair(
            &mut pair.a,
            &mut pair.b,
            crate::wire::SEALED_COMPACT_VERSION,
        );
    }
    let mut sent: Sent = Default::default();
    let mut next_id = 0u32;
    let mut closed = false;
    while let Some(op) = ops.next() {
        let arg = ops.next().unwrap_or(0);
        apply(&mut pair, op, arg, &mut sent, &mut next_id, &mut closed);
    }
    settle(&mut pair, closed);
    let ended = pair.a.is_closed() || pair.b.is_closed();
    // Ids are unique across both directions: a Data frame `a` got with one of its own ids is an
    // echo. Echoes were all answered before `b` handed over its first Data frame (nothing
    // resumes it), so on each channel `b` took them first.
    let (echoes, from_b): (Vec<Event>, Vec<Event>) = pair
        .events_a
        .iter()
        .cloned()
        .partition(|e| data_id(e).is_some_and(|id| sent[0].iter().any(|c| c.contains(&id))));
    assert!(
        echo || echoes.is_empty(),
        "a session that does not echo echoed"
    );
    let took: Vec<Event> = echoes.iter().chain(&pair.events_b).cloned().collect();
    check_deliveries(&took, &sent[0], ended, echo);
    check_deliveries(&from_b, &sent[1], ended, false);
    assert_eq!(
        pair.a.stats().refused,
        0,
        "a refused a frame from an honest peer"
    );
    assert_eq!(
        pair.b.stats().refused,
        0,
        "b refused a frame from an honest peer"
    );
}

fn apply(pair: &mut Pair, op: u8, arg: u8, sent: &mut Sent, next_id: &mut u32, closed: &mut bool) {
    match op % 10 {
        kind @ (0..=4 | 8) => {
            let (dir, channel) = match kind {
                4 => (1, 0),
                8 => (0, if arg.is_multiple_of(2) { 0 } else { 3 }),
                c => (0, c),
            };
            let len = if kind == 8 {
                3000 + usize::from(arg) * 64
            } else {
                usize::from(arg) * 4
            };
            let mut payload = vec![0u8; len.max(4)];
            payload[..4].copy_from_slice(&next_id.to_be_bytes());
            let frame = Frame::new(Data {
                payload: Bytes::from(payload),
            })
            .on_channel(channel);
            let session = if dir == 0 { &mut pair.a } else { &mut pair.b };
            match session.send(frame) {
                Ok(()) => sent[dir][usize::from(channel)].push(*next_id),
                Err(SendError::QueueFull | SendError::Closed) => {}
                Err(e) => panic!("send failed: {e}"),
            }
            *next_id += 1;
        }
        5 => {
            let until = pair.now + Duration::from_millis(u64::from(arg) * 4);
            pair.run_until(until, |_| false);
            pair.now = pair.now.max(until);
        }
        6 => {
            let loss = f64::from(arg) / 255.0 * 0.6;
            pair.a_to_b.loss = loss;
            pair.b_to_a.loss = loss;
        }
        7 => {
            let p = f64::from(arg & 0x0f) / 15.0 * 0.3;
            let q = f64::from(arg >> 4) / 15.0 * 0.3;
            pair.a_to_b.duplicate = p;
            pair.b_to_a.reorder = p;
            pair.a_to_b.reorder = q;
            pair.b_to_a.duplicate = q;
            pair.a_to_b.jitter = Duration::from_millis(u64::from(arg & 7));
        }
        _ => {
            if arg < 8 && !*closed {
                let now = pair.now;
                let side = if arg.is_multiple_of(2) {
                    &mut pair.a
                } else {
                    &mut pair.b
                };
                side.close(now, Reason::NORMAL, "");
                *closed = true;
            }
        }
    }
}

/// Makes the network clean and runs until the pair has nothing left to do: both ended, or
/// nothing queued, in flight or in transit.
fn settle(pair: &mut Pair, closed: bool) {
    let clean = LinkConfig::default();
    pair.a_to_b = clean.clone();
    pair.b_to_a = clean;
    let deadline = pair.now + Duration::from_secs(600);
    let settled = pair.run_until(deadline, |p| {
        // Once either side has ended (a close, or an idle timeout during a long loss spell), the
        // pair has settled when both have.
        if closed || p.a.is_closed() || p.b.is_closed() {
            return p.a.is_closed() && p.b.is_closed();
        }
        let (a, b) = (p.a.stats(), p.b.stats());
        p.in_transit() == 0
            && a.queued_bytes == 0
            && b.queued_bytes == 0
            && a.bytes_in_flight == 0
            && b.bytes_in_flight == 0
    });
    assert!(
        settled,
        "the pair did not settle within 600 s of a clean network"
    );
}

/// The id a Data event carries.
fn data_id(e: &Event) -> Option<u32> {
    match e {
        Event::Frame(Frame {
            body: FrameBody::Data(d),
            ..
        }) => Some(u32::from_be_bytes([
            d.payload[0],
            d.payload[1],
            d.payload[2],
            d.payload[3],
        ])),
        _ => None,
    }
}

/// Checks what one side delivered against what the other sent to it. `echoed`: part of what was
/// delivered was answered and is known from the answers, which unreliable channels may lose or
/// reorder against what was handed over, so the sequenced channel's order is not checked there.
fn check_deliveries(events: &[Event], want: &[Vec<u32>; 4], ended: bool, echoed: bool) {
    let mut got: [Vec<u32>; 4] = Default::default();
    for e in events {
        if let (Some(id), Event::Frame(f)) = (data_id(e), e) {
            got[usize::from(f.channel)].push(id);
        }
    }
    for (channel, ids) in got.iter().enumerate() {
        assert!(
            ids.iter().all(|id| want[channel].contains(id)),
            "channel {channel}: delivered a message never sent on it"
        );
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ids.len(),
            "channel {channel}: delivered twice"
        );
    }
    assert!(
        echoed || got[2].windows(2).all(|w| w[0] < w[1]),
        "sequenced channel delivered a stale message"
    );
    if ended && echoed {
        // Answers in flight at the end are lost with the session: what is known of the ordered
        // channel is in order, with gaps.
        let at: Vec<Option<usize>> = got[0]
            .iter()
            .map(|id| want[0].iter().position(|w| w == id))
            .collect();
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "reliable-ordered: out of order before the end"
        );
    } else if ended {
        // Until the end, what was delivered on the ordered channel is a prefix, in order.
        assert!(
            want[0].starts_with(&got[0]),
            "reliable-ordered: out of order before the end"
        );
    } else {
        assert_eq!(
            got[0], want[0],
            "reliable-ordered: not every message, or not in order"
        );
        let mut unordered = got[1].clone();
        unordered.sort_unstable();
        assert_eq!(unordered, want[1], "reliable-unordered: not every message");
    }
}
