//! Section 7a.1: handshake datagrams are outside the session's packet numbers. The server's
//! Challenge and Welcome carry number 0, and so does its first datagram of the session, which the
//! client takes (it does not record the Welcome's number).

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use bytes::Bytes;
use common::{Udp, client_addr, server_addr};
use framewire_protocol::session::{Event, Outcome, SessionConfig};
use framewire_protocol::wire::{CompactContext, Data, Datagram, Frame, FrameBody};

#[test]
fn the_welcome_and_the_first_session_datagram_are_both_number_0() {
    let mut udp = Udp::new(SessionConfig::default(), SessionConfig::default());
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let mut numbers = Vec::new();
    // Hello, Challenge, Hello with the cookie, Welcome.
    for _ in 0..2 {
        let t = udp.client.poll_transmit(udp.now, &mut buf).unwrap();
        let hello = Datagram::parse(Bytes::copy_from_slice(&buf[..t.len])).unwrap();
        numbers.push(("hello", hello.header.packet_number));
        let reply = match udp
            .ep
            .handle(udp.now, client_addr(), &buf[..t.len], &mut out)
        {
            Outcome::Reply(n) => n,
            Outcome::Accept { session, reply } => {
                udp.server = Some(*session);
                reply
            }
            other => panic!("{other:?}"),
        };
        let d = Datagram::parse(Bytes::copy_from_slice(&out[..reply])).unwrap();
        numbers.push(("reply", d.header.packet_number));
        udp.client.handle_datagram(
            udp.now,
            server_addr(),
            Bytes::copy_from_slice(&out[..reply]),
        );
    }
    assert_eq!(
        numbers,
        [("hello", 0), ("reply", 0), ("hello", 1), ("reply", 0)]
    );
    assert!(udp.client.is_established());
    let server = udp.server.as_mut().unwrap();
    server
        .send(Frame::new(Data {
            payload: Bytes::from_static(b"first"),
        }))
        .unwrap();
    let t = server.poll_transmit(udp.now, &mut buf).unwrap();
    // Version 2 was agreed: the session's datagrams are compact (section 2.4).
    let first = Datagram::parse_compact(
        Bytes::copy_from_slice(&buf[..t.len]),
        &CompactContext::default(),
    )
    .unwrap();
    assert_eq!(first.header.packet_number, 0);
    udp.client.handle_datagram(
        udp.now,
        server_addr(),
        Bytes::copy_from_slice(&buf[..t.len]),
    );
    let events: Vec<Event> = std::iter::from_fn(|| udp.client.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Frame(Frame { body: FrameBody::Data(d), .. }) if &d.payload[..] == b"first")),
        "{events:?}"
    );
}
