//! Connection limits over real TCP: past the limit a client gets a Close naming the reason, the
//! refusal is counted, and a closed connection frees its place.

use std::net::IpAddr;

use framewire_protocol::wire::{Frame, FrameBody, HelloOptions, Reason};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, FrameStream, RecvError, TestServer};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Connects from `from` and says Hello; returns the stream and the server's first frame.
fn hello(server: &TestServer, from: &str) -> (FrameStream, Frame) {
    let mut c = FrameStream::connect_from(ip(from), server.addr(), DEADLINE).expect("connect");
    let answer = c.handshake(HelloOptions::new()).expect("an answer");
    (c, answer)
}

fn closed_with(frame: &Frame, reason: Reason) -> bool {
    matches!(&frame.body, FrameBody::Close(c) if c.reason == reason)
}

#[test]
fn past_max_connections_a_client_is_closed_with_server_full() {
    let server = TestServer::start(ServerConfig {
        max_connections: 3,
        ..ServerConfig::default()
    });
    let mut open: Vec<FrameStream> = Vec::new();
    for i in 0..3 {
        let (c, answer) = hello(&server, &format!("127.0.0.{}", i + 2));
        assert!(matches!(answer.body, FrameBody::Welcome(_)), "{answer:?}");
        open.push(c);
    }
    let (mut fourth, answer) = hello(&server, "127.0.0.9");
    assert!(closed_with(&answer, Reason::SERVER_FULL), "{answer:?}");
    assert!(matches!(fourth.recv(), Err(RecvError::Closed)));
    assert_eq!(server.counters().refused_server_full, 1);

    // One leaves; its place is free again once the server has seen it go.
    drop(open.pop());
    let started = std::time::Instant::now();
    loop {
        let (_c, answer) = hello(&server, "127.0.0.9");
        if matches!(answer.body, FrameBody::Welcome(_)) {
            break;
        }
        assert!(closed_with(&answer, Reason::SERVER_FULL), "{answer:?}");
        assert!(started.elapsed() < DEADLINE, "the place never came free");
    }
}

#[test]
fn past_the_per_address_limit_only_that_address_is_refused() {
    let server = TestServer::start(ServerConfig {
        max_connections_per_address: 2,
        ..ServerConfig::default()
    });
    let (_a, first) = hello(&server, "127.0.0.2");
    let (_b, second) = hello(&server, "127.0.0.2");
    assert!(matches!(first.body, FrameBody::Welcome(_)));
    assert!(matches!(second.body, FrameBody::Welcome(_)));
    let (_c, third) = hello(&server, "127.0.0.2");
    assert!(closed_with(&third, Reason::ADDRESS_LIMIT), "{third:?}");
    let (_d, other) = hello(&server, "127.0.0.3");
    assert!(
        matches!(other.body, FrameBody::Welcome(_)),
        "another address is still served"
    );
    assert_eq!(server.counters().refused_address_limit, 1);
}
