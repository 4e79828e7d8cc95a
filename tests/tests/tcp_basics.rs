//! The server over real TCP on loopback: handshake, heartbeat, echo, `sys.ping`, and the Close it
//! sends for each kind of bad input and at shutdown.

use bytes::Bytes;
use framewire_protocol::wire::{
    Close, Data, Frame, FrameBody, Hello, HelloOptions, Ping, Reason, Request, Status, Text,
    encode_stream_frame, stream_frame_len,
};
use framewire_server::ServerConfig;
use framewire_tests::{FrameStream, RecvError, TestServer, connect, sys_stat};

fn expect_close(client: &mut FrameStream, reason: Reason) {
    let frame = client.recv().unwrap();
    let FrameBody::Close(close) = &frame.body else {
        panic!("expected Close({reason:?}), got {frame:?}");
    };
    assert_eq!(close.reason, reason, "{}", close.message);
    assert!(
        matches!(client.recv(), Err(RecvError::Closed)),
        "the server must close the connection after its Close"
    );
}

#[test]
fn handshake_ping_echo_and_sys_ping() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    let FrameBody::Welcome(w) = c.handshake(HelloOptions::new()).unwrap().body else {
        panic!("expected Welcome");
    };
    assert_eq!(w.version, 1);

    c.send(&Frame::new(Ping { timestamp_us: 123 })).unwrap();
    assert!(matches!(c.recv().unwrap().body, FrameBody::Pong(p) if p.timestamp_us == 123));

    let payload = Bytes::from(vec![9u8; 10_000]);
    c.send(
        &Frame::new(Data {
            payload: payload.clone(),
        })
        .on_channel(3),
    )
    .unwrap();
    let echo = c.recv().unwrap();
    assert_eq!(echo.channel, 3);
    assert!(matches!(echo.body, FrameBody::Data(d) if d.payload == payload));

    c.send(&Frame::new(Request {
        id: 77,
        timeout_ms: 0,
        target: Text::from("sys.ping"),
        payload: Bytes::new(),
    }))
    .unwrap();
    let FrameBody::Response(r) = c.recv().unwrap().body else {
        panic!("expected Response");
    };
    assert_eq!((r.id, r.status), (77, Status::OK));

    c.send(&Frame::new(Close {
        reason: Reason::NORMAL,
        message: Text::from("done"),
    }))
    .unwrap();
    assert!(matches!(c.recv().unwrap().body, FrameBody::CloseAck(_)));
    assert!(matches!(c.recv(), Err(RecvError::Closed)));
    server.stop();
}

#[test]
fn unsupported_versions_get_a_reject() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.send(&Frame::new(Hello {
        min_version: 2,
        max_version: 3,
        idle_timeout_ms: 0,
        max_frame_len: 65_536,
        nonce: 1,
        options: HelloOptions::new(),
    }))
    .unwrap();
    let FrameBody::Reject(r) = c.recv().unwrap().body else {
        panic!("expected Reject");
    };
    assert_eq!(r.reason, Reason::UNSUPPORTED_VERSION);
    assert_eq!((r.min_version, r.max_version), (1, 1));
    assert!(matches!(c.recv(), Err(RecvError::Closed)));
}

#[test]
fn a_corrupted_frame_closes_with_bad_checksum() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.handshake(HelloOptions::new()).unwrap();
    let ping = Frame::new(Ping { timestamp_us: 1 });
    let mut bytes = vec![0u8; stream_frame_len(&ping)];
    encode_stream_frame(&ping, &mut bytes).unwrap();
    bytes[9] ^= 0x10;
    c.send_raw(&bytes).unwrap();
    expect_close(&mut c, Reason::BAD_CHECKSUM);
    // Counted before the Close went out.
    assert_eq!(server.counters().closed(Reason::BAD_CHECKSUM), 1);
}

#[test]
fn an_oversized_length_closes_before_the_body_is_sent() {
    let server = TestServer::start(ServerConfig {
        max_frame_len: 1024,
        ..ServerConfig::default()
    });
    let mut c = connect(&server);
    // Only the length prefix: the server must refuse it without waiting for 16 MB.
    c.send_raw(&[0x01, 0x00, 0x00, 0x00]).unwrap();
    expect_close(&mut c, Reason::FRAME_TOO_LARGE);
    assert_eq!(server.counters().closed(Reason::FRAME_TOO_LARGE), 1);
    assert_eq!(server.counters().closed(Reason::BAD_CHECKSUM), 0);
}

#[test]
fn frames_before_hello_and_unknown_critical_kinds_close() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.send(&Frame::new(Ping { timestamp_us: 1 })).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);

    let mut c = connect(&server);
    c.handshake(HelloOptions::new()).unwrap();
    // An ignorable unknown kind (0x90) is skipped; the session goes on.
    send_raw_body(&mut c, &[0x90, 0x00, 0x00, 1, 2, 3]);
    c.send(&Frame::new(Ping { timestamp_us: 5 })).unwrap();
    assert!(matches!(c.recv().unwrap().body, FrameBody::Pong(_)));
    // A critical one (0x70) is not.
    send_raw_body(&mut c, &[0x70, 0x00, 0x00]);
    expect_close(&mut c, Reason::UNKNOWN_KIND);
}

/// Frames a raw body (kind byte onwards) with a correct length, version and CRC.
fn send_raw_body(c: &mut FrameStream, body: &[u8]) {
    let mut framed = Vec::new();
    framed.extend_from_slice(&(1 + body.len() as u32 + 4).to_be_bytes());
    framed.push(1);
    framed.extend_from_slice(body);
    let crc = framewire_protocol::wire::crc32(&framed[4..]);
    framed.extend_from_slice(&crc.to_be_bytes());
    c.send_raw(&framed).unwrap();
}

#[test]
fn shutdown_sends_every_client_a_close() {
    let server = TestServer::start(ServerConfig::default());
    let mut clients: Vec<FrameStream> = (0..20).map(|_| connect(&server)).collect();
    for c in &mut clients {
        assert!(matches!(
            c.handshake(HelloOptions::new()).unwrap().body,
            FrameBody::Welcome(_)
        ));
    }
    server.stop();
    for c in &mut clients {
        expect_close(c, Reason::GOING_AWAY);
    }
}

/// The bytes of `frames` as one stream.
fn stream_bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        let mut bytes = vec![0u8; stream_frame_len(frame)];
        encode_stream_frame(frame, &mut bytes).unwrap();
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn a_request_and_the_end_of_the_stream_in_one_arrival_are_both_handled() {
    // The server stops reading after a short read (the socket had no more), and must still see a
    // shutdown that arrived with the data: the poller reports it once, with the data.
    let server = TestServer::start(ServerConfig {
        idle_timeout_ms: 60_000,
        ..ServerConfig::default()
    });
    for round in 0..5 {
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        let bytes = stream_bytes(&[
            Frame::new(Hello::new(round, HelloOptions::new())),
            Frame::new(Request {
                id: 5,
                timeout_ms: 0,
                target: Text::from("sys.ping"),
                payload: Bytes::new(),
            }),
        ]);
        // Written and shut at once: the bytes and the FIN are usually in the socket before the
        // server first looks at it.
        std::io::Write::write_all(&mut stream, &bytes).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        // Until the server closes its side: a timeout here means it never saw the end.
        let read = std::io::Read::read_to_end(&mut stream, &mut got);
        assert!(read.is_ok(), "round {round}: {read:?}");
        let mut frames = Vec::new();
        let mut deframer = framewire_protocol::wire::StreamDeframer::new(65_536);
        let mut input = bytes::BytesMut::from(&got[..]);
        while let Some(body) = deframer.decode(&mut input).unwrap() {
            frames.push(Frame::parse(body).unwrap());
        }
        assert!(
            matches!(frames.first().map(|f| &f.body), Some(FrameBody::Welcome(_))),
            "{frames:?}"
        );
        assert!(
            frames
                .iter()
                .any(|f| matches!(&f.body, FrameBody::Response(r) if r.id == 5)),
            "round {round}: {frames:?}"
        );
    }
    server.stop();
}

#[test]
fn echoes_keep_their_place_among_the_answers_and_are_counted() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.handshake(HelloOptions::new()).unwrap();
    let data = |tag: u8| {
        Frame::new(Data {
            payload: Bytes::from(vec![tag; 64]),
        })
    };
    let ping = |id: u32| {
        Frame::new(Request {
            id,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        })
    };
    // One write, so one read on the server: Data around requests the hub answers at once.
    let frames = [data(1), data(2), ping(10), data(3), ping(11), data(4)];
    let mut bytes = Vec::new();
    for f in &frames {
        let mut one = vec![0; stream_frame_len(f)];
        encode_stream_frame(f, &mut one).unwrap();
        bytes.extend_from_slice(&one);
    }
    c.send_raw(&bytes).unwrap();
    let order: Vec<String> = (0..frames.len())
        .map(|_| match c.recv().unwrap().body {
            FrameBody::Data(d) => format!("data {}", d.payload[0]),
            FrameBody::Response(r) => format!("response {}", r.id),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        order,
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

    // Echoes the hub never saw are in its counts all the same.
    for tag in 0..100 {
        c.send(&data(tag)).unwrap();
        assert!(matches!(c.recv().unwrap().body, FrameBody::Data(d) if d.payload[0] == tag));
    }
    c.send(&Frame::new(Request {
        id: 12,
        timeout_ms: 0,
        target: Text::from("sys.stats"),
        payload: Bytes::new(),
    }))
    .unwrap();
    let FrameBody::Response(stats) = c.recv().unwrap().body else {
        panic!("expected the stats");
    };
    // In: 104 Data, 2 pings and this request; out: 104 echoes and 2 answers (the handshake is
    // not counted, nor this answer yet).
    assert_eq!(
        sys_stat(&stats.payload, "tcp", "frames_in"),
        104 + 3,
        "{stats:?}"
    );
    assert_eq!(
        sys_stat(&stats.payload, "tcp", "frames_out"),
        104 + 2,
        "{stats:?}"
    );
    server.stop();
}
