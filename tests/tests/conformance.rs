//! docs/PROTOCOL.md section 9, the conformance list: a test for each MUST a receiver keeps, against
//! the real server over sockets, raw bytes in and out. (The MUSTs whose tests live elsewhere are
//! named in the section.)

use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::wire::{
    Frame, FrameBody, Hello, HelloOptions, LastWill, Reason, Text, crc32, option,
};
use framewire_server::ServerConfig;
use framewire_tests::{
    DEADLINE, FrameStream, RecvError, TestClient, TestServer, Via, connect, request,
};

/// The Close the server sends, then the end of the connection.
fn expect_close(c: &mut FrameStream, reason: Reason) {
    let frame = c.recv().expect("a Close");
    let FrameBody::Close(close) = &frame.body else {
        panic!("expected Close({reason:?}), got {frame:?}");
    };
    assert_eq!(close.reason, reason, "{}", close.message);
    assert!(matches!(c.recv(), Err(RecvError::Closed)));
}

/// A stream frame around `body` (kind byte onwards) with a right length, version and CRC.
fn stream_frame(body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    framed.extend_from_slice(&(1 + body.len() as u32 + 4).to_be_bytes());
    framed.push(1);
    framed.extend_from_slice(body);
    let crc = crc32(&framed[4..]);
    framed.extend_from_slice(&crc.to_be_bytes());
    framed
}

fn welcomed(server: &TestServer) -> FrameStream {
    let mut c = connect(server);
    c.set_read_timeout(DEADLINE).unwrap();
    assert!(matches!(
        c.handshake(HelloOptions::new()).unwrap().body,
        FrameBody::Welcome(_)
    ));
    c
}

/// 2.1: a `length` below 8 is refused before anything else is read.
#[test]
fn a_length_below_8_is_refused() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = welcomed(&server);
    c.send_raw(&[0, 0, 0, 7]).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
}

/// 3.1: flag bits a kind does not define must be 0 (a Ping with flag bit 0 set), and a kind
/// without a trailing payload must end after its last field (a Ping with a byte more).
#[test]
fn reserved_flags_and_trailing_bytes_are_refused() {
    let server = TestServer::start(ServerConfig::default());
    let ping = [0x10, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut c = welcomed(&server);
    c.send_raw(&stream_frame(&ping)).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
    let mut longer = ping.to_vec();
    longer[1] = 0;
    longer.push(0xAA);
    let mut c = welcomed(&server);
    c.send_raw(&stream_frame(&longer)).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
}

/// 4.1: `max version` must be at least `min version`: a Hello with them crossed is malformed.
#[test]
fn a_hello_with_crossed_versions_is_malformed() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.set_read_timeout(DEADLINE).unwrap();
    // Written by hand: the encoder will not make it.
    let mut body = hello_body(&[]);
    (body[3], body[4]) = (2, 1);
    c.send_raw(&stream_frame(&body)).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
}

/// The body of a Hello (kind byte onwards) with `options` as raw bytes.
fn hello_body(options: &[u8]) -> Vec<u8> {
    let mut body = vec![0x01, 0x00, 0x00, 1, 1];
    body.extend_from_slice(&0u32.to_be_bytes());
    body.extend_from_slice(&65_536u32.to_be_bytes());
    body.extend_from_slice(&0u64.to_be_bytes());
    body.extend_from_slice(options);
    body
}

/// 4.1.1: option entries must lie within the body: one whose length runs past its end makes the
/// Hello malformed.
#[test]
fn an_option_running_past_the_hello_is_refused() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(&server);
    c.set_read_timeout(DEADLINE).unwrap();
    c.send_raw(&stream_frame(&hello_body(&[
        option::CLIENT_NAME,
        0,
        9,
        b'a',
    ])))
    .unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
}

fn will(topic: &str, retain: bool) -> LastWill {
    LastWill {
        retain,
        channel: 0,
        topic: Text::from(topic),
        payload: Bytes::from_static(b"gone"),
    }
}

/// 4.1.1: a sender must not repeat an option type, and a receiver uses the first: of two last
/// wills, the first is published when the client vanishes. And 4.1.2: a will's flag bits other
/// than RETAIN must be 0, or the Hello is malformed.
#[test]
fn a_repeated_option_counts_once_and_the_first_wins() {
    let server = TestServer::start(ServerConfig::default());
    let mut watcher = welcomed(&server);
    watcher
        .send(&Frame::new(framewire_protocol::wire::Subscribe {
            id: 1,
            filter: Text::from("w/#"),
        }))
        .unwrap();
    assert!(matches!(
        watcher.recv().unwrap().body,
        FrameBody::Response(_)
    ));
    let first = will("w/first", false).encode().unwrap();
    let second = will("w/second", false).encode().unwrap();
    let options = HelloOptions::builder()
        .raw(option::LAST_WILL, &first)
        .raw(option::LAST_WILL, &second)
        .build()
        .unwrap();
    let mut device = connect(&server);
    device.set_read_timeout(DEADLINE).unwrap();
    assert!(matches!(
        device.handshake(options).unwrap().body,
        FrameBody::Welcome(_)
    ));
    drop(device);
    let m = watcher.recv().unwrap();
    let FrameBody::Message(m) = m.body else {
        panic!("{m:?}");
    };
    assert_eq!(m.topic.as_str(), "w/first");

    let mut bad = will("w/x", false).encode().unwrap();
    bad[0] = 0x02;
    let options = HelloOptions::builder()
        .raw(option::LAST_WILL, &bad)
        .build()
        .unwrap();
    let mut c = connect(&server);
    c.set_read_timeout(DEADLINE).unwrap();
    c.send(&Frame::new(Hello::new(0, options))).unwrap();
    expect_close(&mut c, Reason::PROTOCOL_ERROR);
}

/// A datagram written by hand (the encoder will not write a broken one): connection `cid`,
/// packet `pn`, no ack block, the frame bodies as given, and a right CRC.
fn raw_datagram(cid: u64, pn: u32, bodies: &[&[u8]]) -> Vec<u8> {
    raw_datagram_flagged(cid, pn, 0, bodies)
}

/// As [`raw_datagram`], with the header's flags byte as given.
fn raw_datagram_flagged(cid: u64, pn: u32, flags: u8, bodies: &[&[u8]]) -> Vec<u8> {
    let mut d = vec![b'F', b'W', 1, flags];
    d.extend_from_slice(&cid.to_be_bytes());
    d.extend_from_slice(&pn.to_be_bytes());
    for body in bodies {
        d.extend_from_slice(&(body.len() as u16).to_be_bytes());
        d.extend_from_slice(body);
    }
    let crc = crc32(&d);
    d.extend_from_slice(&crc.to_be_bytes());
    d
}

/// A UDP client of the real server in version 1 (whose datagrams these tests write by hand), and
/// a way to send it raw datagrams of its own session.
fn udp_session(server: &TestServer) -> (TestClient, u64) {
    let c = TestClient::connect(server, Via::UdpVersion1);
    let TestClient::Udp(udp) = &c else {
        unreachable!("connected over UDP")
    };
    let cid = udp.session.connection_id();
    (c, cid)
}

fn send_raw_datagram(c: &mut TestClient, to: std::net::SocketAddr, datagram: &[u8]) {
    let TestClient::Udp(udp) = c else {
        unreachable!("connected over UDP")
    };
    udp.socket().send_to(datagram, to).unwrap();
}

/// Waits (driving the client) until `done` holds for the server's counters.
fn until_counted(
    server: &TestServer,
    c: &mut TestClient,
    done: impl Fn(&framewire_server::CounterSnapshot) -> bool,
) {
    let TestClient::Udp(udp) = c else {
        unreachable!("connected over UDP")
    };
    let start = Instant::now();
    while !done(&server.counters()) {
        assert!(start.elapsed() < DEADLINE, "{:?}", server.counters());
        udp.step();
    }
}

/// 2.2: a datagram must carry an ack block or a frame: one with neither is dropped and counted,
/// and the session goes on.
#[test]
fn an_empty_datagram_is_dropped_and_counted() {
    let server = TestServer::start(ServerConfig::default());
    let (mut c, cid) = udp_session(&server);
    let before = server.counters().udp_dropped;
    let empty = raw_datagram(cid, 5000, &[]);
    send_raw_datagram(&mut c, server.udp_addr(), &empty);
    until_counted(&server, &mut c, |s| s.udp_dropped > before);
    c.send(request(1, "sys.ping"));
    let (_, pong) = c.until_response(1);
    assert_eq!(&pong.payload[..], b"pong");
}

/// 2.2: the datagram flags' reserved bits (2-7) must be 0: a datagram with one set is dropped and
/// counted, whatever it carries.
#[test]
fn a_datagram_with_a_reserved_flag_is_dropped_and_counted() {
    let server = TestServer::start(ServerConfig::default());
    let (mut c, cid) = udp_session(&server);
    let before = server.counters().udp_dropped;
    let ping = request(3, "sys.ping").on_channel(1).with_seq(0);
    let d = raw_datagram_flagged(cid, 5000, 0x04, &[&encoded(&ping)]);
    send_raw_datagram(&mut c, server.udp_addr(), &d);
    until_counted(&server, &mut c, |s| s.udp_dropped > before);
    assert!(
        c.recv_within(Duration::from_millis(200)).is_none(),
        "it was answered"
    );
}

/// 5: a client must not reuse an operation's id while it is in flight: the reference client's
/// ids are distinct and never 0 (0 asks for no Response).
#[test]
fn the_reference_client_never_reuses_an_id_in_flight() {
    let server = TestServer::start(ServerConfig::default());
    let mut conn = framewire_client::Connection::new(
        framewire_client::ClientOptions::new(server.addr(), framewire_client::Transport::Tcp),
        Instant::now(),
    )
    .unwrap();
    let mut events = Vec::new();
    framewire_tests::drive_until(&mut conn, &mut events, &|e| {
        e.iter()
            .any(|e| matches!(e, framewire_client::ClientEvent::Connected { .. }))
    });
    let mut ids = std::collections::HashSet::new();
    for n in 0..2000 {
        let id = conn
            .request(
                Instant::now(),
                "sys.ping",
                Bytes::new(),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert_ne!(id, 0);
        assert!(ids.insert(id), "id {id} reused");
        if n % 100 == 0 {
            conn.update(Instant::now());
        }
    }
}

/// 4.8: a Fragment's index must be below its count and its count at least 1: a piece that breaks
/// either is refused and counted; the session goes on.
#[test]
fn a_fragment_out_of_range_is_refused() {
    let server = TestServer::start(ServerConfig::default());
    let (mut c, cid) = udp_session(&server);
    let before = server.counters().udp_refused;
    // Written by hand: the encoder will not make these.
    for (pn, (index, count)) in [(5000u32, (3u16, 3u16)), (5001, (0, 0))] {
        let mut body = vec![0x13, 0x00, 0x00];
        body.extend_from_slice(&7u32.to_be_bytes());
        body.extend_from_slice(&index.to_be_bytes());
        body.extend_from_slice(&count.to_be_bytes());
        body.extend_from_slice(b"piece");
        let datagram = raw_datagram(cid, pn, &[&body]);
        send_raw_datagram(&mut c, server.udp_addr(), &datagram);
    }
    until_counted(&server, &mut c, |s| s.udp_refused >= before + 2);
    // The session goes on. (Asked in a raw datagram too: the client's own packet numbers are now
    // far below the ones written here, which the server has seen.)
    let asked = request(2, "sys.ping").on_channel(1).with_seq(0);
    let d = raw_datagram(cid, 5002, &[&encoded(&asked)]);
    send_raw_datagram(&mut c, server.udp_addr(), &d);
    let (_, pong) = c.until_response(2);
    assert_eq!(&pong.payload[..], b"pong");
}

/// A frame's body as it travels in a datagram.
fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = vec![0u8; frame.encoded_len()];
    frame.emit(&mut out).unwrap();
    out
}

/// 7a.4: a message on a reliable channel must carry SEQ: a Request without one gets no answer
/// (refused, counted); 7a.5: a receiver must deliver a message once: the same Request sent twice
/// with its SEQ is answered once. On channel 1 (reliable-unordered in the client's layout), where
/// the client's own session sends nothing.
#[test]
fn a_message_needs_its_seq_and_is_delivered_once() {
    let server = TestServer::start(ServerConfig::default());
    let (mut c, cid) = udp_session(&server);
    let before = server.counters().udp_refused;
    let unsequenced = request(9, "sys.ping").on_channel(1);
    let d = framewire_protocol::samples::datagram(cid, 6000, &[unsequenced], 0);
    send_raw_datagram(&mut c, server.udp_addr(), &d);
    until_counted(&server, &mut c, |s| s.udp_refused > before);
    let sequenced = request(10, "sys.ping").on_channel(1).with_seq(0);
    for pn in [6001, 6002] {
        let d = framewire_protocol::samples::datagram(cid, pn, std::slice::from_ref(&sequenced), 0);
        send_raw_datagram(&mut c, server.udp_addr(), &d);
    }
    let mut answers = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        if let Some(f) = c.recv_within(Duration::from_millis(50))
            && let FrameBody::Response(r) = f.body
        {
            answers.push(r.id);
        }
    }
    assert_eq!(answers, [10], "once, and never for the unsequenced one");
}

/// Section 9 has a row for every line of sections 1 to 8 that holds a MUST, and every test a row
/// names exists in the file it names.
#[test]
fn the_conformance_list_covers_every_must_with_real_tests() {
    let spec = include_str!("../../docs/PROTOCOL.md");
    let (rules, list) = spec.split_once("\n## 9. Conformance").expect("section 9");
    let musts = rules
        .lines()
        .filter(|l| l.contains("MUST") && !l.contains("are used as in RFC 2119"))
        .count();
    let rows: Vec<&str> = list
        .lines()
        .filter(|l| {
            l.starts_with("| ")
                && l.split('|')
                    .nth(1)
                    .is_some_and(|n| n.trim().parse::<u32>().is_ok())
        })
        .collect();
    assert_eq!(
        rows.len(),
        musts,
        "a MUST without its row, or a row without its MUST"
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for row in rows {
        let checked_by = row.rsplit('|').nth(1).expect("a last column");
        for test in checked_by.split(';') {
            let names: Vec<&str> = test.split('`').filter(|s| !s.trim().is_empty()).collect();
            let [file, name] = names[..] else {
                panic!("row {row:?}: expected `file` `test`, got {test:?}");
            };
            let source = std::fs::read_to_string(format!("{root}/{file}"))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                source.contains(&format!("fn {name}(")),
                "{file} has no test {name}"
            );
        }
    }
}
