//! The server binary shuts down gracefully on SIGTERM and SIGINT: every client gets a Close
//! (`GOING_AWAY`) and the process exits 0. Every wait has a deadline; nothing sleeps.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use framewire_client::{FrameStream, RecvError};
use framewire_protocol::wire::{FrameBody, HelloOptions, Reason};

const DEADLINE: Duration = Duration::from_secs(20);

fn shuts_down_on(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_framewire-server"))
        .args(["--tcp", "127.0.0.1:0", "--udp", "off"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    // The log says where it listens; read it on a thread so the wait can have a deadline.
    let stderr = child.stderr.take().unwrap();
    let (lines, from_log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = loop {
        let line = from_log
            .recv_timeout(DEADLINE)
            .expect("the server logs where it listens");
        if let Some(at) = line.split("listening for TCP on ").nth(1) {
            break at.trim().parse().expect("an address");
        }
    };
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
        .args([signal, &child.id().to_string()])
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
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = exited
        .recv_timeout(DEADLINE)
        .expect("the server exits")
        .expect("wait");
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
