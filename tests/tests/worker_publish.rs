//! Publishes the worker that reads them delivers itself (a topic whose subscribers are all that
//! worker's stream sessions; docs/PROTOCOL.md section 5.2): every message arrives once and in
//! order, whichever way each went, and `sys.stats` counts them as it counts the hub's.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use framewire_protocol::wire::{
    Frame, FrameBody, HelloOptions, Publish, Status, Subscribe, Text, Unsubscribe,
    encode_stream_frame_into,
};
use framewire_server::ServerConfig;
use framewire_tests::{StreamClient, TestClient, TestServer, Via, request, sys_stat};

/// One worker: every TCP and WebSocket session is its own.
fn one_worker() -> ServerConfig {
    ServerConfig {
        threads: 1,
        ..ServerConfig::default()
    }
}

fn publish(topic: &str, n: u32) -> Frame {
    Frame::new(Publish {
        retain: false,
        id: 0,
        topic: Text::from(topic),
        payload: Bytes::copy_from_slice(&n.to_be_bytes()),
    })
}

/// Writes `frames` to a TCP client's socket in one write, so the server reads them together.
fn send_together(c: &mut TestClient, frames: &[Frame]) {
    let mut bytes = BytesMut::new();
    for f in frames {
        encode_stream_frame_into(f, &mut bytes).expect("encode");
    }
    match c {
        TestClient::Tcp(StreamClient::Tcp(s)) => s.send_raw(&bytes).expect("write"),
        other => panic!("not a TCP client: {other:?}"),
    }
}

/// The number a Message carries, or the frame if it is not one.
fn number(f: &Frame) -> u32 {
    match &f.body {
        FrameBody::Message(m) => u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes")),
        other => panic!("{other:?}"),
    }
}

fn stats(c: &mut TestClient, id: u32) -> Vec<u8> {
    c.send(request(id, "sys.stats"));
    let (_, r) = c.until_response(id);
    assert_eq!(r.status, Status::OK);
    r.payload.to_vec()
}

#[test]
fn publishes_to_one_workers_sessions_skip_the_hub_and_arrive_once_in_order() {
    const MESSAGES: u32 = 2_000;
    let server = TestServer::start(one_worker());
    let mut subs: Vec<TestClient> = [Via::Tcp, Via::Tcp, Via::WebSocket]
        .into_iter()
        .enumerate()
        .map(|(i, via)| {
            let mut c =
                TestClient::connect_from(&server, via, IpAddr::from([127, 0, 0, 1]), i as u64);
            c.subscribe_ok(1, "room/+");
            c
        })
        .collect();
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    // The first Publish goes through the hub, which tells the worker the topic's route.
    send_together(&mut publisher, &[publish("room/1", 0)]);
    for sub in &mut subs {
        assert_eq!(number(&sub.recv()), 0);
    }
    for batch in 0..MESSAGES / 100 {
        let frames: Vec<Frame> = (0..100)
            .map(|k| batch * 100 + k + 1)
            .filter(|&n| n < MESSAGES)
            .map(|n| publish("room/1", n))
            .collect();
        send_together(&mut publisher, &frames);
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        for n in 1..MESSAGES {
            assert_eq!(number(&sub.recv()), n, "subscriber {i}");
        }
    }
    let s = stats(&mut publisher, 9);
    assert_eq!(sys_stat(&s, "hub", "published"), u64::from(MESSAGES));
    assert_eq!(sys_stat(&s, "hub", "delivered"), 3 * u64::from(MESSAGES));
    assert_eq!(
        sys_stat(&s, "hub", "published_by_workers"),
        u64::from(MESSAGES) - 1
    );
    // Each Publish and each Message counted once, by transport.
    assert!(sys_stat(&s, "tcp", "frames_in") >= u64::from(MESSAGES));
    assert!(sys_stat(&s, "tcp", "frames_out") >= 2 * u64::from(MESSAGES));
    assert!(sys_stat(&s, "websocket", "frames_out") >= u64::from(MESSAGES));
}

/// A Subscribe read together with the Publishes after it takes effect before them (so the
/// publisher gets its own message), and an Unsubscribe likewise: a frame waiting for the hub
/// holds back the Publishes behind it, whatever the worker knew of their topic.
#[test]
fn a_subscription_change_read_with_publishes_applies_to_the_publishes_after_it() {
    let server = TestServer::start(one_worker());
    let mut c = TestClient::connect(&server, Via::Tcp);
    // The worker learns that "solo" has nobody, and the next ones go by that route.
    for n in 0..50 {
        send_together(&mut c, &[publish("solo", n)]);
    }
    c.send(request(1, "sys.ping"));
    let (before, _) = c.until_response(1);
    assert!(before.is_empty(), "{before:?}");
    let subscribe = Frame::new(Subscribe {
        id: 2,
        filter: Text::from("solo"),
    });
    send_together(
        &mut c,
        &[subscribe, publish("solo", 100), publish("solo", 101)],
    );
    let (before, ok) = c.until_response(2);
    assert_eq!(ok.status, Status::OK);
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(number(&c.recv()), 100);
    assert_eq!(number(&c.recv()), 101);
    let unsubscribe = Frame::new(Unsubscribe {
        id: 3,
        filter: Text::from("solo"),
    });
    send_together(
        &mut c,
        &[publish("solo", 102), unsubscribe, publish("solo", 103)],
    );
    assert_eq!(number(&c.recv()), 102);
    let (before, ok) = c.until_response(3);
    assert_eq!(ok.status, Status::OK);
    assert!(before.is_empty(), "{before:?}");
    c.send(request(4, "sys.ping"));
    let (before, _) = c.until_response(4);
    assert!(
        before.is_empty(),
        "103 came after the unsubscribe: {before:?}"
    );
    let s = stats(&mut c, 5);
    assert!(sys_stat(&s, "hub", "published_by_workers") > 0);
}

/// Publishes `range` to "feed", the first alone and read by every subscriber before the rest go
/// in writes of 20; each subscriber must get each in order.
fn phase(publisher: &mut TestClient, subs: &mut [TestClient], range: std::ops::Range<u32>) {
    let mut next = range.start;
    while next < range.end {
        let len = if next == range.start {
            1
        } else {
            20.min(range.end - next)
        };
        let frames: Vec<Frame> = (next..next + len).map(|n| publish("feed", n)).collect();
        send_together(publisher, &frames);
        for (i, sub) in subs.iter_mut().enumerate() {
            for n in next..next + len {
                assert_eq!(number(&sub.recv()), n, "subscriber {i}");
            }
        }
        next += len;
    }
}

/// Subscribers join a busy topic: a TCP one and a UDP one (the worker's own sessions: the worker
/// learns the topic's new route), then one whose client confirms what it gets (its Messages are
/// numbered, which is the hub's state: the topic goes through the hub while it is there). Every
/// subscriber gets every message from its subscription on, once, in order, and the worker
/// delivers exactly the Publishes it knew a route for.
#[test]
fn subscribers_joining_a_busy_topic_move_its_route_and_miss_nothing() {
    let server = TestServer::start(one_worker());
    let mut subs = vec![TestClient::connect(&server, Via::Tcp)];
    subs[0].subscribe_ok(1, "feed");
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    phase(&mut publisher, &mut subs, 0..2_000);
    let confirms = HelloOptions::builder().confirms().build().expect("options");
    for (via, options) in [
        (Via::Tcp, HelloOptions::new()),
        (Via::Udp, HelloOptions::new()),
        (Via::Tcp, confirms),
    ] {
        let from = IpAddr::from([127, 0, 0, 2]);
        let (mut c, _) = TestClient::connect_with(&server, via, from, subs.len() as u64, options);
        assert!(c.subscribe_ok(1, "feed").is_empty());
        subs.push(c);
        let at = 2_000 * (subs.len() as u32 - 1);
        phase(&mut publisher, &mut subs, at..at + 2_000);
    }
    let s = stats(&mut publisher, 9);
    assert_eq!(sys_stat(&s, "hub", "published"), 8_000);
    assert_eq!(sys_stat(&s, "hub", "delivered"), 2_000 * (1 + 2 + 3 + 4));
    // Each phase's first Publish taught the worker the route; the last phase's says "the hub".
    assert_eq!(sys_stat(&s, "hub", "published_by_workers"), 3 * 1_999);
    // The hub numbered the last phase's Messages for the subscriber that confirms (and keeps the
    // newest of them, bounded, until it does).
    assert!(sys_stat(&s, "hub", "unconfirmed_messages") > 0);
}
