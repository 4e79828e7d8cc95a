//! Errors a user can act on, against a real server or a real socket: a crash is not an orderly
//! close, a UDP port with nothing behind it fails at once, `Duration::ZERO` waits for the server's
//! deadline, a refused fire-and-forget publish is heard of, and an empty name is a bad request.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use framewire_client::{
    Client, ClientError, ClientEvent, ClientOptions, Connection, Error, PublishOptions, Transport,
};
use framewire_protocol::wire::{
    Frame, FrameBody, FrameKind, HelloOptions, LastWill, Reason, Status, StreamDeframer, Text,
    Welcome, encode_stream_frame_into,
};
use framewire_server::ServerConfig;
use framewire_server::hub::HubConfig;
use framewire_tests::{TestServer, drive_until};

/// A publish that asks for no Response.
const FIRE_AND_FORGET: PublishOptions = PublishOptions {
    channel: 0,
    retain: false,
    ack: false,
};

/// A poll-driven client, connected, and the events it had on the way.
fn connected(addr: std::net::SocketAddr, transport: Transport) -> (Connection, Vec<ClientEvent>) {
    let mut conn = Connection::new(ClientOptions::new(addr, transport), Instant::now()).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        e.iter().any(|e| matches!(e, ClientEvent::Connected { .. }))
    });
    (conn, events)
}

/// A TCP "server" of one connection: it reads the Hello, answers a Welcome, and hands back the
/// stream and the bytes read past the Hello.
fn welcome_one(listener: &TcpListener) -> (std::net::TcpStream, bytes::BytesMut) {
    let (mut s, _) = listener.accept().unwrap();
    let mut deframer = StreamDeframer::new(65_536);
    let mut input = bytes::BytesMut::new();
    let mut buf = [0u8; 4096];
    while deframer.decode(&mut input).unwrap().is_none() {
        let n = s.read(&mut buf).unwrap();
        input.extend_from_slice(&buf[..n]);
    }
    let mut out = bytes::BytesMut::new();
    let welcome = Frame::new(Welcome {
        resumed: false,
        version: 1,
        connection_id: 1,
        idle_timeout_ms: 15_000,
        max_frame_len: 65_536,
        heartbeat_interval_ms: 1000,
        missed: 0,
        session_token: bytes::Bytes::new(),
    });
    encode_stream_frame_into(&welcome, &mut out).unwrap();
    s.write_all(&out).unwrap();
    (s, input)
}

/// Welcomes one client and then drops the connection without a Close, as a crashed process
/// would.
#[test]
fn a_tcp_end_of_stream_without_a_close_is_connection_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = welcome_one(&listener);
        // Dropped: an end of stream with no Close.
        drop(s);
    });
    let mut o = ClientOptions::new(addr, Transport::Tcp);
    o.reconnect = None;
    let mut conn = Connection::new(o, Instant::now()).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        e.iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. }))
    });
    server.join().unwrap();
    let error = events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Disconnected { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(
            &error,
            ClientError::Closed { reason, .. } if *reason == Reason::CONNECTION_LOST
        ),
        "{error:?}"
    );
}

/// Nothing listens on the UDP port: the kernel's port unreachable fails the connect at once, as a
/// refused TCP connect does (it used to wait out the connect timeout and say `TimedOut`).
#[test]
fn a_udp_connect_to_a_closed_port_fails_at_once() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut o = ClientOptions::new(addr, Transport::Udp);
    o.connect_timeout = Duration::from_secs(30);
    let error = Client::connect(o).expect_err("an error");
    assert_eq!(
        error,
        ClientError::Unreachable(std::io::ErrorKind::ConnectionRefused.into())
    );
    // The operating system's error is kept: the error's source.
    let source = std::error::Error::source(&error).expect("a source");
    assert!(
        source.downcast_ref::<std::io::Error>().is_some(),
        "{source}"
    );
}

/// `Duration::ZERO` leaves the deadline to the server: the call waits for the server's TIMEOUT
/// (here its default, 1 s), not half a second.
#[test]
fn a_request_with_no_timeout_waits_for_the_servers_deadline() {
    let server = TestServer::start(ServerConfig {
        hub: HubConfig {
            default_request_timeout: Duration::from_secs(1),
            ..HubConfig::default()
        },
        ..ServerConfig::default()
    });
    for transport in [Transport::Tcp, Transport::Udp] {
        let addr = match transport {
            Transport::Tcp => server.addr(),
            Transport::Udp => server.udp_addr(),
        };
        let mut silent = Client::connect(ClientOptions::new(addr, transport)).unwrap();
        let name = format!("silent.{transport:?}");
        silent.register(&name).unwrap();
        let mut a = Client::connect(ClientOptions::new(addr, transport)).unwrap();
        let error = a.request(&name, "", Duration::ZERO).unwrap_err();
        assert_eq!(
            error.status(),
            Some(Status::TIMEOUT),
            "{transport:?}: {error:?}"
        );
        // One question, whichever side noticed.
        assert!(error.is_timeout());
        assert!(Error::Client(ClientError::TimedOut).is_timeout());
    }
}

/// A publish that asked for no Response, refused by the server, comes back as an event.
#[test]
fn a_refused_publish_without_an_ack_is_surfaced() {
    let server = TestServer::start(ServerConfig::default());
    for transport in [Transport::Tcp, Transport::Udp] {
        let addr = match transport {
            Transport::Tcp => server.addr(),
            Transport::Udp => server.udp_addr(),
        };
        let (mut conn, mut events) = connected(addr, transport);
        conn.publish(Instant::now(), "a/#", "x".into(), FIRE_AND_FORGET)
            .unwrap();
        drive_until(&mut conn, &mut events, &|e| {
            e.iter().any(|e| matches!(e, ClientEvent::Refused { .. }))
        });
        let refused = events
            .iter()
            .find_map(|e| match e {
                ClientEvent::Refused {
                    reason,
                    kind,
                    message,
                } => Some((*reason, *kind, message.to_string())),
                _ => None,
            })
            .unwrap();
        assert_eq!(refused.0, Reason::REFUSED, "{transport:?}");
        assert_eq!(refused.1, FrameKind::Publish as u8);
        assert!(refused.2.starts_with("invalid topic"), "{}", refused.2);
        conn.close(Instant::now());
    }
}

#[test]
fn an_empty_queue_name_is_a_bad_request() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = Client::connect(ClientOptions::new(server.addr(), Transport::Tcp)).unwrap();
    for result in [
        c.queue_fetch("", 1, Duration::ZERO).map(|_| ()),
        c.queue_push("", "x"),
        c.subscribe(""),
    ] {
        match result {
            Err(Error::Status { status, .. }) => assert_eq!(status, Status::BAD_REQUEST),
            other => panic!("{other:?}"),
        }
    }
}

/// Settings the handshake could not carry, or the server would refuse, are found before
/// connecting: at once, not after a timeout.
#[test]
fn invalid_settings_are_refused_before_connecting() {
    let server = TestServer::start(ServerConfig::default());
    let mut o = ClientOptions::new(server.udp_addr(), Transport::Udp);
    o.session.channels = vec![framewire_protocol::wire::ChannelKind::ReliableOrdered; 300];
    assert!(
        matches!(Client::connect(o), Err(ClientError::Invalid(why)) if why.contains("300 channels"))
    );
    let mut o = ClientOptions::new(server.addr(), Transport::Tcp);
    o.last_will = Some(LastWill {
        retain: false,
        channel: 0,
        topic: Text::from("will/#"),
        payload: bytes::Bytes::new(),
    });
    assert!(matches!(Client::connect(o), Err(ClientError::Invalid(why)) if why.contains("will/#")));
}

/// A Hello whose last will the server could never publish gets a Reject (MQTT 5 refuses such a
/// CONNECT); a connect token sent to a server that checks none is ignored, as intended.
#[test]
fn the_server_refuses_a_will_it_could_never_publish_and_ignores_a_token_it_cannot_check() {
    let server = TestServer::start(ServerConfig::default());
    let will = LastWill {
        retain: false,
        channel: 0,
        topic: Text::from("will/#"),
        payload: bytes::Bytes::new(),
    };
    let mut c = framewire_tests::connect(&server);
    c.set_read_timeout(framewire_tests::DEADLINE).unwrap();
    let answer = c
        .handshake(HelloOptions::builder().last_will(&will).build().unwrap())
        .unwrap();
    match answer.body {
        FrameBody::Reject(r) => {
            assert_eq!(r.reason, Reason::PROTOCOL_ERROR);
            assert!(r.message.as_str().contains("will/#"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    let mut o = ClientOptions::new(server.addr(), Transport::Tcp);
    o.auth_token = Some(bytes::Bytes::from_static(b"not a token at all"));
    let mut c = Client::connect(o).expect("a server without a key ignores tokens");
    assert_eq!(
        &c.request("sys.ping", "", Duration::from_secs(2)).unwrap()[..],
        b"pong"
    );
}

/// A poll-driven client's request is always resolved: a server that never answers (here one that
/// reads and stays silent) gets the client's own `TIMEOUT` half a second past the deadline. It
/// used to stay unresolved for ever.
#[test]
fn an_unanswered_request_is_resolved_at_its_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (s, _) = welcome_one(&listener);
        // Silent, but holding the connection open until the test is done.
        let _ = finished.recv_timeout(framewire_tests::DEADLINE);
        drop(s);
    });
    let (mut conn, mut events) = connected(addr, Transport::Tcp);
    let sent = Instant::now();
    let id = conn
        .request(
            Instant::now(),
            "sys.ping",
            bytes::Bytes::new(),
            Duration::from_millis(100),
        )
        .unwrap();
    // The connection's timer says when the client must look again: at the deadline, not later.
    assert!(
        conn.poll_timeout()
            .is_some_and(|t| t <= sent + Duration::from_millis(700))
    );
    drive_until(&mut conn, &mut events, &|e| {
        e.iter()
            .any(|e| matches!(e, ClientEvent::Response { id: got, .. } if *got == id))
    });
    let status = events.iter().find_map(|e| match e {
        ClientEvent::Response {
            id: got, status, ..
        } if *got == id => Some(*status),
        _ => None,
    });
    assert_eq!(status, Some(Status::TIMEOUT));
    assert!(
        sent.elapsed() >= Duration::from_millis(600),
        "resolved before its deadline"
    );
    done.send(()).unwrap();
    server.join().unwrap();
}

/// `flush` sends what the operations queued at once, without waiting for the next `update`: the
/// server reads a publish that was flushed, with no update after it.
#[test]
fn flush_sends_what_was_queued_without_an_update() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (got, seen) = std::sync::mpsc::channel::<Frame>();
    let server = std::thread::spawn(move || {
        let (mut s, mut input) = welcome_one(&listener);
        s.set_read_timeout(Some(framewire_tests::DEADLINE)).unwrap();
        let mut deframer = StreamDeframer::new(65_536);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(body) = deframer.decode(&mut input).unwrap() {
                let frame = Frame::parse(body).unwrap();
                // The client's own question for the cluster's nodes, sent at the Welcome.
                if matches!(&frame.body, FrameBody::Request(r) if r.target.as_str() == "sys.nodes")
                {
                    continue;
                }
                got.send(frame).unwrap();
                return;
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed");
            input.extend_from_slice(&buf[..n]);
        }
    });
    let (mut conn, _) = connected(addr, Transport::Tcp);
    conn.publish(Instant::now(), "pos/1", "x=1".into(), FIRE_AND_FORGET)
        .unwrap();
    conn.flush(Instant::now());
    let frame = seen
        .recv_timeout(framewire_tests::DEADLINE)
        .expect("the publish, flushed");
    assert!(matches!(frame.body, FrameBody::Publish(p) if p.topic.as_str() == "pos/1"));
    server.join().unwrap();
}

/// A caller's own poll loop can wait on the connection's socket: `raw_fd` is that socket while
/// there is one, and `None` once the connection is over.
#[test]
fn the_connection_gives_its_socket_to_a_callers_poll_loop() {
    let server = TestServer::start(ServerConfig::default());
    for transport in [Transport::Tcp, Transport::Udp] {
        let addr = match transport {
            Transport::Tcp => server.addr(),
            Transport::Udp => server.udp_addr(),
        };
        let (mut conn, _) = connected(addr, transport);
        let fd = conn.raw_fd().expect("a socket");
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert!(
            target.to_string_lossy().starts_with("socket:"),
            "{transport:?}: {target:?}"
        );
        conn.close(Instant::now());
        let start = Instant::now();
        while !conn.is_closed() {
            assert!(start.elapsed() < framewire_tests::DEADLINE);
            conn.update(Instant::now());
        }
        assert_eq!(conn.raw_fd(), None);
    }
}
