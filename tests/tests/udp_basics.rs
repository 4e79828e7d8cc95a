//! The server over real UDP on loopback: a client `Session` does the stateless handshake, and
//! data, requests and replies flow through the datagram sessions. Every wait is a receive with a
//! short timeout inside a bounded loop, never a sleep.

use std::net::UdpSocket;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::samples;
use framewire_protocol::session::Event;
use framewire_protocol::wire::{Data, Frame, FrameBody, HelloOptions, Request, Status, Text};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestServer, UdpClient, request, sys_stat};

#[test]
fn handshake_echo_and_sys_ping_over_udp() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = UdpClient::connect_from(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        0x5eed,
        HelloOptions::new(),
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));

    c.session
        .send(
            Frame::new(Data {
                payload: Bytes::from_static(b"over udp"),
            })
            .on_channel(1),
        )
        .unwrap();
    let big = Bytes::from(vec![7u8; 20_000]);
    c.session
        .send(Frame::new(Data {
            payload: big.clone(),
        }))
        .unwrap();
    c.session
        .send(Frame::new(Request {
            id: 9,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }))
        .unwrap();
    assert!(c.run_until(
        DEADLINE,
        |e| e.iter().filter(|e| matches!(e, Event::Frame(_))).count() == 3
    ));
    let frames: Vec<&Frame> = c
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(frames.iter().any(
        |f| f.channel == 1 && matches!(&f.body, FrameBody::Data(d) if d.payload == "over udp")
    ));
    assert!(
        frames
            .iter()
            .any(|f| matches!(&f.body, FrameBody::Data(d) if d.payload == big)),
        "the 20 kB echo, reassembled"
    );
    assert!(
        frames.iter().any(
            |f| matches!(&f.body, FrameBody::Response(r) if r.id == 9 && r.status == Status::OK)
        )
    );
}

/// The frames a client's events carry, as `data N` and `response N`, in the order they came.
fn answers(c: &UdpClient) -> Vec<String> {
    c.events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(f) => Some(match &f.body {
                FrameBody::Data(d) => format!("data {}", d.payload[0]),
                FrameBody::Response(r) => format!("response {}", r.id),
                other => panic!("{other:?}"),
            }),
            _ => None,
        })
        .collect()
}

/// The server's datagram sessions answer Data themselves (`echo_data`): in one datagram, Data
/// around requests the hub answers at once come back in order on their channel, and the echoes
/// the hub never saw are in `sys.stats` all the same.
#[test]
fn echoes_keep_their_place_among_the_answers_and_are_counted() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = UdpClient::connect_from(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        0xec40,
        HelloOptions::new(),
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));
    let data = |tag: u8| {
        Frame::new(Data {
            payload: Bytes::from(vec![tag; 64]),
        })
    };
    let ping = |id: u32| request(id, "sys.ping");
    // Queued together, so one datagram on channel 0 (reliable-ordered).
    for f in [data(1), data(2), ping(10), data(3), ping(11), data(4)] {
        c.session.send(f).unwrap();
    }
    let frames = |e: &std::collections::VecDeque<Event>| {
        e.iter().filter(|e| matches!(e, Event::Frame(_))).count()
    };
    assert!(c.run_until(DEADLINE, |e| frames(e) == 6));
    assert_eq!(
        answers(&c),
        [
            "data 1",
            "data 2",
            "response 10",
            "data 3",
            "response 11",
            "data 4"
        ],
        "every answer in the order of the frames it answers"
    );

    for tag in 0..100 {
        c.session.send(data(tag)).unwrap();
    }
    assert!(c.run_until(DEADLINE, |e| frames(e) == 106));
    c.session.send(request(12, "sys.stats")).unwrap();
    assert!(c.run_until(DEADLINE, |e| frames(e) == 107));
    let Some(Event::Frame(Frame {
        body: FrameBody::Response(stats),
        ..
    })) = c.events.iter().rev().find(|e| matches!(e, Event::Frame(_)))
    else {
        panic!("expected the stats");
    };
    // In: 104 Data, 2 pings and this request; out: 104 echoes and 2 answers (the handshake is
    // not counted, nor this answer yet).
    assert_eq!(
        sys_stat(&stats.payload, "udp", "frames_in"),
        104 + 3,
        "{stats:?}"
    );
    assert_eq!(
        sys_stat(&stats.payload, "udp", "frames_out"),
        104 + 2,
        "{stats:?}"
    );
    server.stop();
}

#[test]
fn a_short_hello_gets_no_answer() {
    let server = TestServer::start(ServerConfig::default());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let hello = samples::datagram(0, 0, &[samples::hello(1, 0)], 0);
    let n = hello.len();
    assert!(n < 1200, "an unpadded Hello");
    socket.send_to(&hello, server.udp_addr()).unwrap();
    let mut inbox = [0u8; 2048];
    let answer = socket.recv_from(&mut inbox);
    assert!(
        answer.is_err(),
        "the server answered a short Hello: {answer:?}"
    );
}

/// The client's source port changes mid-session (a NAT rebinding): the server validates the new
/// address and the session goes on there, requests and answers included.
#[test]
fn a_client_whose_source_port_changes_keeps_its_session() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = UdpClient::connect_from(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        0x70_12,
        HelloOptions::new(),
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));
    let ping = |id| {
        Frame::new(Request {
            id,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        })
    };
    let answered = |id: u32| {
        move |e: &std::collections::VecDeque<Event>| {
            e.iter().any(|e| {
                matches!(e, Event::Frame(f) if matches!(&f.body, FrameBody::Response(r) if r.id == id && r.status == Status::OK))
            })
        }
    };
    c.session.send(ping(1)).unwrap();
    assert!(c.run_until(DEADLINE, answered(1)));
    let before = c.local_addr();
    c.rebind();
    assert_ne!(c.local_addr().port(), before.port());
    for id in 2..5 {
        c.session.send(ping(id)).unwrap();
        assert!(
            c.run_until(DEADLINE, answered(id)),
            "request {id} after the move"
        );
    }
}

/// Past `max_udp_sessions`, a handshake gets a Reject with `SESSION_LIMIT`, counted, and no session.
#[test]
fn the_udp_session_limit_refuses_with_a_reason() {
    let config = ServerConfig {
        max_udp_sessions: 2,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut clients: Vec<UdpClient> = (0..3)
        .map(|i| {
            UdpClient::connect_from(
                [127, 0, 0, 1].into(),
                server.udp_addr(),
                100 + i,
                HelloOptions::new(),
            )
        })
        .collect();
    for c in &mut clients[..2] {
        assert!(c.run_until(DEADLINE, |e| {
            e.iter().any(|e| matches!(e, Event::Connected { .. }))
        }));
    }
    let third = &mut clients[2];
    assert!(third.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Closed { .. }))
    }));
    assert!(matches!(
        third
            .events
            .iter()
            .find(|e| matches!(e, Event::Closed { .. })),
        Some(Event::Closed {
            reason: framewire_protocol::wire::Reason::SESSION_LIMIT,
            ..
        })
    ));
    assert_eq!(server.counters().refused_session_limit, 1);
}

#[test]
fn a_server_with_tcp_turned_off_still_serves_udp() {
    let server = TestServer::start_udp_only(ServerConfig::default());
    assert!(!server.serves_tcp());
    let mut c = UdpClient::connect_from(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        0x0ff,
        HelloOptions::new(),
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));
    c.session
        .send(Frame::new(Request {
            id: 1,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }))
        .unwrap();
    assert!(c.run_until(DEADLINE, |e| {
        e.iter()
            .any(|e| matches!(e, Event::Frame(f) if matches!(f.body, FrameBody::Response(_))))
    }));
    server.stop();
}

#[test]
fn a_server_with_neither_tcp_nor_udp_refuses_to_start() {
    let config = ServerConfig {
        tcp_addr: None,
        udp_addr: None,
        http_addr: None,
        ..ServerConfig::default()
    };
    let err = framewire_server::Server::bind(&config).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither TCP, TLS, UDP, HTTP nor HTTPS"),
        "{err}"
    );
}
