//! Several worker threads: sessions land on different workers (`SO_REUSEPORT` spreads them), and the
//! hub still reaches every one, in order; a UDP client that keeps changing its source port (each
//! port may hash to another worker) keeps its session.

use std::net::IpAddr;

use bytes::Bytes;
use framewire_protocol::session::Event;
use framewire_protocol::wire::{
    Frame, FrameBody, HelloOptions, Publish, Request, Status, Subscribe, Text,
};
use framewire_server::{ServerConfig, UdpOffload};
use framewire_tests::{DEADLINE, TestClient, TestServer, UdpClient, Via};

/// Four workers, receiving UDP with `recvmmsg` and sending one datagram per call (the defaults
/// are the other way round, and tested everywhere else).
fn four_workers() -> ServerConfig {
    ServerConfig {
        threads: 4,
        udp_offload: UdpOffload {
            batch_receive: true,
            segment_receive: true,
            segment_send: false,
        },
        ..ServerConfig::default()
    }
}

#[test]
fn a_publish_reaches_subscribers_on_every_worker_in_order() {
    let server = TestServer::start(four_workers());
    let mut subs: Vec<TestClient> = (0..40)
        .map(|i| {
            let via = if i % 2 == 0 { Via::Tcp } else { Via::Udp };
            let from = IpAddr::from([127, 0, 0, 1]);
            let mut c = TestClient::connect_from(&server, via, from, i);
            c.call_ok(
                1,
                Frame::new(Subscribe {
                    id: 1,
                    filter: Text::from("all"),
                }),
            );
            c
        })
        .collect();
    let mut publisher = TestClient::connect(&server, Via::Tcp);
    for n in 0..50u32 {
        publisher.send(Frame::new(Publish {
            retain: false,
            id: 0,
            topic: Text::from("all"),
            payload: Bytes::copy_from_slice(&n.to_be_bytes()),
        }));
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        for n in 0..50u32 {
            match sub.recv().body {
                FrameBody::Message(m) => {
                    assert_eq!(&m.payload[..], n.to_be_bytes(), "subscriber {i}");
                }
                other => panic!("subscriber {i}: {other:?}"),
            }
        }
    }
    publisher.send(Frame::new(Request {
        id: 9,
        timeout_ms: 0,
        target: Text::from("sys.stats"),
        payload: Bytes::new(),
    }));
    let (_, stats) = publisher.until_response(9);
    let stats = String::from_utf8_lossy(&stats.payload).into_owned();
    assert!(stats.contains("\"tcp\":{\"sessions\":21,"), "{stats}");
    assert!(stats.contains("\"udp\":{\"sessions\":20,"), "{stats}");
}

#[test]
fn a_udp_client_hopping_ports_keeps_its_session_across_workers() {
    let server = TestServer::start(four_workers());
    let mut c = UdpClient::connect_from(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        77,
        HelloOptions::new(),
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));
    for id in 1..=12u32 {
        c.rebind();
        c.session
            .send(Frame::new(Request {
                id,
                timeout_ms: 0,
                target: Text::from("sys.ping"),
                payload: Bytes::new(),
            }))
            .unwrap();
        let answered = |e: &std::collections::VecDeque<Event>| {
            e.iter().any(|e| {
                matches!(e, Event::Frame(f) if matches!(&f.body, FrameBody::Response(r) if r.id == id && r.status == Status::OK))
            })
        };
        assert!(
            c.run_until(DEADLINE, answered),
            "request {id} after hop {id}"
        );
    }
}
