//! The server binary shuts down gracefully on SIGTERM and SIGINT: every client gets a Close
//! (`GOING_AWAY`) and the process exits 0. On SIGHUP it reads its TLS certificate and key again,
//! keeping the sessions that are up. Every wait has a deadline; nothing sleeps.

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::process::Command;

use framewire_client::{FrameStream, RecvError};
use framewire_protocol::wire::{FrameBody, HelloOptions, Reason};

use common::{DEADLINE, ServerProcess};

fn shuts_down_on(signal: &str) {
    let mut server = ServerProcess::start(None);
    let addr = server.addr;
    let mut clients: Vec<FrameStream> = (0..3)
        .map(|_| FrameStream::connect(addr, DEADLINE).expect("connect"))
        .collect();
    for c in &mut clients {
        assert!(matches!(
            c.handshake(HelloOptions::new()).unwrap().body,
            FrameBody::Welcome(_)
        ));
    }
    let status = Command::new("kill")
        .args([signal, &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    for c in &mut clients {
        let frame = c.recv().expect("a Close before the socket closes");
        assert!(
            matches!(&frame.body, FrameBody::Close(close) if close.reason == Reason::GOING_AWAY),
            "{frame:?}"
        );
        assert!(matches!(c.recv(), Err(RecvError::Closed)));
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status");
}

#[test]
fn sigterm_closes_every_session_and_exits_zero() {
    shuts_down_on("-TERM");
}

#[test]
fn sigint_does_the_same() {
    shuts_down_on("-INT");
}

/// A CA's certificate (PEM) and a certificate for 127.0.0.1 it signed, with its key (PEM).
fn ca_and_leaf(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_pem, leaf.pem(), key.serialize_pem())
}

#[test]
fn sighup_reads_the_tls_certificate_again_without_dropping_sessions() {
    use framewire_client::{Client, ClientOptions, TlsOptions};

    let dir = std::env::temp_dir().join(format!("fw-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name);
    let (old_ca, old_cert, old_key) = ca_and_leaf("old CA");
    let (new_ca, new_cert, new_key) = ca_and_leaf("new CA");
    for (name, text) in [
        ("old-ca.pem", &old_ca),
        ("new-ca.pem", &new_ca),
        ("cert.pem", &old_cert),
        ("key.pem", &old_key),
    ] {
        std::fs::write(file(name), text).unwrap();
    }
    let (cert, key) = (file("cert.pem"), file("key.pem"));
    let server = ServerProcess::start_with(
        None,
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let line = server.wait_for_line("listening for TLS on ");
    let tls_addr: std::net::SocketAddr = line
        .split("listening for TLS on ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let connect = |ca: &str| {
        let tls = TlsOptions::builder()
            .ca_file(&file(ca))
            .unwrap()
            .build()
            .unwrap();
        Client::connect(
            ClientOptions::builder(tls_addr)
                .tls(tls)
                .no_reconnect()
                .build()
                .unwrap(),
        )
    };
    let mut old_session = connect("old-ca.pem").expect("the first certificate is served");
    old_session.subscribe("t").unwrap();
    std::fs::write(&cert, &new_cert).unwrap();
    std::fs::write(&key, &new_key).unwrap();
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    };
    hup();
    server.wait_for_line("TLS certificate and key read again");
    assert!(
        connect("old-ca.pem").is_err(),
        "the old certificate is gone"
    );
    let mut new_session = connect("new-ca.pem").expect("the new certificate is served");
    // The session that began before the reload goes on.
    new_session.publish("t", "after the reload").unwrap();
    let m = old_session
        .next_message(DEADLINE)
        .unwrap()
        .expect("a message");
    assert_eq!(&m.payload[..], b"after the reload");
    // A file that no longer reads keeps what is in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup();
    server.wait_for_line("TLS certificate and key kept as they were");
    connect("new-ca.pem").expect("still served after a failed reload");
    let _ = std::fs::remove_dir_all(&dir);
}
