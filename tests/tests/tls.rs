//! TLS on TCP through a real server and the client crate: a session over TLS does what one over
//! plain TCP does; mutual TLS makes the certificate's common name the session's identity, whose
//! `acl` rule holds; each refusal (a plaintext client at the TLS port, a server certificate the
//! client does not trust, an expired client certificate, one from an unknown CA, none at all, a
//! handshake that never finishes) closes the connection, is counted, and leaves nothing behind.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use framewire_client::{Client, ClientError, ClientOptions, Error, Status, TlsOptions, Transport};
use framewire_protocol::wire::{Frame, Hello, HelloOptions, encode_stream_frame_into};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, Pem, TestPki, TestServer};

fn tls_server(pki: &TestPki, client_ca: bool, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut config = ServerConfig {
        tls_addr: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(pki.server.cert.clone()),
        tls_key: Some(pki.server.key.clone()),
        tls_client_ca: client_ca.then(|| pki.ca.clone()),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    TestServer::start(config)
}

fn options(server: &TestServer, tls: TlsOptions) -> ClientOptions {
    ClientOptions::builder(server.tls_addr())
        .tls(tls)
        .no_reconnect()
        .build()
        .unwrap()
}

fn trusting(pki: &TestPki) -> framewire_client::TlsOptionsBuilder {
    TlsOptions::builder().ca_file(&pki.ca).unwrap()
}

fn with_certificate(pki: &TestPki, pem: &Pem) -> TlsOptions {
    trusting(pki)
        .client_certificate(&pem.cert, &pem.key)
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn a_session_over_tls_publishes_subscribes_and_requests_as_over_tcp() {
    let pki = TestPki::new("session");
    let server = tls_server(&pki, false, |_| {});
    // The server's certificate names 127.0.0.1: the address connected to is the name checked.
    let mut a = Client::connect(options(&server, trusting(&pki).build().unwrap())).unwrap();
    // And `localhost`, when told to check that name instead.
    let named = trusting(&pki)
        .server_name("localhost")
        .unwrap()
        .build()
        .unwrap();
    let mut b = Client::connect(options(&server, named)).unwrap();
    b.subscribe("chat/#").unwrap();
    // Larger than a TLS record (16 KiB): a frame crosses records.
    let big = vec![0xA5u8; 60_000];
    a.publish("chat/lobby", "hello over TLS").unwrap();
    a.publish("chat/big", big.clone()).unwrap();
    let first = b.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(&first.payload[..], b"hello over TLS");
    let second = b.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(second.payload.len(), big.len());
    assert_eq!(&second.payload[..], &big[..]);
    let pong = a.request("sys.ping", "", DEADLINE).unwrap();
    assert_eq!(&pong[..], b"pong");
    let stats = a.request("sys.stats", "", DEADLINE).unwrap();
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("\"tls\":{\"handshakes\":2,"), "{stats}");
    assert_eq!(server.counters().tls_handshakes, 2);
}

#[test]
fn the_plain_listener_and_the_tls_listener_serve_one_hub() {
    let pki = TestPki::new("beside");
    let server = tls_server(&pki, false, |_| {});
    let mut plain = Client::connect(ClientOptions::new(server.addr(), Transport::Tcp)).unwrap();
    let mut secure = Client::connect(options(&server, trusting(&pki).build().unwrap())).unwrap();
    plain.subscribe("t").unwrap();
    secure.publish("t", "across").unwrap();
    let m = plain.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(&m.payload[..], b"across");
}

#[test]
fn mutual_tls_makes_the_certificates_common_name_the_identity_its_acl_rule_limits() {
    let pki = TestPki::new("mutual");
    let server = tls_server(&pki, true, |c| {
        c.acl = vec![
            "sensor-12 publish=dev/12/# subscribe=cmd/12/#"
                .parse()
                .unwrap(),
            "dashboard subscribe=dev/#".parse().unwrap(),
        ];
    });
    let mut sensor = Client::connect(options(
        &server,
        with_certificate(&pki, &pki.client("sensor-12")),
    ))
    .unwrap();
    let mut dashboard = Client::connect(options(
        &server,
        with_certificate(&pki, &pki.client("dashboard")),
    ))
    .unwrap();
    dashboard.subscribe("dev/#").unwrap();
    sensor.subscribe("cmd/12/#").unwrap();
    sensor.publish("dev/12/temp", "21.5").unwrap();
    let m = dashboard.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(m.topic.as_str(), "dev/12/temp");
    // Outside its rule: refused.
    let forbidden =
        |e: Error| matches!(e, Error::Status { status, .. } if status == Status::FORBIDDEN);
    assert!(forbidden(sensor.publish("dev/13/temp", "x").unwrap_err()));
    assert!(forbidden(sensor.subscribe("dev/#").unwrap_err()));
    assert!(forbidden(
        dashboard.publish("dev/12/temp", "x").unwrap_err()
    ));
    // An identity the rules do not name may only ask the server about itself.
    let mut nobody = Client::connect(options(
        &server,
        with_certificate(&pki, &pki.client("nobody")),
    ))
    .unwrap();
    assert!(forbidden(nobody.publish("dev/1", "x").unwrap_err()));
    assert_eq!(
        &nobody.request("sys.ping", "", DEADLINE).unwrap()[..],
        b"pong"
    );
}

fn tls_refusal(result: Result<Client, ClientError>) -> String {
    match result {
        Err(ClientError::Unreachable(e)) => e.to_string(),
        Err(ClientError::Closed { message, .. }) => message.as_str().to_owned(),
        other => panic!("expected the TLS handshake to fail: {other:?}"),
    }
}

#[test]
fn client_certificates_that_are_missing_expired_or_from_an_unknown_ca_are_refused_and_counted() {
    let pki = TestPki::new("refused");
    let server = tls_server(&pki, true, |_| {});
    let none = trusting(&pki).build().unwrap();
    let cases = [
        ("none", none),
        (
            "expired",
            with_certificate(&pki, &pki.expired_client("sensor-1")),
        ),
        (
            "stranger",
            with_certificate(&pki, &pki.stranger("sensor-1")),
        ),
    ];
    for (i, (what, tls)) in cases.into_iter().enumerate() {
        let why = tls_refusal(Client::connect(options(&server, tls)));
        let c = server.counted(|c| c.tls_bad_certificate == i as u64 + 1);
        assert_eq!(c.tls_handshakes, 0, "{what}: {why}");
    }
    // The refused left nothing behind: a good certificate still gets in.
    let mut ok = Client::connect(options(
        &server,
        with_certificate(&pki, &pki.client("sensor-1")),
    ))
    .unwrap();
    assert_eq!(&ok.request("sys.ping", "", DEADLINE).unwrap()[..], b"pong");
}

#[test]
fn a_client_that_does_not_trust_the_servers_certificate_refuses_it_and_the_server_counts_it() {
    let pki = TestPki::new("distrust");
    let other = TestPki::new("distrust-other");
    let server = tls_server(&pki, false, |_| {});
    let why = tls_refusal(Client::connect(options(
        &server,
        TlsOptions::builder()
            .ca_file(&other.ca)
            .unwrap()
            .build()
            .unwrap(),
    )));
    assert!(why.contains("certificate"), "{why}");
    // A name the certificate does not carry.
    let misnamed = trusting(&pki)
        .server_name("elsewhere.example")
        .unwrap()
        .build()
        .unwrap();
    let why = tls_refusal(Client::connect(options(&server, misnamed)));
    assert!(why.contains("certificate"), "{why}");
    server.counted(|c| c.tls_bad_certificate == 2);
}

#[test]
fn a_plaintext_client_at_the_tls_port_is_closed_and_counted() {
    let pki = TestPki::new("plaintext");
    let server = tls_server(&pki, false, |_| {});
    let mut hello = bytes::BytesMut::new();
    encode_stream_frame_into(
        &Frame::new(Hello::new(0, HelloOptions::default())),
        &mut hello,
    )
    .unwrap();
    let mut socket = TcpStream::connect(server.tls_addr()).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket.write_all(&hello).unwrap();
    // The server answers with a TLS alert, at most, and closes: never a Welcome.
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut socket, &mut answer);
    assert!(answer.len() < 16, "{answer:?}");
    assert!(
        answer.first().is_none_or(|&b| b == 0x15),
        "an alert record: {answer:?}"
    );
    server.counted(|c| c.tls_not_tls == 1);
}

#[test]
fn a_handshake_that_never_finishes_is_closed_at_the_first_frame_deadline() {
    let pki = TestPki::new("stalled");
    let server = tls_server(&pki, false, |c| c.first_frame_deadline_ms = 300);
    let start = Instant::now();
    // Half a ClientHello record header, then silence.
    let mut socket = TcpStream::connect(server.tls_addr()).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut socket, &mut rest);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    server.counted(|c| c.tls_handshake_timeout == 1);
    // A client that does complete its handshake in time is served.
    let mut ok = Client::connect(options(&server, trusting(&pki).build().unwrap())).unwrap();
    assert_eq!(&ok.request("sys.ping", "", DEADLINE).unwrap()[..], b"pong");
}

#[test]
fn past_the_connection_limit_the_tls_port_closes_without_writing_in_the_clear() {
    let pki = TestPki::new("limit");
    let server = tls_server(&pki, false, |c| c.max_connections = 1);
    let _first = Client::connect(options(&server, trusting(&pki).build().unwrap())).unwrap();
    let mut second = TcpStream::connect(server.tls_addr()).unwrap();
    second.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut second, &mut got);
    assert!(
        got.is_empty(),
        "a plaintext Close would be a broken TLS record: {got:?}"
    );
}
