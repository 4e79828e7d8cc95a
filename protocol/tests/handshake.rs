//! The UDP handshake between a connecting `Session` and a server `Endpoint`: it completes through
//! loss, keeps no state for spoofed or replayed cookies, and never replies with more bytes than an
//! unvalidated address sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{
    CookieError, DropReason, Endpoint, EndpointConfig, Event, Instant, Outcome, Session,
    SessionConfig,
};
use framewire_protocol::sim::Rng;
use framewire_protocol::wire::{
    ChannelKind, Data, Datagram, Frame, FrameBody, Hello, HelloOptions, MIN_HELLO_DATAGRAM, Reason,
};

const SERVER: &str = "10.0.0.100:7400";
const MS: Duration = Duration::from_millis(1);

fn server_addr() -> SocketAddr {
    SERVER.parse().unwrap()
}

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig::default(), [0x11; 16], [0x22; 16])
}

/// A raw UDP Hello of `size` bytes (padded) with an optional cookie.
fn hello_datagram(nonce: u64, cookie: Option<&[u8]>, size: usize, versions: (u8, u8)) -> Vec<u8> {
    let mut opts = HelloOptions::builder();
    if let Some(c) = cookie {
        opts = opts.cookie(c);
    }
    let base = |opts: HelloOptions| {
        Frame::new(Hello {
            min_version: versions.0,
            max_version: versions.1,
            idle_timeout_ms: 0,
            max_frame_len: 65_536,
            nonce,
            options: opts,
        })
    };
    let unpadded = 16 + 2 + 4 + base(HelloOptions::new()).encoded_len() + opts.len();
    if size > unpadded + 3 {
        opts = opts.padding(size - unpadded - 3);
    }
    let frame = base(opts.build().unwrap());
    framewire_protocol::samples::datagram(0, 0, &[frame], 0)
}

fn first_frame(datagram: &[u8]) -> FrameBody {
    let d = Datagram::parse(Bytes::copy_from_slice(datagram)).unwrap();
    Frame::parse(d.frames().next().unwrap()).unwrap().body
}

/// A client and a server endpoint joined by a link that drops the datagrams whose index (in
/// each direction, counted from 0) is listed.
struct Handshake {
    client: Session,
    client_addr: SocketAddr,
    ep: Endpoint,
    sessions: HashMap<u64, Session>,
    now: Instant,
    up: usize,
    down: usize,
}

impl Handshake {
    fn new(client_config: SessionConfig) -> Self {
        Self {
            client: Session::connect(client_config, server_addr(), 0xfeed, Instant::ZERO),
            client_addr: "10.0.0.1:5555".parse().unwrap(),
            ep: endpoint(),
            sessions: HashMap::new(),
            now: Instant::ZERO,
            up: 0,
            down: 0,
        }
    }

    /// Runs until the client is established or closed, or 1000 turns pass.
    fn run(&mut self, drop_to_server: &[usize], drop_to_client: &[usize]) {
        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        for _ in 0..1000 {
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                self.up += 1;
                if drop_to_server.contains(&(self.up - 1)) {
                    continue;
                }
                let reply =
                    match self
                        .ep
                        .handle(self.now, self.client_addr, &buf[..t.len], &mut out)
                    {
                        Outcome::Reply(n) => Some(n),
                        Outcome::Accept { session, reply } => {
                            self.sessions.insert(session.connection_id(), *session);
                            Some(reply)
                        }
                        Outcome::Route(cid) => {
                            if let Some(s) = self.sessions.get_mut(&cid) {
                                s.handle_datagram(
                                    self.now,
                                    self.client_addr,
                                    Bytes::copy_from_slice(&buf[..t.len]),
                                );
                            }
                            None
                        }
                        Outcome::Discover { .. } | Outcome::Drop(_) => None,
                    };
                if let Some(n) = reply {
                    self.down += 1;
                    if !drop_to_client.contains(&(self.down - 1)) {
                        self.client.handle_datagram(
                            self.now,
                            server_addr(),
                            Bytes::copy_from_slice(&out[..n]),
                        );
                    }
                }
            }
            if self.client.is_established() || self.client.is_closed() {
                return;
            }
            let next = self
                .client
                .poll_timeout()
                .expect("a connecting client has a timer");
            self.now = next.max(self.now);
            self.client.handle_timeout(self.now);
        }
        panic!("handshake did not settle");
    }
}

#[test]
fn the_handshake_completes_and_data_flows_both_ways() {
    let mut h = Handshake::new(SessionConfig::default());
    // Queued before the handshake completes: sent after it.
    h.client
        .send(Frame::new(Data {
            payload: Bytes::from_static(b"early"),
        }))
        .unwrap();
    h.run(&[], &[]);
    let cid = match h.client.poll_event() {
        Some(Event::Connected { connection_id, .. }) => connection_id,
        other => panic!("expected Connected, got {other:?}"),
    };
    assert_ne!(cid, 0);
    // Up: Hello, Hello with the cookie, then at once the message queued while connecting and its
    // redundant copy (it is a lone small message). Down: Challenge, Welcome.
    assert_eq!((h.up, h.down), (4, 2));
    assert_eq!(h.ep.stats().accepted, 1);
    let server = h
        .sessions
        .get_mut(&cid)
        .expect("the server session under the same id");
    assert!(matches!(
        server.poll_event(),
        Some(Event::Frame(Frame { body: FrameBody::Data(d), .. })) if d.payload == "early"
    ));
    let mut buf = vec![0u8; 2048];
    // And the server can answer.
    server
        .send(Frame::new(Data {
            payload: Bytes::from_static(b"hi"),
        }))
        .unwrap();
    let t = server.poll_transmit(h.now, &mut buf).unwrap();
    assert_eq!(t.destination, h.client_addr);
    h.client
        .handle_datagram(h.now, server_addr(), Bytes::copy_from_slice(&buf[..t.len]));
    assert!(matches!(h.client.poll_event(), Some(Event::Frame(_))));
}

#[test]
fn lost_challenges_and_welcomes_are_recovered_without_a_second_session() {
    let mut h = Handshake::new(SessionConfig::default());
    // Lose the first Challenge and the first Welcome.
    h.run(&[], &[0, 2]);
    assert!(h.client.is_established());
    let stats = h.ep.stats();
    assert_eq!(stats.accepted, 1, "one session, whatever was lost");
    assert!(stats.welcomes_repeated >= 1);
    assert_eq!(h.sessions.len(), 1);
    // Hellos were resent with backoff, not in a burst.
    assert!(
        h.now >= Instant::ZERO + 300 * MS,
        "resent too early: {:?}",
        h.now
    );
}

#[test]
fn a_client_gives_up_at_the_handshake_timeout() {
    let config = SessionConfig {
        handshake_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    };
    let mut client = Session::connect(config, server_addr(), 1, Instant::ZERO);
    let mut buf = vec![0u8; 2048];
    let mut hellos = 0;
    loop {
        while client.poll_transmit(Instant::ZERO, &mut buf).is_some() {
            hellos += 1;
        }
        let t = client.poll_timeout().unwrap();
        if t >= Instant::from_millis(5000) {
            break;
        }
        client.handle_timeout(t);
        while let Some(tx) = client.poll_transmit(t, &mut buf) {
            assert!(tx.len >= MIN_HELLO_DATAGRAM, "every Hello is padded");
            hellos += 1;
        }
        assert!(client.poll_event().is_none());
    }
    assert!(hellos >= 3, "{hellos} Hellos");
    client.handle_timeout(Instant::from_millis(4999));
    assert!(client.poll_event().is_none(), "gave up early");
    client.handle_timeout(Instant::from_millis(5000));
    assert!(matches!(
        client.poll_event(),
        Some(Event::Closed {
            reason: Reason::HANDSHAKE_TIMEOUT,
            ..
        })
    ));
}

#[test]
fn forged_and_misbound_cookies_are_dropped_and_leave_no_state() {
    let mut ep = endpoint();
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
    let mut out = vec![0u8; 2048];
    let now = Instant::from_millis(1000);
    // A real cookie, issued to `a`.
    let n = match ep.handle(now, a, &hello_datagram(7, None, 1200, (1, 1)), &mut out) {
        Outcome::Reply(n) => n,
        other => panic!("{other:?}"),
    };
    let FrameBody::Challenge(ch) = first_frame(&out[..n]) else {
        panic!("challenge")
    };
    // Forged: random bytes in the cookie's shape.
    let mut forged = ch.cookie.to_vec();
    forged[12] ^= 0x55;
    let o = ep.handle(
        now,
        a,
        &hello_datagram(7, Some(&forged), 1200, (1, 1)),
        &mut out,
    );
    assert!(
        matches!(o, Outcome::Drop(DropReason::BadCookie(CookieError::Forged))),
        "{o:?}"
    );
    // Replayed from another address.
    let o = ep.handle(
        now,
        b,
        &hello_datagram(7, Some(&ch.cookie), 1200, (1, 1)),
        &mut out,
    );
    assert!(
        matches!(o, Outcome::Drop(DropReason::BadCookie(CookieError::Forged))),
        "{o:?}"
    );
    // Replayed with another nonce.
    let o = ep.handle(
        now,
        a,
        &hello_datagram(8, Some(&ch.cookie), 1200, (1, 1)),
        &mut out,
    );
    assert!(
        matches!(o, Outcome::Drop(DropReason::BadCookie(CookieError::Forged))),
        "{o:?}"
    );
    // Replayed after its lifetime.
    let later = now + Duration::from_secs(10);
    let o = ep.handle(
        later,
        a,
        &hello_datagram(7, Some(&ch.cookie), 1200, (1, 1)),
        &mut out,
    );
    assert!(
        matches!(
            o,
            Outcome::Drop(DropReason::BadCookie(CookieError::Expired))
        ),
        "{o:?}"
    );
    assert_eq!(ep.stats().accepted, 0, "no session for any of them");
    assert_eq!(ep.stats().bad_cookies, 4);
    // The genuine echo still works, once; a replay of it gets the same Welcome, not a new session.
    let Outcome::Accept { session, reply } = ep.handle(
        now,
        a,
        &hello_datagram(7, Some(&ch.cookie), 1200, (1, 1)),
        &mut out,
    ) else {
        panic!("genuine echo accepted");
    };
    let FrameBody::Welcome(w1) = first_frame(&out[..reply]) else {
        panic!("welcome")
    };
    assert_eq!(w1.connection_id, session.connection_id());
    let Outcome::Reply(n) = ep.handle(
        now,
        a,
        &hello_datagram(7, Some(&ch.cookie), 1200, (1, 1)),
        &mut out,
    ) else {
        panic!("a replay repeats the Welcome");
    };
    let FrameBody::Welcome(w2) = first_frame(&out[..n]) else {
        panic!("welcome")
    };
    assert_eq!(w2.connection_id, w1.connection_id);
    assert_eq!(ep.stats().accepted, 1);
}

#[test]
fn short_hellos_get_no_answer_and_other_versions_a_small_reject() {
    let mut ep = endpoint();
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let mut out = vec![0u8; 2048];
    let short = hello_datagram(1, None, 600, (1, 1));
    assert!(short.len() < MIN_HELLO_DATAGRAM);
    assert!(matches!(
        ep.handle(Instant::ZERO, a, &short, &mut out),
        Outcome::Drop(DropReason::ShortHello)
    ));
    // Version 5 is no one's; version 4 only a sealed session's, and this Hello has no keys.
    for (nonce, versions) in [(1, (5, 6)), (2, (4, 5))] {
        let hello = hello_datagram(nonce, None, 1200, versions);
        let Outcome::Reply(n) = ep.handle(Instant::ZERO, a, &hello, &mut out) else {
            panic!("a Reject for {versions:?}");
        };
        assert!(n < hello.len());
        let FrameBody::Reject(r) = first_frame(&out[..n]) else {
            panic!("reject")
        };
        assert_eq!(r.reason, Reason::UNSUPPORTED_VERSION);
        assert_eq!(
            (r.min_version, r.max_version),
            (1, 4),
            "versions 1 to 4 over UDP"
        );
    }
}

#[test]
fn the_amplification_bound_holds_byte_for_byte_under_a_spoofed_flood() {
    let mut ep = endpoint();
    let mut rng = Rng::new(2024);
    let mut received: HashMap<SocketAddr, usize> = HashMap::new();
    let mut sent: HashMap<SocketAddr, usize> = HashMap::new();
    let mut out = vec![0u8; 2048];
    for i in 0..5000u32 {
        let addr: SocketAddr = format!(
            "10.{}.{}.{}:{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            1000 + i % 7
        )
        .parse()
        .unwrap();
        let now = Instant::from_millis(u64::from(i));
        let datagram = match rng.next_u64() % 6 {
            0 => hello_datagram(
                rng.next_u64(),
                None,
                1200 + (rng.next_u64() % 200) as usize,
                (1, 1),
            ),
            1 => hello_datagram(
                rng.next_u64(),
                None,
                100 + (rng.next_u64() % 1000) as usize,
                (1, 1),
            ),
            2 => {
                let cookie: Vec<u8> = (0..17).map(|_| rng.next_u64() as u8).collect();
                hello_datagram(rng.next_u64(), Some(&cookie), 1200, (1, 1))
            }
            3 => hello_datagram(rng.next_u64(), None, 1200, (0, 0)),
            5 => framewire_protocol::discovery::request(
                rng.next_u64(),
                (rng.next_u64() % 1300) as usize,
            ),
            _ => (0..(rng.next_u64() % 1400) as usize)
                .map(|_| rng.next_u64() as u8)
                .collect(),
        };
        *received.entry(addr).or_default() += datagram.len();
        match ep.handle(now, addr, &datagram, &mut out) {
            Outcome::Reply(n) | Outcome::Accept { reply: n, .. } => {
                *sent.entry(addr).or_default() += n;
            }
            // A Discover's answer is the driver's to write, as a server does.
            Outcome::Discover { nonce } => {
                let card = framewire_protocol::samples::here_sample().card;
                if let Some(n) =
                    framewire_protocol::discovery::answer(nonce, &card, datagram.len(), &mut out)
                {
                    *sent.entry(addr).or_default() += n;
                }
            }
            // Unknown connection ids are the driver's to drop; it never answers them.
            Outcome::Route(_) | Outcome::Drop(_) => {}
        }
    }
    assert!(!sent.is_empty(), "some Hellos were answered");
    for (addr, out_bytes) in &sent {
        let in_bytes = received[addr];
        assert!(
            *out_bytes < in_bytes,
            "{addr}: sent {out_bytes} for {in_bytes} received"
        );
    }
    let total_in: usize = received.values().sum();
    let total_out: usize = sent.values().sum();
    assert!(
        total_out * 10 < total_in,
        "replies {total_out} vs {total_in} received"
    );
    assert_eq!(ep.stats().accepted, 0);
}

#[test]
fn the_server_session_uses_the_channel_kinds_the_client_asked_for() {
    let config = SessionConfig {
        channels: vec![
            ChannelKind::ReliableOrdered,
            ChannelKind::UnreliableSequenced,
        ],
        ..SessionConfig::default()
    };
    let mut h = Handshake::new(config);
    h.run(&[], &[]);
    let server = h.sessions.values_mut().next().unwrap();
    // Channel 1 is unreliable-sequenced on both sides: a stale message is dropped by the server.
    let mut buf = vec![0u8; 2048];
    let mut datagrams = Vec::new();
    for tag in [1u8, 2] {
        h.client
            .send(
                Frame::new(Data {
                    payload: Bytes::from(vec![tag]),
                })
                .on_channel(1),
            )
            .unwrap();
        let t = h.client.poll_transmit(h.now, &mut buf).unwrap();
        datagrams.push(buf[..t.len].to_vec());
    }
    let _ = h.client.poll_event();
    for d in datagrams.iter().rev() {
        server.handle_datagram(h.now, h.client_addr, Bytes::copy_from_slice(d));
    }
    let got: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(server.stats().stale_dropped, 1);
}

/// The server's admission decides the Welcome's resume terms, once: a repeated Hello gets the same
/// Welcome without asking again.
#[test]
fn admission_terms_reach_the_welcome_and_its_repeats() {
    let mut ep = endpoint();
    let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let mut out = vec![0u8; 2048];
    let now = Instant::from_millis(1000);
    let n = match ep.handle(now, a, &hello_datagram(7, None, 1200, (1, 1)), &mut out) {
        Outcome::Reply(n) => n,
        other => panic!("{other:?}"),
    };
    let FrameBody::Challenge(ch) = first_frame(&out[..n]) else {
        panic!("challenge")
    };
    let echo = hello_datagram(7, Some(&ch.cookie), 1200, (1, 1));
    let mut asked = 0;
    let mut admit = |_: &Hello, id: u64| {
        asked += 1;
        assert_ne!(id, 0);
        Ok(framewire_protocol::session::Admission {
            session_token: Bytes::from_static(b"tok"),
            resumed: true,
            missed: 2,
            seal: None,
        })
    };
    let mut welcomes = Vec::new();
    for _ in 0..2 {
        let n = match ep.handle_with(now, a, &echo, &mut out, &mut admit) {
            Outcome::Accept { reply, .. } | Outcome::Reply(reply) => reply,
            other => panic!("{other:?}"),
        };
        let FrameBody::Welcome(w) = first_frame(&out[..n]) else {
            panic!("welcome")
        };
        welcomes.push(w);
    }
    assert_eq!(asked, 1);
    assert_eq!(welcomes[0], welcomes[1]);
    assert!(welcomes[0].resumed);
    assert_eq!(welcomes[0].missed, 2);
    assert_eq!(&welcomes[0].session_token[..], b"tok");
}

/// An endpoint with lanes gives out only connection ids of its lane (a server with several
/// workers tells the owner of a session from its id).
#[test]
fn connection_ids_fall_in_the_endpoints_lane() {
    let config = EndpointConfig {
        id_lanes: 3,
        id_lane: 2,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(config, [0x11; 16], [0x22; 16]);
    let mut out = vec![0u8; 2048];
    let now = Instant::from_millis(1000);
    for i in 0..50u64 {
        let a: SocketAddr = format!("10.0.1.{}:{}", i % 200, 1000 + i).parse().unwrap();
        let n = match ep.handle(now, a, &hello_datagram(i, None, 1200, (1, 1)), &mut out) {
            Outcome::Reply(n) => n,
            other => panic!("{other:?}"),
        };
        let FrameBody::Challenge(ch) = first_frame(&out[..n]) else {
            panic!("challenge")
        };
        let echo = hello_datagram(i, Some(&ch.cookie), 1200, (1, 1));
        match ep.handle(now, a, &echo, &mut out) {
            Outcome::Accept { session, .. } => {
                let id = session.connection_id();
                assert_ne!(id, 0);
                assert_eq!(id % 3, 2, "{id}");
            }
            other => panic!("{other:?}"),
        }
    }
}
