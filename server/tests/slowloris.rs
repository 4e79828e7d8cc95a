//! Slowloris: 10,000 connections that trickle a few bytes and never finish a Hello (or an HTTP
//! request head) are closed by the first-frame (or head) deadline, while a client that does
//! finish is served all along. The real binary runs in a process of its own (10,000 sockets each
//! side fit the descriptor limits).

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Instant;

use bytes::Bytes;
use framewire_client::FrameStream;
use framewire_protocol::wire::{Frame, FrameBody, HelloOptions, Reason, Request, Text};

use common::{DEADLINE, ServerProcess, rss};

const SLOW: usize = 10_000;

/// The tests take turns: 10,000 sockets each, and the process may hold 20,000.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn slow_connection(i: usize, server: SocketAddr) -> TcpStream {
    let mut s = connect_from(i, server);
    // Two bytes of a length prefix: the frame never completes.
    s.write_all(&[0x00, 0x00]).expect("trickle");
    s
}

/// A connection from one of 127.0.0.2, .3, ... (1,000 from each).
fn connect_from(i: usize, server: SocketAddr) -> TcpStream {
    let from = IpAddr::from([127, 0, 0, 2 + u8::try_from(i / 1000).unwrap_or(0)]);
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    socket.bind(&SocketAddr::new(from, 0).into()).expect("bind");
    socket.connect(&server.into()).expect("connect");
    socket.into()
}

#[test]
fn ten_thousand_trickling_connections_are_cut_off_while_others_are_served() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// The same at the HTTP listener: 10,000 request heads that never finish each get `408` and a
/// closed connection by the head deadline, the server's memory grows by less than 2 KiB for each,
/// and a metrics request is answered all along.
#[test]
fn ten_thousand_unfinished_http_heads_get_408_by_the_deadline() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut server = ServerProcess::start_with(
        None,
        &[
            "--http-head-timeout-ms",
            "2000",
            "--max-connections",
            "20000",
            "--max-connections-per-address",
            "2000",
            "--threads",
            "2",
        ],
    );
    let http = server.http_addr.expect("an HTTP listener");
    server.discard_log();
    let before = rss(server.pid());
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let mut s = connect_from(i, http);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Slow: ")
                .expect("trickle");
            s
        })
        .collect();
    let opened = started.elapsed();
    let mut good = TcpStream::connect(http).expect("connect");
    good.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("ask");
    let mut answer = String::new();
    good.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let held = rss(server.pid()).saturating_sub(before);
    assert!(
        held < 2048 * SLOW as u64,
        "{held} bytes for {SLOW} unfinished heads"
    );
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("slow connection {i} never closed: {e}"));
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "connection {i}: {answer}"
        );
    }
    assert!(
        started.elapsed() < opened + DEADLINE,
        "cut off within the deadline's reach"
    );
    eprintln!(
        "{SLOW} unfinished heads: {} bytes held each, all answered 408 within {:?}",
        held / SLOW as u64,
        started.elapsed()
    );
}
