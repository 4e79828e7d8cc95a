//! Where the server and docs/PROTOCOL.md used to disagree, each checked against the real server
//! over sockets: the spec's word is what the server does.

use std::time::Duration;

use bytes::Bytes;
use framewire_client::{Client, ClientOptions, PublishOptions, Transport};
use framewire_protocol::wire::{ChannelKind, Frame, FrameBody, Hello, HelloOptions, Ping, Reason};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestClient, TestServer, Via, request};

/// Section 3.4: channels a Hello does not name are reliable-ordered. A UDP subscriber whose Hello
/// names none gets a message published on channel 3 (unreliable in the publisher's layout) as a
/// reliable-ordered one, with its sequence number; the server used to apply its own default
/// layout and send it unsequenced, which such a client refuses.
#[test]
fn channels_a_hello_does_not_name_are_reliable_ordered() {
    let server = TestServer::start(ServerConfig::default());
    let mut o = ClientOptions::new(server.udp_addr(), Transport::Udp);
    o.session.channels = vec![ChannelKind::ReliableOrdered];
    let mut subscriber = Client::connect(o).unwrap();
    subscriber.subscribe("room/state").unwrap();
    let mut publisher =
        Client::connect(ClientOptions::new(server.udp_addr(), Transport::Udp)).unwrap();
    let on_3 = PublishOptions {
        channel: 3,
        ..PublishOptions::default()
    };
    publisher.publish_with("room/state", "x=1", on_3).unwrap();
    let m = subscriber
        .next_message(DEADLINE)
        .unwrap()
        .expect("the message on channel 3");
    assert_eq!((m.channel, &m.payload[..]), (3, &b"x=1"[..]));
    assert!(subscriber.next_message(Duration::ZERO).unwrap().is_none());
}

/// Section 2.2: a datagram failing a check is dropped and counted: bad magic, a bad checksum on a
/// handshake datagram and on a live session's are all in `sys.stats`'s `udp_bad_datagrams` (they
/// moved no counter before).
#[test]
fn a_dropped_datagram_is_counted() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = TestClient::connect(&server, Via::Udp);
    let TestClient::Udp(udp) = &mut c else {
        unreachable!("connected over UDP")
    };
    let cid = udp.session.connection_id();
    let to = server.udp_addr();
    let mut bad_crc = framewire_protocol::samples::datagram(cid, 999, &[ping()], 0);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut handshake = framewire_protocol::samples::datagram(0, 0, &[ping()], 1200);
    handshake[20] ^= 1;
    for datagram in [&b"not framewire at all"[..], &handshake, &bad_crc] {
        udp.socket().send_to(datagram, to).unwrap();
    }
    let start = std::time::Instant::now();
    while server.counters().udp_dropped < 3 {
        assert!(start.elapsed() < DEADLINE, "{:?}", server.counters());
        // Keep the session turning, so its counts are gathered.
        udp.step();
    }
    assert_eq!(server.counters().udp_dropped, 3);
    c.send(request(5, "sys.stats"));
    let (_, stats) = c.until_response(5);
    let stats = String::from_utf8_lossy(&stats.payload).into_owned();
    assert!(stats.contains("\"udp_bad_datagrams\":3"), "{stats}");
}

/// Sections 3.3 and 7: an unknown critical kind over UDP is answered with an Error
/// `UNKNOWN_KIND` naming it (nothing was sent before), and the session goes on.
#[test]
fn an_unknown_critical_kind_over_udp_gets_an_error() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = TestClient::connect(&server, Via::Udp);
    let TestClient::Udp(udp) = &mut c else {
        unreachable!("connected over UDP")
    };
    udp.session
        .send_encoded(0, Bytes::from_static(&[0x7E, 0x00, 0x00, 1, 2, 3]))
        .unwrap();
    udp.step();
    let f = c
        .recv_within(std::time::Duration::from_secs(2))
        .unwrap_or_else(|| panic!("{:?}", server.counters()));
    match f.body {
        FrameBody::Error(e) => {
            assert_eq!((e.reason, e.refused_kind), (Reason::UNKNOWN_KIND, 0x7E));
        }
        other => panic!("{other:?}"),
    }
    c.send(request(6, "sys.ping"));
    let (_, pong) = c.until_response(6);
    assert_eq!(&pong.payload[..], b"pong");
}

fn ping() -> Frame {
    Frame::new(Ping { timestamp_us: 1 })
}

/// Section 4.1: a Hello's idle timeout below 100 ms counts as 100 ms (a 1 ms one was agreed), and
/// the heartbeat interval in force is never above a third of the agreed idle timeout (it could be
/// above the idle timeout itself). The UDP endpoint agrees by the same rule (`terms.rs`).
#[test]
fn the_idle_timeout_has_a_floor_and_the_heartbeat_keeps_within_it() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = framewire_tests::connect(&server);
    c.set_read_timeout(DEADLINE).unwrap();
    c.send(&Frame::new(Hello {
        idle_timeout_ms: 1,
        ..Hello::new(0, HelloOptions::new())
    }))
    .unwrap();
    let FrameBody::Welcome(w) = c.recv().unwrap().body else {
        panic!("no Welcome");
    };
    assert_eq!(w.idle_timeout_ms, 100);
    assert_eq!(w.heartbeat_interval_ms, 33);
}

/// Section 7b: the spec gives the server's first-frame deadline as what the server does (it said
/// 10 s, the client's handshake timeout, while the server closed at 5 s).
#[test]
fn the_first_frame_deadline_the_spec_gives_is_the_servers() {
    let spec = include_str!("../../docs/PROTOCOL.md");
    let default = ServerConfig::default().first_frame_deadline_ms;
    assert_eq!(default, 5000);
    assert!(
        spec.contains("`first_frame_deadline_ms`, 5 s by default"),
        "section 7b names another first-frame deadline"
    );
    assert!(!spec.contains("handshake timeout (10 s) of accepting the"));
}
