//! The TLS listener with a TLS stack that is not ours: `openssl s_client` (Debian `openssl`)
//! completes a TLS 1.3 and a TLS 1.2 handshake, with ALPN `framewire/1` and with a client
//! certificate, and carries a framewire Hello to its Welcome.
//!
//! These need the `openssl` program, so `cargo test` leaves them out (`#[ignore]`); `.ci/run`
//! installs openssl and runs them: `cargo test -p framewire-tests --test tls_openssl -- --ignored`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use bytes::BytesMut;
use framewire_protocol::wire::{
    Frame, FrameBody, Hello, HelloOptions, StreamDeframer, encode_stream_frame_into,
};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestPki, TestServer};

/// Runs `openssl s_client` against the server with `extra` arguments, sends a Hello through it,
/// and returns the first frame that comes back and what `s_client` said about the session.
fn hello_through_openssl(server: &TestServer, pki: &TestPki, extra: &[&str]) -> (Frame, String) {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(server.tls_addr().to_string())
        .arg("-CAfile")
        .arg(&pki.ca)
        .args(["-alpn", "framewire/1", "-verify_return_error", "-brief"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client runs (Debian package openssl)");
    let mut hello = BytesMut::new();
    encode_stream_frame_into(
        &Frame::new(Hello::new(0, HelloOptions::default())),
        &mut hello,
    )
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&hello).unwrap();
    stdin.flush().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut deframer = StreamDeframer::new(1 << 20);
        let mut input = BytesMut::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Some(body)) = deframer.decode(&mut input) {
                let _ = tx.send(Frame::parse(body).ok());
                return;
            }
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => input.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let frame = rx.recv_timeout(DEADLINE).ok().flatten();
    drop(stdin);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    (
        frame.unwrap_or_else(|| panic!("no frame back; s_client said:\n{said}")),
        said,
    )
}

fn server(pki: &TestPki, client_ca: bool) -> TestServer {
    TestServer::start(ServerConfig {
        tls_addr: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(pki.server.cert.clone()),
        tls_key: Some(pki.server.key.clone()),
        tls_client_ca: client_ca.then(|| pki.ca.clone()),
        ..ServerConfig::default()
    })
}

fn is_welcome(frame: &Frame) -> bool {
    matches!(frame.body, FrameBody::Welcome(_))
}

#[test]
#[ignore = "needs the openssl program; .ci/run runs it"]
fn openssl_s_client_speaks_framewire_over_tls_1_3_and_1_2_with_alpn() {
    let pki = TestPki::new("openssl");
    let server = server(&pki, false);
    for (version, flag) in [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")] {
        let (frame, said) = hello_through_openssl(&server, &pki, &[flag]);
        assert!(is_welcome(&frame), "{frame:?}");
        assert!(said.contains(version), "{said}");
    }
    // s_client's full report (stdin closed: it ends after the handshake) names the protocol
    // agreed; a client offering only another protocol is refused.
    let report = s_client_report(&server, &pki, "framewire/1");
    assert!(report.contains("ALPN protocol: framewire/1"), "{report}");
    let report = s_client_report(&server, &pki, "http/1.1");
    assert!(!report.contains("ALPN protocol"), "{report}");
    assert!(report.contains("no application protocol"), "{report}");
    assert_eq!(server.counters().tls_handshakes, 3);
}

/// What `openssl s_client` reports (stdout and stderr) about a handshake offering `alpn`.
fn s_client_report(server: &TestServer, pki: &TestPki, alpn: &str) -> String {
    let output = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(server.tls_addr().to_string())
        .arg("-CAfile")
        .arg(&pki.ca)
        .args(["-alpn", alpn])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs (Debian package openssl)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
#[ignore = "needs the openssl program; .ci/run runs it"]
fn openssl_s_client_with_a_client_certificate_passes_mutual_tls() {
    let pki = TestPki::new("openssl-mutual");
    let server = server(&pki, true);
    let device = pki.client("device-7");
    let cert = device.cert.to_string_lossy().into_owned();
    let key = device.key.to_string_lossy().into_owned();
    let (frame, said) = hello_through_openssl(&server, &pki, &["-cert", &cert, "-key", &key]);
    assert!(is_welcome(&frame), "{frame:?} {said}");
}
