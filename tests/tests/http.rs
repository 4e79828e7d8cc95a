//! The HTTP listener (docs/PROTOCOL.md section 11.1) against the real server: keep-alive and
//! pipelining, the status each bad request gets, the head deadline, and the metrics exposition.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{Frame, FrameBody, Register, Response, Status, Text};
use framewire_server::ServerConfig;
use framewire_tests::http::HttpConn;
use framewire_tests::{DEADLINE, TestClient, TestServer, Via};

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.http_addr()).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s
}

/// Everything the server sends until it closes the connection.
fn exchange(server: &TestServer, request: &[u8]) -> String {
    let mut s = connect(server);
    s.write_all(request).expect("send");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read to the close");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let server = TestServer::start(ServerConfig::default());
    let mut s = HttpConn::connect(server.http_addr());
    s.send_raw(
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let r = s.response();
    assert!(
        r.head.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{}",
        r.head
    );
    assert!(r.head.contains("Connection: keep-alive\r\n"));
    // HEAD: the headers of the GET, no body (its Content-Length says what the GET would carry).
    let (status, _) = s.response_head();
    assert_eq!(status, 200);
    let r = s.response();
    assert!(
        r.head.contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    assert!(
        r.text().contains("# TYPE framewire_sessions gauge\n"),
        "{}",
        r.text()
    );
}

#[test]
fn bad_requests_get_the_status_that_says_why_and_the_connection_closes() {
    let server = TestServer::start(ServerConfig::default());
    let long = "x".repeat(9000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "400 Bad Request"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            "400 Bad Request",
        ),
        (
            b"GET / HTTP/3.0\r\nHost: a\r\n\r\n".to_vec(),
            "505 HTTP Version Not Supported",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: a\r\nX: {long}\r\n\r\n").into_bytes(),
            "431 Request Header Fields Too Large",
        ),
        // Well-formed but refused: these would keep the connection; the client ends it.
        (
            b"DELETE /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
            "405 Method Not Allowed",
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
            "426 Upgrade Required",
        ),
    ];
    for (request, status) in &cases {
        let answer = exchange(&server, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{status}: {answer}"
        );
    }
    let counted = server.counted(|c| c.http_responses(400) == 2);
    assert_eq!(counted.http_responses(505), 1);
    assert_eq!(counted.http_responses(431), 1);
}

#[test]
fn bodies_are_read_by_their_length_and_bounded() {
    let server = TestServer::start(ServerConfig::default());
    // A body is read and the connection goes on to the next request.
    let mut s = HttpConn::connect(server.http_addr());
    let r = s.call("POST", "/nowhere", "", b"hello");
    assert_eq!(r.status, 404);
    assert!(r.head.contains("Connection: keep-alive\r\n"), "{}", r.head);
    assert_eq!(s.call("GET", "/nowhere", "", b"").status, 404);
    // Above the largest frame, or in chunks: refused, and the connection closes.
    let too_long = "POST /publish/t HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n";
    let answer = exchange(&server, too_long.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    let chunked =
        b"POST /publish/t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let answer = exchange(&server, chunked);
    assert!(answer.starts_with("HTTP/1.1 411 "), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
}

#[test]
fn a_head_that_does_not_arrive_in_time_gets_408_and_an_idle_connection_just_ends() {
    let server = TestServer::start(ServerConfig {
        http_head_timeout_ms: 300,
        ..ServerConfig::default()
    });
    let started = std::time::Instant::now();
    let answer = exchange(&server, b"GET /metrics HTTP/1.1\r\nHost: a\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // An idle keep-alive connection (nothing sent) is closed without a word.
    let mut idle = connect(&server);
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// The families `/metrics` lists, checked as Prometheus reads them: every sample under a `# TYPE`
/// line of its family, counters named `_total`, values whole numbers.
fn check_exposition(text: &str) -> Vec<(String, u64)> {
    let mut family: Option<(String, String)> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("a TYPE line");
            assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            family = Some((name.to_string(), kind.to_string()));
        } else if line.starts_with("# HELP ") {
        } else {
            let (series, value) = line.rsplit_once(' ').expect("a sample");
            let name = series.split('{').next().unwrap();
            let (family_name, kind) = family.as_ref().expect("a TYPE line first");
            if kind == "histogram" {
                // `_bucket`s and `_count` count; `_sum` adds up the observations.
                let suffix = name
                    .strip_prefix(family_name.as_str())
                    .expect("the family's");
                assert!(matches!(suffix, "_bucket" | "_sum" | "_count"), "{line}");
                if suffix == "_sum" {
                    value.parse::<f64>().expect("a number");
                    continue;
                }
            } else {
                assert_eq!(name, family_name, "{line}");
            }
            samples.push((series.to_string(), value.parse().expect("a number")));
        }
    }
    samples
}

#[test]
fn metrics_count_websocket_sessions_and_http_responses() {
    let server = TestServer::start(ServerConfig::default());
    let ws = TestClient::connect(&server, Via::WebSocket);
    let tcp = TestClient::connect(&server, Via::Tcp);
    let answer = exchange(
        &server,
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let samples = check_exposition(body);
    let value = |series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .unwrap_or_else(|| panic!("no {series}"))
            .1
    };
    assert_eq!(value("framewire_sessions{transport=\"websocket\"}"), 1);
    assert_eq!(value("framewire_sessions{transport=\"tcp\"}"), 1);
    assert_eq!(value("framewire_http_responses_total{code=\"101\"}"), 1);
    drop((ws, tcp));
}

/// Debian's `promtool` reads the exposition without complaint. Needs the program (package
/// `prometheus`), so it is run by `.ci/run` with `--ignored`.
#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run runs it"]
fn promtool_accepts_the_metrics() {
    let server = TestServer::start(ServerConfig::default());
    let _ws = TestClient::connect(&server, Via::WebSocket);
    // Something in each histogram: a publish, and a request routed to a TCP responder.
    let mut responder = TestClient::connect(&server, Via::Tcp);
    responder.call_ok(
        1,
        Frame::new(Register {
            id: 1,
            service: Text::from("svc"),
        }),
    );
    let mut http = HttpConn::connect(server.http_addr());
    assert_eq!(http.call("POST", "/publish/t", "", b"x").status, 200);
    http.send("POST", "/request/svc", "", b"ping");
    let FrameBody::Request(r) = responder.recv().body else {
        panic!("a routed request");
    };
    responder.send(Frame::new(Response {
        id: r.id,
        status: Status::OK,
        payload: Bytes::from_static(b"pong"),
    }));
    assert_eq!(http.response().status, 200);
    let answer = exchange(
        &server,
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let body = answer.split("\r\n\r\n").nth(1).expect("a body").to_string();
    assert!(
        body.contains("framewire_publish_fanout_count 1\n"),
        "{body}"
    );
    assert!(
        body.contains("framewire_routed_request_seconds_count 1\n"),
        "{body}"
    );
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write the metrics");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
