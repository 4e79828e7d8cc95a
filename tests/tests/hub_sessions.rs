//! Sessions that outlive a connection, through a real server over TCP and UDP: a client that
//! vanishes and comes back with its session token gets its subscriptions and the reliable messages
//! it missed; a token for a live session takes it over; a last will is published when a client
//! vanishes.

use std::net::IpAddr;

use bytes::Bytes;
use framewire_protocol::wire::{FrameBody, HelloOptions, LastWill, Reason, Text};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, DEADLINE, TestClient, TestServer, Via, request};

const LOCAL: [u8; 4] = [127, 0, 0, 1];

fn next_message(c: &mut TestClient) -> Bytes {
    match c.recv().body {
        FrameBody::Message(m) => m.payload,
        other => panic!("expected a Message: {other:?}"),
    }
}

/// Asks `sys.stats` until `parked_sessions` reads `n`.
fn wait_for_parked(c: &mut TestClient, n: u32) {
    let want = format!("\"parked_sessions\":{n},");
    let start = std::time::Instant::now();
    for id in 1000.. {
        c.send(request(id, "sys.stats"));
        let (_, r) = c.until_response(id);
        if String::from_utf8_lossy(&r.payload).contains(&want) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "never parked: {:?}", r.payload);
    }
}

fn resume_options(token: &[u8]) -> HelloOptions {
    HelloOptions::builder().resume_token(token).build().unwrap()
}

/// The session ends without a Close (TCP: the socket drops; UDP: the idle timeout), messages are
/// published, and the client comes back with its token.
#[test]
fn a_vanished_client_resumes_with_what_it_missed() {
    let config = ServerConfig {
        idle_timeout_ms: 600,
        heartbeat_interval_ms: 150,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    publisher.subscribe_ok(1, "gone/#");
    for (round, via) in BOTH.into_iter().enumerate() {
        let topic = format!("sensor/{round}/temp");
        // The device's last will tells the test the moment the server has ended its session.
        let will = LastWill {
            retain: false,
            channel: 0,
            topic: Text::from(format!("gone/{round}").as_str()),
            payload: Bytes::new(),
        };
        let options = HelloOptions::builder().last_will(&will).build().unwrap();
        let (mut device, welcomed) =
            TestClient::connect_with(&server, via, IpAddr::from(LOCAL), 7, options);
        assert!(!welcomed.resumed);
        assert_eq!(welcomed.token.len(), 17);
        device.subscribe_ok(1, "sensor/+/temp");
        publisher.publish_ok(2, &topic, b"before");
        assert_eq!(&next_message(&mut device)[..], b"before");
        device.vanish();
        match publisher.recv().body {
            FrameBody::Message(m) => assert_eq!(m.topic.as_str(), will.topic.as_str()),
            other => panic!("{other:?}"),
        }
        wait_for_parked(&mut publisher, 1);
        for (i, p) in [&b"m1"[..], b"m2", b"m3"].into_iter().enumerate() {
            publisher.publish_ok(10 + i as u32, &topic, p);
        }
        let (mut back, welcomed) = TestClient::connect_with(
            &server,
            via,
            IpAddr::from(LOCAL),
            8,
            resume_options(&welcomed.token),
        );
        assert!(welcomed.resumed, "{via:?}");
        assert_eq!(welcomed.missed, 0);
        for want in ["m1", "m2", "m3"] {
            assert_eq!(&next_message(&mut back)[..], want.as_bytes(), "{via:?}");
        }
        publisher.publish_ok(20, &topic, b"after");
        assert_eq!(&next_message(&mut back)[..], b"after", "subscribed again");
        wait_for_parked(&mut publisher, 0);
        back.close();
    }
}

/// A client whose old connection is still open (the server has not noticed it is gone) resumes:
/// the old connection is closed with `SESSION_TAKEN_OVER` and the subscriptions move.
#[test]
fn a_token_for_a_live_session_takes_it_over() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let (mut old, welcomed) =
            TestClient::connect_with(&server, via, IpAddr::from(LOCAL), 3, HelloOptions::new());
        old.subscribe_ok(1, "lobby");
        let (mut new, again) = TestClient::connect_with(
            &server,
            via,
            IpAddr::from(LOCAL),
            4,
            resume_options(&welcomed.token),
        );
        assert!(again.resumed);
        match old.recv_within(DEADLINE).map(|f| f.body) {
            Some(FrameBody::Close(c)) => assert_eq!(c.reason, Reason::SESSION_TAKEN_OVER),
            other => panic!("{via:?}: {other:?}"),
        }
        let mut publisher = TestClient::connect(&server, Via::Tcp);
        publisher.publish_ok(2, "lobby", b"hello");
        assert_eq!(&next_message(&mut new)[..], b"hello");
    }
}

#[test]
fn a_last_will_is_published_when_a_client_vanishes() {
    let config = ServerConfig {
        idle_timeout_ms: 600,
        heartbeat_interval_ms: 150,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut watcher = TestClient::connect(&server, Via::Tcp);
    watcher.subscribe_ok(1, "dev/+/online");
    for (i, via) in BOTH.into_iter().enumerate() {
        let will = LastWill {
            retain: true,
            channel: 0,
            topic: Text::from(format!("dev/{i}/online").as_str()),
            payload: Bytes::from_static(b"false"),
        };
        let options = HelloOptions::builder().last_will(&will).build().unwrap();
        let (device, _) = TestClient::connect_with(&server, via, IpAddr::from(LOCAL), 11, options);
        device.vanish();
        match watcher.recv().body {
            FrameBody::Message(m) => {
                assert_eq!(m.topic.as_str(), will.topic.as_str(), "{via:?}");
                assert_eq!(&m.payload[..], b"false");
            }
            other => panic!("{via:?}: {other:?}"),
        }
    }
}
