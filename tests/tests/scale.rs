//! One server serving 5,000 concurrent TCP connections, and 5,000 UDP sessions, each of which
//! completes its handshake and gets an answer while all the others stay open. (Its own test binary:
//! the TCP half needs 10,000 file descriptors, half the per-process limit here.)

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{Event, Instant, Session, SessionConfig};
use framewire_protocol::wire::{Data, Frame, FrameBody, HelloOptions, peek_connection_id};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, FrameStream, TestServer};

const CLIENTS: usize = 5_000;

#[test]
fn five_thousand_tcp_connections_at_once() {
    let server = TestServer::start(ServerConfig::default());
    let mut clients: Vec<FrameStream> = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        // 500 per source address, over 127.0.0.2 ..= .11: under the per-address limit, and easy on
        // ephemeral ports.
        let from = std::net::IpAddr::from([127, 0, 0, 2 + (i / 500) as u8]);
        let mut c = FrameStream::connect_from(from, server.addr(), DEADLINE).expect("connect");
        let answer = c.handshake(HelloOptions::new()).expect("an answer");
        assert!(
            matches!(answer.body, FrameBody::Welcome(_)),
            "client {i}: {answer:?}"
        );
        clients.push(c);
    }
    // Every one of them is still served.
    for (i, c) in clients.iter_mut().enumerate() {
        let payload = Bytes::from((i as u32).to_be_bytes().to_vec());
        c.send(&Frame::new(Data {
            payload: payload.clone(),
        }))
        .unwrap();
        let echo = c.recv().expect("an echo");
        assert!(
            matches!(echo.body, FrameBody::Data(d) if d.payload == payload),
            "client {i}"
        );
    }
}

#[test]
fn five_thousand_udp_sessions_at_once() {
    // One client socket carries every session (the server tells them apart by connection id), so
    // one address makes 10,000 handshake datagrams at once: far past the default rate.
    let server = TestServer::start(ServerConfig {
        max_handshakes_per_address_per_sec: 1_000_000,
        ..ServerConfig::default()
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let epoch = std::time::Instant::now();
    let now = || Instant::from_micros(u64::try_from(epoch.elapsed().as_micros()).unwrap());
    let mut out = vec![0u8; 2048];
    let mut inbox = vec![0u8; 65_536];
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    // Handshakes one at a time (replies under connection id 0 are told apart by arriving in turn).
    for i in 0..CLIENTS {
        let mut s = Session::connect(
            SessionConfig::default(),
            server.udp_addr(),
            i as u64 + 1,
            now(),
        );
        loop {
            assert!(epoch.elapsed() < DEADLINE * 6, "handshake {i} stuck");
            let t = now();
            if s.poll_timeout().is_some_and(|d| d <= t) {
                s.handle_timeout(t);
            }
            while let Some(tx) = s.poll_transmit(t, &mut out) {
                socket.send_to(&out[..tx.len], tx.destination).unwrap();
            }
            if let Ok((n, from)) = socket.recv_from(&mut inbox) {
                s.handle_datagram(now(), from, Bytes::copy_from_slice(&inbox[..n]));
            }
            if let Some(Event::Connected { connection_id, .. }) = s.poll_event() {
                sessions.insert(connection_id, s);
                break;
            }
        }
    }
    assert_eq!(sessions.len(), CLIENTS, "every session got its own id");
    // All at once: each sends a message; every echo comes back to its own session.
    for (id, s) in &mut sessions {
        s.send(Frame::new(Data {
            payload: Bytes::from(id.to_be_bytes().to_vec()),
        }))
        .unwrap();
    }
    let mut echoed = 0;
    let mut got: std::collections::HashSet<u64> = std::collections::HashSet::new();
    while echoed < CLIENTS {
        if epoch.elapsed() > DEADLINE * 2 {
            for (id, s) in &sessions {
                if !got.contains(id) {
                    eprintln!("missing {id}: closed {} {:?}", s.is_closed(), s.stats());
                    break;
                }
            }
        }
        assert!(epoch.elapsed() < DEADLINE * 2, "only {echoed} echoes");
        let t = now();
        for s in sessions.values_mut() {
            if s.poll_timeout().is_some_and(|d| d <= t) {
                s.handle_timeout(t);
            }
            while let Some(tx) = s.poll_transmit(t, &mut out) {
                socket.send_to(&out[..tx.len], tx.destination).unwrap();
            }
        }
        // A bounded batch per turn, so that no session's timers starve while datagrams keep
        // coming (a starved session falls silent and the server rightly ends it at its idle
        // timeout).
        for _ in 0..256 {
            let Ok((n, from)) = socket.recv_from(&mut inbox) else {
                break;
            };
            let data = Bytes::copy_from_slice(&inbox[..n]);
            // Either form (the sessions agreed compact datagrams): routed by connection id.
            let Ok(id) = peek_connection_id(&data) else {
                continue;
            };
            if let Some(s) = sessions.get_mut(&id) {
                s.handle_datagram(now(), from, data);
                while let Some(e) = s.poll_event() {
                    if let Event::Frame(Frame {
                        body: FrameBody::Data(d),
                        ..
                    }) = e
                    {
                        assert_eq!(&d.payload[..], &s.connection_id().to_be_bytes());
                        got.insert(s.connection_id());
                        echoed += 1;
                    }
                }
            }
        }
    }
}
