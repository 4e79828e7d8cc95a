//! Hostile UDP through a real server: the amplification bound over real sockets, a fragment bomb
//! kept within the session's bound, and silent peers found and freed at the idle timeout.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::samples::{datagram, hello};
use framewire_protocol::session::Event;
use framewire_protocol::wire::{Fragment, Frame, FrameBody, Hello, HelloOptions, Request, Text};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestClient, TestServer, UdpClient, Via};

/// From 60 addresses, Hellos of every size (short ones unpadded), Hellos echoing forged cookies,
/// datagrams for sessions that do not exist, and garbage: no address ever gets back more bytes
/// than it sent.
#[test]
fn no_unvalidated_address_gets_more_bytes_than_it_sent() {
    let server = TestServer::start(ServerConfig::default());
    let to = server.udp_addr();
    let sockets: Vec<UdpSocket> = (0..60u8)
        .map(|i| {
            let s = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 2 + i], 0))).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut sent = vec![0usize; sockets.len()];
    let mut received = vec![0usize; sockets.len()];
    for round in 0..50u64 {
        for (i, s) in sockets.iter().enumerate() {
            let d = match (round + i as u64) % 5 {
                0 => datagram(0, 0, &[hello(round, 1200)], 0),
                1 => datagram(0, 0, &[hello(round, 10)], 0),
                2 => {
                    let forged = HelloOptions::builder()
                        .cookie(&[0xAB; 24])
                        .padding(1200)
                        .build()
                        .unwrap();
                    let f = Frame::new(Hello {
                        options: forged,
                        ..match hello(round, 0).body {
                            FrameBody::Hello(h) => h,
                            _ => unreachable!(),
                        }
                    });
                    datagram(0, 0, &[f], 0)
                }
                3 => datagram(0xDEAD_BEEF + round, 5, &[hello(1, 0)], 0),
                _ => vec![0x46, 0x57, 0x01, 0x00, 9, 9, 9, 9, 9, 9, 9, 9],
            };
            sent[i] += s.send_to(&d, to).unwrap();
        }
        // Collect what came back so far.
        for (i, s) in sockets.iter().enumerate() {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                received[i] += n;
            }
        }
    }
    // A last look, after the server has surely answered everything it would.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        for (i, s) in sockets.iter().enumerate() {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                received[i] += n;
            }
        }
        std::thread::yield_now();
    }
    let ratio = received
        .iter()
        .zip(&sent)
        .map(|(&r, &s)| f64::from(u32::try_from(r).unwrap()) / f64::from(u32::try_from(s).unwrap()))
        .fold(0.0, f64::max);
    for i in 0..sockets.len() {
        assert!(
            received[i] <= sent[i],
            "address {i}: {} back for {} sent",
            received[i],
            sent[i]
        );
    }
    assert!(
        received.iter().sum::<usize>() > 0,
        "the valid Hellos were answered"
    );
    eprintln!(
        "amplification: the highest bytes-back / bytes-sent ratio of an address was {ratio:.3}"
    );
}

fn own_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap()
        * 1024
}

/// A client opens a session, then sends 8 MB of first fragments of messages that declare the most
/// pieces and never complete, under its own connection id from its own address: the server (in
/// this process) grows by no more than the session's reassembly bound, and serves others
/// throughout. (The protocol's own tests check the bound and the expiry exactly.)
#[test]
fn a_fragment_bomb_stays_within_the_bound() {
    // One worker, so one UDP socket takes both clients' datagrams in the order they arrive: an
    // answer to `other` then means every fragment sent before it has been read.
    let server = TestServer::start(ServerConfig {
        threads: 1,
        ..ServerConfig::default()
    });
    // Version 1, whose datagrams the bomb writes by hand.
    let mut c = UdpClient::connect_configured(
        [127, 0, 0, 1].into(),
        server.udp_addr(),
        framewire_protocol::session::SessionConfig {
            seed: 5,
            compact_datagrams: false,
            ..Default::default()
        },
    );
    assert!(c.run_until(DEADLINE, |e| {
        e.iter().any(|e| matches!(e, Event::Connected { .. }))
    }));
    let id = c.session.connection_id();
    let mut other = TestClient::connect(&server, Via::Udp);
    let before = own_rss();
    for n in 0..8_000u32 {
        let piece = Frame::new(Fragment {
            message_id: n,
            index: 0,
            count: 1024,
            data: Bytes::from(vec![0x42; 1000]),
        });
        // Packet numbers above the session's own, so the server takes each as new.
        let d = datagram(id, 1_000 + n, &[piece], 0);
        let _ = c.socket().send_to(&d, server.udp_addr());
        // Paced: a socket's receive buffer holds only some tens of these (the kernel counts
        // ~2 KiB per datagram), and a fragment the kernel drops never reaches the bound.
        if n % 40 == 0 {
            other.call_ok(
                n + 1,
                Frame::new(Request {
                    id: n + 1,
                    timeout_ms: 0,
                    target: Text::from("sys.ping"),
                    payload: Bytes::new(),
                }),
            );
        }
    }
    other.call_ok(
        99_999,
        Frame::new(Request {
            id: 99_999,
            timeout_ms: 0,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }),
    );
    let grown = own_rss().saturating_sub(before);
    // The fragments past the bound were refused, and counted.
    let refused = server.counters().udp_refused;
    assert!(refused > 7_000, "{refused} of 8,000 refused");
    // The bound is 1 MiB per session (max_reassembly_bytes); allow as much again for the rest.
    assert!(grown < 2 << 20, "grew {grown} B for 8 MB of fragments");
}

/// Peers that go silent (a TCP client that stops answering, a UDP client that stops sending) are
/// found at the idle timeout and their sessions freed: sys.stats counts them before and after.
#[test]
fn silent_peers_are_found_at_the_idle_timeout_and_freed() {
    let config = ServerConfig {
        idle_timeout_ms: 500,
        heartbeat_interval_ms: 100,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut watcher = TestClient::connect(&server, Via::Tcp);
    let stats = |c: &mut TestClient, id: u32| -> String {
        c.send(Frame::new(Request {
            id,
            timeout_ms: 0,
            target: Text::from("sys.stats"),
            payload: Bytes::new(),
        }));
        String::from_utf8(c.until_response(id).1.payload.to_vec()).unwrap()
    };
    // Silent from the start: a raw TCP Hello and nothing more (it never reads, never answers a
    // Ping), and a UDP session whose client stops driving it.
    let mut silent_tcp = framewire_client::FrameStream::connect(server.addr(), DEADLINE).unwrap();
    silent_tcp.handshake(HelloOptions::new()).unwrap();
    let silent_udp = TestClient::connect(&server, Via::Udp);
    let before = stats(&mut watcher, 1);
    assert!(before.contains("\"tcp\":{\"sessions\":2,"), "{before}");
    assert!(before.contains("\"udp\":{\"sessions\":1,"), "{before}");
    let started = Instant::now();
    loop {
        let now = stats(&mut watcher, 2);
        if now.contains("\"tcp\":{\"sessions\":1,") && now.contains("\"udp\":{\"sessions\":0,") {
            assert!(now.contains("\"idle_timeout\":2"), "{now}");
            break;
        }
        assert!(started.elapsed() < DEADLINE, "never freed: {now}");
    }
    drop((silent_tcp, silent_udp));
}
