//! The session in stream mode (TCP), driven in memory: the bytes each side produces are handed to
//! the other split at seeded random points, as a socket would.

use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{
    Closer, Event, Instant, SendError, SessionConfig, StreamSession,
};
use framewire_protocol::sim::Rng;
use framewire_protocol::wire::{
    ChannelKind, Data, Frame, FrameBody, Hello, HelloOptions, Ping, Reason,
    encode_stream_frame_into,
};

const MS: Duration = Duration::from_millis(1);

/// Moves all pending output from `from` to `to`, in random-sized pieces.
fn pipe(from: &mut StreamSession, to: &mut StreamSession, now: Instant, rng: &mut Rng) {
    while !from.pending_output().is_empty() {
        let out = from.pending_output();
        let n = 1 + (rng.next_u64() as usize) % out.len();
        let piece = out[..n].to_vec();
        from.consume_output(n);
        to.handle_bytes(now, &piece);
    }
}

fn exchange(c: &mut StreamSession, s: &mut StreamSession, now: Instant, rng: &mut Rng) {
    for _ in 0..4 {
        pipe(c, s, now, rng);
        pipe(s, c, now, rng);
    }
}

fn connected(config: SessionConfig) -> (StreamSession, StreamSession, Rng) {
    let mut rng = Rng::new(5);
    let mut c = StreamSession::client(config.clone(), Instant::ZERO);
    let mut s = StreamSession::server(config, 42, Instant::ZERO);
    exchange(&mut c, &mut s, Instant::ZERO, &mut rng);
    let welcomed = Event::Connected {
        connection_id: 42,
        session_token: Bytes::new(),
        resumed: false,
        missed: 0,
    };
    assert_eq!(c.poll_event(), Some(welcomed.clone()));
    assert_eq!(s.poll_event(), Some(welcomed));
    (c, s, rng)
}

fn data(tag: u8) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(vec![tag; 300]),
    })
}

#[test]
fn handshake_and_data_both_ways_over_split_bytes() {
    let (mut c, mut s, mut rng) = connected(SessionConfig::default());
    let now = Instant::from_millis(1);
    for tag in 0..50 {
        c.send(&data(tag).on_channel(tag % 4), now).unwrap();
    }
    s.send(&data(99), now).unwrap();
    exchange(&mut c, &mut s, now, &mut rng);
    let got: Vec<u8> = std::iter::from_fn(|| s.poll_event())
        .map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Data(d),
                ..
            }) => d.payload[0],
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        (0..50).collect::<Vec<u8>>(),
        "every message, in order, whatever the channel"
    );
    assert!(matches!(c.poll_event(), Some(Event::Frame(_))));
}

#[test]
fn heartbeats_measure_rtt_and_keep_the_session_alive() {
    let config = SessionConfig {
        heartbeat_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    };
    let (mut c, mut s, mut rng) = connected(config);
    // One minute of silence from the application, with a 20 ms round trip.
    let mut now = Instant::ZERO;
    while now < Instant::from_millis(60_000) {
        let next = c.poll_timeout().unwrap().min(s.poll_timeout().unwrap());
        now = next.max(now);
        c.handle_timeout(now);
        s.handle_timeout(now);
        pipe(&mut c, &mut s, now + 10 * MS, &mut rng);
        pipe(&mut s, &mut c, now + 20 * MS, &mut rng);
    }
    assert!(
        c.is_established() && s.is_established(),
        "heartbeats kept it alive"
    );
    assert!(c.stats().packets_sent > 50);
    assert_eq!(c.stats().rtt, 20 * MS);
}

#[test]
fn a_silent_peer_is_declared_dead_at_the_idle_timeout_and_not_before() {
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    };
    let (mut c, _s, _) = connected(config);
    // Heartbeats go out; nothing comes back.
    let mut heartbeats = 0;
    while let Some(t) = c.poll_timeout() {
        if t >= Instant::from_millis(5000) {
            break;
        }
        c.handle_timeout(t);
        if !c.pending_output().is_empty() {
            heartbeats += 1;
        }
        c.consume_output(c.pending_output().len());
        assert!(heartbeats < 100, "timer stuck at {t:?}");
    }
    assert!(
        heartbeats >= 4,
        "a Ping each second of silence ({heartbeats})"
    );
    c.handle_timeout(Instant::from_millis(4999));
    assert!(c.poll_event().is_none(), "dead 1 ms early");
    c.handle_timeout(Instant::from_millis(5000));
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed {
            reason: Reason::IDLE_TIMEOUT,
            by: Closer::Local,
            ..
        })
    ));
    assert!(c.is_closed());
}

#[test]
fn close_is_acknowledged_and_carries_its_reason() {
    let (mut c, mut s, mut rng) = connected(SessionConfig::default());
    let now = Instant::from_millis(1);
    c.close(now, Reason::NORMAL, "done");
    assert_eq!(c.send(&data(1), now), Err(SendError::Closed));
    exchange(&mut c, &mut s, now, &mut rng);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed { reason: Reason::NORMAL, by: Closer::Peer, message }) if message == "done"
    ));
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed {
            reason: Reason::NORMAL,
            by: Closer::Local,
            ..
        })
    ));
    assert!(c.is_closed() && s.is_closed());
}

#[test]
fn a_server_closes_a_connection_that_sends_no_hello_in_time() {
    let config = SessionConfig {
        handshake_timeout: Duration::from_secs(2),
        ..SessionConfig::default()
    };
    let mut s = StreamSession::server(config, 1, Instant::ZERO);
    // A slowloris trickles a partial frame.
    s.handle_bytes(Instant::from_millis(1500), &[0, 0, 0, 40, 1]);
    s.handle_timeout(Instant::from_millis(1999));
    assert!(!s.is_closed());
    s.handle_timeout(Instant::from_millis(2000));
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            reason: Reason::HANDSHAKE_TIMEOUT,
            ..
        })
    ));
    assert!(
        !s.pending_output().is_empty(),
        "the Close frame is queued for the peer"
    );
}

#[test]
fn bad_bytes_and_frames_out_of_place_close_with_a_reason() {
    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    s.handle_bytes(Instant::ZERO, &[0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            reason: Reason::FRAME_TOO_LARGE,
            ..
        })
    ));

    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    let mut wire = bytes::BytesMut::new();
    encode_stream_frame_into(&Frame::new(Ping { timestamp_us: 1 }), &mut wire).unwrap();
    s.handle_bytes(Instant::ZERO, &wire);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            reason: Reason::PROTOCOL_ERROR,
            ..
        })
    ));

    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    let mut wire = bytes::BytesMut::new();
    encode_stream_frame_into(
        &Frame::new(Hello {
            min_version: 3,
            max_version: 4,
            idle_timeout_ms: 0,
            max_frame_len: 65_536,
            nonce: 0,
            options: HelloOptions::new(),
        }),
        &mut wire,
    )
    .unwrap();
    s.handle_bytes(Instant::ZERO, &wire);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            reason: Reason::UNSUPPORTED_VERSION,
            ..
        })
    ));
    assert!(!s.pending_output().is_empty(), "a Reject is queued");
}

#[test]
fn a_full_output_buffer_drops_unreliable_messages_first_then_pushes_back() {
    let config = SessionConfig {
        max_queued_bytes: 10_000,
        channels: vec![ChannelKind::ReliableOrdered, ChannelKind::Unreliable],
        ..SessionConfig::default()
    };
    let (mut c, _s, _) = connected(config);
    let now = Instant::from_millis(1);
    // Nobody reads: the output grows.
    let mut reliable = 0;
    while c.send(&data(1), now).is_ok() {
        reliable += 1;
    }
    assert!((30..=40).contains(&reliable), "{reliable}");
    assert_eq!(c.send(&data(1), now), Err(SendError::QueueFull));
    c.send(&data(2).on_channel(1), now).unwrap();
    assert_eq!(
        c.stats().unreliable_dropped,
        1,
        "unreliable dropped above the high-water mark"
    );
    assert!(c.pending_output().len() < 10_000 + 400);
}

/// The server's application decides the Welcome's resume terms from the client's Hello: the
/// client's resume token and last will reach it, and the token, `RESUMED` and `missed` reach the
/// client.
#[test]
fn admission_sees_the_hello_options_and_sets_the_welcome_terms() {
    let will = framewire_protocol::wire::LastWill {
        retain: false,
        channel: 0,
        topic: framewire_protocol::wire::Text::from("dev/1/online"),
        payload: Bytes::from_static(b"0"),
    };
    let client_config = SessionConfig {
        hello_options: HelloOptions::builder()
            .resume_token(b"old-token")
            .last_will(&will)
            .build()
            .unwrap(),
        ..SessionConfig::default()
    };
    let mut c = StreamSession::client(client_config, Instant::ZERO);
    let mut s = StreamSession::server(SessionConfig::default(), 9, Instant::ZERO);
    let hello = c.pending_output().to_vec();
    c.consume_output(hello.len());
    let mut seen = None;
    s.handle_bytes_with(Instant::ZERO, &hello, |h: &Hello, id| {
        seen = Some((h.options.resume_token(), h.options.last_will(), id));
        Ok(framewire_protocol::session::Admission {
            session_token: Bytes::from_static(b"new-token"),
            resumed: true,
            missed: 3,
            seal: None,
        })
    });
    assert_eq!(
        seen,
        Some((Some(Bytes::from_static(b"old-token")), Some(will), 9))
    );
    let welcome = s.pending_output().to_vec();
    s.consume_output(welcome.len());
    c.handle_bytes(Instant::ZERO, &welcome);
    let expected = Event::Connected {
        connection_id: 9,
        session_token: Bytes::from_static(b"new-token"),
        resumed: true,
        missed: 3,
    };
    assert_eq!(c.poll_event(), Some(expected.clone()));
    assert_eq!(s.poll_event(), Some(expected));
}

/// A server's admission may refuse the client: a Reject with the reason, and the session ends.
#[test]
fn admission_can_refuse_with_a_reject() {
    let mut c = StreamSession::client(SessionConfig::default(), Instant::ZERO);
    let mut s = StreamSession::server(SessionConfig::default(), 9, Instant::ZERO);
    let hello = c.pending_output().to_vec();
    c.consume_output(hello.len());
    s.handle_bytes_with(Instant::ZERO, &hello, |_: &Hello, _| {
        Err(framewire_protocol::session::Refusal {
            silent: false,
            reason: Reason::SESSION_LIMIT,
            message: framewire_protocol::wire::Text::from("full"),
        })
    });
    assert!(s.is_closed());
    let reject = s.pending_output().to_vec();
    c.handle_bytes(Instant::ZERO, &reject);
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed {
            reason: Reason::SESSION_LIMIT,
            by: Closer::Peer,
            ..
        })
    ));
}
