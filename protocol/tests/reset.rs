//! The stateless Reset (docs/PROTOCOL.md section 4.11): a server without the session answers a
//! client's datagram with a Reset no larger than it, and the client that sent that datagram ends
//! the session at once; a Reset that echoes nothing the client sent is dropped.

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use bytes::Bytes;
use common::{MS, Udp, server_addr};
use framewire_protocol::session::{Closer, Endpoint, Event, SessionConfig};
use framewire_protocol::wire::{Data, Frame, Reason, Reset};

/// A client established with a server, and the next datagram it sends (a message), as the
/// restarted server would receive it.
fn client_and_its_datagram() -> (Udp, Vec<u8>) {
    let mut udp = Udp::new(SessionConfig::default(), SessionConfig::default());
    udp.run();
    assert!(udp.client.is_established());
    udp.client
        .send(Frame::new(Data {
            // Long enough that the Reset (33 bytes) is no larger, in the compact form too.
            payload: Bytes::from_static(b"are you there? the line went quiet"),
        }))
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let t = udp
        .client
        .poll_transmit(udp.now, &mut buf)
        .expect("a datagram");
    buf.truncate(t.len);
    (udp, buf)
}

#[test]
fn a_reset_echoing_a_datagram_the_client_sent_ends_its_session_at_once() {
    let (mut udp, datagram) = client_and_its_datagram();
    let mut out = vec![0u8; 2048];
    let n = Endpoint::reset(&datagram, &mut out).expect("a reset");
    assert!(n <= datagram.len(), "{n} > {}", datagram.len());
    assert_eq!(n, 21, "a compact Reset, as the datagram it answers");
    let _ = std::iter::from_fn(|| udp.client.poll_event()).count();
    udp.client.handle_datagram(
        udp.now + MS,
        server_addr(),
        Bytes::copy_from_slice(&out[..n]),
    );
    assert_eq!(
        udp.client.poll_event(),
        Some(Event::Closed {
            reason: Reason::UNKNOWN_SESSION,
            message: "the server does not know this session (Reset)".into(),
            by: Closer::Peer,
        })
    );
    assert!(udp.client.is_closed());
}

/// A session's smallest datagram, its heartbeat (a lone Ping, 21 bytes compact), gets a Reset: a
/// client whose server restarted while it sent nothing else learns at once.
#[test]
fn a_heartbeat_gets_a_reset_too() {
    let mut udp = Udp::new(SessionConfig::default(), SessionConfig::default());
    udp.run();
    let _ = std::iter::from_fn(|| udp.client.poll_event()).count();
    let mut buf = vec![0u8; 2048];
    let later = udp.now + std::time::Duration::from_secs(2);
    udp.client.handle_timeout(later);
    let t = udp
        .client
        .poll_transmit(later, &mut buf)
        .expect("a heartbeat");
    let mut out = vec![0u8; 2048];
    let n = Endpoint::reset(&buf[..t.len], &mut out).expect("a reset");
    assert!(n <= t.len, "{n} > {}", t.len);
    udp.client
        .handle_datagram(later, server_addr(), Bytes::copy_from_slice(&out[..n]));
    assert!(udp.client.is_closed());
}

#[test]
fn a_reset_that_echoes_nothing_sent_is_dropped() {
    let (mut udp, datagram) = client_and_its_datagram();
    let mut out = vec![0u8; 2048];
    // A datagram the client never sent (one byte of it changed, its CRC made good again).
    let mut forged = datagram.clone();
    forged[10] ^= 1;
    let body = forged.len() - 4;
    let crc = framewire_protocol::wire::crc32(&forged[..body]);
    forged[body..].copy_from_slice(&crc.to_be_bytes());
    let n = Endpoint::reset(&forged, &mut out).expect("a reset");
    let _ = std::iter::from_fn(|| udp.client.poll_event()).count();
    udp.client
        .handle_datagram(udp.now, server_addr(), Bytes::copy_from_slice(&out[..n]));
    assert_eq!(udp.client.poll_event(), None);
    assert!(udp.client.is_established());
    // A server session never takes a Reset from its client for its own.
    let server = udp.server.as_mut().unwrap();
    let header = framewire_protocol::wire::PacketHeader {
        connection_id: server.connection_id(),
        packet_number: 0,
        ack: None,
    };
    let mut buf = vec![0u8; 64];
    let mut b = framewire_protocol::wire::DatagramBuilder::new(&mut buf, &header).unwrap();
    assert!(
        b.push(&Frame::new(Reset {
            packet_number: 0,
            crc: 0
        }))
        .unwrap()
    );
    let len = b.finish().unwrap();
    server.handle_datagram(
        udp.now,
        common::client_addr(),
        Bytes::copy_from_slice(&buf[..len]),
    );
    assert!(server.is_established());
}

fn empty_data() -> Frame {
    Frame::new(Data {
        payload: Bytes::new(),
    })
}

#[test]
fn nothing_answers_a_handshake_a_damaged_datagram_or_a_smaller_one() {
    let (_, datagram) = client_and_its_datagram();
    let mut out = vec![0u8; 2048];
    // Damaged: a version-1 datagram that does not verify gets nothing.
    let payload = Frame::new(Data {
        payload: Bytes::from_static(b"long enough for a reset of its own"),
    });
    let mut damaged = framewire_protocol::samples::datagram(7, 3, &[payload], 0);
    assert!(Endpoint::reset(&damaged, &mut out).is_some());
    damaged[18] ^= 0xff;
    assert_eq!(Endpoint::reset(&damaged, &mut out), None);
    // A compact one's CRC covers its whole packet number, which only its session knows: the
    // server checks its structure and answers (the client takes the Reset only if it echoes a
    // datagram the client sent).
    let mut compact = datagram.clone();
    compact[18] ^= 0xff;
    assert!(Endpoint::reset(&compact, &mut out).is_some());
    // Bit 2 says sealed (version 4): its header checks without keys, and it is answered (a
    // restarted server has lost them).
    compact[0] |= 0x04;
    assert!(Endpoint::reset(&compact, &mut out).is_some(), "sealed");
    compact[0] |= 0x03;
    assert_eq!(
        Endpoint::reset(&compact, &mut out),
        None,
        "a reserved packet number length"
    );
    // Connection id 0 is the handshake's.
    let hello = framewire_protocol::samples::datagram(0, 0, &[empty_data()], 0);
    assert_eq!(Endpoint::reset(&hello, &mut out), None);
    // Smaller than a reset: an ack-free datagram of one small frame (26 bytes) gets none.
    let small = framewire_protocol::samples::datagram(7, 3, &[empty_data()], 0);
    assert!(small.len() < 33);
    assert_eq!(Endpoint::reset(&small, &mut out), None);
}
