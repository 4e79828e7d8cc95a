//! The frame length limit both sides agree in the handshake (docs/PROTOCOL.md section 6.2): the
//! smaller offer, a floor below which a Hello is refused, a local `TooLarge` for a frame above it
//! that leaves the session usable, and a refused message that never blocks its channel.

use bytes::Bytes;
use framewire_protocol::session::{
    Endpoint, EndpointConfig, Event, Instant, Outcome, Oversized, SendError, SessionConfig,
    StreamSession,
};
use framewire_protocol::wire::{
    Data, Datagram, Frame, FrameBody, FrameKind, Hello, HelloOptions, MIN_AGREED_FRAME_LEN,
    Publish, Reason, Text, encode_stream_frame_into,
};

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use common::{Udp, client_addr};

fn limited(max_message_len: usize) -> SessionConfig {
    SessionConfig {
        max_message_len,
        ..SessionConfig::default()
    }
}

fn publish(id: u32, len: usize) -> Frame {
    Frame::new(Publish {
        retain: false,
        id,
        topic: Text::from("t"),
        payload: Bytes::from(vec![7u8; len]),
    })
}

fn data(tag: u8) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(vec![tag; 20]),
    })
}

fn data_tag(e: &Event) -> Option<u8> {
    match e {
        Event::Frame(Frame {
            body: FrameBody::Data(d),
            ..
        }) => Some(d.payload[0]),
        _ => None,
    }
}

#[test]
fn udp_agrees_the_smaller_limit_and_refuses_a_larger_frame_locally() {
    let mut udp = Udp::new(SessionConfig::default(), limited(4096));
    udp.run();
    assert!(udp.client.is_established());
    assert_eq!(udp.client.max_frame_len(), 4096);
    assert_eq!(udp.server.as_ref().unwrap().max_frame_len(), 4096);
    // 5,000 bytes of payload: a frame of 5,000 + 7 (id, topic) + 3 (header) + 5.
    assert_eq!(
        udp.client.send(publish(1, 5000)),
        Err(SendError::TooLarge {
            len: 5015,
            max: 4096
        })
    );
    // A frame exactly at the limit goes, and the session goes on.
    udp.client.send(publish(2, 4096 - 15)).unwrap();
    udp.client.send(data(3)).unwrap();
    udp.run();
    // (A server's session starts established: its first events are the client's messages.)
    let events = udp.server_events();
    assert!(matches!(
        &events[0],
        Event::Frame(Frame {
            body: FrameBody::Publish(p),
            ..
        }) if p.id == 2
    ));
    assert_eq!(data_tag(&events[1]), Some(3));
}

/// A message queued before the Welcome is checked against the client's own limit; if the agreed
/// one is lower the server refuses it: it hears of it in the channel's order, and what follows on
/// the channel is still delivered (the channel used to wait for the refused sequence number for
/// ever).
#[test]
fn a_refused_udp_message_is_reported_in_place_and_never_blocks_its_channel() {
    let mut udp = Udp::new(SessionConfig::default(), limited(4096));
    udp.client.send(data(1)).unwrap();
    udp.client.send(publish(77, 5000)).unwrap();
    udp.client.send(data(2)).unwrap();
    udp.client.send(publish(78, 5000).on_channel(1)).unwrap();
    udp.client.send(data(3).on_channel(1)).unwrap();
    udp.run();
    let events = udp.server_events();
    let mut refused: Vec<Oversized> = events
        .iter()
        .filter_map(|e| match e {
            Event::Oversized(o) => Some(*o),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 2, "{} events", events.len());
    refused.sort_by_key(|o| o.id);
    for (o, (id, channel)) in refused.iter().zip([(77, 0), (78, 1)]) {
        assert_eq!(o.kind, FrameKind::Publish as u8);
        assert_eq!((o.id, o.channel, o.max), (id, channel, 4096));
        assert!(o.len > 4096, "{o:?}");
    }
    // Channel 0 in order, the refusal in its place.
    let on_0: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Oversized(o) if o.channel == 0 => Some("refused".to_string()),
            Event::Frame(f) if f.channel == 0 => data_tag(e).map(|t| t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(on_0, ["1", "refused", "2"]);
    // Channel 1 (reliable-unordered) has no order with channel 0's.
    let mut tags: Vec<u8> = events.iter().filter_map(data_tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [1, 2, 3]);
    // Nothing is left waiting: later messages on channel 0 still arrive.
    udp.client.send(data(4)).unwrap();
    udp.run();
    let later: Vec<u8> = udp.server_events().iter().filter_map(data_tag).collect();
    assert_eq!(later, [4]);
}

fn hello_frame(max_frame_len: u32) -> Frame {
    Frame::new(Hello {
        min_version: 1,
        max_version: 1,
        idle_timeout_ms: 0,
        max_frame_len,
        nonce: 0,
        options: HelloOptions::new(),
    })
}

#[test]
fn a_hello_below_the_floor_is_rejected_with_a_reason_on_both_transports() {
    // TCP.
    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    let mut bytes = bytes::BytesMut::new();
    encode_stream_frame_into(&hello_frame(MIN_AGREED_FRAME_LEN - 1), &mut bytes).unwrap();
    s.handle_bytes(Instant::ZERO, &bytes);
    let out = framewire_protocol::wire::decode_stream_frame(s.pending_output(), 65_536).unwrap();
    match out.body {
        FrameBody::Reject(r) => {
            assert_eq!(r.reason, Reason::PROTOCOL_ERROR);
            assert!(r.message.as_str().contains("below"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.is_closed());
    // At the floor: welcomed, and the limit agreed is the Hello's.
    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    let mut bytes = bytes::BytesMut::new();
    encode_stream_frame_into(&hello_frame(MIN_AGREED_FRAME_LEN), &mut bytes).unwrap();
    s.handle_bytes(Instant::ZERO, &bytes);
    assert!(s.is_established());
    assert_eq!(s.max_frame_len(), MIN_AGREED_FRAME_LEN);

    // UDP: the Hello with the cookie the server's Challenge gave is refused.
    let mut ep = Endpoint::new(EndpointConfig::default(), [1; 16], [2; 16]);
    let hello = |max, cookie: Option<&[u8]>| {
        let mut options = HelloOptions::builder();
        if let Some(c) = cookie {
            options = options.cookie(c);
        }
        let mut h = hello_frame(max);
        if let FrameBody::Hello(hello) = &mut h.body {
            hello.options = options.padding(1200).build().unwrap();
        }
        framewire_protocol::samples::datagram(0, 0, &[h], 0)
    };
    let mut out = vec![0u8; 2048];
    let mut answer = |ep: &mut Endpoint, datagram: &[u8]| {
        let Outcome::Reply(n) = ep.handle(Instant::ZERO, client_addr(), datagram, &mut out) else {
            panic!("no answer");
        };
        let d = Datagram::parse(Bytes::copy_from_slice(&out[..n])).unwrap();
        Frame::parse(d.frames().next().unwrap()).unwrap().body
    };
    let FrameBody::Challenge(challenge) = answer(&mut ep, &hello(7, None)) else {
        panic!("no challenge");
    };
    match answer(&mut ep, &hello(7, Some(&challenge.cookie))) {
        FrameBody::Reject(r) => {
            assert_eq!(r.reason, Reason::PROTOCOL_ERROR);
            assert!(r.message.as_str().contains("below"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
}

/// Over TCP a server whose client asked for 1000 never sends it a larger frame: `send` refuses it
/// with `TooLarge`, and the session goes on.
#[test]
fn a_stream_session_never_sends_above_the_agreed_limit() {
    let mut s = StreamSession::server(SessionConfig::default(), 1, Instant::ZERO);
    let mut bytes = bytes::BytesMut::new();
    encode_stream_frame_into(&hello_frame(1000), &mut bytes).unwrap();
    s.handle_bytes(Instant::ZERO, &bytes);
    assert_eq!(s.max_frame_len(), 1000);
    let before = s.pending_output().len();
    assert_eq!(
        s.send(&publish(0, 3000), Instant::ZERO),
        Err(SendError::TooLarge {
            len: 3015,
            max: 1000
        })
    );
    assert_eq!(s.pending_output().len(), before, "nothing was queued");
    let shared = framewire_protocol::wire::SharedFrame::new(&publish(0, 3000)).unwrap();
    assert!(matches!(
        s.send_shared(&shared, Instant::ZERO),
        Err(SendError::TooLarge { max: 1000, .. })
    ));
    s.send(&publish(0, 1000 - 15), Instant::ZERO).unwrap();
    assert!(s.is_established());
}

/// The client learns the limit from the Welcome and refuses a larger frame itself.
#[test]
fn a_stream_client_refuses_a_frame_above_the_welcomes_limit() {
    let mut c = StreamSession::client(SessionConfig::default(), Instant::ZERO);
    let mut s = StreamSession::server(limited(4096), 1, Instant::ZERO);
    let hello = c.pending_output().to_vec();
    c.consume_output(hello.len());
    s.handle_bytes(Instant::ZERO, &hello);
    let welcome = s.pending_output().to_vec();
    c.handle_bytes(Instant::ZERO, &welcome);
    assert!(c.is_established());
    assert_eq!(c.max_frame_len(), 4096);
    assert_eq!(
        c.send(&publish(1, 65_000), Instant::ZERO),
        Err(SendError::TooLarge {
            len: 65_015,
            max: 4096
        })
    );
    c.send(&data(1), Instant::ZERO).unwrap();
    assert!(c.is_established());
}
