//! Versions 1, 2 and 3 together (docs/PROTOCOL.md sections 2.4 and 4.1): a client and a server
//! that both take version 2 agree it and their session datagrams are compact; both taking 3, their
//! coalesced frames share headers too; a side without 3 agrees 2 with one that has it, and a side
//! without 2 agrees 1, every datagram of the version-1 form; messages pass both ways whatever was
//! agreed. (Sealed sessions, which speak 4 or 1: protocol/tests/sealed.rs.)

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use bytes::Bytes;
use common::Udp;
use framewire_protocol::session::{Event, Session, SessionConfig};
use framewire_protocol::wire::{Data, Frame, FrameBody, MAGIC, is_compact};

fn config(compact: bool) -> SessionConfig {
    SessionConfig {
        compact_datagrams: compact,
        ..SessionConfig::default()
    }
}

/// Compact datagrams, with or without version 3's shared headers.
fn compact(shared: bool) -> SessionConfig {
    SessionConfig {
        shared_headers: shared,
        ..config(true)
    }
}

/// The length of the datagram `s` sends with eight 8-byte messages queued on channel 0.
fn eight_coalesced(s: &mut Session, now: framewire_protocol::session::Instant) -> usize {
    for _ in 0..8 {
        s.send(data(b"8 bytes!")).unwrap();
    }
    let mut buf = vec![0u8; 2048];
    s.poll_transmit(now, &mut buf).expect("a datagram").len
}

/// A pair of which `client` and `server` say whether each takes version 3, both taking 2: what
/// they agree, and the length of a datagram of eight coalesced messages each way.
fn agree_compact(client: bool, server: bool) -> (u8, u8, usize, usize) {
    let mut udp = Udp::new(compact(client), compact(server));
    udp.run();
    let now = udp.now;
    let (c, s) = (udp.client.version(), udp.server.as_ref().unwrap().version());
    let up = eight_coalesced(&mut udp.client, now);
    let down = eight_coalesced(udp.server.as_mut().unwrap(), now);
    udp.run();
    both_ways(&mut udp);
    (c, s, up, down)
}

#[test]
fn a_pair_that_both_take_version_3_shares_frame_headers() {
    let (c, s, up, down) = agree_compact(true, true);
    assert_eq!((c, s), (3, 3));
    let (_, _, up2, down2) = agree_compact(false, false);
    // Seven of the eight frames go as the marker and their payload: 4 bytes fewer each (kind,
    // flags, channel and a 16-bit SEQ against one byte).
    assert_eq!((up, down), (up2 - 7 * 4, down2 - 7 * 4));
}

#[test]
fn a_side_without_version_3_agrees_2_with_one_that_has_it() {
    for (client, server) in [(true, false), (false, true)] {
        let (c, s, up, down) = agree_compact(client, server);
        assert_eq!((c, s), (2, 2), "client {client}, server {server}");
        let (_, _, up2, down2) = agree_compact(false, false);
        assert_eq!((up, down), (up2, down2), "no header shared in version 2");
    }
}

fn data(text: &'static [u8]) -> Frame {
    Frame::new(Data {
        payload: Bytes::from_static(text),
    })
}

/// The next datagram `s` sends with `message` queued: is it compact?
fn next_is_compact(s: &mut Session, now: framewire_protocol::session::Instant) -> bool {
    s.send(data(b"which form?")).unwrap();
    let mut buf = vec![0u8; 2048];
    let t = s.poll_transmit(now, &mut buf).expect("a datagram");
    let compact = is_compact(&buf[..t.len]);
    assert!(compact || buf[..2] == MAGIC, "either form");
    compact
}

fn payloads(events: impl Iterator<Item = Event>) -> Vec<Bytes> {
    events
        .filter_map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Data(d),
                ..
            }) => Some(d.payload),
            _ => None,
        })
        .collect()
}

/// Both ways, whatever the pair agreed: a message from each side arrives once.
fn both_ways(udp: &mut Udp) {
    let _ = udp.server_events();
    while udp.client.poll_event().is_some() {}
    udp.client.send(data(b"up")).unwrap();
    udp.server.as_mut().unwrap().send(data(b"down")).unwrap();
    udp.run();
    assert!(payloads(udp.server_events().into_iter()).contains(&Bytes::from_static(b"up")));
    assert!(
        payloads(std::iter::from_fn(|| udp.client.poll_event()))
            .contains(&Bytes::from_static(b"down"))
    );
}

#[test]
fn a_pair_that_both_take_version_2_goes_compact() {
    let mut udp = Udp::new(config(true), config(true));
    udp.run();
    assert!(udp.client.uses_compact_datagrams());
    assert!(udp.server.as_ref().unwrap().uses_compact_datagrams());
    let now = udp.now;
    assert!(next_is_compact(&mut udp.client, now));
    assert!(next_is_compact(udp.server.as_mut().unwrap(), now));
    udp.run();
    both_ways(&mut udp);
}

/// A pair of which one side does not take version 2: both speak 1, every datagram (either way) is
/// of the version-1 form, and messages pass.
fn agrees_version_1(client: bool, server: bool) {
    let mut udp = Udp::new(config(client), config(server));
    udp.run();
    assert!(udp.client.is_established());
    assert!(!udp.client.uses_compact_datagrams());
    assert!(!udp.server.as_ref().unwrap().uses_compact_datagrams());
    let now = udp.now;
    assert!(!next_is_compact(&mut udp.client, now));
    assert!(!next_is_compact(udp.server.as_mut().unwrap(), now));
    udp.run();
    both_ways(&mut udp);
}

#[test]
fn a_version_1_client_and_a_version_2_server_agree_1() {
    agrees_version_1(false, true);
}

#[test]
fn a_version_2_client_and_a_server_without_it_agree_1() {
    agrees_version_1(true, false);
}

/// A compact datagram of connection 5 numbered `pn`, carrying one reliable message numbered `pn`.
fn compact_message(pn: u32) -> Bytes {
    use framewire_protocol::wire::{DatagramBuilder, PacketHeader};
    let mut frame = data(b"m");
    frame.seq = Some(pn);
    let header = PacketHeader {
        connection_id: 5,
        packet_number: pn,
        ack: None,
    };
    let mut buf = vec![0u8; 1200];
    let mut b = DatagramBuilder::new_compact(&mut buf, &header, pn.checked_sub(1)).unwrap();
    assert!(b.push(&frame).unwrap());
    let n = b.finish().unwrap();
    Bytes::copy_from_slice(&buf[..n])
}

/// An established session of compact datagrams under connection 5, its peer, and the time.
fn compact_receiver() -> (
    Session,
    std::net::SocketAddr,
    framewire_protocol::session::Instant,
) {
    let peer: std::net::SocketAddr = "10.0.0.9:9".parse().unwrap();
    let t0 = framewire_protocol::session::Instant::from_millis(1000);
    let mut s = Session::established(config(true), 5, peer, t0);
    s.use_compact_datagrams();
    (s, peer, t0)
}

/// Section 7a.2: a receiver of version 2 holds an ack at most 50 ms, and acks at once after 4
/// ack-eliciting datagrams.
#[test]
fn a_compact_receiver_holds_an_ack_at_most_50_ms_or_4_datagrams() {
    use framewire_protocol::wire::{CompactContext, Datagram};
    let (mut s, peer, t0) = compact_receiver();
    let mut buf = vec![0u8; 2048];
    s.handle_datagram(t0, peer, compact_message(0));
    assert!(s.poll_transmit(t0, &mut buf).is_none(), "held");
    let due = s.poll_timeout().expect("an ack timer");
    assert_eq!(due, t0 + std::time::Duration::from_millis(50));
    let before = due - std::time::Duration::from_millis(1);
    assert!(
        s.poll_transmit(before, &mut buf).is_none(),
        "still held at 49 ms"
    );
    s.handle_timeout(due);
    let t = s.poll_transmit(due, &mut buf).expect("the ack at 50 ms");
    let ack = Datagram::parse_compact(
        Bytes::copy_from_slice(&buf[..t.len]),
        &CompactContext::default(),
    )
    .unwrap();
    assert_eq!(ack.header.ack.map(|a| a.largest), Some(0));
    // Four more, back to back: the fourth is acked at once.
    let t1 = due + std::time::Duration::from_millis(1);
    for pn in 1..4 {
        s.handle_datagram(t1, peer, compact_message(pn));
        assert!(s.poll_transmit(t1, &mut buf).is_none(), "held after {pn}");
    }
    s.handle_datagram(t1, peer, compact_message(4));
    assert!(
        s.poll_transmit(t1, &mut buf).is_some(),
        "acked after the fourth"
    );
}

/// Section 7a.2: after a gap, the datagram that shows it and the two after it are acknowledged at
/// once, in any version: the first ack-only datagram may be lost, and a held ack would leave the
/// sender without news of the loss for a whole ack delay (at 60 Hz in version 2, about 50 ms more
/// on the stream's delivery tail under loss).
#[test]
fn a_receiver_acks_the_gap_and_the_two_datagrams_after_it_at_once() {
    let (mut s, peer, t0) = compact_receiver();
    let mut buf = vec![0u8; 2048];
    s.handle_datagram(t0, peer, compact_message(0));
    assert!(s.poll_transmit(t0, &mut buf).is_none(), "in order: held");
    // 1 is lost.
    for pn in 2..5 {
        s.handle_datagram(t0, peer, compact_message(pn));
        assert!(
            s.poll_transmit(t0, &mut buf).is_some(),
            "datagram {pn}: acked at once"
        );
    }
    s.handle_datagram(t0, peer, compact_message(5));
    assert!(
        s.poll_transmit(t0, &mut buf).is_none(),
        "the third after the gap: held again"
    );
}
