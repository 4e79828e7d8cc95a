//! The HTTPS listener (docs/PROTOCOL.md section 11.1) against the real server: what the HTTP
//! listener serves (metrics, the HTTP mapping, WebSocket sessions) over TLS with ALPN `http/1.1`,
//! meeting plain TCP clients on the same hub; a TLS connection's end is a `close_notify`; each
//! refusal (a plaintext client, a certificate not trusted, no protocol in common, a handshake
//! that never finishes) is
//! closed and counted; `require_encryption` refuses plaintext HTTP operations and serves HTTPS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_client::{Client, ClientOptions, Transport};
use framewire_protocol::wire::{Frame, FrameBody, HelloOptions, Reason};
use framewire_server::ServerConfig;
use framewire_tests::http::{HttpConn, json_str};
use framewire_tests::websocket::{ServerFrame, WsStream};
use framewire_tests::{
    DEADLINE, Duplex, StreamClient, TestClient, TestPki, TestServer, https_client_config,
};

fn https_server(pki: &TestPki, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut config = ServerConfig {
        https_addr: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(pki.server.cert.clone()),
        tls_key: Some(pki.server.key.clone()),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    TestServer::start(config)
}

fn tcp_client(server: &TestServer) -> Client {
    Client::connect(ClientOptions::new(server.addr(), Transport::Tcp)).expect("connect")
}

/// A framewire session over a WebSocket over TLS.
fn wss_client(server: &TestServer, pki: &TestPki) -> TestClient {
    let ws = WsStream::connect_tls(
        [127, 0, 0, 1].into(),
        server.https_addr(),
        DEADLINE,
        &pki.ca,
    )
    .expect("a WebSocket over TLS");
    assert_eq!(ws.stream().alpn(), Some(&b"http/1.1"[..]));
    TestClient::handshake_over(StreamClient::Ws(Box::new(ws)), HelloOptions::new()).0
}

/// Waits until `done` holds of the server's counters.
fn wait_for(server: &TestServer, what: &str, done: impl Fn(&TestServer) -> bool) {
    let start = Instant::now();
    while !done(server) {
        assert!(start.elapsed() < DEADLINE, "never {what}");
        std::thread::yield_now();
    }
}

#[test]
fn metrics_and_the_demo_page_over_https_on_one_kept_alive_connection() {
    let pki = TestPki::new("https-metrics");
    let server = https_server(&pki, |_| {});
    let mut https = HttpConn::connect_tls(server.https_addr(), &pki.ca);
    let page = https.call("GET", "/", "", b"");
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.text().contains("framewire.js"), "{}", page.text());
    assert_eq!(https.stream().alpn(), Some(&b"http/1.1"[..]));
    // The same TLS connection, kept alive.
    let metrics = https.call("GET", "/metrics", "", b"");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .text()
            .contains("framewire_tls_handshakes_total 1\n"),
        "{}",
        metrics.text()
    );
    // The plain HTTP listener is still there, serving the same.
    let mut http = HttpConn::connect(server.http_addr());
    assert_eq!(http.call("GET", "/metrics", "", b"").status, 200);
}

#[test]
fn a_websocket_over_tls_is_a_session_as_over_tcp() {
    let pki = TestPki::new("https-wss");
    let server = https_server(&pki, |_| {});
    let mut wss = wss_client(&server, &pki);
    let mut tcp = tcp_client(&server);
    wss.subscribe_ok(1, "chat/#");
    tcp.subscribe("chat/#").unwrap();
    // Larger than a TLS record (16 KiB): a message crosses records both ways.
    let big = vec![0x5Au8; 40_000];
    tcp.publish("chat/big", big.clone()).unwrap();
    let got = loop {
        if let FrameBody::Message(m) = wss.recv().body {
            break m;
        }
    };
    assert_eq!(
        (got.topic.as_str(), got.payload.len()),
        ("chat/big", big.len())
    );
    assert_eq!(&got.payload[..], &big[..]);
    let mut from_browser = b"over wss ".to_vec();
    from_browser.resize(40_000, b'.');
    wss.publish_ok(2, "chat/wss", &from_browser);
    let m = loop {
        let m = tcp.next_message(DEADLINE).unwrap().expect("a message");
        if m.topic.as_str() == "chat/wss" {
            break m;
        }
    };
    assert_eq!(&m.payload[..], &from_browser[..]);
    assert_eq!(server.counters().tls_handshakes, 1);
    // The client closes its session: the server's WebSocket close, then the TLS stream's end
    // (`close_notify`: a clean end, not a cut connection).
    let TestClient::Tcp(StreamClient::Ws(mut ws)) = wss else {
        unreachable!("made over a WebSocket")
    };
    ws.send(&Frame::new(framewire_protocol::wire::Close {
        reason: Reason::NORMAL,
        message: framewire_protocol::wire::Text::from_static(""),
    }))
    .unwrap();
    while ws.closed_with.is_none() {
        ws.recv_ws().expect("frames until the WebSocket close");
    }
    assert_eq!(
        ws.closed_with.as_ref().and_then(ServerFrame::close_code),
        Some(1000)
    );
    assert_eq!(ws.read_to_clean_end().expect("a close_notify"), 0);
}

#[test]
fn event_streams_and_posts_over_https_meet_a_tcp_client() {
    let pki = TestPki::new("https-sse");
    let server = https_server(&pki, |_| {});
    let mut tcp = tcp_client(&server);
    tcp.subscribe("room/#").unwrap();
    let mut sse = HttpConn::connect_tls(server.https_addr(), &pki.ca);
    sse.send("GET", "/sse?filter=room%2F%23", "", b"");
    let (status, head) = sse.response_head();
    assert_eq!(status, 200, "{head}");
    while sse.event().event.as_deref() != Some("session") {}
    let mut post = HttpConn::connect_tls(server.https_addr(), &pki.ca);
    let r = post.call("POST", "/publish/room/a", "", b"from https");
    assert_eq!(r.status, 200, "{}", r.text());
    let m = tcp.next_message(DEADLINE).unwrap().expect("a message");
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("room/a", &b"from https"[..])
    );
    let e = sse.message_event();
    assert_eq!(json_str(&e.data, "topic").as_deref(), Some("room/a"));
    tcp.publish("room/b", "from tcp").unwrap();
    let e = sse.message_event();
    assert_eq!(json_str(&e.data, "topic").as_deref(), Some("room/b"));
    assert_eq!(json_str(&e.data, "payload").as_deref(), Some("from tcp"));
}

#[test]
fn refusals_at_the_https_port_are_closed_and_counted() {
    let pki = TestPki::new("https-refusals");
    let server = https_server(&pki, |c| c.http_head_timeout_ms = 300);
    // A plaintext HTTP request: no TLS record, closed, counted.
    let mut plain = TcpStream::connect(server.https_addr()).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("framewire_"),
        "no plaintext answer"
    );
    wait_for(&server, "a plaintext client counted", |s| {
        s.counters().tls_not_tls == 1
    });
    // A client that does not trust the server's certificate (another CA).
    let other = TestPki::new("https-refusals-other");
    let mut untrusting = HttpConn::connect_tls(server.https_addr(), &other.ca);
    untrusting
        .send_raw_result(b"GET / HTTP/1.1\r\n\r\n")
        .unwrap_err();
    wait_for(&server, "a refused certificate counted", |s| {
        s.counters().tls_bad_certificate == 1
    });
    // A client that offers only HTTP/2: no protocol in common, refused by the handshake.
    let mut h2_only = (*https_client_config(&pki.ca)).clone();
    h2_only.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.https_addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut h2 = Duplex::tls(tcp, Arc::new(h2_only)).unwrap();
    assert!(
        h2.write_all(b"GET / HTTP/1.1\r\n\r\n")
            .and_then(|()| h2.flush())
            .is_err()
    );
    wait_for(
        &server,
        "a handshake without a common protocol counted",
        |s| s.counters().tls_failed == 1,
    );
    // A handshake that never starts: closed by the head's deadline, counted as a timeout.
    let mut silent = TcpStream::connect(server.https_addr()).unwrap();
    silent.set_read_timeout(Some(DEADLINE)).unwrap();
    let start = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(
        silent.read(&mut byte).unwrap_or(0),
        0,
        "closed, nothing sent"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    wait_for(&server, "a handshake timeout counted", |s| {
        s.counters().tls_handshake_timeout == 1
    });
    assert_eq!(server.counters().tls_handshakes, 0);
    // Nothing is left behind: the server takes and serves a good client still.
    let mut good = HttpConn::connect_tls(server.https_addr(), &pki.ca);
    assert_eq!(good.call("GET", "/metrics", "", b"").status, 200);
}

#[test]
fn require_encryption_refuses_plain_http_and_serves_https() {
    let pki = TestPki::new("https-required");
    // Requiring encryption with UDP served asks for the key UDP sessions' tokens are sealed
    // under; tokens themselves stay optional here.
    let key = pki.dir().join("token.key");
    std::fs::write(&key, [0x5e; 32]).unwrap();
    let server = https_server(&pki, |c| {
        c.require_encryption = true;
        c.token_key_file = Some(key);
    });
    let mut http = HttpConn::connect(server.http_addr());
    let r = http.call("POST", "/publish/room/a", "", b"in the clear");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("https"), "{}", r.text());
    // A WebSocket session over plain HTTP is refused at its Hello, as over plain TCP.
    let mut ws = WsStream::connect_from([127, 0, 0, 1].into(), server.http_addr(), DEADLINE)
        .expect("the upgrade itself is answered");
    let answer = ws
        .handshake(HelloOptions::new())
        .expect("an answer to the Hello");
    assert!(
        matches!(&answer.body, FrameBody::Reject(r) if r.reason == Reason::AUTH_FAILED),
        "{answer:?}"
    );
    // Over HTTPS, both are served.
    let mut https = HttpConn::connect_tls(server.https_addr(), &pki.ca);
    let r = https.call("POST", "/publish/room/a", "", b"sealed");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut wss = wss_client(&server, &pki);
    wss.subscribe_ok(1, "room/#");
}
