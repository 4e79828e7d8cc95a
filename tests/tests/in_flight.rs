//! A break loses nothing that was in flight (docs/PROTOCOL.md section 5.9), through a real server:
//! reliable messages written to a TCP socket that then dropped, or in flight on a UDP path that a
//! resuming client took over, come again on the resumed session, numbered, and the reference
//! client delivers each to its application exactly once.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_client::{Client, ClientEvent, ClientOptions, Transport};
use framewire_protocol::wire::{Ack, Frame, FrameBody, HelloOptions, Publish, Subscribe, Text};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, DEADLINE, TcpCut, TestClient, TestServer, Via, request};

const LOCAL: [u8; 4] = [127, 0, 0, 1];

fn publish(c: &mut TestClient, id: u32, payload: &str) {
    c.call_ok(
        id,
        Frame::new(Publish {
            retain: false,
            id,
            topic: Text::from("dev/7/temp"),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        }),
    );
}

/// The next Message, as (number, payload).
fn next_message(c: &mut TestClient) -> (Option<u32>, String) {
    match c.recv().body {
        FrameBody::Message(m) => (m.number, String::from_utf8_lossy(&m.payload).into_owned()),
        other => panic!("expected a Message: {other:?}"),
    }
}

/// `sys.stats`'s count of numbered messages the server keeps unconfirmed, asked on `c`'s session
/// (so it is answered after everything `c` sent before it).
fn unconfirmed(c: &mut TestClient, id: u32) -> String {
    c.send(request(id, "sys.stats"));
    let (_, r) = c.until_response(id);
    let stats = String::from_utf8_lossy(&r.payload).into_owned();
    let at = stats.find("\"unconfirmed_messages\":").expect("the count");
    stats[at..]
        .split([',', '}'])
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The device confirms 1 of 2 messages it read, then 2 more are written to its connection, which it
/// never reads: over TCP the connection drops with them in the socket; over UDP the device goes
/// silent with them in flight and comes back on a new socket within the idle timeout (a takeover).
/// The resumed session gets an Ack settling 1, then 2, 3 and 4 again with their numbers.
#[test]
fn what_a_broken_session_did_not_confirm_comes_again_with_its_numbers() {
    let server = TestServer::start(ServerConfig::default());
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    for (round, via) in BOTH.into_iter().enumerate() {
        let confirms = HelloOptions::builder().confirms().build().unwrap();
        let (mut device, welcomed) =
            TestClient::connect_with(&server, via, IpAddr::from(LOCAL), 7, confirms);
        device.call_ok(
            1,
            Frame::new(Subscribe {
                id: 1,
                filter: Text::from("dev/#"),
            }),
        );
        let base = 10 * round as u32;
        publish(&mut publisher, base + 1, "m1");
        publish(&mut publisher, base + 2, "m2");
        assert_eq!(next_message(&mut device), (Some(1), "m1".into()), "{via:?}");
        assert_eq!(next_message(&mut device), (Some(2), "m2".into()), "{via:?}");
        device.send(Frame::new(Ack { through: 1 }));
        assert_eq!(unconfirmed(&mut device, 2), "\"unconfirmed_messages\":1");
        publish(&mut publisher, base + 3, "m3");
        publish(&mut publisher, base + 4, "m4");
        device.vanish();

        let resume = HelloOptions::builder()
            .confirms()
            .resume_token(&welcomed.token)
            .build()
            .unwrap();
        let (mut back, welcomed) =
            TestClient::connect_with(&server, via, IpAddr::from(LOCAL), 8, resume);
        assert!(welcomed.resumed, "{via:?}");
        assert_eq!(welcomed.missed, 0);
        match back.recv().body {
            FrameBody::Ack(a) => assert_eq!(a.through, 1, "{via:?}"),
            other => panic!("{via:?}: expected the server's Ack: {other:?}"),
        }
        for (n, want) in [(2, "m2"), (3, "m3"), (4, "m4")] {
            assert_eq!(next_message(&mut back), (Some(n), want.into()), "{via:?}");
        }
        back.send(Frame::new(Ack { through: 4 }));
        assert_eq!(unconfirmed(&mut back, 3), "\"unconfirmed_messages\":0");
        publish(&mut publisher, base + 5, "m5");
        assert_eq!(
            next_message(&mut back),
            (Some(5), "m5".into()),
            "numbering goes on"
        );
        back.close();
    }
}

/// A session without `CONFIRMS` gets the shared, unnumbered Messages of before.
#[test]
fn a_session_that_does_not_confirm_gets_unnumbered_messages() {
    let server = TestServer::start(ServerConfig::default());
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    for via in BOTH {
        let mut device = TestClient::connect(&server, via);
        device.call_ok(
            1,
            Frame::new(Subscribe {
                id: 1,
                filter: Text::from("dev/#"),
            }),
        );
        publish(&mut publisher, 2, "m1");
        assert_eq!(next_message(&mut device), (None, "m1".into()), "{via:?}");
        assert_eq!(unconfirmed(&mut device, 3), "\"unconfirmed_messages\":0");
        device.close();
    }
}

fn payload_of(m: &framewire_client::Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// The reference client through a TCP path that fails: its Acks stop arriving while it reads
/// m1..m5, then nothing arrives either way while m6..m10 are written, then the connection is
/// reset. The client reconnects and resumes by itself; the server sends m1..m10 again; the
/// application gets each of m1..m10 exactly once, in order, and the client counts the five it
/// did not deliver twice.
#[test]
fn the_client_delivers_each_message_once_across_a_break_that_lost_some_in_flight() {
    let server = TestServer::start(ServerConfig::default());
    let cut = TcpCut::start(server.addr());
    let mut device =
        Client::connect(ClientOptions::new(cut.addr, Transport::Tcp)).expect("connect");
    device.subscribe("dev/#").expect("subscribe");
    let mut publisher =
        Client::connect(ClientOptions::new(server.addr(), Transport::Tcp)).expect("connect");
    cut.swallow(true, false);
    for i in 1..=5 {
        publisher.publish("dev/7/temp", format!("m{i}")).unwrap();
    }
    for i in 1..=5 {
        let m = device.next_message(DEADLINE).unwrap().expect("a message");
        assert_eq!(payload_of(&m), format!("m{i}"));
    }
    cut.swallow(true, true);
    for i in 6..=10 {
        publisher.publish("dev/7/temp", format!("m{i}")).unwrap();
    }
    cut.cut();
    for i in 6..=10 {
        let m = device.next_message(DEADLINE).unwrap().expect("a message");
        assert_eq!(payload_of(&m), format!("m{i}"), "after the break");
    }
    publisher.publish("dev/7/temp", "m11").unwrap();
    let m = device.next_message(DEADLINE).unwrap().expect("a message");
    assert_eq!(payload_of(&m), "m11", "nothing twice, and live again");
    assert_eq!(device.connection().duplicates_suppressed(), 5);
    // The client confirms by itself (at most 50 ms after a delivery): the server keeps nothing.
    let start = std::time::Instant::now();
    loop {
        let stats = publisher
            .request("sys.stats", "", DEADLINE)
            .expect("sys.stats");
        if String::from_utf8_lossy(&stats).contains("\"unconfirmed_messages\":0,") {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never confirmed");
        assert!(
            device
                .next_message(Duration::from_millis(20))
                .unwrap()
                .is_none()
        );
    }
    let events = device.connection_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { resumed: true, .. })),
        "{events:?}"
    );
}
