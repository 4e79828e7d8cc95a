//! framewire-client against a real server: the blocking API over TCP and UDP, typed errors,
//! reconnecting after the server restarts, session resume, and the poll-driven API driven by the
//! test's own loop.

use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{
    Client, ClientError, ClientEvent, ClientOptions, Connection, Error, PublishOptions, Reconnect,
    Transport,
};
use framewire_protocol::wire::{LastWill, Status, Text};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestServer, drive_until};

const BOTH: [Transport; 2] = [Transport::Tcp, Transport::Udp];

fn options(server: &TestServer, transport: Transport) -> ClientOptions {
    let addr = match transport {
        Transport::Tcp => server.addr(),
        Transport::Udp => server.udp_addr(),
    };
    let mut o = ClientOptions::new(addr, transport);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Reconnect::default()
    });
    o
}

fn client(server: &TestServer, transport: Transport) -> Client {
    Client::connect(options(server, transport)).expect("connect")
}

#[test]
fn publish_subscribe_request_and_queues_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    for transport in BOTH {
        let mut a = client(&server, transport);
        let mut b = client(&server, transport);
        a.subscribe("chat/+").unwrap();
        b.publish("chat/lobby", "hi").unwrap();
        let m = a.next_message(DEADLINE).unwrap().expect("a message");
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            ("chat/lobby", &b"hi"[..])
        );

        assert_eq!(
            &a.request("sys.ping", "", Duration::from_secs(2)).unwrap()[..],
            b"pong"
        );

        // A service on one client, a requester on the other.
        let service = format!("upper.{transport:?}");
        b.register(&service).unwrap();
        let responder = std::thread::spawn(move || {
            let r = b.next_request(DEADLINE).unwrap().expect("a request");
            let upper = r.payload.to_ascii_uppercase();
            b.respond(&r, Status::OK, upper).unwrap();
            b
        });
        let answer = a
            .request(&service, "shout", Duration::from_secs(5))
            .unwrap();
        assert_eq!(&answer[..], b"SHOUT");
        let mut b = responder.join().unwrap();

        let queue = format!("jobs.{transport:?}");
        b.queue_push(&queue, "job-1").unwrap();
        let got = a.queue_fetch(&queue, 10, Duration::ZERO).unwrap();
        assert_eq!(got.len(), 1);
        a.queue_ack(&queue, got[0].delivery_id).unwrap();
        a.close();
        b.close();
    }
}

/// Large messages over UDP go out as runs of same-size fragments in one segmented send each, and
/// the server and the client read them back coalesced (both on by default, on Linux): every message
/// arrives whole, both ways, on each of the server's UDP receive paths.
#[test]
fn large_udp_messages_cross_segmented_sends_and_coalesced_reads() {
    for batch_receive in [false, true] {
        let mut config = ServerConfig::default();
        config.udp_offload.batch_receive = batch_receive;
        let server = TestServer::start(config);
        let mut a = client(&server, Transport::Udp);
        a.subscribe("big").unwrap();
        let sizes = [30_000, 1_100, 65_000, 5];
        for (i, &size) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..size).map(|j| (i * 7 + j) as u8).collect();
            a.publish("big", payload.clone()).unwrap();
            let m = a.next_message(DEADLINE).unwrap().expect("the message back");
            assert_eq!(m.payload.len(), size, "batch_receive {batch_receive}");
            assert!(
                m.payload == payload,
                "batch_receive {batch_receive}: bytes differ"
            );
        }
    }
}

#[test]
fn failures_are_typed() {
    let server = TestServer::start(ServerConfig::default());
    for transport in BOTH {
        let mut a = client(&server, transport);
        assert_eq!(
            a.request("nobody", "", Duration::from_secs(1)),
            Err(Error::Status {
                status: Status::NO_RESPONDER,
                message: "no service of that name".into()
            })
        );
        // A service that never answers: the server's deadline passes.
        let mut silent = client(&server, transport);
        let name = format!("silent.{transport:?}");
        silent.register(&name).unwrap();
        let started = Instant::now();
        match a.request(&name, "", Duration::from_millis(200)) {
            Err(Error::Status { status, .. }) => assert_eq!(status, Status::TIMEOUT),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(200));
        match a.subscribe("a/#/b") {
            Err(Error::Status { status, .. }) => assert_eq!(status, Status::INVALID_TOPIC),
            other => panic!("{other:?}"),
        }
    }
    // Nothing listens there: unreachable (TCP refuses at once; UDP hears nothing in time).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut o = ClientOptions::new(addr, Transport::Tcp);
    o.connect_timeout = Duration::from_secs(2);
    assert!(matches!(
        Client::connect(o),
        Err(ClientError::Unreachable(_))
    ));
    let mut o = ClientOptions::new(addr, Transport::Udp);
    o.connect_timeout = Duration::from_millis(300);
    assert!(matches!(
        Client::connect(o),
        Err(ClientError::TimedOut | ClientError::Unreachable(_))
    ));
}

#[test]
fn clients_reconnect_after_the_server_restarts() {
    let server = TestServer::start(ServerConfig::default());
    let (tcp, udp) = (server.addr(), server.udp_addr());
    let mut subs: Vec<Client> = BOTH
        .iter()
        .map(|&t| {
            let mut c = client(&server, t);
            c.subscribe("news").unwrap();
            c
        })
        .collect();
    server.stop();
    let server = TestServer::start_on(ServerConfig::default(), tcp, udp);
    let mut publisher = client(&server, Transport::Tcp);
    for (i, sub) in subs.iter_mut().enumerate() {
        // Until the subscriber is back (and, the new server knowing nothing of it, has subscribed
        // again by itself), publishes reach nobody: publish until one arrives.
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "subscriber {i} never came back");
            publisher.publish("news", "again").unwrap();
            if let Some(m) = sub.next_message(Duration::from_millis(50)).unwrap() {
                assert_eq!(&m.payload[..], b"again");
                break;
            }
        }
    }
}

/// The poll-driven API in a test's own loop: a client that stops running (a frozen game, a
/// sleeping device) loses its connection, comes back, resumes its session, and gets what was
/// published meanwhile.
#[test]
fn a_poll_driven_client_resumes_its_session_after_freezing() {
    let config = ServerConfig {
        idle_timeout_ms: 400,
        heartbeat_interval_ms: 100,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    for transport in BOTH {
        let mut watcher = client(&server, Transport::Tcp);
        let gone = format!("gone/{transport:?}");
        watcher.subscribe(&gone).unwrap();
        let mut o = options(&server, transport);
        o.last_will = Some(LastWill {
            retain: false,
            channel: 0,
            topic: Text::from(gone.as_str()),
            payload: Bytes::new(),
        });
        let mut conn = Connection::new(o, Instant::now()).unwrap();
        let mut events = Vec::new();
        let run = drive_until;
        run(&mut conn, &mut events, &|e| {
            e.iter().any(|e| matches!(e, ClientEvent::Connected { .. }))
        });
        let topic = format!("game/{transport:?}");
        let sub = conn.subscribe(Instant::now(), &topic).unwrap();
        run(&mut conn, &mut events, &|e| {
            e.iter().any(|e| matches!(e, ClientEvent::Response { id, status, .. } if *id == sub && *status == Status::OK))
        });
        // Frozen: no update. The server times the session out and publishes the will.
        let will = watcher
            .next_message(DEADLINE)
            .unwrap()
            .expect("the last will");
        assert_eq!(will.topic.as_str(), gone);
        watcher.publish(&topic, "while-away").unwrap();
        events.clear();
        run(&mut conn, &mut events, &|e| {
            e.iter().any(|e| matches!(e, ClientEvent::Message(_)))
        });
        let connected = events
            .iter()
            .find_map(|e| match e {
                ClientEvent::Connected { resumed, missed } => Some((*resumed, *missed)),
                _ => None,
            })
            .expect("reconnected");
        assert_eq!(connected, (true, 0), "{transport:?}: {events:?}");
        assert!(events.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected {
                retry_in: Some(_),
                ..
            }
        )));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ClientEvent::Message(m) if &m.payload[..] == b"while-away"))
        );
        conn.close(Instant::now());
    }
}

/// A caller that queues faster than the connection can write hears it: backpressure, not an
/// unbounded buffer.
#[test]
fn backpressure_is_surfaced() {
    let server = TestServer::start(ServerConfig::default());
    let mut o = options(&server, Transport::Tcp);
    o.session.max_queued_bytes = 64 * 1024;
    let mut conn = Connection::new(o, Instant::now()).unwrap();
    let start = Instant::now();
    while !conn.is_connected() {
        assert!(start.elapsed() < DEADLINE);
        conn.update(Instant::now());
    }
    let payload = Bytes::from(vec![0u8; 1024]);
    let mut sent = 0;
    let refused = loop {
        // No update in between: nothing is written, the output only grows.
        match conn.publish(
            Instant::now(),
            "sink",
            payload.clone(),
            PublishOptions {
                ack: false,
                ..PublishOptions::default()
            },
        ) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000, "never refused");
    };
    assert_eq!(refused, ClientError::Backpressure);
    assert!((60..=64).contains(&sent), "{sent}");
    // Once written out, sending works again.
    conn.update(Instant::now());
    assert!(
        conn.publish(Instant::now(), "sink", payload, PublishOptions::default())
            .is_ok()
    );
}

/// A response read in the same turn as the request was written is handed over at once, not when
/// the wait for it ends. With no timer due for 30 s, a response left behind waits until the
/// call's own deadline (1.4 s here): that is what the bound below catches, with a margin of
/// thousands over a loopback round trip (this is not a speed test).
#[test]
fn responses_do_not_wait_for_a_timer() {
    let server = TestServer::start(ServerConfig::default());
    for transport in BOTH {
        let mut o = options(&server, transport);
        o.session.heartbeat_interval = Duration::from_secs(30);
        o.session.max_ack_delay = Duration::from_secs(1);
        let mut c = Client::connect(o).unwrap();
        for i in 0..200 {
            let started = Instant::now();
            c.request("sys.ping", "", Duration::from_millis(900))
                .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(700),
                "{transport:?} request {i}: {took:?}"
            );
        }
    }
}
