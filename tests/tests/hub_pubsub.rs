//! Publish/subscribe through a real server, over TCP and UDP: wildcards, retained messages,
//! fan-out to 1,000 subscribers, and a subscriber that cannot keep up.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{
    ChannelKind, Frame, FrameBody, Message, Publish, Reason, Subscribe, Text,
};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, DEADLINE, FrameStream, TestClient, TestServer, Via};

fn subscribe(c: &mut TestClient, id: u32, filter: &str) -> Vec<Frame> {
    c.call_ok(
        id,
        Frame::new(Subscribe {
            id,
            filter: Text::from(filter),
        }),
    )
}

fn publish_frame(id: u32, topic: &str, payload: &[u8], retain: bool) -> Frame {
    Frame::new(Publish {
        retain,
        id,
        topic: Text::from(topic),
        payload: Bytes::copy_from_slice(payload),
    })
}

fn message(f: &Frame) -> Option<&Message> {
    match &f.body {
        FrameBody::Message(m) => Some(m),
        _ => None,
    }
}

/// Which of a set of filters match which topics, through the server: one subscriber per filter,
/// and a publish per topic whose payload names it.
#[test]
fn wildcard_matching_table_over_the_wire() {
    const FILTERS: [&str; 6] = ["a/b", "a/+", "a/#", "+/b", "#", "a/+/c"];
    const TOPICS: [(&str, [bool; 6]); 5] = [
        ("a/b", [true, true, true, true, true, false]),
        ("a", [false, false, true, false, true, false]),
        ("a/x/c", [false, false, true, false, true, true]),
        ("z/b", [false, false, false, true, true, false]),
        ("$sys/b", [false, false, false, false, false, false]),
    ];
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut subs: Vec<TestClient> = FILTERS
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut c = TestClient::connect_from(
                    &server,
                    via,
                    IpAddr::from([127, 0, 0, 1]),
                    i as u64 + 1,
                );
                subscribe(&mut c, 1, f);
                c
            })
            .collect();
        let mut publisher = TestClient::connect(&server, via);
        for (topic, _) in TOPICS {
            publisher.call_ok(9, publish_frame(9, topic, topic.as_bytes(), false));
        }
        for (i, sub) in subs.iter_mut().enumerate() {
            let expected: Vec<&str> = TOPICS
                .iter()
                .filter(|(_, m)| m[i])
                .map(|(t, _)| *t)
                .collect();
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let f = sub.recv();
                let m = message(&f).expect("a Message");
                assert_eq!(m.topic.as_str().as_bytes(), &m.payload[..]);
                got.push(m.topic.as_str().to_owned());
            }
            assert_eq!(got, expected, "{via:?}: filter {}", FILTERS[i]);
            assert!(
                sub.recv_within(Duration::from_millis(100)).is_none(),
                "{via:?}: filter {} got more",
                FILTERS[i]
            );
        }
    }
}

#[test]
fn retained_message_is_delivered_on_subscribe() {
    let server = TestServer::start(ServerConfig::default());
    let mut device = TestClient::connect(&server, Via::Udp);
    device.call_ok(1, publish_frame(1, "dev/7/state", b"on", true));
    device.call_ok(2, publish_frame(2, "dev/7/state", b"off", true));
    for via in BOTH {
        let mut late = TestClient::connect(&server, via);
        let before = subscribe(&mut late, 5, "dev/+/state");
        assert!(before.is_empty());
        let f = late.recv();
        let m = message(&f).expect("the retained Message");
        assert!(m.retained);
        assert_eq!(&m.payload[..], b"off");
    }
}

/// One publisher, 1,000 TCP subscribers spread over 127.0.0.2-5, every message delivered to every
/// subscriber in the order published.
#[test]
fn one_publisher_to_a_thousand_subscribers() {
    const SUBSCRIBERS: usize = 1_000;
    const MESSAGES: u32 = 20;
    let server = TestServer::start(ServerConfig::default());
    let mut subs: Vec<TestClient> = (0..SUBSCRIBERS)
        .map(|i| {
            let from = IpAddr::from([127, 0, 0, 2 + (i % 4) as u8]);
            let mut c = TestClient::connect_from(&server, Via::Tcp, from, i as u64);
            subscribe(&mut c, 1, "game/+/tick");
            c
        })
        .collect();
    let mut publisher = TestClient::connect(&server, Via::Udp);
    for n in 0..MESSAGES {
        let id = n + 1;
        publisher.call_ok(
            id,
            publish_frame(id, "game/1/tick", &n.to_be_bytes(), false),
        );
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        for n in 0..MESSAGES {
            let f = sub.recv();
            let m = message(&f).unwrap_or_else(|| panic!("subscriber {i}: {f:?}"));
            assert_eq!(&m.payload[..], n.to_be_bytes(), "subscriber {i}");
        }
    }
    publisher.send(Frame::new(framewire_protocol::wire::Request {
        id: 99,
        timeout_ms: 0,
        target: Text::from("sys.stats"),
        payload: Bytes::new(),
    }));
    let (_, stats) = publisher.until_response(99);
    let stats = String::from_utf8(stats.payload.to_vec()).expect("UTF-8");
    let delivered = format!("\"delivered\":{}", SUBSCRIBERS as u32 * MESSAGES);
    assert!(stats.contains(&delivered), "{stats}");
    assert!(stats.contains("\"tcp\":{\"sessions\":1000,"), "{stats}");
}

/// A subscriber that never reads is closed as a slow consumer once its output reaches the bound,
/// while another subscriber that keeps up (the publisher stays within 1 MB of it) gets every
/// message.
#[test]
fn a_slow_subscriber_is_dropped_and_never_stalls_the_others() {
    const MESSAGES: u32 = 4_000;
    const PAYLOAD: usize = 4096;
    const LEAD: u32 = 256;
    let config = ServerConfig {
        max_queued_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut slow = TestClient::connect(&server, Via::Tcp);
    subscribe(&mut slow, 1, "feed");
    let mut fast = TestClient::connect(&server, Via::Tcp);
    subscribe(&mut fast, 1, "feed");
    let received = Arc::new(AtomicU32::new(0));
    let addr = server.addr();
    let progress = Arc::clone(&received);
    let publisher = std::thread::spawn(move || {
        let mut p = FrameStream::connect(addr, DEADLINE).expect("connect");
        p.handshake(framewire_protocol::wire::HelloOptions::new())
            .expect("welcome");
        let payload = vec![0x5a; PAYLOAD];
        let start = std::time::Instant::now();
        for n in 0..MESSAGES {
            while n >= progress.load(Ordering::Acquire) + LEAD {
                assert!(start.elapsed() < DEADLINE, "the fast subscriber stalled");
                std::thread::yield_now();
            }
            let mut body = n.to_be_bytes().to_vec();
            body.extend_from_slice(&payload);
            p.send(&publish_frame(0, "feed", &body, false))
                .expect("publish");
        }
        p
    });
    for n in 0..MESSAGES {
        let f = fast.recv();
        let m = message(&f).unwrap_or_else(|| panic!("message {n}: {f:?}"));
        assert_eq!(&m.payload[..4], n.to_be_bytes());
        received.store(n + 1, Ordering::Release);
    }
    let _publisher = publisher.join().expect("publisher thread");
    // 16 MB went out; the slow one's kernel buffers hold far less: it was closed with a reason.
    let mut closed = None;
    let mut messages = 0u32;
    while let Some(f) = slow.recv_within(DEADLINE) {
        match f.body {
            FrameBody::Message(_) => messages += 1,
            FrameBody::Close(c) => {
                closed = Some(c.reason);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        closed,
        Some(Reason::SLOW_CONSUMER),
        "after {messages} messages"
    );
    assert!(messages < MESSAGES);
}

/// A subscriber that does not read loses unreliable messages and keeps its connection: the server
/// drops unreliable frames above half its output bound, counts them, and still delivers the next
/// reliable message.
#[test]
fn a_slow_subscriber_loses_unreliable_messages_first() {
    const MESSAGES: u32 = 2_000;
    const LEAD: u32 = 64;
    let config = ServerConfig {
        max_queued_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    // Both subscribers lay out channel 3 as unreliable, as the client crate's default does (a
    // Hello that names no channels has every one reliable-ordered).
    let layout = || {
        framewire_protocol::wire::HelloOptions::builder()
            .channels(&[
                ChannelKind::ReliableUnordered,
                ChannelKind::UnreliableSequenced,
                ChannelKind::Unreliable,
            ])
            .build()
            .unwrap()
    };
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut slow = TestClient::connect_with(&server, Via::Tcp, localhost, 1, layout()).0;
    subscribe(&mut slow, 1, "state");
    let mut fast = TestClient::connect_with(&server, Via::Tcp, localhost, 2, layout()).0;
    subscribe(&mut fast, 1, "state");
    let received = Arc::new(AtomicU32::new(0));
    let progress = Arc::clone(&received);
    let addr = server.addr();
    let publisher = std::thread::spawn(move || {
        let mut p = FrameStream::connect(addr, DEADLINE).expect("connect");
        p.handshake(framewire_protocol::wire::HelloOptions::new())
            .expect("welcome");
        let start = std::time::Instant::now();
        for n in 0..MESSAGES {
            while n >= progress.load(Ordering::Acquire) + LEAD {
                assert!(start.elapsed() < DEADLINE, "the fast subscriber stalled");
                std::thread::yield_now();
            }
            let mut body = n.to_be_bytes().to_vec();
            body.resize(4096, 0x33);
            // Channel 3: unreliable in the subscribers' layout.
            p.send(&publish_frame(0, "state", &body, false).on_channel(3))
                .expect("publish");
        }
        p.send(&publish_frame(0, "state", b"end", false))
            .expect("publish");
        p
    });
    let mut got = 0u32;
    loop {
        let f = fast.recv();
        let m = message(&f).unwrap_or_else(|| panic!("{f:?}"));
        if &m.payload[..] == b"end" {
            break;
        }
        got += 1;
        let n = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        received.store(n + 1, Ordering::Release);
    }
    let _publisher = publisher.join().expect("publisher thread");
    assert!(got >= MESSAGES * 3 / 4, "the fast subscriber got {got}");
    let mut slow_got = 0u32;
    loop {
        let f = slow.recv();
        match &f.body {
            FrameBody::Message(m) if &m.payload[..] == b"end" => break,
            FrameBody::Message(_) => slow_got += 1,
            other => panic!("the slow subscriber got {other:?} after {slow_got} messages"),
        }
    }
    assert!(slow_got < MESSAGES, "nothing was dropped for the slow one");
    let mut probe = TestClient::connect(&server, Via::Tcp);
    probe.send(Frame::new(framewire_protocol::wire::Request {
        id: 7,
        timeout_ms: 0,
        target: Text::from("sys.stats"),
        payload: Bytes::new(),
    }));
    let (_, stats) = probe.until_response(7);
    let stats = String::from_utf8(stats.payload.to_vec()).unwrap();
    let tcp = stats.split(",\"udp\"").next().unwrap();
    assert!(!tcp.contains("\"dropped\":0,"), "{stats}");
    assert!(tcp.contains("\"slow_consumers\":0}"), "{stats}");
}
