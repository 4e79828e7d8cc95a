//! Out of file descriptors, the server pauses accepting and retries: connections waiting in the
//! backlog are served as soon as descriptors free up, without waiting for a new connection to
//! arrive. The real binary runs under a low `ulimit -n`.

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::time::Duration;

use framewire_client::{FrameStream, RecvError};
use framewire_protocol::wire::{FrameBody, HelloOptions};

use common::{DEADLINE, ServerProcess};

#[test]
fn a_backlogged_connection_is_served_once_descriptors_free_up() {
    let process = ServerProcess::start(Some(40));
    let addr = process.addr;
    // Connect until one cannot be accepted: it waits in the kernel's backlog.
    let mut served = Vec::new();
    let waiting = loop {
        assert!(served.len() < 100, "the descriptor limit never bit");
        let mut c = FrameStream::connect(addr, Duration::from_millis(500)).expect("connect");
        match c.handshake(HelloOptions::new()) {
            Ok(frame) if matches!(frame.body, FrameBody::Welcome(_)) => served.push(c),
            Err(RecvError::TimedOut) => break c,
            other => panic!("unexpected answer: {other:?}"),
        }
    };
    assert!(
        served.len() > 10,
        "only {} connections before the limit",
        served.len()
    );
    let mut warned = false;
    while let Some(line) = process.next_line(Duration::from_millis(500)) {
        warned |= line.contains("out of file descriptors");
    }
    assert!(warned, "the server logs the condition");
    // Free some descriptors; the waiting connection's Hello is already in its socket.
    served.truncate(served.len() - 5);
    let mut waiting = waiting;
    let started = std::time::Instant::now();
    let answer = loop {
        match waiting.recv() {
            Ok(frame) => break frame,
            Err(RecvError::TimedOut) if started.elapsed() < DEADLINE => {}
            Err(e) => panic!("never served: {e}"),
        }
    };
    assert!(matches!(answer.body, FrameBody::Welcome(_)), "{answer:?}");
}
