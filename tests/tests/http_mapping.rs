//! The HTTP mapping (docs/PROTOCOL.md section 11.4) against the real server: Server-Sent Events,
//! long and short polls, publishes, requests and queues over plain HTTP, meeting TCP and UDP
//! clients on the same hub; resume from a cursor; tokens from a header, a cookie or the query.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use framewire_client::{Client, ClientOptions, Transport};
use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::wire::{Status, Text};
use framewire_server::ServerConfig;
use framewire_tests::http::{HttpConn, json_str};
use framewire_tests::{DEADLINE, TestServer};

fn client(server: &TestServer, transport: Transport) -> Client {
    let addr = match transport {
        Transport::Tcp => server.addr(),
        Transport::Udp => server.udp_addr(),
    };
    Client::connect(ClientOptions::new(addr, transport)).expect("connect")
}

fn message(c: &mut Client) -> (String, Bytes) {
    let m = c
        .next_message(DEADLINE)
        .expect("connection up")
        .expect("a message in time");
    (m.topic.as_str().to_string(), m.payload)
}

/// Opens an event stream and reads its head and session event.
fn open_stream(server: &TestServer, target: &str, headers: &str) -> (HttpConn, String) {
    let mut sse = HttpConn::connect(server.http_addr());
    sse.send("GET", target, headers, b"");
    let (status, head) = sse.response_head();
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    let session = loop {
        let e = sse.event();
        if e.event.as_deref() == Some("session") {
            break e.data;
        }
    };
    (sse, session)
}

/// Waits until the server counts `n` sessions open over `transport` (`sse`, `http`).
fn wait_for_sessions(server: &TestServer, transport: &str, n: u64) {
    let mut metrics = HttpConn::connect(server.http_addr());
    let want = format!("framewire_sessions{{transport=\"{transport}\"}} {n}\n");
    let start = Instant::now();
    while !metrics
        .call("GET", "/metrics", "", b"")
        .text()
        .contains(&want)
    {
        assert!(start.elapsed() < DEADLINE, "never {want}");
        std::thread::yield_now();
    }
}

#[test]
fn http_publishes_reach_tcp_and_udp_and_theirs_reach_event_streams_and_polls() {
    let server = TestServer::start(ServerConfig::default());
    let mut tcp = client(&server, Transport::Tcp);
    let mut udp = client(&server, Transport::Udp);
    tcp.subscribe("room/#").unwrap();
    udp.subscribe("room/#").unwrap();
    let (mut sse, session) = open_stream(&server, "/sse?filter=room%2F%23", "");
    assert!(session.contains("\"resumed\":false"), "{session}");

    let mut http = HttpConn::connect(server.http_addr());
    let r = http.call("POST", "/publish/room/a", "", b"from http");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "{\"status\":\"OK\",\"code\":0}\n")
    );
    assert_eq!(
        message(&mut tcp),
        ("room/a".into(), Bytes::from("from http"))
    );
    assert_eq!(
        message(&mut udp),
        ("room/a".into(), Bytes::from("from http"))
    );
    let e = sse.message_event();
    assert!(e.id.is_some(), "{e:?}");
    assert!(e.data.contains("\"topic\":\"room/a\""), "{e:?}");
    assert!(
        e.data
            .contains("\"payload\":\"from http\",\"encoding\":\"utf8\""),
        "{e:?}"
    );

    // Bytes that are not UTF-8 travel as base64.
    tcp.publish("room/b", vec![0xff, 0x00, 0x01]).unwrap();
    let e = sse.message_event();
    assert!(
        e.data
            .contains("\"payload\":\"/wAB\",\"encoding\":\"base64\""),
        "{e:?}"
    );
    udp.publish("room/c", "from udp").unwrap();
    assert!(sse.message_event().data.contains("from udp"));

    // A short poll answers at once; its cursor makes the next poll a long one that is held until
    // a Message comes (well before its 30 s wait).
    let r = http.call("GET", "/poll?filter=room%2F%23&wait=0", "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"messages\":[]"), "{}", r.text());
    let cursor = json_str(&r.text(), "cursor").expect("a cursor");
    let started = Instant::now();
    http.send("GET", &format!("/poll?after={cursor}&wait=30000"), "", b"");
    wait_for_sessions(&server, "http", 1);
    tcp.publish("room/d", "while held").unwrap();
    let r = http.response();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "held to its wait"
    );
    assert!(r.text().contains("\"resumed\":true"), "{}", r.text());
    assert!(
        r.text().contains("\"payload\":\"while held\""),
        "{}",
        r.text()
    );

    // sys.stats and the metrics count the new transports.
    let stats = tcp.request("sys.stats", Bytes::new(), DEADLINE).unwrap();
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("\"sse\":{\"sessions\":1,"), "{stats}");
    assert!(stats.contains("\"http\":{\"sessions\":0,"), "{stats}");
}

#[test]
fn an_event_stream_resumes_from_last_event_id_after_its_connection_drops() {
    let server = TestServer::start(ServerConfig::default());
    let mut tcp = client(&server, Transport::Tcp);
    let (mut sse, _) = open_stream(&server, "/sse?filter=feed", "");
    tcp.publish("feed", "1").unwrap();
    tcp.publish("feed", "2").unwrap();
    let first = sse.message_event();
    assert!(first.data.contains("\"payload\":\"1\""));
    assert!(sse.message_event().data.contains("\"payload\":\"2\""));
    // The browser had only the first when the connection dropped; more come meanwhile.
    drop(sse);
    wait_for_sessions(&server, "sse", 0);
    tcp.publish("feed", "3").unwrap();
    tcp.publish("feed", "4").unwrap();
    let id = first.id.expect("an event id");
    let (mut sse, session) = open_stream(
        &server,
        "/sse?filter=feed",
        &format!("Last-Event-ID: {id}\r\n"),
    );
    assert!(
        session.contains("\"resumed\":true,\"missed\":0"),
        "{session}"
    );
    for want in ["2", "3", "4"] {
        let e = sse.message_event();
        assert!(
            e.data.contains(&format!("\"payload\":\"{want}\"")),
            "{want}: {e:?}"
        );
    }
    tcp.publish("feed", "5").unwrap();
    let e = sse.message_event();
    assert!(e.data.contains("\"payload\":\"5\""), "nothing twice: {e:?}");
}

#[test]
fn requests_and_queues_over_http_meet_native_clients() {
    let server = TestServer::start(ServerConfig::default());
    let mut responder = client(&server, Transport::Tcp);
    responder.register("svc.upper").unwrap();
    let answering = std::thread::spawn(move || {
        let r = responder
            .next_request(DEADLINE)
            .unwrap()
            .expect("a request");
        let upper = String::from_utf8_lossy(&r.payload).to_uppercase();
        responder.respond(&r, Status::OK, upper).unwrap();
        responder
    });
    let mut http = HttpConn::connect(server.http_addr());
    let r = http.call("POST", "/request/svc.upper?timeout=5000", "", b"shout");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"payload\":\"SHOUT\""), "{}", r.text());
    let mut worker = answering.join().unwrap();
    let r = http.call("POST", "/request/nobody.home", "", b"");
    assert_eq!(r.status, 503);
    assert_eq!(
        json_str(&r.text(), "status").as_deref(),
        Some("NO_RESPONDER")
    );

    // Pushed over HTTP, taken by a TCP worker; pushed by it, taken and acked over HTTP.
    assert_eq!(http.call("POST", "/queue/jobs", "", b"one").status, 200);
    let got = worker.queue_fetch("jobs", 1, DEADLINE).unwrap();
    assert_eq!(got[0].payload, Bytes::from("one"));
    worker.queue_ack("jobs", got[0].delivery_id).unwrap();
    worker.queue_push("jobs", "two").unwrap();
    let r = http.call("GET", "/queue/jobs?wait=5000", "", b"");
    assert!(r.text().contains("\"payload\":\"two\""), "{}", r.text());
    let delivery = json_str(&r.text(), "delivery").expect("a delivery id");
    // The fetch is over, but its delivery waits for the ack: nothing to fetch meanwhile.
    let r = http.call("GET", "/queue/jobs?wait=0", "", b"");
    assert!(r.text().contains("\"deliveries\":[]"), "{}", r.text());
    // Given back, it is delivered again, marked so; then acked, it is gone.
    let r = http.call("POST", &format!("/queue/jobs?nack={delivery}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http.call("GET", "/queue/jobs?wait=5000", "", b"");
    assert!(r.text().contains("\"redelivered\":true"), "{}", r.text());
    let r = http.call("POST", &format!("/queue/jobs?ack={delivery}"), "", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http.call("POST", &format!("/queue/jobs?ack={delivery}"), "", b"");
    assert_eq!(r.status, 404, "{}", r.text());
}

const KEY: [u8; 32] = [0x4b; 32];

fn token_hex() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = ConnectToken {
        client_id: Text::from("dash-1"),
        expires: now + 600,
        permissions: Permissions {
            publish: vec![Text::from("lamps/#")],
            subscribe: vec![Text::from("lamps/#")],
            ..Permissions::default()
        },
    }
    .sign(&KEY)
    .unwrap();
    framewire_server::web::form::to_hex(&signed)
}

#[test]
fn the_connect_token_comes_in_a_header_a_cookie_or_the_query_and_its_acl_holds() {
    let key = std::env::temp_dir().join(format!("fw-http-key-{}", std::process::id()));
    std::fs::write(&key, KEY).unwrap();
    let server = TestServer::start(ServerConfig {
        token_key_file: Some(key.clone()),
        require_tokens: true,
        ..ServerConfig::default()
    });
    let token = token_hex();
    let mut http = HttpConn::connect(server.http_addr());
    let r = http.call("POST", "/publish/lamps/1", "", b"on");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        json_str(&r.text(), "status").as_deref(),
        Some("AUTH_FAILED")
    );
    for (target, headers) in [
        (
            "/publish/lamps/1".to_string(),
            format!("Authorization: Bearer {token}\r\n"),
        ),
        (
            "/publish/lamps/1".to_string(),
            format!("Cookie: theme=dark; framewire_token={token}\r\n"),
        ),
        (format!("/publish/lamps/1?token={token}"), String::new()),
    ] {
        let r = http.call("POST", &target, &headers, b"on");
        assert_eq!(r.status, 200, "{target} {headers}: {}", r.text());
    }
    // The cookie from another site's page (cross-site request forgery): refused, and said why.
    let forged = format!(
        "Origin: http://elsewhere.example\r\nSec-Fetch-Site: cross-site\r\nCookie: framewire_token={token}\r\n"
    );
    let r = http.call("POST", "/publish/lamps/1", &forged, b"on");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("own origin"), "{}", r.text());
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let r = http.call("POST", "/publish/doors/1", &bearer, b"open");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json_str(&r.text(), "status").as_deref(), Some("FORBIDDEN"));
    // A stream whose filter the token does not allow is refused before it starts.
    let r = http.call("GET", "/sse?filter=doors%2F%23", &bearer, b"");
    assert_eq!(r.status, 403, "{}", r.text());
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_request_pipelined_behind_an_operation_in_the_same_full_read_is_answered() {
    // The server reads 64 KiB at a time. A publish whose request ends just before that, with a
    // second request right behind it, leaves the second's tail in the socket when the first is
    // handed to the hub; the poller will not report those bytes again, so the server must read
    // on by itself.
    let server = TestServer::start(ServerConfig::default());
    let mut tcp = client(&server, Transport::Tcp);
    tcp.subscribe("big/#").unwrap();
    let head = |len: usize| {
        format!("POST /publish/big/one HTTP/1.1\r\nHost: test\r\nContent-Length: {len:05}\r\n\r\n")
    };
    let body_len = 64 * 1024 - head(0).len() - 20;
    let mut bytes = head(body_len).into_bytes();
    bytes.resize(bytes.len() + body_len, b'x');
    bytes.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(
        bytes.len() > 64 * 1024,
        "the second request crosses the first read"
    );
    let mut http = HttpConn::connect(server.http_addr());
    http.send_raw(&bytes);
    let first = http.response();
    assert_eq!(first.status, 200, "{}", first.text());
    let second = http.response();
    assert_eq!(second.status, 200);
    assert!(second.text().contains("framewire_sessions"), "the metrics");
    let (topic, payload) = message(&mut tcp);
    assert_eq!((topic.as_str(), payload.len()), ("big/one", body_len));
}

#[test]
fn requests_the_mapping_cannot_read_are_told_why() {
    let server = TestServer::start(ServerConfig::default());
    let mut http = HttpConn::connect(server.http_addr());
    for (method, target, status) in [
        ("GET", "/publish/t", 405),
        ("DELETE", "/queue/jobs", 405),
        ("POST", "/sse?filter=t", 405),
        ("GET", "/poll", 400),
        ("GET", "/poll?filter=t&wait=600000", 400),
        ("GET", "/poll?after=nothex.1", 400),
        ("POST", "/publish/", 404),
        ("POST", "/publish/a%zz", 400),
        ("POST", "/publish/bad/%23/topic", 400),
        ("POST", "/queue/jobs?ack=7", 404),
    ] {
        let r = http.call(method, target, "", b"");
        assert_eq!(r.status, status, "{method} {target}: {}", r.text());
        assert!(
            r.head.contains("Content-Type: application/json\r\n"),
            "{}",
            r.head
        );
    }
}
