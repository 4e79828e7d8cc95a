//! WebSocket sessions at the HTTP listener (docs/PROTOCOL.md section 11.2), against the real
//! server over loopback: a WebSocket client talks with TCP and UDP clients through the same hub;
//! the framing rules of RFC 6455 are enforced with the close codes it names.

use framewire_protocol::wire::{Frame, FrameBody, HelloOptions, Status};
use framewire_server::ServerConfig;
use framewire_tests::websocket::{ServerFrame, WsStream, masked_frame, opcode, upgrade_request};
use framewire_tests::{DEADLINE, TestClient, TestServer, Via, topic_and_payload};

/// Publishes, and returns the Messages that arrived before the answer.
fn publish(c: &mut TestClient, id: u32, topic: &str, payload: &str) -> Vec<(String, String)> {
    let before = c.publish_ok(id, topic, payload.as_bytes());
    before.iter().filter_map(topic_and_payload).collect()
}

/// Messages until there are `n`, counting those `seen` already; sorted.
fn messages(
    c: &mut TestClient,
    mut seen: Vec<(String, String)>,
    n: usize,
) -> Vec<(String, String)> {
    while seen.len() < n {
        seen.extend(topic_and_payload(&c.recv()));
    }
    seen.sort();
    seen
}

#[test]
fn a_websocket_session_talks_with_tcp_and_udp_clients_through_one_hub() {
    let server = TestServer::start(ServerConfig::default());
    let mut ws = TestClient::connect(&server, Via::WebSocket);
    let mut tcp = TestClient::connect(&server, Via::Tcp);
    let mut udp = TestClient::connect(&server, Via::Udp);
    ws.subscribe_ok(1, "chat/#");
    tcp.subscribe_ok(1, "chat/#");
    udp.subscribe_ok(1, "chat/#");
    let tcp_early = publish(&mut tcp, 2, "chat/tcp", "from tcp");
    let udp_early = publish(&mut udp, 2, "chat/udp", "from udp");
    let ws_early = publish(&mut ws, 2, "chat/ws", "from the browser");
    let all = [
        ("chat/tcp".to_string(), "from tcp".to_string()),
        ("chat/udp".into(), "from udp".into()),
        ("chat/ws".into(), "from the browser".into()),
    ];
    assert_eq!(messages(&mut ws, ws_early, 3), all);
    assert_eq!(messages(&mut tcp, tcp_early, 3), all);
    assert_eq!(messages(&mut udp, udp_early, 3), all);
    // The hub counts the session as WebSocket, apart from TCP.
    ws.send(framewire_tests::request(3, "sys.stats"));
    let (_, stats) = ws.until_response(3);
    assert_eq!(stats.status, Status::OK);
    let text = String::from_utf8_lossy(&stats.payload).into_owned();
    let websocket = text
        .split("\"websocket\":")
        .nth(1)
        .expect("a websocket section");
    assert!(websocket.starts_with("{\"sessions\":1,"), "{text}");
    let tcp_section = text.split("\"tcp\":").nth(1).expect("a tcp section");
    assert!(tcp_section.starts_with("{\"sessions\":1,"), "{text}");
    ws.close();
}

#[test]
fn the_upgrade_agrees_the_subprotocol_and_answers_the_key() {
    let server = TestServer::start(ServerConfig::default());
    let ws = WsStream::connect_from([127, 0, 0, 1].into(), server.http_addr(), DEADLINE).unwrap();
    // RFC 6455 section 1.3's example key and accept value.
    assert!(
        ws.response
            .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{}",
        ws.response
    );
    assert!(
        ws.response
            .contains("Sec-WebSocket-Protocol: framewire.v1\r\n")
    );
    assert_eq!(server.counters().http_responses(101), 1);
}

fn open(server: &TestServer) -> WsStream {
    WsStream::connect_from([127, 0, 0, 1].into(), server.http_addr(), DEADLINE).unwrap()
}

#[test]
fn a_ping_gets_its_pong_and_a_close_its_echo() {
    let server = TestServer::start(ServerConfig::default());
    let mut ws = open(&server);
    ws.send_ws(true, opcode::PING, b"are you there").unwrap();
    assert_eq!(
        ws.recv_ws().unwrap(),
        ServerFrame {
            fin: true,
            opcode: opcode::PONG,
            payload: b"are you there".to_vec()
        }
    );
    // An unsolicited pong is allowed and gets nothing.
    ws.send_ws(true, opcode::PONG, b"").unwrap();
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend(b"bye");
    ws.send_ws(true, opcode::CLOSE, &close).unwrap();
    let answer = ws.recv_ws().unwrap();
    assert_eq!(answer.close_code(), Some(1000));
    assert!(
        ws.closes_within(DEADLINE),
        "the server closes the TCP connection"
    );
}

#[test]
fn a_hello_in_fragments_with_a_ping_between_is_one_frame() {
    let server = TestServer::start(ServerConfig::default());
    let mut ws = open(&server);
    let mut hello = bytes::BytesMut::new();
    framewire_protocol::wire::encode_stream_frame_into(
        &Frame::new(framewire_protocol::wire::Hello::new(0, HelloOptions::new())),
        &mut hello,
    )
    .unwrap();
    let message = &hello[4..hello.len() - 4];
    let (a, rest) = message.split_at(3);
    let (b, c) = rest.split_at(rest.len() / 2);
    ws.send_ws(false, opcode::BINARY, a).unwrap();
    ws.send_ws(false, opcode::CONTINUATION, b).unwrap();
    ws.send_ws(true, opcode::PING, b"mid").unwrap();
    ws.send_ws(true, opcode::CONTINUATION, c).unwrap();
    assert_eq!(ws.recv_ws().unwrap().opcode, opcode::PONG);
    let welcome = ws.recv().unwrap();
    assert!(matches!(welcome.body, FrameBody::Welcome(_)), "{welcome:?}");
}

/// What the server answers `bytes` with: the close code it sends, after which it closes the TCP
/// connection.
fn close_code_for(server: &TestServer, bytes: &[u8]) -> u16 {
    let mut ws = open(server);
    ws.send_raw(bytes).unwrap();
    let code = loop {
        match ws.recv_ws() {
            Ok(f) if f.opcode == opcode::CLOSE => break f.close_code().expect("a close code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert!(
        ws.closes_within(DEADLINE),
        "the server closes the TCP connection"
    );
    code
}

#[test]
fn each_broken_rule_is_answered_with_its_close_code() {
    let config = ServerConfig {
        max_frame_len: 4096,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mask = Some([1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "unmasked",
            masked_frame(true, opcode::BINARY, b"x", None),
            1002,
        ),
        (
            "text",
            masked_frame(true, opcode::TEXT, b"hello", mask),
            1003,
        ),
        (
            "invalid UTF-8",
            masked_frame(true, opcode::TEXT, &[0xC0, 0xAF], mask),
            1007,
        ),
        (
            "reserved bit",
            {
                let mut f = masked_frame(true, opcode::BINARY, b"x", mask);
                f[0] |= 0x20;
                f
            },
            1002,
        ),
        ("unknown opcode", masked_frame(true, 0x3, b"x", mask), 1002),
        (
            "fragmented ping",
            masked_frame(false, opcode::PING, b"x", mask),
            1002,
        ),
        (
            "long ping",
            masked_frame(true, opcode::PING, &[0; 126], mask),
            1002,
        ),
        (
            "lone continuation",
            masked_frame(true, opcode::CONTINUATION, b"x", mask),
            1002,
        ),
        (
            "bad close code",
            masked_frame(true, opcode::CLOSE, &1005u16.to_be_bytes(), mask),
            1002,
        ),
        (
            "oversized",
            masked_frame(true, opcode::BINARY, &vec![0; 5000], mask),
            1009,
        ),
    ];
    for (name, bytes, want) in &cases {
        assert_eq!(close_code_for(&server, bytes), *want, "{name}");
    }
    let counted = server.counted(|c| c.websocket_closes(1002) == 7);
    assert_eq!(counted.websocket_closes(1003), 1);
    assert_eq!(counted.websocket_closes(1007), 1);
    assert_eq!(counted.websocket_closes(1009), 1);
}

#[test]
fn a_message_above_the_limit_is_refused_before_its_payload_arrives() {
    let server = TestServer::start(ServerConfig {
        max_frame_len: 4096,
        ..ServerConfig::default()
    });
    // A header claiming 1 GiB, and no payload: the close comes at once.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend((1u64 << 30).to_be_bytes());
    header.extend([9, 9, 9, 9]);
    assert_eq!(close_code_for(&server, &header), 1009);
}

#[test]
fn requests_that_are_not_upgrades_are_told_why() {
    let server = TestServer::start(ServerConfig::default());
    let from = [127, 0, 0, 1].into();
    for (request, status) in [
        (
            upgrade_request("").replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "426",
        ),
        (
            upgrade_request("").replace("Upgrade: websocket\r\n", ""),
            "426",
        ),
        (
            upgrade_request("").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            "400",
        ),
        (upgrade_request("").replace("GET", "POST"), "405"),
    ] {
        let err = WsStream::open(from, server.http_addr(), DEADLINE, &request).unwrap_err();
        assert!(
            err.to_string().contains(&format!("HTTP/1.1 {status} ")),
            "{status}: {err}"
        );
    }
}

#[test]
fn a_shutdown_sends_a_framewire_close_then_a_websocket_going_away() {
    let server = TestServer::start(ServerConfig::default());
    let mut ws = open(&server);
    let welcome = ws.handshake(HelloOptions::new()).unwrap();
    assert!(matches!(welcome.body, FrameBody::Welcome(_)));
    drop(server);
    let close = ws.recv().unwrap();
    assert!(matches!(close.body, FrameBody::Close(_)), "{close:?}");
    let ws_close = ws.recv_ws().unwrap();
    assert_eq!(ws_close.close_code(), Some(1001));
}

#[test]
fn a_flood_of_pings_from_a_peer_that_does_not_read_is_answered_within_a_bound() {
    let server = TestServer::start(ServerConfig::default());
    let mut ws = open(&server);
    let ping = ws.frame_bytes(true, opcode::PING, &[7; 125]);
    let flood: Vec<u8> = ping.repeat(100_000);
    let mut writer = ws.try_clone_stream().unwrap();
    // 13 MB of pings while nobody reads the pongs.
    std::thread::spawn(move || std::io::Write::write_all(&mut writer, &flood).unwrap())
        .join()
        .unwrap();
    let mut pongs = 0;
    ws.set_read_timeout(std::time::Duration::from_millis(500))
        .unwrap();
    while let Ok(f) = ws.recv_ws() {
        assert_eq!(f.opcode, opcode::PONG);
        pongs += 1;
    }
    assert!(pongs > 0 && pongs < 100_000, "{pongs} pongs");
    // The connection is as good as new.
    ws.set_read_timeout(DEADLINE).unwrap();
    ws.send_ws(true, opcode::PING, b"still there").unwrap();
    assert_eq!(ws.recv_ws().unwrap().payload, b"still there");
    eprintln!("100000 pings unread: {pongs} pongs answered");
}

#[test]
fn frames_sent_with_the_upgrade_past_the_first_read_are_all_served() {
    // The upgrade request and, in the same write, a Hello and two Publishes, the second crossing
    // the server's 64 KiB read: reading stops at the upgrade, and what the socket still holds
    // must be read without the poller saying so again.
    use framewire_protocol::wire::{Hello, Publish, Text, encode_stream_frame_into};
    let server = TestServer::start(ServerConfig::default());
    let message = |frame: Frame, mask: u8| {
        let mut stream = bytes::BytesMut::new();
        encode_stream_frame_into(&frame, &mut stream).unwrap();
        masked_frame(
            true,
            opcode::BINARY,
            &stream[4..stream.len() - 4],
            Some([mask, 1, 2, 3]),
        )
    };
    let publish = |id, payload: Vec<u8>| {
        Frame::new(Publish {
            retain: false,
            id,
            topic: Text::from_static("big/ws"),
            payload: payload.into(),
        })
    };
    let mut bytes = upgrade_request("").into_bytes();
    bytes.extend(message(Frame::new(Hello::new(0, HelloOptions::new())), 9));
    bytes.extend(message(publish(1, vec![7; 64 * 1024 - 200]), 10));
    bytes.extend(message(publish(2, b"behind it".to_vec()), 11));
    assert!(bytes.len() > 64 * 1024);
    let mut ws =
        WsStream::open_with_bytes([127, 0, 0, 1].into(), server.http_addr(), DEADLINE, &bytes)
            .expect("upgraded");
    let mut answered = Vec::new();
    while answered.len() < 2 {
        match ws.recv().expect("every answer in time").body {
            FrameBody::Response(r) => {
                assert_eq!(r.status, Status::OK);
                answered.push(r.id);
            }
            FrameBody::Welcome(_) | FrameBody::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answered, [1, 2]);
}
