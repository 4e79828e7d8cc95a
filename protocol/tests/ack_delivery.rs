//! An Ack (docs/PROTOCOL.md sections 4.7 and 5.9) is the hub's business, not the session's: both
//! sessions hand it up like a message, in both directions, on TCP and on UDP.

use framewire_protocol::session::{Event, Instant, SessionConfig, StreamSession};
use framewire_protocol::wire::{Ack, Frame, FrameBody};

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use common::Udp;

fn acks(events: impl IntoIterator<Item = Event>) -> Vec<u32> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Ack(a),
                ..
            }) => Some(a.through),
            _ => None,
        })
        .collect()
}

fn pipe(from: &mut StreamSession, to: &mut StreamSession, now: Instant) {
    let bytes = from.pending_output().to_vec();
    from.consume_output(bytes.len());
    to.handle_bytes(now, &bytes);
}

#[test]
fn a_stream_session_hands_an_ack_up_both_ways() {
    let now = Instant::ZERO;
    let mut c = StreamSession::client(SessionConfig::default(), now);
    let mut s = StreamSession::server(SessionConfig::default(), 1, now);
    for _ in 0..2 {
        pipe(&mut c, &mut s, now);
        pipe(&mut s, &mut c, now);
    }
    assert!(matches!(c.poll_event(), Some(Event::Connected { .. })));
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    c.send(&Frame::new(Ack { through: 7 }), now).unwrap();
    s.send(&Frame::new(Ack { through: 3 }), now).unwrap();
    pipe(&mut c, &mut s, now);
    pipe(&mut s, &mut c, now);
    assert_eq!(acks(std::iter::from_fn(|| s.poll_event())), [7]);
    assert_eq!(acks(std::iter::from_fn(|| c.poll_event())), [3]);
    assert!(c.is_established() && s.is_established());
}

#[test]
fn a_udp_session_hands_an_ack_up_both_ways() {
    let mut udp = Udp::new(SessionConfig::default(), SessionConfig::default());
    udp.run();
    assert!(udp.client.is_established());
    let _ = udp.server_events();
    while udp.client.poll_event().is_some() {}
    udp.client.send(Frame::new(Ack { through: 9 })).unwrap();
    udp.server
        .as_mut()
        .unwrap()
        .send(Frame::new(Ack { through: 4 }))
        .unwrap();
    udp.run();
    assert_eq!(acks(udp.server_events()), [9]);
    assert_eq!(acks(std::iter::from_fn(|| udp.client.poll_event())), [4]);
}
