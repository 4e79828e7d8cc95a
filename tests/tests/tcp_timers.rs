//! The server's timers over real TCP: the first-frame deadline, the idle timeout and heartbeats.
//! Every wait is a receive with a deadline, never a sleep.

use framewire_protocol::wire::{FrameBody, HelloOptions, Pong, Reason};
use framewire_server::ServerConfig;
use framewire_tests::{RecvError, TestServer, connect};

#[test]
fn a_connection_without_a_hello_is_closed_at_the_first_frame_deadline() {
    let server = TestServer::start(ServerConfig {
        first_frame_deadline_ms: 200,
        ..ServerConfig::default()
    });
    let mut c = connect(&server);
    // A slowloris: a length prefix and one byte, then nothing.
    c.send_raw(&[0, 0, 0, 40, 1]).unwrap();
    let started = std::time::Instant::now();
    let frame = c.recv().expect("a Close");
    let FrameBody::Close(close) = frame.body else {
        panic!("expected Close, got {frame:?}");
    };
    assert_eq!(close.reason, Reason::HANDSHAKE_TIMEOUT);
    assert!(
        started.elapsed().as_millis() >= 100,
        "closed before the deadline"
    );
    assert!(matches!(c.recv(), Err(RecvError::Closed)));
}

#[test]
fn a_silent_client_is_closed_at_the_idle_timeout() {
    let server = TestServer::start(ServerConfig {
        idle_timeout_ms: 300,
        heartbeat_interval_ms: 60_000,
        ..ServerConfig::default()
    });
    let mut c = connect(&server);
    let FrameBody::Welcome(w) = c.handshake(HelloOptions::new()).unwrap().body else {
        panic!("expected Welcome");
    };
    assert_eq!(w.idle_timeout_ms, 300, "the agreed idle timeout");
    // The server's heartbeats keep within a third of the idle timeout (100 ms here, not the
    // configured minute); the silent client answers none.
    assert_eq!(
        w.heartbeat_interval_ms, 100,
        "the heartbeat interval in force"
    );
    let frame = loop {
        let f = c.recv().expect("a Close");
        if !matches!(f.body, FrameBody::Ping(_)) {
            break f;
        }
    };
    assert!(
        matches!(frame.body, FrameBody::Close(ref close) if close.reason == Reason::IDLE_TIMEOUT),
        "{frame:?}"
    );
    assert!(matches!(c.recv(), Err(RecvError::Closed)));
}

#[test]
fn the_server_sends_heartbeats_and_a_client_that_answers_stays() {
    let server = TestServer::start(ServerConfig {
        idle_timeout_ms: 1_000,
        heartbeat_interval_ms: 100,
        ..ServerConfig::default()
    });
    let mut c = connect(&server);
    c.handshake(HelloOptions::new()).unwrap();
    // Answer fifteen heartbeats (1.5 s, past the 1 s idle timeout): the session lives on.
    for _ in 0..15 {
        let frame = c.recv().expect("a heartbeat");
        let FrameBody::Ping(p) = frame.body else {
            panic!("expected Ping, got {frame:?}");
        };
        c.send(&framewire_protocol::wire::Frame::new(Pong {
            timestamp_us: p.timestamp_us,
        }))
        .unwrap();
    }
}
