//! Slowloris: 10,000 connections that trickle a few bytes and never finish a Hello are closed by
//! the first-frame deadline, while a client that does handshake is served all along. The real
//! binary runs in a process of its own (10,000 sockets each side fit the descriptor limits).

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Instant;

use bytes::Bytes;
use framewire_client::FrameStream;
use framewire_protocol::wire::{Frame, FrameBody, HelloOptions, Reason, Request, Text};

use common::{DEADLINE, ServerProcess};

const SLOW: usize = 10_000;

fn slow_connection(i: usize, server: SocketAddr) -> TcpStream {
    let from = IpAddr::from([127, 0, 0, 2 + u8::try_from(i / 1000).unwrap_or(0)]);
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    socket.bind(&SocketAddr::new(from, 0).into()).expect("bind");
    socket.connect(&server.into()).expect("connect");
    let mut s: TcpStream = socket.into();
    // Two bytes of a length prefix: the frame never completes.
    s.write_all(&[0x00, 0x00]).expect("trickle");
    s
}

#[test]
fn ten_thousand_trickling_connections_are_cut_off_while_others_are_served() {
    let mut server = ServerProcess::start_with(
        None,
        &[
            "--first-frame-deadline-ms",
            "2000",
            "--max-connections",
            "20000",
            "--max-connections-per-address",
            "2000",
            "--threads",
            "2",
        ],
    );
    let addr = server.addr;
    server.discard_log();
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW).map(|i| slow_connection(i, addr)).collect();
    let opened = started.elapsed();
    // A real client is served while the slow ones hang on.
    let mut good = FrameStream::connect(addr, DEADLINE).expect("connect");
    let welcome = good.handshake(HelloOptions::new()).expect("welcome");
    assert!(matches!(welcome.body, FrameBody::Welcome(_)), "{welcome:?}");
    for id in 1..=5 {
        good.send(&Frame::new(Request {
            id,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }))
        .expect("send");
        let answer = good.recv().expect("an answer");
        assert!(
            matches!(&answer.body, FrameBody::Response(r) if r.id == id),
            "{answer:?}"
        );
    }
    // Each slow connection gets a Close (HANDSHAKE_TIMEOUT) and is shut.
    let close_len = 4 + 1 + 3 + 2;
    let mut cut = 0;
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut head = vec![0u8; close_len];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("slow connection {i} never closed: {e}"));
        assert_eq!(head[5], 0x08, "a Close frame");
        let reason = Reason(u16::from_be_bytes([head[8], head[9]]));
        assert_eq!(reason, Reason::HANDSHAKE_TIMEOUT, "connection {i}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        cut += 1;
    }
    assert_eq!(cut, SLOW);
    assert!(
        started.elapsed() < opened + DEADLINE,
        "cut off within the deadline's reach"
    );
    // And the good client is still served.
    good.send(&Frame::new(Request {
        id: 9,
        timeout_ms: 0,
        target: Text::from("sys.ping"),
        payload: Bytes::new(),
    }))
    .expect("send");
    assert!(matches!(good.recv().expect("an answer").body, FrameBody::Response(r) if r.id == 9));
}
