//! The server binary shuts down gracefully on SIGTERM and SIGINT: every client gets a Close
//! (`GOING_AWAY`) and the process exits 0. Every wait has a deadline; nothing sleeps.

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
