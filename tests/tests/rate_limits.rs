//! The per-address handshake rate: past it, a TCP connection gets Close `ADDRESS_LIMIT` and a UDP
//! Hello no answer at all; both are counted, and other addresses are not affected.

use std::net::UdpSocket;
use std::time::Duration;

use framewire_protocol::samples;
use framewire_protocol::wire::{FrameBody, HelloOptions, Reason};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, FrameStream, TestServer};

fn limited() -> ServerConfig {
    ServerConfig {
        max_handshakes_per_address_per_sec: 5,
        ..ServerConfig::default()
    }
}

#[test]
fn tcp_connections_past_the_rate_are_refused_with_a_reason() {
    let server = TestServer::start(limited());
    let mut answers = Vec::new();
    for _ in 0..8 {
        let mut c =
            FrameStream::connect_from([127, 0, 0, 7].into(), server.addr(), DEADLINE).unwrap();
        let f = c.handshake(HelloOptions::new()).expect("an answer");
        answers.push(f.body);
    }
    let welcomed = answers
        .iter()
        .filter(|b| matches!(b, FrameBody::Welcome(_)))
        .count();
    let refused = answers
        .iter()
        .filter(|b| matches!(b, FrameBody::Close(c) if c.reason == Reason::ADDRESS_LIMIT))
        .count();
    assert!((5..=6).contains(&welcomed), "{answers:?}");
    assert_eq!(welcomed + refused, 8, "{answers:?}");
    assert_eq!(server.counters().refused_rate_limited, refused as u64);
    // Another address has its own budget.
    let mut other =
        FrameStream::connect_from([127, 0, 0, 8].into(), server.addr(), DEADLINE).unwrap();
    assert!(matches!(
        other.handshake(HelloOptions::new()).unwrap().body,
        FrameBody::Welcome(_)
    ));
}

#[test]
fn udp_hellos_past_the_rate_get_no_answer() {
    let server = TestServer::start(limited());
    let socket = UdpSocket::bind("127.0.0.9:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let hello = samples::datagram(0, 0, &[samples::hello(1, 1200)], 0);
    for _ in 0..20 {
        socket.send_to(&hello, server.udp_addr()).unwrap();
    }
    let mut answers = 0;
    let mut inbox = vec![0u8; 65_536];
    while socket.recv_from(&mut inbox).is_ok() {
        answers += 1;
    }
    assert!(
        (5..=6).contains(&answers),
        "{answers} Challenges for 20 Hellos"
    );
    assert!(server.counters().refused_rate_limited >= 14);
}
