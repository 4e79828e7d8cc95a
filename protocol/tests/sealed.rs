//! Sealed sessions (docs/PROTOCOL.md sections 2.3 and 2.5) between a connecting `Session` and a server
//! `Endpoint` that admits with the token's keys: the Welcome and everything after it are sealed;
//! through 20 % loss every reliable message arrives exactly once and in order, both ways; a
//! tampered, a replayed and a wrong-key datagram are each dropped and counted, and end nothing; a
//! client that expects a sealed session refuses a server that answers in the clear; a silent
//! refusal (a token that does not open) answers nothing.

use bytes::Bytes;
use framewire_protocol::seal::{COMPACT_SEALED, TokenKeys, check_sealed_compact, is_sealed};
use framewire_protocol::session::{
    Admission, DropReason, Endpoint, EndpointConfig, Event, Instant, Outcome, Refusal, Session,
    SessionConfig,
};
use framewire_protocol::sim::{ADDR_A, ADDR_B, LinkConfig, Pair};
use framewire_protocol::wire::{Data, Frame, FrameBody, Hello, Reason, Text};

/// Messages each way through the lossy link.
const N: u32 = 500;

fn keys() -> TokenKeys {
    TokenKeys {
        client_to_server: [0x5c; 32],
        server_to_client: [0xc5; 32],
    }
}

fn sealed_client(keys: Option<TokenKeys>) -> Session {
    let config = SessionConfig {
        seal_keys: keys,
        ..SessionConfig::default()
    };
    Session::connect(config, ADDR_B, 0xfeed, Instant::ZERO)
}

/// Runs the handshake of `client` (at `ADDR_A`) with an endpoint (at `ADDR_B`) that admits with
/// `seal`, losing the first Welcome; returns the server's session and every datagram the server
/// sent.
fn handshake(client: &mut Session, seal: Option<&TokenKeys>) -> (Option<Session>, Vec<Vec<u8>>) {
    handshake_with(client, seal, EndpointConfig::default())
}

/// [`handshake`] with an endpoint of `config`.
fn handshake_with(
    client: &mut Session,
    seal: Option<&TokenKeys>,
    config: EndpointConfig,
) -> (Option<Session>, Vec<Vec<u8>>) {
    let mut ep = Endpoint::new(config, [1; 16], [2; 16]);
    let mut server = None;
    let mut sent_down = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let mut now = Instant::ZERO;
    for _ in 0..100 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            let admit = |_: &Hello, _| {
                Ok(Admission {
                    seal: seal.cloned(),
                    ..Admission::default()
                })
            };
            let reply = match ep.handle_with(now, ADDR_A, &buf[..t.len], &mut out, admit) {
                Outcome::Reply(n) => n,
                Outcome::Accept { session, reply } => {
                    server = Some(*session);
                    reply
                }
                _ => continue,
            };
            sent_down.push(out[..reply].to_vec());
            // The first Welcome is lost: the repeated one must be the same bytes.
            if sent_down.len() != 2 {
                client.handle_datagram(now, ADDR_B, Bytes::copy_from_slice(&out[..reply]));
            }
        }
        if client.is_established() || client.is_closed() {
            break;
        }
        now = client
            .poll_timeout()
            .expect("a timer while connecting")
            .max(now);
        client.handle_timeout(now);
    }
    (server, sent_down)
}

/// Message `n`: its number, then 200 bytes, so that a few fill a datagram.
fn data(n: u32) -> Frame {
    let mut payload = n.to_be_bytes().to_vec();
    payload.resize(204, 0xAB);
    Frame::new(Data {
        payload: Bytes::from(payload),
    })
}

/// The payloads of the Data frames in `events`, in order.
fn received(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Data(d),
                ..
            }) => Some(u32::from_be_bytes(d.payload[..4].try_into().unwrap())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sealed_session_delivers_every_message_once_in_order_through_20_percent_loss() {
    // Version 4 (sealed compact datagrams, section 2.5), and version 1 (the version-1 form
    // sealed, section 2.3) for a client configured without compact datagrams.
    for compact in [true, false] {
        through_20_percent_loss(compact);
    }
}

fn through_20_percent_loss(compact: bool) {
    let config = SessionConfig {
        seal_keys: Some(keys()),
        compact_datagrams: compact,
        ..SessionConfig::default()
    };
    let mut client = Session::connect(config, ADDR_B, 0xfeed, Instant::ZERO);
    let (server, down) = handshake(&mut client, Some(&keys()));
    let server = server.expect("a session");
    assert!(client.is_established() && client.is_sealed() && server.is_sealed());
    let version = if compact { 4 } else { 1 };
    assert_eq!((client.version(), server.version()), (version, version));
    assert_eq!(client.uses_compact_datagrams(), compact);
    assert_eq!(server.uses_compact_datagrams(), compact);
    // Challenge, Welcome (lost), the same Welcome again: both Welcomes sealed, byte for byte alike.
    assert_eq!(down.len(), 3);
    assert!(!is_sealed(&down[0]));
    assert!(is_sealed(&down[1]));
    assert_eq!(down[1], down[2]);
    // A datagram above the configured 1200 bytes would be lost every time, and the run stall.
    let link = LinkConfig {
        loss: 0.2,
        mtu: 1200,
        ..LinkConfig::default()
    };
    let mut pair = Pair::new(SessionConfig::default(), SessionConfig::default(), &link, 7);
    pair.a = client;
    pair.b = server;
    assert!(matches!(pair.a.poll_event(), Some(Event::Connected { .. })));
    for n in 0..N {
        pair.a.send(data(n)).unwrap();
        pair.b.send(data(n)).unwrap();
    }
    assert!(pair.run_until(Instant::from_millis(300_000), |p| {
        received(&p.events_a).len() == N as usize && received(&p.events_b).len() == N as usize
    }));
    let all: Vec<u32> = (0..N).collect();
    assert_eq!(received(&pair.events_b), all, "version {version}");
    assert_eq!(received(&pair.events_a), all, "version {version}");
    for link in [pair.stats_ab, pair.stats_ba] {
        assert!(
            link.lost * 10 > link.sent,
            "the link lost about a fifth: {link:?}"
        );
    }
    for s in [pair.a.stats(), pair.b.stats()] {
        assert_eq!((s.sealed_forged, s.bad_datagrams), (0, 0), "{s:?}");
    }
}

#[test]
fn tampered_replayed_and_wrong_key_datagrams_are_dropped_and_counted() {
    let mut client = sealed_client(Some(keys()));
    let (server, _) = handshake(&mut client, Some(&keys()));
    let mut server = server.unwrap();
    let now = Instant::ZERO;
    let mut buf = vec![0u8; 2048];
    client
        .send(Frame::new(Data {
            payload: Bytes::from_static(b"secret-reading"),
        }))
        .unwrap();
    let t = client.poll_transmit(now, &mut buf).unwrap();
    let datagram = buf[..t.len].to_vec();
    assert!(is_sealed(&datagram));
    assert!(
        !datagram.windows(6).any(|w| w == b"secret"),
        "the payload is not on the wire"
    );
    // Tampered: one bit of the ciphertext.
    let mut tampered = datagram.clone();
    tampered[20] ^= 0x01;
    server.handle_datagram(now, ADDR_A, Bytes::from(tampered));
    assert_eq!(server.stats().sealed_forged, 1);
    assert!(server.poll_event().is_none());
    // The real one opens once; again, it is a replay.
    server.handle_datagram(now, ADDR_A, Bytes::from(datagram.clone()));
    assert!(matches!(server.poll_event(), Some(Event::Frame(_))));
    server.handle_datagram(now, ADDR_A, Bytes::from(datagram.clone()));
    assert_eq!(server.stats().sealed_replayed, 1);
    assert!(server.poll_event().is_none());
    // Sealed under another token's keys: does not open.
    let other = TokenKeys {
        client_to_server: [0x77; 32],
        server_to_client: [0x88; 32],
    };
    let mut stranger = sealed_client(Some(other.clone()));
    let (_, _) = handshake(&mut stranger, Some(&other));
    stranger.send(data(2)).unwrap();
    let t = stranger.poll_transmit(now, &mut buf).unwrap();
    let mut foreign = buf[..t.len].to_vec();
    // Under this session's connection id and a packet number it has not seen (the window is
    // checked before the tag), so only the key differs. Sealed compact (version 4): the id in
    // bytes 1 to 4, then a one-byte number.
    let (_, (_, pn_len)) = check_sealed_compact(&foreign).expect("sealed compact");
    assert_eq!(pn_len, 1);
    let id = u32::try_from(server.connection_id()).unwrap();
    foreign[1..5].copy_from_slice(&id.to_be_bytes());
    foreign[5] = 50;
    server.handle_datagram(now, ADDR_A, Bytes::from(foreign));
    assert_eq!(server.stats().sealed_forged, 2);
    // A plain datagram to a sealed session is refused too, of either form.
    let plain = framewire_protocol::samples::datagram(server.connection_id(), 9, &[data(3)], 0);
    server.handle_datagram(now, ADDR_A, Bytes::from(plain));
    assert_eq!(server.stats().sealed_forged, 3);
    let mut plain_compact = datagram.clone();
    plain_compact[0] &= !COMPACT_SEALED;
    server.handle_datagram(now, ADDR_A, Bytes::from(plain_compact));
    assert_eq!(server.stats().sealed_forged, 4);
    assert!(server.poll_event().is_none());
    assert!(
        !server.is_closed(),
        "nothing a stranger sends ends a session"
    );
}

#[test]
fn a_client_with_keys_refuses_a_server_that_answers_in_the_clear() {
    let mut client = sealed_client(Some(keys()));
    let (_, down) = handshake(&mut client, None);
    assert!(down.iter().all(|d| !is_sealed(d)));
    assert!(client.is_closed());
    assert!(matches!(
        client.poll_event(),
        Some(Event::Closed { reason, .. }) if reason == Reason::AUTH_FAILED
    ));
}

#[test]
fn without_keys_the_session_stays_plain() {
    let mut client = sealed_client(None);
    let (server, down) = handshake(&mut client, None);
    assert!(client.is_established() && !client.is_sealed());
    assert!(!server.unwrap().is_sealed());
    assert!(down.iter().all(|d| !is_sealed(d)));
}

#[test]
fn a_restarted_server_resets_a_sealed_session_and_the_client_learns_at_once() {
    let mut client = sealed_client(Some(keys()));
    let (_, _) = handshake(&mut client, Some(&keys()));
    assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
    let mut buf = vec![0u8; 2048];
    client.send(data(1)).unwrap();
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    // The server lost the session and its keys: it reads the header alone and answers in the
    // clear, echoing what identifies the datagram.
    let mut out = vec![0u8; 2048];
    let n = Endpoint::reset(&buf[..t.len], &mut out).expect("a Reset");
    assert!(!is_sealed(&out[..n]));
    client.handle_datagram(Instant::ZERO, ADDR_B, Bytes::copy_from_slice(&out[..n]));
    assert!(client.is_closed());
    assert!(matches!(
        client.poll_event(),
        Some(Event::Closed { reason, .. }) if reason == Reason::UNKNOWN_SESSION
    ));
}

#[test]
fn a_silent_refusal_sends_nothing_and_keeps_nothing() {
    let mut client = sealed_client(Some(keys()));
    let mut ep = Endpoint::new(EndpointConfig::default(), [1; 16], [2; 16]);
    let (mut buf, mut out) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut now = Instant::ZERO;
    let mut answers = Vec::new();
    let mut asked = 0;
    for _ in 0..20 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            let refuse = |_: &Hello, _| {
                asked += 1;
                Err(Refusal {
                    reason: Reason::AUTH_FAILED,
                    message: Text::from_static("connect token keys do not open"),
                    silent: true,
                })
            };
            match ep.handle_with(now, ADDR_A, &buf[..t.len], &mut out, refuse) {
                Outcome::Reply(n) => {
                    let reply = out[..n].to_vec();
                    client.handle_datagram(now, ADDR_B, Bytes::copy_from_slice(&reply));
                    answers.push(reply);
                }
                Outcome::Drop(DropReason::Refused) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let Some(next) = client.poll_timeout() else {
            break;
        };
        now = next.max(now);
        client.handle_timeout(now);
    }
    // The Challenge (before any token is looked at) is the only answer the client ever had:
    // each Hello that carried the cookie was refused without a Reject, and the client, hearing
    // nothing, kept trying until it gave up, with no session made on either side.
    assert_eq!(answers.len(), 1, "the Challenge only");
    assert!(asked >= 2, "the cookie'd Hello was tried again: {asked}");
    assert!(!client.is_established());
    assert_eq!(ep.stats().rejected, asked);
}

#[test]
fn a_tapped_sealed_compact_session_shows_the_plain_datagrams_with_their_crcs() {
    use framewire_protocol::wire::{CompactContext, Datagram, is_compact};
    let config = SessionConfig {
        seal_keys: Some(keys()),
        tap_plaintext: true,
        ..SessionConfig::default()
    };
    let mut client = Session::connect(config, ADDR_B, 0xfeed, Instant::ZERO);
    let (server, _) = handshake(&mut client, Some(&keys()));
    let mut server = server.unwrap();
    assert_eq!(client.version(), 4);
    let mut buf = vec![0u8; 2048];
    let mut now = Instant::ZERO;
    for n in 0..20 {
        client.send(data(n)).unwrap();
        server.send(data(n)).unwrap();
    }
    for _ in 0..50 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ADDR_A, Bytes::copy_from_slice(&buf[..t.len]));
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, ADDR_B, Bytes::copy_from_slice(&buf[..t.len]));
        }
        now += std::time::Duration::from_millis(5);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    // Each direction's copies in order, numbers one apart: each restores from the one before and
    // its CRC verifies, as a capture reader checks it.
    let tapped = client.take_plaintext();
    for way in [false, true] {
        let mut largest = None;
        let mut count = 0;
        for (_, plain) in tapped.iter().filter(|(received, _)| *received == way) {
            assert!(is_compact(plain) && !is_sealed(plain));
            let context = CompactContext {
                largest_received: largest,
                largest_sent: u32::MAX,
            };
            let d = Datagram::parse_compact(plain.clone(), &context)
                .unwrap_or_else(|e| panic!("a tapped datagram (received: {way}): {e}"));
            largest = Some(d.header.packet_number);
            count += 1;
        }
        assert!(count > 2, "{count} datagrams tapped (received: {way})");
    }
}

#[test]
fn a_sealed_client_goes_on_in_version_1_with_a_server_that_does_not_take_4() {
    // A server that takes compact datagrams but not shared headers speaks 1 and 2, and gives a
    // sealed session 1, as a server of before version 4 does.
    let mut config = EndpointConfig::default();
    config.session.shared_headers = false;
    let mut client = sealed_client(Some(keys()));
    let (server, _) = handshake_with(&mut client, Some(&keys()), config);
    let mut server = server.expect("a session");
    assert!(client.is_established() && client.is_sealed() && server.is_sealed());
    assert_eq!((client.version(), server.version()), (1, 1));
    let mut buf = vec![0u8; 2048];
    client.send(data(7)).unwrap();
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    assert!(
        is_sealed(&buf[..t.len]) && buf[0] == b'F',
        "the version-1 form, sealed"
    );
    server.handle_datagram(Instant::ZERO, ADDR_A, Bytes::copy_from_slice(&buf[..t.len]));
    let Some(Event::Frame(f)) = server.poll_event() else {
        panic!("the message")
    };
    assert_eq!(received(&[Event::Frame(f)]), [7]);
}
