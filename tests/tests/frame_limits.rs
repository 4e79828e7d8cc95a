//! The agreed frame length against the real server, over sockets (docs/PROTOCOL.md section 6.2):
//! a client refuses a larger frame locally with a typed error and goes on, on both transports;
//! the server never sends a client more than it asked for, and refuses a Hello below the floor.

use std::time::Duration;

use bytes::Bytes;
use framewire_client::{Client, ClientError, ClientOptions, Error, FrameStream, Transport};
use framewire_protocol::wire::{
    Frame, FrameBody, Hello, HelloOptions, MIN_AGREED_FRAME_LEN, Reason, Request, Status,
    Subscribe, Text, stream_frame_len,
};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestServer, connect};

fn client(server: &TestServer, transport: Transport) -> Client {
    let addr = match transport {
        Transport::Tcp => server.addr(),
        Transport::Udp => server.udp_addr(),
    };
    Client::connect(ClientOptions::new(addr, transport)).expect("connect")
}

fn hello(max_frame_len: u32) -> Frame {
    Frame::new(Hello {
        max_frame_len,
        ..Hello::new(0, HelloOptions::new())
    })
}

/// A frame's `length` on the wire (its stream length less the prefix).
fn frame_len(frame: &Frame) -> usize {
    stream_frame_len(frame) - 4
}

#[test]
fn an_oversized_publish_is_refused_locally_and_every_operation_goes_on() {
    let server = TestServer::start(ServerConfig {
        max_frame_len: 4096,
        ..ServerConfig::default()
    });
    for transport in [Transport::Tcp, Transport::Udp] {
        let mut c = client(&server, transport);
        // 5,000 bytes of payload, topic "big/x": 5,000 + 4 (id) + 7 (topic) + 3 + 5.
        assert_eq!(
            c.publish("big/x", vec![0u8; 5000]),
            Err(Error::Client(ClientError::TooLarge {
                len: 5019,
                max: 4096
            })),
            "{transport:?}"
        );
        assert!(matches!(
            c.request("sys.ping", vec![0u8; 8000], Duration::from_secs(2)),
            Err(Error::Client(ClientError::TooLarge { max: 4096, .. }))
        ));
        assert!(matches!(
            c.queue_push("jobs", vec![0u8; 4096]),
            Err(Error::Client(ClientError::TooLarge { max: 4096, .. }))
        ));
        // The session goes on: every kind of operation still works.
        c.subscribe("big/#").unwrap();
        c.publish("big/y", "small").unwrap();
        let m = c
            .next_message(DEADLINE)
            .unwrap()
            .expect("the small message");
        assert_eq!(m.topic.as_str(), "big/y");
        assert_eq!(
            &c.request("sys.ping", "", Duration::from_secs(2)).unwrap()[..],
            b"pong"
        );
        let queue = format!("jobs.{transport:?}");
        c.queue_push(&queue, "job").unwrap();
        let got = c.queue_fetch(&queue, 1, Duration::ZERO).unwrap();
        assert_eq!(got.len(), 1, "{transport:?}");
        c.close();
    }
}

/// Against the default server, the 65,536-byte publish that used to reset the connection.
#[test]
fn a_publish_at_the_default_limit_is_refused_locally_over_tcp() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = client(&server, Transport::Tcp);
    assert!(matches!(
        c.publish("t", vec![0u8; 65_536]),
        Err(Error::Client(ClientError::TooLarge { max: 65_536, .. }))
    ));
    assert_eq!(
        &c.request("sys.ping", "", Duration::from_secs(2)).unwrap()[..],
        b"pong"
    );
}

#[test]
fn a_client_that_asked_for_600_never_gets_a_larger_frame() {
    let server = TestServer::start(ServerConfig::default());
    let mut small = connect(&server);
    small.set_read_timeout(DEADLINE).unwrap();
    small.send(&hello(600)).unwrap();
    let FrameBody::Welcome(w) = small.recv().unwrap().body else {
        panic!("no Welcome");
    };
    assert_eq!(w.max_frame_len, 600);
    small
        .send(&Frame::new(Subscribe {
            id: 1,
            filter: Text::from("big/#"),
        }))
        .unwrap();
    let mut received = vec![small.recv().unwrap()];

    let mut publisher = client(&server, Transport::Tcp);
    publisher.publish("big/x", vec![1u8; 3000]).unwrap();
    publisher.publish("big/y", "fits").unwrap();
    // sys.stats answers with some 900 bytes: too large, so refused in a Response that fits.
    small
        .send(&Frame::new(Request {
            id: 2,
            timeout_ms: 0,
            target: Text::from("sys.stats"),
            payload: Bytes::new(),
        }))
        .unwrap();
    loop {
        let f = small.recv().unwrap();
        let done = matches!(&f.body, FrameBody::Response(r) if r.id == 2);
        received.push(f);
        if done {
            break;
        }
    }
    for f in &received {
        assert!(frame_len(f) <= 600, "{} B: {:?}", frame_len(f), f.kind());
    }
    let topics: Vec<&str> = received
        .iter()
        .filter_map(|f| match &f.body {
            FrameBody::Message(m) => Some(m.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["big/y"], "the 3,000-byte message is not sent");
    let Some(FrameBody::Response(stats)) = received.last().map(|f| &f.body) else {
        unreachable!("the loop ends on it")
    };
    assert_eq!(stats.status, Status::PAYLOAD_TOO_LARGE);
    // The message it could not take is counted as dropped for it.
    let report = publisher
        .request("sys.stats", "", Duration::from_secs(2))
        .unwrap();
    let report = String::from_utf8_lossy(&report);
    assert!(report.contains("\"dropped\":1"), "{report}");
}

#[test]
fn a_hello_below_the_floor_is_rejected_with_a_reason() {
    let server = TestServer::start(ServerConfig::default());
    for asked in [0, 7, MIN_AGREED_FRAME_LEN - 1] {
        let mut c = connect(&server);
        c.set_read_timeout(DEADLINE).unwrap();
        c.send(&hello(asked)).unwrap();
        let FrameBody::Reject(r) = c.recv().unwrap().body else {
            panic!("expected a Reject for {asked}");
        };
        assert_eq!(r.reason, Reason::PROTOCOL_ERROR);
        assert!(r.message.as_str().contains("below"), "{}", r.message);
    }
    let mut c: FrameStream = connect(&server);
    c.set_read_timeout(DEADLINE).unwrap();
    c.send(&hello(MIN_AGREED_FRAME_LEN)).unwrap();
    let FrameBody::Welcome(w) = c.recv().unwrap().body else {
        panic!("no Welcome at the floor");
    };
    assert_eq!(w.max_frame_len, MIN_AGREED_FRAME_LEN);
}
